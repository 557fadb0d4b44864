#include "COneDNN.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cpuid.h>
#include <unistd.h>
#include <sys/syscall.h>

// libgomp's setter (oneDNN runs on OpenMP here); declared rather than including omp.h so no
// OpenMP flag is needed to compile this file.
extern void omp_set_num_threads(int);

struct vavl_bf16_matmul {
    dnnl_primitive_t primitive;
    dnnl_memory_desc_t a, b, c, scratchpad;
    size_t scratchpad_bytes;
    char implementation[96];
};

static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_success;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void create_engine(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

// One stream per thread: a oneDNN stream is not meant to be shared between threads.
static __thread dnnl_stream_t thread_stream;
// One scratchpad per thread, handed to every matmul: with the library's own scratchpad a
// build without concurrent execution shares one buffer between all threads, and products
// run at once on several threads overwrote each other's partial sums (seen here).
static __thread void *thread_scratchpad;
static __thread size_t thread_scratchpad_bytes;

static int get_stream(dnnl_stream_t *stream) {
    if (!thread_stream) {
        dnnl_status_t status = dnnl_stream_create(&thread_stream, engine, dnnl_stream_default_flags);
        if (status != dnnl_success) return status;
    }
    *stream = thread_stream;
    return dnnl_success;
}

int vavl_bf16_matmul_create(int64_t m, int64_t n, int64_t k, int transpose_a, int transpose_b,
                            int64_t lda, int64_t ldb, int64_t ldc, int accumulate,
                            vavl_bf16_matmul **out) {
    pthread_once(&engine_once, create_engine);
    if (engine_status != dnnl_success) return engine_status;
    // oneDNN sizes its parallel work by the calling thread's OpenMP setting: one thread,
    // since the caller splits products over its own threads.
    omp_set_num_threads(1);
    vavl_bf16_matmul *matmul = calloc(1, sizeof *matmul);
    if (!matmul) return dnnl_out_of_memory;
    dnnl_dims_t a_dims = {m, k}, b_dims = {k, n}, c_dims = {m, n};
    dnnl_dims_t a_strides = {transpose_a ? 1 : lda, transpose_a ? lda : 1};
    dnnl_dims_t b_strides = {transpose_b ? 1 : ldb, transpose_b ? ldb : 1};
    dnnl_dims_t c_strides = {ldc, 1};
    dnnl_status_t status;
    dnnl_primitive_attr_t attributes = NULL;
    dnnl_post_ops_t post_ops = NULL;
    dnnl_primitive_desc_t descriptor = NULL;
    dnnl_matmul_desc_t operation;
    if ((status = dnnl_memory_desc_init_by_strides(&matmul->a, 2, a_dims, dnnl_bf16, a_strides)) != dnnl_success) goto fail;
    if ((status = dnnl_memory_desc_init_by_strides(&matmul->b, 2, b_dims, dnnl_bf16, b_strides)) != dnnl_success) goto fail;
    if ((status = dnnl_memory_desc_init_by_strides(&matmul->c, 2, c_dims, dnnl_f32, c_strides)) != dnnl_success) goto fail;
    if ((status = dnnl_matmul_desc_init(&operation, &matmul->a, &matmul->b, NULL, &matmul->c)) != dnnl_success) goto fail;
    if ((status = dnnl_primitive_attr_create(&attributes)) != dnnl_success) goto fail;
    if ((status = dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user)) != dnnl_success) goto fail;
    if (accumulate) {
        if ((status = dnnl_post_ops_create(&post_ops)) != dnnl_success) goto fail;
        if ((status = dnnl_post_ops_append_sum(post_ops, 1.0f)) != dnnl_success) goto fail;
        if ((status = dnnl_primitive_attr_set_post_ops(attributes, post_ops)) != dnnl_success) goto fail;
    }
    if ((status = dnnl_primitive_desc_create(&descriptor, &operation, attributes, engine, NULL)) != dnnl_success) goto fail;
    const dnnl_memory_desc_t *scratchpad = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0);
    if (scratchpad) {
        matmul->scratchpad = *scratchpad;
        matmul->scratchpad_bytes = dnnl_memory_desc_get_size(scratchpad);
    }
    const char *name = NULL;
    if (dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name) {
        strncpy(matmul->implementation, name, sizeof matmul->implementation - 1);
    }
    if ((status = dnnl_primitive_create(&matmul->primitive, descriptor)) != dnnl_success) goto fail;
    dnnl_primitive_desc_destroy(descriptor);
    dnnl_primitive_attr_destroy(attributes);
    if (post_ops) dnnl_post_ops_destroy(post_ops);
    *out = matmul;
    return dnnl_success;
fail:
    if (descriptor) dnnl_primitive_desc_destroy(descriptor);
    if (attributes) dnnl_primitive_attr_destroy(attributes);
    if (post_ops) dnnl_post_ops_destroy(post_ops);
    free(matmul);
    return status;
}

int vavl_bf16_matmul_execute(const vavl_bf16_matmul *matmul, const uint16_t *a, const uint16_t *b, float *c) {
    dnnl_stream_t stream;
    dnnl_status_t status = get_stream(&stream);
    if (status != dnnl_success) return status;
    omp_set_num_threads(1);
    if (matmul->scratchpad_bytes > thread_scratchpad_bytes) {
        free(thread_scratchpad);
        thread_scratchpad_bytes = 0;
        if (posix_memalign(&thread_scratchpad, 64, matmul->scratchpad_bytes) != 0) {
            thread_scratchpad = NULL;
            return dnnl_out_of_memory;
        }
        thread_scratchpad_bytes = matmul->scratchpad_bytes;
    }
    dnnl_memory_t memories[4] = {NULL, NULL, NULL, NULL};
    int count = 3;
    if ((status = dnnl_memory_create(&memories[0], &matmul->a, engine, (void *)a)) != dnnl_success) goto done;
    if ((status = dnnl_memory_create(&memories[1], &matmul->b, engine, (void *)b)) != dnnl_success) goto done;
    if ((status = dnnl_memory_create(&memories[2], &matmul->c, engine, c)) != dnnl_success) goto done;
    dnnl_exec_arg_t arguments[4] = {
        {DNNL_ARG_SRC, memories[0]}, {DNNL_ARG_WEIGHTS, memories[1]}, {DNNL_ARG_DST, memories[2]}, {DNNL_ARG_SCRATCHPAD, NULL},
    };
    if (matmul->scratchpad_bytes > 0) {
        if ((status = dnnl_memory_create(&memories[3], &matmul->scratchpad, engine, thread_scratchpad)) != dnnl_success) goto done;
        arguments[3].memory = memories[3];
        count = 4;
    }
    if ((status = dnnl_primitive_execute(matmul->primitive, stream, count, arguments)) != dnnl_success) goto done;
    status = dnnl_stream_wait(stream);
done:
    for (int i = 0; i < 4; i++) if (memories[i]) dnnl_memory_destroy(memories[i]);
    return status;
}

const char *vavl_bf16_matmul_implementation(const vavl_bf16_matmul *matmul) { return matmul->implementation; }

static __thread void *scratch_buffers[3];
static __thread size_t scratch_bytes[3];

void *vavl_thread_scratch(int slot, size_t bytes) {
    if (slot < 0 || slot > 2) return NULL;
    if (bytes > scratch_bytes[slot]) {
        free(scratch_buffers[slot]);
        scratch_bytes[slot] = 0;
        if (posix_memalign(&scratch_buffers[slot], 64, bytes) != 0) {
            scratch_buffers[slot] = NULL;
            return NULL;
        }
        scratch_bytes[slot] = bytes;
    }
    return scratch_buffers[slot];
}

void vavl_bf16_matmul_destroy(vavl_bf16_matmul *matmul) {
    if (!matmul) return;
    dnnl_primitive_destroy(matmul->primitive);
    free(matmul);
}

const char *vavl_onednn_version(void) {
    static char text[32];
    const dnnl_version_t *version = dnnl_version();
    snprintf(text, sizeof text, "%d.%d.%d", version->major, version->minor, version->patch);
    return text;
}

#ifndef ARCH_REQ_XCOMP_PERM
#define ARCH_REQ_XCOMP_PERM 0x1023
#endif
#define XFEATURE_XTILEDATA 18

int vavl_cpu_bf16_support(void) {
    unsigned eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    int amx = (edx >> 22) & 1;  // AMX-BF16
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    int avx512_bf16 = (eax >> 5) & 1;
    // AMX tile data must be granted to the process by the kernel (Linux ≥ 5.16).
    if (amx && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) return 2;
    return avx512_bf16 ? 1 : 0;
}

const char *vavl_cpu_model_name(void) {
    static char name[49];
    unsigned regs[12];
    if (__get_cpuid_max(0x80000000, NULL) < 0x80000004) return "unknown CPU";
    for (unsigned leaf = 0; leaf < 3; leaf++) {
        __cpuid(0x80000002 + leaf, regs[4 * leaf], regs[4 * leaf + 1], regs[4 * leaf + 2], regs[4 * leaf + 3]);
    }
    memcpy(name, regs, 48);
    name[48] = 0;
    char *start = name;
    while (*start == ' ') start++;
    return start;
}

static inline uint32_t round_bits(uint32_t bits) {
    uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    uint32_t quiet_nan = (bits >> 16) | 0x40u;
    return (bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded;
}

void vavl_round_to_bf16(const float *source, uint16_t *target, size_t count) {
    const uint32_t *bits = (const uint32_t *)source;
    for (size_t i = 0; i < count; i++) target[i] = (uint16_t)round_bits(bits[i]);
}

void vavl_round_to_bf16_floats(const float *source, float *target, size_t count) {
    const uint32_t *bits = (const uint32_t *)source;
    uint32_t *out = (uint32_t *)target;
    for (size_t i = 0; i < count; i++) out[i] = round_bits(bits[i]) << 16;
}
