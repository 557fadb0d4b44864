@testable import VAVLCore
import XCTest

/// Parity with PyTorch over three Algorithm-1 iterations of a small model on a mixed batch
/// (paired, audio-only and video-only utterances), for each task: parameters, Adam moments
/// and step counts, BatchNorm buffers, phase losses and predictions after every iteration.
final class ModelParityTests: XCTestCase {
    /// `mhsa.key.bias` has an exactly-zero true gradient (a per-query constant that the
    /// softmax cancels); both sides compute rounding noise that Adam scales to ±lr steps, so
    /// it is excluded from the tight comparison (its values stay within a few lr of each other).
    func isKeyBias(_ name: String) -> Bool { name.hasSuffix("mhsa.key.bias") }

    func batch(_ fixture: Fixture) throws -> TrainingBatch {
        let labels = try fixture.matrix("batch/labels")
        let audioOffsets = try fixture.integers("batch/audio_offsets").map { Int($0) }
        let videoOffsets = try fixture.integers("batch/video_offsets").map { Int($0) }
        func input(_ offsets: [Int], _ features: Matrix) -> ModalityInput {
            let present = (0..<(offsets.count - 1)).filter { offsets[$0 + 1] > offsets[$0] }
            return ModalityInput(features: features, segments: Segments(lengths: present.map { offsets[$0 + 1] - offsets[$0] }),
                                 utterances: present)
        }
        return TrainingBatch(labels: labels, keys: (0..<labels.rows).map { UInt64($0) },
                             audio: input(audioOffsets, try fixture.matrix("batch/audio")),
                             video: input(videoOffsets, try fixture.matrix("batch/video")))
    }

    func run(task: String) throws {
        let fixture = try Fixture("model_\(task).h5")
        let config = try fixture.configuration("/", as: VAVLConfiguration.self)
        XCTAssertEqual(config.task.rawValue, task)
        let model = VAVLModel(config)
        let store = model.store
        let initialNames = try fixture.names("init/params")
        XCTAssertEqual(Set(initialNames), Set(store.parameters.map(\.name)), "parameter names differ from the reference")
        for name in initialNames { store.setValues(store.parameter(named: name)!, try fixture.floats("init/params/\(name)")) }
        for name in try fixture.names("init/buffers") {
            if let counter = store.counter(named: name) {
                store.counterValues[counter.index] = try fixture.integers("init/buffers/\(name)")[0]
            } else {
                store.setValues(store.buffer(named: name)!, try fixture.floats("init/buffers/\(name)"))
            }
        }
        let trainer = AlgorithmOne(model: model)
        let batch = try batch(fixture)
        let paired = batch.paired
        for iteration in 1...3 {
            let losses = try trainer.iterate(batch, counts: batch.localCounts, iteration: iteration)
            let group = try fixture.group("iteration_\(iteration)")
            var comparison = TensorComparison(tolerance: 5e-5)
            for (phase, key) in [(Phase.acoustic, "loss_acoustic"), (.visual, "loss_visual"), (.audioVisual, "loss_audio_visual")] {
                let expected = try group.attribute(key, as: Double.self)
                XCTAssertEqual(losses[phase]!.total, expected, accuracy: 1e-5 * max(1, abs(expected)), "\(task) it \(iteration) \(key)")
            }
            for (index, parameter) in store.parameters.enumerated() {
                let path = "iteration_\(iteration)"
                // Adam divides by √v: an element whose gradient is at rounding level moves by a
                // noise-driven fraction of an lr step on either side, so parameters get an
                // allowance of 5 % of lr per iteration; mhsa.key.bias (true gradient exactly 0,
                // all noise) gets whole steps and its moments are not compared.
                let lr = config.learningRate * Float(iteration)
                let keyBias = isKeyBias(parameter.name)
                comparison.compare(parameter.name, store.valuesArray(parameter),
                                   try fixture.floats("\(path)/params/\(parameter.name)"),
                                   absolute: keyBias ? 2 * lr : 0.05 * lr)
                // Moments are stored for the last iteration (fixture size); steps for every one.
                let hasMoments = fixture.file.contains("\(path)/adam_m/\(parameter.name)")
                if iteration == 3 { XCTAssertTrue(hasMoments, "the fixture lacks Adam moments of \(parameter.name)") }
                if !keyBias && hasMoments {
                    comparison.compare("adam_m \(parameter.name)",
                                       Array(UnsafeBufferPointer(start: trainer.optimizer.firstMoment + parameter.offset, count: parameter.count)),
                                       try fixture.floats("\(path)/adam_m/\(parameter.name)"), tolerance: 1e-3)
                    comparison.compare("adam_v \(parameter.name)",
                                       Array(UnsafeBufferPointer(start: trainer.optimizer.secondMoment + parameter.offset, count: parameter.count)),
                                       try fixture.floats("\(path)/adam_v/\(parameter.name)"), tolerance: 1e-3)
                }
                XCTAssertEqual(trainer.optimizer.steps[index], try fixture.integers("\(path)/adam_step/\(parameter.name)")[0], parameter.name)
            }
            for buffer in store.buffers {
                comparison.compare(buffer.name, Array(UnsafeBufferPointer(start: store.pointer(buffer), count: buffer.count)),
                                   try fixture.floats("iteration_\(iteration)/buffers/\(buffer.name)"))
            }
            // Predictions in evaluation mode after the iteration.
            let audioPaired = batch.audio.restricted(to: paired), videoPaired = batch.video.restricted(to: paired)
            let context = RunContext(store: store)
            let audioVisual = model.predict(audio: (audioPaired.features, audioPaired.segments),
                                            video: (videoPaired.features, videoPaired.segments), context)
            comparison.compare("predictions.audio_visual", audioVisual.array,
                               try fixture.floats("iteration_\(iteration)/predictions/audio_visual"))
            let audio = model.predict(audio: (batch.audio.features, batch.audio.segments), video: nil, context)
            comparison.compare("predictions.audio", audio.array, try fixture.floats("iteration_\(iteration)/predictions/audio"))
            let video = model.predict(audio: nil, video: (batch.video.features, batch.video.segments), context)
            comparison.compare("predictions.video", video.array, try fixture.floats("iteration_\(iteration)/predictions/video"))
            if iteration == 3 { comparison.report("\(task), iteration \(iteration)") }
        }
    }

    func testCategorical() throws { try run(task: "categorical") }
    func testDimensional() throws { try run(task: "dimensional") }
    func testSentiment() throws { try run(task: "sentiment") }
}
