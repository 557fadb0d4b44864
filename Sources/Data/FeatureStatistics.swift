// Train-split feature statistics for z-normalisation (DESIGN §3).

/// Per-dimension mean and population standard deviation (ddof 0) of one modality's frames,
/// over every frame of the train-split utterances that have that modality, accumulated in
/// Double. Training normalises with x̃ = (x − mean) / (std + 1e-6) and stores the raw mean
/// and std with the model.
public struct FeatureStatistics: Codable, Equatable, Sendable {
    /// Per-dimension mean, `dimension` values.
    public var mean: [Double]
    /// Per-dimension population standard deviation, `dimension` values.
    public var std: [Double]
    /// How many frames went into the statistics.
    public var frameCount: Int

    /// The ε added to the std when normalising (the released code's value).
    public static let epsilon = 1e-6

    public init(mean: [Double], std: [Double], frameCount: Int) {
        self.mean = mean
        self.std = std
        self.frameCount = frameCount
    }

    public var dimension: Int { mean.count }

    /// Normalises `frames` (T × dimension, row-major) in place: x̃ = (x − mean) / (std + 1e-6),
    /// computed in Double and rounded once to Float.
    public func normalize(_ frames: UnsafeMutableBufferPointer<Float>) {
        let dimension = self.dimension
        precondition(dimension > 0 && frames.count % dimension == 0,
                     "\(frames.count) values are not rows of \(dimension)")
        let scale = std.map { 1 / ($0 + Self.epsilon) }
        var index = 0
        while index < frames.count {
            for column in 0..<dimension {
                frames[index + column] = Float((Double(frames[index + column]) - mean[column]) * scale[column])
            }
            index += dimension
        }
    }
}

/// Accumulates ``FeatureStatistics`` utterance by utterance without keeping frames: each
/// batch of frames is reduced to its count, mean and sum of squared deviations in Double
/// (two passes over the batch, which is in memory), and batches are merged with Chan et
/// al.'s pairwise formula — no cancellation from Σx² − n·mean², whatever the offset.
public struct FeatureStatisticsAccumulator: Sendable {
    public let dimension: Int
    public private(set) var count = 0
    private var mean: [Double]
    private var m2: [Double]
    private var batchMean: [Double]
    private var batchM2: [Double]

    public init(dimension: Int) {
        self.dimension = dimension
        mean = [Double](repeating: 0, count: dimension)
        m2 = mean
        batchMean = mean
        batchM2 = mean
    }

    /// Adds `frames` (T × dimension floats, row-major).
    public mutating func add(_ frames: UnsafeBufferPointer<Float>) {
        let dimension = self.dimension
        guard dimension > 0 else { return }
        precondition(frames.count % dimension == 0, "\(frames.count) values are not rows of \(dimension)")
        let rows = frames.count / dimension
        guard rows > 0 else { return }
        let source = frames.baseAddress!
        batchMean.withUnsafeMutableBufferPointer { batchMean in
            batchM2.withUnsafeMutableBufferPointer { batchM2 in
                for column in 0..<dimension { batchMean[column] = 0; batchM2[column] = 0 }
                for row in 0..<rows {
                    let frame = source + row * dimension
                    for column in 0..<dimension { batchMean[column] += Double(frame[column]) }
                }
                let inverse = 1 / Double(rows)
                for column in 0..<dimension { batchMean[column] *= inverse }
                for row in 0..<rows {
                    let frame = source + row * dimension
                    for column in 0..<dimension {
                        let deviation = Double(frame[column]) - batchMean[column]
                        batchM2[column] += deviation * deviation
                    }
                }
                // Chan, Golub & LeVeque: merge (count, mean, m2) with (rows, batchMean, batchM2).
                let total = count + rows
                let weight = Double(rows) / Double(total)
                let cross = Double(count) * Double(rows) / Double(total)
                mean.withUnsafeMutableBufferPointer { mean in
                    m2.withUnsafeMutableBufferPointer { m2 in
                        for column in 0..<dimension {
                            let delta = batchMean[column] - mean[column]
                            mean[column] += delta * weight
                            m2[column] += batchM2[column] + delta * delta * cross
                        }
                    }
                }
                count = total
            }
        }
    }

    public mutating func add(_ frames: [Float]) {
        frames.withUnsafeBufferPointer { add($0) }
    }

    /// The statistics so far, or `nil` before any frame.
    public var statistics: FeatureStatistics? {
        guard count > 0 else { return nil }
        let inverse = 1 / Double(count)
        return FeatureStatistics(mean: mean, std: m2.map { ($0 * inverse).squareRoot() }, frameCount: count)
    }
}

/// Computes the train-split statistics of modality `modality` by reading every train
/// utterance that has it (or the given `rows`, e.g. the train split of a partition file),
/// one utterance at a time (memory: one utterance). Every value read is checked to be
/// finite. Returns `nil` when no such utterance has the modality.
public func computeFeatureStatistics(_ corpus: Corpus, _ modality: Modality, rows: [Int]? = nil) throws -> FeatureStatistics? {
    var accumulator = FeatureStatisticsAccumulator(dimension: corpus.dimension(modality))
    var buffer: [Float] = []
    for utterance in rows ?? corpus.utterances(in: .train) {
        let frames = corpus.frameCount(modality, utterance: utterance)
        if frames == 0 { continue }
        let count = frames * corpus.dimension(modality)
        if buffer.count < count { buffer = [Float](repeating: 0, count: count) }
        try buffer.withUnsafeMutableBufferPointer { whole in
            let part = UnsafeMutableBufferPointer(rebasing: whole[0..<count])
            try corpus.readFrames(modality, utterance: utterance, into: part)
            accumulator.add(UnsafeBufferPointer(part))
        }
    }
    return accumulator.statistics
}
