import BLAS
import Foundation
import Synchronization

/// The second operand of a matrix product: a matrix of activations or gradients, or one of
/// the model's parameters. In bf16 mode a matrix is rounded for each product, a parameter
/// once per update (its bf16 copy in the ``ParameterStore``).
public enum ProductOperand {
    case matrix(UnsafePointer<Float>)
    case parameter(Parameter)
    /// A matrix already rounded (bf16 only), used as stored.
    case rounded(RoundedOperand)
}

/// A matrix rounded to bf16 once, for a caller that uses it in several products: a
/// layer's input, rounded in its forward and used again by the weight gradient in its
/// backward (and by the three projections of attention); dy, for both dW and dx. It holds the matrix as
/// stored (rows × columns, densely), in the form the current path multiplies.
///
/// Its storage is reused: a layer keeps one operand and refills it every forward
/// (``ParameterStore/operandToFill(rows:columns:reusing:)``), and the operands that live for
/// one product or one backward come from the store's ``TemporaryOperands``. Storage grows to
/// the largest shape it has held and is not returned between steps: a fresh allocation per
/// step faulted in ~870 MB of pages per paper-configuration step (operands above glibc's
/// mmap threshold are new mappings every time).
public final class RoundedOperand {
    public private(set) var rows: Int, columns: Int
    private(set) var bits: UnsafeMutablePointer<UInt16>?
    private(set) var floats: UnsafeMutablePointer<Float>?
    /// Values the storage holds.
    private(set) var capacity = 0

    /// Room for `rows` × `columns` rounded values (row-major), for the pass that produces the
    /// operand to fill as it writes it (``fill(_:at:count:)``): the rounding then costs no
    /// pass of its own over memory. Scratch from malloc, not FloatBuffer (huge pages would
    /// make a partly used operand resident in 2 MiB steps).
    init(rows: Int, columns: Int) {
        (self.rows, self.columns) = (0, 0)
        reshape(rows: rows, columns: columns)
    }

    /// `source` (rows × columns as stored, row stride `stride`) rounded in a pass of its own.
    convenience init(_ source: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int) {
        self.init(rows: rows, columns: columns)
        fill(from: source, stride: stride)
    }

    /// Makes the operand `rows` × `columns`, keeping the storage when it is large enough and
    /// in the form the current path multiplies (tests switch paths); the values are then
    /// undefined until filled.
    func reshape(rows: Int, columns: Int) {
        let count = max(rows * columns, 1), emulated = MatrixEngine.path == .emulated
        if count > capacity || emulated != (floats != nil) {
            bits?.deallocate()
            floats?.deallocate()
            (bits, floats) = emulated ? (nil, .allocate(capacity: count)) : (.allocate(capacity: count), nil)
            capacity = count
        }
        (self.rows, self.columns) = (rows, columns)
    }

    /// Rounds all of `source` (row stride `stride`) into this operand, rows in parallel when large.
    func fill(from source: UnsafePointer<Float>, stride: Int) {
        ParameterStore.pack(source, stride, rows: rows, columns: columns) { self.fill($0, at: $1, count: $2) }
    }

    /// Rounds `count` values from `source` into elements `offset ..< offset + count` (nearest
    /// even, as every bf16 operand).
    @inline(__always)
    public func fill(_ source: UnsafePointer<Float>, at offset: Int, count: Int) {
        if let floats {
            BFloat16.round(source, intoFloats: floats + offset, count: count)
        } else {
            BFloat16.round(source, into: bits! + offset, count: count)
        }
    }

    deinit {
        bits?.deallocate()
        floats?.deallocate()
    }
}

/// The rounded operands that live for one product or one backward (A or B of a product
/// whose caller kept no rounding, dy in a linear backward), recycled: each use takes the
/// smallest free operand large enough — or, if none is, grows the largest — and gives it
/// back after. The attention workers multiply concurrently, so the list is locked; it
/// holds at most as many operands as were ever in use at once.
final class TemporaryOperands {
    private let free = Mutex<[RoundedOperand]>([])

    func with<T>(rows: Int, columns: Int, _ body: (RoundedOperand) -> T) -> T {
        let count = rows * columns
        let taken: RoundedOperand? = free.withLock { list in
            guard !list.isEmpty else { return nil }
            // The smallest that fits, else the largest (one pass: this runs for every product).
            var smallestFitting: Int?, largest = 0
            for index in list.indices {
                let capacity = list[index].capacity
                if capacity > list[largest].capacity { largest = index }
                if capacity >= count, smallestFitting.map({ capacity < list[$0].capacity }) ?? true { smallestFitting = index }
            }
            return list.remove(at: smallestFitting ?? largest)
        }
        let operand = taken ?? RoundedOperand(rows: rows, columns: columns)
        operand.reshape(rows: rows, columns: columns)
        defer { free.withLock { $0.append(operand) } }
        return body(operand)
    }

    /// Values held by the free operands (tests).
    var heldValues: Int { free.withLock { $0.reduce(0) { $0 + $1.capacity } } }
    /// The free operands' storage addresses, in order (tests: the same storage is reused).
    var heldStorage: [UInt] {
        free.withLock { $0.map { UInt(bitPattern: $0.floats.map { UnsafeRawPointer($0) } ?? $0.bits.map { UnsafeRawPointer($0) }) }.sorted() }
    }
}

extension ParameterStore {
    /// Calls `body` with `source` rounded (bf16) into a recycled operand that lives for the
    /// call only, or with nil in fp32.
    public func withRoundedOperand<T>(_ source: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int,
                                      _ body: (RoundedOperand?) -> T) -> T {
        guard precision == .bf16 else { return body(nil) }
        return temporaryOperands.with(rows: rows, columns: columns) { operand in
            operand.fill(from: source, stride: stride)
            return body(operand)
        }
    }

    /// An operand for the pass that produces it to round as it writes each row
    /// (``RoundedOperand/fill(_:at:count:)``), or nil in fp32. `storage`: the layer's own
    /// operand, kept across forwards and refilled here (created on first use); the layer
    /// must be done with the values of its previous forward.
    public func operandToFill(rows: Int, columns: Int, storage: inout RoundedOperand?) -> RoundedOperand? {
        guard precision == .bf16 else { return nil }
        if let storage {
            storage.reshape(rows: rows, columns: columns)
        } else {
            storage = RoundedOperand(rows: rows, columns: columns)
        }
        return storage
    }

    /// `C ← op(A) · op(B) + β C` (β ∈ {0, 1}) in the store's ``precision``: every matrix
    /// product of the model goes through here (docs/DESIGN.md §9.3).
    ///
    /// - fp32: OpenBLAS's sgemm on the operands as they are.
    /// - bf16: A and B rounded to bf16 (nearest even), products accumulated in fp32 — by
    ///   oneDNN on AMX-BF16 or AVX512-BF16, or, where the CPU has neither (or
    ///   `VAVL_BF16_PATH=emulated`), by sgemm on the rounded values.
    ///
    /// Shapes and strides as ``BLAS/sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``.
    public func multiply(transposeA: Transpose = .none, transposeB: Transpose = .none,
                         m: Int, n: Int, k: Int,
                         a: UnsafePointer<Float>, lda: Int, roundedA: RoundedOperand? = nil,
                         b: ProductOperand, ldb: Int,
                         beta: Float = 0,
                         c: UnsafeMutablePointer<Float>, ldc: Int) {
        if precision == .fp32 {
            let bPointer: UnsafePointer<Float>
            switch b {
            case .matrix(let pointer): bPointer = pointer
            case .parameter(let parameter): bPointer = UnsafePointer(pointer(parameter))
            case .rounded: preconditionFailure("a rounded operand in an fp32 product")
            }
            BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                       a: a, lda: lda, b: bPointer, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        precondition(beta == 0 || beta == 1, "bf16 products accumulate (β = 1) or overwrite (β = 0)")
        if m == 0 || n == 0 { return }
        // The stored extents of A: rows × columns as laid out in memory.
        let aRows = transposeA == .none ? m : k, aColumns = transposeA == .none ? k : m
        if let roundedA {
            multiplyRounded(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: roundedA, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            withRoundedOperand(a, rows: aRows, columns: aColumns, stride: lda) { operandA in
                multiplyRounded(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: operandA!, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            }
        }
    }

    /// The bf16 product with A rounded; B rounded here if it is a plain matrix.
    private func multiplyRounded(transposeA: Transpose, transposeB: Transpose, m: Int, n: Int, k: Int,
                                 a operandA: RoundedOperand, b: ProductOperand, ldb: Int, beta: Float,
                                 c: UnsafeMutablePointer<Float>, ldc: Int) {
        let aRows = transposeA == .none ? m : k, aColumns = transposeA == .none ? k : m
        let bRows = transposeB == .none ? k : n, bColumns = transposeB == .none ? n : k
        precondition(operandA.rows == aRows && operandA.columns == aColumns, "a rounded operand of another shape")
        func run(_ floatsB: UnsafePointer<Float>?, _ bitsB: UnsafePointer<UInt16>?, _ bStride: Int) {
            if let floatsA = operandA.floats {
                BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                           a: floatsA, lda: aColumns, b: floatsB!, ldb: bStride, beta: beta, c: c, ldc: ldc)
            } else {
                BLAS.bf16gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                              a: operandA.bits!, lda: aColumns, b: bitsB!, ldb: bStride,
                              accumulate: beta == 1, c: c, ldc: ldc)
            }
        }
        // B: a weight's bf16 copy as stored (stride ldb), or a rounded matrix, packed densely.
        switch b {
        case .parameter(let parameter):
            let emulated = operandA.floats != nil
            run(emulated ? UnsafePointer(lowPrecisionFloats(parameter)) : nil,
                emulated ? nil : UnsafePointer(lowPrecisionBits(parameter)), ldb)
        case .rounded(let operand):
            precondition(operand.rows == bRows && operand.columns == bColumns, "a rounded operand of another shape")
            run(operand.floats.map { UnsafePointer($0) }, operand.bits.map { UnsafePointer($0) }, bColumns)
        case .matrix(let source):
            withRoundedOperand(source, rows: bRows, columns: bColumns, stride: ldb) { operand in
                run(operand!.floats.map { UnsafePointer($0) }, operand!.bits.map { UnsafePointer($0) }, bColumns)
            }
        }
    }

    /// Calls `round(sourceRow, targetOffset, count)` for each stored row of a strided
    /// operand, packing it densely (rows × columns); rows in parallel when large.
    static func pack(_ source: UnsafePointer<Float>, _ stride: Int, rows: Int, columns: Int,
                             _ round: (UnsafePointer<Float>, Int, Int) -> Void) {
        if stride == columns {
            Parallel.chunks(rows * columns) { range in round(source + range.lowerBound, range.lowerBound, range.count) }
            return
        }
        Parallel.chunks(rows, elementsPerItem: columns) { range in
            for row in range { round(source + row * stride, row * columns, columns) }
        }
    }
}
