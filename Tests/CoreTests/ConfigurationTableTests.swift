import Foundation
import XCTest
@testable import VAVLCore

/// The configuration table drives JSON coding, validation and the resume check.
final class ConfigurationTableTests: XCTestCase {
    private func decode(_ json: String) throws -> VAVLConfiguration {
        let decoder = JSONDecoder()
        decoder.userInfo[VAVLConfiguration.sourceKey] = "test.json"
        return try decoder.decode(VAVLConfiguration.self, from: Data(json.utf8))
    }

    func testEveryFieldRoundTripsThroughJSONAndHasOneRow() throws {
        var configuration = VAVLConfiguration.tiny(audio: 12, video: 7, outputs: 3)
        configuration.alpha = 0.5
        configuration.precision = .bf16
        configuration.phaseOrder = [.visual, .acoustic]
        configuration.labelTransform = [LabelTransform(name: "EmoAct", flip: true, low: 1, high: 5)]
        let data = try JSONEncoder().encode(configuration)
        XCTAssertEqual(try JSONDecoder().decode(VAVLConfiguration.self, from: data), configuration)
        let keys = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any]).keys
        XCTAssertEqual(Set(keys), Set(VAVLConfiguration.fields.map(\.key)))
        XCTAssertEqual(VAVLConfiguration.fields.count, Set(VAVLConfiguration.fields.map(\.key)).count, "a key listed twice")
        // Every field names its JSON type, and its written value is of that type.
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        for field in VAVLConfiguration.fields {
            XCTAssertNotEqual(field.type, "?", "\(field.key) has no JSON type name")
            let value = object[field.key]!
            switch field.type {
            case "integer": XCTAssertNotNil(value as? Int, field.key)
            case "number", "number or null": XCTAssertTrue(value is NSNumber && !(value is Bool) || value is NSNull, field.key)
            case "boolean": XCTAssertEqual(String(cString: (value as! NSNumber).objCType), "c", field.key)
            default:
                if field.type.hasPrefix("string") { XCTAssertNotNil(value as? String, field.key) }
                if field.type.hasPrefix("list") { XCTAssertNotNil(value as? [Any], field.key) }
            }
        }
    }

    func testMissingKeysTakeTheirDefaultsAndNullAlphaIsTheTaskDefault() throws {
        let configuration = try decode(#"{"dim": 64, "heads": 4, "alpha": null}"#)
        XCTAssertEqual(configuration.dim, 64)
        XCTAssertEqual(configuration.precision, .fp32, "configs written before the precision key are fp32")
        XCTAssertNil(configuration.alpha)
        XCTAssertEqual(configuration.reconstructionWeight, 2)
    }

    func testUnknownKeysAndWrongTypesAreErrorsNamingSourceAndKey() {
        XCTAssertThrowsError(try decode(#"{"learning_rate": 0.1}"#)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("test.json") && message.contains("learning_rate") && message.contains("lr"), message)
        }
        XCTAssertThrowsError(try decode(#"{"dim": "wide"}"#)) { error in
            XCTAssertEqual((error as? ConfigurationError)?.key, "dim", "\(error)")
        }
        XCTAssertThrowsError(try decode(#"{"precision": "fp8"}"#)) { error in
            XCTAssertEqual((error as? ConfigurationError)?.key, "precision", "\(error)")
        }
    }

    func testOutOfRangeValuesAreFoundBeforeAnythingIsBuilt() throws {
        let cases: [(String, (inout VAVLConfiguration) -> Void)] = [
            ("dim", { $0.dim = -16 }), ("dim", { $0.dim = 1_000_000_000 }), ("heads", { $0.heads = 0 }),
            ("heads", { $0.heads = 3 }), ("batch_size", { $0.batchSize = -4 }), ("batch_size", { $0.batchSize = 0 }),
            ("ff_dropout", { $0.feedForwardDropout = 1.5 }), ("lr", { $0.learningRate = -1 }),
            ("lr", { $0.learningRate = .nan }), ("epochs", { $0.epochs = -1 }), ("conv_kernel", { $0.convolutionKernel = 4 }),
            ("phase_order", { $0.phaseOrder = [.visual, .visual, .visual] }), ("betas", { $0.betas = [0.9] }),
            ("sampler", { $0.sampler = "random" }),
        ]
        XCTAssertTrue(VAVLConfiguration.paper().problems().isEmpty)
        for (key, change) in cases {
            var configuration = VAVLConfiguration.paper()
            change(&configuration)
            XCTAssertEqual(configuration.problems().first?.key, key, "\(configuration.problems())")
            XCTAssertThrowsError(try configuration.validate(source: "--flags")) { error in
                XCTAssertTrue("\(error)".contains(key), "\(error)")
            }
        }
    }

    func testOnlyFixedFieldsMakeACheckpointIncompatible() {
        let stored = VAVLConfiguration.small(audio: 12, video: 7, outputs: 3)
        var resumed = stored
        resumed.epochs = 99
        resumed.learningRate = 1e-3
        XCTAssertEqual(resumed.incompatibilities(with: stored), [])
        resumed.dim = 128
        resumed.precision = .bf16
        XCTAssertEqual(resumed.incompatibilities(with: stored), ["dim 64 vs 128", "precision \"fp32\" vs \"bf16\""])
        var noReconstruction = stored
        noReconstruction.alpha = 0
        XCTAssertEqual(noReconstruction.incompatibilities(with: stored), ["reconstruction true vs false"])
    }

    /// Fuzz: 2,000 stored configurations with one or two keys set to hostile JSON (wrong
    /// types, NaN spelled as text, ±huge, negative, empty, nested). Each either decodes and
    /// validates to a configuration whose sizes are all within the table's ranges — so a
    /// model can be built from it without a huge allocation — or is a `ConfigurationError`
    /// naming the key; never a trap.
    func testHostileStoredConfigurationsAreErrorsNamingTheKey() throws {
        let valid = try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(VAVLConfiguration.tiny(audio: 8, video: 6, outputs: 3))) as? [String: Any])
        let hostile: [Any] = [-1, 0, 1, 1e308, -1e308, Double.leastNormalMagnitude / 1e12, Int64.max, Int64.min, 1 << 40, "x", "nan", "", NSNull(), [Any](), [String: Any](),
                              true, [1, 2], ["a": 1], 0.5, 3.0000001, "acoustic,visual", ["acoustic", "acoustic"], [0.9, 2.0], 2_147_483_648]
        var generator = SplitMix64(seed: 23)
        let keys = VAVLConfiguration.fields.map(\.key)
        var accepted = 0
        for _ in 0..<2000 {
            var object = valid
            for _ in 0..<(1 + Int(generator.next() % 2)) {
                object[keys[Int(generator.next() % UInt64(keys.count))]] = hostile[Int(generator.next() % UInt64(hostile.count))]
            }
            let data = try JSONSerialization.data(withJSONObject: object)
            let decoder = JSONDecoder()
            decoder.userInfo[VAVLConfiguration.sourceKey] = "fuzz"
            do {
                let configuration = try decoder.decode(VAVLConfiguration.self, from: data)
                try configuration.validate(source: "fuzz")
                XCTAssertTrue(configuration.problems().isEmpty)
                XCTAssertLessThanOrEqual(configuration.dim, 16_384)
                XCTAssertEqual(configuration.dim % configuration.heads, 0)
                accepted += 1
            } catch let error as ConfigurationError {
                XCTAssertEqual(error.source, "fuzz")
                XCTAssertNotNil(error.key, "\(error)")
            }
        }
        XCTAssertGreaterThan(accepted, 0, "some hostile values are legal (e.g. 1 for a size)")
        XCTAssertLessThan(accepted, 1500)
    }
}
