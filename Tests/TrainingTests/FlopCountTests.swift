import Foundation
@testable import VAVLCore
@testable import VAVLTraining
import XCTest

/// The analytic count of useful FLOPs behind `vavl bench`'s GFLOP/s and "% of sgemm"
/// against the work a step actually does: the multiply-adds of every sgemm call of one
/// Algorithm-1 iteration, tallied by the product profile, plus the one convolution that does
/// not go through sgemm, minus the products of zero-padding taps that the temporal
/// projection's single product does (and the count leaves out as not useful).
final class FlopCountTests: XCTestCase {
    /// Σ over a same-padded kernel's taps of the frames whose source lies inside the utterance.
    private func insideTaps(_ frames: Int, _ kernel: Int) -> Int {
        var total = 0
        for frame in 0..<frames {
            for tap in 0..<kernel where (0..<frames).contains(frame + tap - kernel / 2) { total += 1 }
        }
        return total
    }

    private func check(_ configuration: VAVLConfiguration, batchSize: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let benchmark = StepBenchmark(configuration: configuration, batchSize: batchSize, communicator: .selfOnly)
        let result = try benchmark.run(iterations: 1, warmup: 0, profile: true)
        let c = configuration
        // Training a phase: forward, input and weight gradients (3×); the AV phase's frozen forward (1×).
        let passes = 4
        var depthwise = 0, paddingProducts = 0
        for (lengths, blocks, inputs) in [(benchmark.audioLengths, c.acousticBlocks, c.audioDimension),
                                          (benchmark.videoLengths, c.visualBlocks, c.videoDimension)] {
            for frames in lengths {
                depthwise += passes * (blocks + c.sharedBlocks) * c.dim * insideTaps(frames, c.convolutionKernel)
                // The temporal projection's product covers every tap of every frame, in the
                // forward (trained and frozen) and in the weight gradient: 3 passes.
                paddingProducts += 3 * (frames * c.projectionKernel - insideTaps(frames, c.projectionKernel))
                    * inputs * c.projectionDimension
            }
        }
        let measured = 2 * (result.productMultiplyAdds + Double(depthwise - paddingProducts))
        XCTAssertGreaterThan(result.productMultiplyAdds, 0, "the product profile saw no sgemm call", file: file, line: line)
        XCTAssertEqual(result.flops, measured, accuracy: 0.5, "analytic count against the step's own work", file: file, line: line)
    }

    func testCountMatchesTheWorkOfACategoricalStep() throws {
        try check(.tiny(audio: 12, video: 10, outputs: 4), batchSize: 3)
    }

    func testCountMatchesTheWorkOfADimensionalStepWithLargerKernels() throws {
        var configuration = VAVLConfiguration.tiny(audio: 9, video: 14, outputs: 3)
        configuration.task = .dimensional
        configuration.projectionKernel = 5
        configuration.convolutionKernel = 7
        configuration.acousticBlocks = 2
        configuration.heads = 4
        try check(configuration, batchSize: 4)
    }
}
