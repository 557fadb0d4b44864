#if canImport(Glibc)
import Glibc
#endif

/// Adam over contiguous ranges of the flat buffers, with one step count per parameter, so
/// that the shared layers, updated in both unimodal phases, take two steps per iteration:
///   g ← g + λθ;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
///   θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
public final class Adam {
    public var configuration: AdamConfiguration
    public let store: ParameterStore
    /// First moments, same layout as the parameters.
    public let firstMoment: UnsafeMutablePointer<Float>
    /// Second moments, same layout as the parameters.
    public let secondMoment: UnsafeMutablePointer<Float>
    /// Step count of each parameter, indexed like `store.parameters`.
    public var steps: [Int64]

    public init(store: ParameterStore, configuration: AdamConfiguration) {
        self.store = store
        self.configuration = configuration
        firstMoment = FloatBuffer.allocateZeroed(count: store.parameterCount)
        secondMoment = FloatBuffer.allocateZeroed(count: store.parameterCount)
        steps = [Int64](repeating: 0, count: store.parameters.count)
    }

    deinit {
        FloatBuffer.deallocate(firstMoment)
        FloatBuffer.deallocate(secondMoment)
    }

    /// Updates every parameter lying inside `range` (a phase group) from its gradient.
    public func step(_ range: Range<Int>) {
        defer { store.parametersChanged(range) }
        let lr = Double(configuration.learningRate), beta1 = configuration.beta1, beta2 = configuration.beta2
        let epsilon = configuration.epsilon, decay = configuration.weightDecay
        let theta = store.values, gradients = store.gradients, m = firstMoment, v = secondMoment
        for (index, parameter) in store.parameters.enumerated() where range.contains(parameter.offset) {
            precondition(parameter.range.upperBound <= range.upperBound, "\(parameter.name) straddles the phase range")
            steps[index] += 1
            let t = Double(steps[index])
            let stepSize = Float(lr / (1 - pow(Double(beta1), t)))
            let correction2 = Float((1 - pow(Double(beta2), t)).squareRoot())
            let first = parameter.range.lowerBound
            Parallel.chunks(parameter.range.count) { chunk in
                Self.update(first + chunk.lowerBound..<first + chunk.upperBound, theta: theta, gradients: gradients, m: m, v: v,
                            beta1: beta1, beta2: beta2, decay: decay, stepSize: stepSize, correction2: correction2, epsilon: epsilon)
            }
        }
    }

    /// The Adam update of elements `range`, eight lanes at a time: the compiler does not
    /// vectorise the scalar loop (it cannot prove the four buffers apart), which left Adam
    /// bound on scalar square roots and divisions. Lane operations are the scalar ones in the
    /// same order (no fused multiply-add), so the result is bit for bit the scalar loop's.
    @inline(__always)
    private static func update(_ range: Range<Int>, theta: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                               m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                               beta1: Float, beta2: Float, decay: Float, stepSize: Float, correction2: Float, epsilon: Float) {
        let b1 = SIMD8<Float>(repeating: beta1), b2 = SIMD8<Float>(repeating: beta2)
        let oneMinusB1 = SIMD8<Float>(repeating: 1 - beta1), oneMinusB2 = SIMD8<Float>(repeating: 1 - beta2)
        let decayLanes = SIMD8<Float>(repeating: decay), stepLanes = SIMD8<Float>(repeating: stepSize)
        let correctionLanes = SIMD8<Float>(repeating: correction2), epsilonLanes = SIMD8<Float>(repeating: epsilon)
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let parameter = Reductions.load(theta + i)
            let g = Reductions.load(gradients + i) + decayLanes * parameter
            let first = b1 * Reductions.load(m + i) + oneMinusB1 * g
            let second = b2 * Reductions.load(v + i) + oneMinusB2 * g * g
            Reductions.store(first, m + i)
            Reductions.store(second, v + i)
            Reductions.store(parameter - stepLanes * first / (second.squareRoot() / correctionLanes + epsilonLanes), theta + i)
            i += 8
        }
        while i < range.upperBound {
            let g = gradients[i] + decay * theta[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            theta[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + epsilon)
            i += 1
        }
    }
}
