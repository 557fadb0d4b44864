/// The Conformer feed-forward module: LayerNorm → Linear(C → E·C) → Swish → Dropout →
/// Linear(E·C → C) → Dropout. (The block scales it by ½ and adds the residual.)
public final class FeedForward: Layer {
    public let norm: LayerNorm
    public let linear1: Linear
    public let linear2: Linear
    public let hiddenDropout: Dropout
    public let outputDropout: Dropout
    public let output = Matrix()
    private var segments = Segments(offsets: [0])
    private let preActivation = Matrix()  // (N, E·C) linear1 output without its bias
    /// (N, E·C) after Swish and dropout: linear2's input, in fp32 only. In bf16 linear2 and
    /// its backward read the rounded copy alone, so the fp32 one is never stored (it was
    /// the largest activation a block keeps: E·C columns).
    private let hidden = Matrix()

    /// The backward's gradients, shared by the model's feed-forward modules (its workspace):
    /// backward passes run one module at a time, so one set serves all.
    private let shared: (dHidden: Matrix, dPreActivation: Matrix, dOutput: Matrix, dNormalized: Matrix)
    /// The two linear maps' inputs rounded to bf16 (bf16 mode), from the forward to the backward.
    private var roundedInputs: (normalized: RoundedOperand?, hidden: RoundedOperand?) = (nil, nil)
    /// The storage `roundedInputs.hidden` is refilled in, kept across forwards.
    private var hiddenStorage: RoundedOperand?
    /// dx of the last `backward(_:_:)` (it belongs to the module's LayerNorm).
    public var inputGradient: Matrix { norm.inputGradient }

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, expansion: Int, dropout: Float,
                epsilon: Float = 1e-5) {
        let workspace = registry.workspace
        shared = (workspace.matrix("feedforward.dHidden"), workspace.matrix("feedforward.dPreActivation"),
                  workspace.matrix("feedforward.dOutput"), workspace.matrix("feedforward.dNormalized"))
        (norm, linear1, linear2, hiddenDropout, outputDropout) = registry.scope(name) {
            (LayerNorm(registry, "norm", channels: channels, epsilon: epsilon),
             Linear(registry, "linear1", inputs: channels, outputs: channels * expansion, initialization: .xavier),
             Linear(registry, "linear2", inputs: channels * expansion, outputs: channels, initialization: .xavier),
             Dropout(registry, "dropout1", probability: dropout),
             Dropout(registry, "dropout2", probability: dropout))
        }
    }

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        forward(x, segments: segments, context, residual: nil)
    }

    /// With `residual`, the last pass writes `residual.target` = x + scale · module(x)
    /// instead of the module's output, and returns it.
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext, residual: ResidualSum?) -> Matrix {
        let store = context.store, n = x.rows
        self.segments = segments
        let normalized = norm.forward(x, context, roundingOutput: true)
        preActivation.resize(rows: n, columns: linear1.outputs)
        roundedInputs.normalized = norm.roundedOutput
        linear1.forward(preActivation.data, normalized.data, rows: n, store, addingBias: false,
                        roundedInput: roundedInputs.normalized)
        // linear1's bias, Swish and the hidden dropout in one pass over the (N, E·C) activations.
        let width = linear1.outputs, pre = preActivation.data
        let bias = linear1.biasPointer(store)
        // In bf16 each row is computed into a row of scratch and rounded into the operand of
        // linear2 and its backward; in fp32 it is written into `hidden`.
        let roundedHidden = store.operandToFill(rows: n, columns: width, storage: &hiddenStorage)
        hidden.resize(rows: roundedHidden == nil ? n : 0, columns: width)
        let activated = hidden.data
        // The bias is added on the fly (here and in the backward) rather than stored back
        // into the pre-activations: one write of (N, E·C) less.
        hiddenDropout.forEachRow(columns: width, segments: segments, context) { row, multipliers in
            let x = pre + row * width
            func activate(into y: UnsafeMutablePointer<Float>) {
                switch (bias, multipliers) {
                case let (b?, m?): for i in 0..<width { y[i] = FastMath.swish(x[i] + b[i]) * m[i] }
                case let (b?, nil): for i in 0..<width { y[i] = FastMath.swish(x[i] + b[i]) }
                case let (nil, m?): for i in 0..<width { y[i] = FastMath.swish(x[i]) * m[i] }
                case (nil, nil): for i in 0..<width { y[i] = FastMath.swish(x[i]) }
                }
            }
            guard let roundedHidden else { return activate(into: activated + row * width) }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { scratch in
                activate(into: scratch.baseAddress!)
                roundedHidden.fill(scratch.baseAddress!, at: row * width, count: width)
            }
        }
        output.resize(rows: n, columns: linear2.outputs)
        roundedInputs.hidden = roundedHidden
        linear2.forward(output.data, hidden.data, rows: n, store, addingBias: false, roundedInput: roundedInputs.hidden)
        return outputDropout.finish(output, input: x, adding: linear2.biasPointer(store), residual: residual,
                                    segments: segments, context)
    }

    /// Tests: the hidden activations of the last forward (fp32; empty in bf16), their bf16
    /// rounding, and linear1's output before its bias.
    var hiddenForTesting: Matrix { hidden }
    var roundedHiddenForTesting: RoundedOperand? { roundedInputs.hidden }
    var preActivationForTesting: Matrix { preActivation }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        norm.backward(backwardToNormalized(dy, context, scale: 1), context)
    }

    /// The backward of `scale` · module(x) (the Conformer block's ½), with dx added to
    /// `target`, which may be `dy` itself (dy is read first): the block's residual stream
    /// without separate scaling and accumulation passes.
    public func backward(_ dy: Matrix, _ context: RunContext, scale: Float, addingTo target: Matrix) {
        norm.backward(backwardToNormalized(dy, context, scale: scale), context, into: target, accumulating: true)
    }

    /// Everything but the LayerNorm: dL/d(normalized input).
    private func backwardToNormalized(_ dy: Matrix, _ context: RunContext, scale: Float) -> Matrix {
        let store = context.store, n = dy.rows
        let (dHidden, dPreActivation, dOutput, dNormalized) = shared
        dOutput.resize(rows: n, columns: dy.columns)
        outputDropout.apply(to: dOutput.data, from: dy.data, columns: dy.columns, segments: segments, context, scale: scale)
        dHidden.resize(rows: n, columns: linear1.outputs)
        linear2.backward(dHidden.data, dOutput.data, hidden.data, rows: n, store, roundedInput: roundedInputs.hidden)
        dPreActivation.resize(rows: n, columns: linear1.outputs)
        // Back through the hidden dropout (same mask) and Swish in one pass: dpre = dhidden · m · swish'(x).
        let width = dHidden.columns, pre = preActivation.data, g = dHidden.data, dPre = dPreActivation.data
        let bias = linear1.biasPointer(context.store)
        hiddenDropout.forEachRow(columns: width, segments: segments, context) { row, multipliers in
            let x = pre + row * width, dh = g + row * width, dx = dPre + row * width
            switch (bias, multipliers) {
            case let (b?, m?): for i in 0..<width { dx[i] = dh[i] * m[i] * FastMath.swishDerivative(x[i] + b[i]) }
            case let (b?, nil): for i in 0..<width { dx[i] = dh[i] * FastMath.swishDerivative(x[i] + b[i]) }
            case let (nil, m?): for i in 0..<width { dx[i] = dh[i] * m[i] * FastMath.swishDerivative(x[i]) }
            case (nil, nil): for i in 0..<width { dx[i] = dh[i] * FastMath.swishDerivative(x[i]) }
            }
        }
        dNormalized.resize(rows: n, columns: linear1.inputs)
        linear1.backward(dNormalized.data, dPreActivation.data, norm.output.data, rows: n, store,
                         roundedInput: roundedInputs.normalized)
        return dNormalized
    }
}
