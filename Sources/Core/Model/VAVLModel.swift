#if canImport(Glibc)
import Glibc
#endif

/// The contiguous ranges of the flat parameter buffer that each phase of Algorithm 1
/// updates (DESIGN §4.2). The layout acoustic-only | shared | visual-only | AV head makes each
/// of them one range, since θ_s belongs to both unimodal groups.
public struct PhaseGroups: Sendable, Equatable {
    public var acoustic: Range<Int>     // θ_a, head_a, recon_a, θ_s
    public var visual: Range<Int>       // θ_s, θ_v, head_v, recon_v
    public var audioVisual: Range<Int>  // head_av
    public var shared: Range<Int>       // θ_s

    public func range(_ phase: Phase) -> Range<Int> {
        switch phase {
        case .acoustic: return acoustic
        case .visual: return visual
        case .audioVisual: return audioVisual
        }
    }
}

/// The versatile audio-visual model (DESIGN §2): two modality branches, shared layers,
/// unimodal, reconstruction and audio-visual heads, all in one flat parameter store.
public final class VAVLModel {
    public let configuration: VAVLConfiguration
    public let store: ParameterStore
    public let acoustic: ModalityBranch
    public let visual: ModalityBranch
    public let shared: SharedEncoder
    public let acousticHead: MLPHead
    public let visualHead: MLPHead
    public let acousticReconstruction: MLPHead?
    public let visualReconstruction: MLPHead?
    public let audioVisualHead: MLPHead?
    public let groups: PhaseGroups
    private let pooling = MeanPooling()
    private var acousticBranchRange = 0..<0, visualBranchRange = 0..<0
    private var acousticHeadRange = 0..<0, visualHeadRange = 0..<0
    private let representationGradient = Matrix()

    /// The number of parameters `config` gives, without allocating them: the module tree is
    /// built into a registry alone (layers allocate nothing until they run).
    public static func parameterCount(_ config: VAVLConfiguration) -> Int {
        let registry = ParameterRegistry()
        _ = VAVLModel(config, registry: registry, allocating: false)
        return registry.parameterCount
    }

    /// Builds the module tree; parameters start at their deterministic constants — call
    /// ``initialize(seed:)`` or load a checkpoint.
    public convenience init(_ config: VAVLConfiguration) {
        self.init(config, registry: ParameterRegistry(), allocating: true)
    }

    private init(_ config: VAVLConfiguration, registry: ParameterRegistry, allocating: Bool) {
        configuration = config
        let withReconstruction = config.reconstructionWeight > 0
        func head(_ name: String, inputs: Int, outputs: Int) -> MLPHead {
            MLPHead(registry, name, inputs: inputs, hidden1: config.headHidden1, hidden2: config.headHidden2,
                    outputs: outputs, dropout: config.headDropout)
        }
        // Registration order is the flat layout: acoustic-only | shared | visual-only | AV head.
        acoustic = ModalityBranch(registry, "acoustic", inputs: config.audioDimension, blocks: config.acousticBlocks, config)
        acousticHead = head("head_a", inputs: config.dim, outputs: config.outputDimension)
        acousticReconstruction = withReconstruction ? head("recon_a", inputs: config.dim, outputs: config.audioDimension) : nil
        let sharedStart = registry.parameterCount
        shared = SharedEncoder(registry, config)
        let sharedEnd = registry.parameterCount
        visual = ModalityBranch(registry, "visual", inputs: config.videoDimension, blocks: config.visualBlocks, config)
        visualHead = head("head_v", inputs: config.dim, outputs: config.outputDimension)
        visualReconstruction = withReconstruction ? head("recon_v", inputs: config.dim, outputs: config.videoDimension) : nil
        let visualEnd = registry.parameterCount
        audioVisualHead = config.audioVisualHead ? head("head_av", inputs: 2 * config.dim, outputs: config.outputDimension) : nil
        groups = PhaseGroups(acoustic: 0..<sharedEnd, visual: sharedStart..<visualEnd,
                             audioVisual: visualEnd..<registry.parameterCount, shared: sharedStart..<sharedEnd)
        store = ParameterStore(allocating ? registry : ParameterRegistry())
        store.precision = config.precision
        acousticBranchRange = store.range(ofPrefixes: ["acoustic"])
        visualBranchRange = store.range(ofPrefixes: ["visual"])
        acousticHeadRange = store.range(ofPrefixes: ["head_a", "recon_a"])
        visualHeadRange = store.range(ofPrefixes: ["head_v", "recon_v"])
    }

    public func initialize(seed: UInt64) { store.initialize(seed: seed) }

    public func branch(_ modality: Modality) -> ModalityBranch { modality == .audio ? acoustic : visual }
    public func head(_ modality: Modality) -> MLPHead { modality == .audio ? acousticHead : visualHead }
    public func reconstruction(_ modality: Modality) -> MLPHead? {
        modality == .audio ? acousticReconstruction : visualReconstruction
    }

    // MARK: - Representation r = mean_t LayerNorm(shared(branch(x)) + branch(x))

    /// x (N, d_m) → r (B, dim). The result is overwritten by the next call.
    public func represent(_ modality: Modality, _ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        let branchOutput = branch(modality).forward(x, segments: segments, context)
        let sharedOutput = shared.forward(branchOutput, segments: segments, context)
        return pooling.forward(sharedOutput, segments: segments, context)
    }

    /// Up to this many frames in all, ``predict(audio:video:_:)`` runs both modalities through
    /// the shared layers in one pass (``representBoth(audio:video:_:)``): products of a few
    /// hundred rows run below the kernels' full rate and gain from more (one AV utterance on
    /// one thread: 10–20 % faster, measured side by side). Above it they run at full rate
    /// anyway, and a joint pass would only grow the shared layers' buffers beyond a training
    /// batch's.
    public static let jointPassFrameLimit = 1024

    /// Both modalities' representations in evaluation mode: each branch on its own frames,
    /// then the shared layers and the pooling in one pass over both modalities' frames, the
    /// utterances side by side (audio's, then video's). In evaluation every layer of θ_s
    /// treats each utterance alone (BatchNorm uses its running statistics, no dropout), so
    /// this is the maths of one pass per modality in larger products: one utterance's AV
    /// prediction runs the shared blocks on 240 rows instead of 150 and then 90.
    /// - Returns: (B_a, dim) and (B_v, dim), new matrices.
    func representBoth(audio: (Matrix, Segments), video: (Matrix, Segments), _ context: RunContext) -> (Matrix, Matrix) {
        precondition(context.mode == .evaluation, "modalities share a pass only in evaluation (BatchNorm's batch statistics)")
        let (audioFeatures, audioSegments) = audio, (videoFeatures, videoSegments) = video
        // The video frames go after the audio rows the segments cover: they must cover them all.
        precondition(audioSegments.totalRows == audioFeatures.rows && videoSegments.totalRows == videoFeatures.rows,
                     "segments that do not cover the features")
        let audioFrames = branch(.audio).forward(audioFeatures, segments: audioSegments, context)
        let videoFrames = branch(.video).forward(videoFeatures, segments: videoSegments, context)
        let frames = Matrix(rows: audioFrames.rows + videoFrames.rows, columns: audioFrames.columns)
        frames.data.update(from: audioFrames.data, count: audioFrames.count)
        (frames.data + audioFrames.count).update(from: videoFrames.data, count: videoFrames.count)
        let segments = Segments(lengths: audioSegments.lengths + videoSegments.lengths)
        let pooled = pooling.forward(shared.forward(frames, segments: segments, context), segments: segments, context)
        let audioCount = audioSegments.count * pooled.columns
        let ra = Matrix(rows: audioSegments.count, columns: pooled.columns), rv = Matrix(rows: videoSegments.count, columns: pooled.columns)
        ra.data.update(from: pooled.data, count: audioCount)
        rv.data.update(from: pooled.data + audioCount, count: rv.count)
        return (ra, rv)
    }

    /// Backward of ``represent(_:_:segments:_:)`` from dr (B, dim). `ready` is told each
    /// parameter range as soon as its gradients are final: the shared layers, then the branch.
    public func representBackward(_ modality: Modality, _ dr: Matrix, _ context: RunContext,
                                  ready: (Range<Int>) -> Void = { _ in }) {
        let dShared = pooling.backward(dr, context)
        let dBranch = shared.backward(dShared, context)
        ready(groups.shared)
        branch(modality).backward(dBranch, context)
        ready(branchRange(modality))
    }

    /// The parameters of one modality's branch (proj conv and encoder).
    public func branchRange(_ modality: Modality) -> Range<Int> {
        modality == .audio ? acousticBranchRange : visualBranchRange
    }

    /// The unimodal head and reconstruction head of a modality (adjacent in the layout).
    public func headRange(_ modality: Modality) -> Range<Int> {
        modality == .audio ? acousticHeadRange : visualHeadRange
    }

    // MARK: - Inference

    /// Predictions in evaluation mode for whatever modalities are present (DESIGN §3):
    /// both → head_av (or, under no-av-head, the mean of the unimodal predictions — of the
    /// softmax probabilities for categorical); one → that modality's head.
    /// - Returns: (B, out): logits (categorical, or probabilities under no-av-head with both), values otherwise.
    public func predict(audio: (Matrix, Segments)?, video: (Matrix, Segments)?, _ context: RunContext) -> Matrix {
        context.mode = .evaluation
        var representations: [Modality: Matrix] = [:]
        if let audio, let video, audio.0.rows + video.0.rows <= Self.jointPassFrameLimit {
            (representations[.audio], representations[.video]) = representBoth(audio: audio, video: video, context)
        } else {
            for (modality, input) in [(Modality.audio, audio), (.video, video)] {
                guard let (features, segments) = input else { continue }
                representations[modality] = Matrix(copying: represent(modality, features, segments: segments, context))
            }
        }
        if let ra = representations[.audio], let rv = representations[.video] {
            if let audioVisualHead {
                return Matrix(copying: audioVisualHead.forward(concatenate(ra, rv), context))
            }
            let pa = Matrix(copying: acousticHead.forward(ra, context))
            let pv = visualHead.forward(rv, context)
            if configuration.task == .categorical {
                softmaxRows(pa)
                softmaxRows(pv)
            }
            for i in 0..<pa.count { pa.data[i] = 0.5 * (pa.data[i] + pv.data[i]) }
            return pa
        }
        if let ra = representations[.audio] { return Matrix(copying: acousticHead.forward(ra, context)) }
        if let rv = representations[.video] { return Matrix(copying: visualHead.forward(rv, context)) }
        return Matrix(rows: 0, columns: configuration.outputDimension)
    }
}

/// [a | b] row by row: (B, C₁) and (B, C₂) → (B, C₁ + C₂).
public func concatenate(_ a: Matrix, _ b: Matrix) -> Matrix {
    precondition(a.rows == b.rows, "concatenating \(a.rows) rows with \(b.rows)")
    let result = Matrix(rows: a.rows, columns: a.columns + b.columns)
    for row in 0..<a.rows {
        result.row(row).update(from: a.row(row), count: a.columns)
        (result.row(row) + a.columns).update(from: b.row(row), count: b.columns)
    }
    return result
}

/// Softmax of each row in place.
public func softmaxRows(_ m: Matrix) {
    for row in 0..<m.rows {
        let values = m.row(row)
        var maximum = -Float.infinity
        for i in 0..<m.columns { maximum = max(maximum, values[i]) }
        var sum: Float = 0
        for i in 0..<m.columns {
            values[i] = expf(values[i] - maximum)
            sum += values[i]
        }
        for i in 0..<m.columns { values[i] /= sum }
    }
}

extension Matrix {
    /// A new matrix with `other`'s shape and contents.
    public convenience init(copying other: Matrix) {
        self.init(rows: other.rows, columns: other.columns)
        data.update(from: other.data, count: other.count)
    }
}
