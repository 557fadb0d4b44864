import CHDF5
import CHDF5Shims

/// A numeric element type stored in HDF5 datasets and attributes.
public protocol HDF5Scalar: BitwiseCopyable {
    /// The native memory type (`H5T_NATIVE_*`).
    static var nativeType: hid_t { get }
    /// The type class a file dataset must have to be read as this type (HDF5 converts
    /// within a class, e.g. float64 to float32, but never between classes).
    static var typeClass: H5T_class_t { get }
    static var typeName: String { get }
}

extension Float: HDF5Scalar {
    public static var nativeType: hid_t { vavl_h5t_native_float() }
    public static var typeClass: H5T_class_t { H5T_FLOAT }
    public static var typeName: String { "float32" }
}

extension Double: HDF5Scalar {
    public static var nativeType: hid_t { vavl_h5t_native_double() }
    public static var typeClass: H5T_class_t { H5T_FLOAT }
    public static var typeName: String { "float64" }
}

extension Int64: HDF5Scalar {
    public static var nativeType: hid_t { vavl_h5t_native_int64() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var typeName: String { "int64" }
}

func typeClassName(_ typeClass: H5T_class_t) -> String {
    switch typeClass {
    case H5T_FLOAT: return "float"
    case H5T_INTEGER: return "integer"
    case H5T_STRING: return "string"
    case H5T_COMPOUND: return "compound"
    case H5T_ARRAY: return "array"
    case H5T_ENUM: return "enum"
    default: return "class \(typeClass.rawValue)"
    }
}
