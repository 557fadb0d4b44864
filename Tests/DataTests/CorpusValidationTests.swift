import Foundation
import HDF5
import VAVLData
import XCTest

/// One test per problem DESIGN §5 says the reader must report on open, each checking that the
/// message names the file and (where there is one) the offending utterance.
final class CorpusValidationTests: CorpusTestCase {
    /// Writes `corpus` and asserts that opening it fails naming the file and `utterance`.
    @discardableResult
    func assertOpenFails(_ corpus: RawCorpus, utterance: String?, mentioning: String,
                         line: UInt = #line) throws -> String {
        let file = path("bad.h5")
        try corpus.write(file)
        let message = assertCorpusError(file: file, utterance: utterance, mentioning: mentioning, {
            _ = try Corpus.open(file)
        }, line: line)
        // `vavl corpus validate` reports the same problem.
        let report = validateCorpus(file)
        XCTAssertFalse(report.isValid, line: line)
        XCTAssertEqual(report.problems.first, message, line: line)
        return message
    }

    func testTheRawCorpusIsValid() throws {
        try RawCorpus().write(path("good.h5"))
        let corpus = try Corpus.open(path("good.h5"))
        XCTAssertEqual(corpus.ids, ["u0", "u1", "u2"])
        XCTAssertEqual(corpus.splits, [.train, .dev, .test])
        XCTAssertTrue(validateCorpus(path("good.h5")).isValid)
    }

    func testWrongFormat() throws {
        var corpus = RawCorpus()
        corpus.format = "something-else"
        try assertOpenFails(corpus, utterance: nil, mentioning: "not a vavl corpus")
    }

    func testWrongVersion() throws {
        var corpus = RawCorpus()
        corpus.version = 2
        try assertOpenFails(corpus, utterance: nil, mentioning: "unsupported corpus version 2")
    }

    func testNonMonotoneOffsets() throws {
        var corpus = RawCorpus()
        corpus.audioOffsets = [0, 3, 2, 5]
        try assertOpenFails(corpus, utterance: "u1", mentioning: "non-monotone /audio/offsets")
    }

    func testOffsetsPastTheEnd() throws {
        var corpus = RawCorpus()
        corpus.videoOffsets = [0, 2, 2, 6]
        corpus.videoRows = 4
        try assertOpenFails(corpus, utterance: "u2", mentioning: "past the end")
    }

    /// Offsets and an extent claiming two billion audio frames for u2 that the file does not
    /// store (HDF5 would read them as zeros): refused at open, before anything is allocated.
    func testFeaturesTheFileDoesNotHold() throws {
        var corpus = RawCorpus()
        corpus.audioOffsets = [0, 3, 5, 2_000_000_005]
        corpus.audioRows = 5
        corpus.audioPhantomRows = 2_000_000_000
        // The utterance that declares the frames is named first (the frame limit) ...
        try assertOpenFails(corpus, utterance: "u2", mentioning: "2000000000 audio frames, above the limit")
        // ... and with the limit raised past it, the dataset the file cannot hold.
        let saved = FrameLimit.maximum
        defer { FrameLimit.maximum = saved }
        FrameLimit.maximum = 3_000_000_000
        try assertOpenFails(corpus, utterance: nil, mentioning: "chunks of the extent [2000000005, 4] are stored")
    }

    /// An utterance above the frame limit is refused naming it (`--max-frames` raises it).
    func testUtteranceAboveTheFrameLimit() throws {
        let saved = FrameLimit.maximum
        defer { FrameLimit.maximum = saved }
        FrameLimit.maximum = 2
        try assertOpenFails(RawCorpus(), utterance: "u0", mentioning: "3 audio frames, above the limit of 2 per utterance")
        FrameLimit.maximum = 3
        try RawCorpus().write(path("fits.h5"))
        XCTAssertEqual(try Corpus.open(path("fits.h5")).utteranceCount, 3)
    }

    func testOffsetCountMismatch() throws {
        var corpus = RawCorpus()
        corpus.audioOffsets = [0, 3, 5]  // u2 has no end offset
        try assertOpenFails(corpus, utterance: "u2", mentioning: "dimension mismatch: /audio/offsets has 3 entries")
    }

    func testDeclaredDimensionMismatch() throws {
        var corpus = RawCorpus()
        corpus.audioDeclaredDimension = 5
        try assertOpenFails(corpus, utterance: nil, mentioning: "dimension mismatch: /audio declares dimension 5")
    }

    func testLabelRowsDifferFromUtterances() throws {
        var corpus = RawCorpus()
        corpus.labels = [0.9, 0.1, 0.2, 0.8]  // two rows for three utterances
        try assertOpenFails(corpus, utterance: "u2", mentioning: "/labels has 2 rows for 3 utterances")
    }

    func testLabelColumnsDifferFromLabelNames() throws {
        var corpus = RawCorpus()
        corpus.labels = [0.9, 0.1, 0.0, 0.2, 0.8, 0.0, 0.5, 0.5, 0.0]
        corpus.labelShape = [3, 3]
        try assertOpenFails(corpus, utterance: nil, mentioning: "dimension mismatch: /labels has 3 columns")
    }

    func testNaNInLabels() throws {
        var corpus = RawCorpus()
        corpus.labels[3] = .nan
        try assertOpenFails(corpus, utterance: "u1", mentioning: "label 'b' is nan")
    }

    func testInfInLabels() throws {
        var corpus = RawCorpus()
        corpus.labels[4] = -.infinity
        try assertOpenFails(corpus, utterance: "u2", mentioning: "label 'a' is -inf")
    }

    func testUnknownSplit() throws {
        var corpus = RawCorpus()
        corpus.splits = ["train", "validation", "test"]
        try assertOpenFails(corpus, utterance: "u1", mentioning: "unknown split 'validation'")
    }

    func testDuplicateIDs() throws {
        var corpus = RawCorpus()
        corpus.ids = ["u0", "u1", "u0"]
        try assertOpenFails(corpus, utterance: "u0", mentioning: "duplicate id (rows 0 and 2)")
    }

    func testUtteranceWithNeitherModality() throws {
        var corpus = RawCorpus()
        corpus.videoOffsets = [0, 2, 2, 2]
        try assertOpenFails(corpus, utterance: "u2", mentioning: "neither audio nor video")
    }

    func testMissingLabelRangeForDimensional() throws {
        var corpus = RawCorpus()
        corpus.task = "dimensional"
        try assertOpenFails(corpus, utterance: nil, mentioning: "label_range")
    }

    func testNotAnHDF5File() throws {
        let file = path("text.h5")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: file))
        assertCorpusError(file: file, utterance: nil, mentioning: "not an HDF5 file") { _ = try Corpus.open(file) }
        assertCorpusError(file: path("missing.h5"), utterance: nil, mentioning: "no such file") {
            _ = try Corpus.open(self.path("missing.h5"))
        }
    }

    // MARK: - Feature values

    func testNaNInFeaturesStopsTheReadOfThatUtterance() throws {
        var raw = RawCorpus()
        raw.poison = (.audio, 3 * 4 + 6)  // u1's audio (rows 3..<5), frame 1, dimension 2
        let file = path("nan.h5")
        try raw.write(file)
        let corpus = try Corpus.open(file)  // open does not scan the features
        XCTAssertEqual(try corpus.frames(.audio, utterance: 0).count, 12)
        assertCorpusError(file: file, utterance: "u1", mentioning: "audio feature nan at frame 1, dimension 2") {
            _ = try corpus.frames(.audio, utterance: 1)
        }
        let report = validateCorpus(file)
        XCTAssertEqual(report.problems.count, 1)
        let problem = report.problems.first ?? ""
        XCTAssertTrue(problem.contains(file) && problem.contains("'u1'"), problem)
    }

    func testInfInVideoFeatures() throws {
        let raw = RawCorpus()
        let file = path("inf.h5")
        try raw.write(file)
        let h5 = try HDF5File.open(file, writable: true)
        var values = raw.values(.video)
        values[7] = .infinity
        try h5.openDataset("video/features").write(values)
        h5.close()
        let corpus = try Corpus.open(file)
        assertCorpusError(file: file, utterance: "u2", mentioning: "video feature inf at frame 0, dimension 1") {
            _ = try corpus.frames(.video, utterance: 2)
        }
    }

    // MARK: - What other tools write

    func testFixedLengthStringsAndFloat64FeaturesAreAccepted() throws {
        var raw = RawCorpus()
        raw.fixedLengthStrings = true
        raw.featuresAsDouble = true
        let file = path("h5py-style.h5")
        try raw.write(file)
        let corpus = try Corpus.open(file)
        XCTAssertEqual(corpus.ids, ["u0", "u1", "u2"])
        XCTAssertEqual(corpus.speakers, ["s0", "s0", "s1"])
        XCTAssertEqual(try corpus.frames(.audio, utterance: 1), Array(raw.values(.audio)[12..<20]))
        XCTAssertEqual(try corpus.frames(.video, utterance: 2), Array(raw.values(.video)[6..<12]))
        XCTAssertTrue(validateCorpus(file).isValid)
    }
}
