import BLAS
import XCTest

final class BLASTests: XCTestCase {
    /// Deterministic values in [-1, 1) without a random-number dependency.
    func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float(((($0 + 1) * 7919 + seed * 104_729) % 2001) - 1000) / 1000 }
    }

    func naive(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
               b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int) -> [Float] {
        var result = c
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = 0
                for p in 0..<k {
                    let aValue = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bValue = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(aValue) * Double(bValue)
                }
                result[i * ldc + j] = alpha * Float(sum) + beta * c[i * ldc + j]
            }
        }
        return result
    }

    func testSgemmMatchesNaiveLoopForAllTransposesAndOddSizes() {
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 9, 33), (65, 31, 1)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    // Leading dimensions wider than the matrices, so strides are exercised.
                    let lda = (transposeA ? m : k) + 2, ldb = (transposeB ? k : n) + 3, ldc = n + 1
                    let a = values((transposeA ? k : m) * lda, seed: 1)
                    let b = values((transposeB ? n : k) * ldb, seed: 2)
                    let c = values(m * ldc, seed: 3)
                    var actual = c
                    a.withUnsafeBufferPointer { aBuffer in
                        b.withUnsafeBufferPointer { bBuffer in
                            actual.withUnsafeMutableBufferPointer { cBuffer in
                                BLAS.sgemm(transposeA: transposeA ? .transposed : .none,
                                           transposeB: transposeB ? .transposed : .none,
                                           m: m, n: n, k: k, alpha: 0.75,
                                           a: aBuffer.baseAddress!, lda: lda, b: bBuffer.baseAddress!, ldb: ldb,
                                           beta: 0.5, c: cBuffer.baseAddress!, ldc: ldc)
                            }
                        }
                    }
                    let expected = naive(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.75,
                                         a: a, lda: lda, b: b, ldb: ldb, beta: 0.5, c: c, ldc: ldc)
                    for i in 0..<m {
                        for j in 0..<n {
                            XCTAssertEqual(actual[i * ldc + j], expected[i * ldc + j], accuracy: 1e-4,
                                           "m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB) at (\(i),\(j))")
                        }
                        // Padding columns of C are never written.
                        XCTAssertEqual(actual[i * ldc + n], c[i * ldc + n])
                    }
                }
            }
        }
    }

    func testZeroInnerDimensionScalesC() {
        var c: [Float] = [1, 2, 3, 4]
        let empty: [Float] = [0]
        c.withUnsafeMutableBufferPointer { cBuffer in
            BLAS.sgemm(m: 2, n: 2, k: 0, a: empty, lda: 1, b: empty, ldb: 2, beta: 0.5, c: cBuffer.baseAddress!, ldc: 2)
        }
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
    }

    func testThreadCountIsSettable() {
        let original = BLAS.threadCount
        BLAS.threadCount = 1
        XCTAssertEqual(BLAS.threadCount, 1)
        BLAS.threadCount = original
        XCTAssertEqual(BLAS.threadCount, original)
    }
}
