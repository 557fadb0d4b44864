import CHDF5
import CHDF5Shims

/// How a new dataset is laid out on disk.
public struct DatasetLayout: Sendable {
    /// Rows per chunk (the chunk spans all columns); `nil` stores the dataset contiguous.
    public var chunkRows: Int?
    /// gzip level 1–9, or `nil` for none (requires chunking).
    public var compression: Int?
    /// Whether the first dimension may grow (for appending row by row; requires chunking).
    public var extendible: Bool

    public init(chunkRows: Int? = nil, compression: Int? = nil, extendible: Bool = false) {
        self.chunkRows = chunkRows
        self.compression = compression
        self.extendible = extendible
    }

    public static let contiguous = DatasetLayout()
}

/// An open dataset. The corresponding C functions are `H5Dcreate2`, `H5Dopen2`, `H5Dwrite`,
/// `H5Dread`, `H5Dset_extent` and `H5Sselect_hyperslab`.
public final class HDF5Dataset: HDF5Object {
    init(id: hid_t, fileName: String, path: String) {
        super.init(id: id, fileName: fileName, path: path, close: { H5Dclose($0) })
    }

    /// The current extent, one entry per dimension (empty for a scalar).
    public var shape: [Int] {
        let space = H5Dget_space(id)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.prefix(rank).map { Int($0) }
    }

    /// The number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// The stored element type's class and size in bytes, e.g. (float, 4).
    public var storedType: (typeClass: H5T_class_t, size: Int) {
        let type = H5Dget_type(id)
        defer { H5Tclose(type) }
        return (H5Tget_class(type), H5Tget_size(type))
    }

    /// Checks that the file really stores what the dataset's extent promises, before anything
    /// is read or allocated from it. HDF5 reads storage that was never written (an unallocated
    /// contiguous dataset, a missing chunk) as the fill value — zeros — without an error, so
    /// a damaged or forged file whose extent claims 2·10⁹ frames would read as plausible
    /// zeros, or send a reader allocating for them. Contiguous data must be allocated whole
    /// and lie inside the file; chunked data must have every chunk its extent needs; and no
    /// dataset may occupy more bytes than the file has (`fileSize`).
    public func checkStorage(fileSize: Int) throws {
        let count = elementCount
        guard count > 0 else { return }
        let stored = Int(H5Dget_storage_size(id))
        guard stored <= fileSize else {
            throw error("the dataset claims \(stored) bytes of storage, more than the file's \(fileSize)")
        }
        let properties = H5Dget_create_plist(id)
        defer { H5Pclose(properties) }
        switch H5Pget_layout(properties) {
        case H5D_CONTIGUOUS:
            let (bytes, overflow) = count.multipliedReportingOverflow(by: storedType.size)
            let offset = H5Dget_offset(id)
            guard !overflow, stored == bytes, bytes <= fileSize, offset != haddr_t.max, offset <= haddr_t(fileSize - bytes) else {
                throw error("the file does not hold the dataset's \(shape) values (\(stored) bytes stored, the extent needs \(overflow ? "more than 2⁶³" : String(bytes)))")
            }
        case H5D_CHUNKED:
            let dims = shape
            var chunk = [hsize_t](repeating: 0, count: dims.count)
            guard H5Pget_chunk(properties, Int32(dims.count), &chunk) == Int32(dims.count), chunk.allSatisfy({ $0 > 0 }) else {
                throw error("unreadable chunk layout")
            }
            var needed = 1
            for (extent, size) in zip(dims, chunk) {
                let (product, overflow) = needed.multipliedReportingOverflow(by: (extent + Int(size) - 1) / Int(size))
                guard !overflow else { throw error("the extent \(dims) needs more chunks than any file holds") }
                needed = product
            }
            var allocated: hsize_t = 0
            let space = H5Dget_space(id)
            defer { H5Sclose(space) }
            guard H5Dget_num_chunks(id, space, &allocated) >= 0 else { throw error("cannot count the stored chunks") }
            guard Int(allocated) == needed else {
                throw error("\(allocated) of the \(needed) chunks of the extent \(dims) are stored: the file is damaged or truncated (the rest would read as zeros)")
            }
        default:
            break  // compact: the data lives in the object header, which HDF5 has read already
        }
    }

    private func requireClass(_ expected: H5T_class_t, _ expectedName: String) throws {
        let stored = storedType.typeClass
        guard stored == expected else {
            throw error("dataset is \(typeClassName(stored)), expected \(expectedName)")
        }
    }

    // MARK: - Writing

    /// Overwrites the whole dataset with `values` (count must equal ``elementCount``).
    public func write<T: HDF5Scalar>(_ values: UnsafeBufferPointer<T>) throws {
        guard values.count == elementCount else {
            throw error("writing \(values.count) values into a dataset of \(elementCount)")
        }
        if values.isEmpty { return }
        _ = try check(H5Dwrite(id, T.nativeType, vavl_h5s_all(), vavl_h5s_all(), vavl_h5p_default(), values.baseAddress!),
                      file: fileName, object: path, "cannot write the dataset")
    }

    public func write<T: HDF5Scalar>(_ values: [T]) throws {
        try values.withUnsafeBufferPointer { try write($0) }
    }

    /// Appends `rows` rows (`values.count == rows × columns`) to an extendible dataset.
    public func append<T: HDF5Scalar>(_ values: UnsafeBufferPointer<T>) throws {
        let current = shape
        let columns = current.dropFirst().reduce(1, *)
        guard columns > 0, values.count % columns == 0 else {
            throw error("appending \(values.count) values to rows of \(columns)")
        }
        let rows = values.count / columns
        if rows == 0 { return }
        var newShape = current.map { hsize_t($0) }
        newShape[0] += hsize_t(rows)
        _ = try check(H5Dset_extent(id, &newShape), file: fileName, object: path,
                      "cannot extend the dataset (was it created extendible?)")
        try writeRows(Int(current[0])..<(Int(current[0]) + rows), values, columns: columns)
    }

    public func append<T: HDF5Scalar>(_ values: [T]) throws {
        try values.withUnsafeBufferPointer { try append($0) }
    }

    /// Tests: grows the first dimension by `rows` without writing them (storage the file does
    /// not hold, as a damaged or forged file would claim).
    public func extendWithoutWritingForTesting(rows: Int) throws {
        var newShape = shape.map { hsize_t($0) }
        newShape[0] += hsize_t(rows)
        _ = try check(H5Dset_extent(id, &newShape), file: fileName, object: path, "cannot extend the dataset")
    }

    /// Overwrites rows `rows` of an existing dataset (`values.count == rows.count × columns`).
    public func writeRows<T: HDF5Scalar>(_ rows: Range<Int>, _ values: [T]) throws {
        let columns = shape.dropFirst().reduce(1, *)
        guard values.count == rows.count * columns, rows.upperBound <= (shape.first ?? 0) else {
            throw error("writing \(values.count) values into rows \(rows) of \(shape)")
        }
        try values.withUnsafeBufferPointer { try writeRows(rows, $0, columns: columns) }
    }

    private func writeRows<T: HDF5Scalar>(_ rows: Range<Int>, _ values: UnsafeBufferPointer<T>, columns: Int) throws {
        let fileSpace = H5Dget_space(id)
        defer { H5Sclose(fileSpace) }
        let rank = Int(H5Sget_simple_extent_ndims(fileSpace))
        var start = [hsize_t](repeating: 0, count: rank)
        var count = shape.map { hsize_t($0) }
        start[0] = hsize_t(rows.lowerBound)
        count[0] = hsize_t(rows.count)
        H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil)
        let memorySpace = H5Screate_simple(Int32(rank), &count, nil)
        defer { H5Sclose(memorySpace) }
        _ = try check(H5Dwrite(id, T.nativeType, memorySpace, fileSpace, vavl_h5p_default(), values.baseAddress!),
                      file: fileName, object: path, "cannot write rows \(rows)")
    }

    // MARK: - Reading

    /// Reads the whole dataset. Float data stored as float64 is converted to `T`; a dataset of
    /// another class (integers read as floats, strings as numbers) is an error.
    public func read<T: HDF5Scalar>(as type: T.Type = T.self) throws -> [T] {
        try requireClass(T.typeClass, T.typeName)
        let count = elementCount
        var values = [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        if count == 0 { return values }
        let status = values.withUnsafeMutableBytes {
            H5Dread(id, T.nativeType, vavl_h5s_all(), vavl_h5s_all(), vavl_h5p_default(), $0.baseAddress!)
        }
        _ = try check(status, file: fileName, object: path, "cannot read the dataset")
        return values
    }

    /// Reads rows `rows` of a dataset of rank ≥ 1 into `destination`
    /// (`rows.count × columns` values), touching no other part of the file.
    public func readRows<T: HDF5Scalar>(_ rows: Range<Int>, into destination: UnsafeMutableBufferPointer<T>) throws {
        try requireClass(T.typeClass, T.typeName)
        let extent = shape
        guard !extent.isEmpty else { throw error("a scalar dataset has no rows") }
        guard rows.lowerBound >= 0, rows.upperBound <= extent[0] else {
            throw error("rows \(rows.lowerBound)..<\(rows.upperBound) are past the end (\(extent[0]) rows)")
        }
        let columns = extent.dropFirst().reduce(1, *)
        guard destination.count >= rows.count * columns else {
            throw error("destination holds \(destination.count) values, rows need \(rows.count * columns)")
        }
        if rows.isEmpty || columns == 0 { return }
        let fileSpace = H5Dget_space(id)
        defer { H5Sclose(fileSpace) }
        var start = [hsize_t](repeating: 0, count: extent.count)
        var count = extent.map { hsize_t($0) }
        start[0] = hsize_t(rows.lowerBound)
        count[0] = hsize_t(rows.count)
        H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil)
        let memorySpace = H5Screate_simple(Int32(extent.count), &count, nil)
        defer { H5Sclose(memorySpace) }
        _ = try check(H5Dread(id, T.nativeType, memorySpace, fileSpace, vavl_h5p_default(), destination.baseAddress!),
                      file: fileName, object: path, "cannot read rows \(rows.lowerBound)..<\(rows.upperBound)")
    }

    /// Reads rows `rows` into a new array.
    public func readRows<T: HDF5Scalar>(_ rows: Range<Int>, as type: T.Type = T.self) throws -> [T] {
        let columns = shape.dropFirst().reduce(1, *)
        let count = rows.count * columns
        var values = [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        try values.withUnsafeMutableBufferPointer { try readRows(rows, into: $0) }
        return values
    }

    /// Reads a string dataset (variable- or fixed-length).
    public func readStrings() throws -> [String] {
        try requireClass(H5T_STRING, "string")
        let type = H5Dget_type(id)
        defer { H5Tclose(type) }
        let space = H5Dget_space(id)
        defer { H5Sclose(space) }
        guard let strings = try HDF5Strings.read(count: elementCount, fileType: type, space: space, {
            H5Dread(id, $0, vavl_h5s_all(), vavl_h5s_all(), vavl_h5p_default(), $1)
        }) else { throw error("cannot read the strings") }
        return strings
    }
}

extension HDF5Group {
    /// Creates a numeric dataset of `shape` (first dimension 0 with `layout.extendible` to append).
    /// The corresponding C function is `H5Dcreate2`.
    /// Tests: removes the link `name` (to forge files whose datasets were never written).
    public func removeForTesting(_ name: String) throws {
        _ = try check(H5Ldelete(id, name, vavl_h5p_default()), file: fileName, object: path, "cannot remove '\(name)'")
    }

    public func createDataset<T: HDF5Scalar>(_ name: String, of type: T.Type, shape: [Int],
                                             layout: DatasetLayout = .contiguous) throws -> HDF5Dataset {
        try createDataset(name, fileType: T.nativeType, shape: shape, layout: layout)
    }

    private func createDataset(_ name: String, fileType: hid_t, shape: [Int], layout: DatasetLayout) throws -> HDF5Dataset {
        var dims = shape.map { hsize_t($0) }
        var maxDims = dims
        if layout.extendible && !maxDims.isEmpty { maxDims[0] = vavl_h5s_unlimited() }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, &maxDims)
        defer { H5Sclose(space) }
        let properties = H5Pcreate(vavl_h5p_dataset_create())
        defer { H5Pclose(properties) }
        let chunkRows = layout.chunkRows ?? (layout.extendible || layout.compression != nil ? 1024 : nil)
        if let chunkRows, !shape.isEmpty {
            var chunk = dims.map { max($0, 1) }
            chunk[0] = hsize_t(max(1, chunkRows))
            H5Pset_chunk(properties, Int32(chunk.count), &chunk)
            if let level = layout.compression { H5Pset_deflate(properties, UInt32(level)) }
        }
        let linkProperties = H5Pcreate(H5P_CLS_LINK_CREATE_ID_g)
        defer { H5Pclose(linkProperties) }
        H5Pset_create_intermediate_group(linkProperties, 1)
        let datasetID = H5Dcreate2(id, name, fileType, space, linkProperties, properties, vavl_h5p_default())
        _ = try check(datasetID, file: fileName, object: childPath(name), "cannot create the dataset")
        return HDF5Dataset(id: datasetID, fileName: fileName, path: childPath(name))
    }

    /// Opens an existing dataset. The corresponding C function is `H5Dopen2`.
    public func openDataset(_ name: String) throws -> HDF5Dataset {
        guard contains(name) else { throw HDF5Error(file: fileName, object: childPath(name), problem: "missing dataset") }
        let datasetID = H5Dopen2(id, name, vavl_h5p_default())
        _ = try check(datasetID, file: fileName, object: childPath(name), "not a dataset")
        return HDF5Dataset(id: datasetID, fileName: fileName, path: childPath(name))
    }

    /// Writes a numeric dataset in one call.
    @discardableResult
    public func writeDataset<T: HDF5Scalar>(_ name: String, _ values: [T], shape: [Int]? = nil,
                                            layout: DatasetLayout = .contiguous) throws -> HDF5Dataset {
        let dataset = try createDataset(name, of: T.self, shape: shape ?? [values.count], layout: layout)
        try dataset.write(values)
        return dataset
    }

    /// Writes a 1-D variable-length UTF-8 string dataset.
    @discardableResult
    public func writeStrings(_ name: String, _ strings: [String]) throws -> HDF5Dataset {
        let type = HDF5Strings.variableLengthType()
        defer { H5Tclose(type) }
        let dataset = try createDataset(name, fileType: type, shape: [strings.count], layout: .contiguous)
        if strings.isEmpty { return dataset }
        try HDF5Strings.withCStrings(strings) { pointers in
            let status = pointers.withUnsafeBytes {
                H5Dwrite(dataset.id, type, vavl_h5s_all(), vavl_h5s_all(), vavl_h5p_default(), $0.baseAddress!)
            }
            _ = try check(status, file: fileName, object: dataset.path, "cannot write the strings")
        }
        return dataset
    }
}
