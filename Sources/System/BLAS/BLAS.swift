import CBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

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
        let pieces = splitCount(m: m, n: n, k: k)
        if pieces == 1 {
            ProductProfile.measure(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k) {
                cblas_sgemm(CblasRowMajor, transposeA.cblas, transposeB.cblas,
                            Int32(m), Int32(n), Int32(k), alpha,
                            a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            }
            return
        }
        // Independent single-threaded calls on blocks of C's rows (or of its columns when C
        // is short and wide); each packs its own share of the operands, none waits on another.
        // The blocks follow the threads' measured speeds (`SplitBalance`).
        let splitRows = m >= n || n < pieces * splitAlignment
        let call = SplitBalance.beginCall(pieces: pieces, extent: splitRows ? m : n)
        let caller = pthread_self()
        DispatchQueue.concurrentPerform(iterations: pieces) { _ in
            let piece = call.claimPiece(onCallingThread: pthread_equal(pthread_self(), caller) != 0)
            let start = call.bounds[piece], end = call.bounds[piece + 1]
            defer { call.finished(piece: piece) }
            guard end > start else { return }
            if splitRows {
                let aStart = transposeA == .none ? a + start * lda : a + start
                ProductProfile.measure(transposeA: transposeA, transposeB: transposeB, m: end - start, n: n, k: k) {
                    cblas_sgemm(CblasRowMajor, transposeA.cblas, transposeB.cblas,
                                Int32(end - start), Int32(n), Int32(k), alpha,
                                aStart, Int32(lda), b, Int32(ldb), beta, c + start * ldc, Int32(ldc))
                }
            } else {
                let bStart = transposeB == .none ? b + start : b + start * ldb
                ProductProfile.measure(transposeA: transposeA, transposeB: transposeB, m: m, n: end - start, k: k) {
                    cblas_sgemm(CblasRowMajor, transposeA.cblas, transposeB.cblas,
                                Int32(m), Int32(end - start), Int32(k), alpha,
                                a, Int32(lda), bStart, Int32(ldb), beta, c + start, Int32(ldc))
                }
            }
        }
        SplitBalance.endCall(call)
    }
}
