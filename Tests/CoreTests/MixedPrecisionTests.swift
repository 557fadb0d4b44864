import BLAS
import XCTest
@testable import VAVLCore

/// bf16 mixed precision against fp32: within the error bf16 rounding explains, and never
/// silently fp32.
///
/// The bound (docs/DESIGN.md §9.3). Rounding to nearest bf16 (8 significant bits) changes a
/// value by at most u = 2⁻⁸ of itself. A product of two rounded operands is then off by at
/// most (2u + u²)·|a||b|, and summing k products in fp32 adds at most k·2⁻²⁴ of the sum of
/// their magnitudes, so for C = A·B, elementwise,
///     |Ĉ − C| ≤ (2u + u² + k·2⁻²⁴·(1 + u)²) · (|A|·|B|).
/// Through a network the per-product errors add up along the chain of products a value
/// passes through; the model test bounds the normwise relative difference of each gradient
/// by that count of products times 2·(2u + u²) (forward and backward through each), with the
/// count taken from the model's depth.
final class MixedPrecisionTests: XCTestCase {
    private let u = 0x1p-8

    /// `source` rounded in a pass of its own in bf16; nil in fp32, which rounds nothing.
    private func separatelyRounded(_ store: ParameterStore, _ source: UnsafePointer<Float>, rows: Int, columns: Int) -> RoundedOperand? {
        store.precision == .bf16 ? RoundedOperand(source, rows: rows, columns: columns, stride: columns) : nil
    }

    /// The operands rounded by the passes that produce them (LayerNorm row by row, Swish a
    /// piece at a time, the feed-forward's hidden row by row) are bit for bit the separate
    /// rounding pass of the same values; fp32 rounds nothing.
    func testFusedRoundingEqualsASeparatePass() {
        func values(_ operand: RoundedOperand?) -> [UInt32] {
            guard let operand else { return [] }
            let count = operand.rows * operand.columns
            if let floats = operand.floats { return (0..<count).map { floats[$0].bitPattern } }
            return (0..<count).map { UInt32(operand.bits![$0]) }
        }
        let registry = ParameterRegistry()
        let norm = LayerNorm(registry, "norm", channels: 37)
        let swish = Swish()
        let store = ParameterStore(registry)
        store.initialize(seed: 3)
        GradientCheck.perturbParameters(store, seed: 4)
        let context = RunContext(store: store)
        for precision in [Precision.bf16, .fp32] {
            store.precision = precision
            for rows in [1, 9, 333] {
                let x = GradientCheck.randomMatrix(rows: rows, columns: 37, seed: UInt64(rows))
                // bf16 keeps only the rounded output (the fp32 one is empty); fp32 rounds nothing.
                let fusedOutput = norm.forward(x, context, roundingOutput: true)
                let fused = norm.roundedOutput
                XCTAssertEqual(fused == nil, precision == .fp32)
                XCTAssertEqual(fusedOutput.rows, precision == .fp32 ? rows : 0, "LayerNorm's fp32 output, \(precision)")
                let normalized = norm.forward(x, context, roundingOutput: false)
                let separate = separatelyRounded(store, normalized.data, rows: rows, columns: 37)
                XCTAssertEqual(values(fused), values(separate), "LayerNorm, \(rows) rows, \(precision)")
                XCTAssertEqual(swish.forward(x, context, roundingOutput: true).rows, precision == .fp32 ? rows : 0)
                let fusedSwish = swish.roundedOutput
                let activated = swish.forward(x, context, roundingOutput: false)
                XCTAssertEqual(values(fusedSwish), values(separatelyRounded(store, activated.data, rows: rows, columns: 37)),
                               "Swish, \(rows) rows, \(precision)")
            }
        }
        // The feed-forward module's hidden activations (bias, Swish and dropout fused, then rounded).
        let ffRegistry = ParameterRegistry()
        let module = FeedForward(ffRegistry, "ff", channels: 16, expansion: 4, dropout: 0.2)
        let ffStore = ParameterStore(ffRegistry)
        ffStore.initialize(seed: 5)
        ffStore.precision = .bf16
        let ffContext = RunContext(store: ffStore)
        let segments = Segments(lengths: [5, 11])
        ffContext.useSequentialUtteranceKeys(count: 2)
        ffContext.mode = .training
        _ = module.forward(GradientCheck.randomMatrix(rows: 16, columns: 16, seed: 6), segments: segments, ffContext)
        // bf16 keeps only the rounded copy; the same row formula, then one separate rounding.
        XCTAssertEqual(module.hiddenForTesting.rows, 0, "bf16 stores no fp32 hidden activations")
        let expected = Matrix(rows: 16, columns: 64), pre = module.preActivationForTesting.data
        let bias = module.linear1.biasPointer(ffStore)!
        let masks = Matrix(rows: 16, columns: 64)
        module.hiddenDropout.forEachRow(columns: 64, segments: segments, ffContext) { row, multipliers in
            for i in 0..<64 {
                expected.data[row * 64 + i] = FastMath.swish(pre[row * 64 + i] + bias[i]) * multipliers![i]
                masks.data[row * 64 + i] = multipliers![i]
            }
        }
        XCTAssertTrue(masks.array.contains(0), "the dropout was active")
        XCTAssertEqual(values(module.roundedHiddenForTesting), values(separatelyRounded(ffStore, expected.data, rows: 16, columns: 64)))
    }

    func testLinearForwardAndBackwardStayWithinTheRoundingBound() {
        let registry = ParameterRegistry()
        let linear = Linear(registry, "linear", inputs: 300, outputs: 70, initialization: .xavier)
        let store = ParameterStore(registry)
        store.initialize(seed: 9)
        let rows = 520
        let x = GradientCheck.randomMatrix(rows: rows, columns: 300, seed: 1)
        let dy = GradientCheck.randomMatrix(rows: rows, columns: 70, seed: 2)
        func run(_ precision: Precision) -> (y: [Float], dx: [Float], dw: [Float]) {
            store.precision = precision
            store.zeroGradients()
            let y = Matrix(rows: rows, columns: 70), dx = Matrix(rows: rows, columns: 300)
            linear.forward(y.data, x.data, rows: rows, store, addingBias: false)
            linear.backward(dx.data, dy.data, x.data, rows: rows, store)
            return (y.array, dx.array, store.gradientArray(linear.weight))
        }
        let half = run(.bf16), full = run(.fp32)
        let w = store.valuesArray(linear.weight)
        // Each result element against the exact product in Double, with the bound above.
        func check(_ name: String, _ result: [Float], rows m: Int, columns n: Int, k: Int,
                   _ left: (Int, Int) -> Float, _ right: (Int, Int) -> Float) {
            var worst = 0.0
            for i in stride(from: 0, to: m, by: 13) {
                for j in 0..<n {
                    var exact = 0.0, magnitude = 0.0
                    for p in 0..<k {
                        exact += Double(left(i, p)) * Double(right(p, j))
                        magnitude += abs(Double(left(i, p)) * Double(right(p, j)))
                    }
                    let bound = (2 * u + u * u + Double(k) * 0x1p-24 * (1 + u) * (1 + u)) * magnitude
                    worst = max(worst, abs(Double(result[i * n + j]) - exact) / bound)
                }
            }
            XCTAssertLessThanOrEqual(worst, 1, "\(name): error beyond the bf16 bound")
        }
        check("y = x Wᵀ", half.y, rows: rows, columns: 70, k: 300, { x[$0, $1] }, { w[$1 * 300 + $0] })
        check("dx = dy W", half.dx, rows: rows, columns: 300, k: 70, { dy[$0, $1] }, { w[$0 * 300 + $1] })
        check("dW = dyᵀ x", half.dw, rows: 70, columns: 300, k: rows, { dy[$1, $0] }, { x[$0, $1] })
        // Not fp32 in disguise: most elements differ from the fp32 products.
        for (name, a, b) in [("y", half.y, full.y), ("dx", half.dx, full.dx), ("dW", half.dw, full.dw)] {
            let differing = zip(a, b).filter { $0 != $1 }.count
            XCTAssertGreaterThan(differing, a.count / 2, "\(name): bf16 results equal the fp32 ones")
        }
    }

    /// Every phase's gradients of a tiny model (all layer kinds: projections, attention,
    /// convolutions, heads) in bf16 against fp32, from the same weights and batch.
    func testModelGradientsInEveryPhaseStayWithinTheBound() throws {
        for phase in Phase.allCases {
            var gradients: [Precision: [Float]] = [:], predictions: [Precision: [Float]] = [:]
            var model: VAVLModel!
            for precision in Precision.allCases {
                var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
                config.precision = precision
                config.phaseOrder = [phase]
                config.learningRate = 0  // keep the weights: only the gradients are compared
                model = VAVLModel(config)
                model.initialize(seed: 3)
                let trainer = AlgorithmOne(model: model)
                let batch = mixedBatch(audioDimension: 5, videoDimension: 4, labels: Matrix(rows: 5, columns: 3, values: [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6, 0.5, 0.25, 0.25, 0.1, 0.1, 0.8]), seed: 1)
                try trainer.iterate(batch, counts: batch.localCounts, iteration: 0)
                gradients[precision] = Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.parameterCount))
                let context = RunContext(store: model.store)
                predictions[precision] = model.predict(audio: (batch.audio.features, batch.audio.segments),
                                                       video: nil, context).array
            }
            // Products along the longest path: projection, per block (feed-forward 2, attention
            // 5, convolution 2, feed-forward 2) over the branch and shared blocks, head 3.
            let config = model.configuration
            let blocks = max(config.acousticBlocks, config.visualBlocks) + config.sharedBlocks
            let chain = Double(1 + 11 * blocks + 3)
            let bound = chain * 2 * (2 * u + u * u)
            var checked = 0, worst = 0.0
            for parameter in model.store.parameters where model.groups.range(phase).contains(parameter.offset) {
                let a = gradients[.bf16]![parameter.range], b = gradients[.fp32]![parameter.range]
                let norm = sqrt(b.reduce(0) { $0 + Double($1) * Double($1) })
                guard norm > 1e-6 else { continue }  // e.g. mhsa.key.bias, exactly 0 in theory
                let difference = sqrt(zip(a, b).reduce(0) { $0 + pow(Double($1.0) - Double($1.1), 2) })
                XCTAssertLessThanOrEqual(difference / norm, bound, "\(phase) \(parameter.name)")
                worst = max(worst, difference / norm)
                checked += 1
            }
            XCTAssertGreaterThanOrEqual(checked, phase == .audioVisual ? 6 : 20, "\(phase): too few gradients compared")
            print("bf16 vs fp32, \(phase): largest gradient difference \(String(format: "%.2e", worst)) of its norm (bound \(String(format: "%.2e", bound)))")
            // bf16 is really applied: the phase's gradients differ beyond fp32 reordering noise.
            let range = model.groups.range(phase)
            let a = gradients[.bf16]![range], b = gradients[.fp32]![range]
            let relative = sqrt(zip(a, b).reduce(0) { $0 + pow(Double($1.0) - Double($1.1), 2) })
                / sqrt(b.reduce(0) { $0 + Double($1) * Double($1) })
            XCTAssertGreaterThan(relative, 1e-4, "\(phase): bf16 gradients are fp32's")
            let p = predictions[.bf16]!, q = predictions[.fp32]!
            XCTAssertNotEqual(p, q, "bf16 predictions equal the fp32 ones")
            for (x, y) in zip(p, q) { XCTAssertEqual(x, y, accuracy: Float(bound) * max(1, abs(y))) }
        }
    }

    /// The hardware path (where the CPU has one) and the emulated path multiply the same
    /// rounded operands: a whole model step differs only by fp32 accumulation order.
    func testHardwareAndEmulatedPathsAgreeOnAModelStep() throws {
        guard MatrixEngine.hardwarePath != .emulated else {
            throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512-BF16: only the emulated path exists")
        }
        var results: [[Float]] = []
        for emulate in [false, true] {
            var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
            config.precision = .bf16
            config.learningRate = 0
            config.phaseOrder = [.acoustic]
            let model = VAVLModel(config)
            model.initialize(seed: 3)
            let trainer = AlgorithmOne(model: model)
            let batch = mixedBatch(audioDimension: 5, videoDimension: 4, labels: Matrix(rows: 5, columns: 3, values: [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6, 0.5, 0.25, 0.25, 0.1, 0.1, 0.8]), seed: 1)
            _ = try MatrixEngine.with(emulate ? .emulated : .onednn) {
                try trainer.iterate(batch, counts: batch.localCounts, iteration: 0)
            }
            results.append(Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.parameterCount)))
        }
        let norm = sqrt(results[1].reduce(0) { $0 + Double($1) * Double($1) })
        let difference = sqrt(zip(results[0], results[1]).reduce(0) { $0 + pow(Double($1.0) - Double($1.1), 2) })
        // fp32 reordering alone, amplified where a one-ulp change flips a later bf16 rounding:
        // far below the bf16-vs-fp32 differences of the test above.
        XCTAssertLessThan(difference / norm, 1e-2, "\(MatrixEngine.hardwarePath) vs emulated")
    }

    /// bf16 keeps its rounded operands' storage from step to step: a second step on the same
    /// batch allocates none (the layers refill theirs, the store recycles the temporaries)
    /// and gives the first step's gradients bit for bit.
    func testRoundedOperandsAreReusedFromStepToStep() throws {
        var config = VAVLConfiguration.tiny(audio: 5, video: 4, outputs: 3)
        config.precision = .bf16
        config.learningRate = 0
        // The unimodal phases only: the audio-visual phase evaluates the branches with
        // running statistics, which the first step updates.
        config.phaseOrder = [.acoustic, .visual]
        let model = VAVLModel(config)
        model.initialize(seed: 3)
        let trainer = AlgorithmOne(model: model)
        let batch = mixedBatch(audioDimension: 5, videoDimension: 4, labels: Matrix(rows: 5, columns: 3, values: [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6, 0.5, 0.25, 0.25, 0.1, 0.1, 0.8]), seed: 1)
        func step() throws -> (gradients: [Float], hidden: RoundedOperand?, storage: UnsafeMutableRawPointer?, held: [UInt]) {
            try trainer.iterate(batch, counts: batch.localCounts, iteration: 0)
            let hidden = model.acoustic.encoder.blocks[0].feedForward1.roundedHiddenForTesting
            return (Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.parameterCount)), hidden,
                    hidden.flatMap { UnsafeMutableRawPointer($0.floats) ?? UnsafeMutableRawPointer($0.bits) },
                    model.store.temporaryOperands.heldStorage)
        }
        let first = try step(), second = try step()
        XCTAssertNotNil(first.hidden, "bf16 keeps the hidden activations rounded")
        XCTAssertTrue(first.hidden === second.hidden && first.storage == second.storage, "the feed-forward refills its operand")
        XCTAssertFalse(first.held.isEmpty, "products rounded temporaries")
        XCTAssertEqual(second.held, first.held, "the temporaries' storage was reused, not allocated again")
        XCTAssertEqual(second.gradients, first.gradients)
        // And the reused storage gives what fresh storage gives: a new model's first step.
        let fresh = VAVLModel(config)
        fresh.initialize(seed: 3)
        try AlgorithmOne(model: fresh).iterate(batch, counts: batch.localCounts, iteration: 0)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: fresh.store.gradients, count: fresh.store.parameterCount)), second.gradients)
    }

    /// The store's temporaries: a use takes the smallest free operand that fits, or grows the
    /// largest; however the sizes vary, the list holds as many operands as were in use at once.
    func testTemporaryOperandsStayAsManyAsWereInUseAtOnce() {
        let temporaries = TemporaryOperands()
        for (rows, columns) in [(10, 10), (3, 7), (40, 5), (1, 1), (12, 12)] {
            temporaries.with(rows: rows, columns: columns) { operand in
                XCTAssertEqual(operand.rows * operand.columns, rows * columns)
                XCTAssertGreaterThanOrEqual(operand.capacity, rows * columns)
            }
        }
        XCTAssertEqual(temporaries.heldValues, 200, "one operand, grown to the largest use (40 × 5)")
        temporaries.with(rows: 20, columns: 20) { outer in
            temporaries.with(rows: 2, columns: 2) { inner in XCTAssertFalse(inner === outer) }
        }
        XCTAssertEqual(temporaries.heldValues, 400 + 4, "two operands, as two were in use at once")
        temporaries.with(rows: 2, columns: 1) { XCTAssertEqual($0.capacity, 4, "the smallest that fits") }
    }
}
