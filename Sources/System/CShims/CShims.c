#define _GNU_SOURCE
#include "CShims.h"

#include <dlfcn.h>
#include <malloc.h>

#include <stdio.h>
#include <stdlib.h>

MPI_Comm vavl_mpi_comm_world(void) { return MPI_COMM_WORLD; }
MPI_Comm vavl_mpi_comm_self(void) { return MPI_COMM_SELF; }
MPI_Datatype vavl_mpi_float(void) { return MPI_FLOAT; }
MPI_Datatype vavl_mpi_double(void) { return MPI_DOUBLE; }
MPI_Datatype vavl_mpi_int64(void) { return MPI_INT64_T; }
MPI_Datatype vavl_mpi_byte(void) { return MPI_BYTE; }
MPI_Op vavl_mpi_op_sum(void) { return MPI_SUM; }
MPI_Op vavl_mpi_op_max(void) { return MPI_MAX; }
MPI_Op vavl_mpi_op_min(void) { return MPI_MIN; }
MPI_Errhandler vavl_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
MPI_Request vavl_mpi_request_null(void) { return MPI_REQUEST_NULL; }
MPI_Status *vavl_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
void *vavl_mpi_in_place(void) { return MPI_IN_PLACE; }
int vavl_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
int vavl_mpi_success(void) { return MPI_SUCCESS; }
int vavl_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

hid_t vavl_h5p_default(void) { return H5P_DEFAULT; }
hid_t vavl_h5s_all(void) { return H5S_ALL; }
hid_t vavl_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
hid_t vavl_h5p_file_access(void) { return H5P_FILE_ACCESS; }
hid_t vavl_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t vavl_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t vavl_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t vavl_h5t_c_s1(void) { return H5T_C_S1; }
unsigned vavl_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned vavl_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
unsigned vavl_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
unsigned vavl_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
hid_t vavl_h5e_default(void) { return H5E_DEFAULT; }
hsize_t vavl_h5s_unlimited(void) { return H5S_UNLIMITED; }
void vavl_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
size_t vavl_h5t_variable(void) { return H5T_VARIABLE; }

const char *vavl_best_openblas_core(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return 0;
}

void vavl_require_avx2_fma(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return;
    fputs("vavl: this build's numeric code uses AVX2 and FMA (VAVL_TARGET_CPU=haswell, the default), "
          "which this CPU lacks; rebuild with `VAVL_TARGET_CPU=x86-64 swift build -c release` "
          "after `swift package clean`\n", stderr);
    exit(78);
#endif
}

const char *vavl_sgemm_library(void) {
    void *symbol = dlsym(RTLD_DEFAULT, "cblas_sgemm");
    Dl_info info;
    if (symbol == 0 || dladdr(symbol, &info) == 0 || info.dli_fname == 0) return "unknown";
    return info.dli_fname;
}

// MARK: - Memory

int vavl_keep_freed_heap_memory(void) {
    // The user's own settings win (glibc reads these at the first allocation).
    if (getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_MMAP_THRESHOLD_") || getenv("GLIBC_TUNABLES")) return 0;
    // The largest threshold glibc accepts on 64-bit systems: blocks up to 32 MiB come from the heap.
    if (!mallopt(M_MMAP_THRESHOLD, 32 << 20)) return 0;
    if (!mallopt(M_TRIM_THRESHOLD, 1 << 30)) return 0;
    return 1;
}
