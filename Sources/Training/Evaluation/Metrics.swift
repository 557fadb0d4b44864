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

    /// Per-class precision, recall and F1 (zero where undefined), the confusion matrix
    /// (rows: reference class, columns: predicted class) and the unweighted average recall
    /// (UAR: the mean recall over the classes present in the references — the metric most
    /// emotion-recognition papers report beside F1).
    public static func perClass(predicted: [Int], reference: [Int], classes: Int)
        -> (precision: [Double], recall: [Double], f1: [Double], confusion: [[Int]], unweightedAverageRecall: Double) {
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (p, r) in zip(predicted, reference) where p < classes && r < classes { confusion[r][p] += 1 }
        var precision: [Double] = [], recall: [Double] = [], f1: [Double] = []
        var recallSum = 0.0, present = 0
        for c in 0..<classes {
            let tp = Double(confusion[c][c])
            let referenced = Double(confusion[c].reduce(0, +)), predictedAs = Double((0..<classes).map { confusion[$0][c] }.reduce(0, +))
            let p = predictedAs > 0 ? tp / predictedAs : 0, r = referenced > 0 ? tp / referenced : 0
            precision.append(p)
            recall.append(r)
            f1.append(p + r > 0 ? 2 * p * r / (p + r) : 0)
            if referenced > 0 { recallSum += r; present += 1 }
        }
        return (precision, recall, f1, confusion, present > 0 ? recallSum / Double(present) : 0)
    }

    /// Pearson's correlation (0 when either side is constant).
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        guard n > 1 else { return 0 }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        return sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : 0
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
    /// Categorical: the confusion matrix, rows the reference class, columns the predicted
    /// one, in label order.
    public var confusion: [[Int]]?

    public init(count: Int, metrics: [String: Double], confusion: [[Int]]? = nil) {
        self.count = count
        self.metrics = metrics
        self.confusion = confusion
    }

    /// The development loss used for model selection (DESIGN §3).
    public var loss: Double { metrics["loss"] ?? .infinity }
}

extension HeadScores {
    /// Scores of predictions (B, K) against labels on the training scale.
    public static func compute(task: PredictionTask, predictions: Matrix, labels: Matrix, labelNames: [String],
                               predictionsAreProbabilities: Bool = false) -> HeadScores {
        let rows = predictions.rows, k = predictions.columns
        var metrics: [String: Double] = [:]
        var confusion: [[Int]]?
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
            let classes = Metrics.perClass(predicted: predicted, reference: reference, classes: k)
            metrics["uar"] = classes.unweightedAverageRecall
            for c in 0..<k {
                let name = c < labelNames.count ? labelNames[c] : "\(c)"
                metrics["precision_\(name)"] = classes.precision[c]
                metrics["recall_\(name)"] = classes.recall[c]
                metrics["f1_\(name)"] = classes.f1[c]
            }
            confusion = classes.confusion
        case .dimensional:
            var lossSum = 0.0, cccSum = 0.0
            for column in 0..<k {
                let p = (0..<rows).map { Double(predictions.row($0)[column]) }
                let y = (0..<rows).map { Double(labels.row($0)[column]) }
                let ccc = Metrics.concordance(p, y)
                let name = column < labelNames.count ? labelNames[column] : "\(column)"
                metrics["ccc_\(name)"] = ccc
                metrics["pearson_\(name)"] = Metrics.pearson(p, y)
                metrics["mae_\(name)"] = Metrics.meanAbsoluteError(p, y)
                cccSum += ccc
                lossSum += 1 - ccc
            }
            metrics["ccc_mean"] = k > 0 ? cccSum / Double(k) : 0
            metrics["loss"] = lossSum
        case .sentiment:
            let p = predictions.array.map(Double.init), y = labels.array.map(Double.init)
            let mae = Metrics.meanAbsoluteError(p, y)
            metrics = ["mae": mae, "loss": rows > 0 ? mae : .infinity, "pearson": Metrics.pearson(p, y)]
            // As CMU-MOSEI papers report them: negative vs positive over the non-zero labels
            // (accuracy and weighted F1), and 7-class accuracy on the rounded −3…3 scale.
            let nonZero = zip(p, y).filter { $0.1 != 0 }
            let binary = Metrics.perClass(predicted: nonZero.map { $0.0 > 0 ? 1 : 0 }, reference: nonZero.map { $0.1 > 0 ? 1 : 0 }, classes: 2)
            let support = binary.confusion.map { Double($0.reduce(0, +)) }
            metrics["binary_accuracy"] = nonZero.isEmpty ? 0 : Double(binary.confusion[0][0] + binary.confusion[1][1]) / Double(nonZero.count)
            metrics["binary_f1"] = nonZero.isEmpty ? 0 : (binary.f1[0] * support[0] + binary.f1[1] * support[1]) / Double(nonZero.count)
            let seven = { (v: Double) in min(3, max(-3, v.rounded())) }
            metrics["accuracy_7"] = p.isEmpty ? 0 : Double(zip(p, y).filter { seven($0.0) == seven($0.1) }.count) / Double(p.count)
        }
        return HeadScores(count: rows, metrics: metrics, confusion: confusion)
    }
}
