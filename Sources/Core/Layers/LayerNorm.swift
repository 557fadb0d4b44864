/// LayerNorm over the channels of each row: y = (x − μ) / √(σ² + ε) · γ + β.
public final class LayerNorm {
    public let channels: Int
    public let epsilon: Float
    public let weight: Parameter  // (C)
    public let bias: Parameter    // (C)
    public let output = Matrix()
    public let inputGradient = Matrix()
    private var input: Matrix?
    private var mean: [Float] = []     // (N) saved for backward
    private var inverseStd: [Float] = []  // (N)

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, epsilon: Float = 1e-5) {
        self.channels = channels
        self.epsilon = epsilon
        (weight, bias) = registry.scope(name) {
            (registry.parameter("weight", shape: [channels], initializer: .ones),
             registry.parameter("bias", shape: [channels], initializer: .zeros))
        }
    }

    public func forward(_ x: Matrix, _ store: ParameterStore) -> Matrix {
        input = x
        let rows = x.rows, c = channels
        output.resize(rows: rows, columns: c)
        if mean.count < rows {
            mean = [Float](repeating: 0, count: rows)
            inverseStd = [Float](repeating: 0, count: rows)
        }
        let gamma = store.pointer(weight), beta = store.pointer(bias)
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            inverseStd.withUnsafeMutableBufferPointer { stdBuffer in
              Parallel.chunks(rows, elementsPerItem: c) { range in
                for row in range {
                    let xRow = x.data + row * c, yRow = output.data + row * c
                    var sum: Float = 0
                    for i in 0..<c { sum += xRow[i] }
                    let mu = sum / Float(c)
                    var squares: Float = 0
                    for i in 0..<c { let d = xRow[i] - mu; squares += d * d }
                    let rstd = 1 / (squares / Float(c) + epsilon).squareRoot()
                    meanBuffer[row] = mu
                    stdBuffer[row] = rstd
                    for i in 0..<c { yRow[i] = (xRow[i] - mu) * rstd * gamma[i] + beta[i] }
                }
              }
            }
        }
        return output
    }

    /// dγ += Σ dy x̂, dβ += Σ dy, dx = rstd (dy γ − mean(dy γ) − x̂ mean(dy γ x̂)).
    public func backward(_ dy: Matrix, _ store: ParameterStore) -> Matrix {
        let x = input!, rows = x.rows, c = channels
        inputGradient.resize(rows: rows, columns: c)
        let gamma = store.pointer(weight), dGamma = store.gradient(weight), dBeta = store.gradient(bias)
        for row in 0..<rows {
            let xRow = x.data + row * c, gRow = dy.data + row * c, dxRow = inputGradient.data + row * c
            let mu = mean[row], rstd = inverseStd[row]
            var meanNorm: Float = 0, meanNormXhat: Float = 0
            for i in 0..<c {
                let xhat = (xRow[i] - mu) * rstd
                let dnorm = gRow[i] * gamma[i]
                meanNorm += dnorm
                meanNormXhat += dnorm * xhat
                dGamma[i] += gRow[i] * xhat
                dBeta[i] += gRow[i]
            }
            meanNorm /= Float(c)
            meanNormXhat /= Float(c)
            for i in 0..<c {
                let xhat = (xRow[i] - mu) * rstd
                dxRow[i] = rstd * (gRow[i] * gamma[i] - meanNorm - xhat * meanNormXhat)
            }
        }
        return inputGradient
    }
}
