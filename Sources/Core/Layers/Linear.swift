import BLAS

/// `y = x Wᵀ + b` on the packed rows of a batch. Also serves as a pointwise (kernel-1)
/// Conv1d, whose PyTorch weight (O, I, 1) has the same memory layout as (O, I).
public struct Linear {
    public let inputs: Int
    public let outputs: Int
    public let weight: Parameter  // (O, I)
    public let bias: Parameter?   // (O)

    public enum Initialization { case xavier, pytorchDefault }

    public init(_ registry: ParameterRegistry, _ name: String, inputs: Int, outputs: Int, bias: Bool = true,
                initialization: Initialization, kernelDimension: Bool = false) {
        self.inputs = inputs
        self.outputs = outputs
        let weightInit: Initializer = initialization == .xavier
            ? .xavierUniform(fanIn: inputs, fanOut: outputs) : .pytorchDefault(fanIn: inputs)
        let biasInit: Initializer = initialization == .xavier ? .zeros : .pytorchDefault(fanIn: inputs)
        (weight, self.bias) = registry.scope(name) {
            (registry.parameter("weight", shape: kernelDimension ? [outputs, inputs, 1] : [outputs, inputs], initializer: weightInit),
             bias ? registry.parameter("bias", shape: [outputs], initializer: biasInit) : nil)
        }
    }

    /// y (N, O) = x (N, I) Wᵀ + b. With `addingBias: false` y = x Wᵀ only, for a caller
    /// that adds b in its own next pass over y (the feed-forward's Swish) instead of this
    /// one's extra pass (also the dropouts after linear maps, `Dropout.apply(…, adding:)`).
    ///
    /// `roundedInput`: x already rounded by the caller (bf16), kept for the backward.
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, _ store: ParameterStore,
                        addingBias: Bool = true, roundedInput: RoundedOperand? = nil) {
        if rows == 0 { return }
        let bias = addingBias ? self.bias : nil
        if let bias {
            let b = store.pointer(bias)
            for row in 0..<rows { (y + row * outputs).update(from: b, count: outputs) }
        }
        store.multiply(transposeB: .transposed, m: rows, n: outputs, k: inputs,
                       a: x, lda: inputs, roundedA: roundedInput, b: .parameter(weight), ldb: inputs,
                       beta: bias == nil ? 0 : 1, c: y, ldc: outputs)
    }

    /// b, for a caller that adds it itself after `forward(…, addingBias: false)`.
    @inline(__always) public func biasPointer(_ store: ParameterStore) -> UnsafePointer<Float>? {
        bias.map { UnsafePointer(store.pointer($0)) }
    }

    /// dW += dyᵀ x, db += Σ dy, and dx (N, I) = dy W (or += when `accumulate`).
    /// `roundedInput`: the forward's rounded x (bf16), if the caller kept it.
    public func backward(_ dx: UnsafeMutablePointer<Float>?, accumulate: Bool = false,
                         _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, _ store: ParameterStore,
                         roundedInput: RoundedOperand? = nil) {
        if rows == 0 { return }
        guard let dx else { return accumulateParameterGradients(dy, x, rows: rows, store, roundedInput: roundedInput, roundedDY: nil) }
        // In bf16, dy is rounded once for both products.
        store.withRoundedOperand(dy, rows: rows, columns: outputs, stride: outputs) { roundedDY in
            accumulateParameterGradients(dy, x, rows: rows, store, roundedInput: roundedInput, roundedDY: roundedDY)
            store.multiply(m: rows, n: inputs, k: outputs, a: dy, lda: outputs, roundedA: roundedDY, b: .parameter(weight), ldb: inputs,
                           beta: accumulate ? 1 : 0, c: dx, ldc: inputs)
        }
    }

    /// dW += dyᵀ x and db += Σ dy, with dy rounded by the caller or not.
    private func accumulateParameterGradients(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, _ store: ParameterStore,
                                              roundedInput: RoundedOperand?, roundedDY: RoundedOperand?) {
        store.multiply(transposeA: .transposed, m: outputs, n: inputs, k: rows,
                       a: dy, lda: outputs, roundedA: roundedDY, b: roundedInput.map { .rounded($0) } ?? .matrix(x), ldb: inputs, beta: 1, c: store.gradient(weight), ldc: inputs)
        if let bias {
            let db = store.gradient(bias), outputs = outputs
            Parallel.columnBlocks(outputs, rows: rows) { columns in
                for row in 0..<rows {
                    let dyRow = dy + row * outputs
                    for o in columns { db[o] += dyRow[o] }
                }
            }
        }
    }
}
