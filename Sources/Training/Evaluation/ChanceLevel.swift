/// Chance levels of a categorical split, for reading scores: a uniform random guess and
/// always predicting the most frequent class.
public struct ChanceLevel: Codable, Sendable {
    /// Expected macro F1 of uniform random guessing: per class c, precision p_c and recall
    /// 1/K give F1_c = 2 p_c (1/K) / (p_c + 1/K), averaged over all K classes (random
    /// guesses cover every class, so every class enters scikit-learn's macro average).
    public var uniformMacroF1: Double
    /// Expected accuracy (= micro F1) of uniform guessing: 1/K.
    public var uniformAccuracy: Double
    /// Accuracy of always answering the most frequent class.
    public var majorityAccuracy: Double
    /// UAR of uniform guessing (1/K) and of always answering the majority class (1 / the
    /// number of classes present).
    public var uniformUAR: Double?
    public var majorityUAR: Double?

    public init(references: [Int], classes: Int) {
        let n = Double(max(references.count, 1))
        var counts = [Int](repeating: 0, count: classes)
        for reference in references where reference < classes { counts[reference] += 1 }
        let uniform = 1 / Double(max(classes, 1))
        uniformMacroF1 = counts.map { count -> Double in
            let p = Double(count) / n
            return 2 * p * uniform / (p + uniform)
        }.reduce(0, +) / Double(max(classes, 1))
        uniformAccuracy = uniform
        majorityAccuracy = Double(counts.max() ?? 0) / n
        uniformUAR = uniform
        majorityUAR = 1 / Double(max(counts.filter { $0 > 0 }.count, 1))
    }
}
