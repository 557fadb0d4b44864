import Foundation
import VAVLData
import XCTest

/// The `vavl corpus` commands, run as the built binary (skipped if it has not been built
/// next to the test bundle, e.g. `swift build --build-tests` builds both).
final class CorpusCommandTests: CorpusTestCase {
    var binary: String {
        get throws {
            // The test bundle (or, on Linux, the folder holding it) sits next to the vavl binary.
            let bundle = Bundle(for: CorpusCommandTests.self).bundleURL
            let candidates = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("vavl").path }
            let path = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
            try XCTSkipUnless(path != nil, "no vavl binary at \(candidates)")
            return path!
        }
    }

    /// Runs `vavl arguments…`, returning the exit status, stdout and stderr.
    /// With `interruptWhen`, sends SIGINT as soon as it returns true (polled every 10 ms, 20 s at most).
    func run(_ arguments: [String], interruptWhen: (() -> Bool)? = nil) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary)
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        if let interruptWhen {
            let deadline = Date().addingTimeInterval(20)
            while !interruptWhen() && Date() < deadline && process.isRunning { Thread.sleep(forTimeInterval: 0.01) }
            process.interrupt()  // SIGINT
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func testSynthInspectValidate() throws {
        let file = path("c.h5")
        let synth = try run(["corpus", "synth", "--preset", "crema-d", "--output", file, "--dims", "8,6",
                             "--utterances", "30", "--audio-only-fraction", "0.2", "--seed", "5"])
        XCTAssertEqual(synth.status, 0, synth.error)
        XCTAssertTrue(synth.output.contains("30 utterances (24 audio+video, 6 audio-only, 0 video-only)"), synth.output)
        let inspect = try run(["corpus", "inspect", file, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.error)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase  // the report's keys are snake_case
        let summary = try decoder.decode(CorpusSummary.self, from: Data(inspect.output.utf8))
        XCTAssertEqual(summary.utterances, 30)
        XCTAssertEqual(summary.frames.map(\.dimension), [8, 6])
        let validate = try run(["corpus", "validate", file])
        XCTAssertEqual(validate.status, 0, validate.error)
        XCTAssertTrue(validate.output.contains("valid"))
    }

    func testValidateAndInspectExitNonZeroNamingTheFileAndUtterance() throws {
        var raw = RawCorpus()
        raw.splits = ["train", "train", "holdout"]
        let file = path("bad.h5")
        try raw.write(file)
        for command in ["validate", "inspect"] {
            let result = try run(["corpus", command, file])
            XCTAssertEqual(result.status, 1)
            XCTAssertTrue(result.error.contains(file) && result.error.contains("'u2'") && result.error.contains("holdout"), result.error)
        }
    }

    func testImportFailureExitsNonZeroWithoutOutput() throws {
        try FileManager.default.createDirectory(atPath: path("a"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path("v"), withIntermediateDirectories: true)
        try "FileName,x,SpkrID,Gender,Split_Set\nu1.wav,0.5,1,Male,Train\n".write(toFile: path("l.csv"), atomically: true, encoding: .utf8)
        try NumpyFile.write(path("a/u1.npy"), rows: 2, columns: 2, values: [1, 2, 3, .nan])
        try NumpyFile.write(path("v/u1.npy"), rows: 2, columns: 2, values: [1, 2, 3, 4])
        let result = try run(["corpus", "import", "--labels", path("l.csv"), "--audio", path("a"), "--video", path("v"),
                              "--task", "sentiment", "--output", path("out.h5")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains(path("a/u1.npy")) && result.error.contains("'u1'"), result.error)
        XCTAssertFalse(contents().contains { $0.contains("out.h5") }, "\(contents())")
    }

    /// SIGINT during a write removes the temporary file; no corpus appears.
    func testInterruptedSynthLeavesNothing() throws {
        var sawPartialFile = false
        let result = try run(["corpus", "synth", "--preset", "mosei", "--output", path("big.h5"), "--dims", "256,256"]) {
            sawPartialFile = self.contents().contains { $0.hasPrefix(".big.h5.partial-") }
            return sawPartialFile
        }
        XCTAssertTrue(sawPartialFile, "the temporary file never appeared")
        XCTAssertNotEqual(result.status, 0, "the synth finished before the interrupt: \(result.output)")
        XCTAssertEqual(contents(), [], "left behind: \(contents())")
    }
}
