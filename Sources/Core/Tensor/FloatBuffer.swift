#if canImport(Glibc)
import Glibc
#endif

/// Allocation of the large float buffers (activations, parameters, gradients, optimizer
/// moments). Buffers of 1 MiB or more are placed on 2 MiB boundaries and offered to the
/// kernel as transparent huge pages (`madvise(MADV_HUGEPAGE)`; Debian's default THP mode is
/// "madvise", so without the call they would stay on 4 KiB pages). OpenBLAS's packing walks
/// the operands of a 4841 × 2048 product across thousands of pages; on huge pages the TLB
/// covers them. `VAVL_HUGE_PAGES=0` keeps ordinary pages (to compare).
public enum FloatBuffer {
    static let hugePageBytes = 2 << 20
    static let hugePageThreshold = 1 << 20
    public static let usesHugePages: Bool = {
        guard let value = getenv("VAVL_HUGE_PAGES") else { return true }
        return String(cString: value) != "0"
    }()

    /// An uninitialised buffer of `count` floats, 64-byte aligned at least.
    public static func allocate(count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let huge = usesHugePages && bytes >= hugePageThreshold
        let alignment = huge ? hugePageBytes : 64
        let rounded = (bytes + alignment - 1) / alignment * alignment
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, alignment, rounded) == 0, let pointer else {
            fatalError("out of memory allocating \(rounded) bytes")
        }
        if huge { _ = madvise(pointer, rounded, MADV_HUGEPAGE) }  // advice only: ordinary pages if refused
        return pointer.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// A buffer of `count` zeros.
    public static func allocateZeroed(count: Int) -> UnsafeMutablePointer<Float> {
        let pointer = allocate(count: count)
        pointer.initialize(repeating: 0, count: max(count, 1))
        return pointer
    }

    /// Releases a buffer from ``allocate(count:)``.
    public static func deallocate(_ pointer: UnsafeMutablePointer<Float>) {
        free(pointer)
    }
}
