import Foundation
@testable import VAVLData
import XCTest

/// `.npz` feature archives: archives NumPy 2.4.6 wrote (embedded below), a stored archive
/// written here, damaged and hostile archives, and import/predict of `.npz` folders.
final class NumpyArchiveTests: CorpusTestCase {
    /// `np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 - 1` as NumPy saved it.
    let expected: [Float] = (0..<12).map { Float($0) * 0.5 - 1 }
    /// `np.savez(f, a)`: one stored member `arr_0.npy`, ZIP64 placeholders in its local header.
    let stored = "UEsDBC0AAAAAAAAAIQCZMCIT//////////8JABQAYXJyXzAubnB5AQAQALAAAAAAAAAAsAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywgNCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCgAAgL8AAAC/AAAAAAAAAD8AAIA/AADAPwAAAEAAACBAAABAQAAAYEAAAIBAAACQQFBLAQItAy0AAAAAAAAAIQCZMCITsAAAALAAAAAJAAAAAAAAAAAAAACAAQAAAABhcnJfMC5ucHlQSwUGAAAAAAEAAQA3AAAA6wAAAAAA"
    /// `np.savez_compressed(f, a.astype(np.float64))`: one deflated member.
    let deflated = "UEsDBC0AAAAIAAAAIQCi+USC//////////8JABQAYXJyXzAubnB5AQAQAOAAAAAAAAAAaQAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBuk2ahrqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RrGOgommjoKtQpkAy4GMPiwH0I/gNIw8MAeKg+lf0BpBgcIxQKlOaA0D5QWgNJCDgBQSwECLQMtAAAACAAAACEAovlEgmkAAADgAAAACQAAAAAAAAAAAAAAgAEAAAAAYXJyXzAubnB5UEsFBgAAAAABAAEANwAAAKQAAAAAAA=="
    /// `np.savez_compressed(f, features=a)`: a named member.
    let named = "UEsDBC0AAAAIAAAAIQCZMCIT//////////8MABQAZmVhdHVyZXMubnB5AQAQALAAAAAAAAAAZwAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBuk2airqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RrGOgommjoKtQpkAy4Ghob9DAwMIAwC9kA+EB8AYgYHBgYFIHYA4gQgbgDiCQ4AUEsBAi0DLQAAAAgAAAAhAJkwIhNnAAAAsAAAAAwAAAAAAAAAAAAAAIABAAAAAGZlYXR1cmVzLm5weVBLBQYAAAAAAQABADoAAAClAAAAAAA="
    /// `np.savez(f, a, a)`: two arrays.
    let two = "UEsDBC0AAAAAAAAAIQCZMCIT//////////8JABQAYXJyXzAubnB5AQAQALAAAAAAAAAAsAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywgNCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCgAAgL8AAAC/AAAAAAAAAD8AAIA/AADAPwAAAEAAACBAAABAQAAAYEAAAIBAAACQQFBLAwQtAAAAAAAAACEAmTAiE///////////CQAUAGFycl8xLm5weQEAEACwAAAAAAAAALAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsIDQpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8AAABAAAAgQAAAQEAAAGBAAACAQAAAkEBQSwECLQMtAAAAAAAAACEAmTAiE7AAAACwAAAACQAAAAAAAAAAAAAAgAEAAAAAYXJyXzAubnB5UEsBAi0DLQAAAAAAAAAhAJkwIhOwAAAAsAAAAAkAAAAAAAAAAAAAAIAB6wAAAGFycl8xLm5weVBLBQYAAAAAAgACAG4AAADWAQAAAAA="

    func archive(_ base64: String, _ name: String) throws -> String {
        let file = path(name)
        try XCTUnwrap(Data(base64Encoded: base64)).write(to: URL(fileURLWithPath: file))
        return file
    }

    func testArchivesNumPyWroteReadLikeTheirArray() throws {
        for (base64, name, storedType) in [(stored, "stored.npz", "<f4"), (deflated, "deflated.npz", "<f8"), (named, "named.npz", "<f4")] {
            let file = try archive(base64, name)
            let matrix = try NumpyFile.read(file, utterance: "u")
            XCTAssertEqual(matrix.rows, 3, name)
            XCTAssertEqual(matrix.columns, 4, name)
            XCTAssertEqual(matrix.values, expected, name)
            XCTAssertEqual(matrix.storedType, storedType, name)
            let header = try NumpyFile.readHeader(file, utterance: "u")
            XCTAssertEqual(header.shape, [3, 4], name)
            XCTAssertEqual(header.descr, storedType, name)
        }
    }

    func testSeveralArraysAreRefusedByName() throws {
        let file = try archive(two, "two.npz")
        assertCorpusError(file: file, utterance: "u", mentioning: "holds 2 arrays (arr_0.npy, arr_1.npy)") {
            _ = try NumpyFile.read(file, utterance: "u")
        }
    }

    /// A damaged byte in the compressed data, a truncated file, a size the data cannot have,
    /// an encrypted member and a foreign method: clear errors naming the file.
    func testDamagedAndHostileArchivesAreClearErrors() throws {
        var bytes = [UInt8](try XCTUnwrap(Data(base64Encoded: deflated)))
        let cases: [(String, (inout [UInt8]) -> Void, String)] = [
            ("bitflip.npz", { $0[90] ^= 0x40 }, "corrupt file"),
            ("truncated.npz", { $0.removeLast(30) }, "end-of-central-directory"),
            ("empty.npz", { $0 = [] }, "shorter than any ZIP file"),
            ("bomb.npz", { bytes in
                // The central directory's uncompressed size (offset 24 of the entry) set to 2 GiB.
                let entry = Self.find([0x50, 0x4B, 0x01, 0x02], in: bytes)
                bytes.replaceSubrange((entry + 24)..<(entry + 28), with: [0, 0, 0, 0x80])
            }, "deflate cannot produce"),
            ("huge.npz", { bytes in
                let entry = Self.find([0x50, 0x4B, 0x01, 0x02], in: bytes)
                bytes.replaceSubrange((entry + 24)..<(entry + 28), with: [0xFE, 0xFF, 0xFF, 0xFF])
                bytes.replaceSubrange((entry + 20)..<(entry + 24), with: [0xFE, 0xFF, 0xFF, 0x7F])
            }, "run past"),
            ("encrypted.npz", { bytes in bytes[Self.find([0x50, 0x4B, 0x01, 0x02], in: bytes) + 8] |= 1 }, "encrypted"),
            ("bzip2.npz", { bytes in bytes[Self.find([0x50, 0x4B, 0x01, 0x02], in: bytes) + 10] = 12 }, "compression method 12"),
        ]
        for (name, damage, mentioning) in cases {
            var damaged = bytes
            damage(&damaged)
            let file = path(name)
            try Data(damaged).write(to: URL(fileURLWithPath: file))
            assertCorpusError(file: file, utterance: "u", mentioning: mentioning) { _ = try NumpyFile.read(file, utterance: "u") }
        }
        bytes = []
    }

    /// Random damage never crashes or hangs the reader: every one of 3,000 mutants of the
    /// three archives (one to eight bytes overwritten, or cut short) either reads as a 3 × 4
    /// matrix or is a `CorpusError` naming the file. (The module is built with bounds and
    /// overflow checks: an out-of-range access would trap and fail the suite.)
    func testRandomlyDamagedArchivesNeverCrash() throws {
        var generator = SystemRandomNumberGenerator()
        var rejected = 0
        for (index, base64) in [stored, deflated, named].enumerated() {
            let original = [UInt8](try XCTUnwrap(Data(base64Encoded: base64)))
            for trial in 0..<1000 {
                var bytes = original
                if trial % 10 == 9 {
                    bytes.removeLast(Int.random(in: 1...bytes.count, using: &generator))
                } else {
                    for _ in 0..<Int.random(in: 1...8, using: &generator) {
                        bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                    }
                }
                let file = path("mutant-\(index).npz")
                try Data(bytes).write(to: URL(fileURLWithPath: file))
                do {
                    let matrix = try NumpyFile.read(file, utterance: "u")
                    XCTAssertEqual(matrix.values.count, matrix.rows * matrix.columns)
                } catch let error as CorpusError {
                    XCTAssertEqual(error.file.hasPrefix(file), true, "\(error)")
                    rejected += 1
                }
            }
        }
        XCTAssertGreaterThan(rejected, 2000, "most mutants are damaged beyond reading")
    }

    /// A folder of `.npz` files imports to the same corpus as the same arrays in `.npy` files;
    /// both kinds for one utterance is an error.
    func testImportReadsNpzLikeNpy() throws {
        let labels = path("labels.csv")
        try "FileName,angry,sad,SpkrID,Gender,Split_Set\na.wav,1,0,1,Male,Train\nb.wav,0,1,2,Female,Test\n"
            .write(toFile: labels, atomically: true, encoding: .utf8)
        for kind in ["npy", "npz"] {
            for modality in ["audio", "video"] {
                try FileManager.default.createDirectory(atPath: path("\(kind)/\(modality)"), withIntermediateDirectories: true)
                for id in ["a", "b"] {
                    let file = path("\(kind)/\(modality)/\(id).\(kind)")
                    if kind == "npy" {
                        try NumpyFile.write(file, rows: 3, columns: 4, values: expected)
                    } else {
                        try XCTUnwrap(Data(base64Encoded: id == "a" ? stored : named)).write(to: URL(fileURLWithPath: file))
                    }
                }
            }
            _ = try importCorpus(ImportOptions(labelFile: labels, audioDirectory: path("\(kind)/audio"),
                                               videoDirectory: path("\(kind)/video"), task: .categorical,
                                               output: path("\(kind).h5")))
        }
        let fromNpy = try Corpus.open(path("npy.h5")), fromNpz = try Corpus.open(path("npz.h5"))
        for modality in [Modality.audio, .video] {
            for utterance in 0..<2 {
                XCTAssertEqual(try fromNpz.frames(modality, utterance: utterance), try fromNpy.frames(modality, utterance: utterance))
            }
        }
        try NumpyFile.write(path("npz/audio/a.npy"), rows: 3, columns: 4, values: expected)
        assertCorpusError(file: path("npz/audio"), utterance: "a", mentioning: "both a.npy and a.npz") {
            _ = try importCorpus(ImportOptions(labelFile: labels, audioDirectory: path("npz/audio"), videoDirectory: path("npz/video"),
                                               task: .categorical, output: path("both.h5")))
        }
    }

    static func find(_ signature: [UInt8], in bytes: [UInt8]) -> Int {
        (0...(bytes.count - signature.count)).first { Array(bytes[$0..<($0 + signature.count)]) == signature }!
    }
}
