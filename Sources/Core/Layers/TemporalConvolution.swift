import BLAS

/// Conv1d I → O with an odd kernel K, no bias, "same" zero padding per utterance:
/// y[t, o] = Σ_k Σ_i W[o, i, k] x[t + k − K/2, i]. Each tap is one sgemm per utterance on
/// the rows whose shifted source stays inside that utterance.
public final class TemporalConvolution {
    public let inputs: Int
    public let outputs: Int
    public let kernelSize: Int
    public let weight: Parameter  // (O, I, K), PyTorch layout
    public let output = Matrix()
    public let inputGradient = Matrix()
    private var input: Matrix?
    private var segments = Segments(offsets: [0])
    private var tapMajorWeight: [Float]    // (K, O, I): tap k is an O × I matrix
    private var tapMajorGradient: [Float]  // (K, O, I)

    public init(_ registry: ParameterRegistry, _ name: String, inputs: Int, outputs: Int, kernelSize: Int) {
        precondition(kernelSize % 2 == 1, "temporal kernel must be odd for same padding")
        self.inputs = inputs
        self.outputs = outputs
        self.kernelSize = kernelSize
        weight = registry.scope(name) {
            registry.parameter("weight", shape: [outputs, inputs, kernelSize],
                               initializer: .pytorchDefault(fanIn: inputs * kernelSize))
        }
        tapMajorWeight = [Float](repeating: 0, count: kernelSize * outputs * inputs)
        tapMajorGradient = [Float](repeating: 0, count: kernelSize * outputs * inputs)
    }

    /// The rows of an utterance of `length` frames where tap `tap` reads inside it:
    /// output frames `first ..< first + count`, source frames shifted by `tap − K/2`.
    @inline(__always) private func validFrames(length: Int, tap: Int) -> (first: Int, count: Int) {
        let shift = tap - kernelSize / 2
        let first = max(0, -shift), last = min(length, length - shift)
        return (first, max(0, last - first))
    }

    public func forward(_ x: Matrix, segments: Segments, _ store: ParameterStore) -> Matrix {
        input = x
        self.segments = segments
        let o = outputs, i = inputs, k = kernelSize
        output.resizeZeroed(rows: x.rows, columns: o)
        let w = store.pointer(weight)
        for out in 0..<o { for input in 0..<i { for tap in 0..<k {
            tapMajorWeight[(tap * o + out) * i + input] = w[(out * i + input) * k + tap]
        } } }
        tapMajorWeight.withUnsafeBufferPointer { wt in
            for utterance in 0..<segments.count {
                let start = segments.start(utterance), length = segments.length(utterance)
                for tap in 0..<k {
                    let (first, count) = validFrames(length: length, tap: tap)
                    if count == 0 { continue }
                    let shift = tap - k / 2
                    BLAS.sgemm(transposeB: .transposed, m: count, n: o, k: i,
                               a: x.data + (start + first + shift) * i, lda: i,
                               b: wt.baseAddress! + tap * o * i, ldb: i,
                               beta: 1, c: output.data + (start + first) * o, ldc: o)
                }
            }
        }
        return output
    }

    public func backward(_ dy: Matrix, _ store: ParameterStore) -> Matrix {
        let x = input!, o = outputs, i = inputs, k = kernelSize
        inputGradient.resizeZeroed(rows: x.rows, columns: i)
        tapMajorGradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        tapMajorWeight.withUnsafeBufferPointer { wt in
            tapMajorGradient.withUnsafeMutableBufferPointer { gt in
                for utterance in 0..<segments.count {
                    let start = segments.start(utterance), length = segments.length(utterance)
                    for tap in 0..<k {
                        let (first, count) = validFrames(length: length, tap: tap)
                        if count == 0 { continue }
                        let shift = tap - k / 2
                        let dyRows = dy.data + (start + first) * o
                        // dx[shifted] += dy W_k
                        BLAS.sgemm(m: count, n: i, k: o, a: dyRows, lda: o, b: wt.baseAddress! + tap * o * i, ldb: i,
                                   beta: 1, c: inputGradient.data + (start + first + shift) * i, ldc: i)
                        // dW_k += dyᵀ x[shifted]
                        BLAS.sgemm(transposeA: .transposed, m: o, n: i, k: count, a: dyRows, lda: o,
                                   b: x.data + (start + first + shift) * i, ldb: i,
                                   beta: 1, c: gt.baseAddress! + tap * o * i, ldc: i)
                    }
                }
            }
        }
        let dw = store.gradient(weight)
        for out in 0..<o { for input in 0..<i { for tap in 0..<k {
            dw[(out * i + input) * k + tap] += tapMajorGradient[(tap * o + out) * i + input]
        } } }
        return inputGradient
    }
}
