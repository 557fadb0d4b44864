/// How a parameter's initial values are drawn (DESIGN §2.3).
public enum Initializer: Sendable {
    case zeros
    case ones
    /// Uniform in ±√(6 / (fanIn + fanOut)) (`torch.nn.init.xavier_uniform_`).
    case xavierUniform(fanIn: Int, fanOut: Int)
    /// Uniform in ±bound. PyTorch's default for Linear and Conv1d weights (Kaiming-uniform
    /// with a = √5) and biases both come to bound = 1/√fanIn.
    case uniform(bound: Float)

    /// PyTorch's default initialisation for a weight or bias with this fan-in.
    public static func pytorchDefault(fanIn: Int) -> Initializer {
        .uniform(bound: 1 / Float(fanIn).squareRoot())
    }
}

/// A named tensor stored at `offset` in one of the store's flat buffers.
public protocol FlatTensor: Sendable {
    var name: String { get }
    var shape: [Int] { get }
    var offset: Int { get }
}

extension FlatTensor {
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// A named view into the flat parameter buffer and, at the same offset, the gradient buffer.
public struct Parameter: FlatTensor {
    /// The canonical dotted name (DESIGN §6), e.g. `acoustic.encoder.blocks.0.ff1.linear1.weight`.
    public let name: String
    /// Shape as PyTorch stores it (Linear: out × in; Conv1d: out × in/groups × k).
    public let shape: [Int]
    public let offset: Int
    public let initializer: Initializer
}

/// A named non-trainable tensor (BatchNorm running statistics), in the flat buffer store.
public struct Buffer: FlatTensor {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public let initialValue: Float
}

/// A named Int64 counter (BatchNorm `num_batches_tracked`).
public struct Counter: Sendable {
    public let name: String
    public let index: Int
}

/// The layout of a model's flat parameter buffer, collected in registration order while the
/// model is built: names scoped by dotted prefixes (a layer registers `weight`, the model's
/// tree makes it `acoustic.encoder.blocks.0.ff1.linear1.weight`), shapes and offsets. One
/// table, generated once, gives names, shapes, offsets and checkpoint keys: nothing is kept
/// in step by hand. Its sizes derive from a configuration, so this module is built with
/// Swift's checks (a name twice, or a count that overflows, stops the program here rather
/// than corrupting memory in the unchecked kernels that use the offsets).
public final class ParameterLayout {
    public private(set) var parameters: [Parameter] = []
    public private(set) var buffers: [Buffer] = []
    public private(set) var counters: [Counter] = []
    private var prefixes: [String] = []
    private var names: Set<String> = []
    public private(set) var parameterCount = 0
    public private(set) var bufferCount = 0

    public init() {}

    /// Registers everything `body` adds under `name.` .
    public func scope<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        prefixes.append(name)
        defer { prefixes.removeLast() }
        return try body()
    }

    /// The full dotted name of `name` in the current scope.
    public func qualified(_ name: String) -> String {
        (prefixes + [name]).filter { !$0.isEmpty }.joined(separator: ".")
    }

    private func claim(_ name: String) -> String {
        let full = qualified(name)
        precondition(!names.contains(full), "parameter name registered twice: \(full)")
        names.insert(full)
        return full
    }

    /// The element count of `shape`: every extent at least 0, the product checked.
    private static func count(_ shape: [Int], _ name: String) -> Int {
        precondition(shape.allSatisfy { $0 >= 0 }, "\(name): negative extent in \(shape)")
        return shape.reduce(1) { product, extent in
            let (result, overflow) = product.multipliedReportingOverflow(by: extent)
            precondition(!overflow, "\(name): \(shape) has more elements than an Int holds")
            return result
        }
    }

    public func parameter(_ name: String, shape: [Int], initializer: Initializer) -> Parameter {
        let full = claim(name)
        let count = Self.count(shape, full)
        let parameter = Parameter(name: full, shape: shape, offset: parameterCount, initializer: initializer)
        parameters.append(parameter)
        parameterCount += count
        return parameter
    }

    public func buffer(_ name: String, shape: [Int], initialValue: Float) -> Buffer {
        let full = claim(name)
        let count = Self.count(shape, full)
        let buffer = Buffer(name: full, shape: shape, offset: bufferCount, initialValue: initialValue)
        buffers.append(buffer)
        bufferCount += count
        return buffer
    }

    public func counter(_ name: String) -> Counter {
        let counter = Counter(name: claim(name), index: counters.count)
        counters.append(counter)
        return counter
    }
}
