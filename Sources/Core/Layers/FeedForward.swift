/// The Conformer feed-forward module: LayerNorm → Linear(C → E·C) → Swish → Dropout →
/// Linear(E·C → C) → Dropout. (The block scales it by ½ and adds the residual.)
public final class FeedForward {
    public let norm: LayerNorm
    public let linear1: Linear
    public let linear2: Linear
    public let hiddenDropout: Dropout
    public let outputDropout: Dropout
    public let output = Matrix()
    private var segments = Segments(offsets: [0])
    private let preActivation = Matrix()  // (N, E·C) linear1 output
    private let hidden = Matrix()         // (N, E·C) after Swish and dropout: linear2's input

    /// The backward's gradients, shared by every instance: backward passes run one module
    /// at a time, so one set serves all.
    private static let shared = (dHidden: Matrix(), dPreActivation: Matrix(), dOutput: Matrix(),
                                 dNormalized: Matrix(), inputGradient: Matrix())
    public var inputGradient: Matrix { Self.shared.inputGradient }

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, expansion: Int, dropout: Float,
                epsilon: Float = 1e-5) {
        (norm, linear1, linear2, hiddenDropout, outputDropout) = registry.scope(name) {
            (LayerNorm(registry, "norm", channels: channels, epsilon: epsilon),
             Linear(registry, "linear1", inputs: channels, outputs: channels * expansion, initialization: .xavier),
             Linear(registry, "linear2", inputs: channels * expansion, outputs: channels, initialization: .xavier),
             Dropout(registry, "dropout1", probability: dropout),
             Dropout(registry, "dropout2", probability: dropout))
        }
    }

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        let store = context.store, n = x.rows
        self.segments = segments
        let normalized = norm.forward(x, store)
        preActivation.resize(rows: n, columns: linear1.outputs)
        linear1.forward(preActivation.data, normalized.data, rows: n, store)
        hidden.resize(rows: n, columns: linear1.outputs)
        Elementwise.swishForward(hidden.data, preActivation.data, count: hidden.count)
        hiddenDropout.apply(hidden.data, columns: hidden.columns, segments: segments, context)
        output.resize(rows: n, columns: linear2.outputs)
        linear2.forward(output.data, hidden.data, rows: n, store)
        outputDropout.apply(output.data, columns: output.columns, segments: segments, context)
        return output
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let store = context.store, n = dy.rows
        let (dHidden, dPreActivation, dOutput, dNormalized, inputGradient) = Self.shared
        dOutput.copy(from: dy)
        outputDropout.apply(dOutput.data, columns: dOutput.columns, segments: segments, context)
        dHidden.resize(rows: n, columns: linear1.outputs)
        linear2.backward(dHidden.data, dOutput.data, hidden.data, rows: n, store)
        hiddenDropout.apply(dHidden.data, columns: dHidden.columns, segments: segments, context)
        dPreActivation.resize(rows: n, columns: linear1.outputs)
        Elementwise.swishBackward(dPreActivation.data, dHidden.data, preActivation.data, count: dHidden.count)
        dNormalized.resize(rows: n, columns: linear1.inputs)
        linear1.backward(dNormalized.data, dPreActivation.data, norm.output.data, rows: n, store)
        let dx = norm.backward(dNormalized, store)
        inputGradient.copy(from: dx)
        return inputGradient
    }
}
