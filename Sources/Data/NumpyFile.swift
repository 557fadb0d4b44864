import Foundation
import HDF5

/// Reads and writes NumPy `.npy` files holding a 2-D float matrix (frames × dimensions).
///
/// Format (numpy.lib.format): the magic `\x93NUMPY`, a major and minor version byte, the
/// header length (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3), an ASCII
/// (UTF-8 in version 3) Python dict literal `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (T, D), }` padded with spaces and a newline, then the raw data.
/// Accepted: `'<f4'` (float32) and `'<f8'` (float64, rounded to Float), C order, two
/// dimensions. Anything else — Fortran order, other dtypes, big-endian, other ranks, a
/// truncated file — is a ``CorpusError`` naming the file.
public enum NumpyFile {
    /// A 2-D matrix read from a `.npy` file: `rows × columns` floats, row-major.
    public struct Matrix: Equatable, Sendable {
        public var rows: Int
        public var columns: Int
        public var values: [Float]
        /// The dtype stored in the file (`<f4` or `<f8`).
        public var storedType: String
    }

    /// The parsed header: dtype, order, shape, and where the data starts.
    public struct Header: Equatable, Sendable {
        public var descr: String
        public var fortranOrder: Bool
        public var shape: [Int]
        public var dataOffset: Int
    }

    /// A FIFO or a device named `x.npy` would block the read (or never end): only regular
    /// files (or links to them) are read.
    static func requireRegularFile(_ path: String, utterance: String?) throws {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw CorpusError(file: path, utterance: utterance, "cannot open the .npy file: \(String(cString: strerror(errno)))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw CorpusError(file: path, utterance: utterance, "not a regular file (a FIFO, device or folder): refusing to read it")
        }
    }

    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// The bytes that always hold a header (its length field allows 65,535 bytes in version 1;
    /// longer headers are refused by `parseHeader`).
    static let headerLimit = 65_536 + 12

    /// The file kinds a feature matrix is read from: `.npy`, and `.npz` holding one array.
    public static let fileExtensions = ["npy", "npz"]

    /// Whether `name` is a feature file by its extension.
    public static func isFeatureFile(_ name: String) -> Bool {
        fileExtensions.contains { name.hasSuffix("." + $0) }
    }

    /// `<folder>/<id>.npy` or `<folder>/<id>.npz`, whichever exists; nil if neither. Both at
    /// once is an error: which one is meant cannot be guessed.
    public static func featureFile(in folder: String, id: String) throws -> String? {
        let candidates = fileExtensions.map { URL(fileURLWithPath: folder).appendingPathComponent("\(id).\($0)").path }
            .filter { FileManager.default.fileExists(atPath: $0) }
        guard candidates.count <= 1 else {
            throw CorpusError(file: folder, utterance: id, "both \(id).npy and \(id).npz exist; keep one")
        }
        return candidates.first
    }

    /// Reads only the header of `path` (`.npy`, or the array of a `.npz`) and checks it
    /// describes a 2-D little-endian float32 or float64 C-order array; `utterance` is named in
    /// errors.
    public static func readHeader(_ path: String, utterance: String? = nil) throws -> Header {
        if path.hasSuffix(".npz") { return try NumpyArchive.readHeader(path, utterance: utterance) }
        try requireRegularFile(path, utterance: utterance)
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CorpusError(file: path, utterance: utterance, "cannot open the .npy file")
        }
        defer { try? handle.close() }
        let prefix = (try? handle.read(upToCount: headerLimit)) ?? Data()
        return try parseHeader([UInt8](prefix), path: path, utterance: utterance)
    }

    /// Reads the whole matrix of a `.npy` file or of a one-array `.npz` archive (`utterance`
    /// is named in errors).
    public static func read(_ path: String, utterance: String? = nil) throws -> Matrix {
        if path.hasSuffix(".npz") { return try NumpyArchive.read(path, utterance: utterance) }
        try requireRegularFile(path, utterance: utterance)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CorpusError(file: path, utterance: utterance, "cannot read the .npy file")
        }
        return try data.withUnsafeBytes { try decode($0, path: path, utterance: utterance) }
    }

    /// The matrix of the `.npy` bytes `raw` (a file's, or an archive member's).
    static func decode(_ raw: UnsafeRawBufferPointer, path: String, utterance: String?) throws -> Matrix {
        let bytes = [UInt8](raw.prefix(headerLimit))
        let header = try parseHeader(bytes, path: path, utterance: utterance)
        let rows = header.shape[0], columns = header.shape[1]
        let itemSize = header.descr == "<f4" ? 4 : 8
        // Checked arithmetic: a crafted header's shape (near 2⁶² rows, say) must not wrap
        // around to a size that happens to match the file.
        let (elements, overflowElements) = rows.multipliedReportingOverflow(by: columns)
        let (expected, overflowBytes) = elements.multipliedReportingOverflow(by: itemSize)
        let available = raw.count - header.dataOffset
        guard !overflowElements, !overflowBytes else {
            throw CorpusError(file: path, utterance: utterance,
                              "the header's shape \(rows) × \(columns) is larger than any file (the file holds \(available) bytes of data)")
        }
        guard available == expected else {
            throw CorpusError(file: path, utterance: utterance,
                              "the header promises \(rows) × \(columns) \(header.descr) values (\(expected) bytes) but the file holds \(available) bytes of data" +
                              (available < expected ? " (truncated?)" : ""))
        }
        let data = UnsafeRawBufferPointer(rebasing: raw[header.dataOffset...])
        var values = [Float](repeating: 0, count: rows * columns)
        values.withUnsafeMutableBufferPointer { destination in
            if itemSize == 4 {
                for index in 0..<destination.count {
                    destination[index] = Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                }
            } else {
                for index in 0..<destination.count {
                    destination[index] = Float(Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))))
                }
            }
        }
        return Matrix(rows: rows, columns: columns, values: values, storedType: header.descr)
    }

    static func parseHeader(_ bytes: [UInt8], path: String, utterance: String?) throws -> Header {
        func fail(_ problem: String) -> CorpusError { CorpusError(file: path, utterance: utterance, problem) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a NumPy .npy file (the magic \\x93NUMPY is missing)")
        }
        let major = bytes[6]
        let headerLength: Int
        let start: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default:
            throw fail("unsupported .npy format version \(major).\(bytes[7])")
        }
        guard bytes.count >= start + headerLength else { throw fail("truncated .npy header") }
        let text = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)

        guard let descr = value(of: "descr", in: text)?.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) else {
            throw fail("the .npy header has no 'descr': \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard descr == "<f4" || descr == "<f8" else {
            throw fail("unsupported dtype '\(descr)' (expected '<f4' float32 or '<f8' float64, little-endian)")
        }
        guard let order = value(of: "fortran_order", in: text) else { throw fail("the .npy header has no 'fortran_order'") }
        guard order == "False" else {
            throw fail("Fortran-order array: save it in C order (numpy.ascontiguousarray) before importing")
        }
        guard let shapeText = value(of: "shape", in: text), shapeText.hasPrefix("("), shapeText.hasSuffix(")") else {
            throw fail("the .npy header has no readable 'shape'")
        }
        let shape = shapeText.dropFirst().dropLast().split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let dims = shape.compactMap { Int($0) }
        guard dims.count == shape.count, dims.allSatisfy({ $0 >= 0 }) else { throw fail("unreadable shape \(shapeText)") }
        guard dims.count == 2 else {
            throw fail("expected a 2-D array of frames × dimensions, found shape \(shapeText)")
        }
        return Header(descr: descr, fortranOrder: false, shape: dims, dataOffset: start + headerLength)
    }

    /// The literal after `'key':` in a Python dict literal, up to the next top-level comma or brace.
    private static func value(of key: String, in text: String) -> String? {
        guard let keyRange = text.range(of: "'\(key)'") ?? text.range(of: "\"\(key)\"") else { return nil }
        var rest = text[keyRange.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        var depth = 0
        var end = rest.startIndex
        while end < rest.endIndex {
            let character = rest[end]
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1; if depth == 0 { end = rest.index(after: end); break } }
            if depth == 0 && (character == "," || character == "}") { break }
            end = rest.index(after: end)
        }
        return String(rest[rest.startIndex..<end]).trimmingCharacters(in: .whitespaces)
    }

    // MARK: - Writing

    /// Writes `values` (rows × columns, row-major) as a version-`version` `.npy` file of dtype
    /// `<f4`, or `<f8` when `asDouble`. The header is padded so the data starts on a
    /// 64-byte boundary, as NumPy does. For tests and tools that produce feature trees.
    public static func write(_ path: String, rows: Int, columns: Int, values: [Float],
                             asDouble: Bool = false, version: UInt8 = 1) throws {
        precondition(values.count == rows * columns, "\(values.count) values for \(rows) × \(columns)")
        let descr = asDouble ? "<f8" : "<f4"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        let prefixLength = version == 1 ? 10 : 12
        while (prefixLength + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes = magic + [version, 0]
        let length = header.utf8.count
        if version == 1 {
            bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        } else {
            bytes += [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF), UInt8((length >> 16) & 0xFF), UInt8(length >> 24)]
        }
        bytes += Array(header.utf8)
        if asDouble {
            for value in values { withUnsafeBytes(of: Double(value).bitPattern.littleEndian) { bytes += $0 } }
        } else {
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        }
        do {
            try SafeFiles.replace(path, with: Data(bytes))
        } catch {
            throw CorpusError(file: path, "cannot write the .npy file: \(error)")
        }
    }
}
