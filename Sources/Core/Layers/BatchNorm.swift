/// BatchNorm1d over the channels of a packed batch; statistics come from all valid frames
/// (never padding), optionally summed over ranks through `RunContext.reduceStatistics`.
///
/// Training: y = (x − μ_B)/√(σ²_B + ε) γ + β with the biased batch variance; running mean
/// and variance move by `momentum` towards μ_B and the unbiased variance (σ²_B when one
/// frame). Evaluation: the running statistics replace μ_B and σ²_B.
public final class BatchNorm: FrameLayer {
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let weight: Parameter  // (C)
    public let bias: Parameter    // (C)
    public let runningMean: Buffer  // (C)
    public let runningVariance: Buffer  // (C)
    public let batchesTracked: Counter
    public let output = Matrix()
    /// Shared by every instance (one backward at a time); read it before the next backward.
    private let sharedInputGradient: Matrix
    public var inputGradient: Matrix { sharedInputGradient }
    private var input: Matrix?
    private var savedMode: Mode = .training
    private let mean: UnsafeMutablePointer<Float>        // (C) statistics used by the last forward
    private let inverseStd: UnsafeMutablePointer<Float>  // (C)
    private var statistics: [Double]   // (2C + 1) scratch for sums and the reduction
    private var frameCount = 0.0       // global count of frames in the last training forward

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        sharedInputGradient = registry.workspace.matrix("batchnorm.inputGradient")
        self.channels = channels
        self.epsilon = epsilon
        self.momentum = momentum
        (weight, bias, runningMean, runningVariance, batchesTracked) = registry.scope(name) {
            (registry.parameter("weight", shape: [channels], initializer: .ones),
             registry.parameter("bias", shape: [channels], initializer: .zeros),
             registry.buffer("running_mean", shape: [channels], initialValue: 0),
             registry.buffer("running_var", shape: [channels], initialValue: 1),
             registry.counter("num_batches_tracked"))
        }
        mean = .allocate(capacity: channels)
        mean.initialize(repeating: 0, count: channels)
        inverseStd = .allocate(capacity: channels)
        inverseStd.initialize(repeating: 1, count: channels)
        statistics = [Double](repeating: 0, count: 2 * channels + 1)
    }

    deinit {
        mean.deallocate()
        inverseStd.deallocate()
    }

    public func forward(_ x: Matrix, _ context: RunContext) -> Matrix {
        let store = context.store, rows = x.rows, c = channels
        input = x
        savedMode = context.mode
        output.resize(rows: rows, columns: c)
        if context.mode == .training {
            computeBatchStatistics(x, context)
        } else {
            let rm = store.pointer(runningMean), rv = store.pointer(runningVariance)
            for i in 0..<c {
                mean[i] = rm[i]
                inverseStd[i] = 1 / (rv[i] + epsilon).squareRoot()
            }
        }
        let gamma = store.pointer(weight), beta = store.pointer(bias)
        let mu = mean, rstd = inverseStd, y = output.data
        Parallel.columnBlocks(c, rows: rows) { channels in
            for row in 0..<rows {
                let xRow = x.data + row * c, yRow = y + row * c
                for i in channels { yRow[i] = (xRow[i] - mu[i]) * rstd[i] * gamma[i] + beta[i] }
            }
        }
        return output
    }

    private func computeBatchStatistics(_ x: Matrix, _ context: RunContext) {
        let rows = x.rows, c = channels, store = context.store
        statistics.withUnsafeMutableBufferPointer { sums in
            sums.update(repeating: 0)
            // sums[0..<C] = Σx, sums[C..<2C] = Σx², sums[2C] = frame count; Double so that
            // the variance Σx²/n − μ² keeps its precision over thousands of frames.
            // Per-channel sums split over threads by channel: the same order as on one thread.
            let total = sums.baseAddress!
            Parallel.columnBlocks(c, rows: rows) { channels in
                for row in 0..<rows {
                    let xRow = x.data + row * c
                    for i in channels {
                        let value = Double(xRow[i])
                        total[i] += value
                        total[c + i] += value * value
                    }
                }
            }
            sums[2 * c] = Double(rows)
            context.reduceStatistics?(sums)
            let n = sums[2 * c]
            frameCount = n
            guard n > 0 else { return }
            let rm = store.pointer(runningMean), rv = store.pointer(runningVariance)
            let update = context.updatesRunningStatistics
            for i in 0..<c {
                let mu = sums[i] / n
                let variance = max(sums[c + i] / n - mu * mu, 0)
                mean[i] = Float(mu)
                inverseStd[i] = Float(1 / (variance + Double(epsilon)).squareRoot())
                if update {
                    let unbiased = n > 1 ? variance * n / (n - 1) : variance
                    rm[i] = (1 - momentum) * rm[i] + momentum * Float(mu)
                    rv[i] = (1 - momentum) * rv[i] + momentum * Float(unbiased)
                }
            }
            if update { store.counterValues[batchesTracked.index] += 1 }
        }
    }

    /// dγ += Σ dy x̂, dβ += Σ dy (local sums; the gradient allreduce makes them global), and
    /// dx = γ rstd (dy − Σdy/n − x̂ Σ(dy x̂)/n) with the sums over all ranks' frames in training.
    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let x = input!, rows = x.rows, c = channels, store = context.store
        inputGradient.resize(rows: rows, columns: c)
        let gamma = store.pointer(weight), dGamma = store.gradient(weight), dBeta = store.gradient(bias)
        statistics.withUnsafeMutableBufferPointer { sums in
            sums.update(repeating: 0)
            // sums[0..<C] = Σ dy, sums[C..<2C] = Σ dy x̂, split over threads by channel.
            let total = sums.baseAddress!
            let mu = mean, rstd = inverseStd
            Parallel.columnBlocks(c, rows: rows) { channels in
                for row in 0..<rows {
                    let xRow = x.data + row * c, gRow = dy.data + row * c
                    for i in channels {
                        let xhat = (xRow[i] - mu[i]) * rstd[i]
                        total[i] += Double(gRow[i])
                        total[c + i] += Double(gRow[i] * xhat)
                    }
                }
            }
            for i in 0..<c {
                dBeta[i] += Float(sums[i])
                dGamma[i] += Float(sums[c + i])
            }
            if savedMode == .evaluation {
                for row in 0..<rows {
                    let gRow = dy.data + row * c, dxRow = inputGradient.data + row * c
                    for i in 0..<c { dxRow[i] = gRow[i] * gamma[i] * inverseStd[i] }
                }
                return
            }
            sums[2 * c] = 0
            context.reduceStatistics?(sums)
            let n = frameCount
            guard n > 0 else { return }
            let dx = inputGradient.data
            Parallel.columnBlocks(c, rows: rows) { channels in
                for row in 0..<rows {
                    let xRow = x.data + row * c, gRow = dy.data + row * c, dxRow = dx + row * c
                    for i in channels {
                        let xhat = (xRow[i] - mu[i]) * rstd[i]
                        let meanDy = Float(total[i] / n), meanDyXhat = Float(total[c + i] / n)
                        dxRow[i] = gamma[i] * rstd[i] * (gRow[i] - meanDy - xhat * meanDyXhat)
                    }
                }
            }
        }
        return inputGradient
    }
}
