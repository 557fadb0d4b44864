@testable import VAVLCore
import XCTest

/// Finite-difference checks of every layer's backward on ragged batches that include a
/// one-frame utterance, in training mode with dropout on (the counter-based mask is a
/// fixed function of the keys, so the layer stays a deterministic function).
final class LayerGradientTests: XCTestCase {
    let segments = Segments(lengths: [6, 1, 9, 3])

    /// A `Layer` under the check, driven through the protocol alone.
    func make(columns: Int, outputColumns: Int, awayFromZero: Bool = false, mode: Mode = .training,
              layer build: (ParameterRegistry) -> any Layer) -> LayerUnderTest {
        make(columns: columns, outputColumns: outputColumns, awayFromZero: awayFromZero, mode: mode, operation: { registry in
            let layer = build(registry), segments = self.segments
            return ({ x, context in layer.forward(x, segments: segments, context) }, { dy, context in layer.backward(dy, context) })
        })
    }

    /// An operation that is not a `Layer` (Linear, Dropout), given as a forward and a backward.
    func make(columns: Int, outputColumns: Int, awayFromZero: Bool = false, mode: Mode = .training,
              operation build: (ParameterRegistry) -> (forward: (Matrix, RunContext) -> Matrix, backward: (Matrix, RunContext) -> Matrix?))
        -> LayerUnderTest {
        let registry = ParameterRegistry()
        let functions = build(registry)
        let store = ParameterStore(registry)
        store.initialize(seed: 3)
        GradientCheck.perturbParameters(store, seed: 5)
        let context = RunContext(store: store)
        context.mode = mode
        context.seed = 11
        context.useSequentialUtteranceKeys(count: segments.count)
        let input = GradientCheck.randomMatrix(rows: segments.totalRows, columns: columns, seed: 13, awayFromZero: awayFromZero)
        return LayerUnderTest(store: store, context: context, segments: segments, input: input, outputColumns: outputColumns,
                              forward: { functions.forward($0, context) }, backward: { functions.backward($0, context) })
    }

    func testLinear() {
        GradientCheck.assertPasses(make(columns: 5, outputColumns: 4, layer: {
            LinearLayer($0, "linear", inputs: 5, outputs: 4, kernelDimension: false)
        }), "Linear")
    }

    func testLayerNorm() {
        let layer = make(columns: 7, outputColumns: 7, layer: { LayerNorm($0, "norm", channels: 7) })
        GradientCheck.assertPasses(layer, "LayerNorm")
    }

    func testTemporalConvolution() {
        let layer = make(columns: 4, outputColumns: 3, layer: { TemporalConvolution($0, "proj", inputs: 4, outputs: 3, kernelSize: 5) })
        GradientCheck.assertPasses(layer, "TemporalConvolution")
    }

    func testDepthwiseConvolution() {
        for kernel in [3, 7, 31] {
            let layer = make(columns: 5, outputColumns: 5, layer: { DepthwiseConvolution($0, "depthwise", channels: 5, kernelSize: kernel) })
            GradientCheck.assertPasses(layer, "DepthwiseConvolution k=\(kernel)")
        }
    }

    func testActivations() {
        GradientCheck.assertPasses(make(columns: 6, outputColumns: 6, layer: { _ in Swish() }), "Swish")
        GradientCheck.assertPasses(make(columns: 6, outputColumns: 6, awayFromZero: true, layer: { _ in ReLUKernels() }), "ReLU")
        GradientCheck.assertPasses(make(columns: 8, outputColumns: 4, layer: { _ in GLU() }), "GLU")
    }

    func testBatchNormTrainingAndEvaluation() {
        for mode in [Mode.training, .evaluation] {
            let layer = make(columns: 5, outputColumns: 5, mode: mode, layer: { BatchNorm($0, "batchnorm", channels: 5) })
            GradientCheck.assertPasses(layer, "BatchNorm \(mode)")
        }
    }

    func testDropoutIsItsOwnBackward() {
        let layer = make(columns: 6, outputColumns: 6, operation: { registry in
            let dropout = Dropout(registry, "dropout", probability: 0.3)
            let output = Matrix(), dx = Matrix()
            return ({ x, context in
                output.copy(from: x)
                dropout.apply(output.data, columns: 6, segments: self.segments, context)
                return output
            }, { dy, context in
                dx.copy(from: dy)
                dropout.apply(dx.data, columns: 6, segments: self.segments, context)
                return dx
            })
        })
        GradientCheck.assertPasses(layer, "Dropout")
    }

    func testRelativePositionAttention() {
        let layer = make(columns: 8, outputColumns: 8, layer: {
            RelativePositionAttention($0, "mhsa", channels: 8, heads: 2, attentionDropout: 0.2, outputDropout: 0.1)
        })
        GradientCheck.assertPasses(layer, "RelativePositionAttention")
    }

    /// 6 channels reach only the scalar tails; with 16 (hidden 32) the dropout masks and the
    /// fused bias–Swish–dropout pass take their eight-lane paths.
    func testFeedForward() {
        for (channels, dropout) in [(6, Float(0.2)), (16, 0.3)] {
            let layer = make(columns: channels, outputColumns: channels, layer: {
                FeedForward($0, "ff1", channels: channels, expansion: 2, dropout: dropout)
            })
            GradientCheck.assertPasses(layer, "FeedForward, \(channels) channels")
        }
    }

    /// 6 channels: scalar tails only; 20: the depthwise convolution's sixteen-channel
    /// register blocks and its tail.
    func testConvolutionModule() {
        for (channels, kernel) in [(6, 5), (20, 7)] {
            let layer = make(columns: channels, outputColumns: channels, layer: {
                ConvolutionModule($0, "conv", channels: channels, kernelSize: kernel, dropout: 0.2)
            })
            GradientCheck.assertPasses(layer, "ConvolutionModule, \(channels) channels")
        }
    }

    func testConformerEncoder() {
        var config = ConformerConfiguration(inputs: 5)
        config.channels = 8
        config.heads = 2
        config.blocks = 2
        config.convolutionKernel = 5
        config.feedForwardExpansion = 2
        let layer = make(columns: 5, outputColumns: 8, layer: { ConformerEncoder($0, "encoder", config) })
        GradientCheck.assertPasses(layer, "ConformerEncoder", relativeTolerance: 3e-2, absoluteTolerance: 6e-3)
    }

    func testMeanPooling() {
        GradientCheck.assertPasses(make(columns: 4, outputColumns: 4, layer: { _ in MeanPooling() }), "MeanPooling")
    }

    /// The checker must be able to fail: a LayerNorm whose backward drops the mean term, and
    /// a Swish whose backward forgets the x σ'(x) term, are both caught.
    func testCheckerCatchesWrongGradients() {
        let wrongSwish = make(columns: 6, outputColumns: 6, operation: { _ in
            let layer = Swish()
            let dx = Matrix()
            var saved: Matrix?
            return ({ x, context in saved = x; return layer.forward(x, context) }, { dy, _ in
                dx.resize(rows: dy.rows, columns: dy.columns)
                for i in 0..<dy.count { dx.data[i] = dy.data[i] * sigmoid(saved!.data[i]) }  // missing term
                return dx
            })
        })
        XCTAssertFalse(GradientCheck.run(wrongSwish).failures.isEmpty, "a wrong Swish backward passed the check")
        let wrongLinear = make(columns: 5, outputColumns: 4, operation: { registry in
            let linear = Linear(registry, "linear", inputs: 5, outputs: 4, initialization: .pytorchDefault)
            let output = Matrix(), dx = Matrix()
            var saved: Matrix?
            return ({ x, context in
                saved = x
                output.resize(rows: x.rows, columns: 4)
                linear.forward(output.data, x.data, rows: x.rows, context.store)
                return output
            }, { dy, context in
                dx.resize(rows: dy.rows, columns: 5)
                linear.backward(dx.data, dy.data, saved!.data, rows: dy.rows, context.store)
                context.store.gradient(linear.weight)[3] *= 1.05  // one weight gradient 5 % off
                return dx
            })
        })
        let report = GradientCheck.run(wrongLinear, samples: 400)
        XCTAssertFalse(report.failures.isEmpty, "a 5 % error in one weight gradient passed the check")
    }
}

/// The ReLU kernels the heads call (`Elementwise.reluForward` / `reluBackward`), wrapped as a
/// layer for the gradient and parity checks.
final class ReLUKernels: FrameLayer {
    let output = Matrix(), inputGradient = Matrix()
    private var input: Matrix?

    func forward(_ x: Matrix, _ context: RunContext) -> Matrix {
        input = x
        output.resize(rows: x.rows, columns: x.columns)
        Elementwise.reluForward(output.data, x.data, count: x.count)
        return output
    }

    func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let x = input!
        inputGradient.resize(rows: x.rows, columns: x.columns)
        Elementwise.reluBackward(inputGradient.data, dy.data, x.data, count: x.count)
        return inputGradient
    }
}

/// `Linear` (an operation on raw rows, not a `Layer`) wrapped as a layer for the checks.
final class LinearLayer: FrameLayer {
    let linear: Linear
    private let output = Matrix(), inputGradient = Matrix()
    private var input: Matrix?

    init(_ registry: ParameterRegistry, _ name: String, inputs: Int, outputs: Int, kernelDimension: Bool) {
        linear = Linear(registry, name, inputs: inputs, outputs: outputs, initialization: .pytorchDefault,
                        kernelDimension: kernelDimension)
    }

    func forward(_ x: Matrix, _ context: RunContext) -> Matrix {
        input = x
        output.resize(rows: x.rows, columns: linear.outputs)
        linear.forward(output.data, x.data, rows: x.rows, context.store)
        return output
    }

    func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        inputGradient.resize(rows: dy.rows, columns: linear.inputs)
        linear.backward(inputGradient.data, dy.data, input!.data, rows: dy.rows, context.store)
        return inputGradient
    }
}
