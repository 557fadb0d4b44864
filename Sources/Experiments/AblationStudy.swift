import VAVLTraining
import Foundation
import MPI
import VAVLCore
import VAVLData

/// The ablation study (paper Table III): full VAVL, `no-residual`, `no-reconstruction`,
/// `no-av-head` and the two unimodal baselines, trained with the same seed, data, split
/// assignment and training options, scored on the test split; one table per head.
public struct AblationStudy: Codable, Sendable {
    public var kind = "ablations"
    public var corpus: String
    public var task: PredictionTask
    public var labelNames: [String]
    public var seed: UInt64
    public var partition: String?
    public var split: String
    public var systems: [RunScores]

    enum CodingKeys: String, CodingKey {
        case kind, corpus, task, labelNames = "label_names", seed, partition, split, systems
    }

    public static let defaultSystems: [ExperimentSystem] = ExperimentSystem.allCases

    /// Trains and scores `systems` in order, each in `directory/<system>`. Every rank calls it.
    public static func run(configuration: VAVLConfiguration, options: TrainingOptions, directory: String,
                           systems: [ExperimentSystem] = defaultSystems, communicator: Communicator,
                           log: (String) -> Void = { print($0) }) throws -> AblationStudy {
        var results: [RunScores] = []
        let key = "seed:\(configuration.seed)" + (try options.partitionFile.map { "@" + (try RunPlan.partitionKey($0)) } ?? "")
        for system in systems {
            var runOptions = options
            runOptions.outputDirectory = (directory as NSString).appendingPathComponent(system.rawValue)
            let plan = RunPlan(system: system, key: key, label: "seed \(configuration.seed)", configuration: configuration,
                               options: runOptions)
            results.append(try ExperimentRunner.run(plan, communicator: communicator, log: log))
        }
        return AblationStudy(corpus: options.corpusPath, task: configuration.task, labelNames: configuration.labelNames,
                             seed: configuration.seed, partition: options.partitionFile, split: Split.test.rawValue,
                             systems: results)
    }

    // MARK: - Tables

    /// The rows of one head's table: every system that has the head, the task's metrics.
    func headTable(_ head: EvaluationHead) -> TextTable? {
        let columns = TaskMetrics.columns(task: task, labelNames: labelNames)
        let rows = systems.compactMap { run -> [String]? in
            guard let scores = run.heads[head.rawValue] else { return nil }
            return [run.system.rawValue] + columns.map { formatMetric(scores.metrics[$0]) }
        }
        return rows.isEmpty ? nil : TextTable(header: ["system"] + columns.map(TaskMetrics.label), rows: rows)
    }

    public var table: String {
        var parts = ["ablations on the \(split) split of \(corpus) (seed \(seed)\(partition.map { ", partition \($0)" } ?? ""))"]
        for head in EvaluationHead.allCases {
            guard let table = headTable(head) else { continue }
            parts.append("\n\(head.title) head\n" + table.render())
        }
        return parts.joined(separator: "\n")
    }

    public var markdown: String {
        var text = "Ablations on the \(split) split of `\(corpus)`, seed \(seed)\(partition.map { ", partition `\($0)`" } ?? ""); "
        text += "every system trained with the same data, seed and options (paper Table III layout).\n"
        for head in EvaluationHead.allCases {
            guard let table = headTable(head) else { continue }
            text += "\n**\(head.title.prefix(1).uppercased() + head.title.dropFirst()) head**\n\n" + table.markdown() + "\n"
        }
        return text
    }

    /// One head's table as JSON: system → metrics.
    public struct HeadTable: Codable, Sendable {
        public var kind = "ablations-head"
        public var head: String
        public var split: String
        public var corpus: String
        public var systems: [String: HeadScores]
    }

    /// Writes `ablations.json` and `ablations.md` (every head), and `ablations-<head>.json`
    /// and `.md` (one table per head) into `directory`; returns the path of `ablations.json`.
    @discardableResult
    public func write(to directory: String) throws -> String {
        try ExperimentFile.makeDirectory(directory)
        for head in EvaluationHead.allCases {
            guard let table = headTable(head) else { continue }
            let base = (directory as NSString).appendingPathComponent("ablations-\(head.rawValue)")
            try ExperimentFile.write(text: "\(head.title) head, \(split) split\n\n" + table.markdown() + "\n", to: base + ".md")
            let scores = Dictionary(systems.compactMap { run in run.heads[head.rawValue].map { (run.system.rawValue, $0) } },
                                    uniquingKeysWith: { first, _ in first })
            try ExperimentFile.write(HeadTable(head: head.rawValue, split: split, corpus: corpus, systems: scores), to: base + ".json")
        }
        try ExperimentFile.write(text: markdown, to: (directory as NSString).appendingPathComponent("ablations.md"))
        let json = (directory as NSString).appendingPathComponent("ablations.json")
        try ExperimentFile.write(self, to: json)
        return json
    }
}
