import BLAS
import Dispatch

/// Splits the large elementwise passes over the threads a rank was given (the same number
/// OpenBLAS uses), so that 1 process × N threads does not leave N − 1 cores idle between
/// matrix products. Small passes stay on the calling thread.
public enum Parallel {
    /// Below this many elements a pass is not worth splitting.
    public static let minimumElements = 1 << 17

    /// Runs `body` on contiguous chunks of `0..<count` (in parallel when worthwhile). Chunks
    /// are disjoint, so bodies that write only their own range need no synchronisation.
    @inline(__always)
    public static func chunks(_ count: Int, elementsPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = BLAS.threadCount
        guard threads > 1, count * elementsPerItem >= minimumElements, count > 1 else {
            body(0..<count)
            return
        }
        let pieces = min(threads, count)
        DispatchQueue.concurrentPerform(iterations: pieces) { piece in
            body((count * piece / pieces)..<(count * (piece + 1) / pieces))
        }
    }
}
