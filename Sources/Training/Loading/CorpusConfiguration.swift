import VAVLCore
import VAVLData

/// Why a configuration cannot be fitted to a corpus.
public struct CorpusConfigurationError: Error, CustomStringConvertible {
    public var description: String
}

extension VAVLConfiguration {
    /// Takes from `corpus` what the data decide: the task, the feature dimensions, the
    /// outputs, the label names and, for dimensional labels, the mapping of DESIGN §3 with the
    /// rating scale's fixed bounds (flipping the columns named in `flippedLabels`).
    public mutating func adopt(_ corpus: Corpus, flippedLabels: Set<String> = []) throws {
        let corpusTask = corpus.task
        if let unknown = flippedLabels.first(where: { !corpus.labelNames.contains($0) }) {
            throw CorpusConfigurationError(description:
                "no label column '\(unknown)' to flip (columns: \(corpus.labelNames.joined(separator: ", ")))")
        }
        task = corpusTask
        audioDimension = corpus.dimension(.audio)
        videoDimension = corpus.dimension(.video)
        outputDimension = corpus.labelCount
        labelNames = corpus.labelNames
        labelTransform = []
        if corpusTask == .dimensional {
            guard let range = corpus.labelRange else {
                throw CorpusConfigurationError(description: "\(corpus.path): a dimensional corpus needs its label_range attribute")
            }
            labelTransform = corpus.labelNames.map {
                LabelTransform(name: $0, flip: flippedLabels.contains($0), low: range.lowerBound, high: range.upperBound)
            }
        }
    }
}
