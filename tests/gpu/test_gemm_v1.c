/*
 * test_gemm_v1.c (GPU) - our FP8 GEMM kernel v1 and the grouped (MoE) GEMM against the
 * CPU reference gemm_fp8_ref, on fresh random inputs, output poisoned first. Exits 77
 * (CTest: skipped) when no CUDA device answers. Runs without fork (CUDA contexts do
 * not survive one).
 *
 * Inputs are 0.5 + U(-1, 1) times a power of two that changes with the row and the
 * 128-wide K block, so every scale differs (a kernel reading the wrong scale fails)
 * and results stay away from zero (the error measures arithmetic, not cancellation).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <cuda_runtime_api.h>

#include "backend.h"
#include "gemm.h"
#include "gemm_cuda.h"
#include "gemm_cuda_impl.h"
#include "rng.h"
#include "status.h"

#include "gpu_main.h"

/* Promotion to FP32 every 128 K leaves BF16 rounding (2^-9) as the main error. */
#define V1_MAX_REL_ERR 1e-2


/* make_fp8 quantizes a random [rows, cols] matrix (see the file header) into q. */
static void make_fp8(struct fp8_matrix *q, int rows, int cols, enum fp8_scaling s,
		     uint64_t seed, uint64_t rng_stream)
{
	float *x = malloc((size_t)rows * cols * sizeof(float));
	struct mb_rng rng;
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, seed, rng_stream);
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++)
			x[(size_t)r * cols + c] = (float)((0.5 + mb_rng_uniform(&rng, -1, 1)) *
							  ldexp(1.0, (r * 3 + c / 128 * 5) % 7 - 3));
	ck_assert_int_eq(fp8_matrix_alloc(q, rows, cols, FP8_E4M3, s), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, q, false), MB_OK);
	free(x);
}

/* v1_errors runs v1 through gemm_cuda_create on fresh inputs (or only poisons, when
 * run is false) and measures D against gemm_fp8_ref. */
static struct gemm_err v1_errors(enum gemm_kind kind, bool fast, int m, int n, int k,
				 uint64_t seed, bool run)
{
	enum fp8_scaling sa = kind == GEMM_FP8_BLOCK ? FP8_PER_1X128 : FP8_PER_TENSOR;
	enum fp8_scaling sb = kind == GEMM_FP8_BLOCK ? FP8_PER_128X128 : FP8_PER_TENSOR;
	struct fp8_matrix a, b;
	struct gemm_cuda *g = NULL;
	struct gemm_err e;
	make_fp8(&a, m, k, sa, seed, 1);
	make_fp8(&b, n, k, sb, seed, 2);
	double *ref = malloc((size_t)m * n * sizeof(double));
	float *d = malloc((size_t)m * n * sizeof(float));
	ck_assert(ref && d);
	ck_assert_int_eq(gemm_fp8_ref(&a, &b, ref), MB_OK);
	struct gemm_inputs in = { .m = m, .n = n, .k = k, .a8 = &a, .b8 = &b };
	ck_assert_int_eq(gemm_cuda_create(&g, kind, GEMM_IMPL_V1, fast, &in, stream), MB_OK);
	ck_assert_int_eq(gemm_cuda_poison(g), MB_OK);
	if (run)
		ck_assert_int_eq(gemm_cuda_run(g), MB_OK);
	ck_assert_int_eq(gemm_cuda_download(g, d), MB_OK);
	gemm_compare(d, 0, ref, (size_t)m * n, &e);
	gemm_cuda_destroy(g);
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
	free(ref);
	free(d);
	return e;
}

static const int shapes[][3] = {
	{ 128, 128, 128 }, { 100, 256, 384 }, { 1, 128, 256 }, { 333, 384, 1024 }, { 257, 640, 4096 },
};

START_TEST(block_scaled_matches_reference)
{
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const int *s = shapes[i];
		struct gemm_err e = v1_errors(GEMM_FP8_BLOCK, false, s[0], s[1], s[2], 10 + i, true);
		ck_assert_msg(e.nonfinite == 0 && e.max_rel <= V1_MAX_REL_ERR,
			      "fp8-block %dx%dx%d: max_rel %g, %ld not finite", s[0], s[1], s[2],
			      e.max_rel, e.nonfinite);
	}
}
END_TEST

START_TEST(tensor_scaled_matches_reference)
{
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const int *s = shapes[i];
		struct gemm_err e = v1_errors(GEMM_FP8_TENSOR, false, s[0], s[1], s[2], 20 + i, true);
		ck_assert_msg(e.nonfinite == 0 && e.max_rel <= V1_MAX_REL_ERR,
			      "fp8-tensor %dx%dx%d: max_rel %g, %ld not finite", s[0], s[1], s[2],
			      e.max_rel, e.nonfinite);
	}
}
END_TEST

START_TEST(poisoned_output_fails_the_check)
{
	struct gemm_err e = v1_errors(GEMM_FP8_BLOCK, false, 200, 128, 256, 3, false);
	ck_assert_int_eq(e.nonfinite, 200 * 128);
}
END_TEST

/* The accumulation study on our kernel: promotion every 128 K against one tensor-core
 * accumulator over all of K (fast_accum), printed for the record. */
START_TEST(promotion_against_fast_accum)
{
	const int ks[] = { 4096, 8192 };
	for (int i = 0; i < 2; i++) {
		struct gemm_err p = v1_errors(GEMM_FP8_TENSOR, false, 256, 256, ks[i], 40 + i, true);
		struct gemm_err f = v1_errors(GEMM_FP8_TENSOR, true, 256, 256, ks[i], 40 + i, true);
		printf("v1 fp8-tensor 256x256x%d: promotion max_rel %.3g mean_rel %.3g; "
		       "fast_accum max_rel %.3g mean_rel %.3g\n", ks[i], p.max_rel, p.mean_rel,
		       f.max_rel, f.mean_rel);
		ck_assert_msg(p.nonfinite == 0 && p.max_rel <= V1_MAX_REL_ERR, "promotion K=%d: %g",
			      ks[i], p.max_rel);
		ck_assert_msg(f.nonfinite == 0 && f.max_rel < 0.25, "fast_accum K=%d: %g", ks[i],
			      f.max_rel);
	}
}
END_TEST

/* v1_create_status returns what gemm_v1_create says to an m x n x k problem. */
static int v1_create_status(enum gemm_kind kind, bool fast, int m, int n, int k)
{
	bool block = kind != GEMM_FP8_TENSOR;
	struct fp8_matrix a, b;
	static char sentinel;
	struct gemm_v1 *g = (struct gemm_v1 *)&sentinel;  /* a failed create must clear it */
	make_fp8(&a, m, k, block ? FP8_PER_1X128 : FP8_PER_TENSOR, 5, 1);
	make_fp8(&b, n, k, block ? FP8_PER_128X128 : FP8_PER_TENSOR, 5, 2);
	struct gemm_inputs in = { .m = m, .n = n, .k = k, .a8 = &a, .b8 = &b };
	int err = gemm_v1_create(&g, kind, fast, &in, stream);
	if (err)
		ck_assert_ptr_null(g);
	else
		gemm_v1_destroy(g);
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
	return err;
}

START_TEST(rejects_what_v1_does_not_take)
{
	ck_assert_int_eq(v1_create_status(GEMM_FP8_BLOCK, false, 128, 128, 128), MB_OK);
	ck_assert_int_eq(v1_create_status(GEMM_FP8_BLOCK, false, 128, 128, 200), MB_ERR_ARG);
	ck_assert_int_eq(v1_create_status(GEMM_FP8_TENSOR, false, 128, 200, 128), MB_ERR_ARG);
	ck_assert_int_eq(v1_create_status(GEMM_FP8_BLOCK, true, 128, 128, 128), MB_ERR_ARG);
	ck_assert_int_eq(v1_create_status(GEMM_FP8_TENSOR, true, 128, 128, 128), MB_OK);
	ck_assert_int_eq(v1_create_status(GEMM_BF16, false, 128, 128, 128), MB_ERR_ARG);
}
END_TEST

/* grouped_errors runs a grouped GEMM over experts with the given rows and measures all
 * padded rows of D against gemm_fp8_ref per expert. */
static struct gemm_err grouped_errors(enum gemm_impl impl, const int *rows, int groups,
				      int n, int k, uint64_t seed)
{
	int total = 0;
	for (int e = 0; e < groups; e++)
		total += (rows[e] + 127) / 128 * 128;
	struct fp8_matrix a, b;
	make_fp8(&a, total, k, FP8_PER_1X128, seed, 1);
	make_fp8(&b, groups * n, k, FP8_PER_128X128, seed, 2);
	double *ref = malloc((size_t)total * n * sizeof(double));
	float *d = malloc((size_t)total * n * sizeof(float));
	ck_assert(ref && d);
	for (int e = 0, r0 = 0; e < groups; r0 += (rows[e] + 127) / 128 * 128, e++) {
		struct fp8_matrix av = a, bv = b;
		av.rows = av.scale_rows = (rows[e] + 127) / 128 * 128;
		av.q += (size_t)r0 * k;
		av.scale += (size_t)r0 * a.scale_cols;
		bv.rows = n;
		bv.scale_rows = n / 128;
		bv.q += (size_t)e * n * k;
		bv.scale += (size_t)e * (n / 128) * b.scale_cols;
		if (av.rows)
			ck_assert_int_eq(gemm_fp8_ref(&av, &bv, ref + (size_t)r0 * n), MB_OK);
	}
	struct gemm_grouped_inputs in = { .groups = groups, .n = n, .k = k, .rows = rows,
					  .a8 = &a, .b8 = &b };
	struct gemm_grouped_cuda *g = NULL;
	struct gemm_err err;
	ck_assert_int_eq(gemm_grouped_cuda_create(&g, impl, &in, stream), MB_OK);
	ck_assert_int_eq(gemm_grouped_cuda_poison(g), MB_OK);
	ck_assert_int_eq(gemm_grouped_cuda_run(g), MB_OK);
	ck_assert_int_eq(gemm_grouped_cuda_download(g, d), MB_OK);
	gemm_compare(d, 0, ref, (size_t)total * n, &err);
	gemm_grouped_cuda_destroy(g);
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
	free(ref);
	free(d);
	return err;
}

START_TEST(grouped_matches_reference)
{
	const int rows[] = { 100, 0, 300, 128, 1 };
	const enum gemm_impl impls[] = { GEMM_IMPL_V1, GEMM_IMPL_CUBLASLT };
	for (int i = 0; i < 2; i++) {
		struct gemm_err e = grouped_errors(impls[i], rows, 5, 256, 512, 60 + i);
		ck_assert_msg(e.nonfinite == 0 && e.max_rel <= V1_MAX_REL_ERR,
			      "grouped %s: max_rel %g, %ld not finite", gemm_impl_name(impls[i]),
			      e.max_rel, e.nonfinite);
	}
}
END_TEST

START_TEST(grouped_rejects_bad_layouts)
{
	const int rows[] = { 100, 28 }, too_many[] = { 100, 200 };
	struct fp8_matrix a, b;
	struct gemm_grouped_cuda *g = NULL;
	make_fp8(&a, 256, 256, FP8_PER_1X128, 7, 1);
	make_fp8(&b, 2 * 128, 256, FP8_PER_128X128, 7, 2);
	struct gemm_grouped_inputs in = { .groups = 2, .n = 128, .k = 256, .rows = rows,
					  .a8 = &a, .b8 = &b };
	ck_assert_int_eq(gemm_grouped_cuda_create(&g, GEMM_IMPL_V1, &in, stream), MB_OK);
	gemm_grouped_cuda_destroy(g);
	g = NULL;
	in.rows = too_many;  /* padded 128 + 256 rows, but A has 256 */
	ck_assert_int_eq(gemm_grouped_cuda_create(&g, GEMM_IMPL_V1, &in, stream), MB_ERR_ARG);
	ck_assert_ptr_null(g);
	in.rows = rows;
	in.n = 192;          /* a 128x128 block of B would straddle two experts */
	ck_assert_int_eq(gemm_grouped_cuda_create(&g, GEMM_IMPL_CUBLASLT, &in, stream), MB_ERR_ARG);
	ck_assert_ptr_null(g);
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("gpu_gemm_v1");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 600);
	tcase_add_test(core, block_scaled_matches_reference);
	tcase_add_test(core, tensor_scaled_matches_reference);
	tcase_add_test(core, poisoned_output_fails_the_check);
	tcase_add_test(core, promotion_against_fast_accum);
	tcase_add_test(core, grouped_matches_reference);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, rejects_what_v1_does_not_take);
	tcase_add_test(limits, grouped_rejects_bad_layouts);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	return gpu_main(make_suite);
}
