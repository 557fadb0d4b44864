@testable import VAVLCore
import XCTest

/// The dropout mask: the eight-lane generator against its one-lane definition, the rate it
/// realises, and that it is keyed by what DESIGN §5 says and nothing else.
final class DropoutTests: XCTestCase {
    func makeContext(seed: UInt64 = 7, keys: [UInt64]) -> RunContext {
        let registry = ParameterRegistry()
        let context = RunContext(store: ParameterStore(registry))
        context.mode = .training
        context.seed = seed
        context.utteranceKeys = keys
        return context
    }

    /// The multipliers of every row, as (row, channel) → value.
    func masks(_ dropout: Dropout, columns: Int, segments: Segments, _ context: RunContext) -> [[Float]] {
        let values = Matrix(rows: segments.totalRows, columns: columns)
        for i in 0..<values.count { values.data[i] = 1 }
        dropout.apply(values.data, columns: columns, segments: segments, context)
        return (0..<values.rows).map { row in Array(UnsafeBufferPointer(start: values.row(row), count: columns)) }
    }

    func testVectorMultipliersMatchTheOneLaneDefinition() {
        let threshold: UInt32 = 6554, scale: Float = 1 / 0.9
        for columns in [1, 5, 15, 16, 17, 37, 64, 200, 2048] {
            let multipliers = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            defer { multipliers.deallocate() }
            for rowKey: UInt32 in [0, 1, 0xDEAD_BEEF, .max] {
                Dropout.fillMultipliers(multipliers, count: columns, rowKey: rowKey, threshold: threshold, scale: scale)
                for channel in 0..<columns {
                    let expected: Float = Dropout.keeps(rowKey: rowKey, channel: channel, threshold: threshold) ? scale : 0
                    XCTAssertEqual(multipliers[channel], expected, "columns \(columns), row key \(rowKey), channel \(channel)")
                }
            }
        }
    }

    func testRealisedRateIsTheProbability() {
        let segments = Segments(lengths: [120, 80, 200])
        for probability: Float in [0.1, 0.2, 0.5] {
            let dropout = Dropout(ParameterRegistry(), "dropout", probability: probability)
            let rows = masks(dropout, columns: 512, segments: segments, makeContext(keys: [3, 9, 4]))
            let all = rows.flatMap { $0 }
            let dropped = Double(all.filter { $0 == 0 }.count) / Double(all.count)
            // 204,800 draws: four standard deviations are below 0.5 percentage points.
            let sigma = (Double(probability) * (1 - Double(probability)) / Double(all.count)).squareRoot()
            XCTAssertEqual(dropped, Double(probability), accuracy: 4 * sigma, "p = \(probability)")
            XCTAssertTrue(all.allSatisfy { $0 == 0 || abs($0 - 1 / (1 - probability)) < 1e-6 })
            // Each channel position is dropped at the same rate (no lane is biased).
            for lane in [0, 7, 8, 15] {
                let column = rows.flatMap { row in stride(from: lane, to: 512, by: 16).map { row[$0] } }
                let rate = Double(column.filter { $0 == 0 }.count) / Double(column.count)
                let laneSigma = (Double(probability) * (1 - Double(probability)) / Double(column.count)).squareRoot()
                XCTAssertEqual(rate, Double(probability), accuracy: 5 * laneSigma, "p = \(probability), lane \(lane)")
            }
        }
    }

    func testMaskDependsOnTheKeysOnly() {
        let dropout = Dropout(ParameterRegistry(), "dropout", probability: 0.5)
        let other = Dropout(ParameterRegistry(), "other", probability: 0.5)
        // Utterance key 9 first in one batch and second in another: the same mask.
        let first = masks(dropout, columns: 48, segments: Segments(lengths: [5, 3]), makeContext(keys: [9, 4]))
        let second = masks(dropout, columns: 48, segments: Segments(lengths: [2, 5]), makeContext(keys: [1, 9]))
        XCTAssertEqual(Array(first[0..<5]), Array(second[2..<7]))
        // Frames, utterances, layers, seeds and iterations all change it.
        XCTAssertNotEqual(first[0], first[1])
        XCTAssertNotEqual(first[0], second[0])
        XCTAssertNotEqual(first, masks(other, columns: 48, segments: Segments(lengths: [5, 3]), makeContext(keys: [9, 4])))
        XCTAssertNotEqual(first, masks(dropout, columns: 48, segments: Segments(lengths: [5, 3]), makeContext(seed: 8, keys: [9, 4])))
        let later = makeContext(keys: [9, 4])
        later.iteration = 1
        XCTAssertNotEqual(first, masks(dropout, columns: 48, segments: Segments(lengths: [5, 3]), later))
    }

    func testMaskedCopyEqualsCopyThenMask() {
        let segments = Segments(lengths: [7, 1, 12])
        let dropout = Dropout(ParameterRegistry(), "dropout", probability: 0.25)
        let context = makeContext(keys: [2, 5, 8])
        let source = GradientCheck.randomMatrix(rows: segments.totalRows, columns: 40, seed: 3)
        let inPlace = Matrix(), copied = Matrix(rows: source.rows, columns: source.columns)
        inPlace.copy(from: source)
        dropout.apply(inPlace.data, columns: 40, segments: segments, context)
        dropout.apply(to: copied.data, from: source.data, columns: 40, segments: segments, context)
        XCTAssertEqual(inPlace.array, copied.array)
    }
}
