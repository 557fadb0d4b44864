import Foundation
@testable import VAVLCore
import XCTest

/// Parity with PyTorch, layer by layer: outputs, input gradients and parameter gradients
/// against Tests/CoreTests/Fixtures/layers.h5 (see Scripts/reference/make_fixtures.py).
final class LayerParityTests: XCTestCase {
    func runCase(_ name: String, file: StaticString = #filePath, line: UInt = #line, build: (ParameterRegistry) -> any Layer) throws {
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
        let output = layer.forward(input, segments: segments, context).copied()
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

    func testLinear() throws {
        try runCase("linear") { LinearLayer($0, "", inputs: 8, outputs: 6, kernelDimension: false) }
    }

    func testPointwiseConvolution() throws {
        try runCase("pointwise_conv") { LinearLayer($0, "", inputs: 6, outputs: 10, kernelDimension: true) }
    }

    func testLayerNorm() throws { try runCase("layer_norm") { LayerNorm($0, "", channels: 10) } }

    func testTemporalConvolution() throws {
        try runCase("temporal_conv") { TemporalConvolution($0, "", inputs: 8, outputs: 5, kernelSize: 5) }
    }

    func testDepthwiseConvolution() throws {
        for (name, kernel) in [("depthwise_conv", 7), ("depthwise_conv_k31", 31)] {
            try runCase(name) { DepthwiseConvolution($0, "", channels: 6, kernelSize: kernel) }
        }
    }

    func testActivations() throws {
        try runCase("glu") { _ in GLU() }
        try runCase("swish") { _ in Swish() }
        try runCase("relu") { _ in ReLUKernels() }
    }

    func testBatchNorm() throws {
        for name in ["batch_norm_train", "batch_norm_eval"] {
            try runCase(name) { BatchNorm($0, "", channels: 6) }
        }
    }

    func testRelativePositionAttention() throws {
        try runCase("mhsa") { RelativePositionAttention($0, "", channels: 16, heads: 2, attentionDropout: 0, outputDropout: 0) }
    }

    func testFeedForward() throws {
        try runCase("feed_forward") { FeedForward($0, "", channels: 16, expansion: 4, dropout: 0) }
    }

    func testConvolutionModule() throws {
        try runCase("conv_module") { ConvolutionModule($0, "", channels: 16, kernelSize: 7, dropout: 0) }
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
            try runCase(name) { ConformerBlock($0, "", conformerConfiguration(inputs: 16, blocks: 1)) }
        }
    }

    func testConformerEncoder() throws {
        try runCase("conformer_encoder") { ConformerEncoder($0, "", conformerConfiguration(inputs: 10, blocks: 2)) }
    }

    func testMeanPooling() throws { try runCase("mean_pool") { _ in MeanPooling() } }
}
