import Foundation
@testable import VAVLData
import XCTest

/// Fuzz-style tests per input kind: seeded random hostile and boundary values, each of which
/// must end as a clean `CorpusError` naming the file (or read correctly) — never a crash, a
/// hang or a huge allocation. The module is built with Swift's bounds and overflow checks,
/// so an unchecked index or size would trap and fail the suite.
final class HostileInputTests: CorpusTestCase {
    /// Values that break sizes: zero, negative, the ends of the integer ranges, powers of two
    /// around the 32-bit boundary.
    static let hostileIntegers: [Int64] = [0, -1, 1, 2, 3, 7, -7, 255, 65_535, 1 << 31, (1 << 31) - 1, 1 << 32,
                                          1 << 40, 1 << 62, Int64.max, Int64.min, Int64.max - 1]

    /// `.npy` headers: 2,000 headers with hostile shapes, dtypes, orders, versions and
    /// lengths, over data of hostile sizes.
    func testHostileNpyHeaders() throws {
        var generator = SplitMix64(seed: 21)
        func pick<T>(_ values: [T]) -> T { values[Int(generator.next() % UInt64(values.count))] }
        let file = path("hostile.npy")
        var rejected = 0
        for _ in 0..<2000 {
            let rows = pick(Self.hostileIntegers), columns = pick(Self.hostileIntegers)
            let shape = pick(["(\(rows), \(columns))", "(\(rows),)", "()", "(\(rows), \(columns), 2)", "(3, 4)", "(a, b)", ""])
            let descr = pick(["<f4", "<f8", ">f4", "<i4", "|b1", "<f2", "'<f4'", ""])
            let order = pick(["False", "True", "None", "1"])
            var header = "{'descr': '\(descr)', 'fortran_order': \(order), 'shape': \(shape), }"
            header += String(repeating: " ", count: Int(generator.next() % 80)) + "\n"
            let version: UInt8 = pick([1, 2, 3, 0, 9])
            var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
            var length = header.utf8.count
            if generator.next() % 8 == 0 { length = Int(generator.next() % 200_000) }  // a lying header length
            if version == 1 {
                bytes += [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF)]
            } else {
                bytes += (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) }
            }
            bytes += Array(header.utf8)
            bytes += [UInt8](repeating: 0x3F, count: pick([0, 4, 48, 96, 1000]))
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            do {
                let matrix = try NumpyFile.read(file, utterance: "u")
                XCTAssertEqual(matrix.values.count, matrix.rows * matrix.columns)
                XCTAssertLessThanOrEqual(matrix.values.count * 4, bytes.count)
            } catch let error as CorpusError {
                XCTAssertEqual(error.file, file)
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 1500)
    }

    /// Corpus files: 300 corpora with hostile offsets, dimensions, label shapes, versions and
    /// ids. Each either opens and reads every utterance's frames, or is refused at open (or
    /// at the read) with an error naming the file.
    func testHostileCorpusAttributesAndOffsets() throws {
        var generator = SplitMix64(seed: 22)
        func pick<T>(_ values: [T]) -> T { values[Int(generator.next() % UInt64(values.count))] }
        let file = path("hostile.h5")
        var opened = 0, rejected = 0
        for trial in 0..<300 {
            var corpus = RawCorpus()
            corpus.audioRows = 5  // the stored frames stay as they are; only what describes them is hostile
            corpus.videoRows = 4
            switch trial % 6 {
            case 0: corpus.audioOffsets = (0..<4).map { _ in pick(Self.hostileIntegers + [0, 3, 5]) }
            case 1: corpus.videoOffsets = [0, pick(Self.hostileIntegers), 2, 4]
            case 2: corpus.version = pick(Self.hostileIntegers)
            case 3: corpus.audioDeclaredDimension = pick(Self.hostileIntegers)
            case 4: corpus.labelShape = [pick([0, 1, 3, 6, 1 << 20]), pick([0, 1, 2, 3])]
            default:
                corpus.ids = [pick(["u0", "", "../x", "u1"]), "u1", pick(["u2", "u0", "\u{0}"])]
            }
            try? FileManager.default.removeItem(atPath: file)
            do {
                try corpus.write(file)
            } catch {
                continue  // HDF5 itself refused to write it (e.g. a label shape that does not fit the values)
            }
            do {
                let opened_ = try Corpus.open(file)
                for modality in Modality.allCases {
                    for utterance in 0..<opened_.utteranceCount { _ = try opened_.frames(modality, utterance: utterance) }
                }
                opened += 1
            } catch let error as CorpusError {
                XCTAssertEqual(error.file, file, "\(error)")
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 150, "\(opened) opened")
    }

    /// Label CSVs: 400 files of hostile fields (quotes, separators, line breaks, NUL, huge
    /// and non-finite numbers, path-like and empty names, BOMs, missing or extra columns).
    /// Each imports or fails with an error naming the CSV (or a feature file), and a failed
    /// import leaves no output behind.
    func testHostileLabelCSVs() throws {
        let audio = path("audio"), video = path("video"), out = path("out")
        for folder in [audio, video, out] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        for id in ["a", "b", "c"] {
            try NumpyFile.write("\(audio)/\(id).npy", rows: 3, columns: 4, values: [Float](repeating: 0.5, count: 12))
            try NumpyFile.write("\(video)/\(id).npy", rows: 2, columns: 3, values: [Float](repeating: 0.25, count: 6))
        }
        var generator = SplitMix64(seed: 24)
        func pick<T>(_ values: [T]) -> T { values[Int(generator.next() % UInt64(values.count))] }
        let names = ["a.wav", "b.wav", "c.wav", "a", "../a.wav", "/etc/passwd", "", "\"a.wav\"", "a.wav,b.wav", "a\u{0}.wav", "\u{FEFF}a.wav", "b.wav\r"]
        let numbers = ["0.5", "1", "0", "-1", "nan", "NaN", "inf", "-inf", "1e400", "", "x", "\"0.5\"", "0x10", " 0.5 ", "1,5"]
        let splits = ["Train", "Development", "Test", "train", "", "Validation", "\"Test\""]
        var failures = 0
        for trial in 0..<400 {
            var lines = [pick(["FileName,angry,sad,SpkrID,Gender,Split_Set", "FileName,angry,sad,SpkrID,Gender,Split_Set,Extra",
                               "angry,sad,SpkrID,Gender,Split_Set", "\u{FEFF}FileName,angry,sad,SpkrID,Gender,Split_Set", "FileName"])]
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                lines.append([pick(names), pick(numbers), pick(numbers), pick(["1", "", "\"s,1\""]), pick(["Male", "Female", ""]), pick(splits)]
                    .joined(separator: pick([",", ",", ",", ";", "\t"])))
            }
            let csv = path("labels-\(trial).csv")
            try (lines.joined(separator: pick(["\n", "\r\n", "\n\n"])) + pick(["\n", "", "\"\n"])).write(toFile: csv, atomically: true, encoding: .utf8)
            let output = "\(out)/corpus-\(trial).h5"
            do {
                _ = try importCorpus(ImportOptions(labelFile: csv, audioDirectory: audio, videoDirectory: video, task: .categorical, output: output))
                _ = try Corpus.open(output)
            } catch let error as CorpusError {
                XCTAssertTrue(error.file == csv || error.file.hasPrefix(audio) || error.file.hasPrefix(video) || error.file == output, "\(error)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: output), "a failed import left \(output)")
                failures += 1
            }
        }
        XCTAssertGreaterThan(failures, 300)
        XCTAssertEqual(contents(out).filter { $0.hasPrefix(".") }, [], "temporary files left behind")
    }
}
