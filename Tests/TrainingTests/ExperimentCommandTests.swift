import Foundation
import MPI
import VAVLCore
import VAVLData
@testable import VAVLExperiments
import VAVLTraining
import XCTest

/// `vavl experiment …` and `vavl report` end to end, as the built binary, on a tiny corpus
/// (12/10 dims, 90 utterances with audio-only and video-only ones, `--model tiny`, a few
/// iterations): every command runs, writes what it says, and reads back.
final class ExperimentCommandTests: XCTestCase {
    static var corpus: TinyCorpus!
    static var checkpoint: String!
    /// Flags that make a training run take a couple of seconds in a debug build.
    static let quick = ["--model", "tiny", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3", "--max-iterations", "2",
                        "--threads", "1", "--quiet"]

    override class func setUp() {
        corpus = try! TinyCorpus()
        let out = corpus.subfolder("experiment-run")
        let result = try! VAVLBinary.run(["train", "--corpus", corpus.path, "--out", out] + quick)
        precondition(result.status == 0, "training failed: \(result.error)")
        checkpoint = out + "/checkpoint-last.h5"
    }

    override class func tearDown() { corpus = nil }

    func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try VAVLBinary.run(arguments)
        XCTAssertEqual(result.status, 0, "vavl \(arguments.joined(separator: " ")):\n\(result.error)\n\(result.output)", file: file, line: line)
        return result.output
    }

    func testRobustnessSweepWritesTableJSONAndPlot() throws {
        let corpus = Self.corpus!
        let out = corpus.subfolder("robustness")
        for modality in ["audio", "video"] {
            let output = try run(["experiment", "robustness", "--checkpoint", Self.checkpoint, "--corpus", corpus.path,
                                  "--modality", modality, "--seed", "3", "--out", out])
            XCTAssertTrue(output.contains("masked \(modality) frames (%)"), output)
            let sweep = try ExperimentFile.read(RobustnessSweep.self, from: out + "/robustness-\(modality).json")
            XCTAssertEqual(sweep.points.map(\.percent), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90])
            XCTAssertEqual(sweep.maskedModality, modality)
            XCTAssertEqual(sweep.referenceModality, modality == "audio" ? "video" : "audio")
            XCTAssertEqual(sweep.metric, "f1_macro")
            XCTAssertEqual(sweep.plot, "robustness-\(modality).svg")
            let svg = try String(contentsOfFile: out + "/robustness-\(modality).svg", encoding: .utf8)
            XCTAssertTrue(svg.contains("<svg") && svg.contains("% of masked \(modality) frames"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/robustness-\(modality).txt"))
        }
        // The 0 % point is the plain evaluation; the reference is the other modality's unmasked head.
        let trained = try TrainedModel(checkpoint: Self.checkpoint)
        let file = try Corpus.open(corpus.path)
        let plain = try EvaluationReport.evaluate(trained, corpus: file, split: .test, masking: FrameMasking(), communicator: .selfOnly)
        let audio = try ExperimentFile.read(RobustnessSweep.self, from: out + "/robustness-audio.json")
        // (This process and the binary may split BLAS work differently: the loss agrees to rounding.)
        func assertSame(_ a: HeadScores?, _ b: HeadScores?, _ what: String, line: UInt = #line) {
            guard let a, let b else { return XCTFail("\(what) missing", line: line) }
            XCTAssertEqual(a.count, b.count, what, line: line)
            XCTAssertEqual(Set(a.metrics.keys), Set(b.metrics.keys), what, line: line)
            for (name, value) in a.metrics { XCTAssertEqual(value, b.metrics[name]!, accuracy: 1e-6, "\(what) \(name)", line: line) }
        }
        assertSame(audio.points[0].audioVisual, plain.heads["audio_visual"], "AV at 0 %")
        assertSame(audio.reference, plain.heads["video"], "reference")
        let masked = try EvaluationReport.evaluate(trained, corpus: file, split: .test,
                                                   masking: FrameMasking(audioPercent: 60, seed: 3), communicator: .selfOnly)
        assertSame(audio.points[6].audioVisual, masked.heads["audio_visual"], "AV at 60 %")
        assertSame(audio.points[6].maskedUnimodal, masked.heads["audio"], "audio-only at 60 %")
        XCTAssertNotEqual(audio.points[6].maskedUnimodal, audio.points[0].maskedUnimodal, "masking changes the audio-only scores")
    }

    func testEmbeddingPrintsAndWritesTheDistances() throws {
        let json = Self.corpus.subfolder("embedding") + "/embedding.json"
        let output = try run(["experiment", "embedding", "--checkpoint", Self.checkpoint, "--corpus", Self.corpus.path, "--out", json])
        XCTAssertTrue(output.contains("r_a vs r_v, same utterance"), output)
        let analysis = try ExperimentFile.read(EmbeddingAnalysis.self, from: json)
        XCTAssertEqual(analysis.dimension, 16)
        XCTAssertGreaterThan(analysis.count, 0)
        XCTAssertTrue((0...2).contains(analysis.paired.mean))
        XCTAssertLessThanOrEqual(analysis.paired.firstQuartile, analysis.paired.median)
        XCTAssertTrue(FileManager.default.fileExists(atPath: Self.corpus.folder + "/embedding/embedding.txt"))
    }

    func testAblationsTrainEverySystemOnceAndWriteOneTablePerHead() throws {
        let out = Self.corpus.folder + "/ablations"
        let output = try run(["experiment", "ablations", "--corpus", Self.corpus.path, "--out", out, "--seed", "4"] + Self.quick)
        let study = try ExperimentFile.read(AblationStudy.self, from: out + "/ablations.json")
        XCTAssertEqual(study.systems.map(\.system), ExperimentSystem.allCases)
        XCTAssertEqual(Set(study.systems.map(\.seed)), [4], "one seed for all")
        let bySystem = Dictionary(uniqueKeysWithValues: study.systems.map { ($0.system, $0) })
        XCTAssertEqual(Set(bySystem[.vavl]!.heads.keys), ["audio_visual", "audio", "video"])
        XCTAssertEqual(Set(bySystem[.unimodalAudio]!.heads.keys), ["audio"])
        XCTAssertEqual(Set(bySystem[.unimodalVideo]!.heads.keys), ["video"])
        XCTAssertFalse(bySystem[.noResidual]!.configuration.residual)
        XCTAssertEqual(bySystem[.noReconstruction]!.configuration.alpha, 0)
        XCTAssertFalse(bySystem[.noAudioVisualHead]!.configuration.audioVisualHead)
        XCTAssertTrue(bySystem[.vavl]!.configuration.residual && bySystem[.vavl]!.configuration.audioVisualHead)
        // The ablations really are different models: their checkpoints hold different parameters.
        let noReconstruction = try Checkpoint.configuration(bySystem[.noReconstruction]!.checkpoint!)
        XCTAssertFalse(VAVLModel(noReconstruction).store.parameters.contains { $0.name.hasPrefix("recon_") })
        // Same test utterances for every system of a head.
        XCTAssertEqual(bySystem[.vavl]!.heads["audio"]!.count, bySystem[.unimodalAudio]!.heads["audio"]!.count)
        for head in ["audio_visual", "audio", "video"] {
            let table = try String(contentsOfFile: out + "/ablations-\(head).md", encoding: .utf8)
            XCTAssertTrue(table.contains("| vavl |"), table)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/ablations-\(head).json"))) as? [String: Any]
            XCTAssertEqual(json?["head"] as? String, head)
        }
        XCTAssertTrue(try String(contentsOfFile: out + "/ablations-audio.md", encoding: .utf8).contains("| unimodal-audio |"))
        XCTAssertFalse(try String(contentsOfFile: out + "/ablations-audio_visual.md", encoding: .utf8).contains("unimodal"))
        XCTAssertTrue(output.contains("visual (video-only) head"), output)
        // Run again: every finished system is reused, nothing is retrained.
        let again = try run(["experiment", "ablations", "--corpus", Self.corpus.path, "--out", out, "--seed", "4",
                             "--systems", "vavl,unimodal-video"] + Self.quick)
        XCTAssertEqual(again.components(separatedBy: "reusing the finished run").count - 1, 2, again)
        // A changed flag retrains (it is another configuration).
        let changed = try run(["experiment", "ablations", "--corpus", Self.corpus.path, "--out", out, "--seed", "5",
                               "--systems", "unimodal-video"] + Self.quick)
        XCTAssertFalse(changed.contains("reusing"), changed)
    }

    func testRepeatPartitionsCompareAndReport() throws {
        let corpus = Self.corpus!
        let root = corpus.subfolder("repeat")
        // Partition files for the corpus, then runs over them.
        let partitionOutput = try run(["experiment", "partitions", "--corpus", corpus.path, "--count", "3", "--out", root + "/partitions"])
        XCTAssertTrue(partitionOutput.contains("partition3.csv"), partitionOutput)
        let partitions = (1...3).map { root + "/partitions/partition\($0).csv" }
        _ = try run(["experiment", "repeat", "--corpus", corpus.path, "--out", root + "/vavl-partitions",
                     "--partitions", partitions.joined(separator: ",")] + Self.quick)
        let overPartitions = try ExperimentFile.read(RepeatedRuns.self, from: root + "/vavl-partitions/repeat.json")
        XCTAssertEqual(overPartitions.pairing, "partitions")
        XCTAssertEqual(overPartitions.runs.map(\.label), ["partition1.csv", "partition2.csv", "partition3.csv"])
        XCTAssertEqual(Set(overPartitions.runs.map(\.key)).count, 3)
        // The test split of each run is the partition's.
        let file = try Corpus.open(corpus.path)
        for (run, partition) in zip(overPartitions.runs, partitions) {
            let assignment = try SplitAssignment(partitionFile: partition, corpus: file)
            let paired = assignment.rows(in: .test).filter { file.has(.audio, utterance: $0) && file.has(.video, utterance: $0) }
            XCTAssertEqual(run.heads["audio_visual"]?.count, paired.count)
        }
        // Two systems over the same seeds: a paired comparison; against the partitions: Welch.
        for system in ["vavl", "no-residual"] {
            let output = try run(["experiment", "repeat", "--system", system, "--corpus", corpus.path, "--out", root + "/\(system)-seeds",
                                  "--seeds", "1,2,3"] + Self.quick)
            XCTAssertTrue(output.contains("mean ± sample std"), output)
        }
        let seeds = try ExperimentFile.read(RepeatedRuns.self, from: root + "/vavl-seeds/repeat.json")
        XCTAssertEqual(seeds.runs.map(\.seed), [1, 2, 3])
        XCTAssertEqual(seeds.runs.map(\.configuration.seed), [1, 2, 3])
        let f1 = seeds.runs.map { $0.heads["audio_visual"]!.metrics["f1_macro"]! }
        XCTAssertEqual(seeds.summary["audio_visual"]!["f1_macro"]!.mean, Statistics.mean(f1), accuracy: 1e-12)
        XCTAssertEqual(seeds.summary["audio_visual"]!["f1_macro"]!.std, Statistics.sampleStandardDeviation(f1), accuracy: 1e-12)
        let paired = try run(["experiment", "compare", root + "/vavl-seeds/repeat.json", root + "/no-residual-seeds/repeat.json",
                              "--json", root + "/comparison.json"])
        XCTAssertTrue(paired.contains("paired t-test"), paired)
        let comparison = try ExperimentFile.read(Comparison.self, from: root + "/comparison.json")
        XCTAssertEqual(comparison.test, .paired)
        XCTAssertEqual(comparison.rows.count, 9, "three heads × F1-macro, F1-micro, accuracy")
        let welch = try run(["experiment", "compare", root + "/vavl-seeds/repeat.json", root + "/vavl-partitions/repeat.json"])
        XCTAssertTrue(welch.contains("Welch's t-test"), welch)
        // A robustness sweep too, then one report over all of it.
        _ = try run(["experiment", "robustness", "--checkpoint", Self.checkpoint, "--corpus", corpus.path, "--modality", "audio",
                     "--out", root + "/robustness"])
        let report = root + "/report/report.md"
        let reportOutput = try run(["report", "--results", root, "--output", report])
        XCTAssertTrue(reportOutput.contains("from 5 result file(s)"), reportOutput)
        let text = try String(contentsOfFile: report, encoding: .utf8)
        for section in ["## Robustness to missing frames", "## Repeated runs", "## Significance", "| audio-visual |", "± "] {
            XCTAssertTrue(text.contains(section), "\(section) missing from\n\(text)")
        }
        XCTAssertFalse(text.contains("## Ablations"), "no ablation results were given")
        // The plot link resolves from the report's folder.
        let link = try XCTUnwrap(text.components(separatedBy: "](").dropFirst().first?.components(separatedBy: ")").first)
        XCTAssertEqual(link, "../robustness/robustness-audio.svg")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/report/" + link))
    }

    func testBadExperimentInputsAreClearErrors() throws {
        let corpus = Self.corpus!
        let both = try VAVLBinary.run(["experiment", "repeat", "--corpus", corpus.path, "--out", corpus.folder + "/bad",
                                       "--seeds", "1,2", "--partitions", "x.csv"] + Self.quick)
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.error.contains("--seeds or --partitions"), both.error)
        let unknown = try VAVLBinary.run(["experiment", "ablations", "--corpus", corpus.path, "--out", corpus.folder + "/bad",
                                          "--systems", "vavl,no-such"] + Self.quick)
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.error.contains("unknown system 'no-such'"), unknown.error)
        let ablated = try VAVLBinary.run(["experiment", "repeat", "--corpus", corpus.path, "--out", corpus.folder + "/bad",
                                          "--seeds", "1,2", "--no-residual"] + Self.quick)
        XCTAssertNotEqual(ablated.status, 0)
        XCTAssertTrue(ablated.error.contains("--no-residual") && ablated.error.contains("--system"), ablated.error)
        let notResults = try VAVLBinary.run(["experiment", "compare", corpus.path, corpus.path])
        XCTAssertNotEqual(notResults.status, 0)
        XCTAssertTrue(notResults.error.contains(corpus.path), notResults.error)
        let report = try VAVLBinary.run(["report", "--results", corpus.folder + "/nothing-here", "--output", corpus.folder + "/r.md"])
        XCTAssertNotEqual(report.status, 0)
        XCTAssertTrue(report.error.contains("no such file or folder"), report.error)
    }
}
