import Foundation
import MPI
import VAVLCore
import VAVLData

/// The scores of a checkpoint on one split, per head, as a readable table and as JSON.
public struct EvaluationReport: Codable, Sendable {
    public var checkpoint: String
    public var corpus: String
    public var split: String
    public var task: PredictionTask
    public var maskAudioPercent: Double
    public var maskVideoPercent: Double
    public var heads: [String: HeadScores]
    public var chance: ChanceLevel?
    /// The label columns in order (classes of a categorical task): the order of per-class
    /// scores and of the confusion matrix.
    public var labelNames: [String]?

    /// Evaluates `rows` of `corpus` with every head.
    public static func evaluate(_ trained: TrainedModel, corpus: Corpus, split: Split, masking: FrameMasking,
                                communicator: Communicator, splits: SplitAssignment? = nil) throws -> EvaluationReport {
        try trained.ensureCompatible(with: corpus)
        let rows = (splits ?? SplitAssignment(corpus: corpus)).rows(in: split)
        guard !rows.isEmpty else {
            throw CorpusError(file: corpus.path, "the \(split.rawValue) split has no utterances")
        }
        let evaluator = Evaluator(model: trained.model, loader: trained.loader(for: corpus), communicator: communicator)
        let predictions = try evaluator.predict(rows: rows, masking: masking)
        let scores = evaluator.scores(predictions)
        var chance: ChanceLevel?
        if trained.configuration.task == .categorical {
            let labels = Matrix(rows: rows.count, columns: trained.configuration.outputDimension)
            let mapping = trained.loader(for: corpus).labels
            for (index, row) in rows.enumerated() { mapping.map(corpus.labels(of: row), into: labels.row(index)) }
            let references = (0..<rows.count).map { Metrics.argmax(labels.row($0), count: labels.columns) }
            chance = ChanceLevel(references: references, classes: labels.columns)
        }
        return EvaluationReport(checkpoint: trained.path, corpus: corpus.path, split: split.rawValue,
                                task: trained.configuration.task, maskAudioPercent: masking.audioPercent,
                                maskVideoPercent: masking.videoPercent,
                                heads: Dictionary(uniqueKeysWithValues: scores.map { ($0.key.rawValue, $0.value) }),
                                chance: chance, labelNames: trained.configuration.labelNames)
    }

    /// A fixed-width table: one row per head, one column per metric, chance levels last.
    public var table: String {
        let order = EvaluationHead.allCases.map(\.rawValue).filter { heads[$0] != nil }
        let metricNames: [String]
        switch task {
        case .categorical: metricNames = ["f1_macro", "uar", "f1_micro", "accuracy", "loss"]
        case .sentiment: metricNames = ["mae", "pearson", "binary_accuracy", "binary_f1", "accuracy_7"]
        case .dimensional:
            // Per attribute (label order): CCC, Pearson and MAE; then the mean CCC.
            let attributes = labelNames ?? (heads.values.first?.metrics.keys.filter { $0.hasPrefix("ccc_") && $0 != "ccc_mean" }
                .map { String($0.dropFirst(4)) }.sorted() ?? [])
            metricNames = attributes.flatMap { ["ccc_\($0)", "pearson_\($0)", "mae_\($0)"] } + ["ccc_mean"]
        }
        var lines = ["\(split) split of \(corpus) — \(checkpoint)"]
        if maskAudioPercent > 0 || maskVideoPercent > 0 {
            lines.append(String(format: "masked frames: audio %.0f %%, video %.0f %%", maskAudioPercent, maskVideoPercent))
        }
        let header = "head".padding(toLength: 14, withPad: " ", startingAt: 0) + "utterances"
            + metricNames.map { $0.leftPadded(12) }.joined()
        lines.append(header)
        lines.append(String(repeating: "-", count: header.count))
        for name in order {
            let score = heads[name]!
            lines.append(name.padding(toLength: 14, withPad: " ", startingAt: 0) + "\(score.count)".leftPadded(10)
                         + metricNames.map { String(format: "%.4f", score.metrics[$0] ?? .nan).leftPadded(12) }.joined())
        }
        if let chance {
            lines.append("chance (uniform guess)".padding(toLength: 24, withPad: " ", startingAt: 0)
                         + String(format: "%.4f", chance.uniformMacroF1).leftPadded(12)
                         + String(format: "%.4f", chance.uniformUAR ?? .nan).leftPadded(12)
                         + String(format: "%.4f", chance.uniformAccuracy).leftPadded(12)
                         + String(format: "%.4f", chance.uniformAccuracy).leftPadded(12))
            lines.append("chance (majority class)".padding(toLength: 24, withPad: " ", startingAt: 0) + "".leftPadded(12)
                         + String(format: "%.4f", chance.majorityUAR ?? .nan).leftPadded(12)
                         + String(format: "%.4f", chance.majorityAccuracy).leftPadded(12)
                         + String(format: "%.4f", chance.majorityAccuracy).leftPadded(12))
        }
        // Per class, for the first head that has them: recall, precision, F1 and support.
        if task == .categorical, let name = order.first, let score = heads[name], let confusion = score.confusion {
            lines.append("")
            lines.append("per class (\(name))".padding(toLength: 24, withPad: " ", startingAt: 0) + "recall".leftPadded(12) + "precision".leftPadded(12) + "f1".leftPadded(12)
                         + "support".leftPadded(10))
            for (c, label) in (labelNames ?? []).enumerated() where c < confusion.count {
                lines.append(("  " + label).padding(toLength: 24, withPad: " ", startingAt: 0)
                             + String(format: "%.4f", score.metrics["recall_\(label)"] ?? .nan).leftPadded(12)
                             + String(format: "%.4f", score.metrics["precision_\(label)"] ?? .nan).leftPadded(12)
                             + String(format: "%.4f", score.metrics["f1_\(label)"] ?? .nan).leftPadded(12)
                             + "\(confusion[c].reduce(0, +))".leftPadded(10))
            }
            // The confusion matrix: a row per true class, a column per predicted class.
            let names = (0..<confusion.count).map { c in c < (labelNames ?? []).count ? labelNames![c] : "\(c)" }
            let width = max(8, (names.map(\.count).max() ?? 0) + 1)
            lines.append("")
            lines.append("confusion matrix (\(name))")
            lines.append("  true \\ predicted".padding(toLength: 24, withPad: " ", startingAt: 0) + names.map { $0.leftPadded(width) }.joined())
            for (c, row) in confusion.enumerated() {
                lines.append(("  " + names[c]).padding(toLength: 24, withPad: " ", startingAt: 0) + row.map { "\($0)".leftPadded(width) }.joined())
            }
        }
        return lines.joined(separator: "\n")
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}
