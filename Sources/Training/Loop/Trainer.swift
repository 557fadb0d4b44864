import CMachine
import Foundation
import HDF5
import MPI
import VAVLCore
import VAVLData
import VAVLDistributed

/// What a ``Trainer`` trains.
public enum TrainedSystem: Equatable, Sendable {
    /// The VAVL model with Algorithm 1.
    case vavl
    /// The unimodal baseline of one modality (paper §IV-E.6), on the utterances that have it.
    case unimodal(Modality)
}

/// The training loop — one for every system (DESIGN §3–§4): every rank holds a replica,
/// reads only its own utterances of each global batch, and runs the system's
/// ``TrainingStep`` (Algorithm 1, or the unimodal baseline's single phase) with its gradient
/// allreduces; a stall watchdog, development evaluation and model selection after each
/// epoch, atomic checkpoints and exact resume are the same for both. Rank 0 alone prints
/// and writes.
public final class Trainer {
    public let options: TrainingOptions
    public let configuration: VAVLConfiguration
    public let system: TrainedSystem
    public let communicator: Communicator
    public let corpus: Corpus
    /// The system's step, its model and optimizer.
    public let step: TrainingStep
    public let collectives: MPICollectives
    public let planner: BatchPlanner
    public private(set) var normalization: Normalization
    public private(set) var state = TrainingState()
    /// Exit status of a run stopped by a signal at an iteration boundary, with
    /// `checkpoint-last.h5` written there: "stopped, resume me" (the Slurm script requeues on it).
    public static let stoppedToResumeStatus: Int32 = 85
    /// Whether `run()` ended on a stop request (`stoppedToResumeStatus`).
    public private(set) var stoppedToResume = false
    /// The split of every corpus row (the corpus's, or a partition file's).
    public let splits: SplitAssignment
    public let loader: BatchLoader
    private let log: RankZeroLog

    /// Opens the corpus, builds the model (rank 0's initial weights broadcast to all, then
    /// compared), computes or loads normalisation statistics, and resumes if asked.
    public init(configuration: VAVLConfiguration, options: TrainingOptions, communicator: Communicator = .world,
                system: TrainedSystem = .vavl) throws {
        self.options = options
        self.configuration = configuration
        self.system = system
        self.communicator = communicator
        log = RankZeroLog(directory: options.outputDirectory, enabled: communicator.rank == 0, quiet: options.quiet)
        log.onWriteFailure = { [communicator] message in communicator.abort(message) }
        let corpus = try Corpus.open(options.corpusPath)
        self.corpus = corpus
        try Trainer.check(configuration, against: corpus)
        collectives = MPICollectives(communicator: communicator, bucketSize: options.bucketSize)
        switch system {
        case .vavl:
            let model = VAVLModel(configuration)
            model.initialize(seed: configuration.seed)
            step = AlgorithmOne(model: model, collectives: collectives, seed: configuration.seed)
        case .unimodal(let modality):
            guard corpus.totalFrames(modality) > 0 else {
                throw CorpusError(file: corpus.path, "the corpus has no \(modality.rawValue) frames for the \(modality.rawValue) baseline")
            }
            let model = UnimodalBaseline(configuration, modality: modality)
            model.initialize(seed: configuration.seed)
            step = UnimodalStep(model: model, collectives: collectives, seed: configuration.seed)
        }
        step.synchronizedBatchNorm = options.synchronizedBatchNorm
        step.nonFinitePolicy = options.nonFinitePolicy
        step.stop.isRequestedLocally = { vavl_stop_signal() != 0 }
        let assignment = try options.partitionFile.map { try SplitAssignment(partitionFile: $0, corpus: corpus) }
            ?? SplitAssignment(corpus: corpus)
        self.splits = assignment
        // The baseline trains on the utterances that have its modality, planned by that
        // modality's frames alone.
        let train = assignment.rows(in: .train).compactMap { row -> PlannedUtterance? in
            let audio = corpus.frameCount(.audio, utterance: row), video = corpus.frameCount(.video, utterance: row)
            switch system {
            case .vavl: return PlannedUtterance(row: row, audioFrames: audio, videoFrames: video)
            case .unimodal(.audio): return audio > 0 ? PlannedUtterance(row: row, audioFrames: audio, videoFrames: 0) : nil
            case .unimodal(.video): return video > 0 ? PlannedUtterance(row: row, audioFrames: 0, videoFrames: video) : nil
            }
        }
        guard !train.isEmpty else {
            throw CorpusError(file: corpus.path, system == .vavl ? "the train split is empty" : "the train split has no utterance with the baseline's modality")
        }
        planner = BatchPlanner(utterances: train, batchSize: configuration.batchSize, worldSize: communicator.size,
                               seed: configuration.seed, policy: options.policy, epochEnd: options.epochEnd,
                               lengthBucketWindow: options.lengthBucketWindow)
        normalization = Normalization(audio: nil, video: nil)
        loader = BatchLoader(corpus: corpus, normalization: normalization,
                             labels: LabelMapping(task: configuration.task, transforms: configuration.labelTransform,
                                                  outputCount: configuration.outputDimension))
        let fingerprint = assignment.fingerprint(ids: corpus.ids)
        if let resume = options.resume {
            let path = Trainer.checkpointPath(resume)
            (normalization, state) = try Checkpoint.load(path, into: step.trainedModel, optimizer: step.optimizer)
            // The corpus may have moved, but it must be the same utterances in the same splits.
            if state.corpusFingerprint.isEmpty {
                log.say("note: \(path) records no corpus fingerprint (an older checkpoint): the corpus is not checked")
            } else if state.corpusFingerprint != fingerprint {
                throw CorpusError(file: corpus.path, "not the corpus \(path) was trained on (utterances per split and a hash of their ids): "
                                  + "the checkpoint's \(state.corpusFingerprint); this one's \(fingerprint)")
            }
            log.say("resuming from \(path): epoch \(state.epoch), iteration \(state.iteration), batch \(state.samplerPosition) of the epoch"
                    + (state.worldSize != communicator.size ? " (saved with \(state.worldSize) ranks, now \(communicator.size); the plan is global)" : ""))
        } else {
            normalization = try Trainer.statistics(corpus, communicator,
                                                   trainRows: options.partitionFile == nil ? nil : assignment.rows(in: .train))
        }
        state.seed = configuration.seed
        state.worldSize = communicator.size
        state.corpusFingerprint = fingerprint
        loader.normalization = normalization
        ReplicaSynchronization.broadcastFromRankZero(step.trainedModel.store, communicator)
    }

    /// The parameter store of the trained model.
    public var store: ParameterStore { step.trainedModel.store }

    /// The VAVL model (a ``TrainedSystem/vavl`` run).
    public var model: VAVLModel {
        guard let algorithm = step as? AlgorithmOne else { preconditionFailure("a unimodal baseline run has no VAVL model: use `store`") }
        return algorithm.model
    }

    /// Algorithm 1 (a ``TrainedSystem/vavl`` run).
    public var algorithm: AlgorithmOne {
        guard let algorithm = step as? AlgorithmOne else { preconditionFailure("a unimodal baseline run has no Algorithm 1") }
        return algorithm
    }

    /// Which checkpoint of a run folder a command means.
    public enum CheckpointChoice: String, CaseIterable, Sendable {
        /// The selected epoch's (`checkpoint-best.h5`), or the last where the run selected
        /// none (no development split).
        case best
        /// The last epoch's (`checkpoint-last.h5`): what a resume continues from.
        case last
    }

    /// A checkpoint file as it is; a run folder resolves to its `which` checkpoint.
    public static func checkpointPath(_ path: String, which: CheckpointChoice = .last) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return path }
        let best = (path as NSString).appendingPathComponent("checkpoint-best.h5")
        if which == .best, FileManager.default.fileExists(atPath: best) { return best }
        return (path as NSString).appendingPathComponent("checkpoint-last.h5")
    }

    public static func check(_ config: VAVLConfiguration, against corpus: Corpus) throws {
        func fail(_ problem: String) -> CorpusError { CorpusError(file: corpus.path, problem) }
        guard config.task == corpus.task else {
            throw fail("the corpus is \(corpus.task.rawValue), the model is configured for \(config.task.rawValue)")
        }
        for (modality, expected) in [(VAVLData.Modality.audio, config.audioDimension), (.video, config.videoDimension)] {
            let found = corpus.dimension(modality)
            if found != expected && corpus.totalFrames(modality) > 0 {
                throw fail("\(modality.rawValue) features have \(found) dimensions, the model expects \(expected)")
            }
        }
        guard config.outputDimension == corpus.labelCount else {
            throw fail("the corpus has \(corpus.labelCount) label columns, the model predicts \(config.outputDimension)")
        }
    }

    /// Train-split statistics, computed (or read from the corpus) on rank 0 and broadcast.
    /// With a partition file, the statistics come from that partition's train rows (the
    /// corpus's stored ones describe its own train split, which may include test utterances).
    public static func statistics(_ corpus: Corpus, _ communicator: Communicator, trainRows: [Int]? = nil) throws -> Normalization {
        var result: [FeatureStatistics?] = []
        for modality in [VAVLData.Modality.audio, .video] {
            let dimension = corpus.dimension(modality)
            var values = [Double](repeating: 0, count: 2 * dimension + 1)
            if communicator.rank == 0 {
                let statistics = try trainRows.map { try computeFeatureStatistics(corpus, modality, rows: $0) }
                    ?? corpus.featureStatistics(modality)
                if let statistics {
                    values = statistics.mean + statistics.std + [Double(statistics.frameCount)]
                }
            }
            communicator.shareFromRankZero(&values, "\(modality.rawValue) statistics")
            let frames = Int(values[2 * dimension])
            result.append(frames > 0 ? FeatureStatistics(mean: Array(values[0..<dimension]),
                                                         std: Array(values[dimension..<(2 * dimension)]), frameCount: frames) : nil)
        }
        return Normalization(audio: result[0], video: result[1])
    }

    // MARK: - The loop

    /// Trains until the configured epochs or `maxIterations`, writing checkpoints and
    /// metrics; returns the final state.
    @discardableResult
    public func run() -> TrainingState {
        let rank = communicator.rank
        let perEpoch = planner.batchesPerEpoch
        let maximum = options.maxIterations ?? Int.max
        log.start(configuration: configuration, options: options, planner: planner, corpus: corpus, hosts: communicator.hostNames(),
                  resumedAt: options.resume == nil ? nil : state)
        writeResolvedConfiguration()
        if state.iteration >= maximum || perEpoch == 0 {
            finish()
            return state
        }
        let prefetcher = Prefetcher<TrainingBatch>()
        let loader = self.loader
        func positions() -> (epoch: Int, step: Int) { (state.epoch, state.samplerPosition) }
        func schedule(_ epoch: Int, _ step: Int) {
            guard epoch < configuration.epochs, state.iteration < maximum else { return }
            let rows = planner.batch(epoch: epoch, step: step).rankRows[rank]
            prefetcher.start { try loader.load(rows) }
        }
        schedule(state.epoch, state.samplerPosition)
        var epochTimer = DispatchTimeCounter.now()
        var epochLosses = LossAccumulator()
        // Stall detection (Sources/Distributed/Watchdog.swift): times every step, never calls MPI.
        let watchdog = Watchdog.start(rank: rank, size: communicator.size,
                                      settings: .init(factor: options.stallFactor, minimumSeconds: options.stallMinimumSeconds))
        defer { watchdog?.stop() }
        while state.epoch < configuration.epochs && state.iteration < maximum {
            let batchIndex = state.samplerPosition
            watchdog?.beginStep("step \(batchIndex + 1)/\(perEpoch) of epoch \(state.epoch) (iteration \(state.iteration))", afterPause: batchIndex == 0)
            let globalBatch = planner.batch(epoch: state.epoch, step: batchIndex)
            let batch = communicator.abortOnError("reading batch \(batchIndex) of epoch \(state.epoch)") { try prefetcher.take() }
            // Start reading the next batch before computing this one.
            let next = batchIndex + 1 < perEpoch ? (state.epoch, batchIndex + 1) : (state.epoch + 1, 0)
            if state.iteration + 1 < maximum { schedule(next.0, next.1) }
            if !options.synchronizedBatchNorm && communicator.size > 1 {
                // DDP's broadcast_buffers: everyone starts the iteration with rank 0's running statistics.
                CurrentOperation.set("iteration \(state.iteration): MPI_Bcast of rank 0's BatchNorm buffers")  // Watchdog
                ReplicaSynchronization.broadcastBuffersFromRankZero(store, communicator)
            }
            CurrentOperation.set("iteration \(state.iteration): computing Algorithm 1")  // Watchdog; collectives relabel
            StopInjection.raiseIfDue(iteration: state.iteration, rank: rank)  // tests only (VAVL_TEST_STOP_AT)
            let started = DispatchTimeCounter.now()
            let losses = communicator.abortOnError("iteration \(state.iteration)") {
                try step.iterate(batch, counts: globalBatch.counts, iteration: state.iteration)
            }
            let seconds = DispatchTimeCounter.seconds(since: started)
            epochLosses.add(losses, utterances: globalBatch.rows.count)
            state.iteration += 1
            state.samplerPosition += 1
            log.iteration(state: state, perEpoch: perEpoch, losses: losses, seconds: seconds, batch: globalBatch,
                          every: options.logEvery, live: options.liveProgress)
            watchdog?.endStep()
            if step.stop.agreed {
                // Every rank saw the request in this iteration's sums: stop here, together.
                if state.samplerPosition == perEpoch { endEpoch(losses: epochLosses, seconds: DispatchTimeCounter.seconds(since: epochTimer)) }
                log.say("stopped by a signal after iteration \(state.iteration) (epoch \(state.epoch), batch \(state.samplerPosition)); "
                        + "checkpoint-last.h5 holds this point: continue with --resume")
                stoppedToResume = true
                break
            }
            if options.checkpointEvery > 0 && state.iteration % options.checkpointEvery == 0 && state.samplerPosition < perEpoch {
                writeCheckpoint("checkpoint-last.h5")
            }
            if state.samplerPosition == perEpoch {
                let epochSeconds = DispatchTimeCounter.seconds(since: epochTimer)
                watchdog?.beginEpochEnd("the end of epoch \(state.epoch) (development evaluation, checkpoints)")
                endEpoch(losses: epochLosses, seconds: epochSeconds)
                watchdog?.end()
                epochLosses = LossAccumulator()
                epochTimer = DispatchTimeCounter.now()
            }
        }
        if prefetcher.isPending { _ = try? prefetcher.take() }
        watchdog?.beginEpochEnd("the end of training (last checkpoint, final barrier)")
        finish()
        return state
    }

    private func endEpoch(losses: LossAccumulator, seconds: Double) {
        let finishedEpoch = state.epoch
        state.epoch += 1
        state.samplerPosition = 0
        var scores: [EvaluationHead: HeadScores] = [:]
        let development = rows(of: .dev)
        if options.evaluateEachEpoch && !development.isEmpty {
            scores = communicator.abortOnError("evaluating the development split") { try self.scores(rows: development) }
            let loss = Evaluator.selectionLoss(scores)
            if loss < state.bestLoss {
                state.bestLoss = loss
                state.bestEpoch = finishedEpoch
                writeCheckpoint("checkpoint-best.h5")
            }
        }
        log.epoch(finishedEpoch, losses: losses, scores: scores, seconds: seconds, state: state, task: configuration.task)
        writeCheckpoint(String(format: "checkpoint-epoch-%03d.h5", finishedEpoch))
        writeCheckpoint("checkpoint-last.h5")
        pruneEpochCheckpoints()
    }

    private func finish() {
        writeCheckpoint("checkpoint-last.h5")
        log.finish(state: state)
        // No rank leaves before rank 0 has written: a job that ends is a job whose files exist.
        communicator.waitForAllRanks("final barrier")
    }

    /// The configuration this run trains with, as a config file (`--config DIR/config.json`
    /// starts a run like it); rank 0 writes it, atomically.
    private func writeResolvedConfiguration() {
        guard communicator.rank == 0 else { return }
        let path = (options.outputDirectory as NSString).appendingPathComponent("config.json")
        communicator.abortOnError("writing \(path)") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try SafeFiles.replace(path, with: encoder.encode(configuration))
        }
    }

    /// Rank 0 writes; a failure brings the whole job down.
    private func writeCheckpoint(_ name: String) {
        guard communicator.rank == 0 else { return }
        let path = (options.outputDirectory as NSString).appendingPathComponent(name)
        communicator.abortOnError("writing checkpoint \(path)") {
            try Checkpoint.write(path, model: step.trainedModel, optimizer: step.optimizer, normalization: normalization, state: state)
        }
    }

    // MARK: - Evaluation

    /// The rows of `split` that the system scores (the baseline: those with its modality).
    public func rows(of split: Split) -> [Int] {
        let rows = splits.rows(in: split)
        guard case .unimodal(let modality) = system else { return rows }
        return rows.filter { corpus.has(modality, utterance: $0) }
    }

    /// The scores of every head the system has on `rows`, in evaluation mode, the ranks
    /// sharing the work. Every rank must call it; every rank gets the scores.
    public func scores(rows: [Int]) throws -> [EvaluationHead: HeadScores] {
        switch step {
        case let algorithm as AlgorithmOne:
            let evaluator = Evaluator(model: algorithm.model, loader: loader, communicator: communicator)
            return evaluator.scores(try evaluator.predict(rows: rows))
        case let unimodal as UnimodalStep:
            let head: EvaluationHead = unimodal.model.modality == .audio ? .audio : .video
            return [head: try Evaluator.scores(of: unimodal.model, rows: rows, loader: loader, communicator: communicator)]
        default:
            preconditionFailure("no evaluation for \(type(of: step))")
        }
    }

    /// Loads the selected epoch's weights (`checkpoint-best.h5`) back into the model, when
    /// there is one: after `run()`, the model then holds the selected weights.
    public func restoreSelectedWeights() throws {
        guard state.bestEpoch >= 0 else { return }
        let path = (options.outputDirectory as NSString).appendingPathComponent("checkpoint-best.h5")
        // Every rank reads the file rank 0 wrote before the final barrier of `run()`.
        _ = try Checkpoint.load(path, into: step.trainedModel)
    }

    private func pruneEpochCheckpoints() {
        guard communicator.rank == 0 else { return }
        let folder = options.outputDirectory
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasPrefix("checkpoint-epoch-") && $0.hasSuffix(".h5") }.sorted()
        for name in names.dropLast(max(options.keepCheckpoints, 0)) {
            try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(name))
        }
    }
}

/// Sums phase losses over an epoch, weighted by each phase's utterance count.
struct LossAccumulator {
    var sums: [Phase: Double] = [:]
    var counts: [Phase: Int] = [:]
    var utterances = 0

    mutating func add(_ losses: [Phase: PhaseLoss], utterances: Int) {
        for (phase, loss) in losses {
            sums[phase, default: 0] += loss.total * Double(loss.count)
            counts[phase, default: 0] += loss.count
        }
        self.utterances += utterances
    }

    func mean(_ phase: Phase) -> Double? {
        guard let count = counts[phase], count > 0 else { return nil }
        return sums[phase]! / Double(count)
    }
}

/// Test hook: `VAVL_TEST_STOP_AT=ITERATION:RANK` makes that rank request a stop (as SIGUSR1
/// would) just before that iteration, so a test can stop a job at a known point on one rank.
enum StopInjection {
    static let target: (iteration: Int, rank: Int)? = {
        guard let text = ProcessInfo.processInfo.environment["VAVL_TEST_STOP_AT"] else { return nil }
        let parts = text.split(separator: ":").compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }()

    static func raiseIfDue(iteration: Int, rank: Int) {
        if let target, target.iteration == iteration, target.rank == rank { vavl_request_stop(SIGUSR1) }
    }
}
