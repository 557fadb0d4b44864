#ifndef VAVL_CONEDNN_H
#define VAVL_CONEDNN_H
// A small C layer over oneDNN's matmul primitive for bf16 products: memory descriptors,
// attributes and the per-thread stream stay on this side, so Swift sees three functions.
#include <stddef.h>
#include <stdint.h>

/// A created bf16 × bf16 → f32 matmul for one shape and one operand layout.
typedef struct vavl_bf16_matmul vavl_bf16_matmul;

/// Creates `C (m × n, f32, row stride ldc) (+)= op(A) · op(B)` with bf16 operands.
/// A is m × k (stride lda) or, transposed, stored k × m; B is k × n or, transposed, stored
/// n × k. `accumulate` adds to C (a sum post-op) instead of overwriting it.
/// Returns the oneDNN status (0 = success); `*out` is set on success only.
int vavl_bf16_matmul_create(int64_t m, int64_t n, int64_t k, int transpose_a, int transpose_b,
                            int64_t lda, int64_t ldb, int64_t ldc, int accumulate,
                            vavl_bf16_matmul **out);

/// Runs it on one thread (the caller's): returns the oneDNN status.
int vavl_bf16_matmul_execute(const vavl_bf16_matmul *matmul, const uint16_t *a, const uint16_t *b, float *c);

/// The implementation oneDNN chose (`brg:avx512_core_amx_bf16`, `brg:avx512_core_bf16`, …).
const char *vavl_bf16_matmul_implementation(const vavl_bf16_matmul *matmul);

void vavl_bf16_matmul_destroy(vavl_bf16_matmul *matmul);

/// The calling thread's scratch buffer number `slot` (0, 1 or 2), at least `bytes` long and
/// 64-byte aligned; it keeps its contents until the next call for the same slot on the same
/// thread grows it. NULL if it cannot be allocated.
void *vavl_thread_scratch(int slot, size_t bytes);

/// oneDNN's library version as "major.minor.patch".
const char *vavl_onednn_version(void);

/// What the CPU offers for bf16 products, from CPUID and the kernel: 2 = AMX-BF16 (tile
/// data enabled for this process), 1 = AVX512-BF16, 0 = neither.
int vavl_cpu_bf16_support(void);

/// The CPU's brand string (CPUID leaves 0x80000002–4), e.g. "Intel(R) Xeon(R) Platinum 8480+".
const char *vavl_cpu_model_name(void);



// Rounding fp32 to bf16, nearest even, NaN kept a quiet NaN: plain loops the compiler
// vectorises (Swift's generic SIMD types did not, here).
#include <stddef.h>
/// bf16 bits of `count` floats.
void vavl_round_to_bf16(const float *source, uint16_t *target, size_t count);
/// The same values, widened back to floats (the emulated path's operands).
void vavl_round_to_bf16_floats(const float *source, float *target, size_t count);
#endif
