import Foundation
import VAVLData
import XCTest

/// `vavl corpus import`: a label CSV in the authors' layout plus `.npy` trees written here.
final class ImportTests: CorpusTestCase {
    var labels: String { path("labels.csv") }
    var audio: String { path("audio") }
    var video: String { path("video") }
    var output: String { path("out/corpus.h5") }

    /// Five utterances: both modalities, audio only (float64, version-2 header), video only,
    /// both, both.
    let csv = """
    FileName,angry,sad,neutral,SpkrID,Gender,Split_Set
    1001_A.wav,0.8,0.1,0.1,1001,Male,Train
    1001_B.wav,0.1,0.7,0.2,1001,Male,Train
    1002_A.wav,0.2,0.2,0.6,1002,Female,Development
    1003_A.wav,0.3,0.3,0.4,1003,Female,Test
    1003_B.wav,0.5,0.25,0.25,1003,Female,Train

    """

    func frames(_ index: Int, _ rows: Int, _ columns: Int) -> [Float] {
        (0..<(rows * columns)).map { Float(index) * 100 + Float($0) * 0.125 - 3 }
    }

    let audioRows = [6, 4, 0, 3, 5], videoRows = [4, 0, 2, 2, 3]

    override func setUpWithError() throws {
        try super.setUpWithError()
        for folder in [audio, video, path("out")] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        try csv.write(toFile: labels, atomically: true, encoding: .utf8)
        let names = ["1001_A", "1001_B", "1002_A", "1003_A", "1003_B"]
        for (index, name) in names.enumerated() {
            if audioRows[index] > 0 {
                try NumpyFile.write("\(audio)/\(name).npy", rows: audioRows[index], columns: 5,
                                    values: frames(index, audioRows[index], 5), asDouble: index == 1, version: index == 1 ? 2 : 1)
            }
            if videoRows[index] > 0 {
                try NumpyFile.write("\(video)/\(name).npy", rows: videoRows[index], columns: 3,
                                    values: frames(index + 10, videoRows[index], 3))
            }
        }
    }

    func options(_ task: PredictionTask = .categorical) -> ImportOptions {
        ImportOptions(labelFile: labels, audioDirectory: audio, videoDirectory: video, task: task, output: output)
    }

    func testImportEqualsTheExpectedCorpus() throws {
        try NumpyFile.write("\(audio)/not_in_the_csv.npy", rows: 1, columns: 5, values: [1, 2, 3, 4, 5])
        let report = try importCorpus(options())
        XCTAssertEqual(report.utterances, 5)
        XCTAssertEqual(report.audioAndVideo, 3)
        XCTAssertEqual(report.audioOnly, 1)
        XCTAssertEqual(report.videoOnly, 1)
        XCTAssertEqual(report.unusedFiles, 1)
        XCTAssertEqual(contents(path("out")), ["corpus.h5"])

        let corpus = try Corpus.open(output)
        XCTAssertEqual(corpus.task, .categorical)
        XCTAssertEqual(corpus.labelNames, ["angry", "sad", "neutral"])
        XCTAssertNil(corpus.labelRange)
        XCTAssertEqual(corpus.ids, ["1001_A", "1001_B", "1002_A", "1003_A", "1003_B"])
        XCTAssertEqual(corpus.speakers, ["1001", "1001", "1002", "1003", "1003"])
        XCTAssertEqual(corpus.splits, [.train, .train, .dev, .test, .train])
        XCTAssertEqual(corpus.labels, [0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.2, 0.2, 0.6, 0.3, 0.3, 0.4, 0.5, 0.25, 0.25])
        XCTAssertEqual(corpus.dimension(.audio), 5)
        XCTAssertEqual(corpus.dimension(.video), 3)
        for index in 0..<5 {
            XCTAssertEqual(try corpus.frames(.audio, utterance: index), frames(index, audioRows[index], 5))
            XCTAssertEqual(try corpus.frames(.video, utterance: index), frames(index + 10, videoRows[index], 3))
        }
        // Train statistics are stored and equal a direct computation.
        let stored = try XCTUnwrap(corpus.storedStatistics(.audio))
        let direct = try XCTUnwrap(computeFeatureStatistics(corpus, .audio))
        XCTAssertEqual(stored.frameCount, 6 + 4 + 5)
        for j in 0..<5 {
            XCTAssertEqual(stored.mean[j], direct.mean[j], accuracy: 1e-9)
            XCTAssertEqual(stored.std[j], direct.std[j], accuracy: 1e-9)
        }
    }

    func testDimensionalImportWithChosenColumnsAndRange() throws {
        try """
        FileName,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set
        1001_A.wav,2.5,3,4.333333,1,Male,Train
        1001_B.wav,1,5,3,1,Male,Development
        1002_A.wav,4,2,2,2,Female,Test
        1003_A.wav,3,3,3,3,Female,Train
        1003_B.wav,3.5,1.5,2,3,Female,Train
        """.write(toFile: labels, atomically: true, encoding: .utf8)
        var options = options(.dimensional)
        options.labelColumns = ["EmoVal", "EmoAct"]
        options.labelRange = 1...5
        _ = try importCorpus(options)
        let corpus = try Corpus.open(output)
        XCTAssertEqual(corpus.task, .dimensional)
        XCTAssertEqual(corpus.labelNames, ["EmoVal", "EmoAct"])
        XCTAssertEqual(corpus.labelRange, 1...5)
        XCTAssertEqual(Array(corpus.labels.prefix(4)), [3, 2.5, 5, 1])
    }

    // MARK: - Bad inputs: an error naming the file and utterance, and no output

    func assertImportFails(_ options: ImportOptions? = nil, file: String, utterance: String?, mentioning: String,
                           line: UInt = #line) {
        assertCorpusError(file: file, utterance: utterance, mentioning: mentioning, {
            _ = try importCorpus(options ?? self.options())
        }, line: line)
        XCTAssertEqual(contents(path("out")), [], "an output or temporary file was left behind", line: line)
    }

    func testUnreadableNpy() throws {
        try Data("this is not numpy".utf8).write(to: URL(fileURLWithPath: "\(video)/1003_A.npy"))
        assertImportFails(file: "\(video)/1003_A.npy", utterance: "1003_A", mentioning: "not a NumPy .npy file")
    }

    func testTruncatedNpy() throws {
        let file = "\(audio)/1003_B.npy"
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        try data.prefix(data.count - 6).write(to: URL(fileURLWithPath: file))
        assertImportFails(file: file, utterance: "1003_B", mentioning: "truncated")
    }

    func testWrongDimensions() throws {
        try NumpyFile.write("\(audio)/1003_A.npy", rows: 3, columns: 4, values: frames(0, 3, 4))
        assertImportFails(file: "\(audio)/1003_A.npy", utterance: "1003_A", mentioning: "wrong dimension: 3 × 4, expected 5 columns")
    }

    func testNaNInFeatures() throws {
        var values = frames(4, 3, 3)
        values[7] = .nan
        try NumpyFile.write("\(video)/1003_B.npy", rows: 3, columns: 3, values: values)
        // The last utterance: the writer has already streamed the others to its temporary file.
        assertImportFails(file: "\(video)/1003_B.npy", utterance: "1003_B", mentioning: "value nan at frame 2, dimension 1")
    }

    func testInfInFloat64Features() throws {
        var values = [Double](repeating: 1, count: 10)
        values[3] = 1e300  // finite in float64, Inf once rounded to float32
        try writeRawNpy("\(audio)/1001_B.npy", descr: "<f8", shape: "(2, 5)", payload: values.flatMap { withUnsafeBytes(of: $0) { Array($0) } })
        assertImportFails(file: "\(audio)/1001_B.npy", utterance: "1001_B", mentioning: "value inf at frame 0, dimension 3")
    }

    func testUnknownSplit() throws {
        try csv.replacingOccurrences(of: "1002,Female,Development", with: "1002,Female,Validation")
            .write(toFile: labels, atomically: true, encoding: .utf8)
        assertImportFails(file: labels, utterance: "1002_A", mentioning: "line 4: unknown Split_Set 'Validation'")
    }

    /// A FIFO named like a feature file hung the import; now it is refused by name.
    func testFIFOIsRefused() throws {
        let path = "\(audio)/1001_A.npy"
        try FileManager.default.removeItem(atPath: path)
        XCTAssertEqual(mkfifo(path, 0o644), 0)
        assertImportFails(file: path, utterance: "1001_A", mentioning: "not a regular file")
    }

    /// A feature folder that matches no utterance is an error, not a missing modality.
    func testFolderMatchingNoUtteranceIsAnError() throws {
        // Keep the utterances that have audio, so none is left without any features.
        try csv.split(separator: "\n").filter { !$0.hasPrefix("1002_A") }.joined(separator: "\n")
            .write(toFile: labels, atomically: true, encoding: .utf8)
        for name in try FileManager.default.contentsOfDirectory(atPath: video) {
            try FileManager.default.moveItem(atPath: "\(video)/\(name)", toPath: "\(video)/x\(name)")
        }
        XCTAssertThrowsError(try importCorpus(options())) { error in
            XCTAssertTrue("\(error)".contains("matches an utterance"), "\(error)")
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: video) { try FileManager.default.removeItem(atPath: "\(video)/\(name)") }
        XCTAssertThrowsError(try importCorpus(options())) { error in
            XCTAssertTrue("\(error)".contains("no .npy or .npz feature files"), "\(error)")
        }
    }

    /// A feature file longer than the frame limit is refused naming it, before its data is read.
    func testFeatureFileAboveTheFrameLimit() throws {
        let saved = FrameLimit.maximum
        defer { FrameLimit.maximum = saved }
        FrameLimit.maximum = 5
        assertImportFails(file: "\(audio)/1001_A.npy", utterance: "1001_A", mentioning: "6 audio frames, above the limit of 5")
    }

    /// A FileName with a path in it would make the import read outside the feature folders.
    func testFileNameThatIsAPath() throws {
        try csv.replacingOccurrences(of: "1002_A.wav", with: "../../1002_A.wav").write(toFile: labels, atomically: true, encoding: .utf8)
        assertImportFails(file: labels, utterance: "../../1002_A", mentioning: "line 4: FileName must be a plain file name")
    }

    func testDuplicateName() throws {
        try (csv + "1001_B.wav,0.2,0.2,0.6,1001,Male,Test\n").write(toFile: labels, atomically: true, encoding: .utf8)
        assertImportFails(file: labels, utterance: "1001_B", mentioning: "line 7: duplicate FileName (first on line 3)")
    }

    func testLabelThatIsNotANumber() throws {
        try csv.replacingOccurrences(of: "1003_A.wav,0.3,", with: "1003_A.wav,high,")
            .write(toFile: labels, atomically: true, encoding: .utf8)
        assertImportFails(file: labels, utterance: "1003_A", mentioning: "label 'angry' is 'high', not a finite number")
    }

    func testUtteranceWithNoFeaturesAtAll() throws {
        try FileManager.default.removeItem(atPath: "\(video)/1002_A.npy")
        assertImportFails(file: labels, utterance: "1002_A", mentioning: "no features at all")
    }

    func testFortranOrder() throws {
        try writeRawNpy("\(audio)/1001_A.npy", descr: "<f4", shape: "(6, 5)", fortran: true,
                        payload: [UInt8](repeating: 0, count: 6 * 5 * 4))
        assertImportFails(file: "\(audio)/1001_A.npy", utterance: "1001_A", mentioning: "Fortran-order")
    }

    func testUnsupportedDtype() throws {
        try writeRawNpy("\(audio)/1001_A.npy", descr: "<i4", shape: "(6, 5)", payload: [UInt8](repeating: 0, count: 6 * 5 * 4))
        assertImportFails(file: "\(audio)/1001_A.npy", utterance: "1001_A", mentioning: "unsupported dtype '<i4'")
        try writeRawNpy("\(audio)/1001_A.npy", descr: ">f4", shape: "(6, 5)", payload: [UInt8](repeating: 0, count: 6 * 5 * 4))
        assertImportFails(file: "\(audio)/1001_A.npy", utterance: "1001_A", mentioning: "unsupported dtype '>f4'")
    }

    /// A shape whose byte count overflows 64 bits must not wrap around to the file's size
    /// (2⁶² rows × 5 columns × 4 bytes ≡ 0 mod 2⁶⁴; before the check it was imported as 0 frames).
    /// A shape whose byte count overflows: above the frame limit first; with no limit, the
    /// size check itself (checked arithmetic, not a wrapped size that matches the file).
    func testShapeLargerThanAnyFile() throws {
        try writeRawNpy("\(audio)/1001_A.npy", descr: "<f4", shape: "(4611686018427387904, 5)", payload: [])
        assertImportFails(file: "\(audio)/1001_A.npy", utterance: "1001_A", mentioning: "4611686018427387904 audio frames, above the limit")
        let saved = FrameLimit.maximum
        defer { FrameLimit.maximum = saved }
        FrameLimit.maximum = .max
        assertImportFails(file: "\(audio)/1001_A.npy", utterance: "1001_A", mentioning: "larger than any file")
        try writeRawNpy("\(audio)/1001_A.npy", descr: "<f8", shape: "(2305843009213693952, 5)", payload: [])
        assertImportFails(file: "\(audio)/1001_A.npy", utterance: "1001_A", mentioning: "larger than any file")
    }

    func testOneDimensionalArray() throws {
        try writeRawNpy("\(video)/1001_A.npy", descr: "<f4", shape: "(12,)", payload: [UInt8](repeating: 0, count: 48))
        assertImportFails(file: "\(video)/1001_A.npy", utterance: "1001_A", mentioning: "expected a 2-D array")
    }

    func testLabelOutsideTheRange() throws {
        try csv.write(toFile: labels, atomically: true, encoding: .utf8)
        var options = options(.dimensional)
        options.labelColumns = ["angry"]
        options.labelRange = 0.2...1
        assertImportFails(options, file: labels, utterance: "1001_B", mentioning: "outside the label range")
    }

    func testDimensionalNeedsARange() throws {
        assertImportFails(options(.dimensional), file: labels, utterance: nil, mentioning: "--label-range")
    }

    func testAFailedImportKeepsAnExistingOutput() throws {
        try Data("old".utf8).write(to: URL(fileURLWithPath: output))
        try FileManager.default.removeItem(atPath: "\(video)/1002_A.npy")
        assertCorpusError(file: labels, utterance: "1002_A", mentioning: "no features at all") { _ = try importCorpus(options()) }
        XCTAssertEqual(contents(path("out")), ["corpus.h5"])
        XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8), "old")
    }

    // MARK: - The .npy reader

    /// Writes a `.npy` file by hand (so dtypes and orders the writer never makes can be tested).
    func writeRawNpy(_ file: String, descr: String, shape: String, fortran: Bool = false, payload: [UInt8]) throws {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let length = header.utf8.count
        let bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8) + payload
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    func testNpyVersionsAndTypesRoundTrip() throws {
        let values: [Float] = [1.5, -2, 3.25, 0, .pi, -1e-3]
        for (double, version) in [(false, UInt8(1)), (true, UInt8(1)), (false, UInt8(2)), (true, UInt8(3))] {
            let file = path("m.npy")
            try NumpyFile.write(file, rows: 2, columns: 3, values: values, asDouble: double, version: version)
            let matrix = try NumpyFile.read(file)
            XCTAssertEqual(matrix.rows, 2)
            XCTAssertEqual(matrix.columns, 3)
            XCTAssertEqual(matrix.values, values)
            XCTAssertEqual(matrix.storedType, double ? "<f8" : "<f4")
            XCTAssertEqual(try NumpyFile.readHeader(file).shape, [2, 3])
        }
    }

    func testNpyAsNumPyWritesIt() throws {
        // np.save of np.arange(6, dtype=np.float32).reshape(2, 3), byte for byte.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        header += String(repeating: " ", count: 128 - 10 - header.utf8.count - 1) + "\n"
        let payload = (0..<6).flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian) { Array($0) } }
        let bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0] + Array(header.utf8) + payload
        try Data(bytes).write(to: URL(fileURLWithPath: path("np.npy")))
        XCTAssertEqual(try NumpyFile.read(path("np.npy")).values, [0, 1, 2, 3, 4, 5])
    }
}
