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
    private static let classes = Mutex<[ShapeClass: Totals]>([:])

    /// Products grouped by transposes and by each dimension's power-of-two range, so that
    /// the per-utterance attention shapes (which vary with the frame count) fall together.
    public struct ShapeClass: Hashable, Sendable, CustomStringConvertible {
        public var transposeA: Bool, transposeB: Bool
        /// ⌊log₂⌋ of m, n and k.
        public var m: Int, n: Int, k: Int

        public var description: String {
            func range(_ power: Int) -> String { "\(1 << power)–\((2 << power) - 1)" }
            return "\(transposeA ? "T" : "N")\(transposeB ? "T" : "N") m \(range(m)), n \(range(n)), k \(range(k))"
        }
    }

    /// CPU seconds, multiply-adds and calls of one shape class.
    public struct Totals: Sendable {
        public var seconds = 0.0
        public var multiplyAdds = 0
        public var calls = 0

        mutating func add(seconds: Double, multiplyAdds: Int) {
            self.seconds += seconds
            self.multiplyAdds += multiplyAdds
            calls += 1
        }
    }

    /// Runs one single-threaded `cblas_sgemm` call of m × n × k multiply-adds, timed when enabled.
    @inlinable @inline(__always)
    static func measure(transposeA: Transpose, transposeB: Transpose, m: Int, n: Int, k: Int, _ call: () -> Void) {
        if enabled { timed(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, call) } else { call() }
    }

    @usableFromInline static func timed(transposeA: Transpose, transposeB: Transpose, m: Int, n: Int, k: Int, _ call: () -> Void) {
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        call()
        clock_gettime(CLOCK_MONOTONIC, &end)
        let seconds = Double((end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec)) / 1e9
        func log2(_ value: Int) -> Int { Int.bitWidth - 1 - value.leadingZeroBitCount }
        let shape = ShapeClass(transposeA: transposeA == .transposed, transposeB: transposeB == .transposed,
                               m: log2(m), n: log2(n), k: log2(k))
        classes.withLock { $0[shape, default: Totals()].add(seconds: seconds, multiplyAdds: m * n * k) }
    }

    public static func reset() {
        classes.withLock { $0.removeAll() }
    }

    /// Seconds inside sgemm calls since the last reset, summed over threads.
    public static var seconds: Double { classes.withLock { $0.values.reduce(0) { $0 + $1.seconds } } }
    /// Multiply-adds of those calls.
    public static var multiplyAdds: Int { classes.withLock { $0.values.reduce(0) { $0 + $1.multiplyAdds } } }
    /// The same totals by shape class, most time first.
    public static var byShape: [(ShapeClass, Totals)] {
        classes.withLock { Array($0) }.sorted { $0.1.seconds > $1.1.seconds }
    }
}
