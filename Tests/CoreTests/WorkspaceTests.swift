import BLAS
import Dispatch
import XCTest
@testable import VAVLCore

/// Scratch belongs to a model, not to the process: two models' passes may interleave.
final class WorkspaceTests: XCTestCase {
    private func block(seed: UInt64) -> (ConformerBlock, RunContext) {
        let registry = ParameterRegistry()
        var config = ConformerConfiguration(inputs: 16)
        config.channels = 16
        config.heads = 2
        config.blocks = 1
        config.convolutionKernel = 7
        let block = ConformerBlock(registry, "", config)
        let store = ParameterStore(registry)
        store.initialize(seed: seed)
        let context = RunContext(store: store)
        context.useSequentialUtteranceKeys(count: 2)
        return (block, context)
    }

    func testTwoModelsInterleavingTheirPassesGetWhatEachGetsAlone() {
        let segments = Segments(lengths: [300, 240])
        let xA = GradientCheck.randomMatrix(rows: 540, columns: 16, seed: 1), xB = GradientCheck.randomMatrix(rows: 540, columns: 16, seed: 2)
        let dy = GradientCheck.randomMatrix(rows: 540, columns: 16, seed: 3)
        func alone(seed: UInt64, _ x: Matrix) -> ([Float], [Float]) {
            let (layer, context) = block(seed: seed)
            _ = layer.forward(x, segments: segments, context)
            let dx = layer.backward(dy, context).array
            return (dx, Array(UnsafeBufferPointer(start: context.store.gradients, count: context.store.parameterCount)))
        }
        let expectedA = alone(seed: 4, xA), expectedB = alone(seed: 5, xB)
        // Both models' passes at the same time, each on one thread (one thread per model, so
        // that neither splits its products): with scratch shared by the process they
        // overwrote each other's gradients.
        let (a, contextA) = block(seed: 4), (b, contextB) = block(seed: 5)
        let saved = BLAS.threadCount
        BLAS.threadCount = 1
        defer { BLAS.threadCount = saved }
        var dxA: [Float] = [], dxB: [Float] = []
        for _ in 0..<5 {
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                if index == 0 {
                    _ = a.forward(xA, segments: segments, contextA)
                    contextA.store.zeroGradients()
                    dxA = a.backward(dy, contextA).array
                } else {
                    _ = b.forward(xB, segments: segments, contextB)
                    contextB.store.zeroGradients()
                    dxB = b.backward(dy, contextB).array
                }
            }
        }
        // (Checked once with scratch shared by the process: these fail.)
        XCTAssertTrue(dxA == expectedA.0, "model A's input gradient differs from its run alone")
        XCTAssertTrue(dxB == expectedB.0, "model B's input gradient differs from its run alone")
        XCTAssertTrue(Array(UnsafeBufferPointer(start: contextA.store.gradients, count: contextA.store.parameterCount)) == expectedA.1,
                      "model A's parameter gradients differ")
        XCTAssertTrue(Array(UnsafeBufferPointer(start: contextB.store.gradients, count: contextB.store.parameterCount)) == expectedB.1,
                      "model B's parameter gradients differ")
    }
}
