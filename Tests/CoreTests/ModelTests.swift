@testable import VAVLCore
import XCTest

final class ModelTests: XCTestCase {
    func testPaperConfigurationHasTheParameterCountOfTheReleasedModuleTree() throws {
        let model = VAVLModel(.paper())
        XCTAssertEqual(model.store.parameterCount, 54_371_218)
        // Phase groups: contiguous, θ_s in both unimodal groups, head_av alone.
        XCTAssertEqual(model.groups.acoustic.upperBound, model.groups.shared.upperBound)
        XCTAssertEqual(model.groups.visual.lowerBound, model.groups.shared.lowerBound)
        XCTAssertEqual(model.groups.audioVisual.upperBound, model.store.parameterCount)
        XCTAssertEqual(model.store.range(ofPrefixes: ["head_av"]), model.groups.audioVisual)
        XCTAssertEqual(model.store.range(ofPrefixes: ["shared"]), model.groups.shared)
        XCTAssertEqual(model.store.range(ofPrefixes: ["acoustic", "head_a", "recon_a", "shared"]), model.groups.acoustic)
        XCTAssertEqual(model.store.range(ofPrefixes: ["shared", "visual", "head_v", "recon_v"]), model.groups.visual)
    }

    func testCanonicalNamesOfOneBlock() throws {
        let model = VAVLModel(.tiny(audio: 5, video: 4, outputs: 2))
        let names = Set(model.store.parameters.map(\.name))
        for name in ["acoustic.proj.weight", "acoustic.encoder.input_projection.weight",
                     "acoustic.encoder.blocks.0.ff1.norm.weight", "acoustic.encoder.blocks.0.ff1.linear1.bias",
                     "acoustic.encoder.blocks.0.mhsa.pos.weight", "acoustic.encoder.blocks.0.mhsa.u_bias",
                     "acoustic.encoder.blocks.0.conv.pointwise1.weight", "acoustic.encoder.blocks.0.conv.depthwise.weight",
                     "acoustic.encoder.blocks.0.conv.batchnorm.weight", "acoustic.encoder.blocks.0.ff2.linear2.weight",
                     "acoustic.encoder.blocks.0.norm.bias", "shared.encoder.blocks.0.mhsa.query.weight",
                     "shared.norm.weight", "visual.proj.weight", "head_a.fc1.weight", "head_v.out.bias",
                     "recon_a.out.weight", "recon_v.fc2.bias", "head_av.fc1.weight"] {
            XCTAssertTrue(names.contains(name), name)
        }
        XCTAssertFalse(names.contains("acoustic.encoder.blocks.0.mhsa.pos.bias"))
        XCTAssertNotNil(model.store.buffer(named: "shared.encoder.blocks.0.conv.batchnorm.running_var"))
        XCTAssertNotNil(model.store.counter(named: "visual.encoder.blocks.0.conv.batchnorm.num_batches_tracked"))
        XCTAssertEqual(model.store.parameter(named: "acoustic.proj.weight")?.shape, [8, 5, 3])
        XCTAssertEqual(model.store.parameter(named: "acoustic.encoder.blocks.0.conv.pointwise1.weight")?.shape, [32, 16, 1])
    }

    func testAblationsRemoveTheirParameters() throws {
        var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 2)
        config.alpha = 0
        config.audioVisualHead = false
        let model = VAVLModel(config)
        XCTAssertFalse(model.store.parameters.contains { $0.name.hasPrefix("recon_") || $0.name.hasPrefix("head_av") })
        XCTAssertTrue(model.groups.audioVisual.isEmpty)
    }
}

/// A small mixed batch: paired, audio-only and video-only utterances, one of length 1.
func mixedBatch(audioDimension: Int, videoDimension: Int, labels: Matrix, seed: UInt64) -> TrainingBatch {
    // Utterance:        0      1      2     3      4
    // audio frames:     6      3      0     1      5
    // video frames:     4      0      3     2      0
    let audioUtterances = [0, 1, 3, 4], audioLengths = [6, 3, 1, 5]
    let videoUtterances = [0, 2, 3], videoLengths = [4, 3, 2]
    let audioSegments = Segments(lengths: audioLengths), videoSegments = Segments(lengths: videoLengths)
    return TrainingBatch(
        labels: labels, keys: (0..<labels.rows).map { UInt64($0 + 100) },
        audio: ModalityInput(features: GradientCheck.randomMatrix(rows: audioSegments.totalRows, columns: audioDimension, seed: seed),
                             segments: audioSegments, utterances: audioUtterances),
        video: ModalityInput(features: GradientCheck.randomMatrix(rows: videoSegments.totalRows, columns: videoDimension, seed: seed + 1),
                             segments: videoSegments, utterances: videoUtterances))
}

final class AlgorithmOneTests: XCTestCase {
    func categoricalLabels() -> Matrix {
        Matrix(rows: 5, columns: 3, values: [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6, 0.5, 0.25, 0.25, 0.1, 0.1, 0.8])
    }

    /// A small AV prediction runs the shared layers once over both modalities' frames: the
    /// maths of one pass per modality, as evaluation mode treats every utterance alone
    /// (BatchNorm on running statistics, set away from their initial values here) — with and
    /// without the shared residual; and `predict` of such an input gives head_av's output.
    func testJointSharedPassGivesWhatOnePassPerModalityGives() {
        for precision in Precision.allCases {
            for residual in [true, false] {
                var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
                config.precision = precision
                config.residual = residual
                let model = VAVLModel(config)
                model.initialize(seed: 3)
                GradientCheck.perturbParameters(model.store, seed: 4)
                var generator = SplitMix64(seed: 5)
                for i in 0..<model.store.bufferCount { model.store.bufferValues[i] = 0.5 + generator.uniform(0, 1) }
                let audioSegments = Segments(lengths: [7, 12]), videoSegments = Segments(lengths: [5, 9])
                let audio = GradientCheck.randomMatrix(rows: audioSegments.totalRows, columns: 5, seed: 6)
                let video = GradientCheck.randomMatrix(rows: videoSegments.totalRows, columns: 4, seed: 7)
                XCTAssertLessThanOrEqual(audio.rows + video.rows, VAVLModel.jointPassFrameLimit)
                let context = RunContext(store: model.store)
                context.mode = .evaluation
                let (jointAudio, jointVideo) = model.representBoth(audio: (audio, audioSegments), video: (video, videoSegments), context)
                let ra = Matrix(copying: model.represent(.audio, audio, segments: audioSegments, context))
                let rv = Matrix(copying: model.represent(.video, video, segments: videoSegments, context))
                let expected = model.audioVisualHead!.forward(concatenate(ra, rv), context).array
                let predicted = model.predict(audio: (audio, audioSegments), video: (video, videoSegments), context).array
                // bf16: a last-bit difference of a product of another row count can flip a later rounding.
                let tolerance: Float = precision == .fp32 ? 1e-5 : 1e-2
                let label = "\(precision), residual \(residual)"
                XCTAssertEqual(jointAudio.rows, 2)
                XCTAssertEqual(jointVideo.rows, 2)
                for (joint, separate) in [(jointAudio.array, ra.array), (jointVideo.array, rv.array), (predicted, expected)] {
                    XCTAssertEqual(joint.count, separate.count, label)
                    for (p, q) in zip(joint, separate) { XCTAssertEqual(p, q, accuracy: tolerance * max(1, abs(q)), label) }
                }
            }
        }
    }

    func testAudioVisualPhaseChangesHeadAVOnlyAndLeavesRunningStatisticsUntouched() throws {
        var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
        config.phaseOrder = [.audioVisual]
        config.learningRate = 1e-2
        let model = VAVLModel(config)
        model.initialize(seed: 3)
        let before = Array(UnsafeBufferPointer(start: model.store.values, count: model.store.parameterCount))
        let buffersBefore = Array(UnsafeBufferPointer(start: model.store.bufferValues, count: model.store.bufferCount))
        let trainer = AlgorithmOne(model: model)
        let batch = mixedBatch(audioDimension: 5, videoDimension: 4, labels: categoricalLabels(), seed: 1)
        try trainer.iterate(batch, counts: batch.localCounts, iteration: 0)
        let after = Array(UnsafeBufferPointer(start: model.store.values, count: model.store.parameterCount))
        for parameter in model.store.parameters {
            let changed = parameter.range.contains { before[$0] != after[$0] }
            XCTAssertEqual(changed, parameter.name.hasPrefix("head_av."), parameter.name)
        }
        XCTAssertEqual(buffersBefore, Array(UnsafeBufferPointer(start: model.store.bufferValues, count: model.store.bufferCount)))
        XCTAssertEqual(model.store.counterValues[0], 0)
    }

    func testAudioOnlyUtterancesNeverTouchVisualParameters() throws {
        var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
        config.learningRate = 1e-2
        let model = VAVLModel(config)
        model.initialize(seed: 3)
        let before = Array(UnsafeBufferPointer(start: model.store.values, count: model.store.parameterCount))
        let trainer = AlgorithmOne(model: model)
        let audioSegments = Segments(lengths: [4, 2])
        let batch = TrainingBatch(labels: Matrix(rows: 2, columns: 3, values: [1, 0, 0, 0, 1, 0]), keys: [1, 2],
                                  audio: ModalityInput(features: GradientCheck.randomMatrix(rows: 6, columns: 5, seed: 1),
                                                       segments: audioSegments, utterances: [0, 1]),
                                  video: .empty(dimension: 4))
        let losses = try trainer.iterate(batch, counts: batch.localCounts, iteration: 0)
        XCTAssertEqual(Set(losses.keys), [.acoustic])
        let after = Array(UnsafeBufferPointer(start: model.store.values, count: model.store.parameterCount))
        for parameter in model.store.parameters {
            let changed = parameter.range.contains { before[$0] != after[$0] }
            let acousticGroup = model.groups.acoustic.contains(parameter.offset)
            XCTAssertEqual(changed, acousticGroup, parameter.name)
        }
        // θ_s took one step, the acoustic branch one step, nothing visual.
        let sharedIndex = model.store.parameters.firstIndex { $0.name.hasPrefix("shared.") }!
        let visualIndex = model.store.parameters.firstIndex { $0.name.hasPrefix("visual.") }!
        XCTAssertEqual(trainer.optimizer.steps[sharedIndex], 1)
        XCTAssertEqual(trainer.optimizer.steps[visualIndex], 0)
    }

    func testSharedLayersTakeTwoAdamStepsPerIteration() throws {
        let model = VAVLModel(.tiny(audio: 5, video: 4, outputs: 3))
        model.initialize(seed: 3)
        let trainer = AlgorithmOne(model: model)
        let batch = mixedBatch(audioDimension: 5, videoDimension: 4, labels: categoricalLabels(), seed: 1)
        try trainer.iterate(batch, counts: batch.localCounts, iteration: 0)
        for (index, parameter) in model.store.parameters.enumerated() {
            let expected: Int64 = parameter.name.hasPrefix("shared.") ? 2 : 1
            XCTAssertEqual(trainer.optimizer.steps[index], expected, parameter.name)
        }
    }

    /// A tiny model overfits a handful of synthetic utterances: the loss falls ≥ 10× in all
    /// three tasks.
    func testTinyModelOverfitsInEveryTask() throws {
        for task in PredictionTask.allCases {
            var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: task == .categorical ? 3 : (task == .dimensional ? 2 : 1))
            config.task = task
            config.learningRate = 3e-3
            config.weightDecay = 0
            for keyPath in [\VAVLConfiguration.inputDropout, \.feedForwardDropout, \.attentionDropout,
                            \.attentionOutputDropout, \.convolutionDropout, \.headDropout] { config[keyPath: keyPath] = 0 }
            let model = VAVLModel(config)
            model.initialize(seed: 5)
            let trainer = AlgorithmOne(model: model)
            let labels: Matrix
            switch task {
            case .categorical: labels = categoricalLabels()
            case .dimensional: labels = Matrix(rows: 5, columns: 2, values: [0.1, 0.9, 0.4, 0.2, 0.8, 0.5, 0.3, 0.7, 0.6, 0.1])
            case .sentiment: labels = Matrix(rows: 5, columns: 1, values: [-2, 1.5, 0.5, -0.5, 2.5])
            }
            let batch = mixedBatch(audioDimension: 5, videoDimension: 4, labels: labels, seed: 7)
            var first: [Phase: Double] = [:], last: [Phase: Double] = [:]
            for iteration in 0..<300 {
                let losses = try trainer.iterate(batch, counts: batch.localCounts, iteration: iteration)
                for (phase, loss) in losses {
                    if iteration == 0 { first[phase] = loss.prediction }
                    last[phase] = loss.prediction
                }
            }
            for phase in Phase.allCases {
                XCTAssertLessThan(last[phase]!, first[phase]! / 10, "\(task) \(phase): \(first[phase]!) → \(last[phase]!)")
            }
        }
    }
}
