import CBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// How a rank uses its threads for matrix products.
///
/// OpenBLAS's own threading is kept at one thread. Its idle workers spin in `sched_yield`
/// between calls, and the layers run elementwise passes on the same cores between calls:
/// measured here with 2 threads, 15 % of the CPU time of a training step went to that
/// spinning. Instead `sgemm` splits a large product into `threadCount` independent
/// single-threaded OpenBLAS calls on blocks of C, run with Dispatch (whose idle threads
/// sleep), and the elementwise passes use the same threads (`Parallel`).
/// `VAVL_BLAS_THREADING=openblas` restores OpenBLAS's threading, for comparison.
extension BLAS {
    /// Products with fewer multiply-adds than this run on one thread.
    public static let minimumSplitWork = 1 << 21
    /// Split blocks start at multiples of this many rows (columns), the kernels' unroll.
    public static let splitAlignment = 32

    public enum Threading: Sendable { case split, openBLAS }

    /// Chosen once, from `VAVL_BLAS_THREADING` (`split`, the default, or `openblas`).
    public static let threading: Threading = {
        getenv("VAVL_BLAS_THREADING").map { String(cString: $0).lowercased() == "openblas" } == true ? .openBLAS : .split
    }()

    nonisolated(unsafe) private static var storedThreadCount: Int = {
        let cores = Int(openblas_get_num_threads())
        if threading == .split { openblas_set_num_threads(1) }
        return max(1, cores)
    }()

    /// The threads this rank computes with (matrix products and the large elementwise passes).
    /// With the default threading OpenBLAS itself stays at one thread; with
    /// `VAVL_BLAS_THREADING=openblas` this is OpenBLAS's thread count
    /// (`openblas_set_num_threads`).
    public static var threadCount: Int {
        get { storedThreadCount }
        set {
            storedThreadCount = max(1, newValue)
            openblas_set_num_threads(Int32(threading == .split ? 1 : storedThreadCount))
        }
    }

    @usableFromInline nonisolated(unsafe) static var splittingSuspended = false

    /// Runs `body` with OpenBLAS's own threading on `threadCount` threads and no splitting:
    /// the reference rate `vavl bench` compares against.
    public static func withOpenBLASThreading<T>(_ body: () -> T) -> T {
        splittingSuspended = true
        openblas_set_num_threads(Int32(threadCount))
        defer {
            splittingSuspended = false
            openblas_set_num_threads(Int32(threading == .split ? 1 : threadCount))
        }
        return body()
    }

    /// The number of independent calls `sgemm` makes for an m × n × k product.
    @inlinable
    static func splitCount(m: Int, n: Int, k: Int) -> Int {
        guard threading == .split, !splittingSuspended else { return 1 }
        let threads = threadCount
        guard threads > 1, m * n * k >= minimumSplitWork, max(m, n) >= threads * splitAlignment else { return 1 }
        return threads
    }
}
