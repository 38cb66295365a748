/*
 * gemm_cuda_impl.h - internal interface between the dispatcher (kernels/gemm/gemm_cuda.c)
 * and our own FP8 GEMM kernel `v1` (kernels/gemm/gemm_fp8.cu). Not for callers outside
 * kernels/: they use gemm_cuda.h.
 *
 * D[M,N] = A[M,K] * B[N,K]^T, both operands K-major E4M3 (struct fp8_matrix, row-major
 * codes), BF16 output on the device, downloaded as float.
 *
 *   kind GEMM_FP8_TENSOR   a8, b8 FP8_PER_TENSOR (one scale each)
 *   kind GEMM_FP8_BLOCK    a8 FP8_PER_1X128, b8 FP8_PER_128X128
 *   kind GEMM_BF16         not taken: MB_ERR_ARG
 *   fast_accum false       partial sums promoted to FP32 registers every 128 K
 *   fast_accum true        one FP32 promotion at the end (the imprecise variant)
 *
 * The dispatcher has already checked that in->a8 and in->b8 are present and agree in
 * K; shape rules specific to v1 (tile multiples, alignment) are checked by
 * gemm_v1_create, which prints one stderr line naming the rule and returns MB_ERR_ARG.
 *
 * Life cycle, as gemm_cuda.h:
 *   gemm_v1_create    allocate device buffers on `stream` (a cudaStream_t, NULL = the
 *                     default stream), upload codes and scales; *out = NULL on failure
 *   gemm_v1_poison    set D to NaN (0xFFFF BF16), so an unwritten element fails checks
 *   gemm_v1_run       enqueue the kernel only (the timed region); no synchronization
 *   gemm_v1_download  synchronize the stream, copy D[m,n] to host floats d
 *   gemm_v1_destroy   free everything; NULL is fine
 * Return codes: MB_OK, MB_ERR_ARG, MB_ERR_UNSUPPORTED (device below sm_89), MB_ERR_CUDA,
 * MB_ERR_NOMEM.
 */
#ifndef MB_GEMM_CUDA_IMPL_H
#define MB_GEMM_CUDA_IMPL_H

#include <stdbool.h>

#include "gemm_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

struct gemm_v1;

int gemm_v1_create(struct gemm_v1 **out, enum gemm_kind kind, bool fast_accum,
		   const struct gemm_inputs *in, void *stream);
int gemm_v1_poison(struct gemm_v1 *g);
int gemm_v1_run(struct gemm_v1 *g);
int gemm_v1_download(struct gemm_v1 *g, float *d);
void gemm_v1_destroy(struct gemm_v1 *g);
/* gemm_v1_grouped_create: one launch over all experts of `in` (gemm_cuda.h's grouped
 * layout); the other calls as above, D being [sum of padded rows, n]. */
int gemm_v1_grouped_create(struct gemm_v1 **out, const struct gemm_grouped_inputs *in,
			   void *stream);

#ifdef __cplusplus
}
#endif

#endif
