import Foundation

// MARK: - Inspect

/// What `vavl corpus inspect` shows: counts per split and per modality pattern, frames,
/// dimensions, label statistics and the size on disk. Computed from the metadata and
/// offsets only (no feature is read).
public struct CorpusSummary: Codable, Equatable, Sendable {
    public struct SplitCounts: Codable, Equatable, Sendable {
        public var split: Split
        public var utterances: Int
        public var audioAndVideo: Int
        public var audioOnly: Int
        public var videoOnly: Int
        public var speakers: Int
    }

    public struct Frames: Codable, Equatable, Sendable {
        public var modality: Modality
        public var dimension: Int
        public var framesPerSecond: Double
        /// Utterances that have this modality.
        public var utterances: Int
        public var total: Int
        public var minimum: Int
        public var mean: Double
        public var maximum: Int
        /// Mean duration in seconds of the utterances that have this modality.
        public var meanSeconds: Double
        /// Whether the file stores train-split statistics for this modality.
        public var storedStatistics: Bool
    }

    public struct LabelStatistics: Codable, Equatable, Sendable {
        public var name: String
        public var mean: Double
        /// Population standard deviation over all utterances.
        public var std: Double
        public var minimum: Double
        public var maximum: Double
        /// Categorical corpora: utterances whose hard label (first maximal column) is this class.
        public var hardLabelCount: Int?
    }

    public var file: String
    public var bytes: Int
    public var task: PredictionTask
    public var labelNames: [String]
    public var labelRange: [Double]?
    public var utterances: Int
    public var speakers: Int
    public var splits: [SplitCounts]
    public var frames: [Frames]
    public var labels: [LabelStatistics]

    /// Summarises `corpus`.
    public init(_ corpus: Corpus) {
        file = corpus.path
        let attributes = try? FileManager.default.attributesOfItem(atPath: corpus.path)
        bytes = (attributes?[.size] as? Int) ?? 0
        task = corpus.task
        labelNames = corpus.labelNames
        labelRange = corpus.labelRange.map { [$0.lowerBound, $0.upperBound] }
        utterances = corpus.utteranceCount
        speakers = Set(corpus.speakers).count
        splits = Split.allCases.map { split in
            let members = corpus.utterances(in: split)
            var counts = SplitCounts(split: split, utterances: members.count, audioAndVideo: 0, audioOnly: 0, videoOnly: 0,
                                     speakers: Set(members.map { corpus.speakers[$0] }).count)
            for utterance in members {
                switch (corpus.has(.audio, utterance: utterance), corpus.has(.video, utterance: utterance)) {
                case (true, true): counts.audioAndVideo += 1
                case (true, false): counts.audioOnly += 1
                default: counts.videoOnly += 1
                }
            }
            return counts
        }
        frames = Modality.allCases.map { modality in
            let counts = (0..<corpus.utteranceCount).map { corpus.frameCount(modality, utterance: $0) }.filter { $0 > 0 }
            let total = counts.reduce(0, +)
            let mean = counts.isEmpty ? 0 : Double(total) / Double(counts.count)
            return Frames(modality: modality, dimension: corpus.dimension(modality),
                          framesPerSecond: corpus.framesPerSecond(modality), utterances: counts.count, total: total,
                          minimum: counts.min() ?? 0, mean: mean, maximum: counts.max() ?? 0,
                          meanSeconds: mean / corpus.framesPerSecond(modality),
                          storedStatistics: corpus.storedStatistics(modality) != nil)
        }
        let count = corpus.utteranceCount, columns = corpus.labelCount
        var hard = [Int](repeating: 0, count: columns)
        if corpus.task == .categorical {
            for utterance in 0..<count {
                let row = corpus.labels(of: utterance)
                var best = row.startIndex
                for index in row.indices where row[index] > row[best] { best = index }
                hard[best - row.startIndex] += 1
            }
        }
        labels = corpus.labelNames.enumerated().map { column, name in
            let values = (0..<count).map { Double(corpus.labels[$0 * columns + column]) }
            let mean = values.reduce(0, +) / Double(max(count, 1))
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(count, 1))
            return LabelStatistics(name: name, mean: mean, std: variance.squareRoot(), minimum: values.min() ?? 0,
                                   maximum: values.max() ?? 0, hardLabelCount: corpus.task == .categorical ? hard[column] : nil)
        }
    }

    /// A readable multi-line report.
    public var text: String {
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
        }
        func number(_ value: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", value) }
        var lines: [String] = []
        lines.append("\(file)  (\(String(format: "%.1f", Double(bytes) / 1e6)) MB)")
        let range = labelRange.map { " on \(number($0[0], 1))…\(number($0[1], 1))" } ?? ""
        lines.append("task \(task.rawValue), \(labelNames.count) labels\(range): \(labelNames.joined(separator: ", "))")
        lines.append("\(utterances) utterances, \(speakers) speakers")
        lines.append("")
        lines.append("split   utterances  audio+video  audio-only  video-only  speakers")
        for split in splits {
            lines.append(split.split.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0) + pad("\(split.utterances)", 12) +
                         pad("\(split.audioAndVideo)", 13) + pad("\(split.audioOnly)", 12) + pad("\(split.videoOnly)", 12) +
                         pad("\(split.speakers)", 10))
        }
        lines.append("")
        lines.append("modality  dim   fps  utterances       frames   min    mean   max  mean s  train stats")
        for frame in frames {
            lines.append(frame.modality.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + pad("\(frame.dimension)", 5) +
                         pad(number(frame.framesPerSecond, 0), 6) + pad("\(frame.utterances)", 12) + pad("\(frame.total)", 13) +
                         pad("\(frame.minimum)", 6) + pad(number(frame.mean, 1), 8) + pad("\(frame.maximum)", 6) +
                         pad(number(frame.meanSeconds, 2), 8) + pad(frame.storedStatistics ? "stored" : "none", 13))
        }
        lines.append("")
        lines.append("label          mean     std     min     max" + (task == .categorical ? "  hard labels" : ""))
        for label in labels {
            lines.append(label.name.padding(toLength: 10, withPad: " ", startingAt: 0) + pad(number(label.mean), 9) +
                         pad(number(label.std), 8) + pad(number(label.minimum), 8) + pad(number(label.maximum), 8) +
                         (label.hardLabelCount.map { pad("\($0)", 13) } ?? ""))
        }
        return lines.joined(separator: "\n")
    }
}

// MARK: - Validate

/// The outcome of ``validateCorpus(_:maximumProblems:progress:)``.
public struct ValidationReport: Codable, Equatable, Sendable {
    public var file: String
    /// Every problem found, each naming the file and (when there is one) the utterance.
    public var problems: [String]
    public var utterancesChecked: Int
    public var valuesChecked: Int
    public var isValid: Bool { problems.isEmpty }
}

/// Validates the corpus at `path` in full: the structure (as ``Corpus/open(_:)`` does), every
/// feature value (NaN/Inf), and the stored train-split statistics against a recomputation.
/// Collects up to `maximumProblems` problems; a structural problem stops the check.
public func validateCorpus(_ path: String, maximumProblems: Int = 50,
                           progress: ((Int, Int) -> Void)? = nil) -> ValidationReport {
    var report = ValidationReport(file: path, problems: [], utterancesChecked: 0, valuesChecked: 0)
    let corpus: Corpus
    do {
        corpus = try Corpus.open(path)
    } catch {
        report.problems.append(String(describing: error))
        return report
    }
    var accumulators = Modality.allCases.map { FeatureStatisticsAccumulator(dimension: corpus.dimension($0)) }
    var buffer: [Float] = []
    for utterance in 0..<corpus.utteranceCount {
        for (index, modality) in Modality.allCases.enumerated() {
            let count = corpus.frameCount(modality, utterance: utterance) * corpus.dimension(modality)
            if count == 0 { continue }
            if buffer.count < count { buffer = [Float](repeating: 0, count: count) }
            do {
                try buffer.withUnsafeMutableBufferPointer { whole in
                    let part = UnsafeMutableBufferPointer(rebasing: whole[0..<count])
                    try corpus.readFrames(modality, utterance: utterance, into: part)
                    if corpus.splits[utterance] == .train { accumulators[index].add(UnsafeBufferPointer(part)) }
                }
                report.valuesChecked += count
            } catch {
                report.problems.append(String(describing: error))
                if report.problems.count >= maximumProblems {
                    report.problems.append("\(path): stopped after \(maximumProblems) problems")
                    return report
                }
            }
        }
        report.utterancesChecked += 1
        progress?(utterance + 1, corpus.utteranceCount)
    }
    if report.problems.isEmpty {
        for (index, modality) in Modality.allCases.enumerated() {
            guard let stored = corpus.storedStatistics(modality) else { continue }
            guard let computed = accumulators[index].statistics else {
                report.problems.append("\(path): /\(modality.rawValue)/train_mean is stored but no train utterance has \(modality.rawValue) frames")
                continue
            }
            for column in 0..<stored.dimension {
                let scale = computed.std[column] + abs(computed.mean[column]) + 1e-12
                if abs(stored.mean[column] - computed.mean[column]) > 1e-6 * scale
                    || abs(stored.std[column] - computed.std[column]) > 1e-6 * scale {
                    report.problems.append("\(path): stored \(modality.rawValue) train statistics differ from the features at dimension \(column): mean \(stored.mean[column]) vs \(computed.mean[column]), std \(stored.std[column]) vs \(computed.std[column])")
                    break
                }
            }
        }
    }
    return report
}
