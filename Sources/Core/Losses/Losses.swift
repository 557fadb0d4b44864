#if canImport(Glibc)
import Glibc
#endif

/// Losses with their gradients, normalised by the **global** number N of utterances taking
/// part in a phase (DESIGN §3, §4.3), so that R ranks with B/R utterances each produce the
/// gradient one process produces on B. Each function returns this rank's share of the loss
/// (summing the shares over ranks gives the loss) and writes dL/dprediction.
public enum Losses {
    /// Cross-entropy Σ_b −log p_b[c_b] / N, c_b the first maximal index of label row b
    /// (hard), or Σ_b Σ_k −y_bk log p_bk / N (soft).
    /// - logits, labels, gradient: (B, K).
    public static func crossEntropy(logits: Matrix, labels: Matrix, soft: Bool, globalCount: Int,
                                    gradient: Matrix) -> Double {
        let rows = logits.rows, k = logits.columns
        gradient.resize(rows: rows, columns: k)
        var loss: Double = 0
        let inverseN = 1 / Double(max(globalCount, 1))
        for b in 0..<rows {
            let z = logits.row(b), y = labels.row(b), g = gradient.row(b)
            var maximum = -Float.infinity
            for i in 0..<k { maximum = max(maximum, z[i]) }
            var sum: Double = 0
            for i in 0..<k { sum += exp(Double(z[i]) - Double(maximum)) }
            let logSum = log(sum) + Double(maximum)
            if soft {
                var mass: Double = 0
                for i in 0..<k {
                    loss -= Double(y[i]) * (Double(z[i]) - logSum)
                    mass += Double(y[i])
                }
                for i in 0..<k {
                    let p = exp(Double(z[i]) - logSum)
                    g[i] = Float((p * mass - Double(y[i])) * inverseN)
                }
            } else {
                var target = 0
                for i in 1..<max(k, 1) where y[i] > y[target] { target = i }
                loss -= Double(z[target]) - logSum
                for i in 0..<k {
                    let p = exp(Double(z[i]) - logSum)
                    g[i] = Float((p - (i == target ? 1 : 0)) * inverseN)
                }
            }
        }
        return loss * inverseN
    }

    /// L1: Σ_b Σ_k |ŷ_bk − y_bk| / (N·K); the gradient of |0| is 0 (as PyTorch).
    public static func meanAbsoluteError(predictions: Matrix, labels: Matrix, globalCount: Int, gradient: Matrix) -> Double {
        let count = predictions.count, k = predictions.columns
        gradient.resize(rows: predictions.rows, columns: k)
        let scale = 1 / Double(max(globalCount, 1) * k)
        var loss: Double = 0
        for i in 0..<count {
            let difference = predictions.data[i] - labels.data[i]
            loss += Double(abs(difference))
            gradient.data[i] = Float(Double(difference > 0 ? 1 : (difference < 0 ? -1 : 0)) * scale)
        }
        return loss * scale
    }

    /// Reconstruction MSE Σ_b Σ_j (rec_bj − x̄_bj)² / (N·d).
    public static func meanSquaredError(predictions: Matrix, targets: Matrix, globalCount: Int, gradient: Matrix) -> Double {
        let count = predictions.count, d = predictions.columns
        gradient.resize(rows: predictions.rows, columns: d)
        let scale = 1 / Double(max(globalCount, 1) * d)
        var loss: Double = 0
        for i in 0..<count {
            let difference = Double(predictions.data[i]) - Double(targets.data[i])
            loss += difference * difference
            gradient.data[i] = Float(2 * difference * scale)
        }
        return loss * scale
    }

    /// Sufficient statistics of CCC per output k: (n, Σŷ, Σy, Σŷ², Σy², Σŷy), 6 Doubles per
    /// output, in that order. Summing them over ranks gives the global batch's statistics.
    public static func concordanceStatistics(predictions: Matrix, labels: Matrix) -> [Double] {
        let k = predictions.columns
        var statistics = [Double](repeating: 0, count: 6 * k)
        for b in 0..<predictions.rows {
            let p = predictions.row(b), y = labels.row(b)
            for i in 0..<k {
                let pv = Double(p[i]), yv = Double(y[i])
                statistics[6 * i] += 1
                statistics[6 * i + 1] += pv
                statistics[6 * i + 2] += yv
                statistics[6 * i + 3] += pv * pv
                statistics[6 * i + 4] += yv * yv
                statistics[6 * i + 5] += pv * yv
            }
        }
        return statistics
    }

    /// CCC_k = 2 s_ŷy / (s_ŷ + s_y + (μ_ŷ − μ_y)²) with population moments; 0 when n ≤ 1 or
    /// the denominator is 0.
    public static func concordance(_ statistics: [Double], output k: Int) -> Double {
        let n = statistics[6 * k]
        guard n > 1 else { return 0 }
        let mp = statistics[6 * k + 1] / n, my = statistics[6 * k + 2] / n
        let vp = statistics[6 * k + 3] / n - mp * mp, vy = statistics[6 * k + 4] / n - my * my
        let cov = statistics[6 * k + 5] / n - mp * my
        let denominator = vp + vy + (mp - my) * (mp - my)
        return denominator > 0 ? 2 * cov / denominator : 0
    }

    /// Σ_k (1 − CCC_k) from the global statistics, and its gradient with respect to this
    /// rank's predictions (B, K). The loss is a batch statistic, not a per-sample mean, so
    /// every rank returns the full loss; callers count it once.
    public static func concordanceLoss(predictions: Matrix, labels: Matrix, globalStatistics s: [Double],
                                       gradient: Matrix) -> Double {
        let rows = predictions.rows, k = predictions.columns
        gradient.resize(rows: rows, columns: k)
        var loss: Double = 0
        for i in 0..<k {
            let n = s[6 * i]
            loss += 1 - concordance(s, output: i)
            guard n > 1 else {
                for b in 0..<rows { gradient.row(b)[i] = 0 }
                continue
            }
            let mp = s[6 * i + 1] / n, my = s[6 * i + 2] / n
            let vp = s[6 * i + 3] / n - mp * mp, vy = s[6 * i + 4] / n - my * my
            let cov = s[6 * i + 5] / n - mp * my
            let numerator = 2 * cov
            let denominator = vp + vy + (mp - my) * (mp - my)
            guard denominator > 0 else {
                for b in 0..<rows { gradient.row(b)[i] = 0 }
                continue
            }
            for b in 0..<rows {
                let p = Double(predictions.row(b)[i]), y = Double(labels.row(b)[i])
                let dNumerator = 2 * (y - my) / n
                let dDenominator = 2 * (p - mp) / n + 2 * (mp - my) / n
                let dConcordance = (dNumerator * denominator - numerator * dDenominator) / (denominator * denominator)
                gradient.row(b)[i] = Float(-dConcordance)
            }
        }
        return loss
    }
}
