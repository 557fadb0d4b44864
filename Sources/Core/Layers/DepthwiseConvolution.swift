/// Depthwise Conv1d (groups = C, odd kernel K, no bias) over each utterance's own frames
/// with "same" zero padding: y[t, c] = Σ_k w[c, k] x[t + k − K/2, c].
public final class DepthwiseConvolution: Layer {
    public let channels: Int
    public let kernelSize: Int
    public let weight: Parameter  // (C, 1, K)
    public let output = Matrix()
    /// Shared by every instance (one backward at a time); read it before the next backward.
    private let sharedInputGradient: Matrix
    public var inputGradient: Matrix { sharedInputGradient }
    private var input: Matrix?
    private var segments = Segments(offsets: [0])
    private var tapMajorWeight: [Float]    // (K, C) so the inner loop runs over contiguous channels
    private var tapMajorGradient: [Float]  // (K, C)

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, kernelSize: Int) {
        sharedInputGradient = registry.workspace.matrix("depthwise.inputGradient")
        precondition(kernelSize % 2 == 1, "depthwise kernel must be odd for same padding")
        self.channels = channels
        self.kernelSize = kernelSize
        weight = registry.scope(name) {
            registry.parameter("weight", shape: [channels, 1, kernelSize], initializer: .pytorchDefault(fanIn: kernelSize))
        }
        tapMajorWeight = [Float](repeating: 0, count: kernelSize * channels)
        tapMajorGradient = [Float](repeating: 0, count: kernelSize * channels)
    }

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        let store = context.store
        input = x
        self.segments = segments
        let c = channels, k = kernelSize
        output.resize(rows: x.rows, columns: c)
        let w = store.pointer(weight)
        for channel in 0..<c { for tap in 0..<k { tapMajorWeight[tap * c + channel] = w[channel * k + tap] } }
        let y = output.data
        // Channels are independent: split them over the rank's threads.
        tapMajorWeight.withUnsafeBufferPointer { wt in
            Parallel.columnBlocks(c, rows: x.rows * k) { channels in
                for utterance in 0..<segments.count {
                    Self.gather(y, x.data, wt.baseAddress!, start: segments.start(utterance),
                                length: segments.length(utterance), channels: channels, width: c, kernel: k, flipped: false)
                }
            }
        }
        return output
    }

    /// out[t, c] = Σ_k w[k, c] in[t + k − K/2, c] over one utterance's frames (zero outside),
    /// or with `flipped` Σ_k w[k, c] in[t − k + K/2, c] (the input gradient's correlation).
    /// Sixteen channels at a time are summed in registers over the taps, tap by tap in
    /// ascending order, and each output element is written once.
    @inline(__always)
    static func gather(_ out: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
                       start: Int, length: Int, channels: Range<Int>, width c: Int, kernel k: Int, flipped: Bool) {
        let pad = k / 2
        for t in 0..<length {
            // Valid taps: 0 ≤ t ± (tap − pad) < length.
            let taps = flipped ? max(0, t + pad - length + 1)..<min(k, t + pad + 1) : max(0, pad - t)..<min(k, length - t + pad)
            let outRow = out + (start + t) * c
            var channel = channels.lowerBound
            while channel + 16 <= channels.upperBound {
                var low = SIMD8<Float>.zero, high = SIMD8<Float>.zero
                for tap in taps {
                    let frame = flipped ? t - tap + pad : t + tap - pad
                    let inRow = source + (start + frame) * c + channel, wRow = wt + tap * c + channel
                    low.addProduct(Reductions.load(wRow), Reductions.load(inRow))
                    high.addProduct(Reductions.load(wRow + 8), Reductions.load(inRow + 8))
                }
                Reductions.store(low, outRow + channel)
                Reductions.store(high, outRow + channel + 8)
                channel += 16
            }
            while channel < channels.upperBound {
                var sum: Float = 0
                for tap in taps {
                    let frame = flipped ? t - tap + pad : t + tap - pad
                    sum = sum.addingProduct(wt[tap * c + channel], source[(start + frame) * c + channel])
                }
                outRow[channel] = sum
                channel += 1
            }
        }
    }

    /// dx[s, c] = Σ_k w[c, k] dy[s − k + K/2, c];  dw[c, k] += Σ_t dy[t, c] x[t + k − K/2, c].
    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let store = context.store
        let x = input!, c = channels, k = kernelSize, pad = k / 2
        inputGradient.resize(rows: x.rows, columns: c)
        let dx = inputGradient.data
        tapMajorGradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        tapMajorWeight.withUnsafeBufferPointer { wt in
            tapMajorGradient.withUnsafeMutableBufferPointer { gt in
                Parallel.columnBlocks(c, rows: x.rows * k) { channels in
                    for utterance in 0..<segments.count {
                        let start = segments.start(utterance), length = segments.length(utterance)
                        Self.gather(dx, dy.data, wt.baseAddress!, start: start, length: length, channels: channels,
                                    width: c, kernel: k, flipped: true)
                        // dw, tap by tap: Σ over the frames where both dy[t] and x[t + k − K/2] exist.
                        for tap in 0..<k {
                            let first = max(0, pad - tap), end = min(length, length + pad - tap)
                            guard end > first else { continue }  // utterances shorter than the tap's offset
                            let frames = first..<end
                            let gwRow = gt.baseAddress! + tap * c
                            var channel = channels.lowerBound
                            while channel + 16 <= channels.upperBound {
                                var low = SIMD8<Float>.zero, high = SIMD8<Float>.zero
                                for t in frames {
                                    let gRow = dy.data + (start + t) * c + channel
                                    let xRow = x.data + (start + t + tap - pad) * c + channel
                                    low.addProduct(Reductions.load(gRow), Reductions.load(xRow))
                                    high.addProduct(Reductions.load(gRow + 8), Reductions.load(xRow + 8))
                                }
                                Reductions.store(Reductions.load(gwRow + channel) + low, gwRow + channel)
                                Reductions.store(Reductions.load(gwRow + channel + 8) + high, gwRow + channel + 8)
                                channel += 16
                            }
                            while channel < channels.upperBound {
                                var sum: Float = 0
                                for t in frames {
                                    sum = sum.addingProduct(dy.data[(start + t) * c + channel], x.data[(start + t + tap - pad) * c + channel])
                                }
                                gwRow[channel] += sum
                                channel += 1
                            }
                        }
                    }
                }
            }
        }
        let dw = store.gradient(weight)
        for channel in 0..<c { for tap in 0..<k { dw[channel * k + tap] += tapMajorGradient[tap * c + channel] } }
        return inputGradient
    }
}
