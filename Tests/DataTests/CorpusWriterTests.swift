import Foundation
import HDF5
import VAVLData
import XCTest

/// Writing and reading back: exact round trips, row-range reads across chunk boundaries,
/// atomicity and concurrent reads.
final class CorpusWriterTests: CorpusTestCase {
    let description = CorpusDescription(task: .dimensional, labelNames: ["arousal", "valence"], labelRange: 1...5,
                                        audioDimension: 3, videoDimension: 2)

    /// Frames of utterance `index` with `frames` rows: distinct, recognisable values.
    func frames(_ index: Int, _ frames: Int, _ dimension: Int, offset: Float) -> [Float] {
        (0..<(frames * dimension)).map { offset + Float(index * 1000 + $0) }
    }

    struct Row { var id: String; var split: Split; var audioFrames: Int; var videoFrames: Int }
    let rows = [
        Row(id: "a", split: .train, audioFrames: 7, videoFrames: 4),
        Row(id: "b", split: .train, audioFrames: 0, videoFrames: 5),  // video only
        Row(id: "c", split: .dev, audioFrames: 1, videoFrames: 0),    // audio only
        Row(id: "d", split: .test, audioFrames: 5, videoFrames: 3),
        Row(id: "é-ünïcode", split: .train, audioFrames: 4, videoFrames: 1),
    ]

    func writeRows(_ file: String, chunkRows: (audio: Int, video: Int)? = (3, 2)) throws {
        let writer = try CorpusWriter(path: file, description: description, chunkRows: chunkRows)
        for (index, row) in rows.enumerated() {
            try writer.append(id: row.id, speaker: "spk\(index % 2)", split: row.split,
                              labels: [Float(index) + 1, 5 - Float(index) * 0.5],
                              audio: frames(index, row.audioFrames, 3, offset: 0.25),
                              video: frames(index, row.videoFrames, 2, offset: -0.5))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: file), "the output must not exist before finish()")
        XCTAssertTrue(FileManager.default.fileExists(atPath: writer.temporaryPath))
        try writer.finish()
    }

    func testRoundTripEqualsWhatWasWritten() throws {
        let file = path("round.h5")
        try writeRows(file)
        XCTAssertEqual(contents(), ["round.h5"], "no temporary file is left")
        let corpus = try Corpus.open(file)
        XCTAssertEqual(corpus.task, .dimensional)
        XCTAssertEqual(corpus.labelNames, ["arousal", "valence"])
        XCTAssertEqual(corpus.labelRange, 1...5)
        XCTAssertEqual(corpus.audioFramesPerSecond, 50)
        XCTAssertEqual(corpus.videoFramesPerSecond, 30)
        XCTAssertEqual(corpus.ids, rows.map(\.id))
        XCTAssertEqual(corpus.speakers, ["spk0", "spk1", "spk0", "spk1", "spk0"])
        XCTAssertEqual(corpus.splits, rows.map(\.split))
        XCTAssertEqual(corpus.utteranceCount, 5)
        XCTAssertEqual(corpus.labelCount, 2)
        XCTAssertEqual(corpus.labels, rows.indices.flatMap { [Float($0) + 1, 5 - Float($0) * 0.5] })
        XCTAssertEqual(corpus.dimension(.audio), 3)
        XCTAssertEqual(corpus.dimension(.video), 2)
        XCTAssertEqual(corpus.utterances(in: .train), [0, 1, 4])
        XCTAssertEqual(corpus.utterances(in: .dev), [2])
        XCTAssertEqual(corpus.utterances(in: .test), [3])
        for (index, row) in rows.enumerated() {
            XCTAssertEqual(corpus.frameCount(.audio, utterance: index), row.audioFrames)
            XCTAssertEqual(corpus.frameCount(.video, utterance: index), row.videoFrames)
            XCTAssertEqual(try corpus.frames(.audio, utterance: index), frames(index, row.audioFrames, 3, offset: 0.25))
            XCTAssertEqual(try corpus.frames(.video, utterance: index), frames(index, row.videoFrames, 2, offset: -0.5))
        }
        XCTAssertTrue(validateCorpus(file).isValid)
    }

    /// Reads go by row range: each utterance comes out of the middle of chunked datasets
    /// (chunks of 3 and 2 rows here, so utterances start and end inside chunks), into the
    /// front of a larger buffer whose tail is left untouched.
    func testRowRangeReadsTouchOnlyTheirRows() throws {
        let file = path("rows.h5")
        try writeRows(file)
        let corpus = try Corpus.open(file)
        XCTAssertEqual(corpus.rows(.audio, utterance: 3), 8..<13)
        XCTAssertEqual(corpus.rows(.video, utterance: 1), 4..<9)
        var buffer = [Float](repeating: -7, count: 40)
        try buffer.withUnsafeMutableBufferPointer { try corpus.readFrames(.audio, utterance: 3, into: $0) }
        XCTAssertEqual(Array(buffer[0..<15]), frames(3, 5, 3, offset: 0.25))
        XCTAssertEqual(Array(buffer[15...]), [Float](repeating: -7, count: 25))
        // A missing modality reads nothing.
        try buffer.withUnsafeMutableBufferPointer { try corpus.readFrames(.video, utterance: 2, into: $0) }
        XCTAssertEqual(buffer[0], frames(3, 5, 3, offset: 0.25)[0])
        // A too-small destination is an error naming the utterance, not a crash.
        var small = [Float](repeating: 0, count: 14)
        assertCorpusError(file: file, utterance: "d", mentioning: "destination holds 14 values") {
            try small.withUnsafeMutableBufferPointer { try corpus.readFrames(.audio, utterance: 3, into: $0) }
        }
        // The features are chunked as asked and reading one utterance reads its rows only:
        // the same values come back through the HDF5 wrapper's hyperslab read.
        let h5 = try HDF5File.open(file)
        XCTAssertEqual(try h5.openDataset("audio/features").readRows(8..<13, as: Float.self), frames(3, 5, 3, offset: 0.25))
    }

    func testDefaultChunkingRoundTrips() throws {
        let file = path("default.h5")
        try writeRows(file, chunkRows: nil)
        let corpus = try Corpus.open(file)
        for (index, row) in rows.enumerated() {
            XCTAssertEqual(try corpus.frames(.audio, utterance: index), frames(index, row.audioFrames, 3, offset: 0.25))
        }
        XCTAssertEqual(CorpusWriter.defaultChunkRows(dimension: 1024), 64)
        XCTAssertEqual(CorpusWriter.defaultChunkRows(dimension: 1408), 46)
    }

    func testConcurrentReadsEqualSerialReads() throws {
        let file = path("threads.h5")
        let writer = try CorpusWriter(path: file, description: description, chunkRows: (5, 5))
        for index in 0..<60 {
            try writer.append(id: "u\(index)", speaker: "s", split: .train, labels: [1, 2],
                              audio: frames(index, 3 + index % 11, 3, offset: 0), video: frames(index, 2 + index % 5, 2, offset: 0))
        }
        try writer.finish()
        let corpus = try Corpus.open(file)
        let expected = try (0..<60).map { try corpus.frames(.audio, utterance: $0) + corpus.frames(.video, utterance: $0) }
        let lock = NSLock()
        var mismatches = 0
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<200 {
                let utterance = (worker * 37 + round * 13) % 60
                let got = (try? corpus.frames(.audio, utterance: utterance) + corpus.frames(.video, utterance: utterance)) ?? []
                if got != expected[utterance] { lock.lock(); mismatches += 1; lock.unlock() }
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    // MARK: - Atomicity

    func testAnAbandonedWriterLeavesNothing() throws {
        let file = path("abandoned.h5")
        do {
            let writer = try CorpusWriter(path: file, description: description)
            try writer.append(id: "a", speaker: "s", split: .train, labels: [1, 2], audio: [1, 2, 3], video: [])
            XCTAssertEqual(contents().count, 1)  // the temporary file
        }  // released without finish()
        XCTAssertEqual(contents(), [])

        let writer = try CorpusWriter(path: file, description: description)
        try writer.append(id: "a", speaker: "s", split: .train, labels: [1, 2], audio: [1, 2, 3], video: [])
        writer.cancel()
        XCTAssertEqual(contents(), [])
    }

    func testAFailedAppendRemovesTheTemporaryFileAndKeepsAnExistingOutput() throws {
        let file = path("kept.h5")
        try Data("previous corpus".utf8).write(to: URL(fileURLWithPath: file))
        let writer = try CorpusWriter(path: file, description: description)
        try writer.append(id: "a", speaker: "s", split: .train, labels: [1, 2], audio: [1, 2, 3], video: [1, 2])
        assertCorpusError(file: file, utterance: "b", mentioning: "audio feature nan at frame 1, dimension 0") {
            try writer.append(id: "b", speaker: "s", split: .train, labels: [1, 2], audio: [1, 2, 3, .nan, 0, 0], video: [])
        }
        XCTAssertEqual(contents(), ["kept.h5"])
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "previous corpus")
        assertCorpusError(file: file, utterance: nil, mentioning: "abandoned") { try writer.finish() }
    }

    func testWriterRejectsBadUtterances() throws {
        let file = path("w.h5")
        func attempt(_ id: String, labels: [Float] = [1, 2], audio: [Float] = [1, 2, 3], video: [Float] = [],
                     mentioning: String, utterance: String? = nil) throws {
            let writer = try CorpusWriter(path: file, description: description)
            try writer.append(id: "first", speaker: "s", split: .train, labels: [1, 2], audio: [0, 0, 0], video: [])
            assertCorpusError(file: file, utterance: utterance ?? id, mentioning: mentioning) {
                try writer.append(id: id, speaker: "s", split: .dev, labels: labels, audio: audio, video: video)
            }
            XCTAssertEqual(contents(), [], "nothing may be left after \(mentioning)")
        }
        try attempt("first", mentioning: "duplicate id")
        try attempt("x", labels: [1], mentioning: "1 labels, expected 2")
        try attempt("x", labels: [1, .infinity], mentioning: "label 'valence' is inf")
        try attempt("x", audio: [], video: [], mentioning: "neither audio nor video")
        try attempt("x", audio: [1, 2], mentioning: "not whole frames of dimension 3")
        try attempt("x", video: [.nan, 1], mentioning: "video feature nan at frame 0, dimension 0")
    }

    func testAnEmptyCorpusIsNotWritten() throws {
        let file = path("empty.h5")
        let writer = try CorpusWriter(path: file, description: description)
        assertCorpusError(file: file, utterance: nil, mentioning: "no utterances") { try writer.finish() }
        XCTAssertEqual(contents(), [])
    }

    /// A writer's temporary file is registered for the interrupt handlers before it exists
    /// (an interrupt between creating and registering it once left it behind): each name is
    /// announced before it is tried and withdrawn if it was not created.
    func testTemporaryNamesAreAnnouncedBeforeTheFileExists() throws {
        var announced: [String] = [], withdrawn: [String] = []
        let created = try SafeFiles.createTemporary(for: path("t.h5"), hidden: true, willCreate: { name in
            XCTAssertFalse(FileManager.default.fileExists(atPath: name), "announced after it was created")
            announced.append(name)
        }, notCreated: { withdrawn.append($0) })
        XCTAssertEqual(announced, [created])
        XCTAssertEqual(withdrawn, [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: created))
        announced = []
        XCTAssertThrowsError(try SafeFiles.createTemporary(for: path("missing/t.h5"), willCreate: { announced.append($0) },
                                                           notCreated: { withdrawn.append($0) }))
        XCTAssertEqual(announced.count, 1)
        XCTAssertEqual(withdrawn, announced, "a name that was not created is withdrawn")
    }

    func testDescriptionsAreChecked() throws {
        let file = path("d.h5")
        var bad = description
        bad.labelRange = nil
        assertCorpusError(file: file, utterance: nil, mentioning: "needs its label range") {
            _ = try CorpusWriter(path: file, description: bad)
        }
        bad = description
        bad.task = .sentiment
        assertCorpusError(file: file, utterance: nil, mentioning: "exactly one label column") {
            _ = try CorpusWriter(path: file, description: bad)
        }
        XCTAssertEqual(contents(), [])
    }
}
