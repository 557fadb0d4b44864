import CMPI
import CMPIShims
import CMachine
#if canImport(Glibc)
import Glibc
#endif

/// Owns the MPI library's lifetime: `MPI_Init_thread` on first use, `MPI_Finalize` at exit.
///
/// A binary started without `mpirun` initialises as a singleton (size 1), so the same
/// executable trains alone or as one rank of many.
public enum MPIRuntime {
    nonisolated(unsafe) private static var initialized = false

    /// Initialises MPI once (thread level `MPI_THREAD_FUNNELED`: only the main thread calls MPI)
    /// and registers `MPI_Finalize` to run at process exit.
    /// The corresponding C function is `MPI_Init_thread`.
    public static func initialize() {
        if initialized { return }
        initialized = true
        // Before MPI allocates anything: without it, each step's allreduce buffers came from
        // fresh pages (37,700 page faults and 0.1 kernel CPU s per paper-config iteration on
        // a rank; exposed allreduce 0.27 → 0.17–0.19 s).
        _ = vavl_keep_freed_heap_memory()
        var alreadyInitialized: Int32 = 0
        MPI_Initialized(&alreadyInitialized)
        if alreadyInitialized != 0 { return }
        var provided: Int32 = 0
        let code = MPI_Init_thread(nil, nil, vavl_mpi_thread_funneled(), &provided)
        if code != vavl_mpi_success() {
            fputs("vavl: MPI_Init_thread failed with code \(code)\n", stderr)
            exit(1)
        }
        // Errors come back as codes and become Swift errors; nothing fails silently.
        MPI_Comm_set_errhandler(vavl_mpi_comm_world(), vavl_mpi_errors_return())
        atexit {
            var finalized: Int32 = 0
            MPI_Finalized(&finalized)
            if finalized == 0 { MPI_Finalize() }
        }
    }
}

/// A group of ranks that run collectives together (today: `MPI_COMM_WORLD`).
///
/// Every collective must be called by every rank in the same order; the training loop
/// derives its call sequence from the global plan alone so that this holds by construction.
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    let handle: MPI_Comm

    /// The world communicator; initialises MPI on first use.
    public static let world: Communicator = {
        MPIRuntime.initialize()
        return Communicator(handle: vavl_mpi_comm_world())
    }()

    /// This process alone (`MPI_COMM_SELF`): a one-rank communicator, e.g. to run a
    /// single-process reference inside a multi-rank job.
    public static let selfOnly: Communicator = {
        MPIRuntime.initialize()
        MPI_Comm_set_errhandler(vavl_mpi_comm_self(), vavl_mpi_errors_return())
        return Communicator(handle: vavl_mpi_comm_self())
    }()

    init(handle: MPI_Comm) {
        self.handle = handle
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(handle, &rank)
        MPI_Comm_size(handle, &size)
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// The largest element count passed to one MPI call; longer buffers are split so that
    /// counts fit MPI's `Int32`.
    public static let maximumChunk = Int(Int32.max) / 2

    // MARK: - Collectives

    /// Blocks until every rank has called it. The corresponding C function is `MPI_Barrier`.
    public func barrier() throws {
        try check(MPI_Barrier(handle), "MPI_Barrier")
    }

    /// Replaces `buffer` on every rank with `root`'s contents.
    /// The corresponding C function is `MPI_Bcast`.
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0) throws {
        var offset = 0
        while offset < buffer.count {
            let count = min(Self.maximumChunk, buffer.count - offset)
            try check(MPI_Bcast(buffer.baseAddress! + offset, Int32(count), T.mpiDatatype, Int32(root), handle),
                      "MPI_Bcast of \(buffer.count) \(T.self)")
            offset += count
        }
    }

    /// Broadcasts an array in place (every rank must pass an array of the same count).
    public func broadcast<T: MPIScalar>(_ array: inout [T], root: Int = 0) throws {
        try array.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Sums `buffer` elementwise over all ranks, in place, on every rank.
    /// The corresponding C function is `MPI_Allreduce` with `MPI_IN_PLACE` and `MPI_SUM`.
    public func allreduceSum<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws {
        try allreduce(buffer, operation: vavl_mpi_op_sum(), name: "sum")
    }

    /// Sums an array elementwise over all ranks, in place.
    public func allreduceSum<T: MPIScalar>(_ array: inout [T]) throws {
        try array.withUnsafeMutableBufferPointer { try allreduceSum($0) }
    }

    /// Elementwise maximum over all ranks, in place.
    public func allreduceMax<T: MPIScalar>(_ array: inout [T]) throws {
        try array.withUnsafeMutableBufferPointer { try allreduce($0, operation: vavl_mpi_op_max(), name: "max") }
    }

    /// Elementwise minimum over all ranks, in place.
    public func allreduceMin<T: MPIScalar>(_ array: inout [T]) throws {
        try array.withUnsafeMutableBufferPointer { try allreduce($0, operation: vavl_mpi_op_min(), name: "min") }
    }

    private func allreduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, operation: MPI_Op, name: String) throws {
        var offset = 0
        while offset < buffer.count {
            let count = min(Self.maximumChunk, buffer.count - offset)
            try check(MPI_Allreduce(vavl_mpi_in_place(), buffer.baseAddress! + offset, Int32(count),
                                    T.mpiDatatype, operation, handle),
                      "MPI_Allreduce(\(name)) of \(buffer.count) \(T.self)")
            offset += count
        }
    }

    /// Starts a non-blocking in-place sum over all ranks; the buffer must stay valid and
    /// untouched until ``PendingReduction/wait()`` returns.
    /// The corresponding C function is `MPI_Iallreduce`.
    public func startAllreduceSum<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> PendingReduction {
        precondition(buffer.count <= Self.maximumChunk, "a non-blocking reduction is one bucket; split larger buffers")
        var request: MPI_Request? = vavl_mpi_request_null()
        try check(MPI_Iallreduce(vavl_mpi_in_place(), buffer.baseAddress, Int32(buffer.count),
                                 T.mpiDatatype, vavl_mpi_op_sum(), handle, &request),
                  "MPI_Iallreduce of \(buffer.count) \(T.self)")
        return PendingReduction(request: request)
    }

    // MARK: - Failure

    /// Prints `message` naming this rank to standard error and brings every rank of the
    /// job down. The corresponding C function is `MPI_Abort`.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        let prefix = size > 1 ? "vavl: rank \(rank) of \(size): " : "vavl: "
        fputs(prefix + message + "\n", stderr)
        fflush(stderr)
        fflush(stdout)
        // One process has no one to take down: one line and the exit status, without
        // MPI_Abort's banner (MPI is finalised at exit).
        if size == 1 { exit(code) }
        MPI_Abort(handle, code)
        exit(code)  // MPI_Abort does not return; this satisfies the type checker.
    }

    /// Runs `body`; if it throws, aborts the whole job with the error's description,
    /// so no other rank is left waiting in a collective.
    public func abortOnError<Result>(_ context: String? = nil, _ body: () throws -> Result) -> Result {
        do {
            return try body()
        } catch {
            abort((context.map { $0 + ": " } ?? "") + "\(error)")
        }
    }
}

/// A non-blocking reduction in flight.
public struct PendingReduction {
    var request: MPI_Request?

    /// Whether the reduction has completed (drives MPI progress). `MPI_Test`.
    public mutating func test() throws -> Bool {
        var flag: Int32 = 0
        try check(MPI_Test(&request, &flag, vavl_mpi_status_ignore()), "MPI_Test")
        return flag != 0
    }

    /// Blocks until the reduction has completed. The corresponding C function is `MPI_Wait`.
    public mutating func wait() throws {
        try check(MPI_Wait(&request, vavl_mpi_status_ignore()), "MPI_Wait")
    }
}
