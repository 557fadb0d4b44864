import Foundation
import VAVLCore
import VAVLData
@testable import VAVLTraining
import XCTest

/// The loader (this rank's rows of a batch, normalised, labels on the training scale) and the
/// prefetcher (one batch ahead, errors passed through).
final class BatchLoaderTests: XCTestCase {
    nonisolated(unsafe) static var corpus: TinyCorpus!

    override class func setUp() {
        corpus = try! TinyCorpus(preset: .mspImprov, utterances: 40, audioOnly: 0.25, videoOnly: 0.25)
    }

    func testLoadReadsOnlyItsRowsNormalisedAndMapsLabelsToTheTrainingScale() throws {
        let corpus = try Corpus.open(Self.corpus.path)
        let statistics = Normalization(audio: try corpus.featureStatistics(.audio), video: try corpus.featureStatistics(.video))
        var configuration = try Self.corpus.configuration()
        configuration.labelTransform[0].flip = true
        let loader = BatchLoader(corpus: corpus, normalization: statistics,
                                 labels: LabelMapping(task: corpus.task, transforms: configuration.labelTransform,
                                                      outputCount: configuration.outputDimension))
        let rows = [7, 2, 31, 18, 5]
        let batch = try loader.load(rows)
        XCTAssertEqual(batch.keys, rows.map { UInt64($0) }, "dropout keys are the corpus rows")
        for modality in [Modality.audio, .video] {
            let input = batch.input(modality)
            // The utterances that have the modality, in batch order, with their frame counts.
            XCTAssertEqual(input.utterances, rows.indices.filter { corpus.has(modality, utterance: rows[$0]) })
            XCTAssertFalse(input.utterances.isEmpty, "\(modality): the rows should include some with it")
            XCTAssertLessThan(input.utterances.count, rows.count, "\(modality): the rows should include some without it")
            for (segment, index) in input.utterances.enumerated() {
                let frames = corpus.frameCount(modality, utterance: rows[index]), dimension = corpus.dimension(modality)
                XCTAssertEqual(input.segments.length(segment), frames)
                var raw = [Float](repeating: 0, count: frames * dimension)
                try raw.withUnsafeMutableBufferPointer { try corpus.readFrames(modality, utterance: rows[index], into: $0) }
                let stats = try XCTUnwrap(statistics.statistics(modality))
                for j in stride(from: 0, to: raw.count, by: 7) {
                    let column = j % dimension
                    let expected = (raw[j] - Float(stats.mean[column])) / Float(stats.std[column] + FeatureStatistics.epsilon)
                    XCTAssertEqual(input.features.row(input.segments.start(segment))[j], expected, accuracy: 1e-4 * max(1, abs(expected)))
                }
            }
        }
        // Labels: column 0 flipped (lo + hi − y), then every column scaled to [0, 1].
        let range = try XCTUnwrap(corpus.labelRange)
        for (index, row) in rows.enumerated() {
            let raw = corpus.labels(of: row)
            for column in 0..<configuration.outputDimension {
                var value = Double(raw[raw.startIndex + column])
                if column == 0 { value = range.lowerBound + range.upperBound - value }
                XCTAssertEqual(batch.labels[index, column], Float((value - range.lowerBound) / (range.upperBound - range.lowerBound)),
                               accuracy: 1e-6)
            }
        }
    }

    /// HDF5 reads zeros past the end of a file truncated under it: the loader stops instead.
    func testACorpusTruncatedWhileOpenStopsTheLoader() throws {
        let copy = Self.corpus.folder + "/truncated.h5"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: Self.corpus.path, toPath: copy)
        let corpus = try Corpus.open(copy)
        let loader = BatchLoader(corpus: corpus, normalization: Normalization(audio: nil, video: nil),
                                 labels: LabelMapping(task: corpus.task, transforms: [], outputCount: corpus.labelCount))
        XCTAssertNoThrow(try loader.load([0, 1]))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: copy))
        try handle.truncate(atOffset: UInt64(try FileManager.default.attributesOfItem(atPath: copy)[.size] as! Int) / 2)
        try handle.close()
        XCTAssertThrowsError(try loader.load([0, 1])) {
            XCTAssertTrue("\($0)".contains("changed on disk"), "\($0)")
        }
    }

    func testPrefetcherRunsAheadAndPassesErrorsThrough() throws {
        struct Failure: Error {}
        let prefetcher = Prefetcher<Int>()
        XCTAssertFalse(prefetcher.isPending)
        let gate = DispatchSemaphore(value: 0)
        prefetcher.start { gate.wait(); return 42 }
        XCTAssertTrue(prefetcher.isPending, "the work runs in the background")
        gate.signal()
        XCTAssertEqual(try prefetcher.take(), 42)
        XCTAssertFalse(prefetcher.isPending)
        prefetcher.start { throw Failure() }
        XCTAssertThrowsError(try prefetcher.take()) { XCTAssertTrue($0 is Failure) }
        // After an error the next batch is prefetched as usual.
        prefetcher.start { 7 }
        XCTAssertEqual(try prefetcher.take(), 7)
    }
}
