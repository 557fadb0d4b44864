/// Every size and hyperparameter of the model and its training (SPEC §2–§3, key names of
/// SPEC §6's `config` JSON). Defaults are the paper's.
public struct VAVLConfiguration: Codable, Equatable, Sendable {
    // MARK: Architecture
    public var audioDimension = 1024          // d_a
    public var videoDimension = 1408          // d_v
    public var projectionDimension = 50       // proj_dim
    public var projectionKernel = 5           // k_proj
    public var dim = 512
    public var heads = 8
    public var acousticBlocks = 3             // blocks_a
    public var visualBlocks = 3               // blocks_v
    public var sharedBlocks = 2               // blocks_s
    public var feedForwardExpansion = 4       // ff_expansion
    public var convolutionKernel = 31         // conv_kernel
    public var headHidden1 = 512
    public var headHidden2 = 256
    public var outputDimension = 6            // out_dim
    public var task: PredictionTask = .categorical
    public var softLabel = false
    /// Reconstruction weight α; `nil` means the task default (2 categorical, 1 otherwise).
    public var alpha: Double? = nil
    public var residual = true
    public var audioVisualHead = true         // av_head
    public var inputDropout: Float = 0.1
    public var feedForwardDropout: Float = 0.1
    public var attentionDropout: Float = 0.1
    public var attentionOutputDropout: Float = 0.1  // mhsa_dropout
    public var convolutionDropout: Float = 0.1
    public var headDropout: Float = 0.2
    public var layerNormEpsilon: Float = 1e-5
    public var batchNormEpsilon: Float = 1e-5
    public var batchNormMomentum: Float = 0.1

    // MARK: Optimisation and training
    public var learningRate: Float = 5e-5
    public var betas: [Float] = [0.95, 0.999]
    public var adamEpsilon: Float = 1e-8
    public var weightDecay: Float = 5e-7
    public var phaseOrder: [Phase] = [.acoustic, .visual, .audioVisual]
    public var labelNames: [String] = []
    public var labelTransform: [LabelTransform] = []
    public var seed: UInt64 = 0
    public var batchSize = 32
    public var epochs = 20
    public var sampler = "natural"
    public var batchnorm = "sync"

    public init() {}

    /// α resolved: the configured value, or 2 for categorical and 1 otherwise (released code).
    public var reconstructionWeight: Double { alpha ?? (task == .categorical ? 2 : 1) }

    public var adam: AdamConfiguration {
        var adam = AdamConfiguration()
        adam.learningRate = learningRate
        adam.beta1 = betas[0]
        adam.beta2 = betas[1]
        adam.epsilon = adamEpsilon
        adam.weightDecay = weightDecay
        return adam
    }

    enum CodingKeys: String, CodingKey {
        case audioDimension = "d_a", videoDimension = "d_v", projectionDimension = "proj_dim", projectionKernel = "k_proj"
        case dim, heads, acousticBlocks = "blocks_a", visualBlocks = "blocks_v", sharedBlocks = "blocks_s"
        case feedForwardExpansion = "ff_expansion", convolutionKernel = "conv_kernel"
        case headHidden1 = "head_hidden1", headHidden2 = "head_hidden2", outputDimension = "out_dim"
        case task, softLabel = "soft_label", alpha, residual, audioVisualHead = "av_head"
        case inputDropout = "input_dropout", feedForwardDropout = "ff_dropout", attentionDropout = "attn_dropout"
        case attentionOutputDropout = "mhsa_dropout", convolutionDropout = "conv_dropout", headDropout = "head_dropout"
        case layerNormEpsilon = "ln_eps", batchNormEpsilon = "bn_eps", batchNormMomentum = "bn_momentum"
        case learningRate = "lr", betas, adamEpsilon = "adam_eps", weightDecay = "weight_decay"
        case phaseOrder = "phase_order", labelNames = "label_names", labelTransform = "label_transform"
        case seed, batchSize = "batch_size", epochs, sampler, batchnorm
    }

    /// Decodes with every missing key at its default, so configs written by other tools or
    /// by older versions load; unknown keys are ignored.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func decode<T: Decodable>(_ key: CodingKeys, _ target: inout T) throws {
            if let value = try c.decodeIfPresent(T.self, forKey: key) { target = value }
        }
        try decode(.audioDimension, &audioDimension); try decode(.videoDimension, &videoDimension)
        try decode(.projectionDimension, &projectionDimension); try decode(.projectionKernel, &projectionKernel)
        try decode(.dim, &dim); try decode(.heads, &heads)
        try decode(.acousticBlocks, &acousticBlocks); try decode(.visualBlocks, &visualBlocks)
        try decode(.sharedBlocks, &sharedBlocks); try decode(.feedForwardExpansion, &feedForwardExpansion)
        try decode(.convolutionKernel, &convolutionKernel); try decode(.headHidden1, &headHidden1)
        try decode(.headHidden2, &headHidden2); try decode(.outputDimension, &outputDimension)
        try decode(.task, &task); try decode(.softLabel, &softLabel)
        alpha = try c.decodeIfPresent(Double.self, forKey: .alpha)
        try decode(.residual, &residual); try decode(.audioVisualHead, &audioVisualHead)
        try decode(.inputDropout, &inputDropout); try decode(.feedForwardDropout, &feedForwardDropout)
        try decode(.attentionDropout, &attentionDropout); try decode(.attentionOutputDropout, &attentionOutputDropout)
        try decode(.convolutionDropout, &convolutionDropout); try decode(.headDropout, &headDropout)
        try decode(.layerNormEpsilon, &layerNormEpsilon); try decode(.batchNormEpsilon, &batchNormEpsilon)
        try decode(.batchNormMomentum, &batchNormMomentum); try decode(.learningRate, &learningRate)
        try decode(.betas, &betas); try decode(.adamEpsilon, &adamEpsilon); try decode(.weightDecay, &weightDecay)
        try decode(.phaseOrder, &phaseOrder); try decode(.labelNames, &labelNames)
        try decode(.labelTransform, &labelTransform); try decode(.seed, &seed); try decode(.batchSize, &batchSize)
        try decode(.epochs, &epochs); try decode(.sampler, &sampler); try decode(.batchnorm, &batchnorm)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(audioDimension, forKey: .audioDimension); try c.encode(videoDimension, forKey: .videoDimension)
        try c.encode(projectionDimension, forKey: .projectionDimension); try c.encode(projectionKernel, forKey: .projectionKernel)
        try c.encode(dim, forKey: .dim); try c.encode(heads, forKey: .heads)
        try c.encode(acousticBlocks, forKey: .acousticBlocks); try c.encode(visualBlocks, forKey: .visualBlocks)
        try c.encode(sharedBlocks, forKey: .sharedBlocks); try c.encode(feedForwardExpansion, forKey: .feedForwardExpansion)
        try c.encode(convolutionKernel, forKey: .convolutionKernel); try c.encode(headHidden1, forKey: .headHidden1)
        try c.encode(headHidden2, forKey: .headHidden2); try c.encode(outputDimension, forKey: .outputDimension)
        try c.encode(task, forKey: .task); try c.encode(softLabel, forKey: .softLabel)
        try c.encode(alpha, forKey: .alpha)  // null = task default, as SPEC §6 says
        try c.encode(residual, forKey: .residual); try c.encode(audioVisualHead, forKey: .audioVisualHead)
        try c.encode(inputDropout, forKey: .inputDropout); try c.encode(feedForwardDropout, forKey: .feedForwardDropout)
        try c.encode(attentionDropout, forKey: .attentionDropout)
        try c.encode(attentionOutputDropout, forKey: .attentionOutputDropout)
        try c.encode(convolutionDropout, forKey: .convolutionDropout); try c.encode(headDropout, forKey: .headDropout)
        try c.encode(layerNormEpsilon, forKey: .layerNormEpsilon); try c.encode(batchNormEpsilon, forKey: .batchNormEpsilon)
        try c.encode(batchNormMomentum, forKey: .batchNormMomentum); try c.encode(learningRate, forKey: .learningRate)
        try c.encode(betas, forKey: .betas); try c.encode(adamEpsilon, forKey: .adamEpsilon)
        try c.encode(weightDecay, forKey: .weightDecay); try c.encode(phaseOrder, forKey: .phaseOrder)
        try c.encode(labelNames, forKey: .labelNames); try c.encode(labelTransform, forKey: .labelTransform)
        try c.encode(seed, forKey: .seed); try c.encode(batchSize, forKey: .batchSize); try c.encode(epochs, forKey: .epochs)
        try c.encode(sampler, forKey: .sampler); try c.encode(batchnorm, forKey: .batchnorm)
    }
}

/// The three phases of Algorithm 1.
public enum Phase: String, Codable, Sendable, CaseIterable {
    case acoustic
    case visual
    case audioVisual = "audio_visual"

    /// The key the dropout RNG uses for this phase.
    public var dropoutKey: Int {
        switch self {
        case .acoustic: return 0
        case .visual: return 1
        case .audioVisual: return 2
        }
    }
}

/// The mapping of one dimensional label column for training (SPEC §3): optional flip
/// lo + hi − y, then (y − lo)/(hi − lo) with the rating scale's fixed bounds.
public struct LabelTransform: Codable, Equatable, Sendable {
    public var name: String
    public var flip: Bool
    public var low: Double
    public var high: Double

    public init(name: String, flip: Bool = false, low: Double, high: Double) {
        self.name = name
        self.flip = flip
        self.low = low
        self.high = high
    }

    public func apply(_ value: Double) -> Double {
        let flipped = flip ? low + high - value : value
        return (flipped - low) / (high - low)
    }
}
