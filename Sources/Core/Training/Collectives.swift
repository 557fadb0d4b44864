/// The collective operations a training step needs, so the numeric core stays independent
/// of MPI. Every rank must make the same calls in the same order with the same counts.
public protocol Collectives: AnyObject {
    /// The number of replicas.
    var worldSize: Int { get }
    /// Sums `values` in place over all ranks (BatchNorm and CCC statistics, loss shares).
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
    /// Sums the gradients of `range` in place over all ranks and returns when they are
    /// summed. Losses are already divided by the global utterance count, so the sum is the
    /// global batch's gradient — the one place where "average" happens is the loss
    /// normalisation. Parts handed over earlier by ``gradientsReady(_:of:)`` are only awaited.
    func reduceGradients(_ range: Range<Int>, of store: ParameterStore)
    /// A part of the phase's gradient range that the backward has finished writing: its
    /// reduction may start now, overlapping the rest of the backward. Called at the same
    /// points of the model's backward on every rank.
    func gradientsReady(_ range: Range<Int>, of store: ParameterStore)
    /// Lets started reductions progress (called between blocks of the backward).
    func progress()
}

/// One process: every collective is the identity.
public final class LocalCollectives: Collectives {
    public init() {}
    public var worldSize: Int { 1 }
    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {}
    public func reduceGradients(_ range: Range<Int>, of store: ParameterStore) {}
    public func gradientsReady(_ range: Range<Int>, of store: ParameterStore) {}
    public func progress() {}
}

extension Collectives {
    public func sum(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { sum($0) }
    }
}
