/// The unimodal baseline of the paper's §IV-E.6 (DESIGN §2.4, last paragraph): one modality's
/// branch with as many Conformer blocks as VAVL puts between that modality's input and its
/// representation (blocks_m + blocks_s: 3 + 2 = 5 at the paper's sizes), mean pooling over
/// the utterance's frames, then two fully connected layers:
///
///     x (N, d_m) → proj → Conformer (blocks_m + blocks_s) → mean → Linear(dim→dim) → ReLU
///                → Dropout(head_dropout) → Linear(dim→out)
///
/// It is a different model from ``VAVLModel``: no shared layers, no reconstruction, no other
/// modality. Parameters live in one flat ``ParameterStore`` under the names
/// `acoustic.*` or `visual.*` (the branch, as in VAVL) and `head.{fc1,out}.{weight,bias}`.
public final class UnimodalBaseline {
    public let configuration: VAVLConfiguration
    public let modality: Modality
    /// Conformer blocks of the branch.
    public let blocks: Int
    public let store: ParameterStore
    public let branch: ModalityBranch
    public let fc1: Linear, out: Linear
    public let dropout: Dropout
    private let pooling = MeanPooling()
    private var pooled = Matrix()                         // (B, dim) saved for the backward
    private var rowSegments = Segments(offsets: [0])      // one row per utterance
    private let hidden = Matrix(), activated = Matrix()   // (B, dim)
    private let dActivated = Matrix(), dPooled = Matrix() // (B, dim)
    public let output = Matrix()                          // (B, out)

    /// Blocks of the baseline branch for `modality`: blocks_m + blocks_s.
    public static func blockCount(_ config: VAVLConfiguration, modality: Modality) -> Int {
        (modality == .audio ? config.acousticBlocks : config.visualBlocks) + config.sharedBlocks
    }

    /// Builds the module tree from VAVL's sizes (dim, heads, kernels, dropouts, d_m, out);
    /// parameters start at their constants — call ``initialize(seed:)``.
    public init(_ config: VAVLConfiguration, modality: Modality) {
        configuration = config
        self.modality = modality
        let blocks = UnimodalBaseline.blockCount(config, modality: modality)
        self.blocks = blocks
        let registry = ParameterRegistry()
        branch = ModalityBranch(registry, modality == .audio ? "acoustic" : "visual",
                                inputs: modality == .audio ? config.audioDimension : config.videoDimension,
                                blocks: blocks, config)
        (fc1, out, dropout) = registry.scope("head") {
            (Linear(registry, "fc1", inputs: config.dim, outputs: config.dim, initialization: .pytorchDefault),
             Linear(registry, "out", inputs: config.dim, outputs: config.outputDimension, initialization: .pytorchDefault),
             Dropout(registry, "dropout", probability: config.headDropout))
        }
        store = ParameterStore(registry)
        store.precision = config.precision
    }

    public func initialize(seed: UInt64) { store.initialize(seed: seed) }

    /// Every parameter: the baseline trains as one group.
    public var parameterRange: Range<Int> { 0..<store.parameterCount }

    // MARK: - Forward and backward

    /// x (N, d_m) → predictions (B, out): logits (categorical) or values. The result is
    /// overwritten by the next call.
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        let encoded = branch.forward(x, segments: segments, context)
        pooled = pooling.forward(encoded, segments: segments, context)
        let rows = pooled.rows
        rowSegments = Segments(offsets: Array(0...rows))
        hidden.resize(rows: rows, columns: configuration.dim)
        fc1.forward(hidden.data, pooled.data, rows: rows, context.store)
        activated.resize(rows: rows, columns: configuration.dim)
        Elementwise.reluForward(activated.data, hidden.data, count: activated.count)
        dropout.apply(activated.data, columns: activated.columns, segments: rowSegments, context)
        output.resize(rows: rows, columns: configuration.outputDimension)
        out.forward(output.data, activated.data, rows: rows, context.store)
        return output
    }

    /// Accumulates every parameter's gradient from dL/dpredictions (B, out).
    public func backward(_ dy: Matrix, _ context: RunContext) {
        let rows = dy.rows, store = context.store
        dActivated.resize(rows: rows, columns: configuration.dim)
        out.backward(dActivated.data, dy.data, activated.data, rows: rows, store)
        dropout.apply(dActivated.data, columns: dActivated.columns, segments: rowSegments, context)
        Elementwise.reluBackward(dActivated.data, dActivated.data, hidden.data, count: dActivated.count)
        dPooled.resize(rows: rows, columns: configuration.dim)
        fc1.backward(dPooled.data, dActivated.data, pooled.data, rows: rows, store)
        let dEncoded = pooling.backward(dPooled, context)
        branch.backward(dEncoded, context)
    }

    /// Predictions in evaluation mode, as a new matrix.
    public func predict(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        context.mode = .evaluation
        return Matrix(copying: forward(x, segments: segments, context))
    }
}
