import CHDF5
import CHDF5Shims
import Foundation

/// An open HDF5 file. Closed when the last reference goes away, or explicitly by ``close()``.
///
/// The corresponding C functions are `H5Fcreate`, `H5Fopen`, `H5Fflush` and `H5Fclose`.
public final class HDF5File: HDF5Group {
    /// Creates (or truncates) the file at `path` for writing.
    public static func create(_ path: String, overwrite: Bool = true) throws -> HDF5File {
        _ = HDF5Library.ready
        let flags = overwrite ? vavl_h5f_acc_trunc() : vavl_h5f_acc_excl()
        let id = H5Fcreate(path, flags, vavl_h5p_default(), vavl_h5p_default())
        if id < 0 {
            throw HDF5Error(file: path, object: "", problem: "cannot create the file (does the folder exist and is it writable?)")
        }
        return HDF5File(id: id, fileName: path)
    }

    /// Opens an existing file, read-only unless `writable`.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        _ = HDF5Library.ready
        guard FileManager.default.fileExists(atPath: path) else {
            throw HDF5Error(file: path, object: "", problem: "no such file")
        }
        guard H5Fis_hdf5(path) > 0 else {
            throw HDF5Error(file: path, object: "", problem: "not an HDF5 file (or it is truncated or corrupt)")
        }
        let id = H5Fopen(path, writable ? vavl_h5f_acc_rdwr() : vavl_h5f_acc_rdonly(), vavl_h5p_default())
        if id < 0 { throw HDF5Error(file: path, object: "", problem: "cannot open the file") }
        return HDF5File(id: id, fileName: path)
    }

    private init(id: hid_t, fileName: String) {
        super.init(id: id, fileName: fileName, path: "/", isFile: true)
    }

    /// Writes every buffered change to disk. The corresponding C function is `H5Fflush`.
    public func flush() throws {
        _ = try check(H5Fflush(id, H5F_SCOPE_GLOBAL), file: fileName, object: "/", "cannot flush the file")
    }
}

/// A group (or the file's root): a container of groups, datasets and attributes.
public class HDF5Group: HDF5Object {
    init(id: hid_t, fileName: String, path: String, isFile: Bool = false) {
        super.init(id: id, fileName: fileName, path: path, close: isFile ? { H5Fclose($0) } : { H5Gclose($0) })
    }

    func childPath(_ name: String) -> String {
        path == "/" ? "/" + name : path + "/" + name
    }

    /// Creates a group (intermediate groups too). The corresponding C function is `H5Gcreate2`.
    @discardableResult
    public func createGroup(_ name: String) throws -> HDF5Group {
        let linkProperties = H5Pcreate(H5P_CLS_LINK_CREATE_ID_g)
        defer { H5Pclose(linkProperties) }
        H5Pset_create_intermediate_group(linkProperties, 1)
        let groupID = H5Gcreate2(id, name, linkProperties, vavl_h5p_default(), vavl_h5p_default())
        _ = try check(groupID, file: fileName, object: childPath(name), "cannot create the group")
        return HDF5Group(id: groupID, fileName: fileName, path: childPath(name))
    }

    /// Opens an existing group. The corresponding C function is `H5Gopen2`.
    public func openGroup(_ name: String) throws -> HDF5Group {
        guard contains(name) else {
            throw HDF5Error(file: fileName, object: childPath(name), problem: "missing group")
        }
        let groupID = H5Gopen2(id, name, vavl_h5p_default())
        _ = try check(groupID, file: fileName, object: childPath(name), "not a group")
        return HDF5Group(id: groupID, fileName: fileName, path: childPath(name))
    }

    /// Whether a link `name` (a slash-separated path is checked component by component) exists.
    /// The corresponding C function is `H5Lexists`.
    public func contains(_ name: String) -> Bool {
        var prefix = ""
        for component in name.split(separator: "/") {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            if H5Lexists(id, prefix, vavl_h5p_default()) <= 0 { return false }
        }
        return !prefix.isEmpty
    }

    /// The names of the links directly under this group, in name order.
    /// The corresponding C function is `H5Literate2`… via `H5Gget_info` and `H5Lget_name_by_idx`.
    public func memberNames() throws -> [String] {
        var info = H5G_info_t()
        _ = try check(H5Gget_info(id, &info), file: fileName, object: path, "cannot list the group")
        var names: [String] = []
        for index in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, vavl_h5p_default())
            _ = try check(length, file: fileName, object: path, "cannot read a member name")
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, Int(length) + 1, vavl_h5p_default())
            names.append(String(cString: buffer))
        }
        return names
    }
}

/// Something with an HDF5 identifier, closed exactly once.
public class HDF5Object {
    public let id: hid_t
    /// The file this object lives in, for error messages.
    public let fileName: String
    /// The object's path inside the file.
    public let path: String
    private let closeFunction: (hid_t) -> herr_t
    private var isOpen = true

    init(id: hid_t, fileName: String, path: String, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.fileName = fileName
        self.path = path
        self.closeFunction = close
    }

    /// Closes the identifier now (otherwise it is closed when the object is released).
    public func close() {
        if isOpen { _ = closeFunction(id); isOpen = false }
    }

    /// Closes now and throws if that fails: closing a file writes what HDF5 still buffers,
    /// which can fail (a full disk), so a writer's success path closes this way before the
    /// file counts as written.
    public func closeChecked() throws {
        guard isOpen else { return }
        isOpen = false
        _ = try check(closeFunction(id), file: fileName, object: path, "cannot close (its last buffered writes failed)")
    }

    deinit { close() }

    func error(_ problem: String, object: String? = nil) -> HDF5Error {
        HDF5Error(file: fileName, object: object ?? path, problem: problem)
    }
}
