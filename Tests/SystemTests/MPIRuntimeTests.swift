#if canImport(Glibc)
import Glibc
#endif
import MPI
import XCTest

/// What initialising MPI sets up for the process around the library itself.
final class MPIRuntimeTests: XCTestCase {
    /// Page faults of the calling thread so far.
    private func faults() -> Int {
        var usage = rusage()
        getrusage(1 /* RUSAGE_THREAD */, &usage)
        return usage.ru_minflt + usage.ru_majflt
    }

    /// A step's worth of MPI-sized temporary blocks (four 16 MiB gradient buckets in flight,
    /// then freed), allocated again and again, reuses the same pages: glibc's defaults
    /// would hand the freed 64 MiB back to the kernel and fault it in afresh every round
    /// (~16,000 faults a round).
    func testFreedBucketSizedBlocksAreReusedWithoutPageFaults() throws {
        for name in ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"] where getenv(name) != nil {
            throw XCTSkip("\(name) is set: glibc's malloc parameters are the user's")
        }
        MPIRuntime.initialize()
        let blockBytes = 16 << 20
        func round() {
            let blocks = (0..<4).map { _ in malloc(blockBytes)! }
            for block in blocks { memset(block, 1, blockBytes) }
            for block in blocks { free(block) }
        }
        round()
        let before = faults()
        for _ in 0..<5 { round() }
        let perRound = (faults() - before) / 5
        XCTAssertLessThan(perRound, 1000, "\(perRound) page faults per round of four freed 16 MiB blocks")
    }
}
