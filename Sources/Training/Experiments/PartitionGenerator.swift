import Foundation
import VAVLCore
import VAVLData

/// Speaker-independent partitions of a corpus (paper: five partitions per corpus), written
/// as partition files in the authors' label-file layout (`FileName`, label columns, `SpkrID`,
/// `Gender`, `Split_Set`) that ``SplitAssignment`` reads back.
///
/// The speakers are shuffled once with the seed and laid out on a circle, each taking as
/// much room as it has utterances. Partition i starts its test block at i/count of the way
/// round and takes whole speakers until the test share is reached, then the development
/// block likewise; the rest is training. So no speaker is in two splits of a partition, and
/// with a test share of 1/count the test sets of the partitions are disjoint (speaker-wise
/// cross-validation); other shares rotate through the speakers with overlap.
public struct PartitionGenerator: Sendable {
    public var count: Int
    public var seed: UInt64
    /// Shares of utterances in the test and development splits.
    public var testFraction: Double
    public var developmentFraction: Double

    public init(count: Int, seed: UInt64, testFraction: Double, developmentFraction: Double) {
        self.count = count
        self.seed = seed
        self.testFraction = testFraction
        self.developmentFraction = developmentFraction
    }

    /// The corpus's own shares of test and development utterances (the defaults).
    public static func corpusShares(_ corpus: Corpus) -> (test: Double, development: Double) {
        let n = Double(max(corpus.utteranceCount, 1))
        return (Double(corpus.splits.filter { $0 == .test }.count) / n, Double(corpus.splits.filter { $0 == .dev }.count) / n)
    }

    /// The splits of every utterance, per partition.
    public func partitions(speakers: [String]) throws -> [[Split]] {
        guard count >= 1 else { throw ExperimentError("--count must be at least 1") }
        guard testFraction > 0, developmentFraction >= 0, testFraction + developmentFraction < 1 else {
            throw ExperimentError("the test share (\(testFraction)) must be positive and leave room for training with the development share (\(developmentFraction))")
        }
        var utterancesOf: [String: [Int]] = [:]
        for (row, speaker) in speakers.enumerated() { utterancesOf[speaker, default: []].append(row) }
        let needed = developmentFraction > 0 ? 3 : 2
        guard utterancesOf.count >= needed else {
            throw ExperimentError("speaker-independent splits need at least \(needed) speakers; the corpus has \(utterancesOf.count)")
        }
        var order = utterancesOf.keys.sorted()
        var generator = SeededGenerator(seed: mix64(seed ^ 0x5041_5254))
        order.shuffle(using: &generator)
        let sizes = order.map { utterancesOf[$0]!.count }
        let total = sizes.reduce(0, +)
        var cumulative = [0]
        for size in sizes { cumulative.append(cumulative.last! + size) }
        let testTarget = testFraction * Double(total), developmentTarget = developmentFraction * Double(total)
        var result: [[Split]] = []
        for index in 0..<count {
            // The speaker whose block starts nearest to index/count of the way round.
            let startUtterance = Double(index) * Double(total) / Double(count)
            let start = (0..<order.count).min { abs(Double(cumulative[$0]) - startUtterance) < abs(Double(cumulative[$1]) - startUtterance) }!
            var splits = [Split](repeating: .train, count: speakers.count)
            var position = start, taken = 0
            func take(_ split: Split, _ target: Double) {
                var amount = 0
                // Whole speakers, at least one, until the target is reached or passed by less than
                // it would fall short; always leave a speaker for training.
                while taken < order.count - 1 {
                    let size = sizes[position]
                    if amount > 0 && Double(amount) + Double(size) / 2 > target { break }
                    for row in utterancesOf[order[position]]! { splits[row] = split }
                    amount += size
                    taken += 1
                    position = (position + 1) % order.count
                    if Double(amount) >= target { break }
                }
            }
            take(.test, testTarget)
            if developmentFraction > 0 { take(.dev, developmentTarget) }
            result.append(splits)
        }
        return result
    }

    /// The partition file text for `splits` of `corpus`, in the authors' layout.
    public static func csv(corpus: Corpus, splits: [Split]) -> String {
        func field(_ text: String) -> String {
            text.contains(",") || text.contains("\"") || text.contains("\n")
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        let names = ["train": "Train", "dev": "Development", "test": "Test"]
        var lines = [(["FileName"] + corpus.labelNames.map(field) + ["SpkrID", "Gender", "Split_Set"]).joined(separator: ",")]
        for row in 0..<corpus.utteranceCount {
            let labels = corpus.labels(of: row).map { "\($0)" }  // shortest text that reads back the same Float
            lines.append(([field(corpus.ids[row] + ".wav")] + labels + [field(corpus.speakers[row]), "NA", names[splits[row].rawValue]!])
                .joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What one partition holds, for the summary printed after writing.
    public static func describe(_ splits: [Split], speakers: [String]) -> String {
        Split.allCases.map { split in
            let rows = splits.indices.filter { splits[$0] == split }
            return "\(split.rawValue) \(rows.count) utterances / \(Set(rows.map { speakers[$0] }).count) speakers"
        }.joined(separator: ", ")
    }
}
