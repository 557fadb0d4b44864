@testable import BLAS
import Dispatch
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
/// short and wide) gives exactly what one call gives, for every transpose and leading
/// dimension, wherever the balance puts the boundaries.
final class SplitProductTests: XCTestCase {
    override func tearDown() {
        SplitBalance.adapts = true
        SplitBalance.reset(pieces: 2)
    }

    func product(_ transposeA: Transpose, _ transposeB: Transpose, m: Int, n: Int, k: Int, threads: Int,
                 checkSplit: Bool = true) -> [Float] {
        if checkSplit {
            let saved = BLAS.threadCount
            BLAS.threadCount = threads
            defer { BLAS.threadCount = saved }
            return product(transposeA, transposeB, m: m, n: n, k: k, threads: threads, checkSplit: false)
        }
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

    func testSplitProductsEqualOneCallBitForBitWhateverTheShares() {
        SplitBalance.adapts = false
        for (m, n, k) in [(700, 96, 64), (40, 900, 128), (333, 333, 40), (1000, 512, 128)] {
            XCTAssertGreaterThanOrEqual(m * n * k, BLAS.minimumSplitWork)
            for transposeA in [Transpose.none, .transposed] {
                for transposeB in [Transpose.none, .transposed] {
                    let one = product(transposeA, transposeB, m: m, n: n, k: k, threads: 1)
                    for shares in [[0.5, 0.5], [0.3, 0.7], [0.7, 0.3]] {
                        SplitBalance.setShares(shares)
                        let split = product(transposeA, transposeB, m: m, n: n, k: k, threads: 2)
                        let differing = zip(one, split).filter { $0 != $1 }.count
                        XCTAssertEqual(differing, 0, "\(m)×\(n)×\(k), A \(transposeA), B \(transposeB), shares \(shares)")
                    }
                }
            }
        }
    }

    func testConcurrentSplitProductsDoNotDisturbEachOther() {
        let shapes = [(700, 96, 64), (333, 333, 40), (1000, 512, 128), (40, 900, 128)]
        let expected = shapes.map { product(.none, .transposed, m: $0.0, n: $0.1, k: $0.2, threads: 1) }
        let saved = BLAS.threadCount
        BLAS.threadCount = 2
        defer { BLAS.threadCount = saved }
        for _ in 0..<5 {
            var results = [[Float]](repeating: [], count: shapes.count)
            results.withUnsafeMutableBufferPointer { slots in
                DispatchQueue.concurrentPerform(iterations: shapes.count) { index in
                    let (m, n, k) = shapes[index]
                    slots[index] = product(.none, .transposed, m: m, n: n, k: k, threads: 2, checkSplit: false)
                }
            }
            XCTAssertEqual(results, expected)
        }
    }

    func testBoundariesCoverTheExtentOnAlignedStartsInShareProportion() {
        for extent in [64, 65, 100, 1000, 4841] {
            for shares in [[0.5, 0.5], [0.25, 0.75], [0.7, 0.3], [0.2, 0.3, 0.5], [0.25, 0.25, 0.25, 0.25]] {
                let bounds = SplitBalance.boundaries(shares: shares, extent: extent)
                XCTAssertEqual(bounds.count, shares.count + 1)
                XCTAssertEqual(bounds.first, 0)
                XCTAssertEqual(bounds.last, extent)
                XCTAssertEqual(bounds, bounds.sorted())
                XCTAssertTrue(bounds.dropFirst().dropLast().allSatisfy { $0 % BLAS.splitAlignment == 0 })
                var cumulative = 0.0
                for (piece, share) in shares.dropLast().enumerated() {
                    cumulative += share
                    XCTAssertLessThanOrEqual(abs(Double(bounds[piece + 1]) - cumulative * Double(extent)),
                                             Double(BLAS.splitAlignment) / 2 + 1e-9, "extent \(extent), shares \(shares)")
                }
            }
        }
    }

    func testSharesMoveTowardTheFasterThreadWithinBounds() {
        // Piece 0 took twice as long for the same extent: it gets less next time.
        let slower = SplitBalance.adaptedShares([0.5, 0.5], bounds: [0, 512, 1024], elapsed: [0.02, 0.01])
        XCTAssertLessThan(slower[0], 0.5)
        XCTAssertEqual(slower[0] + slower[1], 1, accuracy: 1e-12)
        // Equal rates keep equal shares; uneven extents at equal rates restore evenness.
        XCTAssertEqual(SplitBalance.adaptedShares([0.5, 0.5], bounds: [0, 512, 1024], elapsed: [0.01, 0.01]), [0.5, 0.5])
        let restored = SplitBalance.adaptedShares([0.3, 0.7], bounds: [0, 300, 1000], elapsed: [0.003, 0.007])
        XCTAssertGreaterThan(restored[0], 0.3)
        // With several workers only the calling thread keeps its own rate: workers take
        // pieces in arrival order, so they share one.
        let three = SplitBalance.adaptedShares([1.0 / 3, 1.0 / 3, 1.0 / 3], bounds: [0, 320, 640, 960],
                                               elapsed: [0.01, 0.02, 0.005])
        XCTAssertEqual(three[1], three[2], accuracy: 1e-12)
        XCTAssertEqual(three.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertNotEqual(three[0], 1.0 / 3, accuracy: 1e-6)
        // A stalled piece loses share, but never below half the even share.
        var stalled = [0.5, 0.5]
        for _ in 0..<3 {
            let bounds = [0, Int(stalled[0] * 1024), 1024]
            stalled = SplitBalance.adaptedShares(stalled, bounds: bounds, elapsed: [10, 0.01])
            XCTAssertGreaterThanOrEqual(stalled[0], 0.25 - 1e-12)
        }
        XCTAssertEqual(stalled[0], 0.25, accuracy: 1e-9)
        XCTAssertEqual(stalled[1], 0.75, accuracy: 1e-9)
    }

    func testEveryPieceIsClaimedOnceWhoeverArrives() {
        for pieces in [2, 3, 4] {
            // The calling thread first, last, or not at all, and twice (Dispatch may run several
            // iterations on it).
            for order in [[true, false, false, false], [false, false, false, true], [false, false, false, false],
                          [true, true, true, true]] {
                let call = SplitBalance.beginCall(pieces: pieces, extent: 1024)
                let claimed = order.prefix(pieces).map { call.claimPiece(onCallingThread: $0) }
                XCTAssertEqual(claimed.sorted(), Array(0..<pieces), "order \(order.prefix(pieces))")
                if order[0] { XCTAssertEqual(claimed[0], 0, "the calling thread takes piece 0") }
            }
        }
    }

}

/// The product profile counts every call's multiply-adds once, in its shape class.
final class ProductProfileTests: XCTestCase {
    func testProductProfileGroupsCallsByTransposesAndDimensionRanges() {
        let a = [Float](repeating: 1, count: 300 * 70), b = [Float](repeating: 1, count: 70 * 40)
        var c = [Float](repeating: 0, count: 300 * 40)
        ProductProfile.reset()
        ProductProfile.enabled = true
        for m in [300, 260] {  // same class: 256–511 × 32–63 × 64–127
            BLAS.sgemm(m: m, n: 40, k: 70, a: a, lda: 70, b: b, ldb: 40, c: &c, ldc: 40)
        }
        BLAS.sgemm(transposeA: .transposed, m: 70, n: 40, k: 300, a: a, lda: 70, b: b, ldb: 40, c: &c, ldc: 40)
        ProductProfile.enabled = false
        XCTAssertEqual(ProductProfile.multiplyAdds, (300 + 260) * 40 * 70 + 70 * 40 * 300)
        let shapes = Dictionary(uniqueKeysWithValues: ProductProfile.byShape.map { ($0.0.description, $0.1) })
        XCTAssertEqual(shapes.count, 2)
        XCTAssertEqual(shapes["NN m 256–511, n 32–63, k 64–127"]?.calls, 2)
        XCTAssertEqual(shapes["NN m 256–511, n 32–63, k 64–127"]?.multiplyAdds, (300 + 260) * 40 * 70)
        XCTAssertEqual(shapes["TN m 64–127, n 32–63, k 256–511"]?.calls, 1)
        ProductProfile.reset()
        XCTAssertEqual(ProductProfile.byShape.count, 0)
    }
}
