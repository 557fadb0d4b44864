import CBLAS

/// Whether a matrix operand of ``BLAS/sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``
/// is used as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed

    @inlinable var cblas: CBLAS_TRANSPOSE {
        self == .none ? CblasNoTrans : CblasTrans
    }
}

/// Row-major single-precision BLAS over unsafe buffers, backed by OpenBLAS.
public enum BLAS {
    /// `C ← alpha · op(A) · op(B) + beta · C`, all matrices row-major.
    ///
    /// - `op(A)` is m × k: `A` is stored m × k (`lda ≥ k`) or, transposed, k × m (`lda ≥ m`).
    /// - `op(B)` is k × n: `B` is stored k × n (`ldb ≥ n`) or, transposed, n × k (`ldb ≥ k`).
    /// - `C` is m × n with `ldc ≥ n`.
    ///
    /// The corresponding C function is `cblas_sgemm`.
    @inlinable
    public static func sgemm(
        transposeA: Transpose = .none, transposeB: Transpose = .none,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C untouched only for beta == 1; make k = 0 mean "scale C by beta".
            for row in 0..<m {
                let cRow = c + row * ldc
                if beta == 0 { cRow.update(repeating: 0, count: n) }
                else if beta != 1 { for j in 0..<n { cRow[j] *= beta } }
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA.cblas, transposeB.cblas,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `y ← alpha · x + y` over `count` elements. The corresponding C function is `cblas_saxpy`.
    @inlinable
    public static func saxpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        if count == 0 { return }
        cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
    }

    /// The number of threads OpenBLAS uses for one call.
    /// The corresponding C functions are `openblas_get_num_threads` / `openblas_set_num_threads`.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }
}
