import BLAS

/// Conv1d I → O with an odd kernel K, no bias, "same" zero padding per utterance:
/// y[t, o] = Σ_k Σ_i W[o, i, k] x[t + k − K/2, i]. All taps of all frames are one product
/// Z = x W_allᵀ (N × K·O, W_all the K tap matrices stacked); each output row then sums its
/// K shifted rows of Z that stay inside its utterance. The backward scatters dy into dZ the
/// same way and makes two products, so the batch costs three large sgemm calls instead of
/// three per tap per utterance.
public final class TemporalConvolution: Layer {
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
    private let tapProducts = Matrix()     // Z (N, K·O): column block k is x W_kᵀ
    /// dZ of the backward, shared by every instance (one backward at a time).
    private let tapGradients: Matrix

    public init(_ registry: ParameterRegistry, _ name: String, inputs: Int, outputs: Int, kernelSize: Int) {
        tapGradients = registry.workspace.matrix("temporal.tapGradients")
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

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        let store = context.store
        input = x
        self.segments = segments
        let o = outputs, i = inputs, k = kernelSize, n = x.rows, width = k * o
        output.resize(rows: n, columns: o)
        let w = store.pointer(weight)
        for out in 0..<o { for input in 0..<i { for tap in 0..<k {
            tapMajorWeight[(tap * o + out) * i + input] = w[(out * i + input) * k + tap]
        } } }
        tapProducts.resize(rows: n, columns: width)
        tapMajorWeight.withUnsafeBufferPointer { wt in
            store.multiply(transposeB: .transposed, m: n, n: width, k: i, a: x.data, lda: i, b: .matrix(wt.baseAddress!), ldb: i,
                           c: tapProducts.data, ldc: width)
        }
        // y[t] = Σ_k Z[t + k − K/2, block k] over the taps whose source frame is inside the utterance.
        let z = tapProducts.data, y = output.data
        Parallel.chunks(segments.count, elementsPerItem: n / max(segments.count, 1) * o * k) { utterances in
            for utterance in utterances {
                let start = segments.start(utterance), length = segments.length(utterance)
                for t in 0..<length {
                    let yRow = y + (start + t) * o
                    yRow.update(repeating: 0, count: o)
                    for tap in 0..<k {
                        let source = t + tap - k / 2
                        guard source >= 0, source < length else { continue }
                        let zRow = z + (start + source) * width + tap * o
                        for out in 0..<o { yRow[out] += zRow[out] }
                    }
                }
            }
        }
        return output
    }

    /// dW += Σ dyᵀ x (per tap) and, unless `needsInputGradient` is false (the input is data),
    /// dx; returns dx (stale when not formed).
    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        backward(dy, context, needsInputGradient: true)
    }

    @discardableResult
    public func backward(_ dy: Matrix, _ context: RunContext, needsInputGradient: Bool) -> Matrix {
        let store = context.store
        let x = input!, o = outputs, i = inputs, k = kernelSize, n = x.rows, width = k * o
        // dZ[s, block k] = dy[s − (k − K/2)] where that output frame is inside the utterance, else 0.
        let dZ = tapGradients
        dZ.resize(rows: n, columns: width)
        let g = dZ.data
        Parallel.chunks(segments.count, elementsPerItem: n / max(segments.count, 1) * width) { utterances in
            for utterance in utterances {
                let start = segments.start(utterance), length = segments.length(utterance)
                for s in 0..<length {
                    let gRow = g + (start + s) * width
                    for tap in 0..<k {
                        let target = s - (tap - k / 2)
                        if target >= 0, target < length {
                            (gRow + tap * o).update(from: dy.data + (start + target) * o, count: o)
                        } else {
                            (gRow + tap * o).update(repeating: 0, count: o)
                        }
                    }
                }
            }
        }
        tapMajorWeight.withUnsafeBufferPointer { wt in
            tapMajorGradient.withUnsafeMutableBufferPointer { gt in
                // dx = dZ W_all;  dW_all = dZᵀ x.
                if needsInputGradient {
                    inputGradient.resize(rows: n, columns: i)
                    store.multiply(m: n, n: i, k: width, a: g, lda: width, b: .matrix(wt.baseAddress!), ldb: i,
                                   c: inputGradient.data, ldc: i)
                }
                store.multiply(transposeA: .transposed, m: width, n: i, k: n, a: g, lda: width, b: .matrix(x.data), ldb: i,
                               c: gt.baseAddress!, ldc: i)
            }
        }
        let dw = store.gradient(weight)
        for out in 0..<o { for input in 0..<i { for tap in 0..<k {
            dw[(out * i + input) * k + tap] += tapMajorGradient[(tap * o + out) * i + input]
        } } }
        return inputGradient
    }
}
