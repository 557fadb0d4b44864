import BLAS
import Dispatch

/// Runs the per-utterance attention loop on the rank's threads: utterances are split into
/// groups of about equal T² (largest first to the least-loaded group), each group runs on its
/// own thread with its own scratch and single-threaded sgemm (the products are small, one
/// head of one utterance), and the callers combine what groups share (the position
/// gradient). With one thread, or a small batch, it is the plain loop.
enum AttentionWorkers {
    /// Per-thread scratch: three T×T matrices and a position-gradient buffer.
    final class Scratch {
        let slot: Int
        private(set) var capacity = 0
        private(set) var scores = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        private(set) var positionScores = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        private(set) var dropped = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        /// One row of dropout multipliers.
        private(set) var multipliers = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        private let positionGradientBuffer = Matrix()
        fileprivate var usedPositionGradient = false

        init(slot: Int) { self.slot = slot }

        /// Room for T×T scores and a row of T multipliers, T = `longest`.
        func reserve(longest: Int) {
            let count = longest * longest
            guard count > capacity else { return }
            for pointer in [scores, positionScores, dropped, multipliers] { pointer.deallocate() }
            capacity = count
            scores = .allocate(capacity: count)
            positionScores = .allocate(capacity: count)
            dropped = .allocate(capacity: count)
            multipliers = .allocate(capacity: longest)
        }

        /// A zeroed (rows, columns) buffer for this worker's share of the position gradient.
        func positionGradient(rows: Int, columns: Int) -> Matrix {
            if !usedPositionGradient {
                positionGradientBuffer.resizeZeroed(rows: rows, columns: columns)
                usedPositionGradient = true
            }
            return positionGradientBuffer
        }

        fileprivate var pendingPositionGradient: Matrix? { usedPositionGradient ? positionGradientBuffer : nil }
    }

    nonisolated(unsafe) private static var scratch: [Scratch] = []

    /// Below this much attention work (Σ T² · H · D multiply-adds) one thread does it all.
    static let minimumParallelWork = 1 << 21

    static func run(_ segments: Segments, heads: Int, headDimension: Int, longest: Int,
                    _ body: ([Int], Scratch) -> Void) {
        let utterances = (0..<segments.count).filter { segments.length($0) > 0 }
        let work = utterances.reduce(0) { $0 + segments.length($1) * segments.length($1) } * heads * headDimension
        let threads = min(BLAS.threadCount, utterances.count)
        let groups = threads > 1 && work >= minimumParallelWork ? balancedGroups(utterances, segments, count: threads) : [utterances]
        while scratch.count < groups.count { scratch.append(Scratch(slot: scratch.count)) }
        for index in groups.indices {
            scratch[index].reserve(longest: longest)
            scratch[index].usedPositionGradient = false
        }
        if groups.count == 1 {
            body(groups[0], scratch[0])
            return
        }
        let saved = BLAS.threadCount
        BLAS.threadCount = 1
        DispatchQueue.concurrentPerform(iterations: groups.count) { body(groups[$0], scratch[$0]) }
        BLAS.threadCount = saved
    }

    /// Adds the position-gradient shares of workers 1… into `target` (worker 0 wrote there).
    static func addPositionGradients(into target: Matrix) {
        for worker in scratch.dropFirst() {
            guard let share = worker.pendingPositionGradient else { continue }
            Elementwise.accumulate(target.data, share.data, count: min(target.count, share.count))
            worker.usedPositionGradient = false
        }
    }

    /// Groups of utterances with about equal Σ T², each in ascending utterance order.
    static func balancedGroups(_ utterances: [Int], _ segments: Segments, count: Int) -> [[Int]] {
        var loads = [Int](repeating: 0, count: count)
        var groups = [[Int]](repeating: [], count: count)
        for utterance in utterances.sorted(by: { (segments.length($0), $1) > (segments.length($1), $0) }) {
            let lightest = loads.indices.min { loads[$0] < loads[$1] }!
            groups[lightest].append(utterance)
            loads[lightest] += segments.length(utterance) * segments.length(utterance)
        }
        return groups.map { $0.sorted() }.filter { !$0.isEmpty }
    }
}
