import Foundation
@testable import VAVLCore
@testable import VAVLTraining
import XCTest

/// Metrics against values computed by hand on small fixed prediction sets.
final class MetricsTests: XCTestCase {
    func testMacroAndMicroF1() {
        // References 0 0 1 1 2, predictions 0 1 1 1 0.
        // class 0: tp 1 fp 1 fn 1 → F1 2/4 = 0.5; class 1: tp 2 fp 1 fn 0 → 4/5 = 0.8; class 2: tp 0 fn 1 → 0.
        let scores = Metrics.classification(predicted: [0, 1, 1, 1, 0], reference: [0, 0, 1, 1, 2])
        XCTAssertEqual(scores.macroF1, (0.5 + 0.8 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(scores.microF1, 3.0 / 5, accuracy: 1e-12)
        XCTAssertEqual(scores.accuracy, 3.0 / 5, accuracy: 1e-12)
        // A class only predicted (never referenced) counts with F1 0, as scikit-learn does.
        let extra = Metrics.classification(predicted: [0, 3], reference: [0, 1])
        XCTAssertEqual(extra.macroF1, (1 + 0 + 0) / 3, accuracy: 1e-12)
    }

    func testConcordanceAndMAE() {
        // p = [1,2,3], y = [2,2,4]: means 2 and 8/3; var_p 2/3, var_y 8/9; cov 2/3;
        // CCC = 2·(2/3) / (2/3 + 8/9 + 4/9) = 2/3.
        XCTAssertEqual(Metrics.concordance([1, 2, 3], [2, 2, 4]), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(Metrics.concordance([1, 2, 3], [1, 2, 3]), 1, accuracy: 1e-12)
        XCTAssertEqual(Metrics.meanAbsoluteError([1, -2, 0.5], [0, 0, 0.5]), 1, accuracy: 1e-12)
    }

    func testHeadScoresPerTask() {
        let logits = Matrix(rows: 3, columns: 2, values: [2, 0, 0, 1, 3, 1])
        let labels = Matrix(rows: 3, columns: 2, values: [1, 0, 0, 1, 0, 1])
        let categorical = HeadScores.compute(task: .categorical, predictions: logits, labels: labels, labelNames: ["a", "b"])
        XCTAssertEqual(categorical.metrics["accuracy"]!, 2.0 / 3, accuracy: 1e-12)
        let e = { (x: Double) in Foundation.exp(x) }
        let ce = (-(2 - Foundation.log(e(2) + 1)) - (1 - Foundation.log(1 + e(1))) - (1 - Foundation.log(e(3) + e(1)))) / 3
        XCTAssertEqual(categorical.loss, ce, accuracy: 1e-6)
        let dimensional = HeadScores.compute(task: .dimensional, predictions: Matrix(rows: 3, columns: 1, values: [1, 2, 3]),
                                             labels: Matrix(rows: 3, columns: 1, values: [2, 2, 4]), labelNames: ["EmoAct"])
        XCTAssertEqual(dimensional.metrics["ccc_EmoAct"]!, Metrics.concordance([1, 2, 3], [2, 2, 4]), accuracy: 1e-7)
        XCTAssertEqual(dimensional.loss, 1 - Metrics.concordance([1, 2, 3], [2, 2, 4]), accuracy: 1e-7)
        let sentiment = HeadScores.compute(task: .sentiment, predictions: Matrix(rows: 2, columns: 1, values: [1, -1]),
                                           labels: Matrix(rows: 2, columns: 1, values: [0, 1]), labelNames: [])
        XCTAssertEqual(sentiment.metrics["mae"]!, 1.5, accuracy: 1e-12)
    }

    func testChanceLevels() {
        // 4 of class 0, 1 of class 1, K = 3.
        let chance = ChanceLevel(references: [0, 0, 0, 0, 1], classes: 3)
        XCTAssertEqual(chance.majorityAccuracy, 0.8, accuracy: 1e-12)
        XCTAssertEqual(chance.uniformAccuracy, 1.0 / 3, accuracy: 1e-12)
        let f1 = { (p: Double) in 2 * p * (1.0 / 3) / (p + 1.0 / 3) }
        XCTAssertEqual(chance.uniformMacroF1, (f1(0.8) + f1(0.2)) / 3, accuracy: 1e-12)
    }
}

/// Per-class scores, UAR, Pearson and the sentiment metrics, against values worked by hand.
final class PerClassMetricsTests: XCTestCase {
    func testPerClassScoresConfusionAndUnweightedAverageRecall() {
        // References 0 0 0 1 1 2; predictions 0 1 0 1 1 1.
        let scores = Metrics.perClass(predicted: [0, 1, 0, 1, 1, 1], reference: [0, 0, 0, 1, 1, 2], classes: 3)
        XCTAssertEqual(scores.confusion, [[2, 1, 0], [0, 2, 0], [0, 1, 0]])
        XCTAssertEqual(scores.recall, [2.0 / 3, 1, 0])
        XCTAssertEqual(scores.precision, [1, 0.5, 0])
        XCTAssertEqual(scores.f1[0], 0.8, accuracy: 1e-12)
        XCTAssertEqual(scores.f1[1], 2 * 0.5 / 1.5, accuracy: 1e-12)
        XCTAssertEqual(scores.unweightedAverageRecall, (2.0 / 3 + 1 + 0) / 3, accuracy: 1e-12)
        // A class absent from the references does not enter UAR.
        XCTAssertEqual(Metrics.perClass(predicted: [0, 2], reference: [0, 0], classes: 3).unweightedAverageRecall, 0.5)
    }

    func testPearsonAndSentimentMetrics() {
        XCTAssertEqual(Metrics.pearson([1, 2, 3], [2, 4, 6]), 1, accuracy: 1e-12)
        XCTAssertEqual(Metrics.pearson([1, 2, 3], [3, 2, 1]), -1, accuracy: 1e-12)
        XCTAssertEqual(Metrics.pearson([1, 1, 1], [1, 2, 3]), 0)
        // Labels −2, 0, 1.4, 2.6; predictions −1.2, 0.3, −0.2, 2.4.
        let scores = HeadScores.compute(task: .sentiment, predictions: Matrix(rows: 4, columns: 1, values: [-1.2, 0.3, -0.2, 2.4]),
                                        labels: Matrix(rows: 4, columns: 1, values: [-2, 0, 1.4, 2.6]), labelNames: ["sentiment"])
        // Non-zero labels: −2 (pred −), 1.4 (pred −: wrong), 2.6 (pred +): 2 of 3 right.
        XCTAssertEqual(scores.metrics["binary_accuracy"]!, 2.0 / 3, accuracy: 1e-9)
        // Weighted F1: negative class (support 1): p 1/2, r 1 → 2/3; positive (support 2): p 1, r 1/2 → 2/3.
        XCTAssertEqual(scores.metrics["binary_f1"]!, 2.0 / 3, accuracy: 1e-9)
        // Rounded on −3…3: (−1, −2) (0, 0) (−0, 1) (2, 3): one of four.
        XCTAssertEqual(scores.metrics["accuracy_7"]!, 0.25, accuracy: 1e-9)
        XCTAssertEqual(scores.metrics["mae"]!, (0.8 + 0.3 + 1.6 + 0.2) / 4, accuracy: 1e-6)
    }
}
