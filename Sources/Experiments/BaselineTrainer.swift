import VAVLTraining
import Foundation
import MPI
import VAVLCore
import VAVLData
import VAVLDistributed

/// Data-parallel training of a ``UnimodalBaseline`` (paper §IV-E.6) with the machinery of
/// the VAVL trainer: the global ``BatchPlanner`` over the train utterances that have the
/// modality (same seed, composition policy and epoch end), a ``BatchLoader`` that reads
/// only this rank's utterances, ``MPICollectives`` for the loss statistics and the one
/// gradient allreduce per iteration, synchronised BatchNorm by default, Adam with the
/// model's hyperparameters. One phase per iteration; losses are normalised by the global
/// utterance count, so R ranks give one process's update on the same global batch.
/// Model selection as for VAVL: the development loss after each epoch, lowest wins; the
/// best weights are kept in memory and restored at the end.
public final class BaselineTrainer {
    public let configuration: VAVLConfiguration
    public let options: TrainingOptions
    public let modality: VAVLData.Modality
    public let communicator: Communicator
    public let corpus: Corpus
    public let model: UnimodalBaseline
    public let optimizer: Adam
    public let collectives: MPICollectives
    public let planner: BatchPlanner
    public let splits: SplitAssignment
    public let loader: BatchLoader
    public private(set) var iteration = 0
    public private(set) var bestEpoch = -1
    public private(set) var bestLoss = Double.infinity
    private let context: RunContext
    private let gradient = Matrix()
    private var best: (values: [Float], buffers: [Float], counters: [Int64])?

    public init(configuration: VAVLConfiguration, modality: VAVLData.Modality, options: TrainingOptions,
                communicator: Communicator = .world) throws {
        self.configuration = configuration
        self.options = options
        self.modality = modality
        self.communicator = communicator
        let corpus = try Corpus.open(options.corpusPath)
        self.corpus = corpus
        try Trainer.check(configuration, against: corpus)
        guard corpus.totalFrames(modality) > 0 else {
            throw CorpusError(file: corpus.path, "the corpus has no \(modality.rawValue) frames for the \(modality.rawValue) baseline")
        }
        model = UnimodalBaseline(configuration, modality: modality == .audio ? .audio : .video)
        model.initialize(seed: configuration.seed)
        optimizer = Adam(store: model.store, configuration: configuration.adam)
        collectives = MPICollectives(communicator: communicator, bucketSize: options.bucketSize)
        context = RunContext(store: model.store)
        context.seed = configuration.seed
        splits = try options.partitionFile.map { try SplitAssignment(partitionFile: $0, corpus: corpus) } ?? SplitAssignment(corpus: corpus)
        let train = splits.rows(in: .train).filter { corpus.has(modality, utterance: $0) }.map { row in
            let frames = corpus.frameCount(modality, utterance: row)
            return PlannedUtterance(row: row, audioFrames: modality == .audio ? frames : 0, videoFrames: modality == .video ? frames : 0)
        }
        guard !train.isEmpty else {
            throw CorpusError(file: corpus.path, "the train split has no utterance with \(modality.rawValue)")
        }
        planner = BatchPlanner(utterances: train, batchSize: configuration.batchSize, worldSize: communicator.size,
                               seed: configuration.seed, policy: options.policy, epochEnd: options.epochEnd,
                               lengthBucketWindow: options.lengthBucketWindow)
        let trainRows = options.partitionFile == nil ? nil : splits.rows(in: .train)
        loader = BatchLoader(corpus: corpus, normalization: try Trainer.statistics(corpus, communicator, trainRows: trainRows),
                             labels: LabelMapping(task: configuration.task, transforms: configuration.labelTransform,
                                                  outputCount: configuration.outputDimension))
        ReplicaSynchronization.broadcastFromRankZero(model.store, communicator)
    }

    private var isRankZero: Bool { communicator.rank == 0 }

    private func say(_ text: String) {
        guard isRankZero && !options.quiet else { return }
        print(text)
        fflush(stdout)
    }

    // MARK: - Training

    /// Trains for the configured epochs (or `maxIterations`), selecting the epoch with the
    /// lowest development loss; the model holds the selected weights afterwards.
    public func run() {
        let perEpoch = planner.batchesPerEpoch
        let maximum = options.maxIterations ?? Int.max
        say("\(modality.rawValue) baseline: \(UnimodalBaseline.blockCount(configuration, modality: modality == .audio ? .audio : .video)) Conformer blocks, "
            + "\(model.store.parameterCount) parameters; \(planner.utterances.count) training utterances, "
            + "\(perEpoch) global batches of \(planner.batchSize) per epoch, \(communicator.size) rank(s)")
        let prefetcher = Prefetcher<(ModalityInput, Matrix, [Int])>()
        let loader = self.loader, modality = self.modality, rank = communicator.rank
        func schedule(_ epoch: Int, _ step: Int) {
            guard epoch < configuration.epochs, step < perEpoch else { return }
            let rows = planner.batch(epoch: epoch, step: step).rankRows[rank]
            prefetcher.start {
                let input = try loader.input(modality, rows)
                let labels = Matrix(rows: input.utterances.count, columns: loader.labels.outputCount)
                for (index, utterance) in input.utterances.enumerated() {
                    loader.labels.map(loader.corpus.labels(of: rows[utterance]), into: labels.row(index))
                }
                return (input, labels, rows)
            }
        }
        var epoch = 0
        schedule(0, 0)
        epochs: while epoch < configuration.epochs {
            var lossSum = 0.0, lossCount = 0
            let started = DispatchTimeCounter.now()
            for step in 0..<perEpoch {
                if iteration >= maximum { break epochs }
                let globalBatch = planner.batch(epoch: epoch, step: step)
                let (input, labels, rows) = communicator.abortOnError("reading batch \(step) of epoch \(epoch)") { try prefetcher.take() }
                if iteration + 1 < maximum { step + 1 < perEpoch ? schedule(epoch, step + 1) : schedule(epoch + 1, 0) }
                let count = modality == .audio ? globalBatch.counts.acoustic : globalBatch.counts.visual
                let loss = communicator.abortOnError("iteration \(iteration)") {
                    try iterate(input, labels: labels, keys: input.utterances.map { UInt64(rows[$0]) }, globalCount: count)
                }
                lossSum += loss * Double(count)
                lossCount += count
                iteration += 1
            }
            let seconds = DispatchTimeCounter.seconds(since: started)
            var line = String(format: "%@ baseline epoch %d done in %.1fs; train loss %.4f", modality.rawValue, epoch, seconds,
                              lossSum / Double(max(lossCount, 1)))
            let development = splits.rows(in: .dev).filter { corpus.has(modality, utterance: $0) }
            if options.evaluateEachEpoch && !development.isEmpty {
                let scores = communicator.abortOnError("evaluating the development split") { try evaluate(rows: development) }
                line += "; dev " + scores.metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
                    .joined(separator: " ")
                if scores.loss < bestLoss {
                    bestLoss = scores.loss
                    bestEpoch = epoch
                    snapshot()
                    line += " (new best)"
                }
            }
            say(line)
            epoch += 1
        }
        if prefetcher.isPending { _ = try? prefetcher.take() }
        if best != nil { restore() }
        say("\(modality.rawValue) baseline finished: \(iteration) iterations"
            + (bestEpoch >= 0 ? ", best development epoch \(bestEpoch)" : ", last weights kept (no development evaluation)"))
    }

    /// One data-parallel step on this rank's share; returns the global batch loss.
    func iterate(_ input: ModalityInput, labels: Matrix, keys: [UInt64], globalCount: Int) throws -> Double {
        if !options.synchronizedBatchNorm && communicator.size > 1 {
            // DDP's broadcast_buffers, as in the VAVL trainer.
            ReplicaSynchronization.broadcastBuffersFromRankZero(model.store, communicator)
        }
        context.mode = .training
        context.iteration = iteration
        context.phase = modality == .audio ? Phase.acoustic.dropoutKey : Phase.visual.dropoutKey
        context.utteranceKeys = keys
        context.reduceStatistics = options.synchronizedBatchNorm && communicator.size > 1 ? { [collectives] in collectives.sum($0) } : nil
        let range = model.parameterRange
        model.store.zeroGradients(range)
        let predictions = model.forward(input.features, segments: input.segments, context)
        let share = predictionLoss(predictions, labels, globalCount: globalCount)
        model.backward(gradient, context)
        var shares = [share]
        collectives.sum(&shares)
        let loss = shares[0]
        if !loss.isFinite {
            if options.nonFinitePolicy == .abort {
                throw ExperimentError("the \(modality.rawValue) baseline's loss is \(loss) at iteration \(iteration) (diverged; lower --lr, or --nan-policy skip)")
            }
            return loss
        }
        collectives.reduceGradients(range, of: model.store)
        optimizer.step(range)
        return loss
    }

    /// This rank's share of the loss and dL/dpredictions in `gradient` (``PredictionLoss``).
    private func predictionLoss(_ predictions: Matrix, _ labels: Matrix, globalCount: Int) -> Double {
        PredictionLoss.compute(configuration, predictions: predictions, labels: labels, globalCount: globalCount,
                               collectives: collectives, gradient: gradient)
    }

    private func snapshot() {
        let store = model.store
        best = (Array(UnsafeBufferPointer(start: store.values, count: store.parameterCount)),
                Array(UnsafeBufferPointer(start: store.bufferValues, count: store.bufferCount)),
                Array(UnsafeBufferPointer(start: store.counterValues, count: store.counters.count)))
    }

    private func restore() {
        guard let best else { return }
        let store = model.store
        best.values.withUnsafeBufferPointer { store.values.update(from: $0.baseAddress!, count: $0.count) }
        store.parametersChanged()
        if !best.buffers.isEmpty { best.buffers.withUnsafeBufferPointer { store.bufferValues.update(from: $0.baseAddress!, count: $0.count) } }
        if !best.counters.isEmpty { best.counters.withUnsafeBufferPointer { store.counterValues.update(from: $0.baseAddress!, count: $0.count) } }
    }

    // MARK: - Evaluation

    /// Scores `rows` (those with the modality) in eval mode, the ranks sharing the work as
    /// the ``Evaluator`` does. Every rank must call it; every rank gets the scores.
    public func evaluate(rows: [Int], chunkSize: Int = 32) throws -> HeadScores {
        let rows = rows.filter { corpus.has(modality, utterance: $0) }
        guard !rows.isEmpty else { throw ExperimentError("\(corpus.path): no utterance with \(modality.rawValue) to score") }
        let k = configuration.outputDimension
        var values = [Float](repeating: 0, count: rows.count * k)
        let mine = rows.indices.filter { $0 % communicator.size == communicator.rank }
        let evaluation = RunContext(store: model.store)
        var failure: Error?
        do {
            for start in stride(from: 0, to: mine.count, by: chunkSize) {
                let positions = Array(mine[start..<min(mine.count, start + chunkSize)])
                let input = try loader.input(modality, positions.map { rows[$0] })
                let predictions = model.predict(input.features, segments: input.segments, evaluation)
                for (segment, utterance) in input.utterances.enumerated() {
                    for c in 0..<k { values[positions[utterance] * k + c] = predictions.row(segment)[c] }
                }
            }
        } catch {
            failure = error
        }
        if let failure { communicator.abort("evaluating the \(modality.rawValue) baseline failed: \(failure)") }
        communicator.sumShares(&values, of: "\(modality.rawValue) baseline predictions")
        let labels = Matrix(rows: rows.count, columns: k)
        for (index, row) in rows.enumerated() { loader.labels.map(corpus.labels(of: row), into: labels.row(index)) }
        return HeadScores.compute(task: configuration.task, predictions: Matrix(rows: rows.count, columns: k, values: values),
                                  labels: labels, labelNames: configuration.labelNames)
    }

    /// Scores a whole split (of the run's split assignment).
    public func evaluate(split: Split) throws -> HeadScores? {
        let rows = splits.rows(in: split).filter { corpus.has(modality, utterance: $0) }
        return rows.isEmpty ? nil : try evaluate(rows: rows)
    }
}
