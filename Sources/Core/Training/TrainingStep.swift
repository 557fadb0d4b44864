/// A model with a flat parameter store built from a configuration: what checkpoints save
/// and load, and what a training step updates. The VAVL model and the unimodal baseline
/// both are one.
public protocol TrainableModel: AnyObject {
    var configuration: VAVLConfiguration { get }
    var store: ParameterStore { get }
}

extension VAVLModel: TrainableModel {}
extension UnimodalBaseline: TrainableModel {}

extension TrainableModel {
    /// Adam over this model's parameters with its configured hyperparameters.
    func makeOptimizer() -> Adam { Adam(store: store, configuration: configuration.adam) }

    /// A run context over this model's store whose dropout streams are keyed by `seed`
    /// (the configured seed by default).
    func makeContext(seed: UInt64?) -> RunContext {
        let context = RunContext(store: store)
        context.seed = seed ?? configuration.seed
        return context
    }
}

/// One training iteration on this rank's share of a global batch, whatever is trained: the
/// training loop (`Trainer`) drives Algorithm 1 over the VAVL model and the unimodal
/// baseline's single phase through this one interface.
///
/// Every collective an iteration issues depends on the global phase counts only, never on
/// the local share, so all ranks make the same calls in the same order.
public protocol TrainingStep: AnyObject {
    var trainedModel: TrainableModel { get }
    var optimizer: Adam { get }
    /// Synchronised BatchNorm (statistics summed over ranks) or per-rank statistics.
    var synchronizedBatchNorm: Bool { get set }
    /// What a non-finite loss does (decided on the summed loss, the same on every rank).
    var nonFinitePolicy: NonFinitePolicy { get set }
    /// Updates skipped under ``NonFinitePolicy/skip``.
    var skippedUpdates: Int { get }
    /// A stop request (a signal on any rank) carried by the step's own loss sums.
    var stop: StopAgreement { get }
    /// Runs the step on this rank's share; returns the losses of the phases that ran,
    /// summed over ranks.
    func iterate(_ batch: TrainingBatch, counts: PhaseCounts, iteration: Int) throws -> [Phase: PhaseLoss]
}

/// A request to stop (SIGUSR1 before a Slurm time limit, SIGTERM, Ctrl-C) that travels
/// with the loss shares every phase already sums over the ranks: each rank appends 1 if it
/// was asked to stop, 0 otherwise, and reads the sum back. So every rank learns of a request
/// on any rank in the same iteration, from the same sums — no extra collective, and no way
/// for ranks to disagree about where training stops.
public final class StopAgreement {
    /// Whether this rank has been asked to stop (read once per phase).
    public var isRequestedLocally: () -> Bool = { false }
    /// Whether some rank asked, as of the sums read so far (the same on every rank).
    public private(set) var agreed = false

    public init() {}

    func append(to shares: inout [Double]) { shares.append(isRequestedLocally() ? 1 : 0) }

    func read(from shares: inout [Double]) {
        if shares.removeLast() > 0 { agreed = true }
    }
}

extension AlgorithmOne: TrainingStep {
    public var trainedModel: TrainableModel { model }
}

/// The unimodal baseline's step (paper §IV-E.6): one phase per iteration on the
/// utterances that have the modality — forward, the task's loss (``PredictionLoss``),
/// backward, one gradient allreduce, Adam. Its dropout streams and global counts are those
/// of Algorithm 1's phase of the same modality, so R ranks give one process's update.
public final class UnimodalStep: TrainingStep {
    public let model: UnimodalBaseline
    public let optimizer: Adam
    public let collectives: Collectives
    public let context: RunContext
    public var synchronizedBatchNorm = true
    public var nonFinitePolicy: NonFinitePolicy = .abort
    public private(set) var skippedUpdates = 0
    public var trainedModel: TrainableModel { model }
    public let stop = StopAgreement()
    private let gradient = Matrix()

    public init(model: UnimodalBaseline, collectives: Collectives = LocalCollectives(), seed: UInt64? = nil) {
        self.model = model
        self.collectives = collectives
        optimizer = model.makeOptimizer()
        context = model.makeContext(seed: seed)
    }

    /// The phase of Algorithm 1 this baseline stands for (its dropout key and global count).
    public var phase: Phase { model.modality == .audio ? .acoustic : .visual }

    public func iterate(_ batch: TrainingBatch, counts: PhaseCounts, iteration: Int) throws -> [Phase: PhaseLoss] {
        let globalCount = counts[phase]
        guard globalCount > 0 else { return [:] }
        let input = batch.input(model.modality)
        context.mode = .training
        context.iteration = iteration
        context.phase = phase.dropoutKey
        context.utteranceKeys = input.utterances.map { batch.keys[$0] }
        context.reduceStatistics = synchronizedBatchNorm && collectives.worldSize > 1 ? { [collectives] in collectives.sum($0) } : nil
        let range = model.parameterRange
        model.store.zeroGradients(range)
        let predictions = model.forward(input.features, segments: input.segments, context)
        var shares = [PredictionLoss.compute(model.configuration, predictions: predictions, labels: batch.labels(of: input.utterances),
                                             globalCount: globalCount, collectives: collectives, gradient: gradient)]
        model.backward(gradient, context)
        stop.append(to: &shares)
        collectives.sum(&shares)
        stop.read(from: &shares)
        let loss = PhaseLoss(prediction: shares[0], reconstruction: 0, total: shares[0], count: globalCount)
        if !loss.total.isFinite {
            if nonFinitePolicy == .abort { throw NonFiniteLoss(phase: phase, iteration: iteration, value: loss.total) }
            skippedUpdates += 1
            return [phase: loss]
        }
        collectives.reduceGradients(range, of: model.store)
        optimizer.step(range)
        return [phase: loss]
    }
}
