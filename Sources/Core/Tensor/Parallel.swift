import BLAS
import Dispatch

/// Splits the large elementwise passes over the threads a rank was given (the same number
/// OpenBLAS uses), so that 1 process × N threads does not leave N − 1 cores idle between
/// matrix products. Small passes stay on the calling thread.
public enum Parallel {
    /// Below this many elements a pass is not worth splitting.
    public static let minimumElements = 1 << 17
    /// Row-wise passes are cut into this many pieces per thread, and Dispatch hands each piece
    /// to whichever thread is free: on virtual machines each core's speed drifts on its own,
    /// and with one piece per thread the faster thread waited for the slower one.
    public static let piecesPerThread = 4

    /// Runs `body` on contiguous chunks of `0..<count` (in parallel when worthwhile). Chunks
    /// are disjoint, so bodies that write only their own range need no synchronisation.
    @inline(__always)
    public static func chunks(_ count: Int, elementsPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        pieces(count, elementsPerItem: elementsPerItem) { _, range in body(range) }
    }

    /// How many pieces `pieces` splits `count` items into (1 when not worth splitting). It
    /// depends on the sizes and the thread count only, never on timing.
    @inline(__always)
    public static func pieceCount(_ count: Int, elementsPerItem: Int = 1) -> Int {
        let threads = threadsWorthUsing(count, elementsPerItem: elementsPerItem)
        return threads == 1 ? 1 : min(threads * piecesPerThread, count)
    }

    /// The rank's thread count, or 1 when the pass is too small to split.
    @inline(__always)
    static func threadsWorthUsing(_ count: Int, elementsPerItem: Int) -> Int {
        let threads = BLAS.threadCount
        guard threads > 1, count * elementsPerItem >= minimumElements, count > 1 else { return 1 }
        return threads
    }

    /// `chunks` that also passes each chunk's index in 0..<pieceCount(…), for passes that
    /// keep one partial sum per chunk (parameter gradients) and add them up in order after,
    /// so the result does not depend on thread timing.
    @inline(__always)
    public static func pieces(_ count: Int, elementsPerItem: Int = 1, _ body: (_ piece: Int, Range<Int>) -> Void) {
        let pieces = pieceCount(count, elementsPerItem: elementsPerItem)
        guard pieces > 1 else {
            body(0, 0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: pieces) { piece in
            body(piece, (count * piece / pieces)..<(count * (piece + 1) / pieces))
        }
    }

    /// Runs `body` on contiguous blocks of the columns `0..<columns` of a (rows, columns)
    /// pass, in parallel when worthwhile, for passes in which every column is independent
    /// (per-channel statistics, depthwise filters): each block loops over all rows in the
    /// serial order, so results equal the one-thread results bit for bit. Blocks start on
    /// multiples of 16 columns.
    @inline(__always)
    public static func columnBlocks(_ columns: Int, rows: Int, _ body: (Range<Int>) -> Void) {
        // One block per thread: each block walks every row touching only its columns, and
        // finer blocks would make those walks sparser.
        let pieces = min(threadsWorthUsing(columns, elementsPerItem: rows), columns / 16)
        guard pieces > 1 else {
            body(0..<columns)
            return
        }
        func boundary(_ piece: Int) -> Int { piece == pieces ? columns : columns * piece / pieces / 16 * 16 }
        DispatchQueue.concurrentPerform(iterations: pieces) { piece in body(boundary(piece)..<boundary(piece + 1)) }
    }
}
