import BLAS
import XCTest
@testable import VAVLCore

/// bf16 products: rounding, the hardware path against the emulated one, and both against
/// an exact product of the rounded operands.
final class BF16ProductTests: XCTestCase {
    private func randomMatrix(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in generator.normal() }
    }

    func testRoundingIsNearestEvenAndKeepsSpecialValues() {
        XCTAssertEqual(BFloat16.bits(1), 0x3F80)
        // 1 + 2⁻⁸ lies exactly between 1 and 1 + 2⁻⁷: ties go to the even neighbour (1).
        XCTAssertEqual(BFloat16.rounded(1 + 0x1p-8), 1)
        XCTAssertEqual(BFloat16.rounded(1 + 3 * 0x1p-8), 1 + 2 * 0x1p-7, "tie to even upwards")
        XCTAssertEqual(BFloat16.rounded(1 + 0x1p-8 + 0x1p-20), 1 + 0x1p-7, "above the tie rounds up")
        XCTAssertEqual(BFloat16.rounded(.infinity), .infinity)
        XCTAssertEqual(BFloat16.rounded(-.infinity), -.infinity)
        XCTAssertTrue(BFloat16.rounded(.nan).isNaN)
        XCTAssertTrue(BFloat16.rounded(Float(bitPattern: 0x7F80_0001)).isNaN, "a NaN whose payload would round to infinity")
        XCTAssertEqual(BFloat16.rounded(Float.greatestFiniteMagnitude), .infinity, "overflow rounds to infinity")
        // The sixteen-lane loops agree with the scalar function on every kind of value.
        var values = randomMatrix(1000, seed: 3).map { $0 * 1e3 }
        values += [0, -0, .nan, .infinity, -.infinity, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0x0000_8000),
                   Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        var bits = [UInt16](repeating: 0, count: values.count)
        var floats = [Float](repeating: 0, count: values.count)
        BFloat16.round(values, into: &bits, count: values.count)
        BFloat16.round(values, intoFloats: &floats, count: values.count)
        for (index, value) in values.enumerated() {
            XCTAssertEqual(bits[index], BFloat16.bits(value), "value \(value)")
            XCTAssertEqual(floats[index].bitPattern, BFloat16.rounded(value).bitPattern, "value \(value)")
        }
    }

    /// Every layout, β 0 and 1, in sizes that need several row tiles and reduction chunks,
    /// and one row tile cut into column tiles (a remainder too): the path in use (oneDNN
    /// where the CPU has bf16 units) against the product of the rounded operands in Double,
    /// and against the emulated path.
    func testEveryLayoutMatchesTheProductOfTheRoundedOperands() {
        let store = ParameterStore(ParameterRegistry())
        store.precision = .bf16
        XCTAssertGreaterThan(600, 2 * BLAS.bf16ColumnTile)
        // Row tiles with reduction chunks; one row tile in column tiles; both cuts at once
        // when A is transposed (a small layer's weight gradient).
        for (m, n, k) in [(600, 70, 1100), (150, 600, 300), (150, 600, 1100)] {
            for transposeA in [Transpose.none, .transposed] {
                for transposeB in [Transpose.none, .transposed] {
                    for beta: Float in [0, 1] {
                        let a = randomMatrix(m * k, seed: 1), b = randomMatrix(k * n, seed: 2), c0 = randomMatrix(m * n, seed: 4)
                        let lda = transposeA == .none ? k : m, ldb = transposeB == .none ? n : k
                        func element(_ matrix: [Float], _ ld: Int, _ transposed: Bool, _ row: Int, _ column: Int) -> Double {
                            Double(BFloat16.rounded(transposed ? matrix[column * ld + row] : matrix[row * ld + column]))
                        }
                        var c = c0, emulated = c0
                        b.withUnsafeBufferPointer { bPointer in
                            MatrixEngine.with(.onednn) {
                                store.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda,
                                               b: .matrix(bPointer.baseAddress!), ldb: ldb, beta: beta, c: &c, ldc: n)
                            }
                            MatrixEngine.withEmulation {
                                store.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda,
                                               b: .matrix(bPointer.baseAddress!), ldb: ldb, beta: beta, c: &emulated, ldc: n)
                            }
                        }
                        var worst = 0.0, worstPaths = 0.0
                        for i in stride(from: 0, to: m, by: 23) {
                            for j in 0..<n {
                                var exact = beta == 1 ? Double(c0[i * n + j]) : 0
                                var magnitude = abs(exact)
                                for p in 0..<k {
                                    let product = element(a, lda, transposeA == .transposed, i, p) * element(b, ldb, transposeB == .transposed, p, j)
                                    exact += product
                                    magnitude += abs(product)
                                }
                                // fp32 accumulation of k exact products (bf16 × bf16 is exact in fp32):
                                // |error| ≤ k · 2⁻²⁴ · Σ|products| in the worst order.
                                let bound = Double(k) * 0x1p-24 * magnitude
                                worst = max(worst, abs(Double(c[i * n + j]) - exact) / bound)
                                worstPaths = max(worstPaths, abs(Double(c[i * n + j]) - Double(emulated[i * n + j])) / bound)
                            }
                        }
                        XCTAssertLessThanOrEqual(worst, 1, "\(MatrixEngine.hardwarePath) \(transposeA) \(transposeB) β \(beta), \(m) × \(n) × \(k)")
                        XCTAssertLessThanOrEqual(worstPaths, 2, "paths apart, \(transposeA) \(transposeB) β \(beta), \(m) × \(n) × \(k)")
                    }
                }
            }
        }
    }

    /// The tiles are cut by the shape alone, so a bf16 product gives the same bits on one
    /// thread and on two (resume and a change of `--threads` stay exact), on every path
    /// this CPU has, for the shapes of a training batch and of one utterance.
    func testProductsGiveTheSameBitsOnAnyThreadCount() {
        let store = ParameterStore(ParameterRegistry())
        store.precision = .bf16
        let paths: [MatrixEngine.Choice] = MatrixEngine.hardwarePath == .emulated ? [.emulated] : [.emulated, .onednn]
        for path in paths {
            for (transposeA, m, n, k) in [(Transpose.none, 700, 512, 256), (.none, 150, 1024, 512), (.transposed, 300, 600, 1100), (.transposed, 150, 600, 1100)] {
                let lda = transposeA == .none ? k : m
                let a = randomMatrix(m * k, seed: 5), b = randomMatrix(k * n, seed: 6)
                func product(threads: Int) -> [UInt32] {
                    var c = [Float](repeating: 0, count: m * n)
                    let saved = BLAS.threadCount
                    BLAS.threadCount = threads
                    defer { BLAS.threadCount = saved }
                    b.withUnsafeBufferPointer { bPointer in
                        MatrixEngine.with(path) {
                            store.multiply(transposeA: transposeA, transposeB: .transposed, m: m, n: n, k: k, a: a, lda: lda,
                                           b: .matrix(bPointer.baseAddress!), ldb: k, c: &c, ldc: n)
                        }
                    }
                    return c.map(\.bitPattern)
                }
                XCTAssertGreaterThanOrEqual(m * n * k, BLAS.minimumSplitWork, "large enough to be split over two threads")
                XCTAssertEqual(product(threads: 1), product(threads: 2), "\(path), \(transposeA) \(m) × \(n) × \(k)")
            }
        }
    }

    /// oneDNN 2.6 takes its brgemm kernels (AMX where the CPU has it) only for dense
    /// operands and falls back to `gemm:jit` (no AMX) otherwise: every product — a transposed
    /// A cut into row tiles, B and C cut into column tiles, C one head's columns of a wider
    /// matrix, a whole model step — is handed to oneDNN dense, on a brgemm kernel.
    func testEveryOneDNNProductRunsOnABrgemmKernel() throws {
        guard MatrixEngine.hardwarePath != .emulated else {
            throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512-BF16: oneDNN is not used")
        }
        let store = ParameterStore(ParameterRegistry())
        store.precision = .bf16
        MatrixEngine.with(.onednn) {
            for (transposeA, transposeB, m, n, k, ldc) in [(Transpose.transposed, Transpose.none, 600, 600, 1100, 600),
                                                            (.none, .transposed, 150, 600, 300, 600), (.none, .none, 150, 600, 300, 600),
                                                            (.transposed, .none, 150, 600, 1100, 600), (.none, .none, 150, 64, 150, 512)] {
                let a = randomMatrix(m * k, seed: 7), b = randomMatrix(k * n, seed: 8)
                var c = [Float](repeating: 0, count: m * ldc)
                b.withUnsafeBufferPointer { bPointer in
                    store.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: transposeA == .none ? k : m,
                                   b: .matrix(bPointer.baseAddress!), ldb: transposeB == .none ? n : k, c: &c, ldc: ldc)
                }
            }
        }
        var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
        config.precision = .bf16
        let model = VAVLModel(config)
        model.initialize(seed: 3)
        let batch = mixedBatch(audioDimension: 5, videoDimension: 4, labels: Matrix(rows: 5, columns: 3, values: [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6, 0.5, 0.25, 0.25, 0.1, 0.1, 0.8]), seed: 1)
        _ = try MatrixEngine.with(.onednn) { try AlgorithmOne(model: model).iterate(batch, counts: batch.localCounts, iteration: 0) }
        XCTAssertFalse(BLAS.bf16Implementations.isEmpty)
        for implementation in BLAS.bf16Implementations {
            XCTAssertTrue(implementation.hasPrefix("brg:"), "a product on \(implementation)")
        }
    }
}
