import Foundation
import MPI
import VAVLCore
import VAVLData
@testable import VAVLExperiments
@testable import VAVLTraining
import XCTest

/// The pieces behind `vavl experiment`: the unimodal baseline (gradients, training),
/// speaker-independent partitions, the pairing rule of comparisons, the embedding distances
/// and the report's links — without the command line.
final class ExperimentLibraryTests: XCTestCase {
    static var corpus: TinyCorpus!

    override class func setUp() {
        corpus = try! TinyCorpus()
    }

    override class func tearDown() { corpus = nil }

    // MARK: - Unimodal baseline

    func testBaselineHasTheBranchPlusSharedBlocksAndCanonicalNames() throws {
        let paper = VAVLConfiguration.paper()
        let audio = UnimodalBaseline(paper, modality: .audio)
        XCTAssertEqual(audio.blocks, 5, "paper §IV-E.6: five Conformer blocks")
        XCTAssertEqual(audio.branch.encoder.blocks.count, 5)
        var small = VAVLConfiguration.small(audio: 12, video: 10, outputs: 6)
        small.visualBlocks = 2
        XCTAssertEqual(UnimodalBaseline.blockCount(small, modality: .video), 3, "blocks_v + blocks_s")
        let names = Set(audio.store.parameters.map(\.name))
        for name in ["acoustic.proj.weight", "acoustic.encoder.blocks.4.ff2.linear2.bias", "head.fc1.weight", "head.fc1.bias",
                     "head.out.weight", "head.out.bias"] {
            XCTAssertTrue(names.contains(name), name)
        }
        XCTAssertFalse(names.contains { $0.hasPrefix("shared.") || $0.hasPrefix("visual.") })
        XCTAssertEqual(audio.store.parameter(named: "head.fc1.weight")?.shape, [512, 512])
        XCTAssertEqual(audio.store.parameter(named: "head.out.weight")?.shape, [6, 512])
    }

    /// Central finite differences of L = Σ predictions ⊙ G against the backward, over
    /// sampled coordinates of every parameter, dropout on (its masks are fixed by the keys).
    func testBaselineGradientsMatchFiniteDifferences() throws {
        var config = VAVLConfiguration.tiny(audio: 6, video: 5, outputs: 3)
        config.headDropout = 0.3
        let model = UnimodalBaseline(config, modality: .video)
        model.initialize(seed: 11)
        var generator = SplitMix64(seed: 3)
        for i in 0..<model.store.parameterCount { model.store.values[i] += 0.1 * generator.normal() }
        let segments = Segments(lengths: [4, 7, 3])
        let x = Matrix(rows: segments.totalRows, columns: 5)
        for i in 0..<x.count { x.data[i] = generator.normal() }
        let weights = Matrix(rows: 3, columns: 3)
        for i in 0..<weights.count { weights.data[i] = generator.normal() }
        let context = RunContext(store: model.store)
        context.useSequentialUtteranceKeys(count: 3)
        context.seed = 4
        context.updatesRunningStatistics = false
        func loss() -> Double {
            context.mode = .training
            let y = model.forward(x, segments: segments, context)
            return (0..<y.count).reduce(0) { $0 + Double(y.data[$1]) * Double(weights.data[$1]) }
        }
        model.store.zeroGradients()
        _ = loss()
        model.backward(weights, context)
        let analytical = Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.parameterCount))
        var checked = 0, failures: [String] = [], wouldFailIfScaled = 0
        let step: Float = 1e-2
        for parameter in model.store.parameters {
            for _ in 0..<min(4, parameter.count) {
                let index = parameter.offset + Int(generator.next() % UInt64(parameter.count))
                let original = model.store.values[index]
                model.store.values[index] = original + step
                let plus = loss()
                model.store.values[index] = original - step
                let minus = loss()
                model.store.values[index] = original
                let numerical = Float((plus - minus) / Double(2 * step))
                let tolerance: (Float, Float) -> Float = { 4e-3 + 2e-2 * max(abs($0), abs($1)) }
                if abs(analytical[index] - numerical) > tolerance(analytical[index], numerical) {
                    failures.append("\(parameter.name)[\(index - parameter.offset)]: analytical \(analytical[index]), numerical \(numerical)")
                }
                // The same check on a gradient 20 % too large must fail where the gradient is not tiny.
                let wrong = analytical[index] * 1.2
                if abs(wrong - numerical) > tolerance(wrong, numerical) { wouldFailIfScaled += 1 }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 50)
        XCTAssertTrue(failures.isEmpty, "\(failures.count)/\(checked) off:\n" + failures.prefix(8).joined(separator: "\n"))
        XCTAssertGreaterThan(wouldFailIfScaled, checked / 4, "the tolerance is loose enough to hide a 20 % error")
    }

    /// The unimodal baseline runs on the one training loop: its modality's train rows, an
    /// epoch selected on the development loss, checkpoints, and the same weights again for
    /// the same seed.
    func testBaselineTrainsOnItsModalityDeterministicallyAndSelectsAnEpoch() throws {
        let corpus = Self.corpus!
        var configuration = try corpus.configuration(epochs: 2)
        configuration.learningRate = 3e-3
        func train(_ name: String) throws -> (Trainer, TrainingState) {
            let trainer = try Trainer(configuration: configuration, options: corpus.options(name), communicator: .selfOnly,
                                      system: .unimodal(.audio))
            let state = trainer.run()
            try trainer.restoreSelectedWeights()
            return (trainer, state)
        }
        let (first, state) = try train("baseline-a")
        let file = try Corpus.open(corpus.path)
        let trainAudio = file.utterances(in: .train).filter { file.has(.audio, utterance: $0) }
        XCTAssertEqual(first.planner.utterances.map(\.row).sorted(), trainAudio.sorted(), "the audio utterances of the train split only")
        XCTAssertLessThan(trainAudio.count, file.utterances(in: .train).count, "the corpus has video-only utterances to leave out")
        XCTAssertEqual(state.iteration, 2 * first.planner.batchesPerEpoch)
        XCTAssertGreaterThanOrEqual(state.bestEpoch, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: corpus.options("baseline-a").outputDirectory + "/checkpoint-best.h5"))
        let test = try XCTUnwrap(try first.scores(rows: first.rows(of: .test))[.audio])
        XCTAssertEqual(test.count, file.utterances(in: .test).filter { file.has(.audio, utterance: $0) }.count)
        XCTAssertNotNil(test.metrics["f1_macro"])
        // The restored weights are the selected epoch's: its development loss again.
        let development = try XCTUnwrap(try first.scores(rows: first.rows(of: .dev))[.audio])
        XCTAssertEqual(development.loss, state.bestLoss, accuracy: 1e-9)
        // Same seed, same data: the same weights (restored from the same selected epoch).
        let (second, secondState) = try train("baseline-b")
        XCTAssertEqual(allValues(first.store), allValues(second.store))
        XCTAssertEqual(state.bestEpoch, secondState.bestEpoch)
    }

    // MARK: - Partitions

    func testPartitionsAreSpeakerIndependentWithDisjointTestSetsAndReadBack() throws {
        let corpus = try Corpus.open(Self.corpus.path)
        let generator = PartitionGenerator(count: 5, seed: 1, testFraction: 0.2, developmentFraction: 0.15)
        let partitions = try generator.partitions(speakers: corpus.speakers)
        XCTAssertEqual(partitions.count, 5)
        var testedSpeakers: [Set<String>] = []
        for splits in partitions {
            var speakersBySplit: [Split: Set<String>] = [:]
            for (row, split) in splits.enumerated() { speakersBySplit[split, default: []].insert(corpus.speakers[row]) }
            XCTAssertEqual(speakersBySplit.count, 3, "every split is non-empty")
            for (x, y) in [(Split.train, Split.dev), (.train, .test), (.dev, .test)] {
                XCTAssertTrue(speakersBySplit[x]!.isDisjoint(with: speakersBySplit[y]!), "a speaker in \(x) and \(y)")
            }
            let testShare = Double(splits.filter { $0 == .test }.count) / Double(splits.count)
            XCTAssertEqual(testShare, 0.2, accuracy: 0.08)
            testedSpeakers.append(speakersBySplit[.test]!)
        }
        for i in 0..<5 { for j in (i + 1)..<5 { XCTAssertTrue(testedSpeakers[i].isDisjoint(with: testedSpeakers[j]), "test sets \(i), \(j) overlap") } }
        XCTAssertNotEqual(partitions[0], try PartitionGenerator(count: 5, seed: 2, testFraction: 0.2, developmentFraction: 0.15)
            .partitions(speakers: corpus.speakers)[0], "the seed changes the speaker order")
        // The file in the authors' layout reassigns the corpus's splits exactly.
        let path = Self.corpus.folder + "/partition-check.csv"
        try Data(PartitionGenerator.csv(corpus: corpus, splits: partitions[2]).utf8).write(to: URL(fileURLWithPath: path))
        let assignment = try SplitAssignment(partitionFile: path, corpus: corpus)
        XCTAssertEqual(assignment.splits, partitions[2].map { $0 })
        let table = try LabelTable.read(path)
        XCTAssertEqual(table.columns, ["FileName"] + corpus.labelNames + ["SpkrID", "Gender", "Split_Set"])
        XCTAssertEqual(try table.utterances().utterances.map(\.labels), (0..<corpus.utteranceCount).map { Array(corpus.labels(of: $0)) })
    }

    func testPartitionsNeedEnoughSpeakers() {
        XCTAssertThrowsError(try PartitionGenerator(count: 2, seed: 0, testFraction: 0.3, developmentFraction: 0.1)
            .partitions(speakers: ["a", "a", "b"]))
        XCTAssertThrowsError(try PartitionGenerator(count: 2, seed: 0, testFraction: 0.7, developmentFraction: 0.4)
            .partitions(speakers: ["a", "b", "c", "d"]))
    }

    // MARK: - Comparisons

    func repeated(_ system: ExperimentSystem, pairing: String, keys: [String], values: [Double], corpus: String = "/c.h5") -> RepeatedRuns {
        let runs = zip(keys, values).map { key, value in
            RunScores(system: system, key: key, label: key, seed: 0, partition: nil, directory: "/tmp", checkpoint: nil,
                      selectedEpoch: 0, split: "test",
                      heads: ["audio_visual": HeadScores(count: 10, metrics: ["f1_macro": value, "f1_micro": value, "accuracy": value, "loss": 1])],
                      configuration: VAVLConfiguration(), fingerprint: "", seconds: 0)
        }
        return RepeatedRuns(system: system, corpus: corpus, task: .categorical, labelNames: [], pairing: pairing, runs: runs)
    }

    func testComparisonIsPairedOnlyForTheSameSeedsOrPartitions() throws {
        let a = [0.779, 0.801, 0.765, 0.790, 0.772], b = [0.751, 0.780, 0.760, 0.770, 0.741]
        let seeds = ["seed:1", "seed:2", "seed:3", "seed:4", "seed:5"]
        let full = repeated(.vavl, pairing: "seeds", keys: seeds, values: a)
        // Same seeds listed in another order: still paired, matched by seed.
        let ablation = repeated(.noResidual, pairing: "seeds", keys: seeds.reversed(), values: b.reversed())
        let paired = try Comparison.compare(full, file: "a.json", ablation, file: "b.json")
        XCTAssertEqual(paired.test, .paired)
        let row = try XCTUnwrap(paired.rows.first { $0.head == "audio_visual" && $0.metric == "f1_macro" })
        XCTAssertEqual(row.test.t, 4.66091599699399, accuracy: 1e-6, "scipy ttest_rel")
        XCTAssertEqual(row.test.p, 0.009583008930266625, accuracy: 1e-6)
        XCTAssertTrue(row.significant)
        XCTAssertEqual(row.difference, 0.7814 - Statistics.mean(b), accuracy: 1e-12)
        XCTAssertFalse(paired.rows.contains { $0.metric == "loss" }, "the task's metrics only")
        // Other seeds, partitions against seeds, or another corpus: Welch.
        for other in [repeated(.noResidual, pairing: "seeds", keys: ["seed:6", "seed:7", "seed:8", "seed:9", "seed:10"], values: b),
                      repeated(.noResidual, pairing: "partitions", keys: seeds, values: b),
                      repeated(.noResidual, pairing: "seeds", keys: seeds, values: b, corpus: "/other.h5")] {
            let comparison = try Comparison.compare(full, file: "a.json", other, file: "b.json")
            XCTAssertEqual(comparison.test, .welch, comparison.reason)
            XCTAssertEqual(comparison.rows[0].test.p, 0.05582871867747731, accuracy: 1e-6, "scipy ttest_ind(equal_var=False)")
        }
        XCTAssertThrowsError(try Comparison.compare(full, file: "a", RepeatedRuns(system: .vavl, corpus: "/c.h5", task: .sentiment,
                                                                                 labelNames: [], pairing: "seeds", runs: []), file: "b"))
    }

    func testRepeatedRunsSummaryAndJSONRoundTrip() throws {
        let runs = repeated(.vavl, pairing: "seeds", keys: ["seed:1", "seed:2", "seed:3"], values: [0.5, 0.6, 0.7])
        let summary = try XCTUnwrap(runs.summary["audio_visual"]?["f1_macro"])
        XCTAssertEqual(summary.mean, 0.6, accuracy: 1e-12)
        XCTAssertEqual(summary.std, 0.1, accuracy: 1e-12)
        XCTAssertEqual(summary.text, "0.6000 ± 0.1000")
        let path = Self.corpus.folder + "/repeat-roundtrip.json"
        try ExperimentFile.write(runs, to: path)
        XCTAssertEqual(ExperimentFile.kind(of: path), "repeat")
        let back = try ExperimentFile.read(RepeatedRuns.self, from: path)
        XCTAssertEqual(back.summary, runs.summary)
        XCTAssertEqual(back.runs.map(\.key), runs.runs.map(\.key))
        // One run: no std, written without NaN breaking the JSON.
        let single = repeated(.vavl, pairing: "seeds", keys: ["seed:1"], values: [0.5])
        try ExperimentFile.write(single, to: path)
        XCTAssertTrue(try ExperimentFile.read(RepeatedRuns.self, from: path).summary["audio_visual"]!["f1_macro"]!.std.isNaN)
    }

    // MARK: - Embedding

    func testEmbeddingDistancesMatchABruteForceComputation() throws {
        let corpus = Self.corpus!
        var options = corpus.options("embedding")
        options.maxIterations = 2
        let trainer = try Trainer(configuration: try corpus.configuration(), options: options, communicator: .selfOnly)
        trainer.run()
        let trained = try TrainedModel(checkpoint: options.outputDirectory + "/checkpoint-last.h5")
        let file = try Corpus.open(corpus.path)
        let analysis = try EmbeddingAnalysis.run(trained, corpus: file, split: .test, communicator: .selfOnly)
        let rows = file.utterances(in: .test).filter { file.has(.audio, utterance: $0) && file.has(.video, utterance: $0) }
        XCTAssertEqual(analysis.count, rows.count)
        XCTAssertGreaterThan(rows.count, 3)
        // One utterance at a time (no batching), and every ordered pair i ≠ j.
        let context = RunContext(store: trained.model.store)
        context.mode = .evaluation
        let loader = trained.loader(for: file)
        var ra: [[Float]] = [], rv: [[Float]] = []
        for row in rows {
            let batch = try loader.load([row])
            ra.append(trained.model.represent(.audio, batch.audio.features, segments: batch.audio.segments, context).array)
            rv.append(trained.model.represent(.video, batch.video.features, segments: batch.video.segments, context).array)
        }
        func distance(_ a: [Float], _ b: [Float]) -> Double {
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot(), nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return 1 - dot / (na * nb)
        }
        let paired = zip(ra, rv).map { distance($0, $1) }
        XCTAssertEqual(analysis.paired.mean, Statistics.mean(paired), accuracy: 1e-5)
        XCTAssertEqual(analysis.paired.std, Statistics.sampleStandardDeviation(paired), accuracy: 1e-5)
        XCTAssertEqual(analysis.paired.median, Statistics.quantile(paired, 0.5), accuracy: 1e-5)
        XCTAssertEqual(analysis.paired.maximum, paired.max()!, accuracy: 1e-5)
        var mismatched: [Double] = []
        for i in rows.indices { for j in rows.indices where i != j { mismatched.append(distance(ra[i], rv[j])) } }
        XCTAssertEqual(try XCTUnwrap(analysis.mismatchedMean), Statistics.mean(mismatched), accuracy: 1e-5)
    }

    // MARK: - Report

    func testReportLinksAreRelativeToTheReportFolder() throws {
        let folder = Self.corpus.subfolder("report-links")
        let sweep = try XCTUnwrap(try? JSONSerialization.data(withJSONObject: ["kind": "metrics"]))
        try sweep.write(to: URL(fileURLWithPath: folder + "/not-a-result.json"))
        XCTAssertEqual(try ExperimentReport.collect([folder]), [], "files of other kinds are skipped inside folders")
        XCTAssertThrowsError(try ExperimentReport.collect([folder + "/not-a-result.json"]), "but named ones are an error")
        XCTAssertThrowsError(try ExperimentReport.collect([folder + "/missing"]))
        let text = try ExperimentReport.render(files: [], output: folder + "/report.md")
        XCTAssertTrue(text.contains("No experiment results were found"))
    }
}
