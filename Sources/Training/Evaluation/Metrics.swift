#if canImport(Glibc)
import Glibc
#endif
import VAVLCore

/// The metrics of DESIGN §1 and §7, computed once over a whole split.
public enum Metrics {
    /// Macro F1 over the classes present in references or predictions (scikit-learn's
    /// `average="macro"`, zero_division 0), micro F1 and accuracy (equal for single-label data).
    public static func classification(predicted: [Int], reference: [Int]) -> (macroF1: Double, microF1: Double, accuracy: Double) {
        precondition(predicted.count == reference.count)
        guard !predicted.isEmpty else { return (0, 0, 0) }
        let classes = Set(predicted).union(reference)
        var f1Sum = 0.0
        for c in classes {
            var tp = 0, fp = 0, fn = 0
            for (p, r) in zip(predicted, reference) {
                if p == c && r == c { tp += 1 } else if p == c { fp += 1 } else if r == c { fn += 1 }
            }
            let denominator = 2 * tp + fp + fn
            f1Sum += denominator == 0 ? 0 : Double(2 * tp) / Double(denominator)
        }
        let correct = zip(predicted, reference).filter { $0 == $1 }.count
        let accuracy = Double(correct) / Double(predicted.count)
        return (f1Sum / Double(classes.count), accuracy, accuracy)
    }

    /// Concordance correlation coefficient with population moments (Double).
    public static func concordance(_ predictions: [Double], _ references: [Double]) -> Double {
        let n = Double(predictions.count)
        guard n > 1 else { return 0 }
        let mp = predictions.reduce(0, +) / n, mr = references.reduce(0, +) / n
        var vp = 0.0, vr = 0.0, cov = 0.0
        for (p, r) in zip(predictions, references) {
            vp += (p - mp) * (p - mp)
            vr += (r - mr) * (r - mr)
            cov += (p - mp) * (r - mr)
        }
        let denominator = vp / n + vr / n + (mp - mr) * (mp - mr)
        return denominator > 0 ? 2 * cov / n / denominator : 0
    }

    /// Mean absolute error over all values.
    public static func meanAbsoluteError(_ predictions: [Double], _ references: [Double]) -> Double {
        guard !predictions.isEmpty else { return 0 }
        return zip(predictions, references).map { abs($0 - $1) }.reduce(0, +) / Double(predictions.count)
    }

    /// The index of the first maximal value (PyTorch's and NumPy's argmax tie rule).
    public static func argmax(_ values: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for i in 1..<max(count, 1) where values[i] > values[best] { best = i }
        return best
    }
}

/// The scores of one head on one split.
public struct HeadScores: Codable, Equatable, Sendable {
    public var count: Int
    /// categorical: f1_macro, f1_micro, accuracy, loss (CE); dimensional: ccc_<label> per
    /// attribute, ccc_mean, loss (Σ(1 − CCC)); sentiment: mae, loss (= MAE).
    public var metrics: [String: Double]

    /// The development loss used for model selection (DESIGN §3).
    public var loss: Double { metrics["loss"] ?? .infinity }
}

extension HeadScores {
    /// Scores of predictions (B, K) against labels on the training scale.
    public static func compute(task: PredictionTask, predictions: Matrix, labels: Matrix, labelNames: [String],
                               predictionsAreProbabilities: Bool = false) -> HeadScores {
        let rows = predictions.rows, k = predictions.columns
        var metrics: [String: Double] = [:]
        switch task {
        case .categorical:
            var predicted: [Int] = [], reference: [Int] = []
            var loss = 0.0
            for b in 0..<rows {
                predicted.append(Metrics.argmax(predictions.row(b), count: k))
                reference.append(Metrics.argmax(labels.row(b), count: k))
                // Cross-entropy with the hard label (probabilities under no-av-head fusion).
                let values = (0..<k).map { Double(predictions.row(b)[$0]) }
                let logProbability: Double
                if predictionsAreProbabilities {
                    logProbability = log(max(values[reference[b]], 1e-12))
                } else {
                    let maximum = values.max()!
                    logProbability = values[reference[b]] - maximum - log(values.map { exp($0 - maximum) }.reduce(0, +))
                }
                loss -= logProbability
            }
            let scores = Metrics.classification(predicted: predicted, reference: reference)
            metrics = ["f1_macro": scores.macroF1, "f1_micro": scores.microF1, "accuracy": scores.accuracy,
                       "loss": rows > 0 ? loss / Double(rows) : .infinity]
        case .dimensional:
            var lossSum = 0.0, cccSum = 0.0
            for column in 0..<k {
                let p = (0..<rows).map { Double(predictions.row($0)[column]) }
                let y = (0..<rows).map { Double(labels.row($0)[column]) }
                let ccc = Metrics.concordance(p, y)
                let name = column < labelNames.count ? labelNames[column] : "\(column)"
                metrics["ccc_\(name)"] = ccc
                cccSum += ccc
                lossSum += 1 - ccc
            }
            metrics["ccc_mean"] = k > 0 ? cccSum / Double(k) : 0
            metrics["loss"] = lossSum
        case .sentiment:
            let mae = Metrics.meanAbsoluteError(predictions.array.map(Double.init), labels.array.map(Double.init))
            metrics = ["mae": mae, "loss": rows > 0 ? mae : .infinity]
        }
        return HeadScores(count: rows, metrics: metrics)
    }
}
