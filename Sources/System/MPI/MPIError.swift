import CMPI
import CMPIShims

/// An MPI call that returned an error code (the library's handler is set to
/// `MPI_ERRORS_RETURN`, so failures reach Swift instead of killing the process silently).
public struct MPIError: Error, CustomStringConvertible {
    /// The MPI function that failed, e.g. `MPI_Allreduce`.
    public var function: String
    public var code: Int32
    /// MPI's own text for `code` (`MPI_Error_string`).
    public var message: String

    public var description: String { "\(function) failed (MPI error \(code)): \(message)" }

    init(function: String, code: Int32) {
        self.function = function
        self.code = code
        var buffer = [CChar](repeating: 0, count: Int(vavl_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        self.message = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Turns an MPI return code into a thrown ``MPIError``; the one place call sites check codes.
@inline(__always)
func check(_ code: Int32, _ function: @autoclosure () -> String) throws {
    if code != vavl_mpi_success() { throw MPIError(function: function(), code: code) }
}
