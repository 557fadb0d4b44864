import Foundation

/// The training and development curves of one run, read from its `metrics.jsonl` (the
/// schema in the README): per epoch, the mean training loss of each phase, and the
/// development loss and main metric of each head. `vavl plot` draws them as two SVG plots.
///
/// Records of other types are skipped; an epoch logged twice (a resumed run that repeated
/// it) keeps its last record. Lines that are not JSON objects are errors naming the line, so
/// a damaged log is not drawn as a plausible curve.
public struct TrainingCurves: Sendable {
    /// Epoch → value, per series name (`acoustic`, `audio_visual`, …).
    public var trainingLoss: [String: [Int: Double]] = [:]
    public var developmentLoss: [String: [Int: Double]] = [:]
    public var developmentMetric: [String: [Int: Double]] = [:]
    /// The development metric drawn: `f1_macro` (categorical), `ccc_mean` (dimensional) or
    /// `mae` (sentiment), whichever the log has; nil without development scores.
    public var metric: String?

    static let metricPreference = ["f1_macro", "ccc_mean", "mae"]

    public init(metricsFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ExperimentError("\(path): cannot read the metrics file")
        }
        for (number, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.isEmpty {
            guard let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw ExperimentError("\(path), line \(number + 1): not a JSON object")
            }
            guard record["type"] as? String == "epoch", let epoch = record["epoch"] as? Int else { continue }
            for (key, value) in record {
                if key.hasPrefix("train_loss_"), let loss = value as? Double {
                    trainingLoss[String(key.dropFirst("train_loss_".count)), default: [:]][epoch] = loss
                } else if key.hasPrefix("dev_"), let metrics = value as? [String: Any] {
                    let head = String(key.dropFirst("dev_".count))
                    if let loss = metrics["loss"] as? Double { developmentLoss[head, default: [:]][epoch] = loss }
                    let metric = metric ?? Self.metricPreference.first { metrics[$0] != nil }
                    if let metric, let score = metrics[metric] as? Double {
                        self.metric = metric
                        developmentMetric[head, default: [:]][epoch] = score
                    }
                }
            }
        }
        guard !trainingLoss.isEmpty else {
            throw ExperimentError("\(path): no epoch records (the run has not finished an epoch)")
        }
    }

    private static let colors = ["acoustic": "#1f77b4", "visual": "#2ca02c", "audio_visual": "#d62728",
                                 "audio": "#1f77b4", "video": "#2ca02c"]

    private static func series(_ values: [String: [Int: Double]], stroke: LinePlot.Stroke, suffix: String) -> [LinePlot.Series] {
        values.keys.sorted().map { name in
            LinePlot.Series(name: name + suffix, points: values[name]!.sorted { $0.key < $1.key }.map { (Double($0.key), $0.value) },
                            color: colors[name] ?? "#555555", stroke: stroke)
        }
    }

    /// Training loss per phase (solid) and development loss per head (dashed), by epoch.
    public func lossPlot(title: String) -> LinePlot {
        LinePlot(title: title, xLabel: "epoch", yLabel: "loss",
                 series: Self.series(trainingLoss, stroke: .solid, suffix: " (train)")
                     + Self.series(developmentLoss, stroke: .dashed, suffix: " (dev)"))
    }

    /// The development metric per head, by epoch; nil without development scores.
    public func metricPlot(title: String) -> LinePlot? {
        guard let metric, !developmentMetric.isEmpty else { return nil }
        return LinePlot(title: title, xLabel: "epoch", yLabel: "development \(metric)",
                        series: Self.series(developmentMetric, stroke: .solid, suffix: ""))
    }
}
