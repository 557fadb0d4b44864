@testable import VAVLCore
import XCTest

/// A layer under test: a forward from an input matrix to an output matrix, and a backward
/// that accumulates parameter gradients into the store and returns the input gradient.
struct LayerUnderTest {
    let store: ParameterStore
    let context: RunContext
    let segments: Segments
    let input: Matrix
    let outputColumns: Int
    let forward: (Matrix) -> Matrix
    let backward: (Matrix) -> Matrix?
}

/// Central finite differences against the analytical backward, on the loss
/// L = Σ output ⊙ G for a fixed random G, over sampled input and parameter coordinates.
enum GradientCheck {
    struct Report {
        var checked = 0
        var failures: [String] = []
        var maximumError: Float = 0
    }

    static func randomMatrix(rows: Int, columns: Int, seed: UInt64, scale: Float = 1, awayFromZero: Bool = false) -> Matrix {
        var generator = SplitMix64(seed: seed)
        let matrix = Matrix(rows: rows, columns: columns)
        for i in 0..<matrix.count {
            var value = generator.normal() * scale
            if awayFromZero && abs(value) < 0.1 { value += value < 0 ? -0.2 : 0.2 }
            matrix.data[i] = value
        }
        return matrix
    }

    /// Perturbs every parameter (so affine terms are not at their trivial init) by seeded noise.
    static func perturbParameters(_ store: ParameterStore, seed: UInt64, scale: Float = 0.1) {
        var generator = SplitMix64(seed: seed)
        for i in 0..<store.parameterCount { store.values[i] += scale * generator.normal() }
    }

    static func loss(_ layer: LayerUnderTest, _ weights: Matrix) -> Double {
        let output = layer.forward(layer.input)
        var sum: Double = 0
        for i in 0..<output.count { sum += Double(output.data[i]) * Double(weights.data[i]) }
        return sum
    }

    static func run(_ layer: LayerUnderTest, seed: UInt64 = 7, step: Float = 1e-2, samples: Int = 40,
                    relativeTolerance: Float = 2e-2, absoluteTolerance: Float = 4e-3) -> Report {
        let store = layer.store
        let output = layer.forward(layer.input)
        let weights = randomMatrix(rows: output.rows, columns: output.columns, seed: seed ^ 0xABCD)
        store.zeroGradients()
        _ = layer.forward(layer.input)
        let inputGradient = layer.backward(weights).map { Matrix(rows: $0.rows, columns: $0.columns, values: $0.array) }
        let parameterGradient = Array(UnsafeBufferPointer(start: store.gradients, count: store.parameterCount))

        var report = Report()
        var generator = SplitMix64(seed: seed)
        func compare(_ analytical: Float, _ numerical: Float, _ what: String) {
            let error = abs(analytical - numerical)
            report.maximumError = max(report.maximumError, error)
            report.checked += 1
            if error > absoluteTolerance + relativeTolerance * max(abs(analytical), abs(numerical)) {
                report.failures.append("\(what): analytical \(analytical), numerical \(numerical)")
            }
        }
        func numerical(_ pointer: UnsafeMutablePointer<Float>) -> Float {
            let original = pointer.pointee
            pointer.pointee = original + step
            let plus = loss(layer, weights)
            pointer.pointee = original - step
            let minus = loss(layer, weights)
            pointer.pointee = original
            return Float((plus - minus) / Double(2 * step))
        }
        if let inputGradient {
            for _ in 0..<samples {
                let index = Int(generator.next() % UInt64(layer.input.count))
                compare(inputGradient.data[index], numerical(layer.input.data + index), "input[\(index)]")
            }
        }
        for parameter in store.parameters {
            for _ in 0..<min(samples / 2 + 1, parameter.count) {
                let index = parameter.offset + Int(generator.next() % UInt64(parameter.count))
                compare(parameterGradient[index], numerical(store.values + index), "\(parameter.name)[\(index - parameter.offset)]")
            }
        }
        return report
    }

    static func assertPasses(_ layer: LayerUnderTest, _ name: String, file: StaticString = #filePath, line: UInt = #line,
                             relativeTolerance: Float = 2e-2, absoluteTolerance: Float = 4e-3) {
        let report = run(layer, relativeTolerance: relativeTolerance, absoluteTolerance: absoluteTolerance)
        XCTAssertGreaterThan(report.checked, 10, "\(name): too few coordinates checked", file: file, line: line)
        XCTAssertTrue(report.failures.isEmpty,
                      "\(name): \(report.failures.count)/\(report.checked) coordinates off:\n" +
                      report.failures.prefix(8).joined(separator: "\n"), file: file, line: line)
    }
}
