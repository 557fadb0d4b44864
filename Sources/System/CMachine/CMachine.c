#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include "CMachine.h"

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
