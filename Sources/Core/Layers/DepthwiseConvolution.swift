/// Depthwise Conv1d (groups = C, odd kernel K, no bias) over each utterance's own frames
/// with "same" zero padding: y[t, c] = Σ_k w[c, k] x[t + k − K/2, c].
public final class DepthwiseConvolution {
    public let channels: Int
    public let kernelSize: Int
    public let weight: Parameter  // (C, 1, K)
    public let output = Matrix()
    /// Shared by every instance (one backward at a time); read it before the next backward.
    private static let sharedInputGradient = Matrix()
    public var inputGradient: Matrix { Self.sharedInputGradient }
    private var input: Matrix?
    private var segments = Segments(offsets: [0])
    private var tapMajorWeight: [Float]    // (K, C) so the inner loop runs over contiguous channels
    private var tapMajorGradient: [Float]  // (K, C)

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, kernelSize: Int) {
        precondition(kernelSize % 2 == 1, "depthwise kernel must be odd for same padding")
        self.channels = channels
        self.kernelSize = kernelSize
        weight = registry.scope(name) {
            registry.parameter("weight", shape: [channels, 1, kernelSize], initializer: .pytorchDefault(fanIn: kernelSize))
        }
        tapMajorWeight = [Float](repeating: 0, count: kernelSize * channels)
        tapMajorGradient = [Float](repeating: 0, count: kernelSize * channels)
    }

    public func forward(_ x: Matrix, segments: Segments, _ store: ParameterStore) -> Matrix {
        input = x
        self.segments = segments
        let c = channels, k = kernelSize, pad = k / 2
        output.resizeZeroed(rows: x.rows, columns: c)
        let w = store.pointer(weight)
        for channel in 0..<c { for tap in 0..<k { tapMajorWeight[tap * c + channel] = w[channel * k + tap] } }
        // Channels are independent: split them over the rank's threads.
        tapMajorWeight.withUnsafeBufferPointer { wt in
            Parallel.columnBlocks(c, rows: x.rows * k) { channels in
                for utterance in 0..<segments.count {
                    let start = segments.start(utterance), length = segments.length(utterance)
                    for t in 0..<length {
                        let yRow = output.data + (start + t) * c
                        for tap in max(0, pad - t)..<min(k, length - t + pad) {
                            let xRow = x.data + (start + t + tap - pad) * c, wRow = wt.baseAddress! + tap * c
                            for channel in channels { yRow[channel] += wRow[channel] * xRow[channel] }
                        }
                    }
                }
            }
        }
        return output
    }

    /// dx[t + k − K/2, c] += w[c, k] dy[t, c];  dw[c, k] += Σ_t dy[t, c] x[t + k − K/2, c].
    public func backward(_ dy: Matrix, _ store: ParameterStore) -> Matrix {
        let x = input!, c = channels, k = kernelSize, pad = k / 2
        inputGradient.resizeZeroed(rows: x.rows, columns: c)
        tapMajorGradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        tapMajorWeight.withUnsafeBufferPointer { wt in
            tapMajorGradient.withUnsafeMutableBufferPointer { gt in
                Parallel.columnBlocks(c, rows: x.rows * k) { channels in
                    for utterance in 0..<segments.count {
                        let start = segments.start(utterance), length = segments.length(utterance)
                        for t in 0..<length {
                            let gRow = dy.data + (start + t) * c
                            for tap in max(0, pad - t)..<min(k, length - t + pad) {
                                let source = (start + t + tap - pad) * c
                                let xRow = x.data + source, dxRow = inputGradient.data + source
                                let wRow = wt.baseAddress! + tap * c, gwRow = gt.baseAddress! + tap * c
                                for channel in channels {
                                    dxRow[channel] += wRow[channel] * gRow[channel]
                                    gwRow[channel] += gRow[channel] * xRow[channel]
                                }
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
