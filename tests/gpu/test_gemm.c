/*
 * test_gemm.c (GPU) - every CUDA path of gemm_cuda.h against the CPU references of
 * gemm.h, and fp8_quantize_cuda bit for bit against fp8_quantize. Exits 77 (CTest:
 * skipped) when no CUDA device answers; runs without fork (CUDA contexts do not
 * survive one). `CK_RUN_CASE=core` leaves out the large timed GEMMs (for
 * compute-sanitizer).
 *
 * Inputs are fresh random matrices whose magnitude changes by 2^e, e in [-4, 4], from
 * one 128-wide tile to the next (per row for A, per 128 rows for B), so every 1x128
 * and 128x128 scale differs from its neighbours and a misplaced scale shows. Values
 * are uniform in [-0.25, 1) before that, negatives included, with a mean that keeps
 * every element of D more than 6 standard deviations from zero at K >= 128.
 * NOTE: that matters: Hopper's FP8 tensor cores add products with about 14 bits
 * inside each K chunk (promotion or not), an error of ~2^-14 * sum|a*b|; measured
 * relative to an element that cancels to near zero it reaches 0.2 (seen on an H100
 * with zero-mean-ish inputs), which says nothing about the implementation.
 * The output is poisoned (NaN) before every run.
 *
 * Tolerances, on gemm_compare's max relative error:
 *   arithmetic error (vs gemm_fp8_ref on the same quantized inputs, or the FP64
 *   product of the BF16-rounded inputs for bf16)      <= 1e-2 (BF16 output: 2^-9)
 *   the same with fast accumulation (cuBLASLt FAST_ACCUM, v1 fast_accum)  <= 5e-2
 *   quantization error (vs gemm_ref_f64 on the unquantized inputs), E4M3  <= 2.5e-1
 * The last is a sanity bound, not a precision claim: E4M3 moves each input by up to
 * 2^-4 relative, and per-tensor scales over tiles 2^8 apart with a row dominated by a
 * 16-wide partial K tile (K = 1040) measured 0.16 with fast accumulation on an H100
 * (typically 1e-2 to 3e-2).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

#include "backend.h"
#include "bf16.h"
#include "fp8.h"
#include "gemm.h"
#include "gemm_cuda.h"
#include "rng.h"
#include "status.h"

#include "gpu_main.h"

#define TOL_ARITH 1e-2
#define TOL_FAST 5e-2
#define TOL_QUANT 2.5e-1


struct operands {
	int m, n, k;
	float *a, *b;                 /* FP32 [m,k], [n,k] */
	struct fp8_matrix a8, b8;     /* FP8 kinds: quantized a, b */
};

struct path_result {
	int status;
	struct gemm_err arith, quant;
};

/* fill_operand fills x[rows, cols] as the file header says; row_group is 1 (A) or
 * 128 (B). */
static void fill_operand(float *x, int rows, int cols, int row_group, uint64_t seed,
			 uint64_t id)
{
	struct mb_rng rng;
	int tc = (cols + FP8_TILE - 1) / FP8_TILE, tr = (rows + row_group - 1) / row_group;
	float *mag = malloc(sizeof(float) * (size_t)tc * (size_t)tr);

	ck_assert_ptr_nonnull(mag);
	mb_rng_seed(&rng, seed, id);
	for (int i = 0; i < tc * tr; i++)
		mag[i] = ldexpf(1.0f, (int)(mb_rng_next(&rng) % 9) - 4);
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++)
			x[(size_t)r * cols + c] = (float)mb_rng_uniform(&rng, -0.25, 1.0) *
						  mag[(r / row_group) * tc + c / FP8_TILE];
	free(mag);
}

/* make_operands builds random A, B for a kind, quantized (E4M3) for the FP8 kinds. */
static void make_operands(struct operands *o, enum gemm_kind kind, int m, int n, int k,
			  uint64_t seed)
{
	enum fp8_scaling sa = kind == GEMM_FP8_BLOCK ? FP8_PER_1X128 : FP8_PER_TENSOR;
	enum fp8_scaling sb = kind == GEMM_FP8_BLOCK ? FP8_PER_128X128 : FP8_PER_TENSOR;

	*o = (struct operands){ .m = m, .n = n, .k = k };
	o->a = malloc(sizeof(float) * (size_t)m * k);
	o->b = malloc(sizeof(float) * (size_t)n * k);
	ck_assert(o->a && o->b);
	fill_operand(o->a, m, k, 1, seed, 1);
	fill_operand(o->b, n, k, FP8_TILE, seed, 2);
	if (kind == GEMM_BF16)
		return;
	ck_assert_int_eq(fp8_matrix_alloc(&o->a8, m, k, FP8_E4M3, sa), MB_OK);
	ck_assert_int_eq(fp8_matrix_alloc(&o->b8, n, k, FP8_E4M3, sb), MB_OK);
	ck_assert_int_eq(fp8_quantize(o->a, &o->a8, false), MB_OK);
	ck_assert_int_eq(fp8_quantize(o->b, &o->b8, false), MB_OK);
}

static void free_operands(struct operands *o, enum gemm_kind kind)
{
	free(o->a);
	free(o->b);
	if (kind != GEMM_BF16) {
		fp8_matrix_free(&o->a8);
		fp8_matrix_free(&o->b8);
	}
}

/* inputs_of points gemm_inputs at o. */
static struct gemm_inputs inputs_of(const struct operands *o)
{
	return (struct gemm_inputs){ .m = o->m, .n = o->n, .k = o->k, .a_f32 = o->a,
				     .b_f32 = o->b, .a8 = &o->a8, .b8 = &o->b8 };
}

/* reference_arith computes the reference the arithmetic error is measured against. */
static void reference_arith(const struct operands *o, enum gemm_kind kind, double *ref)
{
	size_t mk = (size_t)o->m * o->k, nk = (size_t)o->n * o->k;
	float *a, *b;

	if (kind != GEMM_BF16) {
		ck_assert_int_eq(gemm_fp8_ref(&o->a8, &o->b8, ref), MB_OK);
		return;
	}
	a = malloc(mk * sizeof(float));
	b = malloc(nk * sizeof(float));
	ck_assert(a && b);
	for (size_t i = 0; i < mk; i++)
		a[i] = bf16_round(o->a[i]);
	for (size_t i = 0; i < nk; i++)
		b[i] = bf16_round(o->b[i]);
	gemm_ref_f64(a, b, o->m, o->n, o->k, ref);
	free(a);
	free(b);
}

/* run_path runs one GEMM (or only poisons it when run is false) on fresh inputs and
 * measures both errors; status is create's return code. */
static struct path_result run_path(enum gemm_kind kind, enum gemm_impl impl, bool fast,
				   int m, int n, int k, uint64_t seed, bool run)
{
	struct path_result r = { 0 };
	struct gemm_cuda *g = NULL;
	struct gemm_inputs in;
	struct operands o;
	size_t mn = (size_t)m * n;
	float *d = malloc(mn * sizeof(float));
	double *ref = malloc(mn * sizeof(double));

	ck_assert(d && ref);
	make_operands(&o, kind, m, n, k, seed);
	in = inputs_of(&o);
	r.status = gemm_cuda_create(&g, kind, impl, fast, &in, stream);
	if (r.status != MB_OK) {
		ck_assert_ptr_null(g);
		goto out;
	}
	ck_assert_int_eq(gemm_cuda_poison(g), MB_OK);
	if (run)
		ck_assert_int_eq(gemm_cuda_run(g), MB_OK);
	ck_assert_int_eq(gemm_cuda_download(g, d), MB_OK);
	reference_arith(&o, kind, ref);
	gemm_compare(d, 0, ref, mn, &r.arith);
	gemm_ref_f64(o.a, o.b, m, n, k, ref);
	gemm_compare(d, 0, ref, mn, &r.quant);
	printf("gpu_gemm: %-8s %-10s fast=%d %5dx%5dx%5d  arith max %.3e mean %.3e  "
	       "quant max %.3e\n", gemm_impl_name(impl), gemm_kind_name(kind), fast, m, n, k,
	       r.arith.max_rel, r.arith.mean_rel, r.quant.max_rel);
out:
	gemm_cuda_destroy(g);
	free_operands(&o, kind);
	free(d);
	free(ref);
	return r;
}

/* path_failure describes why r breaks the tolerances (NULL when it does not) in buf. */
static const char *path_failure(const struct path_result *r, enum gemm_kind kind, bool fast,
				char *buf, size_t size)
{
	double tol = fast ? TOL_FAST : TOL_ARITH;

	if (r->status != MB_OK)
		snprintf(buf, size, "create returned %d", r->status);
	else if (r->arith.nonfinite || !(r->arith.max_rel <= tol))
		snprintf(buf, size, "arith max %g > %g, %ld non-finite", r->arith.max_rel, tol,
			 r->arith.nonfinite);
	else if (kind != GEMM_BF16 && !(r->quant.max_rel <= TOL_QUANT))
		snprintf(buf, size, "quant max %g > %g", r->quant.max_rel, TOL_QUANT);
	else
		return NULL;
	return buf;
}

/* check_shapes runs one path over all shapes, then fails on the first that broke a
 * tolerance (all are printed first, so one GPU run shows every error). */
static void check_shapes(enum gemm_kind kind, enum gemm_impl impl, bool fast,
			 const int (*shapes)[3], size_t count, uint64_t seed)
{
	char why[160], first[256] = "";

	for (size_t i = 0; i < count; i++) {
		const int *s = shapes[i];
		struct path_result r = run_path(kind, impl, fast, s[0], s[1], s[2], seed + i, true);

		if (path_failure(&r, kind, fast, why, sizeof(why)) && !first[0])
			snprintf(first, sizeof(first), "%s %s fast=%d %dx%dx%d: %s",
				 gemm_impl_name(impl), gemm_kind_name(kind), fast, s[0], s[1], s[2],
				 why);
	}
	ck_assert_msg(first[0] == 0, "%s", first);
}

#define NSHAPES(s) (sizeof(s) / sizeof((s)[0]))

/* ---- cuBLASLt ---- */

START_TEST(cublaslt_bf16_on_odd_shapes)
{
	const int shapes[][3] = { { 128, 256, 64 }, { 100, 70, 33 }, { 1, 513, 1000 },
				  { 777, 5, 4096 } };
	check_shapes(GEMM_BF16, GEMM_IMPL_CUBLASLT, false, shapes, NSHAPES(shapes), 100);
}
END_TEST

START_TEST(cublaslt_fp8_tensor)
{
	const int shapes[][3] = { { 256, 512, 128 }, { 272, 400, 1040 }, { 128, 64, 4096 } };
	check_shapes(GEMM_FP8_TENSOR, GEMM_IMPL_CUBLASLT, false, shapes, NSHAPES(shapes), 200);
	check_shapes(GEMM_FP8_TENSOR, GEMM_IMPL_CUBLASLT, true, shapes, NSHAPES(shapes), 210);
}
END_TEST

/* K = 384 and 1152 give 3 and 9 K blocks: B's scale rows are padded to 4 and 12. */
START_TEST(cublaslt_fp8_block)
{
	const int shapes[][3] = { { 128, 128, 128 }, { 272, 400, 384 }, { 512, 1024, 1152 },
				  { 16, 2048, 7168 } };
	check_shapes(GEMM_FP8_BLOCK, GEMM_IMPL_CUBLASLT, false, shapes, NSHAPES(shapes), 300);
}
END_TEST

/* NOTE: cuBLASLt's documentation leaves open whether FAST_ACCUM combines with block
 * scaling; cuBLASLt 13.1 on an H100 has no algorithm for it (MB_ERR_UNSUPPORTED). A
 * later version may: then it runs and is checked. */
START_TEST(cublaslt_fp8_block_fast_accum)
{
	struct path_result r = run_path(GEMM_FP8_BLOCK, GEMM_IMPL_CUBLASLT, true, 272, 400,
					1152, 310, true);
	ck_assert(r.status == MB_OK || r.status == MB_ERR_UNSUPPORTED);
	if (r.status == MB_ERR_UNSUPPORTED)
		printf("gpu_gemm: cublaslt fp8-block fast_accum: no algorithm (unsupported)\n");
	else
		ck_assert_msg(r.arith.nonfinite == 0 && r.arith.max_rel <= TOL_FAST,
			      "arith max %g", r.arith.max_rel);
}
END_TEST

/* ---- v1 ---- */

START_TEST(v1_fp8_tensor_and_block)
{
	const int shapes[][3] = { { 256, 256, 256 }, { 200, 384, 1152 }, { 1, 128, 128 } };
	check_shapes(GEMM_FP8_BLOCK, GEMM_IMPL_V1, false, shapes, NSHAPES(shapes), 400);
	check_shapes(GEMM_FP8_TENSOR, GEMM_IMPL_V1, false, shapes, NSHAPES(shapes), 410);
	check_shapes(GEMM_FP8_TENSOR, GEMM_IMPL_V1, true, shapes, NSHAPES(shapes), 420);
}
END_TEST

/* ---- limits ---- */

START_TEST(poisoned_output_reads_nan)
{
	struct path_result r = run_path(GEMM_FP8_BLOCK, GEMM_IMPL_CUBLASLT, false, 128, 128,
					128, 7, false);
	ck_assert_int_eq(r.status, MB_OK);
	ck_assert_int_eq(r.arith.nonfinite, 128 * 128);
}
END_TEST

/* expect_arg asserts that create refuses a combination with MB_ERR_ARG and NULL. */
static void expect_arg(enum gemm_kind kind, enum gemm_impl impl, bool fast, int m, int n,
		       int k)
{
	struct path_result r = run_path(kind, impl, fast, m, n, k, 9, true);
	ck_assert_msg(r.status == MB_ERR_ARG, "%s %s fast=%d %dx%dx%d: %d, not MB_ERR_ARG",
		      gemm_impl_name(impl), gemm_kind_name(kind), fast, m, n, k, r.status);
}

START_TEST(unsupported_shapes_are_refused)
{
	expect_arg(GEMM_FP8_TENSOR, GEMM_IMPL_CUBLASLT, false, 100, 64, 32);
	expect_arg(GEMM_FP8_BLOCK, GEMM_IMPL_CUBLASLT, false, 128, 128, 400);
	expect_arg(GEMM_FP8_BLOCK, GEMM_IMPL_CUBLASLT, false, 120, 128, 128);
	expect_arg(GEMM_BF16, GEMM_IMPL_V1, false, 128, 128, 128);
	expect_arg(GEMM_FP8_BLOCK, GEMM_IMPL_V1, false, 128, 200, 128);
	expect_arg(GEMM_FP8_BLOCK, GEMM_IMPL_V1, true, 128, 128, 128);
	expect_arg(GEMM_BF16, GEMM_IMPL_CPU, false, 128, 128, 128);
}
END_TEST

START_TEST(mismatched_scaling_is_refused)
{
	struct gemm_cuda *g = (struct gemm_cuda *)&g;  /* not NULL: create must clear it */
	struct operands o;
	struct gemm_inputs in;

	make_operands(&o, GEMM_FP8_TENSOR, 128, 128, 128, 11);
	in = inputs_of(&o);
	ck_assert_int_eq(gemm_cuda_create(&g, GEMM_FP8_BLOCK, GEMM_IMPL_CUBLASLT, false, &in,
					  stream), MB_ERR_ARG);
	ck_assert_ptr_null(g);
	in.k = 64;
	ck_assert_int_eq(gemm_cuda_create(&g, GEMM_FP8_TENSOR, GEMM_IMPL_CUBLASLT, false, &in,
					  stream), MB_ERR_ARG);
	free_operands(&o, GEMM_FP8_TENSOR);
}
END_TEST

/* ---- fp8_quantize_cuda ---- */

/* check_quantize quantizes one matrix on both sides and compares codes and scales bit
 * for bit. Special values: -0, a tiny value, and (1x128, rows > 1) an all-zero tile. */
static void check_quantize(int rows, int cols, enum fp8_format f, enum fp8_scaling s,
			   bool pow2, uint64_t seed)
{
	size_t n = (size_t)rows * cols;
	struct fp8_matrix m;
	float *x = malloc(n * sizeof(float)), *scale, *d_x, *d_scale;
	unsigned char *q, *d_q;
	size_t ns;

	ck_assert_ptr_nonnull(x);
	fill_operand(x, rows, cols, 1, seed, 3);
	x[0] = -0.0f;
	if (n > 1)
		x[n - 1] = 1e-30f;
	if (rows > 1)
		memset(x, 0, sizeof(float) * (size_t)(cols < FP8_TILE ? cols : FP8_TILE));
	ck_assert_int_eq(fp8_matrix_alloc(&m, rows, cols, f, s), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, pow2), MB_OK);
	ns = (size_t)m.scale_rows * m.scale_cols;
	q = malloc(n);
	scale = malloc(ns * sizeof(float));
	ck_assert(q && scale);
	ck_assert_int_eq(cudaMalloc((void **)&d_x, n * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(cudaMalloc((void **)&d_q, n), cudaSuccess);
	ck_assert_int_eq(cudaMalloc((void **)&d_scale, ns * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(d_x, x, n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
	ck_assert_int_eq(fp8_quantize_cuda(d_x, rows, cols, f, s, pow2, d_q, d_scale, stream),
			 MB_OK);
	ck_assert_int_eq(cudaStreamSynchronize(stream), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(q, d_q, n, cudaMemcpyDeviceToHost), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(scale, d_scale, ns * sizeof(float), cudaMemcpyDeviceToHost),
			 cudaSuccess);
	for (size_t i = 0; i < ns; i++)
		ck_assert_msg(memcmp(&scale[i], &m.scale[i], sizeof(float)) == 0,
			      "%s %s pow2=%d %dx%d: scale %zu: gpu %a cpu %a", fp8_format_name(f),
			      fp8_scaling_name(s), pow2, rows, cols, i, scale[i], m.scale[i]);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(q[i] == m.q[i], "%s %s pow2=%d %dx%d: code %zu (x=%a): gpu %#x cpu %#x",
			      fp8_format_name(f), fp8_scaling_name(s), pow2, rows, cols, i, x[i],
			      q[i], m.q[i]);
	cudaFree(d_x);
	cudaFree(d_q);
	cudaFree(d_scale);
	free(q);
	free(scale);
	free(x);
	fp8_matrix_free(&m);
}

START_TEST(quantize_cuda_is_bit_equal)
{
	const int shapes[][2] = { { 1, 1 }, { 3, 200 }, { 130, 257 }, { 256, 384 }, { 517, 1000 } };
	const enum fp8_scaling sc[] = { FP8_PER_TENSOR, FP8_PER_1X128, FP8_PER_128X128 };
	uint64_t seed = 500;

	for (size_t i = 0; i < NSHAPES(shapes); i++)
		for (int f = 0; f < 2; f++)
			for (size_t s = 0; s < 3; s++)
				for (int pow2 = 0; pow2 < 2; pow2++)
					check_quantize(shapes[i][0], shapes[i][1], (enum fp8_format)f,
						       sc[s], pow2, seed++);
}
END_TEST

/* An all-zero matrix quantizes to zero codes and unit scales in every scaling. */
START_TEST(quantize_cuda_all_zero)
{
	const enum fp8_scaling sc[] = { FP8_PER_TENSOR, FP8_PER_1X128, FP8_PER_128X128 };
	const int scales[] = { 1, 5, 1 };
	float *d_x, *d_scale, scale[5];
	unsigned char *d_q, q[35];

	ck_assert_int_eq(cudaMalloc((void **)&d_x, 35 * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(cudaMalloc((void **)&d_q, 35), cudaSuccess);
	ck_assert_int_eq(cudaMalloc((void **)&d_scale, 5 * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(cudaMemset(d_x, 0, 35 * sizeof(float)), cudaSuccess);
	for (size_t s = 0; s < 3; s++) {
		ck_assert_int_eq(cudaMemset(d_q, 0x55, 35), cudaSuccess);
		ck_assert_int_eq(fp8_quantize_cuda(d_x, 5, 7, FP8_E4M3, sc[s], false, d_q,
						   d_scale, stream), MB_OK);
		ck_assert_int_eq(cudaMemcpy(q, d_q, 35, cudaMemcpyDeviceToHost), cudaSuccess);
		ck_assert_int_eq(cudaMemcpy(scale, d_scale, sizeof(float) * (size_t)scales[s],
					    cudaMemcpyDeviceToHost), cudaSuccess);
		for (int i = 0; i < scales[s]; i++)
			ck_assert(scale[i] == 1.0f);
		for (int i = 0; i < 35; i++)
			ck_assert_int_eq(q[i], 0);
	}
	ck_assert_int_eq(fp8_quantize_cuda(d_x, 0, 7, FP8_E4M3, FP8_PER_TENSOR, false, d_q,
					   d_scale, stream), MB_ERR_ARG);
	cudaFree(d_x);
	cudaFree(d_q);
	cudaFree(d_scale);
}
END_TEST

/* ---- timing: DeepSeek-V3-sized GEMM, cuBLASLt FP8 block-scaled vs BF16, and v1 ---- */

static int cmp_float(const void *x, const void *y)
{
	float a = *(const float *)x, b = *(const float *)y;
	return (a > b) - (a < b);
}

/* time_ms returns the median of reps timed runs of g (events) after 3 warm-up runs. */
static double time_ms(struct gemm_cuda *g, int reps)
{
	cudaEvent_t t0, t1;
	float ms[64];

	ck_assert(reps <= 64);
	ck_assert_int_eq(cudaEventCreate(&t0), cudaSuccess);
	ck_assert_int_eq(cudaEventCreate(&t1), cudaSuccess);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(gemm_cuda_run(g), MB_OK);
	for (int i = 0; i < reps; i++) {
		ck_assert_int_eq(cudaEventRecord(t0, stream), cudaSuccess);
		ck_assert_int_eq(gemm_cuda_run(g), MB_OK);
		ck_assert_int_eq(cudaEventRecord(t1, stream), cudaSuccess);
		ck_assert_int_eq(cudaEventSynchronize(t1), cudaSuccess);
		ck_assert_int_eq(cudaEventElapsedTime(&ms[i], t0, t1), cudaSuccess);
	}
	cudaEventDestroy(t0);
	cudaEventDestroy(t1);
	qsort(ms, (size_t)reps, sizeof(float), cmp_float);
	return ms[reps / 2];
}

/* operand_value returns the value the GEMM of this kind sees at (r, c). */
static double operand_value(enum gemm_kind kind, const float *x, const struct fp8_matrix *q,
			    int r, int c)
{
	if (kind == GEMM_BF16)
		return bf16_round(x[(size_t)r * q->cols + c]);
	return (double)fp8_decode(q->q[(size_t)r * q->cols + c], q->format) *
	       fp8_scale_of(q, r, c);
}

/* sample_error returns the max relative error of 64 sampled elements of d against
 * FP64 dot products of the inputs this kind sees. */
static double sample_error(enum gemm_kind kind, const struct operands *o, const float *d)
{
	struct mb_rng rng;
	double worst = 0.0;

	mb_rng_seed(&rng, 77, 5);
	for (int s = 0; s < 64; s++) {
		int i = (int)(mb_rng_next(&rng) % (uint64_t)o->m);
		int j = (int)(mb_rng_next(&rng) % (uint64_t)o->n);
		double ref = 0.0, e;

		for (int c = 0; c < o->k; c++)
			ref += operand_value(kind, o->a, &o->a8, i, c) *
			       operand_value(kind, o->b, &o->b8, j, c);
		e = fabs(d[(size_t)i * o->n + j] - ref) / fabs(ref);
		if (!(e <= worst))
			worst = e;
	}
	return worst;
}

START_TEST(large_fp8_block_vs_bf16)
{
	const int m = 4096, n = 7168, k = 7168;
	const enum gemm_kind kinds[] = { GEMM_BF16, GEMM_FP8_BLOCK, GEMM_FP8_BLOCK };
	const enum gemm_impl impls[] = { GEMM_IMPL_CUBLASLT, GEMM_IMPL_CUBLASLT, GEMM_IMPL_V1 };
	double flop = 2.0 * m * n * k, ms[3];
	float *d = malloc(sizeof(float) * (size_t)m * n);
	struct gemm_inputs in;
	struct operands o;

	ck_assert_ptr_nonnull(d);
	make_operands(&o, GEMM_FP8_BLOCK, m, n, k, 900);
	in = inputs_of(&o);
	for (int i = 0; i < 3; i++) {
		struct gemm_cuda *g = NULL;
		double err;

		ck_assert_int_eq(gemm_cuda_create(&g, kinds[i], impls[i], false, &in, stream), MB_OK);
		ck_assert_int_eq(gemm_cuda_poison(g), MB_OK);
		ck_assert_int_eq(gemm_cuda_run(g), MB_OK);
		ck_assert_int_eq(gemm_cuda_download(g, d), MB_OK);
		err = sample_error(kinds[i], &o, d);
		ms[i] = time_ms(g, 21);
		printf("gpu_gemm: %dx%dx%d %-8s %-10s %8.3f ms %7.1f TFLOP/s  sampled max rel %.2e\n",
		       m, n, k, gemm_impl_name(impls[i]), gemm_kind_name(kinds[i]), ms[i],
		       flop / ms[i] * 1e-9, err);
		ck_assert_msg(err <= TOL_ARITH, "%s %s: sampled error %g", gemm_impl_name(impls[i]),
			      gemm_kind_name(kinds[i]), err);
		gemm_cuda_destroy(g);
	}
	printf("gpu_gemm: fp8-block cuBLASLt speed-up over bf16 %.2fx; v1 / cuBLASLt fp8-block "
	       "time %.2fx\n", ms[0] / ms[1], ms[2] / ms[1]);
	free_operands(&o, GEMM_FP8_BLOCK);
	free(d);
}
END_TEST


static Suite *make_suite(void)
{
	Suite *s = suite_create("gpu_gemm");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 600);
	tcase_add_test(core, cublaslt_bf16_on_odd_shapes);
	tcase_add_test(core, cublaslt_fp8_tensor);
	tcase_add_test(core, cublaslt_fp8_block);
	tcase_add_test(core, cublaslt_fp8_block_fast_accum);
	tcase_add_test(core, v1_fp8_tensor_and_block);
	tcase_add_test(core, poisoned_output_reads_nan);
	tcase_add_test(core, unsupported_shapes_are_refused);
	tcase_add_test(core, mismatched_scaling_is_refused);
	tcase_add_test(core, quantize_cuda_is_bit_equal);
	tcase_add_test(core, quantize_cuda_all_zero);
	suite_add_tcase(s, core);
	TCase *timing = tcase_create("timing");
	tcase_set_timeout(timing, 600);
	tcase_add_test(timing, large_fp8_block_vs_bf16);
	suite_add_tcase(s, timing);
	return s;
}

int main(void)
{
	return gpu_main(make_suite);
}
