/// All parameters of a model in one flat `Float` buffer, all gradients in a second buffer
/// of the same layout, and all buffers (running statistics) in a third; named views into
/// them. Zeroing a phase's gradients, allreducing them and the optimizer step are each one
/// loop over one contiguous range.
public final class ParameterStore {
    public let parameters: [Parameter]
    public let buffers: [Buffer]
    public let counters: [Counter]
    /// Parameter values, `parameterCount` floats.
    public let values: UnsafeMutablePointer<Float>
    /// Gradients, same layout as `values`.
    public let gradients: UnsafeMutablePointer<Float>
    /// Buffer values (BatchNorm running mean and variance).
    public let bufferValues: UnsafeMutablePointer<Float>
    /// Counter values (BatchNorm `num_batches_tracked`).
    public let counterValues: UnsafeMutablePointer<Int64>
    public let parameterCount: Int
    public let bufferCount: Int
    /// The arithmetic of the model's matrix products (``multiply(transposeA:transposeB:m:n:k:a:lda:b:ldb:beta:c:ldc:)``).
    public var precision: Precision = .fp32
    /// The bf16 copy of `values` that products read in bf16 mode (LowPrecisionWeights.swift).
    let lowPrecision = LowPrecisionWeights()
    /// The recycled rounded operands of single products and backwards (MatrixProducts.swift).
    let temporaryOperands = TemporaryOperands()
    private let parameterIndex: [String: Int]
    private let bufferIndex: [String: Int]
    private let counterIndex: [String: Int]

    /// Allocates the store for everything `registry` holds; values start at their initial
    /// constants (call ``initialize(seed:)`` for random initialisation).
    public init(_ registry: ParameterRegistry) {
        parameters = registry.parameters
        buffers = registry.buffers
        counters = registry.counters
        parameterCount = registry.parameterCount
        bufferCount = registry.bufferCount
        values = FloatBuffer.allocateZeroed(count: parameterCount)
        gradients = FloatBuffer.allocateZeroed(count: parameterCount)
        bufferValues = .allocate(capacity: max(bufferCount, 1))
        counterValues = .allocate(capacity: max(counters.count, 1))
        bufferValues.initialize(repeating: 0, count: max(bufferCount, 1))
        counterValues.initialize(repeating: 0, count: max(counters.count, 1))
        parameterIndex = Dictionary(uniqueKeysWithValues: parameters.enumerated().map { ($1.name, $0) })
        bufferIndex = Dictionary(uniqueKeysWithValues: buffers.enumerated().map { ($1.name, $0) })
        counterIndex = Dictionary(uniqueKeysWithValues: counters.enumerated().map { ($1.name, $0) })
        resetBuffers()
    }

    deinit {
        FloatBuffer.deallocate(values)
        FloatBuffer.deallocate(gradients)
        lowPrecision.deallocate()
        bufferValues.deallocate()
        counterValues.deallocate()
    }

    // MARK: - Initialisation

    /// Draws every parameter from its initializer. Each parameter has its own random stream
    /// keyed by (seed, name), so a parameter's initial value does not depend on which other
    /// parts the configuration has.
    public func initialize(seed: UInt64) {
        defer { parametersChanged() }
        for parameter in parameters {
            var generator = SplitMix64(seed: mix64(seed ^ stableHash(parameter.name)))
            let destination = values + parameter.offset
            switch parameter.initializer {
            case .zeros:
                destination.update(repeating: 0, count: parameter.count)
            case .ones:
                destination.update(repeating: 1, count: parameter.count)
            case .xavierUniform(let fanIn, let fanOut):
                let bound = (6 / Float(fanIn + fanOut)).squareRoot()
                for index in 0..<parameter.count { destination[index] = generator.uniform(-bound, bound) }
            case .uniform(let bound):
                for index in 0..<parameter.count { destination[index] = generator.uniform(-bound, bound) }
            }
        }
        resetBuffers()
    }

    /// Running means 0, running variances 1, counters 0 (PyTorch's BatchNorm defaults).
    public func resetBuffers() {
        for buffer in buffers {
            (bufferValues + buffer.offset).update(repeating: buffer.initialValue, count: buffer.count)
        }
        counterValues.update(repeating: 0, count: max(counters.count, 1))
    }

    // MARK: - Views

    public func parameter(named name: String) -> Parameter? { parameterIndex[name].map { parameters[$0] } }
    public func buffer(named name: String) -> Buffer? { bufferIndex[name].map { buffers[$0] } }
    public func counter(named name: String) -> Counter? { counterIndex[name].map { counters[$0] } }

    @inline(__always) public func pointer(_ parameter: Parameter) -> UnsafeMutablePointer<Float> { values + parameter.offset }
    @inline(__always) public func gradient(_ parameter: Parameter) -> UnsafeMutablePointer<Float> { gradients + parameter.offset }
    @inline(__always) public func pointer(_ buffer: Buffer) -> UnsafeMutablePointer<Float> { bufferValues + buffer.offset }

    /// A copy of a parameter's values (tests, checkpoints).
    public func valuesArray(_ parameter: Parameter) -> [Float] {
        Array(UnsafeBufferPointer(start: pointer(parameter), count: parameter.count))
    }

    public func gradientArray(_ parameter: Parameter) -> [Float] {
        Array(UnsafeBufferPointer(start: gradient(parameter), count: parameter.count))
    }

    /// Overwrites a parameter's values.
    public func setValues(_ parameter: Parameter, _ newValues: [Float]) {
        precondition(newValues.count == parameter.count, "\(parameter.name): \(newValues.count) values for \(parameter.count)")
        newValues.withUnsafeBufferPointer { pointer(parameter).update(from: $0.baseAddress!, count: parameter.count) }
        parametersChanged(parameter.range)
    }

    public func setValues(_ buffer: Buffer, _ newValues: [Float]) {
        precondition(newValues.count == buffer.count, "\(buffer.name): \(newValues.count) values for \(buffer.count)")
        newValues.withUnsafeBufferPointer { pointer(buffer).update(from: $0.baseAddress!, count: buffer.count) }
    }

    /// Zeroes the gradients of `range` (a phase group's contiguous range, or everything).
    public func zeroGradients(_ range: Range<Int>? = nil) {
        let range = range ?? 0..<parameterCount
        (gradients + range.lowerBound).update(repeating: 0, count: range.count)
    }

    /// The contiguous range covering the parameters whose names start with any of `prefixes`
    /// (they must be adjacent in registration order; checked).
    public func range(ofPrefixes prefixes: [String]) -> Range<Int> {
        let matching = parameters.filter { parameter in prefixes.contains { parameter.name.hasPrefix($0 + ".") } }
        guard let first = matching.first, let last = matching.last else { return 0..<0 }
        let range = first.offset..<(last.offset + last.count)
        precondition(matching.reduce(0) { $0 + $1.count } == range.count,
                     "parameters under \(prefixes) are not contiguous in the flat buffer")
        return range
    }
}
