import VAVLTraining
import Foundation
import MPI
import VAVLCore
import VAVLData

/// The systems the experiments train and compare (paper Table III): full VAVL, its three
/// ablations, and the two unimodal baselines.
public enum ExperimentSystem: String, Codable, CaseIterable, Sendable {
    case vavl
    case noResidual = "no-residual"
    case noReconstruction = "no-reconstruction"
    case noAudioVisualHead = "no-av-head"
    case unimodalAudio = "unimodal-audio"
    case unimodalVideo = "unimodal-video"

    public var summary: String {
        switch self {
        case .vavl: return "VAVL (as configured)"
        case .noResidual: return "VAVL without the residual over the shared layers"
        case .noReconstruction: return "VAVL without reconstruction (α = 0)"
        case .noAudioVisualHead: return "VAVL without the audio-visual head (mean of the unimodal predictions)"
        case .unimodalAudio: return "unimodal acoustic baseline (one branch, blocks_a + blocks_s Conformer blocks)"
        case .unimodalVideo: return "unimodal visual baseline (one branch, blocks_v + blocks_s Conformer blocks)"
        }
    }

    /// The baseline's modality, or nil for VAVL and its ablations.
    public var baselineModality: VAVLData.Modality? {
        switch self {
        case .unimodalAudio: return .audio
        case .unimodalVideo: return .video
        default: return nil
        }
    }

    /// The configuration of this system, from the base one (the ablation switch turned on).
    public func configure(_ base: VAVLConfiguration) -> VAVLConfiguration {
        var configuration = base
        switch self {
        case .noResidual: configuration.residual = false
        case .noReconstruction: configuration.alpha = 0
        case .noAudioVisualHead: configuration.audioVisualHead = false
        case .vavl, .unimodalAudio, .unimodalVideo: break
        }
        return configuration
    }
}

/// The test scores of one trained system in one run (seed or partition), written as
/// `run.json` in the run's folder. A finished run with the same fingerprint is reused
/// rather than trained again, so an interrupted series of runs continues where it stopped.
public struct RunScores: Codable, Sendable {
    public var kind = "run"
    public var system: ExperimentSystem
    /// What pairs runs across systems: `seed:<n>` or `partition:<content digest>`.
    public var key: String
    /// A readable name: `seed 3`, `partition2.csv`.
    public var label: String
    public var seed: UInt64
    public var partition: String?
    public var directory: String
    /// The checkpoint that was scored (VAVL systems), and the selected epoch (−1: last weights).
    public var checkpoint: String?
    public var selectedEpoch: Int
    public var split: String
    /// Test scores per head (`audio_visual`, `audio`, `video`).
    public var heads: [String: HeadScores]
    public var configuration: VAVLConfiguration
    /// Configuration, corpus, partition and training options: equal fingerprints, same run.
    public var fingerprint: String
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case kind, system, key, label, seed, partition, directory, checkpoint, selectedEpoch = "selected_epoch", split
        case heads, configuration, fingerprint, seconds
    }
}

/// One run to make: a system, its seed or partition, and where it goes.
public struct RunPlan: Sendable {
    public var system: ExperimentSystem
    public var key: String
    public var label: String
    public var configuration: VAVLConfiguration
    public var options: TrainingOptions

    public init(system: ExperimentSystem, key: String, label: String, configuration: VAVLConfiguration, options: TrainingOptions) {
        self.system = system
        self.key = key
        self.label = label
        self.configuration = configuration
        self.options = options
    }

    /// The digest of a partition file's contents (so the same partitions pair up wherever they are).
    public static func partitionKey(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ExperimentError("\(path): cannot read the partition file")
        }
        return "partition:" + String(VAVLCore.stableHash(String(decoding: data, as: UTF8.self)), radix: 16)
    }

    var fingerprint: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let config = (try? encoder.encode(system.configure(configuration))).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let o = options
        let parts: [String] = [system.rawValue, key, (o.corpusPath as NSString).standardizingPath, config,
                               "\(o.maxIterations ?? -1)", "\(o.policy)", o.epochEnd.rawValue, "\(o.lengthBucketWindow)",
                               "\(o.synchronizedBatchNorm)", "\(o.evaluateEachEpoch)", o.nonFinitePolicy.rawValue]
        return String(VAVLCore.stableHash(parts.joined(separator: "|")), radix: 16)
    }
}

/// Trains and scores systems; every rank of the job calls every function, rank 0 alone writes.
public enum ExperimentRunner {
    /// Trains `plan.system` into `plan.options.outputDirectory` and scores the test split
    /// with every head it has (the checkpoint of the best development epoch for VAVL
    /// systems, or the last one when there was no development evaluation). A `run.json`
    /// there with the same fingerprint is reused without training.
    public static func run(_ plan: RunPlan, communicator: Communicator, log: (String) -> Void = { print($0) }) throws -> RunScores {
        let directory = plan.options.outputDirectory
        let runFile = (directory as NSString).appendingPathComponent("run.json")
        let fingerprint = plan.fingerprint
        // Rank 0 decides whether to reuse a finished run; everyone follows.
        var reuse: [Int64] = [0]
        if communicator.rank == 0 {
            try ExperimentFile.makeDirectory(directory)
            if let previous = try? ExperimentFile.read(RunScores.self, from: runFile), previous.fingerprint == fingerprint {
                reuse[0] = 1
            } else {
                clearOutputs(directory)
            }
        }
        communicator.shareFromRankZero(&reuse, "whether to reuse \(directory)")
        if reuse[0] == 1 {
            let previous = try ExperimentFile.read(RunScores.self, from: runFile)
            log("\(plan.system.rawValue), \(plan.label): reusing the finished run in \(directory)")
            return previous
        }
        log("== \(plan.system.rawValue), \(plan.label): \(plan.system.summary) → \(directory)")
        let started = Date()
        var scores: RunScores
        let configuration = plan.system.configure(plan.configuration)
        if let modality = plan.system.baselineModality {
            let trainer = try Trainer(configuration: configuration, options: plan.options, communicator: communicator,
                                      system: .unimodal(modality))
            let state = trainer.run()
            try trainer.restoreSelectedWeights()
            let test = trainer.rows(of: .test)
            guard !test.isEmpty else { throw ExperimentError("\(plan.options.corpusPath): the test split has no utterance with \(modality.rawValue)") }
            let heads = Dictionary(uniqueKeysWithValues: try trainer.scores(rows: test).map { ($0.key.rawValue, $0.value) })
            let name = state.bestEpoch >= 0 ? "checkpoint-best.h5" : "checkpoint-last.h5"
            scores = RunScores(system: plan.system, key: plan.key, label: plan.label, seed: configuration.seed,
                               partition: plan.options.partitionFile, directory: directory,
                               checkpoint: (directory as NSString).appendingPathComponent(name),
                               selectedEpoch: state.bestEpoch, split: Split.test.rawValue, heads: heads,
                               configuration: configuration, fingerprint: fingerprint, seconds: 0)
        } else {
            let trainer = try Trainer(configuration: configuration, options: plan.options, communicator: communicator)
            let state = trainer.run()
            let name = state.bestEpoch >= 0 ? "checkpoint-best.h5" : "checkpoint-last.h5"
            let checkpoint = (directory as NSString).appendingPathComponent(name)
            let trained = try TrainedModel(checkpoint: checkpoint)
            let report = try EvaluationReport.evaluate(trained, corpus: trainer.corpus, split: .test, masking: FrameMasking(),
                                                       communicator: communicator, splits: trainer.splits)
            scores = RunScores(system: plan.system, key: plan.key, label: plan.label, seed: configuration.seed,
                               partition: plan.options.partitionFile, directory: directory, checkpoint: checkpoint,
                               selectedEpoch: state.bestEpoch, split: Split.test.rawValue, heads: report.heads,
                               configuration: configuration, fingerprint: fingerprint, seconds: 0)
        }
        scores.seconds = Date().timeIntervalSince(started)
        if communicator.rank == 0 {
            try ExperimentFile.write(scores, to: runFile)
            let task = configuration.task
            let metric = TaskMetrics.primary(task)
            let summary = EvaluationHead.allCases.compactMap { head in
                scores.heads[head.rawValue].map { "\(head.rawValue) \(TaskMetrics.label(metric)) \(formatMetric($0.metrics[metric]))" }
            }.joined(separator: ", ")
            log("   test: \(summary) (\(String(format: "%.0f", scores.seconds)) s)")
        }
        return scores
    }

    /// Removes what an earlier, different run left in a run folder (checkpoints, metrics, run.json).
    static func clearOutputs(_ directory: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where (name.hasPrefix("checkpoint-") && name.hasSuffix(".h5")) || name == "metrics.jsonl" || name == "run.json" {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }
}
