/*
 * gemm_cuda.h - GEMMs on CUDA: D[M,N] = A[M,K] * B[N,K]^T, BF16 output, FP32 accumulate.
 *
 *   kind GEMM_BF16          A, B BF16 (rounded from the host FP32 inputs)
 *   kind GEMM_FP8_TENSOR    A, B E4M3 with one scale each (fp8_matrix, FP8_PER_TENSOR)
 *   kind GEMM_FP8_BLOCK     A E4M3 with 1x128 scales, B E4M3 with 128x128 scales
 *
 *   impl GEMM_IMPL_CUBLASLT cuBLASLt; fast_accum sets CUBLASLT_MATMUL_DESC_FAST_ACCUM
 *                           (FP8 kinds; ignored for BF16): without it cuBLASLt promotes
 *                           partial sums. FP8_BLOCK uses
 *                           CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F for A and
 *                           _BLK128x128_32F for B (Hopper only; with fast_accum
 *                           cuBLASLt 13.1 has no algorithm: MB_ERR_UNSUPPORTED).
 *                           Shapes: BF16 any; FP8_TENSOR M, N, K multiples of 16;
 *                           FP8_BLOCK M, N multiples of 16, K a multiple of 128.
 *   impl GEMM_IMPL_V1       our kernel (kernels/gemm/gemm_fp8.cu), FP8 kinds only:
 *                           mma.sync m16n8k32 E4M3 on sm_89+, scales applied per
 *                           128-wide K block, partial sums promoted to FP32 registers
 *                           every 128 K (fast_accum false) or once at the end (true).
 *
 * Inputs come from the host, already quantized by the CPU reference (fp8.h), so a GPU
 * result and the CPU reference see identical bits. Life cycle as peak.h: create
 * (upload), poison (output := NaN), run (enqueue only: the timed region), download
 * (wait, copy D back as float), destroy.
 *
 * Grouped (MoE experts): gemm_grouped_cuda_* runs G GEMMs that share B's shape
 * [N,K] per expert and stack A's rows per expert, each expert's rows padded to a
 * multiple of 128 (the layout dispatch produces): one launch of our kernel, or a loop of
 * cuBLASLt calls.
 */
#ifndef MB_GEMM_CUDA_H
#define MB_GEMM_CUDA_H

#include <stdbool.h>

#include "fp8.h"

enum gemm_kind { GEMM_BF16, GEMM_FP8_TENSOR, GEMM_FP8_BLOCK };
enum gemm_impl { GEMM_IMPL_CPU, GEMM_IMPL_CUBLASLT, GEMM_IMPL_V1 };

const char *gemm_kind_name(enum gemm_kind k);   /* "bf16", "fp8-tensor", "fp8-block" */
const char *gemm_impl_name(enum gemm_impl i);   /* "cpu", "cublaslt", "v1" */

struct gemm_inputs {
	int m, n, k;
	const float *a_f32, *b_f32;           /* GEMM_BF16: host FP32 [m,k], [n,k] */
	const struct fp8_matrix *a8, *b8;     /* FP8 kinds: quantized host matrices */
};

struct gemm_cuda;
/* Returns MB_OK, MB_ERR_ARG (shape or scaling the implementation does not take; the
 * message on stderr says which rule), MB_ERR_UNSUPPORTED (no algorithm, or built
 * without CUDA), MB_ERR_CUDA, MB_ERR_CUBLAS, MB_ERR_NOMEM. */
int gemm_cuda_create(struct gemm_cuda **out, enum gemm_kind kind, enum gemm_impl impl,
		     bool fast_accum, const struct gemm_inputs *in, void *stream);
int gemm_cuda_poison(struct gemm_cuda *g);
int gemm_cuda_run(struct gemm_cuda *g);
int gemm_cuda_download(struct gemm_cuda *g, float *d);
void gemm_cuda_destroy(struct gemm_cuda *g);

struct gemm_grouped_inputs {
	int groups, n, k;
	const int *rows;                      /* rows of A per group (unpadded) */
	const struct fp8_matrix *a8;          /* [sum of padded rows, k], 1x128 scales */
	const struct fp8_matrix *b8;          /* groups of [n,k] stacked: [groups*n, k], 128x128 */
};
struct gemm_grouped_cuda;
int gemm_grouped_cuda_create(struct gemm_grouped_cuda **out, enum gemm_impl impl,
			     const struct gemm_grouped_inputs *in, void *stream);
int gemm_grouped_cuda_poison(struct gemm_grouped_cuda *g);
int gemm_grouped_cuda_run(struct gemm_grouped_cuda *g);
int gemm_grouped_cuda_download(struct gemm_grouped_cuda *g, float *d); /* [padded rows, n] */
void gemm_grouped_cuda_destroy(struct gemm_grouped_cuda *g);

/* fp8_quantize_cuda quantizes a device FP32 matrix on the GPU into device buffers laid
 * out as struct fp8_matrix (d_q: rows*cols, d_scale: scale_rows*scale_cols), bit-equal
 * to fp8_quantize on the host; enqueued on `stream` only. The input must be finite
 * (not checked here). Returns MB_OK, MB_ERR_ARG, MB_ERR_CUDA or (built without CUDA)
 * MB_ERR_UNSUPPORTED. */
int fp8_quantize_cuda(const float *d_x, int rows, int cols, enum fp8_format f,
		      enum fp8_scaling s, bool pow2_scales, unsigned char *d_q, float *d_scale,
		      void *stream);

#endif
