import VAVLTraining
import Foundation
import MPI
import VAVLCore
import VAVLData

/// Missing-frame robustness (paper Figs. 2–3, DESIGN §7): for p = 0, 10, …, 90 % of one
/// modality's frames zeroed (``FrameMasking``: round(p·T/100) seeded frames per utterance,
/// after normalisation), the audio-visual head's scores; the unimodal head of the *other*
/// modality, which the masking does not touch, is the reference line. The masked modality's
/// own unimodal head is recorded too.
public struct RobustnessSweep: Codable, Sendable {
    public var kind = "robustness"
    public var checkpoint: String
    public var corpus: String
    public var split: String
    public var task: PredictionTask
    public var labelNames: [String]
    /// The modality whose frames are masked, and the other one (the reference).
    public var maskedModality: String
    public var referenceModality: String
    public var seed: UInt64
    /// The headline metric (the plot's y axis) and whether higher is better.
    public var metric: String
    public var higherIsBetter: Bool
    public var points: [Point]
    /// The other modality's unimodal head (constant over p).
    public var reference: HeadScores
    /// The first p at which the audio-visual head scores worse than the reference, if any.
    public var crossoverPercent: Double?
    /// The SVG plot's file name, next to the JSON file.
    public var plot: String?

    public struct Point: Codable, Sendable {
        public var percent: Double
        public var audioVisual: HeadScores
        /// The masked modality's own unimodal head under the same masking.
        public var maskedUnimodal: HeadScores?

        enum CodingKeys: String, CodingKey { case percent, audioVisual = "audio_visual", maskedUnimodal = "masked_unimodal" }
    }

    enum CodingKeys: String, CodingKey {
        case kind, checkpoint, corpus, split, task, labelNames = "label_names", maskedModality = "masked_modality"
        case referenceModality = "reference_modality", seed, metric, higherIsBetter = "higher_is_better", points, reference
        case crossoverPercent = "crossover_percent", plot
    }

    /// The default levels: 0, 10, …, 90 %.
    public static let defaultPercents: [Double] = stride(from: 0, through: 90, by: 10).map(Double.init)

    /// Runs the sweep. Every rank must call it (the ``Evaluator`` shares each level's
    /// utterances over the ranks); every rank gets the same result.
    public static func run(_ trained: TrainedModel, corpus: Corpus, split: Split, modality: VAVLData.Modality,
                           seed: UInt64, percents: [Double] = defaultPercents, communicator: Communicator,
                           splits: SplitAssignment? = nil,
                           progress: ((Double, HeadScores) -> Void)? = nil) throws -> RobustnessSweep {
        let task = trained.configuration.task
        let maskedHead: EvaluationHead = modality == .audio ? .audio : .video
        let referenceHead: EvaluationHead = modality == .audio ? .video : .audio
        var points: [Point] = []
        var reference: HeadScores?
        for percent in percents {
            let masking = modality == .audio ? FrameMasking(audioPercent: percent, seed: seed)
                                             : FrameMasking(videoPercent: percent, seed: seed)
            let report = try EvaluationReport.evaluate(trained, corpus: corpus, split: split, masking: masking,
                                                       communicator: communicator, splits: splits)
            guard let audioVisual = report.heads[EvaluationHead.audioVisual.rawValue] else {
                throw ExperimentError("\(corpus.path): the \(split.rawValue) split has no utterance with both audio and video; the sweep needs the audio-visual head")
            }
            if reference == nil { reference = report.heads[referenceHead.rawValue] }
            points.append(Point(percent: percent, audioVisual: audioVisual, maskedUnimodal: report.heads[maskedHead.rawValue]))
            progress?(percent, audioVisual)
        }
        guard let reference else {
            throw ExperimentError("\(corpus.path): no \(referenceHead.rawValue) utterance in the \(split.rawValue) split for the reference line")
        }
        let metric = TaskMetrics.primary(task)
        var sweep = RobustnessSweep(checkpoint: trained.path, corpus: corpus.path, split: split.rawValue, task: task,
                                    labelNames: trained.configuration.labelNames, maskedModality: modality.rawValue,
                                    referenceModality: referenceHead == .audio ? "audio" : "video", seed: seed,
                                    metric: metric, higherIsBetter: TaskMetrics.higherIsBetter(metric), points: points,
                                    reference: reference, crossoverPercent: nil, plot: nil)
        sweep.crossoverPercent = sweep.crossover()
        return sweep
    }

    /// The headline metric of the AV head at each level.
    public var audioVisualCurve: [Double] { points.map { $0.audioVisual.metrics[metric] ?? .nan } }
    public var referenceValue: Double { reference.metrics[metric] ?? .nan }

    func crossover() -> Double? {
        let line = referenceValue
        for point in points {
            let value = point.audioVisual.metrics[metric] ?? .nan
            if higherIsBetter ? value < line : value > line { return point.percent }
        }
        return nil
    }

    // MARK: - Output

    var referenceName: String { "\(referenceModality)-only head" }
    var maskedName: String { "\(maskedModality)-only head (masked)" }

    /// One row per level: p, AV head, reference, masked unimodal head (headline metric).
    func tableRows() -> (header: [String], rows: [[String]]) {
        let header = ["masked \(maskedModality) frames (%)", "audio-visual", referenceName, maskedName]
        let rows = points.map { point in
            [String(format: "%.0f", point.percent), formatMetric(point.audioVisual.metrics[metric]),
             formatMetric(referenceValue), formatMetric(point.maskedUnimodal?.metrics[metric])]
        }
        return (header, rows)
    }

    public var table: String {
        let (header, rows) = tableRows()
        var text = "robustness to missing \(maskedModality) frames, \(split) split of \(corpus) — \(checkpoint)\n"
        text += "\(TaskMetrics.label(metric)) (\(higherIsBetter ? "higher" : "lower") is better)\n"
        text += TextTable(header: header, rows: rows).render()
        if let crossoverPercent {
            text += "\nthe audio-visual head falls below the \(referenceName) at \(Int(crossoverPercent)) % masked \(maskedModality) frames"
        } else {
            text += "\nthe audio-visual head stays at or above the \(referenceName) at every level"
        }
        return text
    }

    public var markdown: String {
        let (header, rows) = tableRows()
        var text = "Missing \(maskedModality) frames on the \(split) split of `\(corpus)` (checkpoint `\(checkpoint)`, masking seed \(seed)); "
        text += "\(TaskMetrics.label(metric)), \(higherIsBetter ? "higher" : "lower") is better.\n\n"
        text += TextTable(header: header, rows: rows).markdown() + "\n"
        if let crossoverPercent {
            text += "\nThe audio-visual head falls below the \(referenceName) at \(Int(crossoverPercent)) % masked \(maskedModality) frames.\n"
        }
        return text
    }

    /// The figure: x = % masked frames, y = the headline metric; AV head solid, reference dashed.
    public var plotFigure: LinePlot {
        let xs = points.map(\.percent)
        var series = [
            LinePlot.Series(name: "audio-visual head", points: zip(xs, audioVisualCurve).map { ($0, $1) }, color: "#1f77b4"),
            LinePlot.Series(name: referenceName, points: xs.map { ($0, referenceValue) }, color: "#d62728",
                            stroke: .dashed, markers: false),
        ]
        let masked = points.map { $0.maskedUnimodal?.metrics[metric] ?? .nan }
        if masked.contains(where: \.isFinite) {
            series.append(LinePlot.Series(name: maskedName, points: zip(xs, masked).map { ($0, $1) }, color: "#7f7f7f",
                                          stroke: .dotted, markers: true))
        }
        return LinePlot(title: "Missing \(maskedModality) frames (\(split) split)", xLabel: "% of masked \(maskedModality) frames",
                        yLabel: TaskMetrics.label(metric), series: series, xTicks: xs)
    }

    /// Writes `robustness-<modality>.json`, `.svg` and `.txt` into `directory`; returns the JSON path.
    @discardableResult
    public func write(to directory: String) throws -> String {
        try ExperimentFile.makeDirectory(directory)
        var sweep = self
        let base = "robustness-\(maskedModality)"
        sweep.plot = base + ".svg"
        try plotFigure.write(to: (directory as NSString).appendingPathComponent(base + ".svg"))
        try ExperimentFile.write(text: table + "\n", to: (directory as NSString).appendingPathComponent(base + ".txt"))
        let json = (directory as NSString).appendingPathComponent(base + ".json")
        try ExperimentFile.write(sweep, to: json)
        return json
    }
}
