/*
 * lt_plan.h - one cuBLASLt matmul plan (descriptor, three layouts, the heuristic's
 * algorithm), made and freed in one place for every caller (peak, gemm, the MLA block).
 *
 *   struct mb_lt_spec s = { .a = { CUDA_R_16BF, k, n, k, CUBLAS_OP_T },
 *                           .b = { CUDA_R_16BF, k, m, k, CUBLAS_OP_N },
 *                           .c = { CUDA_R_16BF, n, m, n }, .workspace_bytes = ws,
 *                           .what = "bf16", .m = m, .n = n, .k = k };
 *   err = mb_lt_plan_make(&plan, lt, &s);
 *   err = mb_lt_plan_run(lt, &plan, &alpha, d_b, d_a, &beta, d_d, d_ws, stream);
 *   mb_lt_plan_free(&plan);
 *
 * Everything is in cuBLASLt's own (column-major) terms: a, b and c are cuBLASLt's A, B
 * and C (= D), whatever the caller's row-major names; each caller's header comment says
 * how its operands map. Compute and scale types are FP32 (CUBLAS_COMPUTE_32F, CUDA_R_32F)
 * for every GEMM moebench plans. A zero field leaves its attribute at cuBLASLt's
 * default (it is not set at all), so a spec that names nothing optional sets exactly
 * TRANSA and TRANSB on the descriptor.
 */
#ifndef MB_LT_PLAN_H
#define MB_LT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>
#include <cublasLt.h>

/* One matrix as cuBLASLt sees it: column-major rows x cols with leading dimension ld.
 * op (A and B only) is cuBLASLt's transpose flag. scale (A and B only) is the device
 * pointer to its FP32 scale(s), set as CUBLASLT_MATMUL_DESC_{A,B}_SCALE_POINTER when not
 * NULL. scale_mode (A and B only) is a CUBLASLT_MATMUL_MATRIX_SCALE_* value, set as
 * CUBLASLT_MATMUL_DESC_{A,B}_SCALE_MODE when not 0 (0 is SCALAR_32F, the default: one
 * per-tensor scale); VEC128_32F is 1x128 blocks, BLK128x128_32F 128x128. */
struct mb_lt_matrix {
	cudaDataType_t type;
	uint64_t rows, cols;
	int64_t ld;
	cublasOperation_t op;
	const void *scale;
	int32_t scale_mode;
};

/* CUBLASLT_MATMUL_DESC_FAST_ACCUM: left unset (cuBLASLt's default, which is off), or
 * set to 0 (FP32 promotion of the partial sums) or to 1 (fast accumulation). */
enum mb_lt_accum { MB_LT_ACCUM_DEFAULT = 0, MB_LT_ACCUM_PROMOTED, MB_LT_ACCUM_FAST };

/* What a plan is made from. epilogue is a cublasLtEpilogue_t, set when not 0 (no
 * cuBLASLt epilogue is 0; CUBLASLT_EPILOGUE_DEFAULT is 1). workspace_bytes is the most
 * the heuristic may pick an algorithm for, and what mb_lt_plan_run hands cuBLASLt. what,
 * m, n, k only name the GEMM in the line printed when no algorithm fits. */
struct mb_lt_spec {
	struct mb_lt_matrix a, b, c;
	enum mb_lt_accum accum;
	int32_t epilogue;
	uint64_t workspace_bytes;
	const char *what;
	int m, n, k;
};

/* A made plan; a zeroed one (or one mb_lt_plan_make left half made) is safe to free. */
struct mb_lt_plan {
	cublasLtMatmulDesc_t op;
	cublasLtMatrixLayout_t a, b, c;
	cublasLtMatmulAlgo_t algo;
	uint64_t workspace_bytes;
};

/* mb_lt_plan_make creates the descriptor and the layouts of s and asks the heuristic
 * for its best algorithm within the workspace. Returns MB_OK, MB_ERR_CUBLAS (a failed
 * call, its line on stderr) or MB_ERR_UNSUPPORTED (no algorithm for this device and
 * GEMM, a line on stderr). On failure the caller still frees p. */
int mb_lt_plan_make(struct mb_lt_plan *p, cublasLtHandle_t lt, const struct mb_lt_spec *s);

/* mb_lt_plan_run enqueues D = alpha op(A) op(B) + beta C on the stream, C aliased to D
 * (layout c), with a workspace of the plan's workspace_bytes; nothing else. */
int mb_lt_plan_run(cublasLtHandle_t lt, const struct mb_lt_plan *p, const float *alpha,
		   const void *a, const void *b, const float *beta, void *d, void *workspace,
		   cudaStream_t stream);

/* mb_lt_plan_free destroys the descriptor and the layouts of p; NULL handles are
 * skipped, and p is zeroed. */
void mb_lt_plan_free(struct mb_lt_plan *p);

#endif
