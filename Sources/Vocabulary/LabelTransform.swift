/// The mapping of one dimensional label column for training (docs/DESIGN.md §3): optional
/// flip lo + hi − y, then (y − lo)/(hi − lo) with the rating scale's fixed bounds.
public struct LabelTransform: Codable, Equatable, Sendable {
    public var name: String
    public var flip: Bool
    public var low: Double
    public var high: Double

    public init(name: String, flip: Bool = false, low: Double, high: Double) {
        self.name = name
        self.flip = flip
        self.low = low
        self.high = high
    }

    public func apply(_ value: Double) -> Double {
        let flipped = flip ? low + high - value : value
        return (flipped - low) / (high - low)
    }
}
