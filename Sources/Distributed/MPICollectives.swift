#if canImport(Glibc)
import Glibc
#endif
import MPI
import VAVLCore

/// ``Collectives`` over MPI: in-place sums of statistics and bucketed gradient allreduces.
///
/// Gradients of a phase group are reduced bucket by bucket (``bucketSize`` floats, default
/// 4 Mi = 16 MiB) with non-blocking allreduces that are all started before any is awaited,
/// so the network works on one bucket while the next is handed over. Every call is a
/// function of the range alone, so all ranks issue the same sequence.
public final class MPICollectives: Collectives {
    public let communicator: Communicator
    /// Floats per gradient bucket.
    public var bucketSize: Int
    /// Time spent inside gradient reductions (seconds), for the benchmark's allreduce share.
    public private(set) var reductionSeconds: Double = 0
    /// Number of collective calls issued so far (a cheap cross-rank consistency probe).
    public private(set) var callCount = 0
    /// Start a part's reduction as soon as the backward hands it over (overlap), or reduce
    /// everything after the backward.
    public var overlapsBackward = true
    private var pending: [PendingReduction] = []
    private var handedOver: [Range<Int>] = []

    public init(communicator: Communicator = .world, bucketSize: Int = 4 << 20) {
        self.communicator = communicator
        self.bucketSize = max(1, bucketSize)
    }

    public var worldSize: Int { communicator.size }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        callCount += 1
        if communicator.size == 1 { return }
        let operation = CurrentOperation.swap("MPI_Allreduce(sum) of \(values.count) Double statistics (collective #\(callCount))")  // Watchdog
        defer { CurrentOperation.set(operation) }
        communicator.abortOnError("summing \(values.count) statistics (collective #\(callCount))") {
            try communicator.allreduceSum(values)
        }
    }

    public func gradientsReady(_ range: Range<Int>, of store: ParameterStore) {
        guard overlapsBackward, communicator.size > 1, !range.isEmpty else { return }
        let start = DispatchTimeCounter.now()
        startBuckets(range, store)
        handedOver.append(range)
        reductionSeconds += DispatchTimeCounter.seconds(since: start)
    }

    public func progress() {
        guard !pending.isEmpty else { return }
        communicator.abortOnError("progressing gradient reductions") {
            for index in pending.indices { _ = try pending[index].test() }
        }
    }

    /// Starts non-blocking allreduces of `range` in buckets.
    private func startBuckets(_ range: Range<Int>, _ store: ParameterStore) {
        communicator.abortOnError("starting the reduction of gradients \(range) (collective #\(callCount))") {
            var offset = range.lowerBound
            while offset < range.upperBound {
                callCount += 1
                let count = min(bucketSize, range.upperBound - offset)
                pending.append(try communicator.startAllreduceSum(UnsafeMutableBufferPointer(start: store.gradients + offset, count: count)))
                offset += count
            }
        }
    }

    public func reduceGradients(_ range: Range<Int>, of store: ParameterStore) {
        callCount += 1
        if communicator.size == 1 || range.isEmpty { return }
        let operation = CurrentOperation.swap("MPI_Iallreduce/MPI_Wait of gradients \(range) (collective #\(callCount))")  // Watchdog
        defer { CurrentOperation.set(operation) }
        let start = DispatchTimeCounter.now()
        // What the backward did not hand over yet, in order.
        var rest = [range]
        for done in handedOver {
            rest = rest.flatMap { part -> [Range<Int>] in
                guard part.overlaps(done) else { return [part] }
                return [part.lowerBound..<max(part.lowerBound, done.lowerBound), min(part.upperBound, done.upperBound)..<part.upperBound]
                    .filter { !$0.isEmpty }
            }
        }
        precondition(handedOver.allSatisfy { range.contains($0.lowerBound) && $0.upperBound <= range.upperBound },
                     "a gradient part outside the phase range was handed over")
        for part in rest { startBuckets(part, store) }
        communicator.abortOnError("reducing gradients \(range) (collective #\(callCount))") {
            for index in pending.indices { try pending[index].wait() }
        }
        pending.removeAll(keepingCapacity: true)
        handedOver.removeAll(keepingCapacity: true)
        reductionSeconds += DispatchTimeCounter.seconds(since: start)
    }
}

/// A monotonic clock for timing (nanoseconds).
public enum DispatchTimeCounter {
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    public static func seconds(since start: UInt64) -> Double { Double(now() - start) / 1e9 }
}
