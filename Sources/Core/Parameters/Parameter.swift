/// What a model's layers register into while it is built: the flat parameter layout (names,
/// shapes, offsets; ``ParameterLayout``, a checked module) and the scratch the model's layers
/// share (its ``Workspace``).
public final class ParameterRegistry {
    /// Names, shapes and offsets, in registration order.
    public let layout = ParameterLayout()
    /// The scratch the model's layers share (one per model).
    public let workspace = Workspace()

    public init() {}

    public var parameters: [Parameter] { layout.parameters }
    public var buffers: [Buffer] { layout.buffers }
    public var counters: [Counter] { layout.counters }
    public var parameterCount: Int { layout.parameterCount }
    public var bufferCount: Int { layout.bufferCount }

    /// Registers everything `body` adds under `name.` .
    public func scope<T>(_ name: String, _ body: () throws -> T) rethrows -> T { try layout.scope(name, body) }
    /// The full dotted name of `name` in the current scope.
    public func qualified(_ name: String) -> String { layout.qualified(name) }
    public func parameter(_ name: String, shape: [Int], initializer: Initializer) -> Parameter {
        layout.parameter(name, shape: shape, initializer: initializer)
    }
    public func buffer(_ name: String, shape: [Int], initialValue: Float) -> Buffer {
        layout.buffer(name, shape: shape, initialValue: initialValue)
    }
    public func counter(_ name: String) -> Counter { layout.counter(name) }
}
