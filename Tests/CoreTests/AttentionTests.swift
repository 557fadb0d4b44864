@testable import VAVLCore
import XCTest

final class AttentionTests: XCTestCase {
    /// relshift as DESIGN §2.3 writes it: f = (i+1)·T + j, r = f div (T+1), c = f mod (T+1),
    /// P[i, j] = 0 if c = 0 else S[r, c − 1].
    func specRelativeShift(_ s: [Float], length t: Int) -> [Float] {
        var p = [Float](repeating: 0, count: t * t)
        for i in 0..<t {
            for j in 0..<t {
                let f = (i + 1) * t + j, r = f / (t + 1), c = f % (t + 1)
                p[i * t + j] = c == 0 ? 0 : s[r * t + c - 1]
            }
        }
        return p
    }

    func testRelativeShiftMatchesTheSpecFormulaForEveryLength() {
        for t in 1...13 {
            let s = (0..<(t * t)).map { Float($0) + 1 }
            var p = [Float](repeating: 0, count: t * t)
            s.withUnsafeBufferPointer { source in
                p.withUnsafeMutableBufferPointer { target in
                    RelativePositionAttention.addRelativeShift(target.baseAddress!, source.baseAddress!, length: t)
                }
            }
            XCTAssertEqual(p, specRelativeShift(s, length: t), "T = \(t)")
        }
    }

    /// ⟨relshift(S), G⟩ = ⟨S, relshiftᵀ(G)⟩ for random S and G: the backward scatter is the
    /// exact transpose of the forward gather.
    func testRelativeShiftTransposeIsTheAdjoint() {
        var generator = SplitMix64(seed: 1)
        for t in [1, 2, 5, 9] {
            let s = (0..<(t * t)).map { _ in generator.normal() }
            let g = (0..<(t * t)).map { _ in generator.normal() }
            var p = [Float](repeating: 0, count: t * t), ds = [Float](repeating: 0, count: t * t)
            s.withUnsafeBufferPointer { source in
                p.withUnsafeMutableBufferPointer { RelativePositionAttention.addRelativeShift($0.baseAddress!, source.baseAddress!, length: t) }
            }
            g.withUnsafeBufferPointer { source in
                ds.withUnsafeMutableBufferPointer {
                    RelativePositionAttention.addRelativeShiftTranspose($0.baseAddress!, source.baseAddress!, length: t)
                }
            }
            let left = zip(p, g).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            let right = zip(s, ds).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            XCTAssertEqual(left, right, accuracy: 1e-4, "T = \(t)")
        }
    }

    /// relshift a block of rows at a time, from the block's rows of S (and the next one),
    /// stitches to the whole relshift, for every length and block size.
    func testRelativeShiftInBlocksOfRowsStitchesToTheWhole() {
        for t in 1...13 {
            let s = (0..<(t * t)).map { Float($0) + 1 }
            let whole = specRelativeShift(s, length: t)
            for block in 1...t {
                var stitched: [Float] = []
                var first = 0
                while first < t {
                    let end = min(first + block, t)
                    var rows = [Float](repeating: 0, count: (end - first) * t)
                    let source = Array(s[(first * t)..<(min(end + 1, t) * t)])
                    source.withUnsafeBufferPointer { source in
                        rows.withUnsafeMutableBufferPointer {
                            RelativePositionAttention.addRelativeShift($0.baseAddress!, source.baseAddress!, rows: first..<end, length: t)
                        }
                    }
                    stitched += rows
                    first = end
                }
                XCTAssertEqual(stitched, whole, "T = \(t), blocks of \(block)")
            }
        }
    }

    /// An evaluation pass with an utterance longer than a block forms the scores a block of
    /// queries at a time and keeps nothing for a backward: the same output as the
    /// training-mode pass (dropout 0) — bit for bit for shorter batches, which take the
    /// training path, to rounding beyond — with scratch for a block, not T × T, and no stored
    /// probabilities.
    func testEvaluationInBlocksGivesTheTrainingOutputInLinearMemory() {
        for lengths in [[7, 300, 512], [1300], [2 * RelativePositionAttention.queryBlock + 1, 40]] {
            let (attention, _, context, segments, x) = AttentionThreadingTests.make(channels: 16, heads: 2, dropout: 0, lengths: lengths)
            context.mode = .training
            let trained = attention.forward(x, segments: segments, context).array
            let keptInTraining = attention.storedProbabilityCount
            context.mode = .evaluation
            let evaluated = attention.forward(x, segments: segments, context).array
            let longest = lengths.max()!
            if longest <= RelativePositionAttention.queryBlock {
                XCTAssertEqual(evaluated, trained, "\(lengths)")
            } else {
                let scale = trained.map(abs).max()!
                let worst = zip(evaluated, trained).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst / scale, 1e-5, "\(lengths)")
            }
            XCTAssertEqual(keptInTraining, 2 * lengths.reduce(0) { $0 + $1 * $1 }, "heads × Σ T² in training")
            if longest > RelativePositionAttention.queryBlock {
                XCTAssertEqual(attention.storedProbabilityCount, 0, "none after a blocked evaluation pass")
            }
        }
        // A long utterance alone, in evaluation mode only: scratch for a block of queries.
        let registry = ParameterRegistry()
        let attention = RelativePositionAttention(registry, "mhsa", channels: 16, heads: 2, attentionDropout: 0, outputDropout: 0)
        let store = ParameterStore(registry)
        store.initialize(seed: 4)
        let context = RunContext(store: store)
        context.mode = .evaluation
        let t = 6000, segments = Segments(lengths: [t])
        context.useSequentialUtteranceKeys(count: 1)
        let output = attention.forward(GradientCheck.randomMatrix(rows: t, columns: 16, seed: 8), segments: segments, context)
        XCTAssertTrue(output.array.allSatisfy(\.isFinite))
        XCTAssertEqual(attention.storedProbabilityCount, 0)
        XCTAssertLessThanOrEqual(attention.scratchFloats(participants: BLAS.threadCount),
                                 BLAS.threadCount * 3 * (RelativePositionAttention.queryBlock + 1) * t,
                                 "T × T would be \(3 * t * t) floats a participant")
    }

    func testPositionalEncodingIsComputedInDouble() {
        let encoding = PositionalEncoding(channels: 512).rows(1200)
        // t = 1000, channel 2: sin(1000 / 10000^(2/512)) in Double, rounded once.
        let angle = 1000.0 / pow(10000.0, 2.0 / 512.0)
        XCTAssertEqual(encoding[1000, 2], Float(sin(angle)))
        XCTAssertEqual(encoding[1000, 3], Float(cos(angle)))
        XCTAssertEqual(encoding[0, 0], 0)
        XCTAssertEqual(encoding[0, 1], 1)
    }
}

import BLAS

/// The attention loop split over threads gives what one thread gives (outputs and every
/// gradient), dropout on, on a batch large enough to take the parallel path.
final class AttentionThreadingTests: XCTestCase {
    static let batch = [150, 1, 120, 90, 7, 60]

    func run(threads: Int, lengths: [Int] = batch) -> (output: [Float], input: [Float], gradients: [String: [Float]]) {
        withThreadCount(threads) { run(lengths: lengths) }
    }

    /// An attention module with perturbed parameters, its context and a random input batch.
    static func make(channels: Int, heads: Int, dropout: Float, lengths: [Int])
        -> (RelativePositionAttention, ParameterStore, RunContext, Segments, Matrix) {
        let registry = ParameterRegistry()
        let attention = RelativePositionAttention(registry, "mhsa", channels: channels, heads: heads,
                                                  attentionDropout: dropout, outputDropout: dropout)
        let store = ParameterStore(registry)
        store.initialize(seed: 4)
        GradientCheck.perturbParameters(store, seed: 6)
        let context = RunContext(store: store)
        let segments = Segments(lengths: lengths)
        context.useSequentialUtteranceKeys(count: segments.count)
        return (attention, store, context, segments, GradientCheck.randomMatrix(rows: segments.totalRows, columns: channels, seed: 8))
    }

    func run(lengths: [Int]) -> (output: [Float], input: [Float], gradients: [String: [Float]]) {
        let (attention, store, context, segments, x) = Self.make(channels: 64, heads: 4, dropout: 0.1, lengths: lengths)
        let output = attention.forward(x, segments: segments, context).array
        store.zeroGradients()
        let dx = attention.backward(GradientCheck.randomMatrix(rows: segments.totalRows, columns: 64, seed: 9), context).array
        return (output, dx, Dictionary(uniqueKeysWithValues: store.parameters.map { ($0.name, store.gradientArray($0)) }))
    }

    /// Largest difference relative to the tensor's scale.
    func difference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(b.map(abs).max() ?? 0, 1e-6)
        return (zip(a, b).map { abs($0 - $1) }.max() ?? 0) / scale
    }

    func testTwoThreadsGiveWhatOneThreadGives() {
        let work = Self.batch.reduce(0) { $0 + $1 * $1 } * 64
        XCTAssertGreaterThanOrEqual(work, AttentionWorkers.minimumParallelWork, "the batch must take the parallel path")
        let one = run(threads: 1), two = run(threads: 2), again = run(threads: 2)
        // Utterances go to whichever thread is free, but every result is computed per
        // utterance and summed in utterance order, and split products are exact: only the
        // LayerNorm's γ and β gradients, summed per row chunk, may differ in the last bits.
        XCTAssertEqual(two.output, one.output)
        XCTAssertEqual(two.input, one.input)
        for (name, gradient) in one.gradients {
            if name.contains(".norm.") {
                XCTAssertLessThan(difference(two.gradients[name]!, gradient), 1e-5, name)
            } else {
                XCTAssertEqual(two.gradients[name]!, gradient, name)
            }
            XCTAssertEqual(again.gradients[name]!, two.gradients[name]!, "\(name): two 2-thread runs differ")
        }
    }

    /// One utterance (inference) spreads its heads over the threads; each head writes its own
    /// columns, so the result is still exactly the one-thread result.
    func testOneUtteranceSpreadsItsHeadsWithTheSameResult() {
        XCTAssertGreaterThanOrEqual(200 * 200 * 64, AttentionWorkers.minimumParallelWork, "the utterance must take the parallel path")
        let one = run(threads: 1, lengths: [200]), two = run(threads: 2, lengths: [200])
        XCTAssertEqual(two.output, one.output)
        XCTAssertEqual(two.input, one.input)
        for (name, gradient) in one.gradients where !name.contains(".norm.") {
            XCTAssertEqual(two.gradients[name]!, gradient, name)
        }
    }
}
