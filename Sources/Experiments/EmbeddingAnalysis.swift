import VAVLTraining
import Foundation
import MPI
import VAVLCore
import VAVLData

/// Shared-embedding analysis (paper Fig. 4, DESIGN §7): for every utterance of a split with
/// both modalities, the representations r_a and r_v that the shared layers give (eval mode,
/// r = mean over frames of LayerNorm(shared(x) + x)), and the cosine distance 1 − cos(r_a, r_v).
/// Small distances mean the shared layers map the two modalities of one utterance close
/// together. As a yardstick, the mean distance between r_a and r_v of *different*
/// utterances of the split (all ordered pairs i ≠ j) is given too.
public struct EmbeddingAnalysis: Codable, Sendable {
    public var kind = "embedding"
    public var checkpoint: String
    public var corpus: String
    public var split: String
    /// Paired utterances analysed, and the representation size.
    public var count: Int
    public var dimension: Int
    /// 1 − cos(r_a, r_v) of the same utterance.
    public var paired: Summary
    /// Mean 1 − cos(r_a(i), r_v(j)) over all i ≠ j.
    public var mismatchedMean: Double?

    /// Mean, sample std (ddof 1) and five-number summary (quartiles by linear interpolation).
    public struct Summary: Codable, Sendable, Equatable {
        public var mean: Double
        public var std: Double
        public var minimum: Double
        public var firstQuartile: Double
        public var median: Double
        public var thirdQuartile: Double
        public var maximum: Double

        public init(_ values: [Double]) {
            mean = Statistics.mean(values)
            std = Statistics.sampleStandardDeviation(values)
            minimum = values.min() ?? .nan
            firstQuartile = Statistics.quantile(values, 0.25)
            median = Statistics.quantile(values, 0.5)
            thirdQuartile = Statistics.quantile(values, 0.75)
            maximum = values.max() ?? .nan
        }

        enum CodingKeys: String, CodingKey {
            case mean, std, minimum = "min", firstQuartile = "q1", median, thirdQuartile = "q3", maximum = "max"
        }
    }

    enum CodingKeys: String, CodingKey {
        case kind, checkpoint, corpus, split, count, dimension, paired, mismatchedMean = "mismatched_mean"
    }

    /// r_a and r_v (B, dim) of the paired utterances of `rows`, in eval mode, gathered on
    /// every rank (rank r computes every R-th utterance; the rows are summed over ranks).
    public static func representations(_ trained: TrainedModel, corpus: Corpus, rows: [Int], communicator: Communicator,
                                       chunkSize: Int = 32) throws -> (audio: Matrix, video: Matrix) {
        let model = trained.model, dim = model.configuration.dim
        let loader = trained.loader(for: corpus)
        var audio = [Float](repeating: 0, count: rows.count * dim), video = audio
        let mine = rows.indices.filter { $0 % communicator.size == communicator.rank }
        let context = RunContext(store: model.store)
        context.mode = .evaluation
        var failure: Error?
        do {
            for start in stride(from: 0, to: mine.count, by: chunkSize) {
                let positions = Array(mine[start..<min(mine.count, start + chunkSize)])
                let chunk = positions.map { rows[$0] }
                let batch = try loader.load(chunk)
                let paired = batch.paired
                let a = batch.audio.restricted(to: paired), v = batch.video.restricted(to: paired)
                precondition(a.utterances == v.utterances, "paired utterances in the same order in both modalities")
                for (modality, input) in [(VAVLCore.Modality.audio, a), (.video, v)] {
                    let r = model.represent(modality, input.features, segments: input.segments, context)
                    for (segment, utterance) in input.utterances.enumerated() {
                        let destination = positions[utterance] * dim
                        for c in 0..<dim {
                            if modality == .audio { audio[destination + c] = r.row(segment)[c] } else { video[destination + c] = r.row(segment)[c] }
                        }
                    }
                }
            }
        } catch {
            failure = error
        }
        if let failure { communicator.abort("embedding analysis failed: \(failure)") }
        communicator.sumShares(&audio, of: "audio representations")
        communicator.sumShares(&video, of: "video representations")
        return (Matrix(rows: rows.count, columns: dim, values: audio), Matrix(rows: rows.count, columns: dim, values: video))
    }

    /// 1 − cos(a, b); 1 when either vector is zero.
    public static func cosineDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in 0..<count {
            let x = Double(a[i]), y = Double(b[i])
            dot += x * y
            na += x * x
            nb += y * y
        }
        guard na > 0, nb > 0 else { return 1 }
        return 1 - dot / (na.squareRoot() * nb.squareRoot())
    }

    /// Runs the analysis on the paired utterances of `split`. Every rank must call it.
    public static func run(_ trained: TrainedModel, corpus: Corpus, split: Split, communicator: Communicator,
                           splits: SplitAssignment? = nil) throws -> EmbeddingAnalysis {
        try trained.ensureCompatible(with: corpus)
        let rows = (splits ?? SplitAssignment(corpus: corpus)).rows(in: split)
            .filter { corpus.has(.audio, utterance: $0) && corpus.has(.video, utterance: $0) }
        guard !rows.isEmpty else {
            throw ExperimentError("\(corpus.path): the \(split.rawValue) split has no utterance with both audio and video")
        }
        let (ra, rv) = try representations(trained, corpus: corpus, rows: rows, communicator: communicator)
        let dim = ra.columns
        let distances = (0..<rows.count).map { cosineDistance(ra.row($0), rv.row($0), count: dim) }
        // Mean over i ≠ j of cos(â_i, v̂_j) = ((Σ â_i)·(Σ v̂_j) − Σ_i â_i·v̂_i) / (n(n − 1)).
        var mismatched: Double?
        let n = rows.count
        if n > 1 {
            var sumA = [Double](repeating: 0, count: dim), sumV = sumA
            var diagonal = 0.0
            for row in 0..<n {
                let a = (0..<dim).map { Double(ra.row(row)[$0]) }, v = (0..<dim).map { Double(rv.row(row)[$0]) }
                let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nv = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let ua = na > 0 ? a.map { $0 / na } : a, uv = nv > 0 ? v.map { $0 / nv } : v
                for c in 0..<dim {
                    sumA[c] += ua[c]
                    sumV[c] += uv[c]
                    diagonal += ua[c] * uv[c]
                }
            }
            let total = zip(sumA, sumV).reduce(0) { $0 + $1.0 * $1.1 }
            mismatched = 1 - (total - diagonal) / Double(n * (n - 1))
        }
        return EmbeddingAnalysis(checkpoint: trained.path, corpus: corpus.path, split: split.rawValue, count: n,
                                 dimension: dim, paired: Summary(distances), mismatchedMean: mismatched)
    }

    // MARK: - Output

    func tableRows() -> (header: [String], rows: [[String]]) {
        var rows = [["r_a vs r_v, same utterance", formatMetric(paired.mean), formatMetric(paired.std),
                     formatMetric(paired.minimum), formatMetric(paired.firstQuartile), formatMetric(paired.median),
                     formatMetric(paired.thirdQuartile), formatMetric(paired.maximum)]]
        if let mismatchedMean {
            rows.append(["r_a vs r_v, different utterances", formatMetric(mismatchedMean), "", "", "", "", "", ""])
        }
        return (["cosine distance 1 − cos", "mean", "std", "min", "q1", "median", "q3", "max"], rows)
    }

    public var table: String {
        let (header, rows) = tableRows()
        return "shared-embedding distance, \(count) paired utterances of the \(split) split of \(corpus) — \(checkpoint) (r ∈ R^\(dimension))\n"
            + TextTable(header: header, rows: rows).render()
    }

    public var markdown: String {
        let (header, rows) = tableRows()
        return "Cosine distance between the shared representations r_a and r_v of the \(count) paired utterances of the "
            + "\(split) split of `\(corpus)` (checkpoint `\(checkpoint)`, r ∈ R^\(dimension)); std is the sample std (ddof 1).\n\n"
            + TextTable(header: header, rows: rows).markdown() + "\n"
    }
}
