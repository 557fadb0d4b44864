/// Inverted dropout with a counter-based mask: element (frame t, channel c) of utterance b
/// is kept when 16 bits of a hash of (seed, iteration, phase, utterance key, layer, t, c)
/// land at or above p·2¹⁶, and then scaled by 1/(1 − p). The mask is recomputed, not
/// stored, so the backward is the same multiplication as the forward. Identity in
/// evaluation mode or p = 0.
///
/// The per-element hash is 32-bit (lowbias32 over a row key plus a counter) so that eight
/// of them run in one AVX2 instruction sequence: channels 16k … 16k + 7 take the low 16 bits
/// of hashes 8k … 8k + 7, channels 16k + 8 … 16k + 15 their high 16 bits. A row's mask is
/// expanded into a row of multipliers (0 or 1/(1 − p)) in cache and then applied by the
/// caller's own loop, which is how Swish and dropout share one pass over the hidden layer.
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

    /// The per-utterance stream key; row keys are derived from it.
    @inline(__always) func streamKey(_ context: RunContext, utterance: Int) -> UInt64 {
        var key = mix64(context.seed ^ 0x5EED)
        key = mix64(key ^ UInt64(truncatingIfNeeded: context.iteration))
        key = mix64(key ^ UInt64(truncatingIfNeeded: context.phase))
        key = mix64(key ^ layerKey)
        return mix64(key ^ context.utteranceKey(utterance))
    }

    /// The 32-bit key of frame `frame` under `stream`.
    @inline(__always) static func rowKey(_ stream: UInt64, frame: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: mix64(stream &+ UInt64(truncatingIfNeeded: frame) &* 0xD1B5_4A32_D192_ED03) >> 32)
    }

    /// lowbias32 (C. Wellons): a bijective 32-bit mix with low bias, on eight lanes.
    @inline(__always) static func hash(_ value: SIMD8<UInt32>) -> SIMD8<UInt32> {
        var x = value
        x ^= x &>> 16
        x &*= 0x7FEB_352D
        x ^= x &>> 15
        x &*= 0x846C_A68B
        return x ^ (x &>> 16)
    }

    /// The same mix on one lane (the reference for the vector loop).
    @inline(__always) static func hash(_ value: UInt32) -> UInt32 {
        var x = value
        x ^= x >> 16
        x = x &* 0x7FEB_352D
        x ^= x >> 15
        x = x &* 0x846C_A68B
        return x ^ (x >> 16)
    }

    /// Whether channel `channel` of the row with key `rowKey` is kept.
    @inline(__always) static func keeps(rowKey: UInt32, channel: Int, threshold: UInt32) -> Bool {
        let lane = UInt32(truncatingIfNeeded: (channel >> 4) * 8 + (channel & 7))
        let bits = hash(rowKey &+ lane &* 0x9E37_79B9)
        return (channel & 8 == 0 ? bits & 0xFFFF : bits >> 16) >= threshold
    }

    /// Writes the row's multipliers (0 where dropped, `scale` where kept) for channels
    /// 0..<count into `multipliers`.
    @inline(__always) static func fillMultipliers(_ multipliers: UnsafeMutablePointer<Float>, count: Int, rowKey: UInt32,
                                                  threshold: UInt32, scale: Float) {
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
        let limit = SIMD8<UInt32>(repeating: threshold), kept = SIMD8<Float>(repeating: scale)
        var block = 0
        while block * 16 + 16 <= count {
            let counters = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: block * 8)) &+ lanes
            let bits = hash(SIMD8<UInt32>(repeating: rowKey) &+ counters &* 0x9E37_79B9)
            let low = SIMD8<Float>.zero.replacing(with: kept, where: (bits & 0xFFFF) .>= limit)
            let high = SIMD8<Float>.zero.replacing(with: kept, where: (bits &>> 16) .>= limit)
            Reductions.store(low, multipliers + block * 16)
            Reductions.store(high, multipliers + block * 16 + 8)
            block += 1
        }
        for channel in (block * 16)..<count {
            multipliers[channel] = keeps(rowKey: rowKey, channel: channel, threshold: threshold) ? scale : 0
        }
    }

    /// p as a 16-bit threshold: an element is dropped when its 16 random bits fall below it
    /// (p is realised to within 2⁻¹⁶).
    @inline(__always) var threshold: UInt32 { UInt32((Double(probability) * 0x1p16).rounded()) }

    @inline(__always) var scale: Float { 1 / (1 - probability) }

    /// Calls `body(row, multipliers)` for every row of the (N, C) batch, rows split over the
    /// rank's threads; `multipliers` holds the row's C mask values (0 or 1/(1 − p)), or is
    /// `nil` when dropout is inactive. Rows are independent (the mask is a function of the
    /// row's own keys), so bodies that write only their own row need no synchronisation.
    @inline(__always)
    public func forEachRow(columns: Int, segments: Segments, _ context: RunContext,
                           _ body: (_ row: Int, _ multipliers: UnsafePointer<Float>?) -> Void) {
        let rows = segments.totalRows
        guard isActive(context) else {
            Parallel.chunks(rows, elementsPerItem: columns) { range in for row in range { body(row, nil) } }
            return
        }
        let threshold = self.threshold, scale = self.scale
        let streams = (0..<segments.count).map { streamKey(context, utterance: $0) }
        var utteranceOfRow = [Int32](repeating: 0, count: rows)
        for utterance in 0..<segments.count { for row in segments.range(utterance) { utteranceOfRow[row] = Int32(utterance) } }
        utteranceOfRow.withUnsafeBufferPointer { owners in
            Parallel.chunks(rows, elementsPerItem: columns) { range in
                let multipliers = UnsafeMutablePointer<Float>.allocate(capacity: max(columns, 1))
                defer { multipliers.deallocate() }
                for row in range {
                    let utterance = Int(owners[row])
                    let key = Self.rowKey(streams[utterance], frame: row - segments.start(utterance))
                    Self.fillMultipliers(multipliers, count: columns, rowKey: key, threshold: threshold, scale: scale)
                    body(row, multipliers)
                }
            }
        }
    }

    /// Multiplies the (N, C) matrix in place by mask / (1 − p); rows are frames of `segments`.
    /// With `bias`, first adds it to every row: the epilogue of the linear map before this
    /// dropout (`Linear.forward(…, addingBias: false)`), in the same pass.
    public func apply(_ data: UnsafeMutablePointer<Float>, columns: Int, segments: Segments, _ context: RunContext,
                      adding bias: UnsafePointer<Float>? = nil) {
        guard isActive(context) || bias != nil else { return }
        forEachRow(columns: columns, segments: segments, context) { row, multipliers in
            let values = data + row * columns
            if let bias { for c in 0..<columns { values[c] += bias[c] } }
            if let m = multipliers { for c in 0..<columns { values[c] *= m[c] } }
        }
    }

    /// target = residual + scale · (data + bias) · mask / (1 − p): the last pass of a module
    /// on a residual stream (its output linear map's bias, its dropout and the block's
    /// residual sum in one pass; `ResidualSum`).
    public func applyResidual(_ data: UnsafePointer<Float>, columns: Int, segments: Segments, _ context: RunContext,
                              adding bias: UnsafePointer<Float>?, scale: Float, residual: UnsafePointer<Float>,
                              into target: UnsafeMutablePointer<Float>) {
        forEachRow(columns: columns, segments: segments, context) { row, multipliers in
            let values = data + row * columns, base = residual + row * columns, out = target + row * columns
            switch (bias, multipliers) {
            case let (b?, m?): for c in 0..<columns { out[c] = base[c] + scale * ((values[c] + b[c]) * m[c]) }
            case let (b?, nil): for c in 0..<columns { out[c] = base[c] + scale * (values[c] + b[c]) }
            case let (nil, m?): for c in 0..<columns { out[c] = base[c] + scale * (values[c] * m[c]) }
            case (nil, nil): for c in 0..<columns { out[c] = base[c] + scale * values[c] }
            }
        }
    }

    /// The last pass of a module whose output linear map wrote `output` without its bias:
    /// bias and dropout in place, returning `output`; or, with `residual`,
    /// `residual.target` = input + scale · (output + bias) · mask, returning the target.
    public func finish(_ output: Matrix, input: Matrix, adding bias: UnsafePointer<Float>?, residual: ResidualSum?,
                       segments: Segments, _ context: RunContext) -> Matrix {
        guard let residual else {
            apply(output.data, columns: output.columns, segments: segments, context, adding: bias)
            return output
        }
        residual.target.resize(rows: output.rows, columns: output.columns)
        applyResidual(output.data, columns: output.columns, segments: segments, context, adding: bias,
                      scale: residual.scale, residual: input.data, into: residual.target.data)
        return residual.target
    }

    /// destination = source · mask / (1 − p) · scale (a scaled copy when inactive): the
    /// backward's masked copy of an incoming gradient in one pass, with the factor the
    /// module's output was scaled by in the forward (the Conformer block's ½ for its
    /// feed-forward modules).
    public func apply(to destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, columns: Int,
                      segments: Segments, _ context: RunContext, scale: Float = 1) {
        guard isActive(context) else {
            if scale == 1 {
                destination.update(from: source, count: segments.totalRows * columns)
            } else {
                Elementwise.scale(destination, source, by: scale, count: segments.totalRows * columns)
            }
            return
        }
        forEachRow(columns: columns, segments: segments, context) { row, multipliers in
            let out = destination + row * columns, values = source + row * columns, m = multipliers!
            if scale == 1 {
                for c in 0..<columns { out[c] = values[c] * m[c] }
            } else {
                for c in 0..<columns { out[c] = values[c] * scale * m[c] }
            }
        }
    }

    /// destination = source · mask / (1 − p) for one utterance's T×T attention matrix of
    /// head h (in place when the two are the same); element (i, j) is keyed as frame i,
    /// channel j of a stream derived from the utterance's and h. `multipliers` is scratch
    /// of at least `length` values.
    func applyAttention(to destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, length: Int,
                        head: Int, utterance: Int, multipliers: UnsafeMutablePointer<Float>, _ context: RunContext) {
        guard isActive(context) else { return }
        let threshold = self.threshold, scale = self.scale
        let stream = streamKey(context, utterance: utterance) ^ mix64(UInt64(head) &+ 0xA77E)
        for i in 0..<length {
            Self.fillMultipliers(multipliers, count: length, rowKey: Self.rowKey(stream, frame: i),
                                 threshold: threshold, scale: scale)
            let out = destination + i * length, values = source + i * length
            for j in 0..<length { out[j] = values[j] * multipliers[j] }
        }
    }
}
