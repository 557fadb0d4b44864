import CBLAS
import CMachine
#if canImport(Glibc)
import Glibc
#endif

extension BLAS {
    /// The file of the library whose `cblas_sgemm` this process calls: OpenBLAS unless another
    /// BLAS was put first (`LD_PRELOAD=…/libblis.so.4`, as `Scripts/bench-blas.sh` does).
    public static var libraryPath: String { String(cString: vavl_sgemm_library()) }

    /// The kernel family OpenBLAS chose at load time (`openblas_get_corename`).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and falls back to its
    /// generic "Prescott" kernels, 5× slower than the AVX-512 ones on the same CPU (measured
    /// here: 31 against 154 GFLOP/s on one core). The choice happens when the library loads,
    /// before `main`, and only the `OPENBLAS_CORETYPE` environment variable changes it — so,
    /// when OpenBLAS chose a generic kernel on a CPU that can do better and the user has not
    /// set the variable, this sets it and re-executes the program once (same pid, before MPI
    /// starts, so it is safe under mpirun; a stop signal meanwhile is kept, not fatal).
    /// `VAVL_KEEP_BLAS_KERNEL=1` turns this off.
    public static func ensureFastKernels() {
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv("VAVL_KEEP_BLAS_KERNEL") == nil,
              let best = vavl_best_openblas_core() else { return }
        let current = coreName.lowercased()
        guard ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "barcelona", "unknown"].contains(current)
        else { return }
        setenv("OPENBLAS_CORETYPE", best, 1)
        _ = vavl_execute_self_keeping_stop_signals(CommandLine.unsafeArgv)
        // execv returned: keep going with the slow kernels rather than fail.
        unsetenv("OPENBLAS_CORETYPE")
    }
}

extension BLAS {
    /// Threads per rank when the user gives none: the cores of this host divided by the
    /// ranks on it (OpenMPI's `OMPI_COMM_WORLD_LOCAL_SIZE`), at least 1 — so ranks × threads
    /// never oversubscribe a node.
    public static func useDefaultThreadCount() {
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap { Int(String(cString: $0)) } ?? 1
        threadCount = max(1, cores / max(local, 1))
    }
}
