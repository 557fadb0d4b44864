import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Time spent inside OpenBLAS's sgemm and the work done there, when `vavl bench` asks: the
/// rate of the step's own products, against the machine's large-matrix rate, bounds what
/// the step as a whole can reach. Thread-safe (the attention workers call sgemm concurrently);
/// off by default (one branch per product).
public enum ProductProfile {
    nonisolated(unsafe) public static var enabled = false  // read by the inlined `measure`
    private static let nanoseconds = Atomic<Int>(0)
    private static let work = Atomic<Int>(0)

    /// Runs one single-threaded `cblas_sgemm` call of m × n × k multiply-adds, timed when enabled.
    @inlinable @inline(__always)
    static func measure(m: Int, n: Int, k: Int, _ call: () -> Void) {
        if enabled { timed(m: m, n: n, k: k, call) } else { call() }
    }

    @usableFromInline static func timed(m: Int, n: Int, k: Int, _ call: () -> Void) {
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        call()
        clock_gettime(CLOCK_MONOTONIC, &end)
        nanoseconds.wrappingAdd((end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec), ordering: .relaxed)
        work.wrappingAdd(m * n * k, ordering: .relaxed)
    }

    public static func reset() {
        nanoseconds.store(0, ordering: .relaxed)
        work.store(0, ordering: .relaxed)
    }

    /// Seconds inside sgemm calls since the last reset, summed over threads.
    public static var seconds: Double { Double(nanoseconds.load(ordering: .relaxed)) / 1e9 }
    /// Multiply-adds of those calls.
    public static var multiplyAdds: Int { work.load(ordering: .relaxed) }
}
