import CHDF5
import CHDF5Shims
import Glibc

/// Reading and writing string data, as h5py does by default: variable-length UTF-8.
/// Readers also accept fixed-length strings (null- or space-padded).
enum HDF5Strings {
    /// A new variable-length UTF-8 string type; the caller closes it.
    static func variableLengthType() -> hid_t {
        let type = H5Tcopy(vavl_h5t_c_s1())
        H5Tset_size(type, vavl_h5t_variable())
        H5Tset_cset(type, H5T_CSET_UTF8)
        return type
    }

    /// Calls `body` with an array of C string pointers for `strings`, valid during the call.
    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) throws -> R) rethrows -> R {
        let owned = strings.map { strdup($0) }
        defer { owned.forEach { free($0) } }
        return try body(owned.map { UnsafePointer($0) })
    }

    /// Reads `count` strings with `read(memoryType, buffer)` after inspecting `fileType`.
    static func read(count: Int, fileType: hid_t, space: hid_t,
                     _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String]? {
        if H5Tis_variable_str(fileType) > 0 {
            let memoryType = variableLengthType()
            defer { H5Tclose(memoryType) }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
            if status < 0 { return nil }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            pointers.withUnsafeMutableBytes { _ = H5Dvlen_reclaim(memoryType, space, vavl_h5p_default(), $0.baseAddress!) }
            return strings
        }
        let size = H5Tget_size(fileType)
        let memoryType = H5Tcopy(fileType)
        defer { H5Tclose(memoryType) }
        var bytes = [UInt8](repeating: 0, count: max(1, count * size))
        let status = bytes.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
        if status < 0 { return nil }
        return (0..<count).map { index in
            var slice = bytes[(index * size)..<((index + 1) * size)]
            while let last = slice.last, last == 0 || last == 0x20 { slice = slice.dropLast() }
            return String(decoding: slice, as: UTF8.self)
        }
    }
}
