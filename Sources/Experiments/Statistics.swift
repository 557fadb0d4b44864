import VAVLTraining
import Foundation

/// The statistics of repeated runs (DESIGN §7): mean, sample standard deviation (ddof 1),
/// quantiles, and two-tailed t-tests — paired when both systems ran on the same seeds or
/// partitions, Welch's otherwise — with Student's t distribution from the regularised
/// incomplete beta function. Everything in Double.
public enum Statistics {
    // MARK: - Descriptive

    public static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    /// Sample variance Σ(x − x̄)² / (n − 1); NaN for fewer than two values.
    public static func sampleVariance(_ values: [Double]) -> Double {
        guard values.count > 1 else { return .nan }
        let m = mean(values)
        return values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)
    }

    /// Sample standard deviation (ddof 1, NumPy's `std(ddof=1)`); NaN for fewer than two values.
    public static func sampleStandardDeviation(_ values: [Double]) -> Double {
        sampleVariance(values).squareRoot()
    }

    /// The q-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics
    /// (NumPy's default `method="linear"`): position q·(n − 1) in the sorted values.
    public static func quantile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    // MARK: - Special functions

    /// The regularised incomplete beta function I_x(a, b) for a, b > 0, 0 ≤ x ≤ 1, by the
    /// continued fraction of Numerical Recipes (§6.4, modified Lentz), using the symmetry
    /// I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
    public static func regularizedIncompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        precondition(a > 0 && b > 0, "I_x(a, b) needs a, b > 0")
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        let front = exp(logFront)
        if x < (a + 1) / (a + b + 2) {
            return front * betaContinuedFraction(x, a, b) / a
        }
        return 1 - front * betaContinuedFraction(1 - x, b, a) / b
    }

    /// The continued fraction of I_x(a, b), evaluated by the modified Lentz method.
    static func betaContinuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300, epsilon = 1e-16
        let qab = a + b, qap = a + 1, qam = a - 1
        var c = 1.0
        var d = 1 - qab * x / qap
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...10_000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < epsilon { break }
        }
        return h
    }

    /// The cumulative distribution function of Student's t with `df` degrees of freedom:
    /// with x = ν / (ν + t²), P(T ≤ t) = 1 − ½ I_x(ν/2, ½) for t ≥ 0 and ½ I_x(ν/2, ½) below.
    public static func studentTCDF(_ t: Double, degreesOfFreedom df: Double) -> Double {
        precondition(df > 0, "Student's t needs df > 0")
        if t.isNaN { return .nan }
        if t == .infinity { return 1 }
        if t == -.infinity { return 0 }
        let tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// Two-tailed p-value P(|T| ≥ |t|) = I_{ν/(ν+t²)}(ν/2, ½), computed directly (no 1 − CDF
    /// cancellation for large |t|).
    public static func twoTailedP(_ t: Double, degreesOfFreedom df: Double) -> Double {
        if t.isNaN || df.isNaN { return .nan }
        if t.isInfinite { return 0 }
        return min(1, regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5))
    }

    // MARK: - t-tests

    /// The outcome of a two-tailed t-test of "the means differ".
    public struct TTest: Codable, Equatable, Sendable {
        public enum Kind: String, Codable, Sendable { case paired, welch }
        public var kind: Kind
        public var t: Double
        public var degreesOfFreedom: Double
        public var p: Double

        /// p < α (default 0.05, as in the paper's tables).
        public func significant(at alpha: Double = 0.05) -> Bool { p < alpha }

        enum CodingKeys: String, CodingKey { case kind, t, degreesOfFreedom = "df", p }

        public init(kind: Kind, t: Double, degreesOfFreedom: Double, p: Double) {
            self.kind = kind
            self.t = t
            self.degreesOfFreedom = degreesOfFreedom
            self.p = p
        }

        // JSON has no NaN or infinity: they are written as null and read back as NaN.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kind = try c.decode(Kind.self, forKey: .kind)
            t = try c.decodeIfPresent(Double.self, forKey: .t) ?? .nan
            degreesOfFreedom = try c.decodeIfPresent(Double.self, forKey: .degreesOfFreedom) ?? .nan
            p = try c.decodeIfPresent(Double.self, forKey: .p) ?? .nan
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encode(t.isFinite ? t : nil, forKey: .t)
            try c.encode(degreesOfFreedom.isFinite ? degreesOfFreedom : nil, forKey: .degreesOfFreedom)
            try c.encode(p.isFinite ? p : nil, forKey: .p)
        }
    }

    /// t from a mean difference and its standard error, with the degenerate cases of a zero
    /// standard error made explicit: equal means give t = 0, p = 1; different means give
    /// t = ±∞, p = 0 (SciPy returns NaN for the first).
    static func test(_ kind: TTest.Kind, difference: Double, standardError: Double, df: Double) -> TTest {
        if !(standardError > 0) || !standardError.isFinite {
            if standardError == 0 {
                if difference == 0 { return TTest(kind: kind, t: 0, degreesOfFreedom: df, p: 1) }
                return TTest(kind: kind, t: difference > 0 ? .infinity : -.infinity, degreesOfFreedom: df, p: 0)
            }
            return TTest(kind: kind, t: .nan, degreesOfFreedom: df, p: .nan)
        }
        let t = difference / standardError
        return TTest(kind: kind, t: t, degreesOfFreedom: df, p: df > 0 ? twoTailedP(t, degreesOfFreedom: df) : .nan)
    }

    /// Paired two-tailed t-test (SciPy's `ttest_rel`): d_i = a_i − b_i,
    /// t = d̄ / (s_d / √n), ν = n − 1. Needs n ≥ 2 pairs.
    public static func pairedTTest(_ a: [Double], _ b: [Double]) -> TTest {
        precondition(a.count == b.count, "a paired test needs as many values in both samples")
        let differences = zip(a, b).map { $0 - $1 }
        let n = Double(differences.count)
        guard differences.count >= 2 else { return TTest(kind: .paired, t: .nan, degreesOfFreedom: .nan, p: .nan) }
        return test(.paired, difference: mean(differences),
                    standardError: sampleStandardDeviation(differences) / n.squareRoot(), df: n - 1)
    }

    /// Welch's unequal-variance two-tailed t-test (SciPy's `ttest_ind(equal_var=False)`):
    /// t = (x̄_a − x̄_b) / √(s_a²/n_a + s_b²/n_b), with the Welch–Satterthwaite
    /// ν = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1)).
    public static func welchTTest(_ a: [Double], _ b: [Double]) -> TTest {
        guard a.count >= 2, b.count >= 2 else { return TTest(kind: .welch, t: .nan, degreesOfFreedom: .nan, p: .nan) }
        let qa = sampleVariance(a) / Double(a.count), qb = sampleVariance(b) / Double(b.count)
        let df = welchSatterthwaite(varianceA: sampleVariance(a), countA: a.count,
                                    varianceB: sampleVariance(b), countB: b.count)
        return test(.welch, difference: mean(a) - mean(b), standardError: (qa + qb).squareRoot(), df: df)
    }

    /// The Welch–Satterthwaite degrees of freedom of two samples' sample variances and sizes.
    public static func welchSatterthwaite(varianceA: Double, countA: Int, varianceB: Double, countB: Int) -> Double {
        let qa = varianceA / Double(countA), qb = varianceB / Double(countB)
        let denominator = qa * qa / Double(countA - 1) + qb * qb / Double(countB - 1)
        return denominator > 0 ? (qa + qb) * (qa + qb) / denominator : .nan
    }

    // MARK: - Equal spread

    /// The outcome of the Brown–Forsythe test of "the groups' spreads differ".
    public struct SpreadTest: Codable, Equatable, Sendable {
        public var f: Double
        public var degreesOfFreedom: [Double]
        public var p: Double

        enum CodingKeys: String, CodingKey { case f, degreesOfFreedom = "df", p }

        public init(f: Double, degreesOfFreedom: [Double], p: Double) {
            self.f = f
            self.degreesOfFreedom = degreesOfFreedom
            self.p = p
        }

        // NaN and infinity are written as null and read back as NaN, as in `TTest`.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            f = try c.decodeIfPresent(Double.self, forKey: .f) ?? .nan
            degreesOfFreedom = try c.decode([Double].self, forKey: .degreesOfFreedom)
            p = try c.decodeIfPresent(Double.self, forKey: .p) ?? .nan
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(f.isFinite ? f : nil, forKey: .f)
            try c.encode(degreesOfFreedom, forKey: .degreesOfFreedom)
            try c.encode(p.isFinite ? p : nil, forKey: .p)
        }
    }

    /// The Brown–Forsythe test for equal variances (SciPy's `levene(…, center="median")`):
    /// Levene's one-way ANOVA on the absolute deviations from each group's median,
    /// z_ij = |x_ij − median_i|,
    /// F = (N − k)/(k − 1) · Σ_i n_i (z̄_i − z̄)² / Σ_i Σ_j (z_ij − z̄_i)²,
    /// p = P(F_{k−1, N−k} > F) = I_{ν₂/(ν₂ + ν₁F)}(ν₂/2, ν₁/2). Robust to non-normal
    /// scores, which the spread of a few seeds' results is. Needs k ≥ 2 groups of at least
    /// three values (NaN otherwise; SciPy answers for two, but two values always lie at equal
    /// distances from their median, so their within-group spread is rounding noise). With no
    /// spread within groups, equal deviations give F = NaN (SciPy too), unequal ones F = ∞, p = 0.
    public static func brownForsythe(_ groups: [[Double]]) -> SpreadTest {
        let k = groups.count, n = groups.reduce(0) { $0 + $1.count }
        let df1 = Double(k - 1), df2 = Double(n - k)
        guard k >= 2, groups.allSatisfy({ $0.count >= 3 }) else {
            return SpreadTest(f: .nan, degreesOfFreedom: [df1, df2], p: .nan)
        }
        let deviations = groups.map { group in
            let median = quantile(group, 0.5)
            return group.map { abs($0 - median) }
        }
        let groupMeans = deviations.map(mean)
        let grandMean = deviations.joined().reduce(0, +) / Double(n)
        let between = zip(deviations, groupMeans).reduce(0) { $0 + Double($1.0.count) * ($1.1 - grandMean) * ($1.1 - grandMean) }
        let within = zip(deviations, groupMeans).reduce(0) { sum, pair in
            sum + pair.0.reduce(0) { $0 + ($1 - pair.1) * ($1 - pair.1) }
        }
        if within == 0 {
            return between == 0 ? SpreadTest(f: .nan, degreesOfFreedom: [df1, df2], p: .nan)
                                : SpreadTest(f: .infinity, degreesOfFreedom: [df1, df2], p: 0)
        }
        let f = (df2 / df1) * between / within
        return SpreadTest(f: f, degreesOfFreedom: [df1, df2], p: min(1, regularizedIncompleteBeta(df2 / (df2 + df1 * f), df2 / 2, df1 / 2)))
    }
}
