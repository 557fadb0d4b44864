import Foundation
@testable import VAVLCore
import XCTest

/// Parity with PyTorch, layer by layer: outputs, input gradients and parameter gradients
/// against Tests/CoreTests/Fixtures/layers.h5 (see Scripts/reference/make_fixtures.py).
final class LayerParityTests: XCTestCase {
    typealias Built = (forward: (Matrix, Segments, RunContext) -> Matrix, backward: (Matrix, RunContext) -> Matrix)

    func runCase(_ name: String, file: StaticString = #filePath, line: UInt = #line, build: (ParameterRegistry) -> Built) throws {
        let fixture = try Fixture("layers.h5")
        let registry = ParameterRegistry()
        let layer = registry.scope("m") { build(registry) }
        let store = ParameterStore(registry)
        let config = try JSONSerialization.jsonObject(with: Data(try fixture.group(name).stringAttribute("config").utf8)) as? [String: Any]
        let parameterNames = try fixture.names("\(name)/params")
        XCTAssertEqual(Set(parameterNames.map { "m." + $0 }), Set(store.parameters.map(\.name)),
                       "\(name): parameter names differ from the reference", file: file, line: line)
        for parameterName in parameterNames {
            guard let parameter = store.parameter(named: "m." + parameterName) else { continue }
            store.setValues(parameter, try fixture.floats("\(name)/params/\(parameterName)"))
        }
        func loadBuffers(_ group: String) throws {
            for bufferName in try fixture.names("\(name)/\(group)") {
                let path = "\(name)/\(group)/\(bufferName)"
                if let counter = store.counter(named: "m." + bufferName) {
                    store.counterValues[counter.index] = try fixture.integers(path)[0]
                } else if let buffer = store.buffer(named: "m." + bufferName) {
                    store.setValues(buffer, try fixture.floats(path))
                } else {
                    XCTFail("\(name): unknown buffer \(bufferName)", file: file, line: line)
                }
            }
        }
        try loadBuffers("buffers_before")
        let context = RunContext(store: store)
        context.mode = (config?["mode"] as? String) == "eval" ? .evaluation : .training
        let segments = try fixture.segments("\(name)/offsets")
        context.useSequentialUtteranceKeys(count: segments.count)
        let input = try fixture.matrix("\(name)/input")

        var comparison = TensorComparison()
        let output = layer.forward(input, segments, context).copied()
        comparison.compare("\(name).output", output.array, try fixture.floats("\(name)/output"), file: file, line: line)
        for bufferName in try fixture.names("\(name)/buffers_after") {
            let path = "\(name)/buffers_after/\(bufferName)"
            if let counter = store.counter(named: "m." + bufferName) {
                XCTAssertEqual(store.counterValues[counter.index], try fixture.integers(path)[0], "\(name): \(bufferName)",
                               file: file, line: line)
            } else if let buffer = store.buffer(named: "m." + bufferName) {
                comparison.compare("\(name).\(bufferName)", Array(UnsafeBufferPointer(start: store.pointer(buffer), count: buffer.count)),
                                   try fixture.floats(path), file: file, line: line)
            }
        }
        store.zeroGradients()
        let gradOutput = try fixture.matrix("\(name)/grad_output")
        let gradInput = layer.backward(gradOutput, context)
        comparison.compare("\(name).grad_input", gradInput.array, try fixture.floats("\(name)/grad_input"), file: file, line: line)
        for parameterName in parameterNames {
            guard let parameter = store.parameter(named: "m." + parameterName) else { continue }
            // mhsa.key.bias has an exactly-zero true gradient (the softmax cancels a per-query
            // constant): both sides hold rounding noise, compared against an absolute floor.
            comparison.compare("\(name).grad.\(parameterName)", store.gradientArray(parameter),
                               try fixture.floats("\(name)/grads/\(parameterName)"),
                               absolute: parameterName.hasSuffix("key.bias") ? 2e-6 : 0, file: file, line: line)
        }
        comparison.report(name)
    }

    /// A stateless wrapper for layers that take raw pointers (Linear).
    func linearCase(inputs: Int, outputs: Int, kernelDimension: Bool) -> (ParameterRegistry) -> Built {
        { registry in
            let linear = Linear(registry, "", inputs: inputs, outputs: outputs, initialization: .pytorchDefault,
                                kernelDimension: kernelDimension)
            let y = Matrix(), dx = Matrix()
            var saved: Matrix?
            return ({ x, _, context in
                saved = x
                y.resize(rows: x.rows, columns: outputs)
                linear.forward(y.data, x.data, rows: x.rows, context.store)
                return y
            }, { dy, context in
                dx.resize(rows: dy.rows, columns: inputs)
                linear.backward(dx.data, dy.data, saved!.data, rows: dy.rows, context.store)
                return dx
            })
        }
    }

    func testLinear() throws { try runCase("linear", build: linearCase(inputs: 8, outputs: 6, kernelDimension: false)) }
    func testPointwiseConvolution() throws {
        try runCase("pointwise_conv", build: linearCase(inputs: 6, outputs: 10, kernelDimension: true))
    }

    func testLayerNorm() throws {
        try runCase("layer_norm") { registry in
            let norm = LayerNorm(registry, "", channels: 10)
            return ({ x, _, context in norm.forward(x, context.store) }, { dy, context in norm.backward(dy, context.store) })
        }
    }

    func testTemporalConvolution() throws {
        try runCase("temporal_conv") { registry in
            let conv = TemporalConvolution(registry, "", inputs: 8, outputs: 5, kernelSize: 5)
            return ({ x, s, context in conv.forward(x, segments: s, context.store) }, { dy, context in conv.backward(dy, context.store) })
        }
    }

    func testDepthwiseConvolution() throws {
        for (name, kernel) in [("depthwise_conv", 7), ("depthwise_conv_k31", 31)] {
            try runCase(name) { registry in
                let conv = DepthwiseConvolution(registry, "", channels: 6, kernelSize: kernel)
                return ({ x, s, context in conv.forward(x, segments: s, context.store) }, { dy, context in conv.backward(dy, context.store) })
            }
        }
    }

    func testActivations() throws {
        try runCase("glu") { _ in
            let glu = GLU()
            return ({ x, _, _ in glu.forward(x) }, { dy, _ in glu.backward(dy) })
        }
        try runCase("swish") { _ in
            let swish = Swish()
            return ({ x, _, _ in swish.forward(x) }, { dy, _ in swish.backward(dy) })
        }
        try runCase("relu") { _ in
            let relu = ReLUKernels()
            return ({ x, _, _ in relu.forward(x) }, { dy, _ in relu.backward(dy) })
        }
    }

    func testBatchNorm() throws {
        for name in ["batch_norm_train", "batch_norm_eval"] {
            try runCase(name) { registry in
                let norm = BatchNorm(registry, "", channels: 6)
                return ({ x, _, context in norm.forward(x, context) }, { dy, context in norm.backward(dy, context) })
            }
        }
    }

    func testRelativePositionAttention() throws {
        try runCase("mhsa") { registry in
            let attention = RelativePositionAttention(registry, "", channels: 16, heads: 2, attentionDropout: 0, outputDropout: 0)
            return ({ x, s, context in attention.forward(x, segments: s, context) }, { dy, context in attention.backward(dy, context) })
        }
    }

    func testFeedForward() throws {
        try runCase("feed_forward") { registry in
            let module = FeedForward(registry, "", channels: 16, expansion: 4, dropout: 0)
            return ({ x, s, context in module.forward(x, segments: s, context) }, { dy, context in module.backward(dy, context) })
        }
    }

    func testConvolutionModule() throws {
        try runCase("conv_module") { registry in
            let module = ConvolutionModule(registry, "", channels: 16, kernelSize: 7, dropout: 0)
            return ({ x, s, context in module.forward(x, segments: s, context) }, { dy, context in module.backward(dy, context) })
        }
    }

    func conformerConfiguration(inputs: Int, blocks: Int) -> ConformerConfiguration {
        var config = ConformerConfiguration(inputs: inputs)
        config.channels = 16
        config.heads = 2
        config.blocks = blocks
        config.convolutionKernel = 7
        config.feedForwardExpansion = 4
        config.inputDropout = 0
        config.feedForwardDropout = 0
        config.attentionDropout = 0
        config.attentionOutputDropout = 0
        config.convolutionDropout = 0
        return config
    }

    func testConformerBlock() throws {
        for name in ["conformer_block", "conformer_block_eval"] {
            try runCase(name) { registry in
                let block = ConformerBlock(registry, "", conformerConfiguration(inputs: 16, blocks: 1))
                return ({ x, s, context in block.forward(x, segments: s, context) }, { dy, context in block.backward(dy, context) })
            }
        }
    }

    func testConformerEncoder() throws {
        try runCase("conformer_encoder") { registry in
            let encoder = ConformerEncoder(registry, "", conformerConfiguration(inputs: 10, blocks: 2))
            return ({ x, s, context in encoder.forward(x, segments: s, context) }, { dy, context in encoder.backward(dy, context) })
        }
    }

    func testMeanPooling() throws {
        try runCase("mean_pool") { _ in
            let pooling = MeanPooling()
            return ({ x, s, _ in pooling.forward(x, segments: s) }, { dy, _ in pooling.backward(dy) })
        }
    }
}
