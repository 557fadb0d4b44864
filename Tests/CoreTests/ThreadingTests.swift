import BLAS
@testable import VAVLCore
import XCTest

/// Runs `body` with the rank's compute threads set to `threads`, restoring them after.
func withThreadCount<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
    let saved = BLAS.threadCount
    BLAS.threadCount = threads
    defer { BLAS.threadCount = saved }
    return try body()
}

/// A Conformer encoder's training step on two threads — split matrix products, rows of the
/// fused elementwise passes and dropout masks split over threads, per-thread LayerNorm
/// parameter-gradient partials, Adam in chunks — gives what one thread gives.
final class ThreadingTests: XCTestCase {
    func step(threads: Int) -> (output: [Float], input: [Float], gradients: [Float], parameters: [Float]) {
        withThreadCount(threads) { step() }
    }

    func step() -> (output: [Float], input: [Float], gradients: [Float], parameters: [Float]) {
        var config = ConformerConfiguration(inputs: 40)
        config.channels = 64
        config.heads = 4
        config.blocks = 2
        config.convolutionKernel = 7
        let registry = ParameterRegistry()
        let encoder = ConformerEncoder(registry, "encoder", config)
        let store = ParameterStore(registry)
        store.initialize(seed: 12)
        GradientCheck.perturbParameters(store, seed: 13)
        let context = RunContext(store: store)
        let segments = Segments(lengths: ThreadingTests.lengths)
        context.useSequentialUtteranceKeys(count: segments.count)
        let x = GradientCheck.randomMatrix(rows: segments.totalRows, columns: 40, seed: 14)
        let output = encoder.forward(x, segments: segments, context).array
        store.zeroGradients()
        let dx = encoder.backward(GradientCheck.randomMatrix(rows: segments.totalRows, columns: 64, seed: 15), context).array
        let gradients = Array(UnsafeBufferPointer(start: store.gradients, count: store.parameterCount))
        let adam = Adam(store: store, configuration: AdamConfiguration())
        adam.step(0..<store.parameterCount)
        return (output, dx, gradients, Array(UnsafeBufferPointer(start: store.values, count: store.parameterCount)))
    }

    /// 2,111 frames: every pass over (N, 64) takes the parallel path too.
    static let lengths = [400, 1, 380, 350, 300, 420, 260]

    func difference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(b.map(abs).max() ?? 0, 1e-6)
        return (zip(a, b).map { abs($0 - $1) }.max() ?? 0) / scale
    }

    func testTwoThreadsGiveWhatOneThreadGives() {
        let rows = Self.lengths.reduce(0, +)
        XCTAssertGreaterThanOrEqual(rows * 64, Parallel.minimumElements, "(N, C) passes must take the parallel path")
        XCTAssertGreaterThanOrEqual(rows * 256 * 64, BLAS.minimumSplitWork, "linear1 must be split")
        let one = step(threads: 1), two = step(threads: 2)
        XCTAssertEqual(one.output.count, two.output.count)
        XCTAssertLessThan(difference(two.output, one.output), 1e-5)
        XCTAssertLessThan(difference(two.input, one.input), 1e-5)
        XCTAssertLessThan(difference(two.gradients, one.gradients), 1e-5)
        XCTAssertLessThan(difference(two.parameters, one.parameters), 1e-5)
    }
}

/// `Parallel` uses exactly the threads the rank was given: one thread runs every pass on the
/// calling thread; more threads cut row passes into pieces that cover the rows once.
final class ParallelTests: XCTestCase {
    func testOneThreadRunsEveryPassOnTheCallingThread() {
        let caller = pthread_self()
        withThreadCount(1) {
            XCTAssertEqual(Parallel.pieceCount(1 << 20), 1)
            var calls = 0
            Parallel.chunks(1 << 20) { range in
                calls += 1
                XCTAssertEqual(range, 0..<(1 << 20))
                XCTAssertNotEqual(pthread_equal(pthread_self(), caller), 0, "ran on another thread")
            }
            XCTAssertEqual(calls, 1)
        }
    }

    func testPiecesCoverTheRowsOnceWithSeveralThreads() {
        withThreadCount(2) {
            let count = 100_003
            let pieces = Parallel.pieceCount(count, elementsPerItem: 8)
            XCTAssertEqual(pieces, 2 * Parallel.piecesPerThread)
            let seen = UnsafeMutablePointer<Int32>.allocate(capacity: count)
            defer { seen.deallocate() }
            seen.initialize(repeating: 0, count: count)
            Parallel.pieces(count, elementsPerItem: 8) { _, range in for row in range { seen[row] += 1 } }
            XCTAssertTrue(UnsafeBufferPointer(start: seen, count: count).allSatisfy { $0 == 1 })
            XCTAssertEqual(Parallel.pieceCount(10, elementsPerItem: 8), 1, "small passes stay on one thread")
        }
    }
}
