#if canImport(Glibc)
import Glibc
#endif

/// Where a training step spends its time, by kind of work: wall time, and the process's CPU
/// time over the same spans, whose ratio is how many threads the work kept busy. Off by
/// default (one branch per call); `vavl bench` turns it on to print the breakdown.
public enum Profiler {
    public enum Section: String, CaseIterable, Sendable {
        case projection = "temporal projection conv"
        case feedForward = "feed-forward modules"
        case attention = "relative-position attention"
        case convolution = "convolution modules"
        case normalization = "block and shared LayerNorm"
        case pooling = "pooling and residuals"
        case heads = "heads and losses"
        case optimizer = "Adam"
        case allreduce = "gradient allreduce"
        case loading = "waiting for data"
        case acousticPhase = "acoustic phase"
        case visualPhase = "visual phase"
        case audioVisualPhase = "audio-visual phase"

        /// The per-layer-kind sections (the phases contain them).
        public static let layerKinds: [Section] = [.projection, .feedForward, .attention, .convolution, .normalization,
                                                   .optimizer, .allreduce]
        public static let phases: [Section] = [.acousticPhase, .visualPhase, .audioVisualPhase]
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var totals = [Double](repeating: 0, count: Section.allCases.count)
    nonisolated(unsafe) private static var processorTotals = [Double](repeating: 0, count: Section.allCases.count)
    nonisolated(unsafe) private static var indices: [Section: Int] = Dictionary(uniqueKeysWithValues: Section.allCases.enumerated().map { ($1, $0) })

    @inline(__always)
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// CPU seconds used by all threads of the process so far.
    @inline(__always)
    public static func processorTime() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Runs `body`, adding its wall time and the process's CPU time to `section` when
    /// profiling is on.
    @inline(__always)
    public static func measure<T>(_ section: Section, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = now(), processorStart = processorTime()
        defer { add(section, now() - start, processorSeconds: processorTime() - processorStart) }
        return try body()
    }

    /// Adds `seconds` of wall time and `processorSeconds` of CPU time to `section`.
    public static func add(_ section: Section, _ seconds: Double, processorSeconds: Double) {
        let index = indices[section]!
        totals[index] += seconds
        processorTotals[index] += processorSeconds
    }

    public static func reset() {
        totals = [Double](repeating: 0, count: Section.allCases.count)
        processorTotals = totals
    }

    /// Wall seconds per section since the last reset.
    public static var seconds: [(Section, Double)] {
        Section.allCases.enumerated().map { ($1, totals[$0]) }
    }

    /// CPU seconds (all threads) per section since the last reset.
    public static var processorSeconds: [(Section, Double)] {
        Section.allCases.enumerated().map { ($1, processorTotals[$0]) }
    }
}
