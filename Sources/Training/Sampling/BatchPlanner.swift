import VAVLCore

/// Which modalities an utterance has.
public enum ModalityPattern: Int, Codable, Sendable, CaseIterable {
    case paired
    case audioOnly
    case videoOnly

    public var name: String { ["paired", "audio-only", "video-only"][rawValue] }
}

/// What the planner knows of a training utterance: its corpus row, which modalities it
/// has and its frame counts (the compute it costs).
public struct PlannedUtterance: Sendable, Equatable {
    public var row: Int
    public var audioFrames: Int
    public var videoFrames: Int

    public init(row: Int, audioFrames: Int, videoFrames: Int) {
        self.row = row
        self.audioFrames = audioFrames
        self.videoFrames = videoFrames
    }

    public var pattern: ModalityPattern {
        audioFrames > 0 ? (videoFrames > 0 ? .paired : .audioOnly) : .videoOnly
    }

    /// Compute is roughly linear in frames: every frame passes the same Conformer width.
    public var cost: Int { audioFrames + videoFrames }
}

/// How each global batch is composed (DESIGN §4.4).
public enum CompositionPolicy: Equatable, Sendable, Codable {
    /// Utterances as they come, in a seeded per-epoch permutation.
    case natural
    /// Each global batch draws these shares (normalised) from the paired, audio-only and
    /// video-only pools; small pools are over-sampled, cycling through seeded permutations
    /// that continue across epochs.
    case balanced(paired: Double, audioOnly: Double, videoOnly: Double)
}

/// What happens to the last, partial global batch of an epoch.
public enum EpochEnd: String, Codable, Sendable, CaseIterable {
    /// Keep it (DESIGN §3 default): exactly one pass over the data.
    case keep
    /// Drop it.
    case drop
    /// Fill it up with the first utterances of the epoch's order (DistributedSampler's padding).
    case wrap
}

/// One global batch and where its utterances go.
public struct GlobalBatch: Equatable, Sendable {
    /// Corpus rows of the global batch, in plan order.
    public var rows: [Int]
    /// Corpus rows per rank, each in plan order.
    public var rankRows: [[Int]]
    /// Utterances taking part in each phase, over all ranks.
    public var counts: PhaseCounts
    /// Largest rank's frame count over the mean (1 = perfect compute balance).
    public var imbalance: Double
}

/// The global, seed-and-epoch-determined plan (DESIGN §4.4): every rank derives the same
/// batches and the same placement of utterances on ranks without communicating, so all
/// agree on phases and step counts.
public final class BatchPlanner {
    public let utterances: [PlannedUtterance]
    public let batchSize: Int
    public let worldSize: Int
    public let seed: UInt64
    public let policy: CompositionPolicy
    public let epochEnd: EpochEnd
    /// Sort utterances of similar length into the same batch (within windows of this many
    /// batches), then shuffle the batch order; 0 = off.
    public let lengthBucketWindow: Int
    private var cachedEpoch: (epoch: Int, batches: [[Int]])?
    private let pools: [[Int]]  // indices into `utterances` by pattern
    private let byRow: [Int: PlannedUtterance]

    public init(utterances: [PlannedUtterance], batchSize: Int, worldSize: Int, seed: UInt64,
                policy: CompositionPolicy = .natural, epochEnd: EpochEnd = .keep, lengthBucketWindow: Int = 0) {
        precondition(batchSize > 0 && worldSize > 0)
        self.utterances = utterances
        self.batchSize = batchSize
        self.worldSize = worldSize
        self.seed = seed
        self.policy = policy
        self.epochEnd = epochEnd
        self.lengthBucketWindow = lengthBucketWindow
        pools = ModalityPattern.allCases.map { pattern in utterances.indices.filter { utterances[$0].pattern == pattern } }
        byRow = Dictionary(utterances.map { ($0.row, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Global batches per epoch.
    public var batchesPerEpoch: Int {
        let n = utterances.count
        if n == 0 { return 0 }
        return epochEnd == .drop ? n / batchSize : (n + batchSize - 1) / batchSize
    }

    /// A seeded permutation of 0..<count.
    static func permutation(_ count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count)
        var generator = SplitMix64(seed: seed)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(generator.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        return order
    }

    /// The global batches (corpus rows) of `epoch`.
    public func batches(epoch: Int) -> [[Int]] {
        if let cachedEpoch, cachedEpoch.epoch == epoch { return cachedEpoch.batches }
        let batches: [[Int]]
        switch policy {
        case .natural: batches = naturalBatches(epoch: epoch)
        case .balanced(let paired, let audioOnly, let videoOnly):
            batches = balancedBatches(epoch: epoch, shares: [paired, audioOnly, videoOnly])
        }
        cachedEpoch = (epoch, batches)
        return batches
    }

    private func naturalBatches(epoch: Int) -> [[Int]] {
        let order = Self.permutation(utterances.count, seed: mix64(seed ^ 0xE90C ^ UInt64(epoch)))
        var rows = order.map { utterances[$0].row }
        let count = batchesPerEpoch
        if epochEnd == .wrap, rows.count % batchSize != 0, !rows.isEmpty {
            let missing = batchSize - rows.count % batchSize
            rows += (0..<missing).map { rows[$0 % rows.count] }
        }
        var batches = (0..<count).map { Array(rows[($0 * batchSize)..<min(rows.count, ($0 + 1) * batchSize)]) }
        if lengthBucketWindow > 1 {
            // Sort by cost inside windows of several batches, re-cut, then shuffle batch order.
            var bucketed: [[Int]] = []
            for start in stride(from: 0, to: batches.count, by: lengthBucketWindow) {
                let window = batches[start..<min(batches.count, start + lengthBucketWindow)]
                let sizes = window.map(\.count)
                var sorted = window.flatMap { $0 }.sorted { (byRow[$0]?.cost ?? 0, $0) < (byRow[$1]?.cost ?? 0, $1) }
                for size in sizes {
                    bucketed.append(Array(sorted.prefix(size)))
                    sorted.removeFirst(size)
                }
            }
            let batchOrder = Self.permutation(bucketed.count, seed: mix64(seed ^ 0xB0C7 ^ UInt64(epoch)))
            batches = batchOrder.map { bucketed[$0] }
        }
        return batches
    }

    /// Per-batch draws from each pool: shares × B by largest remainder, empty pools get none.
    public func drawsPerBatch(shares: [Double]) -> [Int] {
        let available = shares.enumerated().map { pools[$0.offset].isEmpty ? 0 : max(0, $0.element) }
        let total = available.reduce(0, +)
        guard total > 0 else { return [0, 0, 0] }
        let exact = available.map { $0 / total * Double(batchSize) }
        var draws = exact.map { Int($0.rounded(.down)) }
        let order = exact.indices.sorted { (exact[$0] - Double(draws[$0]), -$0) > (exact[$1] - Double(draws[$1]), -$1) }
        var index = 0
        while draws.reduce(0, +) < batchSize {
            let pool = order[index % order.count]
            if available[pool] > 0 { draws[pool] += 1 }
            index += 1
        }
        return draws
    }

    private func balancedBatches(epoch: Int, shares: [Double]) -> [[Int]] {
        let draws = drawsPerBatch(shares: shares)
        return (0..<batchesPerEpoch).map { step in
            let global = epoch * batchesPerEpoch + step
            var rows: [Int] = []
            for (poolIndex, pool) in pools.enumerated() where draws[poolIndex] > 0 {
                for draw in (global * draws[poolIndex])..<((global + 1) * draws[poolIndex]) {
                    // Draw k comes from cycle k / |pool| of the pool's stream of permutations.
                    let cycle = draw / pool.count
                    let order = Self.permutation(pool.count, seed: mix64(seed ^ 0xBA1A ^ UInt64(poolIndex) << 40 ^ UInt64(cycle)))
                    rows.append(utterances[pool[order[draw % pool.count]]].row)
                }
            }
            // Interleave pools in a seeded order so ranks get a mix.
            let order = Self.permutation(rows.count, seed: mix64(seed ^ 0x1EAF ^ UInt64(global)))
            return order.map { rows[$0] }
        }
    }

    /// How often each pool's utterances are drawn per epoch under the balanced policy
    /// (draws ÷ pool size; > 1 means over-sampling with replacement across epochs).
    public func samplingRates() -> [ModalityPattern: Double] {
        guard case .balanced(let p, let a, let v) = policy else { return [:] }
        let draws = drawsPerBatch(shares: [p, a, v])
        var rates: [ModalityPattern: Double] = [:]
        for pattern in ModalityPattern.allCases where !pools[pattern.rawValue].isEmpty {
            rates[pattern] = Double(draws[pattern.rawValue] * batchesPerEpoch) / Double(pools[pattern.rawValue].count)
        }
        return rates
    }

    /// Global batch `step` of `epoch`, with its placement on ranks.
    public func batch(epoch: Int, step: Int) -> GlobalBatch {
        let rows = batches(epoch: epoch)[step]
        return place(rows)
    }

    /// Frame-balanced placement: utterances by decreasing cost go to the least-loaded rank
    /// (ties to the lower rank); each rank keeps plan order.
    public func place(_ rows: [Int]) -> GlobalBatch {
        var loads = [Int](repeating: 0, count: worldSize)
        var assignment = [Int](repeating: 0, count: rows.count)
        let order = rows.indices.sorted { (-(byRow[rows[$0]]?.cost ?? 0), $0) < (-(byRow[rows[$1]]?.cost ?? 0), $1) }
        for position in order {
            var best = 0
            for rank in 1..<worldSize where loads[rank] < loads[best] { best = rank }
            assignment[position] = best
            loads[best] += byRow[rows[position]]?.cost ?? 0
        }
        var rankRows = [[Int]](repeating: [], count: worldSize)
        for (position, row) in rows.enumerated() { rankRows[assignment[position]].append(row) }
        var counts = PhaseCounts(acoustic: 0, visual: 0, audioVisual: 0)
        for row in rows {
            guard let utterance = byRow[row] else { continue }
            if utterance.audioFrames > 0 { counts.acoustic += 1 }
            if utterance.videoFrames > 0 { counts.visual += 1 }
            if utterance.audioFrames > 0 && utterance.videoFrames > 0 { counts.audioVisual += 1 }
        }
        let mean = Double(loads.reduce(0, +)) / Double(worldSize)
        let imbalance = mean > 0 ? Double(loads.max()!) / mean : 1
        return GlobalBatch(rows: rows, rankRows: rankRows, counts: counts, imbalance: imbalance)
    }
}
