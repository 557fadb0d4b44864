// Constants and handles that OpenMPI and HDF5 define as macros over global symbols,
// which Swift cannot import. Each function returns exactly what the macro names.
#ifndef VAVL_CSHIMS_H
#define VAVL_CSHIMS_H

#include <mpi.h>
#include <hdf5.h>

// MARK: - MPI
MPI_Comm vavl_mpi_comm_world(void);
MPI_Comm vavl_mpi_comm_self(void);
MPI_Datatype vavl_mpi_float(void);
MPI_Datatype vavl_mpi_double(void);
MPI_Datatype vavl_mpi_int64(void);
MPI_Datatype vavl_mpi_byte(void);
MPI_Op vavl_mpi_op_sum(void);
MPI_Op vavl_mpi_op_max(void);
MPI_Op vavl_mpi_op_min(void);
MPI_Errhandler vavl_mpi_errors_return(void);
MPI_Request vavl_mpi_request_null(void);
MPI_Status *vavl_mpi_status_ignore(void);
void *vavl_mpi_in_place(void);
int vavl_mpi_max_error_string(void);
int vavl_mpi_success(void);
int vavl_mpi_thread_funneled(void);

// MARK: - Memory
// Keeps freed heap memory (up to 1 GiB) for reuse instead of returning it to the kernel, and
// serves blocks up to 32 MiB from the heap: MPI's per-call buffers of a gradient allreduce
// (one 16 MiB bucket each) then reuse the same pages every step instead of faulting fresh
// ones in. Returns 1 if applied, 0 if the user set glibc's malloc parameters (left alone).
int vavl_keep_freed_heap_memory(void);

// MARK: - HDF5
hid_t vavl_h5p_default(void);
hid_t vavl_h5s_all(void);
hid_t vavl_h5p_dataset_create(void);
hid_t vavl_h5p_file_access(void);
hid_t vavl_h5t_native_float(void);
hid_t vavl_h5t_native_double(void);
hid_t vavl_h5t_native_int64(void);
hid_t vavl_h5t_c_s1(void);
unsigned vavl_h5f_acc_rdonly(void);
unsigned vavl_h5f_acc_rdwr(void);
unsigned vavl_h5f_acc_trunc(void);
unsigned vavl_h5f_acc_excl(void);
hid_t vavl_h5e_default(void);
hsize_t vavl_h5s_unlimited(void);
/// Turns off HDF5's automatic error-stack printing; errors are reported by the
/// Swift wrapper, naming the file and object.
void vavl_h5_silence_errors(void);



/// `H5T_VARIABLE`: the size that marks a variable-length string type.
size_t vavl_h5t_variable(void);

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
#endif
