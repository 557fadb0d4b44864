/// A Conformer encoder: input projection Linear(I → C) → Dropout → N Conformer blocks.
public final class ConformerEncoder: Layer {
    public let configuration: ConformerConfiguration
    public let inputProjection: Linear
    public let inputDropout: Dropout
    public let blocks: [ConformerBlock]
    private var segments = Segments(offsets: [0])
    private var input: Matrix?
    private let projected = Matrix()  // (N, C)
    private let dInput = Matrix()
    private let blockGradient = Matrix()

    public init(_ registry: ParameterRegistry, _ name: String, _ config: ConformerConfiguration) {
        configuration = config
        (inputProjection, inputDropout, blocks) = registry.scope(name) {
            (Linear(registry, "input_projection", inputs: config.inputs, outputs: config.channels, initialization: .xavier),
             Dropout(registry, "input_dropout", probability: config.inputDropout),
             registry.scope("blocks") { (0..<config.blocks).map { ConformerBlock(registry, "\($0)", config) } })
        }
    }

    /// x (N, I) → (N, C); the result belongs to the last block (or the projection if none).
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        input = x
        self.segments = segments
        projected.resize(rows: x.rows, columns: configuration.channels)
        inputProjection.forward(projected.data, x.data, rows: x.rows, context.store, addingBias: false)
        inputDropout.apply(projected.data, columns: projected.columns, segments: segments, context,
                           adding: inputProjection.biasPointer(context.store))
        var hidden = projected
        for block in blocks { hidden = block.forward(hidden, segments: segments, context) }
        return hidden
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix { backward(dy, context, needsInputGradient: true) }

    /// Returns dx (N, I); pass `needsInputGradient: false` to skip it where x is data.
    @discardableResult
    public func backward(_ dy: Matrix, _ context: RunContext, needsInputGradient: Bool) -> Matrix {
        var gradient = dy
        for block in blocks.reversed() {
            gradient = block.backward(gradient, context)
            context.progress?()
        }
        blockGradient.resize(rows: gradient.rows, columns: gradient.columns)
        inputDropout.apply(to: blockGradient.data, from: gradient.data, columns: gradient.columns, segments: segments, context)
        let x = input!
        dInput.resize(rows: x.rows, columns: configuration.inputs)
        inputProjection.backward(needsInputGradient ? dInput.data : nil, blockGradient.data, x.data, rows: x.rows, context.store)
        return dInput
    }
}
