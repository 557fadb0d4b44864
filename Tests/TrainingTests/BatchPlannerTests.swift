import XCTest
@testable import VAVLTraining

/// The global batch plan (docs/DESIGN.md §4.4): shares, epoch ends, length buckets,
/// frame-balanced placement and determinism per seed and epoch.
final class BatchPlannerTests: XCTestCase {
    /// 60 paired, 25 audio-only and 15 video-only utterances of varied lengths.
    private func corpus() -> [PlannedUtterance] {
        (0..<100).map { row in
            let length = 20 + (row * 37) % 180
            switch row % 20 {
            case 0..<12: return PlannedUtterance(row: row, audioFrames: length, videoFrames: length * 3 / 5)
            case 12..<17: return PlannedUtterance(row: row, audioFrames: length, videoFrames: 0)
            default: return PlannedUtterance(row: row, audioFrames: 0, videoFrames: length * 3 / 5)
            }
        }
    }

    func testNaturalEpochVisitsEveryUtteranceOnceAndDependsOnSeedAndEpochOnly() {
        let planner = BatchPlanner(utterances: corpus(), batchSize: 32, worldSize: 2, seed: 5)
        let batches = planner.batches(epoch: 0)
        XCTAssertEqual(planner.batchesPerEpoch, 4)
        XCTAssertEqual(batches.map(\.count), [32, 32, 32, 4], "keep: the last batch is partial")
        XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(0..<100))
        // Same seed and epoch: same plan, also from a fresh planner; another epoch or seed: another.
        XCTAssertEqual(BatchPlanner(utterances: corpus(), batchSize: 32, worldSize: 2, seed: 5).batches(epoch: 0), batches)
        XCTAssertNotEqual(planner.batches(epoch: 1), batches)
        XCTAssertNotEqual(BatchPlanner(utterances: corpus(), batchSize: 32, worldSize: 2, seed: 6).batches(epoch: 0), batches)
        // The rank count changes the placement, never the global batches.
        XCTAssertEqual(BatchPlanner(utterances: corpus(), batchSize: 32, worldSize: 3, seed: 5).batches(epoch: 0), batches)
    }

    func testEpochEndsKeepDropAndWrap() {
        let drop = BatchPlanner(utterances: corpus(), batchSize: 32, worldSize: 1, seed: 5, epochEnd: .drop)
        XCTAssertEqual(drop.batches(epoch: 0).map(\.count), [32, 32, 32])
        let wrap = BatchPlanner(utterances: corpus(), batchSize: 32, worldSize: 1, seed: 5, epochEnd: .wrap)
        let wrapped = wrap.batches(epoch: 0)
        XCTAssertEqual(wrapped.map(\.count), [32, 32, 32, 32])
        XCTAssertEqual(Set(wrapped.flatMap { $0 }), Set(0..<100), "every utterance once, the last batch filled from the start")
        XCTAssertEqual(Array(wrapped[3].suffix(28)), Array(wrapped[0].prefix(28)))
    }

    func testBalancedSharesAreDrawnPerBatchByLargestRemainder() {
        let planner = BatchPlanner(utterances: corpus(), batchSize: 32, worldSize: 2, seed: 9,
                                   policy: .balanced(paired: 0.34, audioOnly: 0.33, videoOnly: 0.33))
        XCTAssertEqual(planner.drawsPerBatch(shares: [0.34, 0.33, 0.33]), [11, 11, 10])
        XCTAssertEqual(planner.drawsPerBatch(shares: [0.5, 0.25, 0.25]), [16, 8, 8])
        let patterns = Dictionary(uniqueKeysWithValues: corpus().map { ($0.row, $0.pattern) })
        for epoch in 0..<3 {
            for batch in planner.batches(epoch: epoch) {
                XCTAssertEqual(batch.count, 32)
                XCTAssertEqual(batch.filter { patterns[$0] == .paired }.count, 11)
                XCTAssertEqual(batch.filter { patterns[$0] == .audioOnly }.count, 11)
                XCTAssertEqual(batch.filter { patterns[$0] == .videoOnly }.count, 10)
            }
        }
        // The small pools are over-sampled: 15 video-only utterances, 10 draws × 4 batches.
        XCTAssertEqual(planner.samplingRates()[.videoOnly]!, 40.0 / 15, accuracy: 1e-12)
        // A pool that is empty gets no draws; its share goes to the others.
        let pairedOnly = corpus().filter { $0.pattern == .paired }
        let noUnimodal = BatchPlanner(utterances: pairedOnly, batchSize: 8, worldSize: 1, seed: 1,
                                      policy: .balanced(paired: 0.34, audioOnly: 0.33, videoOnly: 0.33))
        XCTAssertEqual(noUnimodal.drawsPerBatch(shares: [0.34, 0.33, 0.33]), [8, 0, 0])
    }

    func testLengthBucketsGroupSimilarLengthsAndKeepEveryUtterance() {
        let plain = BatchPlanner(utterances: corpus(), batchSize: 10, worldSize: 1, seed: 3)
        let bucketed = BatchPlanner(utterances: corpus(), batchSize: 10, worldSize: 1, seed: 3, lengthBucketWindow: 5)
        XCTAssertEqual(bucketed.batches(epoch: 0).flatMap { $0 }.sorted(), Array(0..<100))
        let cost = Dictionary(uniqueKeysWithValues: corpus().map { ($0.row, $0.cost) })
        func spread(_ planner: BatchPlanner) -> Double {
            let batches = planner.batches(epoch: 0)
            return batches.map { batch in Double(batch.map { cost[$0]! }.max()! - batch.map { cost[$0]! }.min()!) }
                .reduce(0, +) / Double(batches.count)
        }
        XCTAssertLessThan(spread(bucketed), spread(plain) / 2, "buckets should hold utterances of similar length")
    }

    func testPlacementBalancesFramesAndCountsPhases() {
        let utterances = corpus()
        let planner = BatchPlanner(utterances: utterances, batchSize: 32, worldSize: 4, seed: 2)
        let byRow = Dictionary(uniqueKeysWithValues: utterances.map { ($0.row, $0) })
        for step in 0..<3 {
            let batch = planner.batch(epoch: 0, step: step)
            XCTAssertEqual(batch.rankRows.count, 4)
            XCTAssertEqual(batch.rankRows.flatMap { $0 }.sorted(), batch.rows.sorted(), "every row on exactly one rank")
            for rows in batch.rankRows {
                // Each rank keeps plan order.
                let positions = rows.map { batch.rows.firstIndex(of: $0)! }
                XCTAssertEqual(positions, positions.sorted())
            }
            // Greedy largest-first placement: no rank exceeds the mean by more than the largest utterance.
            let loads = batch.rankRows.map { $0.reduce(0) { $0 + byRow[$1]!.cost } }
            let mean = Double(loads.reduce(0, +)) / 4, largest = batch.rows.map { byRow[$0]!.cost }.max()!
            XCTAssertLessThanOrEqual(Double(loads.max()!) - mean, Double(largest))
            XCTAssertEqual(batch.imbalance, Double(loads.max()!) / mean, accuracy: 1e-12)
            XCTAssertEqual(batch.counts.acoustic, batch.rows.filter { byRow[$0]!.audioFrames > 0 }.count)
            XCTAssertEqual(batch.counts.visual, batch.rows.filter { byRow[$0]!.videoFrames > 0 }.count)
            XCTAssertEqual(batch.counts.audioVisual, batch.rows.filter { byRow[$0]!.pattern == .paired }.count)
        }
    }
}
