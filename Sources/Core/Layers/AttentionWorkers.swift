import BLAS
import Dispatch
import Synchronization

/// Runs the per-utterance, per-head attention loop on the rank's threads. Each participant
/// claims the next (utterance, head) pair, longest utterance first, until none is left, with
/// its own scratch and single-threaded sgemm (the products are small, one head of one
/// utterance): the threads stay busy whatever their speeds (on virtual machines each core's
/// speed drifts on its own; fixed groups left one thread waiting for the other), and a single
/// utterance — inference — still spreads its heads over the threads. Every pair writes its
/// own columns of its own utterance's rows (the position gradient too, reduced in utterance
/// order by the caller), so results do not depend on which thread took which pair. With one
/// thread, or a small batch, it is the plain loop in utterance, then head, order.
final class AttentionWorkers: @unchecked Sendable {
    /// Per-participant scratch: three score matrices (T × T in training; a block of queries ×
    /// T in evaluation) and a row of dropout multipliers.
    final class Scratch {
        private(set) var capacity = 0, multiplierCapacity = 1
        private(set) var scores = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        private(set) var positionScores = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        private(set) var dropped = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        /// One row of dropout multipliers.
        private(set) var multipliers = UnsafeMutablePointer<Float>.allocate(capacity: 1)

        /// Room for `rows` × T scores and a row of T multipliers, T = `longest`.
        func reserve(rows: Int, longest: Int) {
            let count = rows * longest
            if count > capacity {
                for pointer in [scores, positionScores, dropped] { pointer.deallocate() }
                capacity = count
                scores = .allocate(capacity: count)
                positionScores = .allocate(capacity: count)
                dropped = .allocate(capacity: count)
            }
            if longest > multiplierCapacity {
                multipliers.deallocate()
                multiplierCapacity = longest
                multipliers = .allocate(capacity: longest)
            }
        }
    }

    /// One set per model (its ``Workspace``), used by one attention pass at a time.
    private var scratch: [Scratch] = []
    private let nextClaim = Atomic<Int>(0)

    /// Score floats held by the first `participants` scratch sets (tests).
    func scratchFloats(participants: Int) -> Int { scratch.prefix(participants).reduce(0) { $0 + 3 * $1.capacity } }

    /// Below this much attention work (Σ T² · H · D multiply-adds) one thread does it all.
    static let minimumParallelWork = 1 << 21

    /// Calls `body(utterance, head, scratch)` once for every head of every non-empty
    /// utterance; each scratch holds `scoreRows` rows of `longest` scores.
    func run(_ segments: Segments, heads: Int, headDimension: Int, scoreRows: Int, longest: Int,
                    _ body: (Int, Int, Scratch) -> Void) {
        let utterances = (0..<segments.count).filter { segments.length($0) > 0 }
        let work = utterances.reduce(0) { $0 + segments.length($1) * segments.length($1) } * heads * headDimension
        let participants = work >= Self.minimumParallelWork ? min(BLAS.threadCount, utterances.count * heads) : 1
        while scratch.count < participants { scratch.append(Scratch()) }
        for index in 0..<participants { scratch[index].reserve(rows: scoreRows, longest: longest) }
        if participants == 1 {
            for utterance in utterances { for head in 0..<heads { body(utterance, head, scratch[0]) } }
            return
        }
        let longestFirst = utterances.sorted { (segments.length($0), $1) > (segments.length($1), $0) }
            .flatMap { utterance in (0..<heads).map { (utterance, $0) } }
        let saved = BLAS.threadCount
        BLAS.threadCount = 1
        nextClaim.store(0, ordering: .relaxed)
        DispatchQueue.concurrentPerform(iterations: participants) { participant in
            while true {
                let claim = nextClaim.wrappingAdd(1, ordering: .relaxed).oldValue
                guard claim < longestFirst.count else { return }
                body(longestFirst[claim].0, longestFirst[claim].1, scratch[participant])
            }
        }
        BLAS.threadCount = saved
    }
}
