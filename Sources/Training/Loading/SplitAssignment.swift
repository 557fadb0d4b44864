import Foundation
import VAVLData

/// Which split each corpus row belongs to: the corpus's own, or a partition file in the
/// authors' layout (`FileName`, …, `Split_Set` with Train / Development / Test) that
/// reassigns them — the paper's five speaker-independent partitions over one corpus.
public struct SplitAssignment: Sendable {
    /// The split of each corpus row; `nil` leaves a row out of every split.
    public var splits: [Split?]

    /// The corpus's own splits.
    public init(corpus: Corpus) {
        splits = corpus.splits.map { $0 }
    }

    public init(splits: [Split?]) { self.splits = splits }

    /// Reads a partition file; every corpus utterance must appear once (matched by id, the
    /// file name without `.wav`). Errors name the file and the utterance.
    public init(partitionFile path: String, corpus: Corpus) throws {
        let table = try LabelTable.read(path)
        let splitColumn = try table.column("Split_Set"), nameColumn = try table.column("FileName")
        let split = table.rows.map { $0[splitColumn] }
        let names = table.rows.map { $0[nameColumn] }
        var assignment = [String: Split]()
        for (name, value) in zip(names, split) {
            let id = LabelTable.utteranceID(fileName: name)
            guard let parsed = Split(labelFileName: value) else {
                throw CorpusError(file: path, utterance: id, "unknown split '\(value)' (Train, Development or Test)")
            }
            guard assignment.updateValue(parsed, forKey: id) == nil else {
                throw CorpusError(file: path, utterance: id, "listed twice")
            }
        }
        splits = try corpus.ids.map { id in
            guard let split = assignment[id] else { throw CorpusError(file: path, utterance: id, "utterance of the corpus missing from the partition file") }
            return split
        }
    }

    public func rows(in split: Split) -> [Int] {
        splits.indices.filter { splits[$0] == split }
    }

    /// What a resumed run must find again in the corpus named on its command line: per split,
    /// the utterance count and a hash of the sorted ids ("train 96 3f2a…, dev 12 …, test 12
    /// …"), readable in an error. Dimensions, task and labels are the configuration's.
    public func fingerprint(ids: [String]) -> String {
        Split.allCases.map { split in
            let members = rows(in: split).map { ids[$0] }.sorted()
            let hash = stableHash(members.joined(separator: "\n"))
            return "\(split.rawValue) \(members.count) " + String(hash, radix: 16)
        }.joined(separator: ", ")
    }
}
