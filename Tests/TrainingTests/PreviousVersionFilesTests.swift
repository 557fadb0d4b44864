import Foundation
import VAVLExperiments
import XCTest

/// Result files written by the previous vavl (Fixtures/vavl-0.9, made by the commands in its
/// README) stay readable: repeated runs, their per-run files, a comparison and a metrics
/// log — by the library, by `compare` (which adds the spread test they lack) and by
/// `report` and `plot`.
final class PreviousVersionFilesTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/vavl-0.9").path

    func testPreviousVersionResultFilesRead() throws {
        let a = try ExperimentFile.read(RepeatedRuns.self, from: fixtures + "/rep-a/repeat.json")
        let b = try ExperimentFile.read(RepeatedRuns.self, from: fixtures + "/rep-b/repeat.json")
        XCTAssertEqual(a.runs.count, 3)
        XCTAssertEqual(a.labelNames.count, 6)
        XCTAssertNotNil(a.summary["audio_visual"]?["f1_macro"])
        let run = try ExperimentFile.read(RunScores.self, from: fixtures + "/rep-a/seed-1/run.json")
        XCTAssertEqual(run.seed, 1)
        let stored = try ExperimentFile.read(Comparison.self, from: fixtures + "/compare.json")
        XCTAssertFalse(stored.rows.isEmpty)
        XCTAssertTrue(stored.rows.allSatisfy { $0.spreadTest == nil }, "written before the spread test existed")
        // Compared again today: the same t-tests, and the spread test added.
        let again = try Comparison.compare(a, file: "a", b, file: "b")
        XCTAssertEqual(again.rows.count, stored.rows.count)
        for (new, old) in zip(again.rows, stored.rows) {
            XCTAssertEqual(new.test.p.isNaN ? -1 : new.test.p, old.test.p.isNaN ? -1 : old.test.p, accuracy: 1e-12, "\(new.head) \(new.metric)")
            XCTAssertNotNil(new.spreadTest)
        }
        let curves = try TrainingCurves(metricsFile: fixtures + "/rep-a/seed-1/metrics.jsonl")
        XCTAssertEqual(Set(curves.trainingLoss.keys), ["acoustic", "visual", "audio_visual"])
        XCTAssertEqual(curves.trainingLoss["acoustic"]?.count, 2, "two epochs")
        XCTAssertEqual(curves.metric, "f1_macro")
    }

    func testReportAndPlotReadPreviousVersionFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vavl-previous-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let report = try VAVLBinary.run(["report", "--results", fixtures, "--output", folder + "/report.md"])
        XCTAssertEqual(report.status, 0, report.error)
        let text = try String(contentsOfFile: folder + "/report.md", encoding: .utf8)
        XCTAssertTrue(text.contains("0.") && text.lowercased().contains("repeat"), text)
        let plot = try VAVLBinary.run(["plot", fixtures + "/rep-a/seed-1/metrics.jsonl", "--output", folder + "/old"])
        XCTAssertEqual(plot.status, 0, plot.error)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/old-loss.svg"))
    }
}
