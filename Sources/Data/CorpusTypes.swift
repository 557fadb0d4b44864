// The corpus side of the trainer: the HDF5 corpus format (DESIGN §5), import of users'
// features, realistic synthetic corpora and train-split feature statistics (DESIGN §3).
//
// Files of this module:
//   CorpusTypes.swift        split, the corpus error, the format constants
//   Corpus.swift             the validating, thread-safe reader
//   CorpusWriter.swift       the streaming, atomic writer
//   FeatureStatistics.swift  train-split mean and population std per dimension, streaming
//   CorpusSummary.swift      `inspect` (counts, frames, label statistics) and `validate` (full scan)
//   LabelTable.swift         the authors' label CSV layout and the label files shipped as resources
//   NumpyFile.swift          a reader (and writer) for 2-D NumPy `.npy` files
//   CorpusImport.swift       label CSV + `.npy` folders → corpus
//   Random.swift             xoshiro256** with SplitMix64 seeding and a fast normal approximation
//   SyntheticCorpus.swift    presets crema-d, msp-improv, mosei and the feature generator
import Foundation

/// The partition an utterance belongs to. The stored names are `train`, `dev` and `test`.
public enum Split: String, Codable, CaseIterable, Sendable {
    case train, dev, test

    /// Maps the authors' `Split_Set` values (`Train`, `Development`, `Test`, in any case) and
    /// the stored names; `nil` for anything else.
    public init?(labelFileName name: String) {
        switch name.trimmingCharacters(in: .whitespaces).lowercased() {
        case "train": self = .train
        case "development", "dev": self = .dev
        case "test": self = .test
        default: return nil
        }
    }
}

/// A problem with a corpus or with the inputs of an import, naming the file, and the
/// utterance when one is concerned. Its description reads
/// `FILE: utterance 'ID': PROBLEM` (or `FILE: PROBLEM`).
public struct CorpusError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file at fault: the corpus, the label CSV or a `.npy` feature file.
    public var file: String
    /// The offending utterance's id, if one is concerned.
    public var utterance: String?
    public var problem: String

    public init(file: String, utterance: String? = nil, _ problem: String) {
        self.file = file
        self.utterance = utterance
        self.problem = problem
    }

    public var description: String {
        if let utterance { return "\(file): utterance '\(utterance)': \(problem)" }
        return "\(file): \(problem)"
    }
}

extension CorpusError: LocalizedError {
    public var errorDescription: String? { description }
}

/// The constants of the on-disk format (DESIGN §5).
public enum CorpusFormat {
    /// The root attribute `format`.
    public static let name = "vavl-corpus"
    /// The root attribute `version`.
    public static let version: Int64 = 1
}
