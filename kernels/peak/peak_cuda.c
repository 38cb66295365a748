/*
 * peak_cuda.c - the CUDA half of peak.h: cuBLASLt GEMM rate and device copy bandwidth.
 *
 * Shapes: D[M,N] = A[M,K] * B[N,K]^T, all row-major, both operands K-major ("TN").
 *   bf16:     A, B, D in BF16, FP32 accumulate and scale.
 *   fp8_e4m3: A, B in E4M3 with per-tensor scales (device FP32 scalars), D in BF16,
 *             FP32 accumulate, fast accumulation off (the cuBLASLt default).
 *   copy:     one cudaMemcpyAsync device-to-device of `bytes`.
 *
 * Plain C11 against the CUDA runtime and cuBLASLt C APIs; no kernels of our own.
 * run() only enqueues on the caller's stream, so the caller times it with events.
 */
#include "peak.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cuda_check.h"
#include "lt_plan.h"
#include "rng.h"
#include "status.h"

/* NOTE: 32 MiB is the workspace NVIDIA recommends for cuBLASLt on Hopper; the
 * heuristic may pick slower kernels when given less. */
#define GEMM_WORKSPACE_BYTES ((size_t)32 << 20)

/* Per-tensor FP8 scales. Powers of two keep the reference exact; the product (0.5)
 * differs from what any subset of them gives (1, 2, 0.25), so the check fails if
 * cuBLASLt ignores either one. */
#define GEMM_FP8_SCALE_A 2.0f
#define GEMM_FP8_SCALE_B 0.25f

/* The rng stream of each tensor, so A, B and the sample positions never overlap. */
enum { RNG_STREAM_A = 1, RNG_STREAM_B = 2, RNG_STREAM_SAMPLES = 3, RNG_STREAM_COPY = 1 };

struct peak_gemm_cuda {
	enum peak_dtype dtype;
	int m, n, k;
	uint64_t seed;
	cudaStream_t stream;
	float *h_a;        /* A as float, rounded to the input type, row-major [m][k] */
	float *h_b;        /* B likewise, [n][k] */
	uint16_t *h_d;     /* D copied back, BF16 bits, [m][n] */
	void *d_a, *d_b, *d_d, *d_workspace;
	float *d_scale_a, *d_scale_b;  /* FP8 only */
	float alpha, beta;
	cublasLtHandle_t lt;
	struct mb_lt_plan plan;
};

struct peak_copy_cuda {
	size_t bytes;
	cudaStream_t stream;
	uint8_t *h_src, *h_dst;
	void *d_src, *d_dst;
};

/* ---- number formats ---- */

/* e4m3_decode returns the value of an FP8 E4M3 code (OCP FP8 spec): 1 sign bit, 4
 * exponent bits with bias 7, 3 mantissa bits, subnormals at exponent 0, no infinity,
 * S.1111.111 the only NaN. */
static float e4m3_decode(uint8_t code)
{
	int exponent = (code >> 3) & 0xf;
	int mantissa = code & 0x7;
	float mag;

	if ((code & 0x7f) == 0x7f)
		return NAN;
	if (exponent == 0)
		mag = ldexpf((float)mantissa, -9);  /* m/8 * 2^(1-7) */
	else
		mag = ldexpf((float)(8 + mantissa), exponent - 10);  /* (1+m/8) * 2^(e-7) */
	return (code & 0x80) ? -mag : mag;
}

/* e4m3_random draws a normal E4M3 code with magnitude in [2^-4, 3.75] (exponent field
 * 3..8, any mantissa), never NaN or zero, negative with probability 1/4.
 * NOTE: the sign bias gives every dot product a mean of about a quarter of
 * sum|a*b|, so a missing or wrong scale moves the checked error by ~0.25 at any K;
 * with zero-mean inputs it would move it only by ~1/sqrt(K). */
static uint8_t e4m3_random(struct mb_rng *rng)
{
	uint64_t r = mb_rng_next(rng);
	unsigned sign = (unsigned)((r >> 62) == 0);
	unsigned exponent = 3 + (unsigned)((r >> 8) % 6);
	unsigned mantissa = (unsigned)(r & 0x7);

	return (uint8_t)((sign << 7) | (exponent << 3) | mantissa);
}

/* ---- GEMM: inputs ---- */

/* gemm_shape_ok says whether cuBLASLt can run this shape. FP8 needs every dimension
 * (and so every leading dimension) a multiple of 16; cudaMalloc's 256-byte alignment
 * covers the 16-byte pointer alignment it also needs. */
static int gemm_shape_ok(enum peak_dtype dtype, int m, int n, int k)
{
	if (m <= 0 || n <= 0 || k <= 0)
		return 0;
	if (dtype == PEAK_BF16)
		return 1;
	if (dtype == PEAK_FP8_E4M3)
		return m % 16 == 0 && n % 16 == 0 && k % 16 == 0;
	return 0;
}

/* gemm_fill_operand fills one row-major operand of rows*k elements with random
 * values from (seed, stream): the device encoding into `bits` (BF16 or E4M3) and
 * the exact value of each encoded element into `ref`. */
static void gemm_fill_operand(enum peak_dtype dtype, uint64_t seed, uint64_t stream,
			      size_t count, float *ref, void *bits)
{
	struct mb_rng rng;

	mb_rng_seed(&rng, seed, stream);
	for (size_t i = 0; i < count; i++) {
		if (dtype == PEAK_FP8_E4M3) {
			uint8_t code = e4m3_random(&rng);
			((uint8_t *)bits)[i] = code;
			ref[i] = e4m3_decode(code);
		} else {
			/* uniform in [-0.5, 1): mean 1/4, for the reason given at e4m3_random */
			uint16_t h = bf16_from_float((float)mb_rng_uniform(&rng, -0.5, 1.0));
			((uint16_t *)bits)[i] = h;
			ref[i] = bf16_to_float(h);
		}
	}
}

/* gemm_make_operand builds one operand of rows x k on the host (see
 * gemm_fill_operand) and uploads its encoding to d_dst through a staging buffer. */
static int gemm_make_operand(const struct peak_gemm_cuda *g, uint64_t stream, int rows,
			     float *ref, void *d_dst)
{
	size_t count = (size_t)rows * (size_t)g->k;
	size_t bytes = count * (g->dtype == PEAK_FP8_E4M3 ? 1 : 2);
	void *h_bits = malloc(bytes);
	int err = MB_OK;

	if (!h_bits) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	gemm_fill_operand(g->dtype, g->seed, stream, count, ref, h_bits);
	err = mb_cuda_upload(d_dst, h_bits, bytes);
out:
	free(h_bits);
	return err;
}

/* gemm_upload_scales puts the two per-tensor FP8 scales on the device, where
 * cuBLASLt reads them at run time. */
static int gemm_upload_scales(struct peak_gemm_cuda *g)
{
	float scale_a = GEMM_FP8_SCALE_A;
	float scale_b = GEMM_FP8_SCALE_B;
	int err;

	err = MB_CUDA_CHECK(cudaMalloc((void **)&g->d_scale_a, sizeof(float)));
	if (err)
		goto out;
	err = MB_CUDA_CHECK(cudaMalloc((void **)&g->d_scale_b, sizeof(float)));
	if (err)
		goto out;
	err = mb_cuda_upload(g->d_scale_a, &scale_a, sizeof(float));
	if (err)
		goto out;
	err = mb_cuda_upload(g->d_scale_b, &scale_b, sizeof(float));
out:
	return err;
}

/* ---- GEMM: cuBLASLt set-up ---- */

/*
 * gemm_make_plan plans the GEMM (lt_plan.h): FP32 compute and scale, D in BF16, and for
 * FP8 the per-tensor scale pointers, swapped with the operands (below).
 *
 * NOTE: cuBLASLt is column-major. A row-major X[r][c] is the column-major X^T (c rows,
 * r columns, ld c), so row-major D = A B^T is column-major D^T = B A^T:
 *   cuBLASLt A := our B, stored K x N (ld K), opA = T  -> N x K
 *   cuBLASLt B := our A, stored K x M (ld K), opB = N  -> K x M
 *   cuBLASLt D := our D, stored N x M (ld N)           -> m = N, n = M, k = K
 * This is the "TN" layout FP8 requires, and each operand stays K-major. The scale
 * pointers are NULL for BF16 (never allocated), so no scale attribute is set there.
 * NOTE: CUBLASLT_MATMUL_DESC_FAST_ACCUM stays at its default 0 (accumulation
 * promoted to full FP32); the FP8 GEMM study compares against it.
 */
static int gemm_make_plan(struct peak_gemm_cuda *g)
{
	cudaDataType_t in = g->dtype == PEAK_FP8_E4M3 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
	uint64_t m = (uint64_t)g->m, n = (uint64_t)g->n, k = (uint64_t)g->k;
	struct mb_lt_spec s = {
		.a = { in, k, n, g->k, CUBLAS_OP_T, g->d_scale_b, 0 },
		.b = { in, k, m, g->k, CUBLAS_OP_N, g->d_scale_a, 0 },
		.c = { CUDA_R_16BF, n, m, g->n, CUBLAS_OP_N, NULL, 0 },
		.accum = MB_LT_ACCUM_DEFAULT,
		.workspace_bytes = GEMM_WORKSPACE_BYTES,
		.what = peak_dtype_name(g->dtype), .m = g->m, .n = g->n, .k = g->k,
	};

	return mb_lt_plan_make(&g->plan, g->lt, &s);
}

/* ---- GEMM: life cycle ---- */

/* gemm_alloc allocates the host copies and the device buffers of g. Device memory
 * comes first so a machine without a GPU fails before any long host work. */
static int gemm_alloc(struct peak_gemm_cuda *g)
{
	size_t elem = g->dtype == PEAK_FP8_E4M3 ? 1 : 2;
	size_t mk = (size_t)g->m * (size_t)g->k;
	size_t nk = (size_t)g->n * (size_t)g->k;
	size_t mn = (size_t)g->m * (size_t)g->n;
	int err;

	err = MB_CUDA_CHECK(cudaMalloc(&g->d_a, mk * elem));
	if (err)
		goto out;
	err = MB_CUDA_CHECK(cudaMalloc(&g->d_b, nk * elem));
	if (err)
		goto out;
	err = MB_CUDA_CHECK(cudaMalloc(&g->d_d, mn * sizeof(uint16_t)));
	if (err)
		goto out;
	err = MB_CUDA_CHECK(cudaMalloc(&g->d_workspace, GEMM_WORKSPACE_BYTES));
	if (err)
		goto out;
	g->h_a = malloc(mk * sizeof(float));
	g->h_b = malloc(nk * sizeof(float));
	g->h_d = malloc(mn * sizeof(uint16_t));
	if (!g->h_a || !g->h_b || !g->h_d)
		err = MB_ERR_NOMEM;
out:
	return err;
}

/* peak_gemm_cuda_create builds the inputs of one GEMM and the cuBLASLt plan for it
 * (see peak.h); on failure it frees what it made and sets *out to NULL. */
int peak_gemm_cuda_create(struct peak_gemm_cuda **out, enum peak_dtype dtype,
			  int m, int n, int k, uint64_t seed, void *stream)
{
	struct peak_gemm_cuda *g = NULL;
	int err = MB_ERR_ARG;

	if (!out || !gemm_shape_ok(dtype, m, n, k))
		goto out;
	err = MB_ERR_NOMEM;
	g = calloc(1, sizeof(*g));
	if (!g)
		goto out;
	*g = (struct peak_gemm_cuda){ .dtype = dtype, .m = m, .n = n, .k = k, .seed = seed,
				      .stream = (cudaStream_t)stream, .alpha = 1.0f };
	err = gemm_alloc(g);
	if (!err && dtype == PEAK_FP8_E4M3)
		err = gemm_upload_scales(g);
	if (!err)
		err = gemm_make_operand(g, RNG_STREAM_A, m, g->h_a, g->d_a);
	if (!err)
		err = gemm_make_operand(g, RNG_STREAM_B, n, g->h_b, g->d_b);
	if (!err)
		err = MB_CUBLAS_CHECK(cublasLtCreate(&g->lt));
	if (!err)
		err = gemm_make_plan(g);
out:
	if (err) {
		peak_gemm_cuda_destroy(g);
		g = NULL;
	}
	if (out)
		*out = g;
	return err;
}

/* peak_gemm_cuda_poison fills D with 0xFFFF, a BF16 NaN, on the stream: an element
 * the GEMM fails to write reads as non-finite in the check. */
int peak_gemm_cuda_poison(struct peak_gemm_cuda *g)
{
	size_t bytes = (size_t)g->m * (size_t)g->n * sizeof(uint16_t);

	return MB_CUDA_CHECK(cudaMemsetAsync(g->d_d, 0xff, bytes, g->stream));
}

/* peak_gemm_cuda_run enqueues one GEMM on the stream and nothing else: it is the
 * timed region. beta is 0, so C (aliased to D) is never read. */
int peak_gemm_cuda_run(struct peak_gemm_cuda *g)
{
	return mb_lt_plan_run(g->lt, &g->plan, &g->alpha, g->d_b, g->d_a, &g->beta, g->d_d,
			      g->d_workspace, g->stream);
}

/* gemm_sample_error returns err(i,j) of peak.h for one output element: FP64
 * reference from the host copies and scales, relative to sum_k |A B| (scaled);
 * infinity where D is not finite. */
static double gemm_sample_error(const struct peak_gemm_cuda *g, int i, int j)
{
	const float *a = g->h_a + (size_t)i * (size_t)g->k;
	const float *b = g->h_b + (size_t)j * (size_t)g->k;
	double d = bf16_to_float(g->h_d[(size_t)i * (size_t)g->n + (size_t)j]);
	double scale = 1.0, ref = 0.0, mag = 0.0;

	if (!isfinite(d))
		return INFINITY;
	if (g->dtype == PEAK_FP8_E4M3)
		scale = (double)GEMM_FP8_SCALE_A * (double)GEMM_FP8_SCALE_B;
	for (int kk = 0; kk < g->k; kk++) {
		double p = (double)a[kk] * (double)b[kk];
		ref += p;
		mag += fabs(p);
	}
	ref *= scale;
	mag *= scale;
	return mag > 0.0 ? fabs(d - ref) / mag : fabs(d - ref);
}

/* peak_gemm_cuda_check waits for the stream, copies D back and compares
 * max(samples, 2) elements with the FP64 reference: the two corners, then positions
 * drawn from the seed. Mismatches are counted, not failed: the caller judges. */
int peak_gemm_cuda_check(struct peak_gemm_cuda *g, int samples, struct peak_check *chk)
{
	size_t bytes = (size_t)g->m * (size_t)g->n * sizeof(uint16_t);
	struct mb_rng rng;
	int err;

	*chk = (struct peak_check){ .tolerance = 1e-2 };
	err = MB_CUDA_CHECK(cudaStreamSynchronize(g->stream));
	if (err)
		goto out;
	err = MB_CUDA_CHECK(cudaMemcpy(g->h_d, g->d_d, bytes, cudaMemcpyDeviceToHost));
	if (err)
		goto out;
	if (samples < 2)
		samples = 2;
	mb_rng_seed(&rng, g->seed, RNG_STREAM_SAMPLES);
	for (int s = 0; s < samples; s++) {
		int i = g->m - 1, j = g->n - 1;
		double e;

		if (s == 0) {
			i = 0;
			j = 0;
		} else if (s > 1) {
			i = (int)(mb_rng_next(&rng) % (uint64_t)g->m);
			j = (int)(mb_rng_next(&rng) % (uint64_t)g->n);
		}
		e = gemm_sample_error(g, i, j);

		if (!(e <= chk->tolerance))
			chk->mismatches++;
		if (e > chk->max_err)
			chk->max_err = e;
	}
	chk->samples = samples;
out:
	return err;
}

/* peak_gemm_cuda_destroy frees everything g holds; safe on NULL and on an object
 * create left half built (calloc zeroed every handle). */
void peak_gemm_cuda_destroy(struct peak_gemm_cuda *g)
{
	if (!g)
		return;
	mb_lt_plan_free(&g->plan);
	if (g->lt)
		cublasLtDestroy(g->lt);
	cudaFree(g->d_a);
	cudaFree(g->d_b);
	cudaFree(g->d_d);
	cudaFree(g->d_workspace);
	cudaFree(g->d_scale_a);
	cudaFree(g->d_scale_b);
	free(g->h_a);
	free(g->h_b);
	free(g->h_d);
	free(g);
}

/* ---- device copy ---- */

/* peak_copy_cuda_create allocates two device buffers of `bytes` (a multiple of 16)
 * and fills the source with random bytes from the seed, keeping a host copy. */
int peak_copy_cuda_create(struct peak_copy_cuda **out, size_t bytes, uint64_t seed,
			  void *stream)
{
	struct peak_copy_cuda *c = NULL;
	struct mb_rng rng;
	int err = MB_ERR_ARG;

	if (!out || bytes == 0 || bytes % 16 != 0)
		goto out;
	err = MB_ERR_NOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	c->bytes = bytes;
	c->stream = (cudaStream_t)stream;
	err = MB_CUDA_CHECK(cudaMalloc(&c->d_src, bytes));
	if (!err)
		err = MB_CUDA_CHECK(cudaMalloc(&c->d_dst, bytes));
	if (err)
		goto out;
	err = MB_ERR_NOMEM;
	c->h_src = malloc(bytes);
	c->h_dst = malloc(bytes);
	if (!c->h_src || !c->h_dst)
		goto out;
	mb_rng_seed(&rng, seed, RNG_STREAM_COPY);
	for (size_t i = 0; i < bytes; i += sizeof(uint64_t)) {
		uint64_t r = mb_rng_next(&rng);
		memcpy(c->h_src + i, &r, sizeof(r));
	}
	err = mb_cuda_upload(c->d_src, c->h_src, bytes);
out:
	if (err) {
		peak_copy_cuda_destroy(c);
		c = NULL;
	}
	if (out)
		*out = c;
	return err;
}

/* peak_copy_cuda_poison fills the destination with 0xA5 bytes on the stream; random
 * source bytes differ from it 255 times in 256, so a copy that did not happen shows. */
int peak_copy_cuda_poison(struct peak_copy_cuda *c)
{
	return MB_CUDA_CHECK(cudaMemsetAsync(c->d_dst, 0xa5, c->bytes, c->stream));
}

/* peak_copy_cuda_run enqueues one device-to-device copy on the stream (the timed
 * region): `bytes` read and `bytes` written. */
int peak_copy_cuda_run(struct peak_copy_cuda *c)
{
	return MB_CUDA_CHECK(cudaMemcpyAsync(c->d_dst, c->d_src, c->bytes,
					     cudaMemcpyDeviceToDevice, c->stream));
}

/* peak_copy_cuda_check waits for the stream and compares every destination byte with
 * the host source: mismatches counts differing bytes, max_err is 0 or 1. */
int peak_copy_cuda_check(struct peak_copy_cuda *c, struct peak_check *chk)
{
	int err;

	*chk = (struct peak_check){ .tolerance = 0.0 };
	err = MB_CUDA_CHECK(cudaStreamSynchronize(c->stream));
	if (err)
		goto out;
	err = MB_CUDA_CHECK(cudaMemcpy(c->h_dst, c->d_dst, c->bytes, cudaMemcpyDeviceToHost));
	if (err)
		goto out;
	if (memcmp(c->h_dst, c->h_src, c->bytes) != 0) {
		for (size_t i = 0; i < c->bytes; i++)
			chk->mismatches += c->h_dst[i] != c->h_src[i];
	}
	chk->samples = (long)c->bytes;
	chk->max_err = chk->mismatches ? 1.0 : 0.0;
out:
	return err;
}

/* peak_copy_cuda_destroy frees everything c holds; safe on NULL and half-built. */
void peak_copy_cuda_destroy(struct peak_copy_cuda *c)
{
	if (!c)
		return;
	cudaFree(c->d_src);
	cudaFree(c->d_dst);
	free(c->h_src);
	free(c->h_dst);
	free(c);
}
