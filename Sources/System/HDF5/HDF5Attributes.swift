import CHDF5
import CHDF5Shims
import Foundation

/// Attributes of groups, files and datasets: strings, string lists, integers, floats and JSON.
/// The corresponding C functions are `H5Acreate2`, `H5Awrite`, `H5Aopen` and `H5Aread`.
extension HDF5Object {
    /// Whether the attribute exists. `H5Aexists`.
    public func hasAttribute(_ name: String) -> Bool {
        H5Aexists(id, name) > 0
    }

    /// The names of this object's attributes.
    public func attributeNames() -> [String] {
        var info = H5O_info_t()
        guard H5Oget_info2(id, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else { return [] }
        return (0..<info.num_attrs).compactMap { index -> String? in
            let length = H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, vavl_h5p_default())
            guard length >= 0 else { return nil }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, Int(length) + 1, vavl_h5p_default())
            return String(cString: buffer)
        }
    }

    // MARK: - Writing

    private func writeAttribute(_ name: String, type: hid_t, shape: [Int]?, _ write: (hid_t) -> herr_t) throws {
        if H5Aexists(id, name) > 0 { H5Adelete(id, name) }
        let space: hid_t
        if let shape {
            var dims = shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(dims.count), &dims, nil)
        } else {
            space = H5Screate(H5S_SCALAR)
        }
        defer { H5Sclose(space) }
        let attribute = try check(H5Acreate2(id, name, type, space, vavl_h5p_default(), vavl_h5p_default()),
                                  file: fileName, object: path, "cannot create attribute '\(name)'")
        defer { H5Aclose(attribute) }
        _ = try check(write(attribute), file: fileName, object: path, "cannot write attribute '\(name)'")
    }

    public func setAttribute(_ name: String, string: String) throws {
        let type = HDF5Strings.variableLengthType()
        defer { H5Tclose(type) }
        try HDF5Strings.withCStrings([string]) { pointers in
            try writeAttribute(name, type: type, shape: nil) { attribute in
                pointers.withUnsafeBytes { H5Awrite(attribute, type, $0.baseAddress!) }
            }
        }
    }

    public func setAttribute(_ name: String, strings: [String]) throws {
        let type = HDF5Strings.variableLengthType()
        defer { H5Tclose(type) }
        try HDF5Strings.withCStrings(strings) { pointers in
            try writeAttribute(name, type: type, shape: [strings.count]) { attribute in
                pointers.withUnsafeBytes { H5Awrite(attribute, type, $0.baseAddress!) }
            }
        }
    }

    public func setAttribute<T: HDF5Scalar>(_ name: String, value: T) throws {
        try writeAttribute(name, type: T.nativeType, shape: nil) { attribute in
            withUnsafeBytes(of: value) { H5Awrite(attribute, T.nativeType, $0.baseAddress!) }
        }
    }

    public func setAttribute<T: HDF5Scalar>(_ name: String, values: [T]) throws {
        try writeAttribute(name, type: T.nativeType, shape: [values.count]) { attribute in
            values.withUnsafeBytes { H5Awrite(attribute, T.nativeType, $0.baseAddress!) }
        }
    }

    /// Stores `value` as a JSON string attribute (sorted keys, so equal values give equal files).
    public func setAttribute<T: Encodable>(_ name: String, json value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try setAttribute(name, string: String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    // MARK: - Reading

    private func withAttribute<R>(_ name: String, _ body: (hid_t, hid_t, hid_t, Int) throws -> R) throws -> R {
        guard H5Aexists(id, name) > 0 else { throw error("missing attribute '\(name)'") }
        let attribute = try check(H5Aopen(id, name, vavl_h5p_default()), file: fileName, object: path,
                                  "cannot open attribute '\(name)'")
        defer { H5Aclose(attribute) }
        let type = H5Aget_type(attribute)
        defer { H5Tclose(type) }
        let space = H5Aget_space(attribute)
        defer { H5Sclose(space) }
        let count = Int(H5Sget_simple_extent_npoints(space))
        return try body(attribute, type, space, count)
    }

    private func readStringAttribute(_ name: String) throws -> [String] {
        try withAttribute(name) { attribute, type, space, count in
            guard H5Tget_class(type) == H5T_STRING else {
                throw error("attribute '\(name)' is \(typeClassName(H5Tget_class(type))), expected string")
            }
            guard let strings = try HDF5Strings.read(count: count, fileType: type, space: space, {
                H5Aread(attribute, $0, $1)
            }) else { throw error("cannot read attribute '\(name)'") }
            return strings
        }
    }

    public func stringAttribute(_ name: String) throws -> String {
        let strings = try readStringAttribute(name)
        guard strings.count == 1 else { throw error("attribute '\(name)' holds \(strings.count) strings, expected 1") }
        return strings[0]
    }

    public func stringsAttribute(_ name: String) throws -> [String] {
        try readStringAttribute(name)
    }

    public func attribute<T: HDF5Scalar>(_ name: String, as type: T.Type = T.self) throws -> T {
        let values: [T] = try attributeValues(name)
        guard values.count == 1 else { throw error("attribute '\(name)' holds \(values.count) values, expected 1") }
        return values[0]
    }

    public func attributeValues<T: HDF5Scalar>(_ name: String, as type: T.Type = T.self) throws -> [T] {
        try withAttribute(name) { attribute, fileType, _, count in
            guard H5Tget_class(fileType) == T.typeClass else {
                throw error("attribute '\(name)' is \(typeClassName(H5Tget_class(fileType))), expected \(T.typeName)")
            }
            var values = [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
            let status = values.withUnsafeMutableBytes { H5Aread(attribute, T.nativeType, $0.baseAddress!) }
            _ = try check(status, file: fileName, object: path, "cannot read attribute '\(name)'")
            return values
        }
    }

    /// Decodes a JSON string attribute. `userInfo` reaches the type's decoder; errors the
    /// type throws itself (naming what it checks) pass through unchanged.
    public func attribute<T: Decodable>(_ name: String, json type: T.Type,
                                        userInfo: [CodingUserInfoKey: Any] = [:]) throws -> T {
        let text = try stringAttribute(name)
        let decoder = JSONDecoder()
        decoder.userInfo = userInfo
        do {
            return try decoder.decode(T.self, from: Data(text.utf8))
        } catch let error as DecodingError {
            throw self.error("attribute '\(name)' is not valid JSON for \(T.self): \(error)")
        }
    }
}
