import CHDF5
import CHDF5Shims

extension HDF5Group {
    /// Writes fixed-length, null-padded ASCII strings, the layout numpy byte strings get in
    /// h5py. The project itself writes variable-length UTF-8; this exists so that tests can
    /// prove the readers accept what other tools write.
    public func writeFixedLengthStringsForTesting(_ name: String, _ strings: [String], width: Int) throws {
        let type = H5Tcopy(vavl_h5t_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, width)
        H5Tset_strpad(type, H5T_STR_NULLPAD)
        var dims = [hsize_t(strings.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        let dataset = try check(H5Dcreate2(id, name, type, space, vavl_h5p_default(), vavl_h5p_default(), vavl_h5p_default()),
                                file: fileName, object: childPath(name), "cannot create the dataset")
        defer { H5Dclose(dataset) }
        var bytes = [UInt8](repeating: 0, count: strings.count * width)
        for (index, string) in strings.enumerated() {
            for (offset, byte) in string.utf8.prefix(width).enumerated() { bytes[index * width + offset] = byte }
        }
        _ = try check(H5Dwrite(dataset, type, vavl_h5s_all(), vavl_h5s_all(), vavl_h5p_default(), bytes),
                      file: fileName, object: childPath(name), "cannot write the strings")
    }
}
