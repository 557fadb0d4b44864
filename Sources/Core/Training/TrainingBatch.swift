/// The frames of one modality for the utterances of a batch that have it.
public struct ModalityInput {
    /// (N_m, d_m) normalised features, utterances packed in segment order.
    public var features: Matrix
    public var segments: Segments
    /// For each segment, the index of its utterance in the batch.
    public var utterances: [Int]

    public init(features: Matrix, segments: Segments, utterances: [Int]) {
        precondition(segments.count == utterances.count, "one batch index per segment")
        precondition(features.rows == segments.totalRows, "features have \(features.rows) rows, segments \(segments.totalRows)")
        self.features = features
        self.segments = segments
        self.utterances = utterances
    }

    public static func empty(dimension: Int) -> ModalityInput {
        ModalityInput(features: Matrix(rows: 0, columns: dimension), segments: Segments(offsets: [0]), utterances: [])
    }

    /// The subset of segments whose utterances are in `keep`, in the current order.
    public func restricted(to keep: Set<Int>) -> ModalityInput {
        // The common case, an all-paired batch, needs no copy.
        if utterances.allSatisfy(keep.contains) { return self }
        var lengths: [Int] = [], kept: [Int] = [], sources: [Int] = []
        for (segment, utterance) in utterances.enumerated() where keep.contains(utterance) {
            lengths.append(segments.length(segment))
            kept.append(utterance)
            sources.append(segment)
        }
        let newSegments = Segments(lengths: lengths)
        let result = Matrix(rows: newSegments.totalRows, columns: features.columns)
        for (index, segment) in sources.enumerated() {
            result.row(newSegments.start(index)).update(from: features.row(segments.start(segment)),
                                                        count: segments.length(segment) * features.columns)
        }
        return ModalityInput(features: result, segments: newSegments, utterances: kept)
    }

    /// The mean of each utterance's frames: the reconstruction target x̄ (B_m, d_m).
    public func frameMeans() -> Matrix {
        MeanPooling().pool(features, segments: segments).copied()
    }
}

/// This rank's share of a global batch: labels of every utterance and the frames of each
/// modality it has.
public struct TrainingBatch {
    /// (B, K) labels on the training scale (dimensional labels already mapped).
    public var labels: Matrix
    /// (B) a stable key per utterance (its corpus row), for dropout masks.
    public var keys: [UInt64]
    public var audio: ModalityInput
    public var video: ModalityInput

    public init(labels: Matrix, keys: [UInt64], audio: ModalityInput, video: ModalityInput) {
        self.labels = labels
        self.keys = keys
        self.audio = audio
        self.video = video
    }

    public var count: Int { labels.rows }

    /// Utterances with both modalities.
    public var paired: Set<Int> { Set(audio.utterances).intersection(video.utterances) }

    public func input(_ modality: Modality) -> ModalityInput { modality == .audio ? audio : video }

    /// Label rows of `utterances`, in that order.
    public func labels(of utterances: [Int]) -> Matrix {
        let result = Matrix(rows: utterances.count, columns: labels.columns)
        for (row, utterance) in utterances.enumerated() {
            result.row(row).update(from: labels.row(utterance), count: labels.columns)
        }
        return result
    }

    /// Local counts of utterances taking part in each phase.
    public var localCounts: PhaseCounts {
        PhaseCounts(acoustic: audio.utterances.count, visual: video.utterances.count, audioVisual: paired.count)
    }
}

/// How many utterances take part in each phase. The global counts come from the global
/// batch plan, which every rank derives alone, so deciding whether a phase runs needs no
/// communication and every rank makes the same decision.
public struct PhaseCounts: Equatable, Sendable {
    public var acoustic: Int
    public var visual: Int
    public var audioVisual: Int

    public init(acoustic: Int, visual: Int, audioVisual: Int) {
        self.acoustic = acoustic
        self.visual = visual
        self.audioVisual = audioVisual
    }

    public subscript(phase: Phase) -> Int {
        switch phase {
        case .acoustic: return acoustic
        case .visual: return visual
        case .audioVisual: return audioVisual
        }
    }
}

extension Matrix {
    /// A copy that does not alias this matrix's buffer.
    public func copied() -> Matrix { Matrix(copying: self) }
}
