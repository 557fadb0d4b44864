/// Sizes and dropout rates of a Conformer encoder (DESIGN §2.3).
public struct ConformerConfiguration: Sendable, Equatable {
    public var inputs: Int
    public var channels: Int = 512
    public var heads: Int = 8
    public var blocks: Int = 3
    public var feedForwardExpansion: Int = 4
    public var convolutionKernel: Int = 31
    public var inputDropout: Float = 0.1
    public var feedForwardDropout: Float = 0.1
    public var attentionDropout: Float = 0.1
    public var attentionOutputDropout: Float = 0.1
    public var convolutionDropout: Float = 0.1
    public var layerNormEpsilon: Float = 1e-5
    public var batchNormEpsilon: Float = 1e-5
    public var batchNormMomentum: Float = 0.1

    public init(inputs: Int) { self.inputs = inputs }
}

/// Where a module on the residual stream writes its last pass: `target` = input + `scale` ·
/// module(input), the Conformer block's residual sum fused into the module's output dropout.
public struct ResidualSum {
    public var scale: Float
    public var target: Matrix

    public init(scale: Float, target: Matrix) {
        self.scale = scale
        self.target = target
    }
}

/// One macaron Conformer block:
/// x += ½ FF1(x);  x += MHSA(x);  x += Conv(x);  x += ½ FF2(x);  x = LayerNorm(x).
public final class ConformerBlock: Layer {
    public let feedForward1: FeedForward
    public let attention: RelativePositionAttention
    public let convolution: ConvolutionModule
    public let feedForward2: FeedForward
    public let norm: LayerNorm
    private let afterFeedForward1 = Matrix(), afterAttention = Matrix(), afterConvolution = Matrix()
    private let beforeNorm = Matrix()
    /// The running gradient of the residual stream, shared by every block (backward passes
    /// run one block at a time).
    private let sharedGradient: Matrix
    public let inputGradient = Matrix()

    public init(_ registry: ParameterRegistry, _ name: String, _ config: ConformerConfiguration) {
        sharedGradient = registry.workspace.matrix("conformer.gradient")
        let c = config.channels
        (feedForward1, attention, convolution, feedForward2, norm) = registry.scope(name) {
            (FeedForward(registry, "ff1", channels: c, expansion: config.feedForwardExpansion,
                         dropout: config.feedForwardDropout, epsilon: config.layerNormEpsilon),
             RelativePositionAttention(registry, "mhsa", channels: c, heads: config.heads,
                                       attentionDropout: config.attentionDropout,
                                       outputDropout: config.attentionOutputDropout, epsilon: config.layerNormEpsilon),
             ConvolutionModule(registry, "conv", channels: c, kernelSize: config.convolutionKernel,
                               dropout: config.convolutionDropout, epsilon: config.layerNormEpsilon,
                               batchNormEpsilon: config.batchNormEpsilon, batchNormMomentum: config.batchNormMomentum),
             FeedForward(registry, "ff2", channels: c, expansion: config.feedForwardExpansion,
                         dropout: config.feedForwardDropout, epsilon: config.layerNormEpsilon),
             LayerNorm(registry, "norm", channels: c, epsilon: config.layerNormEpsilon))
        }
    }

    /// The output matrix belongs to the block's final LayerNorm.
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        // Each module's last pass writes the residual sum itself.
        Profiler.measure(.feedForward) {
            _ = feedForward1.forward(x, segments: segments, context, residual: ResidualSum(scale: 0.5, target: afterFeedForward1))
        }
        Profiler.measure(.attention) {
            _ = attention.forward(afterFeedForward1, segments: segments, context, residual: ResidualSum(scale: 1, target: afterAttention))
        }
        Profiler.measure(.convolution) {
            _ = convolution.forward(afterAttention, segments: segments, context, residual: ResidualSum(scale: 1, target: afterConvolution))
        }
        Profiler.measure(.feedForward) {
            _ = feedForward2.forward(afterConvolution, segments: segments, context, residual: ResidualSum(scale: 0.5, target: beforeNorm))
        }
        return Profiler.measure(.normalization) { norm.forward(beforeNorm, context) }
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let gradient = sharedGradient
        Profiler.measure(.normalization) { norm.backward(dy, context, into: gradient, accumulating: false) }
        // Each module reads the residual stream's gradient first and adds its dx to it last;
        // the feed-forward modules enter the stream scaled by ½, so they see ½ of it.
        Profiler.measure(.feedForward) { feedForward2.backward(gradient, context, scale: 0.5, addingTo: gradient) }
        Profiler.measure(.convolution) { convolution.backward(gradient, context, addingTo: gradient) }
        Profiler.measure(.attention) { attention.backward(gradient, context, addingTo: gradient) }
        Profiler.measure(.feedForward) { feedForward1.backward(gradient, context, scale: 0.5, addingTo: gradient) }
        inputGradient.copy(from: gradient)
        return inputGradient
    }
}
