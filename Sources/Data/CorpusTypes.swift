// The corpus side of the trainer: the HDF5 corpus format (DESIGN §5), import of users'
// features, realistic synthetic corpora and train-split feature statistics (DESIGN §3).
//
// Files of this module:
//   CorpusTypes.swift        task, split, modality, the corpus error, the process-wide HDF5 lock
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

/// Serialises every HDF5 call this module makes. The HDF5 C library keeps global state,
/// so two threads must never be inside it at once; the reader's `readFrames` may run on a
/// prefetch thread while the main thread writes a checkpoint. Other modules that call HDF5
/// while a ``Corpus`` may be read on another thread should wrap their calls in
/// ``HDF5Lock/withLock(_:)`` as well.
public enum HDF5Lock {
    private static let lock = NSRecursiveLock()

    /// Runs `body` holding the process-wide HDF5 lock (re-entrant).
    public static func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
