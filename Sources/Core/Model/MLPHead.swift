/// The prediction and reconstruction heads (DESIGN §2.4): fc1 (in → h1) → ReLU → Dropout →
/// fc2 (h1 → h2) → out (h2 → out), with no activation between the last two (released code).
/// Rows are utterances; dropout keys use the utterance and frame 0.
public final class MLPHead: FrameLayer {
    public let fc1: Linear, fc2: Linear, out: Linear
    public let dropout: Dropout
    public let output = Matrix()
    public let inputGradient = Matrix()
    private var input: Matrix?
    private var segments = Segments(offsets: [0])
    private let hidden1 = Matrix(), activated = Matrix(), hidden2 = Matrix()
    private let dHidden2 = Matrix(), dActivated = Matrix()

    public init(_ registry: ParameterRegistry, _ name: String, inputs: Int, hidden1: Int, hidden2: Int, outputs: Int,
                dropout: Float) {
        (fc1, fc2, out, self.dropout) = registry.scope(name) {
            (Linear(registry, "fc1", inputs: inputs, outputs: hidden1, initialization: .pytorchDefault),
             Linear(registry, "fc2", inputs: hidden1, outputs: hidden2, initialization: .pytorchDefault),
             Linear(registry, "out", inputs: hidden2, outputs: outputs, initialization: .pytorchDefault),
             Dropout(registry, "dropout", probability: dropout))
        }
    }

    /// x (B, in) → (B, out).
    public func forward(_ x: Matrix, _ context: RunContext) -> Matrix {
        let store = context.store, rows = x.rows
        input = x
        segments = Segments(offsets: Array(0...rows))
        hidden1.resize(rows: rows, columns: fc1.outputs)
        fc1.forward(hidden1.data, x.data, rows: rows, store)
        activated.resize(rows: rows, columns: fc1.outputs)
        Elementwise.reluForward(activated.data, hidden1.data, count: activated.count)
        dropout.apply(activated.data, columns: activated.columns, segments: segments, context)
        hidden2.resize(rows: rows, columns: fc2.outputs)
        fc2.forward(hidden2.data, activated.data, rows: rows, store)
        output.resize(rows: rows, columns: out.outputs)
        out.forward(output.data, hidden2.data, rows: rows, store)
        return output
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix { backward(dy, context, needsInputGradient: true) }

    /// Accumulates parameter gradients; returns dx (B, in) when `needsInputGradient`.
    @discardableResult
    public func backward(_ dy: Matrix, _ context: RunContext, needsInputGradient: Bool) -> Matrix {
        let store = context.store, rows = dy.rows
        dHidden2.resize(rows: rows, columns: fc2.outputs)
        out.backward(dHidden2.data, dy.data, hidden2.data, rows: rows, store)
        dActivated.resize(rows: rows, columns: fc1.outputs)
        fc2.backward(dActivated.data, dHidden2.data, activated.data, rows: rows, store)
        dropout.apply(dActivated.data, columns: dActivated.columns, segments: segments, context)
        Elementwise.reluBackward(dActivated.data, dActivated.data, hidden1.data, count: dActivated.count)
        inputGradient.resize(rows: rows, columns: fc1.inputs)
        fc1.backward(needsInputGradient ? inputGradient.data : nil, dActivated.data, input!.data, rows: rows, store)
        return inputGradient
    }
}
