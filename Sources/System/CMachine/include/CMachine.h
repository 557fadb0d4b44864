// What the process needs to know about or set on the machine: CPU features (for the
// OpenBLAS kernel choice and the start-up check of a build's instruction set), where sgemm
// was loaded from, and glibc's malloc thresholds.
#ifndef VAVL_CMACHINE_H
#define VAVL_CMACHINE_H

#include <stddef.h>

// MARK: - CPU features
/// The best OpenBLAS kernel family this CPU runs ("SkylakeX" with AVX-512, "Haswell" with
/// AVX2 + FMA), or NULL when nothing better than the baseline is available.
const char *vavl_best_openblas_core(void);

/// Exits with a clear message when the CPU lacks AVX2 or FMA (which a default x86-64
/// build of the numeric modules uses); a no-op elsewhere.
void vavl_require_avx2_fma(void);

/// The shared library that `cblas_sgemm` resolves to in this process (OpenBLAS, or another
/// BLAS put first with LD_PRELOAD), for benchmark reports.
const char *vavl_sgemm_library(void);

// MARK: - Memory
// Keeps freed heap memory (up to 1 GiB) for reuse instead of returning it to the kernel, and
// serves blocks up to 32 MiB from the heap: MPI's per-call buffers of a gradient allreduce
// (one 16 MiB bucket each) then reuse the same pages every step instead of faulting fresh
// ones in. Returns 1 if applied, 0 if the user set glibc's malloc parameters (left alone).
int vavl_keep_freed_heap_memory(void);

// MARK: - Stop signals
/// Installs handlers for SIGUSR1 (Slurm's `--signal` before a time limit or preemption),
/// SIGTERM and SIGINT that only record the request (a second signal of the same kind acts
/// as if no handler were installed: a second Ctrl-C ends the process at once).
/// Also unblocks them (see `vavl_execute_self_keeping_stop_signals`).
void vavl_install_stop_signals(void);
/// Unblocks SIGUSR1, SIGTERM and SIGINT (commands without handlers call it at start: a
/// signal held through a re-execution then takes its default action).
void vavl_release_stop_signals(void);
/// Re-executes this program (`/proc/self/exe`) with `arguments`, the stop signals blocked
/// through the exec so that none arriving meanwhile takes its default action: a request
/// received before or during the exec stays pending and reaches the new image's handlers.
/// Returns -1 only if the exec failed (everything as before, a recorded request kept).
int vavl_execute_self_keeping_stop_signals(char *const *arguments);
/// The signal number of the first stop request so far, or 0.
int vavl_stop_signal(void);
/// Records a stop request as if `signal` had arrived (tests).
void vavl_request_stop(int signal);

#endif
