import CHDF5
import CHDF5Shims

/// A failed HDF5 operation, naming the file, the object inside it and what was attempted.
public struct HDF5Error: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var object: String
    public var problem: String

    public init(file: String, object: String, problem: String) {
        self.file = file
        self.object = object
        self.problem = problem
    }

    public var description: String {
        object.isEmpty || object == "/" ? "\(file): \(problem)" : "\(file): \(object): \(problem)"
    }
}

/// Turns an HDF5 return value into a thrown ``HDF5Error``; the one place codes are checked.
/// HDF5 returns a negative `herr_t` or `hid_t` on failure.
@inline(__always)
func check<T: BinaryInteger>(_ value: T, file: String, object: String, _ problem: @autoclosure () -> String) throws -> T {
    if value < 0 { throw HDF5Error(file: file, object: object, problem: problem()) }
    return value
}

/// Owns HDF5's global setup: the library's own error-stack printing is turned off once, so
/// errors are reported by this wrapper with the file and object named; and the library's
/// clean-up at process exit is switched off. That clean-up closes every file still open, and
/// HDF5 1.10 dereferences a null pointer closing a file whose earlier close failed (a full
/// disk: the message was printed, then the process died of SIGSEGV). Every file we write is
/// closed (and checked) explicitly before it counts as written, so nothing relies on it.
enum HDF5Library {
    static let ready: Bool = {
        H5dont_atexit()  // before the library initialises: it registers the handler then
        H5open()
        vavl_h5_silence_errors()
        return true
    }()
}
