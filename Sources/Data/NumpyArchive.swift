import CZlib
import Foundation

/// Reads a NumPy `.npz` archive holding one array — what `numpy.savez(path, features)` and
/// `numpy.savez_compressed` write: a ZIP file whose single member (`arr_0.npy`, or any name)
/// is a `.npy` file, stored or deflated.
///
/// What is read of the ZIP format: the end-of-central-directory record (and the ZIP64
/// locator and record when a count, size or offset needs 64 bits), the central directory's
/// entries (name, flags, method, CRC-32, sizes, local header offset, ZIP64 extra field) and
/// the member's local header (its name and extra lengths, to find the data). Sizes come from
/// the central directory because NumPy writes members streaming, with ZIP64 placeholders in
/// the local header. Every count, size and offset is checked against the file before
/// anything is allocated; the inflated bytes must have the declared size and CRC-32.
/// Encrypted members, other compression methods, archives of several arrays and members
/// above 4 GiB are errors naming the file.
enum NumpyArchive {
    /// The largest member accepted: a feature matrix is far smaller (4 GiB is 1024 float32
    /// dimensions × a million frames), and the declared size is allocated.
    static let maximumMemberBytes = 1 << 32

    /// Where the one member's data lies, and how to decode it.
    struct Member {
        var name: String
        var deflated: Bool
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var dataOffset: Int
    }

    /// The header of the archive's array (only its first bytes are inflated).
    static func readHeader(_ path: String, utterance: String?) throws -> NumpyFile.Header {
        let file = try contents(path, utterance: utterance)
        return try file.withUnsafeBytes { raw in
            let member = try locate(raw, path: path, utterance: utterance)
            let prefix = try memberBytes(raw, member, limit: min(member.size, NumpyFile.headerLimit), path: path, utterance: utterance)
            return try prefix.withUnsafeBytes {
                try NumpyFile.parseHeader([UInt8]($0), path: path + ":" + member.name, utterance: utterance)
            }
        }
    }

    /// The archive's array.
    static func read(_ path: String, utterance: String?) throws -> NumpyFile.Matrix {
        let file = try contents(path, utterance: utterance)
        return try file.withUnsafeBytes { raw in
            let member = try locate(raw, path: path, utterance: utterance)
            let bytes = try memberBytes(raw, member, limit: member.size, path: path, utterance: utterance)
            let crc = bytes.withUnsafeBytes { Self.crc32(of: $0) }
            guard crc == member.crc else {
                throw CorpusError(file: path, utterance: utterance,
                                  "member \(member.name): CRC-32 \(hex(crc)) but the archive says \(hex(member.crc)) (corrupt file)")
            }
            return try bytes.withUnsafeBytes {
                try NumpyFile.decode($0, path: path + ":" + member.name, utterance: utterance)
            }
        }
    }

    private static func contents(_ path: String, utterance: String?) throws -> Data {
        try NumpyFile.requireRegularFile(path, utterance: utterance)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CorpusError(file: path, utterance: utterance, "cannot read the .npz file")
        }
        return data
    }

    // MARK: - ZIP structure

    private static let endOfCentralDirectory: UInt32 = 0x0605_4B50
    private static let zip64Locator: UInt32 = 0x0706_4B50
    private static let zip64EndOfCentralDirectory: UInt32 = 0x0606_4B50
    private static let centralEntry: UInt32 = 0x0201_4B50
    private static let localHeader: UInt32 = 0x0403_4B50

    /// Finds the archive's one member through the central directory.
    static func locate(_ raw: UnsafeRawBufferPointer, path: String, utterance: String?) throws -> Member {
        func fail(_ problem: String) -> CorpusError { CorpusError(file: path, utterance: utterance, "not a readable .npz archive: \(problem)") }
        let reader = ByteReader(raw)
        // The end record: 22 bytes plus a comment of at most 65,535 bytes, at the very end.
        guard raw.count >= 22 else { throw fail("\(raw.count) bytes, shorter than any ZIP file") }
        var end = -1
        for offset in stride(from: raw.count - 22, through: max(0, raw.count - 22 - 65_535), by: -1)
        where reader.u32(offset) == endOfCentralDirectory && offset + 22 + Int(reader.u16(offset + 20)!) == raw.count {
            end = offset
            break
        }
        guard end >= 0 else { throw fail("no end-of-central-directory record") }
        var entries = Int(reader.u16(end + 10)!)
        var directorySize = Int(reader.u32(end + 12)!)
        var directoryOffset = Int(reader.u32(end + 16)!)
        if entries == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            guard end >= 20, reader.u32(end - 20) == zip64Locator, let recordOffset = reader.offset64(end - 12),
                  reader.u32(recordOffset) == zip64EndOfCentralDirectory,
                  let count = reader.offset64(recordOffset + 32), let size = reader.offset64(recordOffset + 40),
                  let start = reader.offset64(recordOffset + 48) else {
                throw fail("a ZIP64 archive without a valid ZIP64 end record")
            }
            (entries, directorySize, directoryOffset) = (count, size, start)
        }
        guard directoryOffset <= end, directorySize <= end - directoryOffset else {
            throw fail("the central directory (offset \(directoryOffset), \(directorySize) bytes) lies outside the file")
        }
        guard entries == 1 else {
            let names = (try? entryNames(reader, from: directoryOffset, count: min(entries, 8))) ?? []
            throw CorpusError(file: path, utterance: utterance, "the archive holds \(entries) arrays"
                              + (names.isEmpty ? "" : " (\(names.joined(separator: ", ")))")
                              + "; one array per utterance is expected (numpy.savez(path, features))")
        }
        // The one central directory entry.
        let entry = directoryOffset
        guard reader.u32(entry) == centralEntry, let flags = reader.u16(entry + 8), let method = reader.u16(entry + 10),
              let crc = reader.u32(entry + 16), let compressed32 = reader.u32(entry + 20), let size32 = reader.u32(entry + 24),
              let nameLength = reader.u16(entry + 28), let extraLength = reader.u16(entry + 30),
              let local32 = reader.u32(entry + 42), let name = reader.string(entry + 46, count: Int(nameLength)) else {
            throw fail("a damaged central directory entry")
        }
        var compressedSize = Int(compressed32), size = Int(size32), localOffset = Int(local32)
        if size32 == 0xFFFF_FFFF || compressed32 == 0xFFFF_FFFF || local32 == 0xFFFF_FFFF {
            // The ZIP64 extra field holds, in this order, each value whose 32-bit field is full.
            guard let extra = reader.zip64Extra(entry + 46 + Int(nameLength), length: Int(extraLength)) else {
                throw fail("member \(name): sizes need a ZIP64 extra field, which is missing or damaged")
            }
            var field = extra.lowerBound
            func next() throws -> Int {
                guard field + 8 <= extra.upperBound, let value = reader.offset64(field) else {
                    throw fail("member \(name): a short ZIP64 extra field")
                }
                field += 8
                return value
            }
            if size32 == 0xFFFF_FFFF { size = try next() }
            if compressed32 == 0xFFFF_FFFF { compressedSize = try next() }
            if local32 == 0xFFFF_FFFF { localOffset = try next() }
        }
        guard flags & 1 == 0 else { throw fail("member \(name) is encrypted") }
        guard method == 0 || method == 8 else {
            throw fail("member \(name) uses compression method \(method); only stored (0) and deflate (8) are read")
        }
        guard size <= maximumMemberBytes else {
            throw CorpusError(file: path, utterance: utterance, "member \(name) declares \(size) bytes, above the \(maximumMemberBytes)-byte limit for one feature matrix")
        }
        // Deflate never expands data more than 1032-fold: a larger declared size is a lie
        // (or a decompression bomb), refused before its buffer is allocated.
        guard method == 8 ? size <= 1032 * compressedSize + 1024 : size == compressedSize else {
            throw fail("member \(name) declares \(size) bytes from \(compressedSize) compressed bytes, which \(method == 8 ? "deflate cannot produce" : "a stored member cannot have")")
        }
        guard localOffset < directoryOffset, let localNameLength = reader.u16(localOffset + 26),
              let localExtraLength = reader.u16(localOffset + 28), reader.u32(localOffset) == localHeader else {
            throw fail("member \(name): no local header at offset \(localOffset)")
        }
        let dataOffset = localOffset + 30 + Int(localNameLength) + Int(localExtraLength)
        guard dataOffset <= directoryOffset, compressedSize <= directoryOffset - dataOffset else {
            throw fail("member \(name): its \(compressedSize) bytes at offset \(dataOffset) run past the member's end")
        }
        return Member(name: name, deflated: method == 8, crc: crc, compressedSize: compressedSize, size: size, dataOffset: dataOffset)
    }

    private static func entryNames(_ reader: ByteReader, from offset: Int, count: Int) throws -> [String] {
        var names: [String] = [], entry = offset
        for _ in 0..<count {
            guard reader.u32(entry) == centralEntry, let nameLength = reader.u16(entry + 28), let extraLength = reader.u16(entry + 30),
                  let commentLength = reader.u16(entry + 32), let name = reader.string(entry + 46, count: Int(nameLength)) else { break }
            names.append(name)
            entry += 46 + Int(nameLength) + Int(extraLength) + Int(commentLength)
        }
        return names
    }

    // MARK: - Member data

    /// The first `limit` bytes of the member (all of it when `limit` is its size).
    private static func memberBytes(_ raw: UnsafeRawBufferPointer, _ member: Member, limit: Int, path: String,
                                    utterance: String?) throws -> Data {
        let source = UnsafeRawBufferPointer(rebasing: raw[member.dataOffset..<(member.dataOffset + member.compressedSize)])
        guard member.deflated else { return Data(source.prefix(limit)) }
        var output = Data(count: limit)
        let produced = try output.withUnsafeMutableBytes { destination in
            try inflate(source, into: destination, wholeMember: limit == member.size, path: path, name: member.name, utterance: utterance)
        }
        guard produced == limit else {
            throw CorpusError(file: path, utterance: utterance, "member \(member.name): \(produced) bytes inflated, the archive declares \(member.size) (corrupt file)")
        }
        return output
    }

    /// Raw deflate (no zlib header) of `source` into `destination`; returns the bytes written.
    /// With `wholeMember`, the stream must end exactly when the destination is full.
    private static func inflate(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                                wholeMember: Bool, path: String, name: String, utterance: String?) throws -> Int {
        func fail(_ problem: String) -> CorpusError { CorpusError(file: path, utterance: utterance, "member \(name): \(problem) (corrupt file)") }
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var consumed = 0, produced = 0
        // zlib counts in 32 bits: feed and drain it in pieces of at most 1 GiB.
        let piece = 1 << 30
        while true {
            if stream.avail_in == 0 && consumed < source.count {
                let count = min(piece, source.count - consumed)
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress!.advanced(by: consumed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(count)
                consumed += count
            }
            let room = min(piece, destination.count - produced)
            if room == 0 {
                if !wholeMember { return produced }
                // Full: the stream must end here (one more call with no room says so).
                var probe: UInt8 = 0
                stream.next_out = withUnsafeMutablePointer(to: &probe) { $0 }
                stream.avail_out = 0
                let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                if status == Z_STREAM_END { return produced }
                throw fail("more data than the declared size")
            }
            stream.next_out = destination.baseAddress!.advanced(by: produced).assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(room)
            let inputBefore = stream.avail_in
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            produced += room - Int(stream.avail_out)
            switch status {
            case Z_STREAM_END: return produced
            case Z_OK, Z_BUF_ERROR:
                // Every call consumes input or produces output; one that can do neither ends
                // the loop (no hang on damaged data).
                if stream.avail_in == inputBefore && Int(stream.avail_out) == room {
                    throw fail(stream.avail_in == 0 && consumed == source.count ? "the compressed data ends early"
                                                                                : "invalid deflate data")
                }
            default: throw fail("invalid deflate data (zlib status \(status))")
            }
        }
    }

    static func crc32(of bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: uLong = CZlib.crc32(0, nil, 0), offset = 0
        while offset < bytes.count {
            let count = min(1 << 30, bytes.count - offset)
            crc = CZlib.crc32(crc, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(count))
            offset += count
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    private static func hex(_ value: UInt32) -> String { String(format: "%08x", value) }
}

/// Little-endian fields of a byte buffer, nil where a field would run past its end.
private struct ByteReader {
    let raw: UnsafeRawBufferPointer
    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }

    func u16(_ offset: Int) -> UInt16? {
        offset >= 0 && offset <= raw.count - 2 ? UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) : nil
    }

    func u32(_ offset: Int) -> UInt32? {
        offset >= 0 && offset <= raw.count - 4 ? UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) : nil
    }

    /// A 64-bit size or offset, nil when it does not fit in an Int.
    func offset64(_ offset: Int) -> Int? {
        guard offset >= 0, offset <= raw.count - 8 else { return nil }
        let value = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        return value <= UInt64(Int.max) ? Int(value) : nil
    }

    func string(_ offset: Int, count: Int) -> String? {
        guard offset >= 0, count >= 0, offset <= raw.count - count else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)]), as: UTF8.self)
    }

    /// The data range of the ZIP64 extra block (id 0x0001) among the extra fields at `offset`.
    func zip64Extra(_ offset: Int, length: Int) -> Range<Int>? {
        var field = offset
        while field + 4 <= offset + length {
            guard let id = u16(field), let size = u16(field + 2) else { return nil }
            let data = field + 4
            guard data + Int(size) <= offset + length, data + Int(size) <= raw.count else { return nil }
            if id == 0x0001 { return data..<(data + Int(size)) }
            field = data + Int(size)
        }
        return nil
    }
}
