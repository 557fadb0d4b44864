import Foundation
@testable import VAVLExperiments
import VAVLTraining
import XCTest

/// The statistics of repeated runs against values computed with SciPy 1.17 / NumPy
/// (`scipy.special.betainc`, `scipy.stats.t.cdf`, `ttest_rel`, `ttest_ind(equal_var=False)`,
/// `numpy.std(ddof=1)`, `numpy.quantile`); the numbers are embedded, Python is not run.
final class StatisticsTests: XCTestCase {
    let tolerance = 1e-6
    // Five runs of two systems (paired by seed) and a third system with seven runs.
    let a = [0.779, 0.801, 0.765, 0.790, 0.772]
    let b = [0.751, 0.780, 0.760, 0.770, 0.741]
    let c = [0.70, 0.74, 0.69, 0.73, 0.71, 0.75, 0.68]

    func testMeanSampleStandardDeviationAndQuantiles() {
        XCTAssertEqual(Statistics.mean(a), 0.7814, accuracy: tolerance)
        XCTAssertEqual(Statistics.sampleStandardDeviation(a), 0.014328293687665687, accuracy: tolerance)
        XCTAssertEqual(Statistics.mean(c), 0.7142857142857143, accuracy: tolerance)
        XCTAssertEqual(Statistics.sampleStandardDeviation(c), 0.0263673679998231, accuracy: tolerance)
        XCTAssertEqual(Statistics.quantile(c, 0.25), 0.695, accuracy: tolerance)
        XCTAssertEqual(Statistics.quantile(c, 0.5), 0.71, accuracy: tolerance)
        XCTAssertEqual(Statistics.quantile(c, 0.75), 0.735, accuracy: tolerance)
        XCTAssertTrue(Statistics.sampleStandardDeviation([0.5]).isNaN, "one run has no sample std")
        // The check discriminates: the population std (ddof 0) of the same values is off by more than the tolerance.
        let population = (a.map { ($0 - 0.7814) * ($0 - 0.7814) }.reduce(0, +) / Double(a.count)).squareRoot()
        XCTAssertGreaterThan(abs(population - 0.014328293687665687), 100 * tolerance)
    }

    func testRegularizedIncompleteBeta() {
        let cases: [(a: Double, b: Double, x: Double, expected: Double)] = [
            (2, 3, 0.4, 0.5247999999999999),
            (0.5, 0.5, 0.2, 0.2951672353008665),
            (10, 20, 0.3, 0.3640040810719437),
            (2.5, 0.5, 0.9, 0.48958974456442755),
            (1, 1, 0.37, 0.37),
            (50, 60, 0.45, 0.4642352914306031),
        ]
        for item in cases {
            XCTAssertEqual(Statistics.regularizedIncompleteBeta(item.x, item.a, item.b), item.expected, accuracy: tolerance,
                           "I_\(item.x)(\(item.a), \(item.b))")
        }
        XCTAssertEqual(Statistics.regularizedIncompleteBeta(0, 2, 3), 0)
        XCTAssertEqual(Statistics.regularizedIncompleteBeta(1, 2, 3), 1)
    }

    func testStudentTDistribution() {
        // (t, df, CDF, two-tailed p)
        let cases: [(Double, Double, Double, Double)] = [
            (0.5, 3, 0.6742760175759245, 0.651447964848151),
            (-1.7, 4, 0.082177470635025, 0.16435494127005),
            (2.3, 7.5, 0.9737135519478155, 0.052572896104369084),
            (10, 2, 0.9950737714883372, 0.00985245702332569),
            (0.0, 5, 0.5, 1.0),
            (1.96, 1000, 0.9748634075221256, 0.050273184955748736),
            (-3, 1, 0.10241638234956672, 0.20483276469913345),
            (-0.25, 2.5, 0.41084030056265164, 0.8216806011253033),
        ]
        for (t, df, cdf, p) in cases {
            XCTAssertEqual(Statistics.studentTCDF(t, degreesOfFreedom: df), cdf, accuracy: tolerance, "CDF(\(t); \(df))")
            XCTAssertEqual(Statistics.twoTailedP(t, degreesOfFreedom: df), p, accuracy: tolerance, "p(\(t); \(df))")
        }
    }

    func testPairedTTestMatchesScipyTtestRel() {
        let test = Statistics.pairedTTest(a, b)
        XCTAssertEqual(test.kind, .paired)
        XCTAssertEqual(test.t, 4.66091599699399, accuracy: tolerance)
        XCTAssertEqual(test.degreesOfFreedom, 4)
        XCTAssertEqual(test.p, 0.009583008930266625, accuracy: tolerance)
        XCTAssertTrue(test.significant())
        // Swapping the systems flips t, not p.
        let swapped = Statistics.pairedTTest(b, a)
        XCTAssertEqual(swapped.t, -test.t, accuracy: tolerance)
        XCTAssertEqual(swapped.p, test.p, accuracy: tolerance)
        // The same data unpaired is a different test (Welch), and gives a different p.
        XCTAssertGreaterThan(abs(Statistics.welchTTest(a, b).p - test.p), 100 * tolerance)
    }

    func testWelchTTestMatchesScipyTtestIndUnequalVariance() {
        let ac = Statistics.welchTTest(a, c)
        XCTAssertEqual(ac.kind, .welch)
        XCTAssertEqual(ac.t, 5.664515562524476, accuracy: tolerance)
        XCTAssertEqual(ac.degreesOfFreedom, 9.540547526543524, accuracy: tolerance)
        XCTAssertEqual(ac.p, 0.00024810258190075923, accuracy: tolerance)
        let ba = Statistics.welchTTest(b, a)
        XCTAssertEqual(ba.t, -2.237082757664337, accuracy: tolerance)
        XCTAssertEqual(ba.degreesOfFreedom, 7.963082292236882, accuracy: tolerance)
        XCTAssertEqual(ba.p, 0.05582871867747731, accuracy: tolerance)
        XCTAssertFalse(ba.significant(), "p = 0.0558 is not below 0.05")
        XCTAssertEqual(Statistics.welchSatterthwaite(varianceA: Statistics.sampleVariance(a), countA: 5,
                                                     varianceB: Statistics.sampleVariance(c), countB: 7),
                       9.540547526543524, accuracy: tolerance)
    }

    /// Against `scipy.stats.levene(*groups, center="median")` (SciPy 1.17.1): two groups of
    /// five (the shape of a five-seed comparison), unequal sizes, three groups, an outlier.
    func testBrownForsytheMatchesScipyLeveneMedian() {
        let cases: [(groups: [[Double]], f: Double, p: Double)] = [
            ([[0.585, 0.61, 0.55, 0.62, 0.57], [0.548, 0.45, 0.66, 0.52, 0.61]], 2.9908864954432475, 0.1219896354455366),
            ([[1, 2, 4, 8], [3, 3.5, 2.5, 3.2, 2.9, 3.1]], 7.112676483983603, 0.028496239730800305),
            ([[1, 2, 3, 4, 5.5], [2, 2.1, 2.2, 2.05], [0, 10, -5, 3, 7, 1]], 4.797987718811452, 0.029434084151399795),
            ([[0.1, 0.2, 0.15, 0.3, 5.0], [0.1, 0.12, 0.11, 0.13, 0.09]], 1.1089950718951045, 0.32306556592624125),
        ]
        for (groups, f, p) in cases {
            let test = Statistics.brownForsythe(groups)
            XCTAssertEqual(test.f, f, accuracy: tolerance * max(1, f), "\(groups)")
            XCTAssertEqual(test.p, p, accuracy: tolerance, "\(groups)")
            let n = groups.reduce(0) { $0 + $1.count }
            XCTAssertEqual(test.degreesOfFreedom, [Double(groups.count - 1), Double(n - groups.count)])
        }
        // The order of the groups does not matter; a shift of one group does not change its spread.
        let two = cases[0].groups
        XCTAssertEqual(Statistics.brownForsythe([two[1], two[0]]).p, cases[0].p, accuracy: tolerance)
        XCTAssertEqual(Statistics.brownForsythe([two[0].map { $0 + 10 }, two[1]]).p, cases[0].p, accuracy: tolerance)
        XCTAssertEqual(Statistics.brownForsythe([[1, 1, 1], [1, 3, 1]]).p, 0.37390096630005887, accuracy: tolerance)
        // Deviations constant within each group: equal ones are undefined, unequal ones certain.
        XCTAssertTrue(Statistics.brownForsythe([[1, 1, 1], [2, 2, 2]]).f.isNaN)
        XCTAssertEqual(Statistics.brownForsythe([[1, 1, 1, 1], [0, 0, 2, 2]]).p, 0)
        XCTAssertTrue(Statistics.brownForsythe([[1.0, 2, 3]]).p.isNaN, "one group")
        XCTAssertTrue(Statistics.brownForsythe([[0.5, 0.7], [0.1, 0.9]]).p.isNaN, "two values a group")
    }

    func testDegenerateSamples() {
        // Identical runs: no difference, p = 1; a constant non-zero difference: p = 0.
        let same = Statistics.pairedTTest([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
        XCTAssertEqual(same.t, 0)
        XCTAssertEqual(same.p, 1)
        let shifted = Statistics.pairedTTest([0.6, 0.7, 0.8], [0.5, 0.6, 0.7].map { $0 })
        XCTAssertEqual(shifted.p, 0, accuracy: 1e-12)
        XCTAssertTrue(Statistics.pairedTTest([0.5], [0.4]).p.isNaN, "one pair has no test")
        XCTAssertTrue(Statistics.welchTTest([0.5], [0.4, 0.3]).p.isNaN)
    }
}
