import VAVLTraining
import Foundation
import MPI
import VAVLCore
import VAVLData

/// Mean ± sample std (ddof 1) of one metric over repeated runs.
public struct MetricSummary: Codable, Sendable, Equatable {
    public var mean: Double
    public var std: Double
    public var values: [Double]

    public init(_ values: [Double]) {
        self.values = values
        mean = Statistics.mean(values)
        std = Statistics.sampleStandardDeviation(values)
    }

    /// `0.7790 ± 0.0123` (std omitted for a single run).
    public var text: String {
        values.count > 1 && std.isFinite ? "\(formatMetric(mean)) ± \(formatMetric(std))" : formatMetric(mean)
    }
}

/// Repeated runs of one system (paper Tables I–III): five seeds, or five speaker-independent
/// partitions (partition files that reassign the corpus's splits), each trained and scored
/// on its test split; mean ± sample std per metric and head.
public struct RepeatedRuns: Codable, Sendable {
    public var kind = "repeat"
    public var system: ExperimentSystem
    public var corpus: String
    public var task: PredictionTask
    public var labelNames: [String]
    /// `seeds` or `partitions`: what varies between the runs (and what pairs them with
    /// another system's runs in a paired t-test).
    public var pairing: String
    public var split: String
    public var runs: [RunScores]
    /// head → metric → summary over the runs that have the head.
    public var summary: [String: [String: MetricSummary]]

    enum CodingKeys: String, CodingKey {
        case kind, system, corpus, task, labelNames = "label_names", pairing, split, runs, summary
    }

    public init(system: ExperimentSystem, corpus: String, task: PredictionTask, labelNames: [String], pairing: String,
                runs: [RunScores]) {
        self.system = system
        self.corpus = corpus
        self.task = task
        self.labelNames = labelNames
        self.pairing = pairing
        split = Split.test.rawValue
        self.runs = runs
        summary = RepeatedRuns.summarize(runs)
    }

    static func summarize(_ runs: [RunScores]) -> [String: [String: MetricSummary]] {
        var summary: [String: [String: MetricSummary]] = [:]
        for head in EvaluationHead.allCases.map(\.rawValue) {
            let scores = runs.compactMap { $0.heads[head] }
            guard !scores.isEmpty else { continue }
            let metrics = Set(scores.flatMap { $0.metrics.keys })
            var perMetric: [String: MetricSummary] = [:]
            for metric in metrics {
                let values = scores.compactMap { $0.metrics[metric] }
                if values.count == scores.count { perMetric[metric] = MetricSummary(values) }
            }
            summary[head] = perMetric
        }
        return summary
    }

    /// Values of `metric` of `head`, by run key.
    func values(head: String, metric: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for run in runs { if let value = run.heads[head]?.metrics[metric] { result[run.key] = value } }
        return result
    }

    /// Trains and scores `system` once per seed (`directory/seed-<n>`) or per partition file
    /// (`directory/partition-<i>`); exactly one of `seeds` and `partitions` is non-empty.
    /// With partitions, every run uses the configuration's seed. Every rank calls it.
    public static func run(system: ExperimentSystem, configuration: VAVLConfiguration, options: TrainingOptions,
                           seeds: [UInt64], partitions: [String], directory: String, communicator: Communicator,
                           log: (String) -> Void = { print($0) }) throws -> RepeatedRuns {
        guard seeds.isEmpty != partitions.isEmpty else {
            throw ExperimentError("give either seeds or partition files, not both")
        }
        var plans: [RunPlan] = []
        if !seeds.isEmpty {
            guard Set(seeds).count == seeds.count else { throw ExperimentError("the seeds repeat: \(seeds)") }
            // Runs on one partition file pair only with runs on the same partition.
            let partitionSuffix = try options.partitionFile.map { "@" + (try RunPlan.partitionKey($0)) } ?? ""
            for seed in seeds {
                var runConfiguration = configuration
                runConfiguration.seed = seed
                var runOptions = options
                runOptions.outputDirectory = (directory as NSString).appendingPathComponent("seed-\(seed)")
                plans.append(RunPlan(system: system, key: "seed:\(seed)" + partitionSuffix, label: "seed \(seed)", configuration: runConfiguration,
                                     options: runOptions))
            }
        } else {
            var keys = Set<String>()
            for (index, partition) in partitions.enumerated() {
                let key = try RunPlan.partitionKey(partition)
                guard keys.insert(key).inserted else { throw ExperimentError("\(partition): the same partition is given twice") }
                var runOptions = options
                runOptions.partitionFile = partition
                runOptions.outputDirectory = (directory as NSString).appendingPathComponent("partition-\(index + 1)")
                plans.append(RunPlan(system: system, key: key, label: (partition as NSString).lastPathComponent,
                                     configuration: configuration, options: runOptions))
            }
        }
        var runs: [RunScores] = []
        for (index, plan) in plans.enumerated() {
            log("run \(index + 1) of \(plans.count)")
            runs.append(try ExperimentRunner.run(plan, communicator: communicator, log: log))
        }
        return RepeatedRuns(system: system, corpus: options.corpusPath, task: configuration.task,
                            labelNames: configuration.labelNames, pairing: seeds.isEmpty ? "partitions" : "seeds", runs: runs)
    }

    // MARK: - Tables

    /// head | metric… with mean ± std over the runs.
    func summaryTable() -> TextTable {
        let columns = TaskMetrics.columns(task: task, labelNames: labelNames)
        let rows = EvaluationHead.allCases.compactMap { head -> [String]? in
            guard let metrics = summary[head.rawValue] else { return nil }
            return [head.title] + columns.map { metrics[$0]?.text ?? "–" }
        }
        return TextTable(header: ["head"] + columns.map(TaskMetrics.label), rows: rows)
    }

    /// One row per run, the headline metric per head.
    func runTable() -> TextTable {
        let metric = TaskMetrics.primary(task)
        let heads = EvaluationHead.allCases.filter { summary[$0.rawValue] != nil }
        return TextTable(header: ["run"] + heads.map { "\($0.rawValue) \(TaskMetrics.label(metric))" },
                         rows: runs.map { run in [run.label] + heads.map { formatMetric(run.heads[$0.rawValue]?.metrics[metric]) } })
    }

    public var table: String {
        "\(system.rawValue): \(runs.count) runs over \(pairing), \(split) split of \(corpus) — mean ± sample std (ddof 1)\n"
            + summaryTable().render() + "\n\n" + runTable().render()
    }

    public var markdown: String {
        "`\(system.rawValue)` (\(system.summary)): \(runs.count) runs over \(pairing) on the \(split) split of `\(corpus)`; "
            + "mean ± sample std (ddof 1).\n\n" + summaryTable().markdown() + "\n\nPer run:\n\n" + runTable().markdown() + "\n"
    }

    /// Writes `repeat.json` and `repeat.md` into `directory`; returns the JSON path.
    @discardableResult
    public func write(to directory: String) throws -> String {
        try ExperimentFile.makeDirectory(directory)
        try ExperimentFile.write(text: markdown, to: (directory as NSString).appendingPathComponent("repeat.md"))
        let json = (directory as NSString).appendingPathComponent("repeat.json")
        try ExperimentFile.write(self, to: json)
        return json
    }
}

// MARK: - Comparison

/// Two systems' repeated runs compared metric by metric with a two-tailed t-test at
/// p < 0.05 (DESIGN §7): paired when both ran on the same seeds or the same partitions
/// (matched by seed, or by the partition file's contents) of the same corpus, Welch's
/// unequal-variance test otherwise.
public struct Comparison: Codable, Sendable {
    public var kind = "comparison"
    public var a: Side
    public var b: Side
    public var test: Statistics.TTest.Kind
    /// Why the test is paired or not.
    public var reason: String
    public var alpha: Double
    public var rows: [Row]

    public struct Side: Codable, Sendable {
        public var file: String
        public var system: ExperimentSystem
        public var corpus: String
        public var pairing: String
        public var runs: Int
    }

    public struct Row: Codable, Sendable {
        public var head: String
        public var metric: String
        public var a: MetricSummary
        public var b: MetricSummary
        /// mean(a) − mean(b).
        public var difference: Double
        public var test: Statistics.TTest
        public var significant: Bool
        /// Brown–Forsythe test of equal spread across the runs (nil in files written before
        /// it was added).
        public var spreadTest: Statistics.SpreadTest?

        enum CodingKeys: String, CodingKey {
            case head, metric, a, b, difference, test, significant, spreadTest = "spread_test"
        }
    }

    /// Compares every metric of every head that both result sets have.
    public static func compare(_ a: RepeatedRuns, file fileA: String, _ b: RepeatedRuns, file fileB: String,
                               alpha: Double = 0.05) throws -> Comparison {
        guard a.task == b.task else {
            throw ExperimentError("\(fileA) is a \(a.task.rawValue) result, \(fileB) a \(b.task.rawValue) one: nothing to compare")
        }
        let keysA = a.runs.map(\.key), keysB = b.runs.map(\.key)
        let kind: Statistics.TTest.Kind
        let reason: String
        if a.pairing != b.pairing {
            (kind, reason) = (.welch, "one ran over \(a.pairing), the other over \(b.pairing)")
        } else if (a.corpus as NSString).standardizingPath != (b.corpus as NSString).standardizingPath {
            (kind, reason) = (.welch, "different corpus files (\(a.corpus), \(b.corpus))")
        } else if Set(keysA).count != keysA.count || Set(keysB).count != keysB.count || Set(keysA) != Set(keysB) {
            (kind, reason) = (.welch, "the \(a.pairing) differ")
        } else if keysA.count < 2 {
            (kind, reason) = (.welch, "fewer than two runs")
        } else {
            (kind, reason) = (.paired, "both ran on the same \(a.pairing) (\(a.runs.map(\.label).joined(separator: ", ")))")
        }
        let columns = TaskMetrics.columns(task: a.task, labelNames: a.labelNames)
        var rows: [Row] = []
        for head in EvaluationHead.allCases.map(\.rawValue) {
            guard let summaryA = a.summary[head], let summaryB = b.summary[head] else { continue }
            for metric in columns {
                guard let sa = summaryA[metric], let sb = summaryB[metric] else { continue }
                let test: Statistics.TTest
                if kind == .paired {
                    let va = a.values(head: head, metric: metric), vb = b.values(head: head, metric: metric)
                    let keys = keysA.filter { va[$0] != nil && vb[$0] != nil }
                    test = Statistics.pairedTTest(keys.map { va[$0]! }, keys.map { vb[$0]! })
                } else {
                    test = Statistics.welchTTest(sa.values, sb.values)
                }
                rows.append(Row(head: head, metric: metric, a: sa, b: sb, difference: sa.mean - sb.mean, test: test,
                                significant: test.significant(at: alpha),
                                spreadTest: Statistics.brownForsythe([sa.values, sb.values])))
            }
        }
        func side(_ r: RepeatedRuns, _ file: String) -> Side {
            Side(file: file, system: r.system, corpus: r.corpus, pairing: r.pairing, runs: r.runs.count)
        }
        return Comparison(a: side(a, fileA), b: side(b, fileB), test: kind, reason: reason, alpha: alpha, rows: rows)
    }

    func textTable() -> TextTable {
        TextTable(header: ["head", "metric", "A: \(a.system.rawValue)", "B: \(b.system.rawValue)", "A − B", "t", "df", "p", "p < \(alpha)",
                           "std A / B", "spread p"],
                  rows: rows.map { row in
                      [row.head, TaskMetrics.label(row.metric), row.a.text, row.b.text, String(format: "%+.4f", row.difference),
                       row.test.t.isFinite ? String(format: "%.3f", row.test.t) : "\(row.test.t)",
                       row.test.degreesOfFreedom.isFinite ? String(format: "%.2f", row.test.degreesOfFreedom) : "–",
                       row.test.p.isFinite ? String(format: "%.4g", row.test.p) : "–", row.significant ? "yes" : "no",
                       row.b.std > 0 ? String(format: "%.2f", row.a.std / row.b.std) : "–",
                       row.spreadTest.map { $0.p.isFinite ? String(format: "%.4g", $0.p) : "–" } ?? "–"]
                  })
    }

    var header: String {
        let name = test == .paired ? "paired t-test" : "Welch's t-test"
        return "A = \(a.system.rawValue) (\(a.file), \(a.runs) runs), B = \(b.system.rawValue) (\(b.file), \(b.runs) runs); "
            + "two-tailed \(name): \(reason)"
    }

    public var table: String { header + "\n" + textTable().render() }

    public var markdown: String { header + ".\n\n" + textTable().markdown() + "\n" }
}
