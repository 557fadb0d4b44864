#if canImport(Glibc)
import Glibc
#endif

/// Sinusoidal positions PE[t, 2i] = sin(t / 10000^(2i/C)), PE[t, 2i+1] = cos(…), computed in
/// Double and rounded once to Float (Float arithmetic drifts by ~6e-5 near t ≈ 1000).
/// Rows only depend on t, so one table serves every utterance; it grows on demand.
public final class PositionalEncoding {
    public let channels: Int
    public private(set) var table = Matrix()  // (T_max, C)

    public init(channels: Int) { self.channels = channels }

    /// Ensures rows 0..<length exist and returns the table.
    public func rows(_ length: Int) -> Matrix {
        if table.rows >= length { return table }
        let newLength = max(length, table.rows * 2, 64)
        let next = Matrix(rows: newLength, columns: channels)
        for t in 0..<newLength {
            for pair in stride(from: 0, to: channels, by: 2) {
                let angle = Double(t) / pow(10000, Double(pair) / Double(channels))
                next[t, pair] = Float(sin(angle))
                if pair + 1 < channels { next[t, pair + 1] = Float(cos(angle)) }
            }
        }
        table = next
        return table
    }
}
