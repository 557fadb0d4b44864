@testable import BLAS
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

/// `sgemm` split into independent single-threaded calls (rows of C, or columns when C is
/// short and wide) gives what one call gives, for every transpose and leading dimension.
final class SplitProductTests: XCTestCase {
    func product(_ transposeA: Transpose, _ transposeB: Transpose, m: Int, n: Int, k: Int, threads: Int) -> [Float] {
        let saved = BLAS.threadCount
        BLAS.threadCount = threads
        defer { BLAS.threadCount = saved }
        if threads > 1 { XCTAssertEqual(BLAS.splitCount(m: m, n: n, k: k), threads, "the split path must be taken") }
        let padding = 3
        let lda = (transposeA == .none ? k : m) + padding, ldb = (transposeB == .none ? n : k) + padding, ldc = n + padding
        let a = (0..<((transposeA == .none ? m : k) * lda)).map { Float(($0 * 7919) % 23) / 23 - 0.5 }
        let b = (0..<((transposeB == .none ? k : n) * ldb)).map { Float(($0 * 104_729) % 19) / 19 - 0.5 }
        var c = (0..<(m * ldc)).map { Float($0 % 5) }
        c.withUnsafeMutableBufferPointer { cBuffer in
            BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                       b: b, ldb: ldb, beta: 0.25, c: cBuffer.baseAddress!, ldc: ldc)
        }
        return c
    }

    func testSplitProductsEqualOneCall() {
        for (m, n, k) in [(700, 96, 64), (40, 900, 128), (333, 333, 40)] {
            XCTAssertGreaterThanOrEqual(m * n * k, BLAS.minimumSplitWork)
            for transposeA in [Transpose.none, .transposed] {
                for transposeB in [Transpose.none, .transposed] {
                    let one = product(transposeA, transposeB, m: m, n: n, k: k, threads: 1)
                    let split = product(transposeA, transposeB, m: m, n: n, k: k, threads: 2)
                    let largest = zip(one, split).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThan(largest, 1e-4, "\(m)×\(n)×\(k), A \(transposeA), B \(transposeB)")
                }
            }
        }
    }

    func testBoundariesCoverTheExtentOnAlignedStarts() {
        for extent in [64, 65, 100, 1000, 4841] {
            for pieces in 2...4 {
                let bounds = (0...pieces).map { BLAS.splitBoundary($0, of: pieces, extent: extent) }
                XCTAssertEqual(bounds.first, 0)
                XCTAssertEqual(bounds.last, extent)
                XCTAssertEqual(bounds, bounds.sorted())
                XCTAssertTrue(bounds.dropFirst().dropLast().allSatisfy { $0 % BLAS.splitAlignment == 0 })
            }
        }
    }
}
