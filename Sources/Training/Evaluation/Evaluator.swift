import MPI
import VAVLCore
import VAVLData

/// The heads a split is scored with.
public enum EvaluationHead: String, Codable, Sendable, CaseIterable {
    case audioVisual = "audio_visual"
    case audio
    case video
}

/// Random frame masking for the robustness sweep (DESIGN §7): round(p·T/100) seeded-random
/// frames of one modality per utterance are zeroed after normalisation.
public struct FrameMasking: Sendable, Equatable {
    public var audioPercent: Double = 0
    public var videoPercent: Double = 0
    public var seed: UInt64 = 0

    public init(audioPercent: Double = 0, videoPercent: Double = 0, seed: UInt64 = 0) {
        self.audioPercent = audioPercent
        self.videoPercent = videoPercent
        self.seed = seed
    }

    /// Zeroes the chosen frames of `input` in place; the choice depends on the corpus row only.
    public func apply(_ input: inout ModalityInput, percent: Double, rows: [Int], salt: UInt64) {
        guard percent > 0 else { return }
        let columns = input.features.columns
        for (segment, utterance) in input.utterances.enumerated() {
            let length = input.segments.length(segment)
            let masked = min(length, Int((percent * Double(length) / 100).rounded()))
            let order = BatchPlanner.permutation(length, seed: mix64(seed ^ salt ^ UInt64(rows[utterance])))
            for frame in order.prefix(masked) {
                input.features.row(input.segments.start(segment) + frame).update(repeating: 0, count: columns)
            }
        }
    }
}

/// Predictions of every head on a set of utterances, gathered on every rank.
public struct SplitPredictions {
    /// Corpus rows scored by each head, in split order.
    public var rows: [EvaluationHead: [Int]]
    /// Predictions (rows × K) per head, in the order of `rows`.
    public var values: [EvaluationHead: Matrix]
    /// Labels on the training scale per head, same order.
    public var labels: [EvaluationHead: Matrix]
    /// True for the AV head under no-av-head: values are fused probabilities, not logits.
    public var audioVisualIsProbability: Bool
}

/// Predicts a split with the ranks sharing the work: rank r takes every R-th utterance, the
/// heads' prediction matrices are summed over ranks (each row is filled by exactly one rank),
/// so every rank ends with all predictions. Evaluation mode throughout: no collectives inside.
public final class Evaluator {
    public let model: VAVLModel
    public let loader: BatchLoader
    public let communicator: Communicator
    public var chunkSize = 32

    public init(model: VAVLModel, loader: BatchLoader, communicator: Communicator = .world) {
        self.model = model
        self.loader = loader
        self.communicator = communicator
    }

    public func predict(rows: [Int], masking: FrameMasking = FrameMasking()) throws -> SplitPredictions {
        let corpus = loader.corpus
        let k = model.configuration.outputDimension
        var headRows: [EvaluationHead: [Int]] = [:]
        headRows[.audio] = rows.filter { corpus.has(.audio, utterance: $0) }
        headRows[.video] = rows.filter { corpus.has(.video, utterance: $0) }
        headRows[.audioVisual] = rows.filter { corpus.has(.audio, utterance: $0) && corpus.has(.video, utterance: $0) }
        var position: [EvaluationHead: [Int: Int]] = [:]
        var values: [EvaluationHead: [Float]] = [:]
        for head in EvaluationHead.allCases {
            position[head] = Dictionary(headRows[head]!.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            values[head] = [Float](repeating: 0, count: headRows[head]!.count * k)
        }
        let mine = rows.enumerated().filter { $0.offset % communicator.size == communicator.rank }.map(\.element)
        let context = RunContext(store: model.store)
        var failure: Error?
        do {
            for start in stride(from: 0, to: mine.count, by: chunkSize) {
                let chunk = Array(mine[start..<min(mine.count, start + chunkSize)])
                var batch = try loader.load(chunk)
                masking.apply(&batch.audio, percent: masking.audioPercent, rows: chunk, salt: 0xA0D10)
                masking.apply(&batch.video, percent: masking.videoPercent, rows: chunk, salt: 0x51DE0)
                func store(_ head: EvaluationHead, _ utterances: [Int], _ predictions: Matrix) {
                    for (row, utterance) in utterances.enumerated() {
                        let index = position[head]![chunk[utterance]]!
                        for c in 0..<k { values[head]![index * k + c] = predictions.row(row)[c] }
                    }
                }
                let audio = batch.audio, video = batch.video
                store(.audio, audio.utterances, model.predict(audio: (audio.features, audio.segments), video: nil, context))
                store(.video, video.utterances, model.predict(audio: nil, video: (video.features, video.segments), context))
                let paired = batch.paired
                if !paired.isEmpty {
                    let pa = audio.restricted(to: paired), pv = video.restricted(to: paired)
                    store(.audioVisual, pa.utterances,
                          model.predict(audio: (pa.features, pa.segments), video: (pv.features, pv.segments), context))
                }
            }
        } catch {
            failure = error
        }
        // A rank that failed must not leave the others in the reduction below.
        if let failure { communicator.abort("evaluation failed: \(failure)") }
        for head in EvaluationHead.allCases {
            communicator.sumShares(&values[head]!, of: "\(head.rawValue) predictions")
        }
        var result = SplitPredictions(rows: headRows, values: [:], labels: [:], audioVisualIsProbability: false)
        for head in EvaluationHead.allCases {
            let count = headRows[head]!.count
            result.values[head] = Matrix(rows: count, columns: k, values: values[head]!)
            let labels = Matrix(rows: count, columns: k)
            for (index, row) in headRows[head]!.enumerated() { loader.labels.map(corpus.labels(of: row), into: labels.row(index)) }
            result.labels[head] = labels
        }
        result.audioVisualIsProbability = model.audioVisualHead == nil && model.configuration.task == .categorical
        return result
    }

    /// Scores per head (heads without utterances are absent).
    public func scores(_ predictions: SplitPredictions) -> [EvaluationHead: HeadScores] {
        var scores: [EvaluationHead: HeadScores] = [:]
        for head in EvaluationHead.allCases where predictions.rows[head]!.count > 0 {
            scores[head] = HeadScores.compute(task: model.configuration.task, predictions: predictions.values[head]!,
                                              labels: predictions.labels[head]!, labelNames: model.configuration.labelNames,
                                              predictionsAreProbabilities: head == .audioVisual && predictions.audioVisualIsProbability)
        }
        return scores
    }

    /// Scores of the unimodal baseline `model` on `rows` (those with its modality), in
    /// evaluation mode, the ranks sharing the work as ``predict(rows:masking:)`` does. Every
    /// rank must call it; every rank gets the scores.
    public static func scores(of model: UnimodalBaseline, rows: [Int], loader: BatchLoader, communicator: Communicator,
                              chunkSize: Int = 32) throws -> HeadScores {
        let corpus = loader.corpus, modality = model.modality
        let rows = rows.filter { corpus.has(modality, utterance: $0) }
        guard !rows.isEmpty else { throw CorpusError(file: corpus.path, "no utterance with \(modality.rawValue) to score") }
        let k = model.configuration.outputDimension
        var values = [Float](repeating: 0, count: rows.count * k)
        let mine = rows.indices.filter { $0 % communicator.size == communicator.rank }
        let context = RunContext(store: model.store)
        var failure: Error?
        do {
            for start in stride(from: 0, to: mine.count, by: chunkSize) {
                let positions = Array(mine[start..<min(mine.count, start + chunkSize)])
                let input = try loader.input(modality, positions.map { rows[$0] })
                let predictions = model.predict(input.features, segments: input.segments, context)
                for (segment, utterance) in input.utterances.enumerated() {
                    for c in 0..<k { values[positions[utterance] * k + c] = predictions.row(segment)[c] }
                }
            }
        } catch {
            failure = error
        }
        // A rank that failed must not leave the others in the reduction below.
        if let failure { communicator.abort("evaluating the \(modality.rawValue) baseline failed: \(failure)") }
        communicator.sumShares(&values, of: "\(modality.rawValue) baseline predictions")
        let labels = Matrix(rows: rows.count, columns: k)
        for (index, row) in rows.enumerated() { loader.labels.map(corpus.labels(of: row), into: labels.row(index)) }
        return HeadScores.compute(task: model.configuration.task, predictions: Matrix(rows: rows.count, columns: k, values: values),
                                  labels: labels, labelNames: model.configuration.labelNames)
    }

    /// The development loss for model selection (DESIGN §3): the AV head's loss over paired
    /// utterances, or the mean of the available unimodal heads' losses where there are none.
    public static func selectionLoss(_ scores: [EvaluationHead: HeadScores]) -> Double {
        if let audioVisual = scores[.audioVisual] { return audioVisual.loss }
        let unimodal = [scores[.audio], scores[.video]].compactMap { $0?.loss }
        return unimodal.isEmpty ? .infinity : unimodal.reduce(0, +) / Double(unimodal.count)
    }
}
