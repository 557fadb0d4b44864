import Foundation
import HDF5
@testable import VAVLCore
import XCTest

/// A fixture file written by Scripts/reference/make_fixtures.py (PyTorch, float64 maths,
/// float32 storage), shipped as a test resource.
struct Fixture {
    let file: HDF5File

    init(_ name: String) throws {
        guard let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw HDF5Error(file: name, object: "", problem: "the Fixtures resource folder is missing from the test bundle")
        }
        file = try HDF5File.open(folder.appendingPathComponent(name).path)
    }

    func group(_ path: String) throws -> HDF5Group { try file.openGroup(path) }

    func floats(_ path: String) throws -> [Float] { try file.openDataset(path).read(as: Float.self) }
    func shape(_ path: String) throws -> [Int] { try file.openDataset(path).shape }
    func integers(_ path: String) throws -> [Int64] { try file.openDataset(path).read(as: Int64.self) }

    func matrix(_ path: String) throws -> Matrix {
        let dataset = try file.openDataset(path)
        let shape = dataset.shape
        let values = try dataset.read(as: Float.self)
        let rows = shape.first ?? 1
        return Matrix(rows: rows, columns: rows == 0 ? (shape.count > 1 ? shape[1] : 0) : values.count / max(rows, 1),
                      values: values)
    }

    func segments(_ path: String) throws -> Segments {
        Segments(offsets: try integers(path).map { Int($0) })
    }

    /// Names of the datasets directly under `path` (empty when the group is absent).
    func names(_ path: String) throws -> [String] {
        file.contains(path) ? try file.openGroup(path).memberNames() : []
    }

    func configuration<T: Decodable>(_ path: String, as type: T.Type) throws -> T {
        let object: HDF5Object = path == "/" ? file : try file.openGroup(path)
        return try object.attribute("config", json: T.self)
    }
}

/// Compares tensors the way llm.c's tests do: the largest absolute and relative difference
/// per named tensor, failing when the absolute difference, relative to the tensor's scale,
/// exceeds the tolerance.
struct TensorComparison {
    var tolerance: Float = 2e-5
    var lines: [String] = []

    @discardableResult
    mutating func compare(_ name: String, _ actual: [Float], _ expected: [Float], tolerance: Float? = nil,
                          absolute: Float = 0, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        guard actual.count == expected.count else {
            XCTFail("\(name): \(actual.count) values, expected \(expected.count)", file: file, line: line)
            return false
        }
        var maximumAbsolute: Float = 0, maximumRelative: Float = 0, scale: Float = 0
        for (a, e) in zip(actual, expected) {
            let difference = abs(a - e)
            maximumAbsolute = max(maximumAbsolute, difference)
            maximumRelative = max(maximumRelative, difference / max(abs(e), 1e-6))
            scale = max(scale, abs(e))
        }
        let limit = (tolerance ?? self.tolerance) * max(scale, 1e-3) + absolute
        let passed = maximumAbsolute <= limit && actual.allSatisfy(\.isFinite)
        lines.append(String(format: "%@ %-60@ max abs %.3e  max rel %.3e  (scale %.3e)", passed ? "ok  " : "FAIL",
                            name as NSString, maximumAbsolute, maximumRelative, scale))
        XCTAssertTrue(passed, "\(name): max abs difference \(maximumAbsolute) > \(limit) (max rel \(maximumRelative))",
                      file: file, line: line)
        return passed
    }

    func report(_ title: String) {
        print("— \(title)\n" + lines.joined(separator: "\n"))
    }
}
