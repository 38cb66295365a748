/*
 * gemm_cuda.c - the dispatcher of gemm_cuda.h and its cuBLASLt implementation.
 *
 * Shapes: D[M,N] = A[M,K] * B[N,K]^T, all row-major, both operands K-major ("TN"),
 * D in BF16, FP32 accumulation and scaling, beta = 0.
 *   GEMM_BF16          A, B rounded to BF16 on the host (to nearest, ties to even)
 *   GEMM_FP8_TENSOR    A, B FP8 codes with one FP32 scale each (device scalars)
 *   GEMM_FP8_BLOCK     A with 1x128 scales (CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F),
 *                      B with 128x128 scales (CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F),
 *                      Hopper (sm_90) only, cuBLAS >= 12.9
 *   fast_accum         CUBLASLT_MATMUL_DESC_FAST_ACCUM for the FP8 kinds: without it
 *                      cuBLASLt promotes partial sums to FP32 periodically (with block
 *                      scaling cuBLASLt 13.1 has no algorithm: MB_ERR_UNSUPPORTED)
 *
 * Shape rules (cuBLASLt FP8 wants 16-byte aligned leading dimensions; block scaling as
 * it is documented and used works on whole 128-wide K blocks):
 *   BF16               any M, N, K >= 1
 *   FP8_TENSOR         M, N, K multiples of 16
 *   FP8_BLOCK          M, N multiples of 16, K a multiple of 128
 * Anything else is MB_ERR_ARG with one stderr line naming the rule.
 *
 * impl GEMM_IMPL_V1 is handed to our own kernel (gemm_cuda_impl.h, gemm_fp8.cu).
 * Plain C11 against the CUDA runtime and cuBLASLt C APIs; run() only enqueues.
 */
#include "gemm_cuda.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cuda_check.h"
#include "gemm_cuda_impl.h"
#include "lt_plan.h"
#include "status.h"

/* NOTE: 32 MiB is the workspace NVIDIA recommends for cuBLASLt on Hopper (as in
 * peak_cuda.c); the heuristic may pick slower kernels when given less. */
#define GEMM_WORKSPACE_BYTES ((size_t)32 << 20)

struct gemm_cuda {
	enum gemm_kind kind;
	enum gemm_impl impl;
	bool fast_accum;
	int m, n, k;
	cudaStream_t stream;
	struct gemm_v1 *v1;            /* impl V1: everything lives there */
	/* impl CUBLASLT */
	void *d_a, *d_b, *d_d, *d_workspace;
	float *d_scale_a, *d_scale_b;  /* FP8 kinds, in cuBLASLt's layouts (see below) */
	uint16_t *h_d;                 /* D copied back, BF16 bits, [m][n] */
	float alpha, beta;
	cublasLtHandle_t lt;
	struct mb_lt_plan plan;
};

/* ---- arguments ---- */

/* lt_shape_rule returns NULL when cuBLASLt takes the shape for this kind, else the
 * rule it breaks (see the file header). */
static const char *lt_shape_rule(enum gemm_kind kind, int m, int n, int k)
{
	if (kind == GEMM_FP8_TENSOR && (m % 16 || n % 16 || k % 16))
		return "cuBLASLt FP8 needs M, N and K multiples of 16";
	if (kind == GEMM_FP8_BLOCK && (m % 16 || n % 16))
		return "cuBLASLt FP8 needs M and N multiples of 16";
	if (kind == GEMM_FP8_BLOCK && k % FP8_TILE)
		return "cuBLASLt block scaling needs K a multiple of 128";
	return NULL;
}

/* fp8_operand_rule returns NULL when x is an FP8 matrix of rows x k with scaling s,
 * else what is wrong with it. */
static const char *fp8_operand_rule(const struct fp8_matrix *x, int rows, int k,
				    enum fp8_scaling s)
{
	if (!x || !x->q || !x->scale)
		return "FP8 operand missing";
	if (x->rows != rows || x->cols != k)
		return "FP8 operand shape disagrees with M, N, K";
	if (x->scaling != s)
		return s == FP8_PER_TENSOR ? "fp8-tensor needs per-tensor scales on A and B" :
		       s == FP8_PER_1X128 ? "fp8-block needs 1x128 scales on A" :
					    "fp8-block needs 128x128 scales on B";
	return NULL;
}

/* gemm_inputs_rule returns NULL when `in` suits kind and impl, else the rule. */
static const char *gemm_inputs_rule(enum gemm_kind kind, enum gemm_impl impl,
				    const struct gemm_inputs *in)
{
	const char *rule = NULL;

	if (in->m <= 0 || in->n <= 0 || in->k <= 0)
		return "M, N and K must be positive";
	if (impl != GEMM_IMPL_CUBLASLT && impl != GEMM_IMPL_V1)
		return "impl is not a CUDA implementation";
	if (impl == GEMM_IMPL_V1 && kind == GEMM_BF16)
		return "v1 takes the FP8 kinds only";
	if (kind == GEMM_BF16)
		return in->a_f32 && in->b_f32 ? NULL : "bf16 needs FP32 host inputs a_f32, b_f32";
	if (kind == GEMM_FP8_TENSOR) {
		rule = fp8_operand_rule(in->a8, in->m, in->k, FP8_PER_TENSOR);
		return rule ? rule : fp8_operand_rule(in->b8, in->n, in->k, FP8_PER_TENSOR);
	}
	if (kind == GEMM_FP8_BLOCK) {
		rule = fp8_operand_rule(in->a8, in->m, in->k, FP8_PER_1X128);
		return rule ? rule : fp8_operand_rule(in->b8, in->n, in->k, FP8_PER_128X128);
	}
	return "unknown kind";
}

/* ---- cuBLASLt: inputs ---- */

/* lt_upload_bf16 rounds one FP32 host operand of count elements to BF16 and copies it
 * to d_dst. */
static int lt_upload_bf16(const float *x, size_t count, void *d_dst)
{
	uint16_t *h = malloc(count * sizeof(*h));
	int err = MB_ERR_NOMEM;

	if (!h)
		goto out;
	for (size_t i = 0; i < count; i++)
		h[i] = bf16_from_float(x[i]);
	err = mb_cuda_upload(d_dst, h, count * sizeof(*h));
out:
	free(h);
	return err;
}

/* lt_upload_array allocates a device copy of count floats. */
static int lt_upload_array(float **d_dst, const float *h, size_t count)
{
	int err = MB_CUDA_CHECK(cudaMalloc((void **)d_dst, count * sizeof(float)));

	if (!err)
		err = mb_cuda_upload(*d_dst, h, count * sizeof(float));
	return err;
}

/*
 * lt_upload_block_scales puts the block scales where cuBLASLt reads them. Our
 * fp8_matrix keeps scales row-major [scale_rows][scale_cols]; with the operand swap of
 * lt_make_plan, cuBLASLt's A is our B (K x N column-major) and its B is our A.
 *   our A, 1x128 (VEC128_32F on cuBLASLt's B): the scale of (row m, K block kb) at
 *     [kb * M + m], i.e. the outer dimension M contiguous: a transpose.
 *   our B, 128x128 (BLK128x128_32F on cuBLASLt's A): the scale of (N block nb, K block
 *     kb) at [nb * ld + kb], ld = scale_cols rounded up to a multiple of 4 (16 bytes),
 *     padding zero: our layout with its row stride padded.
 * NOTE: these are the layouts PyTorch's scaled_mm and TransformerEngine hand to
 * cuBLASLt on Hopper; tests/gpu/test_gemm.c checks them with per-tile magnitudes that
 * differ by up to 2^12, so a transposed or unpadded layout fails there.
 */
static int lt_upload_block_scales(struct gemm_cuda *g, const struct fp8_matrix *a,
				  const struct fp8_matrix *b)
{
	int ld_b = (b->scale_cols + 3) / 4 * 4;
	size_t na = (size_t)a->scale_rows * (size_t)a->scale_cols;
	size_t nb = (size_t)b->scale_rows * (size_t)ld_b;
	float *h_a = malloc(na * sizeof(float));
	float *h_b = calloc(nb, sizeof(float));
	int err = MB_ERR_NOMEM;

	if (!h_a || !h_b)
		goto out;
	for (int r = 0; r < a->scale_rows; r++)
		for (int c = 0; c < a->scale_cols; c++)
			h_a[(size_t)c * (size_t)a->scale_rows + (size_t)r] =
				a->scale[(size_t)r * (size_t)a->scale_cols + (size_t)c];
	for (int r = 0; r < b->scale_rows; r++)
		memcpy(h_b + (size_t)r * (size_t)ld_b, b->scale + (size_t)r * (size_t)b->scale_cols,
		       (size_t)b->scale_cols * sizeof(float));
	err = lt_upload_array(&g->d_scale_a, h_a, na);
	if (!err)
		err = lt_upload_array(&g->d_scale_b, h_b, nb);
out:
	free(h_a);
	free(h_b);
	return err;
}

/* lt_upload allocates the device buffers and copies the operands and scales. */
static int lt_upload(struct gemm_cuda *g, const struct gemm_inputs *in)
{
	size_t elem = g->kind == GEMM_BF16 ? 2 : 1;
	size_t mk = (size_t)g->m * (size_t)g->k;
	size_t nk = (size_t)g->n * (size_t)g->k;
	size_t mn = (size_t)g->m * (size_t)g->n;
	int err;

	err = MB_CUDA_CHECK(cudaMalloc(&g->d_a, mk * elem));
	if (!err)
		err = MB_CUDA_CHECK(cudaMalloc(&g->d_b, nk * elem));
	if (!err)
		err = MB_CUDA_CHECK(cudaMalloc(&g->d_d, mn * sizeof(uint16_t)));
	if (!err)
		err = MB_CUDA_CHECK(cudaMalloc(&g->d_workspace, GEMM_WORKSPACE_BYTES));
	if (err)
		return err;
	g->h_d = malloc(mn * sizeof(uint16_t));
	if (!g->h_d)
		return MB_ERR_NOMEM;
	if (g->kind == GEMM_BF16) {
		err = lt_upload_bf16(in->a_f32, mk, g->d_a);
		return err ? err : lt_upload_bf16(in->b_f32, nk, g->d_b);
	}
	err = mb_cuda_upload(g->d_a, in->a8->q, mk);
	if (!err)
		err = mb_cuda_upload(g->d_b, in->b8->q, nk);
	if (err)
		return err;
	if (g->kind == GEMM_FP8_BLOCK)
		return lt_upload_block_scales(g, in->a8, in->b8);
	err = lt_upload_array(&g->d_scale_a, in->a8->scale, 1);
	return err ? err : lt_upload_array(&g->d_scale_b, in->b8->scale, 1);
}

/* ---- cuBLASLt: plan ---- */

/* lt_type returns the cuBLASLt data type of an operand. */
static cudaDataType_t lt_type(enum gemm_kind kind, const struct fp8_matrix *x)
{
	if (kind == GEMM_BF16)
		return CUDA_R_16BF;
	return x->format == FP8_E5M2 ? CUDA_R_8F_E5M2 : CUDA_R_8F_E4M3;
}

/* lt_accum is the FAST_ACCUM setting of kind: set (0 or 1) on the FP8 kinds only. */
static enum mb_lt_accum lt_accum(const struct gemm_cuda *g)
{
	if (g->kind == GEMM_BF16)
		return MB_LT_ACCUM_DEFAULT;
	return g->fast_accum ? MB_LT_ACCUM_FAST : MB_LT_ACCUM_PROMOTED;
}

/*
 * lt_make_plan plans the GEMM (lt_plan.h): FP32 compute and scale, D in BF16; for the
 * FP8 kinds fast accumulation set either way and the scale pointers, swapped with the
 * operands (cuBLASLt's A scale is our B's); for FP8_BLOCK the scale modes,
 * BLK128x128_32F on cuBLASLt's A (our B, weights), VEC128_32F on its B (our A,
 * activations).
 *
 * NOTE: cuBLASLt is column-major. A row-major X[r][c] is the column-major X^T, so
 * row-major D = A B^T is column-major D^T = B A^T (as in peak_cuda.c):
 *   cuBLASLt A := our B, stored K x N (ld K), opA = T  -> N x K
 *   cuBLASLt B := our A, stored K x M (ld K), opB = N  -> K x M
 *   cuBLASLt D := our D, stored N x M (ld N)           -> m = N, n = M, k = K
 * This is the "TN" layout FP8 requires, and each operand stays K-major.
 */
static int lt_make_plan(struct gemm_cuda *g, const struct gemm_inputs *in)
{
	bool fp8 = g->kind != GEMM_BF16, block = g->kind == GEMM_FP8_BLOCK;
	uint64_t m = (uint64_t)g->m, n = (uint64_t)g->n, k = (uint64_t)g->k;
	char what[48];
	struct mb_lt_spec s = {
		.a = { lt_type(g->kind, in->b8), k, n, g->k, CUBLAS_OP_T,
		       fp8 ? g->d_scale_b : NULL,
		       block ? CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F : 0 },
		.b = { lt_type(g->kind, in->a8), k, m, g->k, CUBLAS_OP_N,
		       fp8 ? g->d_scale_a : NULL,
		       block ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F : 0 },
		.c = { CUDA_R_16BF, n, m, g->n, CUBLAS_OP_N, NULL, 0 },
		.accum = lt_accum(g),
		.workspace_bytes = GEMM_WORKSPACE_BYTES,
		.what = what, .m = g->m, .n = g->n, .k = g->k,
	};

	snprintf(what, sizeof(what), "%s%s", gemm_kind_name(g->kind),
		 g->fast_accum ? " fast-accum" : "");
	return mb_lt_plan_make(&g->plan, g->lt, &s);
}

/* lt_create builds the cuBLASLt half of g: device copies, then the plan. */
static int lt_create(struct gemm_cuda *g, const struct gemm_inputs *in)
{
	int err = lt_upload(g, in);

	if (!err)
		err = MB_CUBLAS_CHECK(cublasLtCreate(&g->lt));
	if (!err)
		err = lt_make_plan(g, in);
	return err;
}

/* ---- dispatch ---- */

/* gemm_cuda_create checks the inputs against kind and impl, then builds the cuBLASLt
 * plan or our kernel's state (see gemm_cuda.h); on failure it frees what it made and
 * sets *out to NULL. */
int gemm_cuda_create(struct gemm_cuda **out, enum gemm_kind kind, enum gemm_impl impl,
		     bool fast_accum, const struct gemm_inputs *in, void *stream)
{
	struct gemm_cuda *g = NULL;
	const char *rule;
	int err = MB_ERR_ARG;

	if (!out || !in)
		goto out;
	rule = gemm_inputs_rule(kind, impl, in);
	if (!rule && impl == GEMM_IMPL_CUBLASLT)
		rule = lt_shape_rule(kind, in->m, in->n, in->k);
	if (rule) {
		fprintf(stderr, "gemm_cuda_create: %s %s M=%d N=%d K=%d: %s\n",
			gemm_impl_name(impl), gemm_kind_name(kind), in->m, in->n, in->k, rule);
		goto out;
	}
	err = MB_ERR_NOMEM;
	g = calloc(1, sizeof(*g));
	if (!g)
		goto out;
	*g = (struct gemm_cuda){ .kind = kind, .impl = impl, .fast_accum = fast_accum,
				 .m = in->m, .n = in->n, .k = in->k,
				 .stream = (cudaStream_t)stream, .alpha = 1.0f };
	if (impl == GEMM_IMPL_V1)
		err = gemm_v1_create(&g->v1, kind, fast_accum, in, stream);
	else
		err = lt_create(g, in);
out:
	if (err) {
		gemm_cuda_destroy(g);
		g = NULL;
	}
	if (out)
		*out = g;
	return err;
}

/* gemm_cuda_poison fills D with 0xFFFF, a BF16 NaN, on the stream: an element the
 * GEMM fails to write reads back as NaN. */
int gemm_cuda_poison(struct gemm_cuda *g)
{
	size_t bytes;

	if (!g)
		return MB_ERR_ARG;
	if (g->impl == GEMM_IMPL_V1)
		return gemm_v1_poison(g->v1);
	bytes = (size_t)g->m * (size_t)g->n * sizeof(uint16_t);
	return MB_CUDA_CHECK(cudaMemsetAsync(g->d_d, 0xff, bytes, g->stream));
}

/* gemm_cuda_run enqueues one GEMM on the stream and nothing else: the timed region.
 * beta is 0, so C (aliased to D) is never read. */
int gemm_cuda_run(struct gemm_cuda *g)
{
	if (!g)
		return MB_ERR_ARG;
	if (g->impl == GEMM_IMPL_V1)
		return gemm_v1_run(g->v1);
	return mb_lt_plan_run(g->lt, &g->plan, &g->alpha, g->d_b, g->d_a, &g->beta, g->d_d,
			      g->d_workspace, g->stream);
}

/* gemm_cuda_download waits for the stream and copies D[m][n] to the host as floats. */
int gemm_cuda_download(struct gemm_cuda *g, float *d)
{
	size_t mn;
	int err;

	if (!g || !d)
		return MB_ERR_ARG;
	if (g->impl == GEMM_IMPL_V1)
		return gemm_v1_download(g->v1, d);
	mn = (size_t)g->m * (size_t)g->n;
	err = MB_CUDA_CHECK(cudaStreamSynchronize(g->stream));
	if (!err)
		err = MB_CUDA_CHECK(cudaMemcpy(g->h_d, g->d_d, mn * sizeof(uint16_t),
					       cudaMemcpyDeviceToHost));
	if (err)
		return err;
	for (size_t i = 0; i < mn; i++)
		d[i] = bf16_to_float(g->h_d[i]);
	return MB_OK;
}

/* gemm_cuda_destroy frees everything g holds; safe on NULL and on an object create
 * left half built (calloc zeroed every handle). */
void gemm_cuda_destroy(struct gemm_cuda *g)
{
	if (!g)
		return;
	gemm_v1_destroy(g->v1);
	mb_lt_plan_free(&g->plan);
	if (g->lt)
		cublasLtDestroy(g->lt);
	cudaFree(g->d_a);
	cudaFree(g->d_b);
	cudaFree(g->d_d);
	cudaFree(g->d_workspace);
	cudaFree(g->d_scale_a);
	cudaFree(g->d_scale_b);
	free(g->h_d);
	free(g);
}
