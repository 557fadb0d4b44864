import Foundation
import HDF5
import XCTest

final class HDF5Tests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vavl-hdf5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func testRoundTripOfEveryTypeAndAttribute() throws {
        let file = try HDF5File.create(path("round.h5"))
        try file.setAttribute("format", string: "vavl-corpus")
        try file.setAttribute("label_names", strings: ["angry", "sad", "ünïcode"])
        try file.setAttribute("version", value: Int64(1))
        try file.setAttribute("audio_fps", value: 50.0)
        try file.setAttribute("label_range", values: [1.0, 5.0])
        try file.setAttribute("sizes", values: [Int64(3), -4])
        struct Config: Codable, Equatable { var dim: Int; var task: String; var betas: [Double] }
        try file.setAttribute("config", json: Config(dim: 512, task: "categorical", betas: [0.95, 0.999]))

        let group = try file.createGroup("utterances")
        try group.writeStrings("id", ["a", "b", "", "ç"])
        try file.writeDataset("labels", [Float](arrayLiteral: 1, 2, 3, 4, 5, 6), shape: [3, 2])
        try file.writeDataset("audio/offsets", [Int64(0), 2, 2, 5])
        try file.writeDataset("doubles", [1.5, -2.5])
        try file.writeDataset("scalar", [Int64(42)], shape: [])
        let features = try file.createDataset("audio/features", of: Float.self, shape: [0, 3],
                                              layout: DatasetLayout(chunkRows: 2, compression: 4, extendible: true))
        try features.append((0..<6).map { Float($0) })
        try features.append((6..<15).map { Float($0) })
        try file.flush()
        file.close()

        let reopened = try HDF5File.open(path("round.h5"))
        XCTAssertEqual(try reopened.stringAttribute("format"), "vavl-corpus")
        XCTAssertEqual(try reopened.stringsAttribute("label_names"), ["angry", "sad", "ünïcode"])
        XCTAssertEqual(try reopened.attribute("version", as: Int64.self), 1)
        XCTAssertEqual(try reopened.attribute("audio_fps", as: Double.self), 50)
        XCTAssertEqual(try reopened.attributeValues("label_range", as: Double.self), [1, 5])
        XCTAssertEqual(try reopened.attributeValues("sizes", as: Int64.self), [3, -4])
        XCTAssertEqual(try reopened.attribute("config", json: Config.self),
                       Config(dim: 512, task: "categorical", betas: [0.95, 0.999]))
        XCTAssertEqual(Set(reopened.attributeNames()),
                       ["format", "label_names", "version", "audio_fps", "label_range", "sizes", "config"])
        XCTAssertEqual(try reopened.openGroup("utterances").openDataset("id").readStrings(), ["a", "b", "", "ç"])
        XCTAssertEqual(try reopened.openDataset("utterances/id").readStrings(), ["a", "b", "", "ç"])
        let labels = try reopened.openDataset("labels")
        XCTAssertEqual(labels.shape, [3, 2])
        XCTAssertEqual(try labels.read(as: Float.self), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try reopened.openDataset("audio/offsets").read(as: Int64.self), [0, 2, 2, 5])
        XCTAssertEqual(try reopened.openDataset("doubles").read(as: Double.self), [1.5, -2.5])
        // float64 on disk reads as float32 (same class, converted by HDF5).
        XCTAssertEqual(try reopened.openDataset("doubles").read(as: Float.self), [1.5, -2.5])
        XCTAssertEqual(try reopened.openDataset("scalar").read(as: Int64.self), [42])
        let stored = try reopened.openDataset("audio/features")
        XCTAssertEqual(stored.shape, [5, 3])
        XCTAssertEqual(try stored.read(as: Float.self), (0..<15).map { Float($0) })
        XCTAssertEqual(try reopened.memberNames(), ["audio", "doubles", "labels", "scalar", "utterances"])
        XCTAssertTrue(reopened.contains("audio/features"))
        XCTAssertFalse(reopened.contains("audio/missing/deeper"))
    }

    func testRowRangeReadReturnsOnlyThoseRows() throws {
        let file = try HDF5File.create(path("rows.h5"))
        let columns = 7
        let dataset = try file.createDataset("x", of: Float.self, shape: [0, columns],
                                             layout: DatasetLayout(chunkRows: 16, extendible: true))
        for block in 0..<10 {  // 10 appends of 13 rows
            try dataset.append((0..<(13 * columns)).map { Float(block * 13 * columns + $0) })
        }
        file.close()
        let reopened = try HDF5File.open(path("rows.h5")).openDataset("x")
        XCTAssertEqual(reopened.shape, [130, columns])
        for range in [0..<1, 5..<9, 17..<64, 129..<130, 40..<40] {
            let rows = try reopened.readRows(range, as: Float.self)
            XCTAssertEqual(rows, (range.lowerBound * columns..<range.upperBound * columns).map { Float($0) }, "\(range)")
        }
        XCTAssertThrowsError(try reopened.readRows(120..<131, as: Float.self)) { error in
            XCTAssertTrue("\(error)".contains("past the end"), "\(error)")
        }
    }

    func testMissingFileIsAClearError() {
        XCTAssertThrowsError(try HDF5File.open(path("nope.h5"))) { error in
            XCTAssertEqual("\(error)", "\(path("nope.h5")): no such file")
        }
    }

    func testNonHDF5FileIsAClearError() throws {
        try Data("not hdf5 at all".utf8).write(to: directory.appendingPathComponent("text.h5"))
        XCTAssertThrowsError(try HDF5File.open(path("text.h5"))) { error in
            XCTAssertTrue("\(error)".contains("not an HDF5 file"), "\(error)")
        }
    }

    func testMissingDatasetGroupAndAttributeAreClearErrors() throws {
        let file = try HDF5File.create(path("missing.h5"))
        try file.createGroup("audio")
        XCTAssertThrowsError(try file.openDataset("audio/features")) { error in
            XCTAssertEqual("\(error)", "\(path("missing.h5")): /audio/features: missing dataset")
        }
        XCTAssertThrowsError(try file.openGroup("video")) { error in
            XCTAssertEqual("\(error)", "\(path("missing.h5")): /video: missing group")
        }
        XCTAssertThrowsError(try file.stringAttribute("format")) { error in
            XCTAssertEqual("\(error)", "\(path("missing.h5")): missing attribute 'format'")
        }
        // A group is not a dataset.
        XCTAssertThrowsError(try file.openDataset("audio")) { error in
            XCTAssertTrue("\(error)".hasSuffix("/audio: not a dataset"), "\(error)")
        }
    }

    func testWrongDtypeIsAClearError() throws {
        let file = try HDF5File.create(path("dtype.h5"))
        try file.writeDataset("offsets", [Int64(0), 3])
        try file.writeStrings("ids", ["x"])
        try file.setAttribute("version", string: "one")
        XCTAssertThrowsError(try file.openDataset("offsets").read(as: Float.self)) { error in
            XCTAssertEqual("\(error)", "\(path("dtype.h5")): /offsets: dataset is integer, expected float32")
        }
        XCTAssertThrowsError(try file.openDataset("ids").read(as: Int64.self)) { error in
            XCTAssertTrue("\(error)".hasSuffix("/ids: dataset is string, expected int64"), "\(error)")
        }
        XCTAssertThrowsError(try file.openDataset("offsets").readStrings()) { error in
            XCTAssertTrue("\(error)".hasSuffix("dataset is integer, expected string"), "\(error)")
        }
        XCTAssertThrowsError(try file.attribute("version", as: Int64.self)) { error in
            XCTAssertTrue("\(error)".contains("attribute 'version' is string, expected int64"), "\(error)")
        }
    }

    func testFixedLengthStringsWrittenByOtherToolsAreRead() throws {
        // h5py writes numpy byte strings as fixed-length, null-padded: write one the same way.
        let file = try HDF5File.create(path("fixed.h5"))
        try file.writeFixedLengthStringsForTesting("names", ["ab", "c", "defg"], width: 5)
        XCTAssertEqual(try file.openDataset("names").readStrings(), ["ab", "c", "defg"])
    }

    func testCreateInMissingFolderIsAClearError() {
        XCTAssertThrowsError(try HDF5File.create(path("no/such/folder/x.h5"))) { error in
            XCTAssertTrue("\(error)".contains("cannot create the file"), "\(error)")
        }
    }
}
