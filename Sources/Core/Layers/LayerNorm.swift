/// LayerNorm over the channels of each row: y = (x − μ) / √(σ² + ε) · γ + β.
public final class LayerNorm: FrameLayer {
    public let channels: Int
    public let epsilon: Float
    public let weight: Parameter  // (C)
    public let bias: Parameter    // (C)
    public let output = Matrix()
    public let inputGradient = Matrix()
    private var input: Matrix?
    private var mean: [Float] = []     // (N) saved for backward
    private var inverseStd: [Float] = []  // (N)
    /// (chunks − 1, 2C): dγ and dβ of the backward's chunks after the first (backward passes
    /// run one layer at a time, so one buffer serves all).
    private let partialGradients: Matrix

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, epsilon: Float = 1e-5) {
        partialGradients = registry.workspace.matrix("layernorm.partialGradients")
        self.channels = channels
        self.epsilon = epsilon
        (weight, bias) = registry.scope(name) {
            (registry.parameter("weight", shape: [channels], initializer: .ones),
             registry.parameter("bias", shape: [channels], initializer: .zeros))
        }
    }

    public func forward(_ x: Matrix, _ context: RunContext) -> Matrix { forward(x, context, roundingOutput: false) }

    /// The output rounded to bf16 by the last forward that was asked for it (bf16 only).
    public private(set) var roundedOutput: RoundedOperand?
    /// The storage `roundedOutput` is refilled in, kept across forwards.
    private var roundedStorage: RoundedOperand?

    /// With `roundingOutput`, in bf16 each row is rounded as it is computed, into
    /// ``roundedOutput`` (the operand of the products that follow): no separate pass, and
    /// no fp32 output either — the returned matrix is then empty (0 rows), as the products
    /// and their backward read the rounded operand alone (the backward needs only x).
    public func forward(_ x: Matrix, _ context: RunContext, roundingOutput: Bool) -> Matrix {
        input = x
        let store = context.store
        let rounded = roundingOutput ? store.operandToFill(rows: x.rows, columns: channels, storage: &roundedStorage) : nil
        roundedOutput = rounded
        let rows = x.rows, c = channels
        output.resize(rows: rounded == nil ? rows : 0, columns: c)
        if mean.count < rows {
            mean = [Float](repeating: 0, count: rows)
            inverseStd = [Float](repeating: 0, count: rows)
        }
        let gamma = store.pointer(weight), beta = store.pointer(bias)
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            inverseStd.withUnsafeMutableBufferPointer { stdBuffer in
              Parallel.chunks(rows, elementsPerItem: c) { range in
                // In bf16 with rounding, rows go through one row of scratch per piece.
                let scratch = rounded == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: c)
                defer { scratch?.deallocate() }
                for row in range {
                    let xRow = x.data + row * c, yRow = scratch ?? output.data + row * c
                    let mu = Reductions.sum(xRow, count: c) / Float(c)
                    let squares = Reductions.sumOfSquares(xRow, shift: mu, count: c)
                    let rstd = 1 / (squares / Float(c) + epsilon).squareRoot()
                    meanBuffer[row] = mu
                    stdBuffer[row] = rstd
                    for i in 0..<c { yRow[i] = (xRow[i] - mu) * rstd * gamma[i] + beta[i] }
                    rounded?.fill(yRow, at: row * c, count: c)
                }
              }
            }
        }
        return output
    }

    /// dγ += Σ dy x̂, dβ += Σ dy, dx = rstd (dy γ − mean(dy γ) − x̂ mean(dy γ x̂)).
    /// Rows are split over the rank's threads; each chunk but the first sums dγ, dβ into
    /// its own partial buffer, added in chunk order after.
    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        backward(dy, context, into: inputGradient, accumulating: false)
        return inputGradient
    }

    /// The backward with dx written into `target` (resized), or added to it with
    /// `accumulating` — a residual stream's gradient, saving the separate pass. `target` may
    /// not be `dy`.
    public func backward(_ dy: Matrix, _ context: RunContext, into target: Matrix, accumulating: Bool) {
        let store = context.store
        precondition(target !== dy, "LayerNorm's backward cannot write dx over dy")
        let x = input!, rows = x.rows, c = channels
        if accumulating {
            precondition(target.rows == rows && target.columns == c, "accumulating into a (\(target.rows), \(target.columns)) gradient")
        } else {
            target.resize(rows: rows, columns: c)
        }
        let gamma = store.pointer(weight), dGamma = store.gradient(weight), dBeta = store.gradient(bias)
        let pieces = Parallel.pieceCount(rows, elementsPerItem: c)
        partialGradients.resize(rows: pieces - 1, columns: 2 * c)
        let partials = partialGradients.data
        mean.withUnsafeBufferPointer { means in
            inverseStd.withUnsafeBufferPointer { inverseStds in
                Parallel.pieces(rows, elementsPerItem: c) { piece, range in
                    let gammaGradient = piece == 0 ? dGamma : partials + 2 * c * (piece - 1)
                    let betaGradient = piece == 0 ? dBeta : gammaGradient + c
                    if piece > 0 { gammaGradient.update(repeating: 0, count: 2 * c) }
                    Self.backwardRows(range, x: x.data, dy: dy.data, dx: target.data, accumulating: accumulating,
                                      channels: c, means: means.baseAddress!, inverseStds: inverseStds.baseAddress!,
                                      gamma: gamma, dGamma: gammaGradient, dBeta: betaGradient)
                }
            }
        }
        for piece in 1..<max(pieces, 1) {
            let partial = partials + 2 * c * (piece - 1)
            Elementwise.accumulate(dGamma, partial, count: c)
            Elementwise.accumulate(dBeta, partial + c, count: c)
        }
    }

    @inline(__always)
    private static func backwardRows(_ rows: Range<Int>, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>, accumulating: Bool, channels c: Int,
                                     means: UnsafePointer<Float>,
                                     inverseStds: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                     dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>) {
        for row in rows {
            let xRow = x + row * c, gRow = dy + row * c, dxRow = dx + row * c
            let mu = means[row], rstd = inverseStds[row]
            let muLanes = SIMD8<Float>(repeating: mu), rstdLanes = SIMD8<Float>(repeating: rstd)
            var normLanes = SIMD8<Float>.zero, normXhatLanes = SIMD8<Float>.zero
            var i = 0
            while i + 8 <= c {
                let g = Reductions.load(gRow + i)
                let xhat = (Reductions.load(xRow + i) - muLanes) * rstdLanes
                let dnorm = g * Reductions.load(gamma + i)
                normLanes += dnorm
                normXhatLanes.addProduct(dnorm, xhat)
                Reductions.store(Reductions.load(dGamma + i).addingProduct(g, xhat), dGamma + i)
                Reductions.store(Reductions.load(dBeta + i) + g, dBeta + i)
                i += 8
            }
            var meanNorm = normLanes.sum(), meanNormXhat = normXhatLanes.sum()
            while i < c {
                let xhat = (xRow[i] - mu) * rstd
                let dnorm = gRow[i] * gamma[i]
                meanNorm += dnorm
                meanNormXhat += dnorm * xhat
                dGamma[i] += gRow[i] * xhat
                dBeta[i] += gRow[i]
                i += 1
            }
            meanNorm /= Float(c)
            meanNormXhat /= Float(c)
            if accumulating {
                for i in 0..<c {
                    let xhat = (xRow[i] - mu) * rstd
                    dxRow[i] += rstd * (gRow[i] * gamma[i] - meanNorm - xhat * meanNormXhat)
                }
            } else {
                for i in 0..<c {
                    let xhat = (xRow[i] - mu) * rstd
                    dxRow[i] = rstd * (gRow[i] * gamma[i] - meanNorm - xhat * meanNormXhat)
                }
            }
        }
    }
}
