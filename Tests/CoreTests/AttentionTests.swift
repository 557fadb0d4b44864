@testable import VAVLCore
import XCTest

final class AttentionTests: XCTestCase {
    /// relshift as SPEC §2.3 writes it: f = (i+1)·T + j, r = f div (T+1), c = f mod (T+1),
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
        var generator = SeededGenerator(seed: 1)
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
