import Foundation
import HDF5
import VAVLData
import XCTest

/// A test case with its own temporary folder, removed afterwards.
class CorpusTestCase: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vavl-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The names in `folder` (default: the test folder), hidden ones included.
    func contents(_ folder: String? = nil) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder ?? directory.path)) ?? []).sorted()
    }

    /// Asserts that `body` throws a ``CorpusError`` whose message names `file` and, if given,
    /// the utterance id `utterance` and the text `mentioning`. Returns the message.
    @discardableResult
    func assertCorpusError(file: String, utterance: String?, mentioning: String? = nil,
                           _ body: () throws -> Void, line: UInt = #line) -> String {
        do {
            try body()
            XCTFail("expected an error naming \(file)", line: line)
            return ""
        } catch let error as CorpusError {
            let message = error.description
            XCTAssertTrue(message.contains(file), "message does not name the file \(file): \(message)", line: line)
            XCTAssertEqual(error.file, file, line: line)
            if let utterance {
                XCTAssertEqual(error.utterance, utterance, "message: \(message)", line: line)
                XCTAssertTrue(message.contains("'\(utterance)'"), "message does not name utterance \(utterance): \(message)", line: line)
            }
            if let mentioning {
                XCTAssertTrue(message.contains(mentioning), "message does not mention '\(mentioning)': \(message)", line: line)
            }
            return message
        } catch {
            XCTFail("expected a CorpusError, got \(error)", line: line)
            return ""
        }
    }
}

/// A small corpus written directly with the HDF5 wrapper (not with ``CorpusWriter``), so
/// tests can break any part of the format. Utterance u0 has both modalities, u1 audio
/// only, u2 video only.
struct RawCorpus {
    var format = "vavl-corpus"
    var version: Int64 = 1
    var task = "categorical"
    var labelNames = ["a", "b"]
    var labelRange: [Double]? = nil
    var ids = ["u0", "u1", "u2"]
    var speakers = ["s0", "s0", "s1"]
    var splits = ["train", "dev", "test"]
    var labels: [Float] = [0.9, 0.1, 0.2, 0.8, 0.5, 0.5]
    var labelShape: [Int]? = nil
    var audioDimension = 4
    var videoDimension = 3
    var audioOffsets: [Int64] = [0, 3, 5, 5]
    var videoOffsets: [Int64] = [0, 2, 2, 4]
    var audioRows: Int? = nil
    var videoRows: Int? = nil
    var audioDeclaredDimension: Int64? = nil
    var fixedLengthStrings = false
    var featuresAsDouble = false
    var poison: (Modality, Int)? = nil  // a NaN at this value index
    var audioPhantomRows = 0  // audio rows the extent claims but the file does not store

    func values(_ modality: Modality) -> [Float] {
        let rows = modality == .audio ? (audioRows ?? Int(audioOffsets.last!)) : (videoRows ?? Int(videoOffsets.last!))
        let dimension = modality == .audio ? audioDimension : videoDimension
        var values = (0..<(rows * dimension)).map { Float($0) * 0.5 + (modality == .audio ? 0 : 1000) }
        if let (bad, index) = poison, bad == modality { values[index] = .nan }
        return values
    }

    func write(_ path: String) throws {
        let file = try HDF5File.create(path)
        try file.setAttribute("format", string: format)
        try file.setAttribute("version", value: version)
        try file.setAttribute("task", string: task)
        try file.setAttribute("label_names", strings: labelNames)
        try file.setAttribute("audio_fps", value: 50.0)
        try file.setAttribute("video_fps", value: 30.0)
        if let labelRange { try file.setAttribute("label_range", values: labelRange) }
        let utterances = try file.createGroup("utterances")
        for (name, strings) in [("id", ids), ("speaker", speakers), ("split", splits)] {
            if fixedLengthStrings {
                try utterances.writeFixedLengthStringsForTesting(name, strings, width: 12)
            } else {
                try utterances.writeStrings(name, strings)
            }
        }
        try file.writeDataset("labels", labels, shape: labelShape ?? [labels.count / labelNames.count, labelNames.count])
        for modality in Modality.allCases {
            let name = modality.rawValue
            let dimension = modality == .audio ? audioDimension : videoDimension
            let values = self.values(modality)
            try file.writeDataset("\(name)/offsets", modality == .audio ? audioOffsets : videoOffsets)
            if featuresAsDouble {
                try file.writeDataset("\(name)/features", values.map(Double.init), shape: [values.count / dimension, dimension])
            } else {
                let features = try file.writeDataset("\(name)/features", values, shape: [values.count / dimension, dimension],
                                                     layout: DatasetLayout(chunkRows: 2, extendible: true))
                if modality == .audio, audioPhantomRows > 0 { try features.extendWithoutWritingForTesting(rows: audioPhantomRows) }
            }
        }
        if let audioDeclaredDimension { try file.openGroup("audio").setAttribute("dimension", value: audioDeclaredDimension) }
        file.close()
    }
}

/// Mean-pools every utterance's frames of `modality` (zeros where missing).
func pooledFeatures(_ corpus: Corpus, _ modality: Modality) throws -> [[Double]] {
    let dimension = corpus.dimension(modality)
    return try (0..<corpus.utteranceCount).map { utterance in
        let frames = try corpus.frames(modality, utterance: utterance)
        let count = frames.count / max(dimension, 1)
        var mean = [Double](repeating: 0, count: dimension)
        for t in 0..<count { for j in 0..<dimension { mean[j] += Double(frames[t * dimension + j]) } }
        return mean.map { count == 0 ? 0 : $0 / Double(count) }
    }
}
