import Dispatch
import VAVLCore
import VAVLData

/// Reads this rank's utterances of a global batch from the corpus — only those, each by row
/// range — normalises the features with the train-split statistics and maps the labels to
/// the training scale, giving a ``TrainingBatch``.
public final class BatchLoader {
    public let corpus: Corpus
    public var normalization: Normalization
    public let labels: LabelMapping

    public init(corpus: Corpus, normalization: Normalization, labels: LabelMapping) {
        self.corpus = corpus
        self.normalization = normalization
        self.labels = labels
    }

    /// Loads `rows` (corpus rows, in order). A bad value throws an error naming the file
    /// and the utterance.
    public func load(_ rows: [Int]) throws -> TrainingBatch {
        try corpus.ensureUnchanged()
        let labelMatrix = Matrix(rows: rows.count, columns: labels.outputCount)
        for (index, row) in rows.enumerated() { labels.map(corpus.labels(of: row), into: labelMatrix.row(index)) }
        return TrainingBatch(labels: labelMatrix, keys: rows.map { UInt64($0) },
                             audio: try input(.audio, rows), video: try input(.video, rows))
    }

    /// One modality's frames of the rows that have it, normalised.
    public func input(_ modality: VAVLData.Modality, _ rows: [Int]) throws -> ModalityInput {
        let dimension = corpus.dimension(modality)
        var lengths: [Int] = [], present: [Int] = []
        for (index, row) in rows.enumerated() {
            let frames = corpus.frameCount(modality, utterance: row)
            if frames > 0 {
                lengths.append(frames)
                present.append(index)
            }
        }
        let segments = Segments(lengths: lengths)
        let features = Matrix(rows: segments.totalRows, columns: dimension)
        for (segment, index) in present.enumerated() {
            let destination = UnsafeMutableBufferPointer(start: features.row(segments.start(segment)),
                                                         count: segments.length(segment) * dimension)
            try corpus.readFrames(modality, utterance: rows[index], into: destination)
            normalization.apply(modality, destination)
        }
        return ModalityInput(features: features, segments: segments, utterances: present)
    }
}

/// z-normalisation x̃ = (x − mean) / (std + 1e-6) per dimension (DESIGN §3), with the raw
/// statistics kept for the checkpoint.
public struct Normalization: Sendable {
    public var audio: FeatureStatistics?
    public var video: FeatureStatistics?
    private var audioShift: [Float] = [], audioScale: [Float] = []
    private var videoShift: [Float] = [], videoScale: [Float] = []

    public init(audio: FeatureStatistics?, video: FeatureStatistics?) {
        self.audio = audio
        self.video = video
        if let audio {
            audioShift = audio.mean.map { Float($0) }
            audioScale = audio.std.map { Float(1 / ($0 + FeatureStatistics.epsilon)) }
        }
        if let video {
            videoShift = video.mean.map { Float($0) }
            videoScale = video.std.map { Float(1 / ($0 + FeatureStatistics.epsilon)) }
        }
    }

    public func statistics(_ modality: VAVLData.Modality) -> FeatureStatistics? { modality == .audio ? audio : video }

    /// Normalises rows of frames in place; identity when the modality has no statistics.
    public func apply(_ modality: VAVLData.Modality, _ frames: UnsafeMutableBufferPointer<Float>) {
        let shift = modality == .audio ? audioShift : videoShift
        let scale = modality == .audio ? audioScale : videoScale
        let dimension = shift.count
        guard dimension > 0 else { return }
        shift.withUnsafeBufferPointer { m in
            scale.withUnsafeBufferPointer { s in
                var index = 0
                while index < frames.count {
                    for column in 0..<dimension { frames[index + column] = (frames[index + column] - m[column]) * s[column] }
                    index += dimension
                }
            }
        }
    }
}

/// Labels from the corpus's raw scale to the training scale: categorical rows unchanged
/// (a class distribution), dimensional columns mapped by their ``LabelTransform``,
/// sentiment unchanged.
public struct LabelMapping: Sendable {
    public var task: PredictionTask
    public var transforms: [LabelTransform]
    public var outputCount: Int

    public init(task: PredictionTask, transforms: [LabelTransform], outputCount: Int) {
        self.task = task
        self.transforms = transforms
        self.outputCount = outputCount
    }

    public func map(_ raw: ArraySlice<Float>, into destination: UnsafeMutablePointer<Float>) {
        for (column, value) in raw.enumerated() where column < outputCount {
            if task == .dimensional, column < transforms.count {
                destination[column] = Float(transforms[column].apply(Double(value)))
            } else {
                destination[column] = value
            }
        }
    }
}

/// Runs loads on one background thread, one batch ahead, so reading and normalising the
/// next batch overlaps the current step's compute. Only the calling thread touches MPI.
public final class Prefetcher<Value> {
    private let queue = DispatchQueue(label: "vavl.prefetch")
    private var pending: (group: DispatchGroup, box: ResultBox)?

    private final class ResultBox: @unchecked Sendable { var result: Result<Value, Error>? }

    public init() {}

    /// Starts `work` in the background, replacing nothing: call ``take()`` first.
    public func start(_ work: @escaping () throws -> Value) {
        precondition(pending == nil, "one prefetch at a time")
        let group = DispatchGroup(), box = ResultBox()
        group.enter()
        queue.async {
            box.result = Result { try work() }
            group.leave()
        }
        pending = (group, box)
    }

    public var isPending: Bool { pending != nil }

    /// Waits for the started work and returns its value (or rethrows its error).
    public func take() throws -> Value {
        guard let (group, box) = pending else { preconditionFailure("nothing was prefetched") }
        group.wait()
        pending = nil
        return try box.result!.get()
    }
}
