/// The losses of one phase, summed over ranks.
public struct PhaseLoss: Equatable, Sendable {
    /// The prediction loss (CE, Σ(1 − CCC) or L1).
    public var prediction: Double
    /// The reconstruction MSE (unweighted; 0 when the phase has none).
    public var reconstruction: Double
    /// prediction + α · reconstruction, the value that was minimised.
    public var total: Double
    /// Global number of utterances in the phase.
    public var count: Int
}

/// One iteration of Algorithm 1 (DESIGN §3): acoustic phase, visual phase, and audio-visual
/// phase with everything but head_av frozen and in evaluation mode, in the configured order.
///
/// Every collective is issued as a function of the global phase counts alone: a phase with
/// global count 0 is skipped on every rank, and a phase with a positive count runs on every
/// rank, including one whose local share is empty (it contributes zeros). So all ranks make
/// the same calls in the same order, by construction.
public final class AlgorithmOne {
    public let model: VAVLModel
    public let optimizer: Adam
    public let collectives: Collectives
    public let context: RunContext
    /// Synchronised BatchNorm (DESIGN §4.3 default): statistics summed over ranks.
    public var synchronizedBatchNorm = true
    /// What a non-finite phase loss does. The loss is summed over ranks before the decision,
    /// so every rank decides the same way without an extra collective.
    public var nonFinitePolicy: NonFinitePolicy = .abort
    /// Phase updates skipped under ``NonFinitePolicy/skip``.
    public private(set) var skippedUpdates = 0
    /// A stop request riding on the phases' loss sums (``StopAgreement``).
    public let stop = StopAgreement()
    private let predictionGradient = Matrix()
    private let reconstructionGradient = Matrix()
    private let representationGradient = Matrix()

    public init(model: VAVLModel, collectives: Collectives = LocalCollectives(), seed: UInt64? = nil) {
        self.model = model
        self.collectives = collectives
        optimizer = model.makeOptimizer()
        context = model.makeContext(seed: seed)
    }

    /// Runs the phases on this rank's share of the batch.
    /// - Parameters:
    ///   - counts: the global phase counts (from the global plan).
    ///   - iteration: the global iteration number (a dropout key).
    @discardableResult
    public func iterate(_ batch: TrainingBatch, counts: PhaseCounts, iteration: Int) throws -> [Phase: PhaseLoss] {
        context.iteration = iteration
        context.reduceStatistics = synchronizedBatchNorm && collectives.worldSize > 1 ? { [collectives] in collectives.sum($0) } : nil
        var losses: [Phase: PhaseLoss] = [:]
        for phase in model.configuration.phaseOrder where counts[phase] > 0 {
            if phase == .audioVisual && model.audioVisualHead == nil { continue }
            let range = model.groups.range(phase)
            model.store.zeroGradients(range)
            context.phase = phase.dropoutKey
            let started = Profiler.enabled ? (wall: Profiler.now(), processor: Profiler.processorTime()) : (wall: 0, processor: 0)
            defer {
                if Profiler.enabled {
                    Profiler.add(phase.profilerSection, Profiler.now() - started.wall,
                                 processorSeconds: Profiler.processorTime() - started.processor)
                }
            }
            switch phase {
            case .acoustic: losses[phase] = unimodalPhase(.audio, batch, globalCount: counts.acoustic)
            case .visual: losses[phase] = unimodalPhase(.video, batch, globalCount: counts.visual)
            case .audioVisual: losses[phase] = audioVisualPhase(batch, globalCount: counts.audioVisual)
            }
            if let loss = losses[phase], !loss.total.isFinite {
                if nonFinitePolicy == .abort { throw NonFiniteLoss(phase: phase, iteration: iteration, value: loss.total) }
                skippedUpdates += 1
                continue
            }
            Profiler.measure(.allreduce) { collectives.reduceGradients(range, of: model.store) }
            Profiler.measure(.optimizer) { optimizer.step(range) }
        }
        return losses
    }

    /// The prediction loss and dL/dprediction for this rank's rows (``PredictionLoss``).
    private func predictionLoss(_ predictions: Matrix, _ labels: Matrix, globalCount: Int) -> Double {
        PredictionLoss.compute(model.configuration, predictions: predictions, labels: labels, globalCount: globalCount,
                               collectives: collectives, gradient: predictionGradient)
    }

    private func unimodalPhase(_ modality: Modality, _ batch: TrainingBatch, globalCount: Int) -> PhaseLoss {
        context.mode = .training
        let input = batch.input(modality)
        context.utteranceKeys = input.utterances.map { batch.keys[$0] }
        let labels = batch.labels(of: input.utterances)
        let r = model.represent(modality, input.features, segments: input.segments, context)
        let head = model.head(modality)
        let predictions = head.forward(r, context)
        let prediction = predictionLoss(predictions, labels, globalCount: globalCount)
        representationGradient.copy(from: head.backward(predictionGradient, context))
        var reconstruction = 0.0
        let alpha = model.configuration.reconstructionWeight
        if let reconstructionHead = model.reconstruction(modality) {
            let targets = input.frameMeans()
            let reconstructed = reconstructionHead.forward(r, context)
            reconstruction = Losses.meanSquaredError(predictions: reconstructed, targets: targets, globalCount: globalCount,
                                                     gradient: reconstructionGradient)
            for i in 0..<reconstructionGradient.count { reconstructionGradient.data[i] *= Float(alpha) }
            let dr = reconstructionHead.backward(reconstructionGradient, context)
            Elementwise.accumulate(representationGradient.data, dr.data, count: dr.count)
        }
        collectives.gradientsReady(model.headRange(modality), of: model.store)
        context.progress = { [collectives] in collectives.progress() }
        defer { context.progress = nil }
        model.representBackward(modality, representationGradient, context) { [collectives, model] range in
            collectives.gradientsReady(range, of: model.store)
        }
        var shares = [prediction, reconstruction]
        stop.append(to: &shares)
        collectives.sum(&shares)
        stop.read(from: &shares)
        return PhaseLoss(prediction: shares[0], reconstruction: shares[1], total: shares[0] + alpha * shares[1],
                         count: globalCount)
    }

    private func audioVisualPhase(_ batch: TrainingBatch, globalCount: Int) -> PhaseLoss {
        guard let head = model.audioVisualHead else { return PhaseLoss(prediction: 0, reconstruction: 0, total: 0, count: 0) }
        let paired = batch.paired
        let audio = batch.audio.restricted(to: paired), video = batch.video.restricted(to: paired)
        precondition(audio.utterances == video.utterances, "paired utterances in the same order in both modalities")
        // Frozen branches, shared layers and unimodal heads: evaluation mode, no backward.
        context.mode = .evaluation
        context.utteranceKeys = audio.utterances.map { batch.keys[$0] }
        let ra = model.represent(.audio, audio.features, segments: audio.segments, context).copied()
        let rv = model.represent(.video, video.features, segments: video.segments, context)
        let joint = concatenate(ra, rv)
        context.mode = .training
        let predictions = head.forward(joint, context)
        let loss = predictionLoss(predictions, batch.labels(of: audio.utterances), globalCount: globalCount)
        head.backward(predictionGradient, context, needsInputGradient: false)
        var shares = [loss]
        stop.append(to: &shares)
        collectives.sum(&shares)
        stop.read(from: &shares)
        return PhaseLoss(prediction: shares[0], reconstruction: 0, total: shares[0], count: globalCount)
    }
}

/// What to do when a phase's loss is NaN or infinite.
public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
    /// Stop the job with a message (default).
    case abort
    /// Skip that phase's update on every rank and go on.
    case skip
}

/// A phase produced a non-finite loss under ``NonFinitePolicy/abort``.
public struct NonFiniteLoss: Error, CustomStringConvertible {
    public var phase: Phase
    public var iteration: Int
    public var value: Double
    public var description: String {
        "the \(phase.rawValue) phase's loss is \(value) at iteration \(iteration) (diverged; lower --lr, or --nan-policy skip)"
    }
}

extension Phase {
    var profilerSection: Profiler.Section {
        switch self {
        case .acoustic: return .acousticPhase
        case .visual: return .visualPhase
        case .audioVisual: return .audioVisualPhase
        }
    }
}
