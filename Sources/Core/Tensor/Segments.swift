/// Where each utterance's frames sit in a packed ragged batch: utterance `b` owns rows
/// `offsets[b] ..< offsets[b + 1]` of every (N, C) matrix of the batch. No padding anywhere.
public struct Segments: Equatable, Sendable {
    /// B + 1 non-decreasing row offsets starting at 0.
    public let offsets: [Int]

    public init(offsets: [Int]) {
        precondition(offsets.first == 0, "segment offsets start at 0")
        for index in 1..<offsets.count { precondition(offsets[index] >= offsets[index - 1], "segment offsets must not decrease") }
        self.offsets = offsets
    }

    /// Segments of the given lengths, in order.
    public init(lengths: [Int]) {
        var offsets = [0]
        offsets.reserveCapacity(lengths.count + 1)
        for length in lengths { offsets.append(offsets.last! + length) }
        self.init(offsets: offsets)
    }

    /// B, the number of utterances.
    public var count: Int { offsets.count - 1 }
    /// N, the number of packed rows.
    public var totalRows: Int { offsets.last! }
    @inline(__always) public func start(_ utterance: Int) -> Int { offsets[utterance] }
    @inline(__always) public func length(_ utterance: Int) -> Int { offsets[utterance + 1] - offsets[utterance] }
    public func range(_ utterance: Int) -> Range<Int> { offsets[utterance]..<offsets[utterance + 1] }
    public var lengths: [Int] { (0..<count).map(length) }
    public var maximumLength: Int { (0..<count).map(length).max() ?? 0 }
}
