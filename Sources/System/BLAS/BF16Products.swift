import COneDNN
import Dispatch
import Foundation

/// How bf16 products are computed on this machine (docs/DESIGN.md §9.3).
public enum BF16Path: String, Sendable {
    /// oneDNN's matmul on the AMX tile units.
    case amx = "AMX-BF16"
    /// oneDNN's matmul with AVX512-BF16 dot-product instructions.
    case avx512 = "AVX512-BF16"
    /// Operands rounded to bf16 and multiplied in fp32 by OpenBLAS: the same rounded values
    /// as the hardware paths, only the fp32 accumulation order differs.
    case emulated
}

/// A oneDNN call that failed, with its status code (`dnnl_status_t`).
public struct OneDNNError: Error, CustomStringConvertible {
    public var operation: String
    public var status: Int32
    public var description: String { "oneDNN \(operation) failed with status \(status)" }

    /// Turns a oneDNN return code into a thrown error.
    static func check(_ status: Int32, _ operation: @autoclosure () -> String) throws {
        if status != 0 { throw OneDNNError(operation: operation(), status: status) }
    }
}

/// The CPU's bf16 facilities and the path bf16 products take.
public enum MatrixEngine {
    /// What the hardware offers (CPUID; AMX only where the kernel grants tile data).
    public static let hardwarePath: BF16Path = {
        switch vavl_cpu_bf16_support() {
        case 2: return .amx
        case 1: return .avx512
        default: return .emulated
        }
    }()

    /// What `VAVL_BF16_PATH` asks for: `auto` (default), `onednn` or `emulated`.
    public enum Choice: String, Sendable { case auto, onednn, emulated }

    nonisolated(unsafe) private static var choice: Choice =
        ProcessInfo.processInfo.environment["VAVL_BF16_PATH"].flatMap { Choice(rawValue: $0.lowercased()) } ?? .auto

    /// The path in use. `auto` takes oneDNN on AMX, and the emulated path elsewhere: on a CPU
    /// with AVX512-BF16 but no AMX, oneDNN 2.6's bf16 kernels ran at 66–79 GFLOP/s per
    /// thread where OpenBLAS's fp32 kernels run at 100–120, so rounding the operands and
    /// multiplying in fp32 was faster (19.0 against 13.7 s per paper iteration; measured in
    /// docs/PERFORMANCE.md). `onednn` uses oneDNN wherever the CPU has bf16 units.
    public static var path: BF16Path {
        switch choice {
        case .emulated: return .emulated
        case .onednn: return hardwarePath
        case .auto: return hardwarePath == .amx ? .amx : .emulated
        }
    }

    /// Why ``path`` is what it is, in words (`vavl info`, `vavl bench`).
    public static var pathReason: String {
        switch (choice, hardwarePath) {
        case (_, .emulated): return "this CPU has neither AMX-BF16 nor AVX512-BF16"
        case (.emulated, _): return "VAVL_BF16_PATH=emulated; the CPU offers \(hardwarePath.rawValue)"
        case (.onednn, _), (.auto, .amx): return "oneDNN \(oneDNNVersion)"
        case (.auto, _): return "the CPU offers AVX512-BF16 without AMX, where oneDNN is slower than fp32 OpenBLAS; VAVL_BF16_PATH=onednn to use it"
        }
    }

    /// Runs `body` with a path forced (tests comparing the paths).
    public static func with<T>(_ forced: Choice, _ body: () throws -> T) rethrows -> T {
        let saved = choice
        choice = forced
        defer { choice = saved }
        return try body()
    }

    /// Runs `body` with the emulated path forced.
    public static func withEmulation<T>(_ body: () throws -> T) rethrows -> T { try with(.emulated, body) }

    /// The CPU model, as CPUID names it.
    public static let cpuModel = String(cString: vavl_cpu_model_name())
    /// oneDNN's version.
    public static var oneDNNVersion: String { String(cString: vavl_onednn_version()) }
}

/// The bf16 matmuls created so far, by shape and layout. oneDNN JIT-compiles a kernel per
/// shape (about a millisecond); products of a training step come in a few dozen shapes.
final class BF16MatmulCache: @unchecked Sendable {
    struct Key: Hashable {
        var m, n, k, lda, ldb, ldc: Int
        var transposeA, transposeB, accumulate: Bool
    }

    static let shared = BF16MatmulCache()
    private var matmuls: [Key: OpaquePointer] = [:]
    private let lock = NSLock()
    private(set) var implementations: Set<String> = []

    func matmul(_ key: Key) -> OpaquePointer {
        lock.lock()
        defer { lock.unlock() }
        if let found = matmuls[key] { return found }
        var created: OpaquePointer?
        do {
            try OneDNNError.check(vavl_bf16_matmul_create(Int64(key.m), Int64(key.n), Int64(key.k),
                                                          key.transposeA ? 1 : 0, key.transposeB ? 1 : 0,
                                                          Int64(key.lda), Int64(key.ldb), Int64(key.ldc),
                                                          key.accumulate ? 1 : 0, &created),
                                  "matmul creation for \(key)")
        } catch {
            fatalError("\(error)")
        }
        matmuls[key] = created!
        implementations.insert(String(cString: vavl_bf16_matmul_implementation(created!)))
        return created!
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return matmuls.count
    }
}

extension BLAS {
    /// C's rows (and a transposed A's reduction rows) are cut at fixed multiples of these,
    /// whatever the thread count, so a bf16 product gives the same bits on any number of
    /// threads: each tile is one single-threaded oneDNN call on a fixed shape.
    public static let bf16RowTile = 256
    public static let bf16ReductionChunk = 512
    /// A product with a single row tile (one utterance at inference, a small layer's weight
    /// gradient) is also cut at multiples of this many columns, so that it still spreads
    /// over the threads; the cut depends on the shape alone, like the others.
    public static let bf16ColumnTile = 256

    /// The implementations oneDNN chose for the products run so far (`vavl info`, `bench`).
    public static var bf16Implementations: [String] { BF16MatmulCache.shared.implementations.sorted() }
    /// The number of distinct bf16 product shapes created so far.
    public static var bf16ShapeCount: Int { BF16MatmulCache.shared.count }

    /// `C (+)= op(A) · op(B)` with bf16 operands (raw bits, row-major) and fp32 C, through
    /// oneDNN: the shapes and strides of ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``,
    /// `accumulate` in place of β ∈ {0, 1}.
    ///
    /// C is cut into tiles of ``bf16RowTile`` rows (and, if that leaves one, of
    /// ``bf16ColumnTile`` columns); when A is transposed (a weight gradient, whose reduction
    /// runs over the batch's rows) the reduction is cut into chunks of ``bf16ReductionChunk``
    /// added in order. Tiles run on the rank's threads.
    ///
    /// oneDNN 2.6 takes its fast kernels (`brg:`, AMX where the CPU has it) only when all
    /// three operands are dense; one with a row stride longer than its row (a transposed A's
    /// row tile, a column tile of B or C, one head's columns) fell back to `gemm:jit`,
    /// which has no AMX kernel. Such a part is copied into the thread's dense scratch (and
    /// C's back after), so every matmul is created for dense operands.
    public static func bf16gemm(
        transposeA: Transpose = .none, transposeB: Transpose = .none,
        m: Int, n: Int, k: Int,
        a: UnsafePointer<UInt16>, lda: Int,
        b: UnsafePointer<UInt16>, ldb: Int,
        accumulate: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if !accumulate { for row in 0..<m { (c + row * ldc).update(repeating: 0, count: n) } }
            return
        }
        let rowTiles = (m + bf16RowTile - 1) / bf16RowTile
        let columnTile = rowTiles == 1 ? bf16ColumnTile : n, columnTiles = (n + columnTile - 1) / columnTile
        let chunk = transposeA == .transposed ? bf16ReductionChunk : k
        func run(tile: Int) {
            let rowStart = tile / columnTiles * bf16RowTile, rows = min(bf16RowTile, m - rowStart)
            let columnStart = tile % columnTiles * columnTile, columns = min(columnTile, n - columnStart)
            // A's rows of this tile: stored rows when A is as is, stored columns when transposed;
            // B's columns likewise.
            let aTile = transposeA == .none ? a + rowStart * lda : a + rowStart
            let bTile = transposeB == .none ? b + columnStart : b + columnStart * ldb
            let cTile = c + rowStart * ldc + columnStart
            let cWork = ldc == columns ? cTile : DenseScratch.floats(rows * columns)
            if cWork != cTile && accumulate { DenseScratch.copy(cTile, ldc, rows: rows, columns: columns, into: cWork) }
            var done = 0
            while done < k {
                let depth = min(chunk, k - done)
                // The parts as stored: A rows × depth (transposed: depth × rows), B depth ×
                // columns (transposed: columns × depth).
                let aPart = DenseScratch.dense(transposeA == .none ? aTile + done : aTile + done * lda, lda,
                                               rows: transposeA == .none ? rows : depth, columns: transposeA == .none ? depth : rows, slot: 0)
                let bPart = DenseScratch.dense(transposeB == .none ? bTile + done * ldb : bTile + done, ldb,
                                               rows: transposeB == .none ? depth : columns, columns: transposeB == .none ? columns : depth, slot: 1)
                let key = BF16MatmulCache.Key(m: rows, n: columns, k: depth,
                                              lda: transposeA == .none ? depth : rows, ldb: transposeB == .none ? columns : depth, ldc: columns,
                                              transposeA: transposeA == .transposed, transposeB: transposeB == .transposed,
                                              accumulate: accumulate || done > 0)
                let matmul = BF16MatmulCache.shared.matmul(key)
                ProductProfile.measure(transposeA: transposeA, transposeB: transposeB, m: rows, n: columns, k: depth) {
                    let status = vavl_bf16_matmul_execute(matmul, aPart, bPart, cWork)
                    if status != 0 { fatalError("\(OneDNNError(operation: "matmul \(key)", status: status))") }
                }
                done += depth
            }
            if cWork != cTile { DenseScratch.copy(cWork, columns, rows: rows, columns: columns, into: cTile, stride: ldc) }
        }
        let tiles = rowTiles * columnTiles
        if splitCount(m: m, n: n, k: k) == 1 || tiles == 1 {
            for tile in 0..<tiles { run(tile: tile) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: tiles) { run(tile: $0) }
    }
}

/// The calling thread's dense copies of strided operand parts (`vavl_thread_scratch`: slot 0
/// for A, 1 for B, 2 for C), for ``BLAS/bf16gemm(transposeA:transposeB:m:n:k:a:lda:b:ldb:accumulate:c:ldc:)``.
enum DenseScratch {
    /// `source` (rows × columns, row stride `stride`) itself if dense, else a dense copy.
    static func dense(_ source: UnsafePointer<UInt16>, _ stride: Int, rows: Int, columns: Int, slot: Int32) -> UnsafePointer<UInt16> {
        if stride == columns || rows == 1 { return source }
        let target = buffer(slot, bytes: rows * columns * 2).assumingMemoryBound(to: UInt16.self)
        for row in 0..<rows { (target + row * columns).update(from: source + row * stride, count: columns) }
        return UnsafePointer(target)
    }

    /// Room for `count` floats (slot 2).
    static func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        buffer(2, bytes: count * 4).assumingMemoryBound(to: Float.self)
    }

    /// Copies rows × columns floats from `source` (row stride `sourceStride`) to `target`
    /// (row stride `stride`, dense by default).
    static func copy(_ source: UnsafePointer<Float>, _ sourceStride: Int, rows: Int, columns: Int,
                     into target: UnsafeMutablePointer<Float>, stride: Int? = nil) {
        for row in 0..<rows { (target + row * (stride ?? columns)).update(from: source + row * sourceStride, count: columns) }
    }

    private static func buffer(_ slot: Int32, bytes: Int) -> UnsafeMutableRawPointer {
        guard let pointer = vavl_thread_scratch(slot, max(bytes, 1)) else {
            fatalError("\(OneDNNError(operation: "allocating \(bytes) bytes of operand scratch", status: 1))")
        }
        return pointer
    }
}
