/// Inverted dropout with a counter-based mask: element (frame t, channel c) of utterance b
/// is kept when a hash of (seed, iteration, phase, utterance key, layer, t, c) lands at or
/// above p, and then scaled by 1/(1 − p). The mask is recomputed, not stored, so forward
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

    /// Whether element (t, c) under `stream` is kept.
    @inline(__always) static func keeps(_ stream: UInt64, frame: Int, channel: Int, threshold: UInt64) -> Bool {
        let element = (UInt64(truncatingIfNeeded: frame) << 32) ^ UInt64(truncatingIfNeeded: channel)
        return (mix64(stream ^ mix64(element)) >> 40) >= threshold
    }

    /// Multiplies the (N, C) matrix in place by mask / (1 − p); rows are frames of `segments`.
    public func apply(_ data: UnsafeMutablePointer<Float>, columns: Int, segments: Segments, _ context: RunContext) {
        guard isActive(context) else { return }
        let threshold = UInt64((Double(probability) * 0x1p24).rounded(.up))
        let scale = 1 / (1 - probability)
        for utterance in 0..<segments.count {
            let stream = streamKey(context, utterance: utterance)
            let start = segments.start(utterance)
            for frame in 0..<segments.length(utterance) {
                let row = data + (start + frame) * columns
                for channel in 0..<columns {
                    row[channel] = Self.keeps(stream, frame: frame, channel: channel, threshold: threshold)
                        ? row[channel] * scale : 0
                }
            }
        }
    }

    /// Multiplies one utterance's T×T attention matrix of head h in place; element (i, j)
    /// is keyed as frame i, channel h·T + j.
    func applyAttention(_ data: UnsafeMutablePointer<Float>, length: Int, head: Int, utterance: Int, _ context: RunContext) {
        guard isActive(context) else { return }
        let threshold = UInt64((Double(probability) * 0x1p24).rounded(.up))
        let scale = 1 / (1 - probability)
        let stream = streamKey(context, utterance: utterance)
        for i in 0..<length {
            let row = data + i * length
            for j in 0..<length {
                row[j] = Self.keeps(stream, frame: i, channel: head * length + j, threshold: threshold) ? row[j] * scale : 0
            }
        }
    }
}
