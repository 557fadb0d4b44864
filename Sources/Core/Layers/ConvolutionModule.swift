/// The Conformer convolution module: LayerNorm → pointwise Conv1d C → 2C → GLU →
/// depthwise Conv1d (kernel K, per utterance) → BatchNorm1d → Swish → pointwise Conv1d
/// C → C → Dropout.
public final class ConvolutionModule: Layer {
    public let norm: LayerNorm
    public let pointwise1: Linear
    public let glu: GLU
    public let depthwise: DepthwiseConvolution
    public let batchNorm: BatchNorm
    public let swish: Swish
    public let pointwise2: Linear
    public let dropout: Dropout
    public let output = Matrix()
    private var segments = Segments(offsets: [0])
    private let expanded = Matrix()  // (N, 2C)
    /// The pointwise convolutions' inputs rounded to bf16 (bf16 mode), from the forward to the backward.
    private var roundedInputs: (normalized: RoundedOperand?, activated: RoundedOperand?) = (nil, nil)
    /// Backward-only buffers shared by the model's convolution modules (its workspace).
    private let shared: (dOutput: Matrix, dActivated: Matrix, dNormalized: Matrix)

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, kernelSize: Int, dropout: Float,
                epsilon: Float = 1e-5, batchNormEpsilon: Float = 1e-5, batchNormMomentum: Float = 0.1) {
        let workspace = registry.workspace
        shared = (workspace.matrix("convolution.dOutput"), workspace.matrix("convolution.dActivated"),
                  workspace.matrix("convolution.dNormalized"))
        glu = GLU(workspace: workspace)
        swish = Swish(workspace: workspace)
        (norm, pointwise1, depthwise, batchNorm, pointwise2, self.dropout) = registry.scope(name) {
            (LayerNorm(registry, "norm", channels: channels, epsilon: epsilon),
             Linear(registry, "pointwise1", inputs: channels, outputs: 2 * channels, initialization: .pytorchDefault,
                    kernelDimension: true),
             DepthwiseConvolution(registry, "depthwise", channels: channels, kernelSize: kernelSize),
             BatchNorm(registry, "batchnorm", channels: channels, epsilon: batchNormEpsilon, momentum: batchNormMomentum),
             Linear(registry, "pointwise2", inputs: channels, outputs: channels, initialization: .pytorchDefault,
                    kernelDimension: true),
             Dropout(registry, "dropout", probability: dropout))
        }
    }

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        forward(x, segments: segments, context, residual: nil)
    }

    /// With `residual`, the last pass writes `residual.target` = x + scale · module(x)
    /// instead of the module's output, and returns it.
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext, residual: ResidualSum?) -> Matrix {
        let store = context.store, n = x.rows, c = x.columns
        self.segments = segments
        let normalized = norm.forward(x, context, roundingOutput: true)
        expanded.resize(rows: n, columns: 2 * c)
        roundedInputs.normalized = norm.roundedOutput
        pointwise1.forward(expanded.data, normalized.data, rows: n, store, roundedInput: roundedInputs.normalized)
        let gated = glu.forward(expanded, context)
        let convolved = depthwise.forward(gated, segments: segments, context)
        let batchNormalized = batchNorm.forward(convolved, context)
        let activated = swish.forward(batchNormalized, context, roundingOutput: true)
        output.resize(rows: n, columns: c)
        roundedInputs.activated = swish.roundedOutput
        pointwise2.forward(output.data, activated.data, rows: n, store, addingBias: false, roundedInput: roundedInputs.activated)
        return dropout.finish(output, input: x, adding: pointwise2.biasPointer(store), residual: residual,
                              segments: segments, context)
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        norm.backward(backwardToNormalized(dy, context), context)
    }

    /// The backward with dx added to `target`, which may be `dy` itself (dy is read first).
    public func backward(_ dy: Matrix, _ context: RunContext, addingTo target: Matrix) {
        norm.backward(backwardToNormalized(dy, context), context, into: target, accumulating: true)
    }

    /// Everything but the LayerNorm: dL/d(normalized input).
    private func backwardToNormalized(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let store = context.store, n = dy.rows, c = dy.columns
        let (dOutput, dActivated, dNormalized) = shared
        dOutput.resize(rows: n, columns: c)
        dropout.apply(to: dOutput.data, from: dy.data, columns: c, segments: segments, context)
        dActivated.resize(rows: n, columns: c)
        pointwise2.backward(dActivated.data, dOutput.data, swish.output.data, rows: n, store, roundedInput: roundedInputs.activated)
        let dBatchNormalized = swish.backward(dActivated, context)
        let dConvolved = batchNorm.backward(dBatchNormalized, context)
        let dGated = depthwise.backward(dConvolved, context)
        let dExpanded = glu.backward(dGated, context)
        dNormalized.resize(rows: n, columns: c)
        pointwise1.backward(dNormalized.data, dExpanded.data, norm.output.data, rows: n, store,
                            roundedInput: roundedInputs.normalized)
        return dNormalized
    }
}
