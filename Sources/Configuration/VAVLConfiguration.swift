import VAVLVocabulary

/// Every size and hyperparameter of the model and its training (docs/DESIGN.md §2–§3).
/// Defaults are the paper's.
///
/// The stored properties hold the values; ``VAVLConfiguration/fields`` (ConfigurationTable.swift)
/// is the one list that says, for each of them, its JSON key (DESIGN §6), valid range,
/// whether it may change on resume and its help text. JSON coding, validation, the
/// compatibility check on resume and the printed table are loops over that list: a new
/// option is a property here and a row there.
public struct VAVLConfiguration: Equatable, Sendable {
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
    /// Arithmetic of the matrix products (DESIGN "Numerics rules").
    public var precision: Precision = .fp32

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
}

/// The arithmetic of the matrix products (docs/DESIGN.md "Mixed precision").
public enum Precision: String, Codable, CaseIterable, Sendable {
    /// Every product in fp32 through OpenBLAS.
    case fp32
    /// Product operands rounded to bfloat16 (nearest even), fp32 accumulation; everything
    /// else (master weights, optimiser, normalisations, softmax, losses) in fp32.
    case bf16
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
