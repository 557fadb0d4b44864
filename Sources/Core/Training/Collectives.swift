/// The collective operations a training step needs, so the numeric core stays independent
/// of MPI. Every rank must make the same calls in the same order with the same counts.
public protocol Collectives: AnyObject {
    /// The number of replicas.
    var worldSize: Int { get }
    /// Sums `values` in place over all ranks (BatchNorm and CCC statistics, loss shares).
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
    /// Sums the gradients of `range` in place over all ranks. Losses are already divided by
    /// the global utterance count, so the sum is the global batch's gradient — the one
    /// place where "average" happens is the loss normalisation.
    func reduceGradients(_ range: Range<Int>, of store: ParameterStore)
}

/// One process: every collective is the identity.
public final class LocalCollectives: Collectives {
    public init() {}
    public var worldSize: Int { 1 }
    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {}
    public func reduceGradients(_ range: Range<Int>, of store: ParameterStore) {}
}

extension Collectives {
    public func sum(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { sum($0) }
    }
}
