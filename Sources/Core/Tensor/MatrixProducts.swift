import BLAS
import Foundation

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
public final class RoundedOperand {
    let rows: Int, columns: Int
    let bits: UnsafeMutablePointer<UInt16>?
    let floats: UnsafeMutablePointer<Float>?

    /// Room for `rows` × `columns` rounded values (row-major), for the pass that produces the
    /// operand to fill as it writes it (``fill(_:at:count:)``): the rounding then costs no
    /// pass of its own over memory. Scratch from malloc, not FloatBuffer: a fresh huge-page
    /// buffer per product would fault its pages in every time.
    init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        if MatrixEngine.path == .emulated {
            (floats, bits) = (.allocate(capacity: max(rows * columns, 1)), nil)
        } else {
            (bits, floats) = (.allocate(capacity: max(rows * columns, 1)), nil)
        }
    }

    /// `source` (rows × columns as stored, row stride `stride`) rounded in a pass of its own.
    convenience init(_ source: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int) {
        self.init(rows: rows, columns: columns)
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

extension ParameterStore {
    /// `source` (rows × columns as stored, row stride `stride`) rounded once for several
    /// products, or nil in fp32 (where operands are used as they are).
    public func roundedOperand(_ source: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int) -> RoundedOperand? {
        precision == .bf16 ? RoundedOperand(source, rows: rows, columns: columns, stride: stride) : nil
    }

    /// An operand for the pass that produces it to round as it writes each row
    /// (``RoundedOperand/fill(_:at:count:)``), or nil in fp32.
    public func operandToFill(rows: Int, columns: Int) -> RoundedOperand? {
        precision == .bf16 ? RoundedOperand(rows: rows, columns: columns) : nil
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
        // The stored extents of A and B: rows × columns as laid out in memory.
        let aRows = transposeA == .none ? m : k, aColumns = transposeA == .none ? k : m
        let bRows = transposeB == .none ? k : n, bColumns = transposeB == .none ? n : k
        let operandA = roundedA ?? RoundedOperand(a, rows: aRows, columns: aColumns, stride: lda)
        precondition(operandA.rows == aRows && operandA.columns == aColumns, "a rounded operand of another shape")
        // B: a weight's bf16 copy as stored (stride ldb), or a rounded matrix, packed densely.
        let operandB: (floats: UnsafePointer<Float>?, bits: UnsafePointer<UInt16>?), bStride: Int, temporary: RoundedOperand?
        switch b {
        case .parameter(let parameter):
            let emulated = operandA.floats != nil
            operandB = (emulated ? UnsafePointer(lowPrecisionFloats(parameter)) : nil,
                        emulated ? nil : UnsafePointer(lowPrecisionBits(parameter)))
            (bStride, temporary) = (ldb, nil)
        case .rounded(let operand):
            precondition(operand.rows == bRows && operand.columns == bColumns, "a rounded operand of another shape")
            operandB = (operand.floats.map { UnsafePointer($0) }, operand.bits.map { UnsafePointer($0) })
            (bStride, temporary) = (bColumns, nil)
        case .matrix(let source):
            let operand = RoundedOperand(source, rows: bRows, columns: bColumns, stride: ldb)
            operandB = (operand.floats.map { UnsafePointer($0) }, operand.bits.map { UnsafePointer($0) })
            (bStride, temporary) = (bColumns, operand)
        }
        withExtendedLifetime(temporary) {
            if let floatsA = operandA.floats {
                BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                           a: floatsA, lda: aColumns, b: operandB.floats!, ldb: bStride, beta: beta, c: c, ldc: ldc)
            } else {
                BLAS.bf16gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                              a: operandA.bits!, lda: aColumns, b: operandB.bits!, ldb: bStride,
                              accumulate: beta == 1, c: c, ldc: ldc)
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
