@testable import VAVLCore
import XCTest

final class LossTests: XCTestCase {
    typealias LossFunction = (Matrix, Matrix) -> Double

    /// Finite differences (in Double on the loss) against the analytical gradient for every
    /// prediction element.
    func check(_ name: String, predictions: Matrix, gradient: Matrix, step: Float = 1e-3, tolerance: Float = 2e-3,
               file: StaticString = #filePath, line: UInt = #line, loss: LossFunction) {
        _ = loss(predictions, gradient)
        let analytical = gradient.array
        let scratch = Matrix()
        for i in 0..<predictions.count {
            let original = predictions.data[i]
            predictions.data[i] = original + step
            let plus = loss(predictions, scratch)
            predictions.data[i] = original - step
            let minus = loss(predictions, scratch)
            predictions.data[i] = original
            let numerical = Float((plus - minus) / Double(2 * step))
            XCTAssertEqual(analytical[i], numerical, accuracy: tolerance + 0.01 * abs(numerical),
                           "\(name) [\(i)]", file: file, line: line)
        }
    }

    let logits = Matrix(rows: 3, columns: 4, values: [0.1, 2, -1, 0.5, 1, 1, 0.3, -0.2, -2, 0.4, 0.4, 3])

    func testCrossEntropyHardUsesTheFirstMaximalIndex() {
        // Row 1's label has a tie between classes 0 and 1: the target is 0.
        let labels = Matrix(rows: 3, columns: 4, values: [0, 1, 0, 0, 0.4, 0.4, 0.2, 0, 0, 0, 0, 1])
        let gradient = Matrix()
        let loss = Losses.crossEntropy(logits: logits, labels: labels, soft: false, globalCount: 3, gradient: gradient)
        func nll(_ row: Int, _ target: Int) -> Double {
            let values = (0..<4).map { Double(logits[row, $0]) }
            return log(values.map(exp).reduce(0, +)) - values[target]
        }
        XCTAssertEqual(loss, (nll(0, 1) + nll(1, 0) + nll(2, 3)) / 3, accuracy: 1e-9)
        check("hard CE", predictions: logits, gradient: gradient) {
            Losses.crossEntropy(logits: $0, labels: labels, soft: false, globalCount: 3, gradient: $1)
        }
    }

    func testCrossEntropyNormalisesByTheGlobalCount() {
        let labels = Matrix(rows: 3, columns: 4, values: [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1])
        let local = Losses.crossEntropy(logits: logits, labels: labels, soft: false, globalCount: 3, gradient: Matrix())
        let global = Losses.crossEntropy(logits: logits, labels: labels, soft: false, globalCount: 12, gradient: Matrix())
        XCTAssertEqual(global * 4, local, accuracy: 1e-12)
    }

    func testSoftCrossEntropyGradient() {
        let labels = Matrix(rows: 3, columns: 4, values: [0.1, 0.6, 0.2, 0.1, 0.4, 0.4, 0.2, 0, 0, 0.5, 0, 0.5])
        check("soft CE", predictions: logits, gradient: Matrix()) {
            Losses.crossEntropy(logits: $0, labels: labels, soft: true, globalCount: 3, gradient: $1)
        }
    }

    func testL1AndMSEGradients() {
        let targets = Matrix(rows: 3, columns: 4, values: [0.3, 1, -1.4, 0.2, 0, 0.6, 0.1, 0.1, -1, 0, 1, 2])
        check("L1", predictions: logits, gradient: Matrix()) {
            Losses.meanAbsoluteError(predictions: $0, labels: targets, globalCount: 3, gradient: $1)
        }
        check("MSE", predictions: logits, gradient: Matrix()) {
            Losses.meanSquaredError(predictions: $0, targets: targets, globalCount: 5, gradient: $1)
        }
        XCTAssertEqual(Losses.meanSquaredError(predictions: logits, targets: targets, globalCount: 3, gradient: Matrix()),
                       zip(logits.array, targets.array).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / 12,
                       accuracy: 1e-6)
    }

    func testConcordanceLossValueAndGradient() {
        let predictions = Matrix(rows: 5, columns: 2, values: [0.1, 0.9, 0.4, 0.3, 0.35, 0.5, 0.8, 0.2, 0.6, 0.6])
        let labels = Matrix(rows: 5, columns: 2, values: [0.2, 0.7, 0.5, 0.1, 0.3, 0.4, 0.9, 0.3, 0.4, 0.8])
        let loss = Losses.concordanceLoss(predictions: predictions, labels: labels,
                                          globalStatistics: Losses.concordanceStatistics(predictions: predictions, labels: labels),
                                          gradient: Matrix())
        // Direct CCC with population moments.
        var expected = 0.0
        for k in 0..<2 {
            let p = (0..<5).map { Double(predictions[$0, k]) }, y = (0..<5).map { Double(labels[$0, k]) }
            let mp = p.reduce(0, +) / 5, my = y.reduce(0, +) / 5
            let vp = p.map { ($0 - mp) * ($0 - mp) }.reduce(0, +) / 5, vy = y.map { ($0 - my) * ($0 - my) }.reduce(0, +) / 5
            let cov = zip(p, y).map { ($0 - mp) * ($1 - my) }.reduce(0, +) / 5
            expected += 1 - 2 * cov / (vp + vy + (mp - my) * (mp - my))
        }
        XCTAssertEqual(loss, expected, accuracy: 1e-6)
        check("CCC", predictions: predictions, gradient: Matrix(), step: 1e-3, tolerance: 5e-3) { p, g in
            Losses.concordanceLoss(predictions: p, labels: labels,
                                   globalStatistics: Losses.concordanceStatistics(predictions: p, labels: labels), gradient: g)
        }
    }

    /// Sufficient statistics of two halves sum to those of the whole: R ranks get the same
    /// CCC loss and gradient rows as one process.
    func testConcordanceFromSummedStatisticsEqualsTheWholeBatch() {
        let predictions = Matrix(rows: 4, columns: 1, values: [0.1, 0.4, 0.8, 0.3])
        let labels = Matrix(rows: 4, columns: 1, values: [0.2, 0.5, 0.7, 0.1])
        let whole = Losses.concordanceStatistics(predictions: predictions, labels: labels)
        let first = Losses.concordanceStatistics(predictions: Matrix(rows: 2, columns: 1, values: [0.1, 0.4]),
                                                 labels: Matrix(rows: 2, columns: 1, values: [0.2, 0.5]))
        let second = Losses.concordanceStatistics(predictions: Matrix(rows: 2, columns: 1, values: [0.8, 0.3]),
                                                  labels: Matrix(rows: 2, columns: 1, values: [0.7, 0.1]))
        for i in 0..<6 { XCTAssertEqual(whole[i], first[i] + second[i], accuracy: 1e-12) }
        XCTAssertEqual(Losses.concordance(whole, output: 0), Losses.concordance(zip(first, second).map(+), output: 0), accuracy: 1e-12)
        // n = 1: CCC is 0 and so is its gradient.
        let single = Matrix(rows: 1, columns: 1, values: [0.3])
        let gradient = Matrix()
        let loss = Losses.concordanceLoss(predictions: single, labels: Matrix(rows: 1, columns: 1, values: [0.9]),
                                          globalStatistics: Losses.concordanceStatistics(predictions: single,
                                                                                         labels: Matrix(rows: 1, columns: 1, values: [0.9])),
                                          gradient: gradient)
        XCTAssertEqual(loss, 1)
        XCTAssertEqual(gradient[0, 0], 0)
    }

    /// One parameter "w" of `count` ones and an Adam over it.
    func adamFixture(count: Int, learningRate: Float, weightDecay: Float)
        -> (store: ParameterStore, parameter: Parameter, adam: Adam, configuration: AdamConfiguration) {
        let registry = ParameterRegistry()
        let parameter = registry.parameter("w", shape: [count], initializer: .ones)
        let store = ParameterStore(registry)
        store.initialize(seed: 0)
        var config = AdamConfiguration()
        config.learningRate = learningRate
        config.weightDecay = weightDecay
        return (store, parameter, Adam(store: store, configuration: config), config)
    }

    func testAdamMatchesTheClosedFormForOneParameter() {
        let (store, parameter, adam, _) = adamFixture(count: 1, learningRate: 0.1, weightDecay: 0.01)
        var theta = 1.0, m = 0.0, v = 0.0
        for step in 1...3 {
            let g = 0.5 * Double(step)
            store.gradient(parameter)[0] = Float(g)
            adam.step(0..<1)
            let decayed = g + 0.01 * theta
            m = 0.95 * m + 0.05 * decayed
            v = 0.999 * v + 0.001 * decayed * decayed
            theta -= (0.1 / (1 - pow(0.95, Double(step)))) * m / (v.squareRoot() / (1 - pow(0.999, Double(step))).squareRoot() + 1e-8)
            XCTAssertEqual(Double(store.values[0]), theta, accuracy: 1e-6, "step \(step)")
        }
        XCTAssertEqual(adam.steps, [3])
    }

    /// The eight-lane update equals the plain Float loop bit for bit, on lanes and on the tail
    /// (37 elements: four blocks of eight and five left over), over several steps.
    func testAdamLanesEqualTheScalarLoopBitForBit() {
        let (store, parameter, adam, config) = adamFixture(count: 37, learningRate: 0.01, weightDecay: 0.02)
        var generator = SplitMix64(seed: 5)
        var theta = (0..<37).map { _ in generator.normal() }
        for i in 0..<37 { store.values[i] = theta[i] }
        var m = [Float](repeating: 0, count: 37), v = [Float](repeating: 0, count: 37)
        let (beta1, beta2, epsilon, decay) = (config.beta1, config.beta2, config.epsilon, config.weightDecay)
        for step in 1...4 {
            let gradients = (0..<37).map { _ in generator.normal() }
            for i in 0..<37 { store.gradient(parameter)[i] = gradients[i] }
            adam.step(0..<37)
            let stepSize = Float(Double(config.learningRate) / (1 - pow(Double(beta1), Double(step))))
            let correction2 = Float((1 - pow(Double(beta2), Double(step))).squareRoot())
            for i in 0..<37 {
                let g = gradients[i] + decay * theta[i]
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                theta[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + epsilon)
            }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: store.values, count: 37)), theta, "step \(step)")
        }
    }
}
