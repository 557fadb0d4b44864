/// One modality's branch θ_a or θ_v (DESIGN §2.1): a temporal Conv1d d_m → proj_dim (no bias)
/// that makes each frame aware of its neighbours, then a Conformer encoder proj_dim → dim.
public final class ModalityBranch {
    public let projection: TemporalConvolution
    public let encoder: ConformerEncoder

    public init(_ registry: ParameterRegistry, _ name: String, inputs: Int, blocks: Int, _ config: VAVLConfiguration) {
        (projection, encoder) = registry.scope(name) {
            (TemporalConvolution(registry, "proj", inputs: inputs, outputs: config.projectionDimension,
                                 kernelSize: config.projectionKernel),
             ConformerEncoder(registry, "encoder", config.conformer(inputs: config.projectionDimension, blocks: blocks)))
        }
    }

    /// x (N, d_m) → (N, dim).
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        let projected = Profiler.measure(.projection) { projection.forward(x, segments: segments, context) }
        return encoder.forward(projected, segments: segments, context)
    }

    /// Accumulates parameter gradients; the input is data, so no input gradient is formed.
    public func backward(_ dy: Matrix, _ context: RunContext) {
        let dProjected = encoder.backward(dy, context)
        _ = Profiler.measure(.projection) { projection.backward(dProjected, context, needsInputGradient: false) }
    }
}

/// The shared layers θ_s (DESIGN §2.2): h = LayerNorm(shared(x) + x) (no `+ x` under the
/// no-residual ablation), applied to one modality at a time in training; a small AV
/// prediction runs both modalities' utterances in one pass (`VAVLModel.representBoth`).
public final class SharedEncoder: Layer {
    public let encoder: ConformerEncoder
    public let norm: LayerNorm
    public let residual: Bool
    private let sum = Matrix()
    public let inputGradient = Matrix()

    public init(_ registry: ParameterRegistry, _ config: VAVLConfiguration) {
        residual = config.residual
        (encoder, norm) = registry.scope("shared") {
            (ConformerEncoder(registry, "encoder", config.conformer(inputs: config.dim, blocks: config.sharedBlocks)),
             LayerNorm(registry, "norm", channels: config.dim, epsilon: config.layerNormEpsilon))
        }
    }

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        let shared = encoder.forward(x, segments: segments, context)
        sum.resize(rows: x.rows, columns: x.columns)
        if residual {
            Elementwise.addScaled(sum.data, shared.data, x.data, scale: 1, count: x.count)
        } else {
            sum.copy(from: shared)
        }
        return norm.forward(sum, context)
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let dSum = norm.backward(dy, context)
        let dx = encoder.backward(dSum, context)
        inputGradient.copy(from: dx)
        if residual { Elementwise.accumulate(inputGradient.data, dSum.data, count: dSum.count) }
        return inputGradient
    }
}

extension VAVLConfiguration {
    /// The Conformer sizes of one encoder of this model.
    public func conformer(inputs: Int, blocks: Int) -> ConformerConfiguration {
        var config = ConformerConfiguration(inputs: inputs)
        config.channels = dim
        config.heads = heads
        config.blocks = blocks
        config.feedForwardExpansion = feedForwardExpansion
        config.convolutionKernel = convolutionKernel
        config.inputDropout = inputDropout
        config.feedForwardDropout = feedForwardDropout
        config.attentionDropout = attentionDropout
        config.attentionOutputDropout = attentionOutputDropout
        config.convolutionDropout = convolutionDropout
        config.layerNormEpsilon = layerNormEpsilon
        config.batchNormEpsilon = batchNormEpsilon
        config.batchNormMomentum = batchNormMomentum
        return config
    }
}
