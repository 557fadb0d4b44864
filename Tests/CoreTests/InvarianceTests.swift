@testable import VAVLCore
import XCTest

/// An utterance's outputs in evaluation mode must not depend on which other utterances share
/// its batch, nor on their lengths (DESIGN §2.3): no padding, no cross-utterance attention.
final class InvarianceTests: XCTestCase {
    func testEncoderOutputOfAnUtteranceIsTheSameAloneOrBatched() {
        var config = ConformerConfiguration(inputs: 6)
        config.channels = 16
        config.heads = 4
        config.blocks = 2
        config.convolutionKernel = 7
        let registry = ParameterRegistry()
        let encoder = ConformerEncoder(registry, "encoder", config)
        let store = ParameterStore(registry)
        store.initialize(seed: 9)
        GradientCheck.perturbParameters(store, seed: 2)  // non-trivial running statistics and affine terms
        let context = RunContext(store: store)
        context.mode = .evaluation

        let lengths = [7, 1, 23, 4]
        let segments = Segments(lengths: lengths)
        let batch = GradientCheck.randomMatrix(rows: segments.totalRows, columns: 6, seed: 4)
        let batched = encoder.forward(batch, segments: segments, context).copied()
        for utterance in 0..<lengths.count {
            let alone = Matrix(rows: lengths[utterance], columns: 6)
            alone.data.update(from: batch.row(segments.start(utterance)), count: alone.count)
            let output = encoder.forward(alone, segments: Segments(lengths: [lengths[utterance]]), context)
            var largest: Float = 0
            for row in 0..<lengths[utterance] {
                for c in 0..<16 {
                    largest = max(largest, abs(output[row, c] - batched[segments.start(utterance) + row, c]))
                }
            }
            XCTAssertLessThan(largest, 1e-5, "utterance \(utterance) (T = \(lengths[utterance])) changed when batched")
        }
    }

    func testModelPredictionOfAnUtteranceIsTheSameAloneOrBatched() {
        var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
        config.task = .categorical
        let model = VAVLModel(config)
        model.initialize(seed: 1)
        let context = RunContext(store: model.store)
        let audioSegments = Segments(lengths: [4, 9, 1])
        let videoSegments = Segments(lengths: [3, 2, 6])
        let audio = GradientCheck.randomMatrix(rows: audioSegments.totalRows, columns: 5, seed: 1)
        let video = GradientCheck.randomMatrix(rows: videoSegments.totalRows, columns: 4, seed: 2)
        let batched = model.predict(audio: (audio, audioSegments), video: (video, videoSegments), context)
        for utterance in 0..<3 {
            let a = Matrix(rows: audioSegments.length(utterance), columns: 5)
            a.data.update(from: audio.row(audioSegments.start(utterance)), count: a.count)
            let v = Matrix(rows: videoSegments.length(utterance), columns: 4)
            v.data.update(from: video.row(videoSegments.start(utterance)), count: v.count)
            let alone = model.predict(audio: (a, Segments(lengths: [a.rows])), video: (v, Segments(lengths: [v.rows])), context)
            for k in 0..<3 { XCTAssertEqual(alone[0, k], batched[utterance, k], accuracy: 1e-5) }
        }
    }
}
