import VAVLTraining
import Foundation
import VAVLCore
import VAVLData

/// Speaker-independent partitions of a corpus (paper: five partitions per corpus), written
/// as partition files in the authors' label-file layout (`FileName`, label columns, `SpkrID`,
/// `Gender`, `Split_Set`) that ``SplitAssignment`` reads back.
///
/// The speakers are shuffled once with the seed and laid out on a circle of circumference
/// N (utterances), each taking as much room as it has utterances. Partition i's test split
/// is the speakers whose midpoint falls in the window of length test·N that starts i/count
/// of the way round; its development split the next window, of length dev·N; the rest is
/// training (a window that catches no speaker takes the nearest one). So no speaker is in
/// two splits of a partition, and with a test share of at most 1/count the test sets of the
/// partitions are disjoint (speaker-wise cross-validation); larger shares overlap.
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
        var generator = SplitMix64(seed: mix64(seed ^ 0x5041_5254))
        order.shuffle(using: &generator)
        let sizes = order.map { utterancesOf[$0]!.count }
        let total = Double(sizes.reduce(0, +))
        // Each speaker sits on the circle at the midpoint of its run of utterances.
        var midpoints: [Double] = [], covered = 0.0
        for size in sizes {
            midpoints.append(covered + Double(size) / 2)
            covered += Double(size)
        }
        /// How far `position` lies after `start` going round the circle.
        func circularGap(_ position: Double, _ start: Double) -> Double {
            let gap = (position - start).truncatingRemainder(dividingBy: total)
            return gap < 0 ? gap + total : gap
        }
        /// The speakers whose midpoint lies in the circular window [start, start + length).
        func window(_ start: Double, _ length: Double) -> [Int] {
            midpoints.indices.filter { circularGap(midpoints[$0], start) < length }
        }
        var result: [[Split]] = []
        for index in 0..<count {
            let start = Double(index) * total / Double(count)
            var test = window(start, testFraction * total)
            if test.isEmpty { test = [midpoints.indices.min { circularGap(midpoints[$0], start) < circularGap(midpoints[$1], start) }!] }
            var development = window(start + testFraction * total, developmentFraction * total).filter { !test.contains($0) }
            if development.isEmpty && developmentFraction > 0 {
                let end = start + testFraction * total
                if let nearest = midpoints.indices.filter({ !test.contains($0) })
                    .min(by: { circularGap(midpoints[$0], end) < circularGap(midpoints[$1], end) }) {
                    development = [nearest]
                }
            }
            guard test.count + development.count < order.count else {
                throw ExperimentError("partition \(index + 1): the test and development shares leave no speaker for training (\(order.count) speakers)")
            }
            var splits = [Split](repeating: .train, count: speakers.count)
            for speaker in test { for row in utterancesOf[order[speaker]]! { splits[row] = .test } }
            for speaker in development { for row in utterancesOf[order[speaker]]! { splits[row] = .dev } }
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
