/// Whether layers train (batch statistics, dropout on) or evaluate (running statistics,
/// dropout off).
public enum Mode: Sendable {
    case training
    case evaluation
}

/// What a forward or backward pass needs besides its tensors: the parameter store, the
/// mode, the keys of the counter-based dropout RNG, and the hook that makes BatchNorm
/// statistics global across ranks.
public final class RunContext {
    public let store: ParameterStore
    public var mode: Mode = .training
    /// Dropout keys (DESIGN §4.3): masks depend on (seed, iteration, phase, utterance, layer,
    /// element) only, never on the number of ranks or on where an utterance sits in a batch.
    public var seed: UInt64 = 0
    public var iteration: Int = 0
    public var phase: Int = 0
    /// A stable key per utterance of the current batch, in segment order (its corpus row).
    public var utteranceKeys: [UInt64] = []
    /// Sums BatchNorm sufficient statistics over all ranks in place (synchronised BatchNorm);
    /// `nil` keeps them local. Every rank calls it the same number of times, in the same
    /// order, with the same count, whether or not it has frames.
    public var reduceStatistics: ((UnsafeMutableBufferPointer<Double>) -> Void)?
    /// When false, BatchNorm in training mode does not update running statistics (the
    /// frozen branches of the audio-visual phase run in evaluation mode anyway).
    public var updatesRunningStatistics = true
    /// Called between blocks of a backward pass, so that gradient reductions started earlier
    /// progress while the backward goes on.
    public var progress: (() -> Void)?

    public init(store: ParameterStore) { self.store = store }

    /// Key of utterance `index` of the batch for dropout streams.
    @inline(__always) func utteranceKey(_ index: Int) -> UInt64 {
        index < utteranceKeys.count ? utteranceKeys[index] : UInt64(index)
    }

    /// Sets utterance keys to 0, 1, 2, … (tests and single batches without corpus rows).
    public func useSequentialUtteranceKeys(count: Int) {
        utteranceKeys = (0..<count).map { UInt64($0) }
    }
}
