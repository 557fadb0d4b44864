/// Inverted dropout with a counter-based mask: element (frame t, channel c) of utterance b
/// is kept when 16 bits of a hash of (seed, iteration, phase, utterance key, layer, t, c)
/// land at or above p·2¹⁶, and then scaled by 1/(1 − p). One 64-bit hash serves four
/// neighbouring channels. The mask is recomputed, not stored, so forward
/// and backward are the same in-place multiplication. Identity in evaluation mode or p = 0.
public struct Dropout {
    public let probability: Float
    /// Stable key of this layer (a hash of its dotted name).
    public let layerKey: UInt64

    public init(_ registry: ParameterRegistry, _ name: String, probability: Float) {
        self.probability = probability
        self.layerKey = stableHash(registry.qualified(name))
    }

    @inline(__always) public func isActive(_ context: RunContext) -> Bool {
        context.mode == .training && probability > 0
    }

    /// The per-utterance stream key; element keys are mixed into it.
    @inline(__always) func streamKey(_ context: RunContext, utterance: Int) -> UInt64 {
        var key = mix64(context.seed ^ 0x5EED)
        key = mix64(key ^ UInt64(truncatingIfNeeded: context.iteration))
        key = mix64(key ^ UInt64(truncatingIfNeeded: context.phase))
        key = mix64(key ^ layerKey)
        return mix64(key ^ context.utteranceKey(utterance))
    }

    /// 64 random bits for elements (t, 4q … 4q + 3) under `stream`: SplitMix64's output at
    /// counter (t, q). Element 4q + i is decided by bits 16i … 16i + 15.
    @inline(__always) static func quadBits(_ stream: UInt64, frame: Int, quad: Int) -> UInt64 {
        let counter = (UInt64(truncatingIfNeeded: frame) << 32) | UInt64(truncatingIfNeeded: quad)
        return mix64(stream &+ counter &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Whether element (t, c) under `stream` is kept (the reference for the loop below).
    @inline(__always) static func keeps(_ stream: UInt64, frame: Int, channel: Int, threshold: UInt64) -> Bool {
        let bits = quadBits(stream, frame: frame, quad: channel >> 2)
        return (bits >> (16 * UInt64(channel & 3))) & 0xFFFF >= threshold
    }

    /// Multiplies `count` consecutive elements (channels 0..<count of one frame) in place.
    @inline(__always) static func applyRow(_ row: UnsafeMutablePointer<Float>, count: Int, stream: UInt64, frame: Int,
                                           threshold: UInt64, scale: Float) {
        var channel = 0
        while channel + 3 < count {
            let bits = quadBits(stream, frame: frame, quad: channel >> 2)
            row[channel] = bits & 0xFFFF >= threshold ? row[channel] * scale : 0
            row[channel + 1] = (bits >> 16) & 0xFFFF >= threshold ? row[channel + 1] * scale : 0
            row[channel + 2] = (bits >> 32) & 0xFFFF >= threshold ? row[channel + 2] * scale : 0
            row[channel + 3] = bits >> 48 >= threshold ? row[channel + 3] * scale : 0
            channel += 4
        }
        while channel < count {
            row[channel] = keeps(stream, frame: frame, channel: channel, threshold: threshold) ? row[channel] * scale : 0
            channel += 1
        }
    }

    /// p as a 16-bit threshold: an element is dropped when its 16 random bits fall below it
    /// (p is realised to within 2⁻¹⁶).
    @inline(__always) var threshold: UInt64 { UInt64((Double(probability) * 0x1p16).rounded()) }

    /// Multiplies the (N, C) matrix in place by mask / (1 − p); rows are frames of `segments`.
    public func apply(_ data: UnsafeMutablePointer<Float>, columns: Int, segments: Segments, _ context: RunContext) {
        guard isActive(context) else { return }
        let threshold = self.threshold, scale = 1 / (1 - probability)
        let streams = (0..<segments.count).map { streamKey(context, utterance: $0) }
        // Rows are independent (the mask is a function of the row's own keys): split them.
        var utteranceOfRow = [Int32](repeating: 0, count: segments.totalRows)
        for utterance in 0..<segments.count { for row in segments.range(utterance) { utteranceOfRow[row] = Int32(utterance) } }
        utteranceOfRow.withUnsafeBufferPointer { owners in
            Parallel.chunks(segments.totalRows, elementsPerItem: columns) { rows in
                for row in rows {
                    let utterance = Int(owners[row])
                    Self.applyRow(data + row * columns, count: columns, stream: streams[utterance],
                                  frame: row - segments.start(utterance), threshold: threshold, scale: scale)
                }
            }
        }
    }

    /// Multiplies one utterance's T×T attention matrix of head h in place; element (i, j)
    /// is keyed as frame i, channel j of a stream derived from the utterance's and h.
    func applyAttention(_ data: UnsafeMutablePointer<Float>, length: Int, head: Int, utterance: Int, _ context: RunContext) {
        guard isActive(context) else { return }
        let threshold = self.threshold, scale = 1 / (1 - probability)
        let stream = streamKey(context, utterance: utterance)
        for i in 0..<length {
            Self.applyRow(data + i * length, count: length, stream: stream ^ mix64(UInt64(head) &+ 0xA77E),
                          frame: i, threshold: threshold, scale: scale)
        }
    }
}
