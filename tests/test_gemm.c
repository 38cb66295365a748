/*
 * test_gemm.c - Check suite for kernels/gemm/gemm.c and benchmarks/gemm/accum_study.c: the FP64
 * references on odd shapes (K not a multiple of 128) and every scaling, the error
 * metric, the accumulation emulation (known answers that tell its models apart,
 * exactness when nothing is lost, error growing with K without promotion and flat with
 * it, the argument rules), and the study's table, records and CSV.
 *
 * Inputs are fresh random draws each run; a failure prints the seed, and
 * MB_TEST_SEED=<n> replays it.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accum_study.h"
#include "check_main.h"
#include "gemm.h"
#include "result.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

/* random_floats returns n never-zero values uniform in [lo, hi) \ {0}. */
static float *random_floats(uint64_t stream, size_t n, double lo, double hi)
{
	struct mb_rng rng;
	float *x = malloc(n * sizeof(*x));
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, test_seed(), stream);
	for (size_t i = 0; i < n; i++)
		do
			x[i] = (float)mb_rng_uniform(&rng, lo, hi);
		while (x[i] == 0.0f);
	return x;
}

/* quantized returns x[rows, cols] quantized (asserting success). */
static struct fp8_matrix quantized(const float *x, int rows, int cols, enum fp8_format f,
				   enum fp8_scaling s, bool pow2)
{
	struct fp8_matrix m;
	ck_assert_int_eq(fp8_matrix_alloc(&m, rows, cols, f, s), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, pow2), MB_OK);
	return m;
}

/* ---- references ---- */

START_TEST(ref_f64_known_answer)
{
	const float a[] = { 1, 2, 3, 4, 5, 6 }, b[] = { 7, 8, 9, 1, 0, -1 };
	double d[4];
	gemm_ref_f64(a, b, 2, 2, 3, d);
	ck_assert_double_eq(d[0], 50);
	ck_assert_double_eq(d[1], -2);
	ck_assert_double_eq(d[2], 122);
	ck_assert_double_eq(d[3], -2);
}
END_TEST

/* gemm_fp8_ref (block sums times scales) equals gemm_ref_f64 on the dequantized
 * values, on odd shapes, for every pair of scalings and formats. Power-of-two scales
 * make the float dequantization exact, so only FP64 summation order differs. */
START_TEST(fp8_ref_equals_ref_on_dequantized)
{
	static const enum fp8_scaling sc[] = { FP8_PER_TENSOR, FP8_PER_1X128, FP8_PER_128X128 };
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 10 + (uint64_t)_i);
	int m = 1 + (int)mb_rng_uniform(&rng, 0, 70), n = 1 + (int)mb_rng_uniform(&rng, 0, 70);
	int k = 1 + (int)mb_rng_uniform(&rng, 0, 400);
	float *a = random_floats(20 + (uint64_t)_i, (size_t)m * k, -3, 5);
	float *b = random_floats(40 + (uint64_t)_i, (size_t)n * k, -2, 2);
	enum fp8_format fb = _i % 2 ? FP8_E5M2 : FP8_E4M3;
	struct fp8_matrix a8 = quantized(a, m, k, FP8_E4M3, sc[_i % 3], true);
	struct fp8_matrix b8 = quantized(b, n, k, fb, sc[_i / 3 % 3], true);
	double *d = malloc((size_t)m * n * sizeof(*d)), *ref = malloc((size_t)m * n * sizeof(*ref));
	fp8_dequantize(&a8, a);
	fp8_dequantize(&b8, b);
	ck_assert_int_eq(gemm_fp8_ref(&a8, &b8, d), MB_OK);
	gemm_ref_f64(a, b, m, n, k, ref);
	for (int i = 0; i < m * n; i++)
		ck_assert_msg(fabs(d[i] - ref[i]) <= 1e-12 * (fabs(ref[i]) + 1.0),
			      "%dx%dx%d out %d: %.17g vs %.17g seed %llu", m, n, k, i, d[i], ref[i],
			      (unsigned long long)test_seed());
	fp8_matrix_free(&a8);
	fp8_matrix_free(&b8);
	free(a);
	free(b);
	free(d);
	free(ref);
}
END_TEST

/* Quantization error on positive data is bounded per product by (1 + 2^-4)^2 - 1 for
 * E4M3, so per output too; on average it is far smaller. */
START_TEST(quantization_error_is_bounded)
{
	int m = 33, n = 45, k = 300;
	float *a = random_floats(60, (size_t)m * k, 0.01, 1);
	float *b = random_floats(61, (size_t)n * k, 0.01, 1);
	struct fp8_matrix a8 = quantized(a, m, k, FP8_E4M3, FP8_PER_1X128, false);
	struct fp8_matrix b8 = quantized(b, n, k, FP8_E4M3, FP8_PER_128X128, false);
	double *d = malloc((size_t)m * n * sizeof(*d)), *ref = malloc((size_t)m * n * sizeof(*ref));
	struct gemm_err e;
	ck_assert_int_eq(gemm_fp8_ref(&a8, &b8, d), MB_OK);
	gemm_ref_f64(a, b, m, n, k, ref);
	gemm_compare(d, 1, ref, (size_t)m * n, &e);
	ck_assert_double_le(e.max_rel, 0x1p-3 + 0x1p-8 + 1e-6);
	ck_assert_double_lt(e.mean_rel, 1e-2);
	ck_assert_double_gt(e.mean_rel, 0.0);
	fp8_matrix_free(&a8);
	fp8_matrix_free(&b8);
	free(a);
	free(b);
	free(d);
	free(ref);
}
END_TEST

START_TEST(fp8_ref_rejects_shape_mismatch)
{
	struct fp8_matrix a, b;
	double d[4];
	ck_assert_int_eq(fp8_matrix_alloc(&a, 2, 130, FP8_E4M3, FP8_PER_1X128), MB_OK);
	ck_assert_int_eq(fp8_matrix_alloc(&b, 2, 129, FP8_E4M3, FP8_PER_128X128), MB_OK);
	ck_assert_int_eq(gemm_fp8_ref(&a, &b, d), MB_ERR_ARG);
	ck_assert_int_eq(gemm_fp8_emulated(&a, &b, &(struct gemm_accum){ 13, 32, 128, 0 }, d),
			 MB_ERR_ARG);
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
}
END_TEST

/* ---- error metric ---- */

START_TEST(compare_known_values)
{
	const double ref[] = { 1.0, 2.0, 1000.0, 0.0 };
	const double d[] = { 1.1, 2.0, 1000.0, 0.125 };
	const float df[] = { 1.1f, 2.0f, 1000.0f, 0.125f };
	struct gemm_err e;
	/* floor = 1e-3 * mean|ref| = 0.25075: the zero reference is measured against it */
	gemm_compare(d, 1, ref, 4, &e);
	ck_assert_double_eq_tol(e.max_rel, 0.125 / 0.25075, 1e-12);
	ck_assert_double_eq_tol(e.mean_rel, (0.1 + 0.125 / 0.25075) / 4, 1e-12);
	ck_assert_int_eq(e.nonfinite, 0);
	gemm_compare(df, 0, ref, 4, &e);
	ck_assert_double_eq_tol(e.max_rel, 0.125 / 0.25075, 1e-7);
	double bad[] = { 1.0, NAN, INFINITY, 0.0 };
	gemm_compare(bad, 1, ref, 4, &e);
	ck_assert_int_eq(e.nonfinite, 2);
	ck_assert(isinf(e.max_rel) && isinf(e.mean_rel));
	const double zeros[] = { 0.0, 0.0 }, dz[] = { 0.0, 1e-30 };
	gemm_compare(dz, 1, zeros, 2, &e);
	ck_assert(isinf(e.max_rel));
	gemm_compare(zeros, 1, zeros, 2, &e);
	ck_assert_double_eq(e.max_rel, 0.0);
}
END_TEST

/* ---- accumulation emulation ---- */

/* emulate_known runs the emulation on a = x, b = y (1 x k, per-tensor scale 1, codes
 * set directly: these values are all exact in E4M3) and returns the single output. */
static double emulate_known(const float *x, const float *y, int k, enum gemm_accum_model model)
{
	struct fp8_matrix a, b;
	struct gemm_accum acc = gemm_accum_default();
	double d;
	ck_assert_int_eq(fp8_matrix_alloc(&a, 1, k, FP8_E4M3, FP8_PER_TENSOR), MB_OK);
	ck_assert_int_eq(fp8_matrix_alloc(&b, 1, k, FP8_E4M3, FP8_PER_TENSOR), MB_OK);
	a.scale[0] = b.scale[0] = 1.0f;
	for (int i = 0; i < k; i++) {
		a.q[i] = fp8_encode(x[i], FP8_E4M3);
		b.q[i] = fp8_encode(y[i], FP8_E4M3);
		ck_assert(fp8_decode(a.q[i], FP8_E4M3) == x[i] && fp8_decode(b.q[i], FP8_E4M3) == y[i]);
	}
	acc.model = model;
	ck_assert_int_eq(gemm_fp8_emulated(&a, &b, &acc, &d), MB_OK);
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
	return d;
}

/* 256*256 + 7 + 7 = 65550. With 13 bits after 2^16 the grid is 8: the aligned model
 * truncates each 7 to 0 (65536), sum-trunc truncates 65550 (65544), sum-nearest rounds
 * it (65552). With -7: the aligned model still drops both (65536, truncation toward
 * zero per addend), sum-trunc gives 65520. */
START_TEST(models_known_answers)
{
	const float x[] = { 256, 7, 7 }, y[] = { 256, 1, 1 }, xn[] = { 256, -7, -7 };
	ck_assert_double_eq(emulate_known(x, y, 3, GEMM_ACCUM_ALIGNED), 65536.0);
	ck_assert_double_eq(emulate_known(x, y, 3, GEMM_ACCUM_SUM_TRUNC), 65544.0);
	ck_assert_double_eq(emulate_known(x, y, 3, GEMM_ACCUM_SUM_NEAREST), 65552.0);
	ck_assert_double_eq(emulate_known(xn, y, 3, GEMM_ACCUM_ALIGNED), 65536.0);
	ck_assert_double_eq(emulate_known(xn, y, 3, GEMM_ACCUM_SUM_TRUNC), 65520.0);
	ck_assert_str_eq(gemm_accum_model_name(GEMM_ACCUM_SUM_NEAREST), "sum-nearest");
}
END_TEST

/* The alignment exponent of a product is the sum of its operands' exponents, not its
 * own leading bit: 3.75 * 3.75 = 14.0625 aligns at 2^2, so the grid is 2^-11 and
 * 1.5 * 2^-11 keeps one unit; -7 cancels enough for the final 13 bits to keep it. By
 * the product's leading bit (2^3) the grid would be 2^-10 and the result 7.0625. */
START_TEST(alignment_uses_exponent_sums)
{
	const float x[] = { 3.75f, 0x1.8p-6f, -7.0f }, y[] = { 3.75f, 0x1p-5f, 1.0f };
	ck_assert_double_eq(emulate_known(x, y, 3, GEMM_ACCUM_ALIGNED), 7.0625 + 0x1p-11);
}
END_TEST

/* Small integers of both signs: every sum fits in 13 bits, so every model and every
 * promotion interval gives the FP64 reference exactly, on odd shapes. */
START_TEST(exact_when_nothing_is_lost)
{
	struct mb_rng rng;
	int m = 7, n = 5, k = 257;
	float *a = malloc((size_t)m * k * sizeof(*a)), *b = malloc((size_t)n * k * sizeof(*b));
	mb_rng_seed(&rng, test_seed(), 70);
	for (int i = 0; i < m * k; i++)
		a[i] = (float)((int)mb_rng_uniform(&rng, 1, 5) * (mb_rng_next(&rng) & 1 ? 1 : -1));
	for (int i = 0; i < n * k; i++)
		b[i] = (float)(int)mb_rng_uniform(&rng, 1, 5);
	struct fp8_matrix a8 = quantized(a, m, k, FP8_E4M3, FP8_PER_TENSOR, true);
	struct fp8_matrix b8 = quantized(b, n, k, FP8_E4M3, FP8_PER_TENSOR, true);
	double ref[35], d[35];
	struct gemm_accum acc = gemm_accum_default();
	ck_assert_int_eq(gemm_fp8_ref(&a8, &b8, ref), MB_OK);
	acc.model = (enum gemm_accum_model)(_i % 3);
	acc.promote = _i < 3 ? 0 : 128;
	ck_assert_int_eq(gemm_fp8_emulated(&a8, &b8, &acc, d), MB_OK);
	for (int i = 0; i < m * n; i++)
		ck_assert_double_eq(d[i], ref[i]);
	fp8_matrix_free(&a8);
	fp8_matrix_free(&b8);
	free(a);
	free(b);
}
END_TEST

/* study_error is the emulated error of a 16x16 output with K = k on uniform [0,1). */
static double study_error(int k, int promote, enum gemm_accum_model model)
{
	int mn = 16;
	float *a = random_floats(1000 + (uint64_t)k, (size_t)mn * k, 0, 1);
	float *b = random_floats(2000 + (uint64_t)k, (size_t)mn * k, 0, 1);
	struct fp8_matrix a8 = quantized(a, mn, k, FP8_E4M3, FP8_PER_TENSOR, false);
	struct fp8_matrix b8 = quantized(b, mn, k, FP8_E4M3, FP8_PER_TENSOR, false);
	struct gemm_accum acc = { 13, 32, promote, model };
	double ref[256], d[256];
	struct gemm_err e;
	ck_assert_int_eq(gemm_fp8_ref(&a8, &b8, ref), MB_OK);
	ck_assert_int_eq(gemm_fp8_emulated(&a8, &b8, &acc, d), MB_OK);
	gemm_compare(d, 1, ref, 256, &e);
	fp8_matrix_free(&a8);
	fp8_matrix_free(&b8);
	free(a);
	free(b);
	return e.max_rel;
}

/* DeepSeek-V3's claim, in shape: the error grows with K without promotion and stays
 * flat with promotion every 128, for the default and the sum-truncating models. */
START_TEST(error_grows_without_promotion_flat_with_it)
{
	enum gemm_accum_model model = _i ? GEMM_ACCUM_SUM_TRUNC : GEMM_ACCUM_ALIGNED;
	double plain_512 = study_error(512, 0, model), plain_8192 = study_error(8192, 0, model);
	double promo_512 = study_error(512, 128, model), promo_8192 = study_error(8192, 128, model);
	ck_assert_msg(plain_8192 > 4 * plain_512, "no promotion: %g at 8192, %g at 512 (seed %llu)",
		      plain_8192, plain_512, (unsigned long long)test_seed());
	ck_assert_msg(promo_8192 < 2 * promo_512, "promotion: %g at 8192, %g at 512 (seed %llu)",
		      promo_8192, promo_512, (unsigned long long)test_seed());
	ck_assert_double_lt(promo_8192, plain_8192);
	ck_assert_double_lt(promo_8192, 2e-3);
}
END_TEST

/* The default reproduces what an H100's WGMMA gave on these inputs: max relative error
 * about 7.8% at K = 4096 without promotion (see gemm.h), about 6e-4 with it. */
START_TEST(default_matches_hopper_magnitude)
{
	double plain = study_error(4096, 0, GEMM_ACCUM_ALIGNED);
	double promo = study_error(4096, 128, GEMM_ACCUM_ALIGNED);
	unsigned long long seed = test_seed();
	ck_assert_msg(plain > 0.06 && plain < 0.10, "%g (seed %llu)", plain, seed);
	ck_assert_msg(promo > 2e-4 && promo < 1.5e-3, "%g (seed %llu)", promo, seed);
}
END_TEST

/* Fine-grained scales with promotion every 128 on odd shapes (K = 300: a partial last
 * scale block and group) stay within the accumulator's error of the reference. */
START_TEST(block_scales_with_promotion_on_odd_shapes)
{
	int m = 37, n = 29, k = 300;
	float *a = random_floats(80, (size_t)m * k, 0.1, 1);
	float *b = random_floats(81, (size_t)n * k, 0.1, 8);
	struct fp8_matrix a8 = quantized(a, m, k, FP8_E4M3, FP8_PER_1X128, false);
	struct fp8_matrix b8 = quantized(b, n, k, FP8_E4M3, FP8_PER_128X128, false);
	double *d = malloc((size_t)m * n * sizeof(*d)), *ref = malloc((size_t)m * n * sizeof(*ref));
	struct gemm_accum acc = gemm_accum_default();
	struct gemm_err e;
	ck_assert_int_eq(gemm_fp8_ref(&a8, &b8, ref), MB_OK);
	ck_assert_int_eq(gemm_fp8_emulated(&a8, &b8, &acc, d), MB_OK);
	gemm_compare(d, 1, ref, (size_t)m * n, &e);
	ck_assert_double_lt(e.max_rel, 3e-3);
	ck_assert_double_gt(e.max_rel, 0.0);
	fp8_matrix_free(&a8);
	fp8_matrix_free(&b8);
	free(a);
	free(b);
	free(d);
	free(ref);
}
END_TEST

/* The rules of gemm.h: bits 1..23, group >= 1, promote a multiple of group, and scales
 * that change along K need 128 to be a multiple of promote. */
START_TEST(emulation_rejects_impossible_accumulators)
{
	float *x = random_floats(90, 4 * 256, 0.5, 1);
	struct fp8_matrix blk = quantized(x, 4, 256, FP8_E4M3, FP8_PER_1X128, false);
	struct fp8_matrix ten = quantized(x, 4, 256, FP8_E4M3, FP8_PER_TENSOR, false);
	double d[16];
	const struct gemm_accum bad[] = { { 0, 32, 128, 0 }, { 24, 32, 128, 0 }, { 13, 0, 128, 0 },
					  { 13, 32, 48, 0 }, { 13, 32, -32, 0 }, { 13, 32, 128, 3 } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(gemm_fp8_emulated(&ten, &ten, &bad[i], d), MB_ERR_ARG);
	const struct gemm_accum never = { 13, 32, 0, 0 }, p96 = { 13, 32, 96, 0 }, p64 = { 13, 32, 64, 0 };
	ck_assert_int_eq(gemm_fp8_emulated(&blk, &ten, &never, d), MB_ERR_ARG);
	ck_assert_int_eq(gemm_fp8_emulated(&ten, &blk, &p96, d), MB_ERR_ARG);
	ck_assert_int_eq(gemm_fp8_emulated(&blk, &blk, &p64, d), MB_OK);
	ck_assert_int_eq(gemm_fp8_emulated(&ten, &ten, &never, d), MB_OK);
	ck_assert_int_eq(gemm_fp8_emulated(&ten, &ten, &p96, d), MB_OK);
	struct gemm_accum def = gemm_accum_default();
	ck_assert(def.mantissa_bits == 13 && def.group == 32 && def.promote == 128 &&
		  def.model == GEMM_ACCUM_ALIGNED);
	fp8_matrix_free(&blk);
	fp8_matrix_free(&ten);
	free(x);
}
END_TEST

/* ---- the accumulation study ---- */

/* read_text returns a file's contents (NULL if unreadable). */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 16);
	if (f && buf)
		(void)fread(buf, 1, (1 << 16) - 1, f);
	if (f)
		fclose(f);
	if (!f) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* small_study fills o for a quick study (8x8 outputs, K 256..1024) writing csv. */
static void small_study(struct accum_study_opts *o, const char *csv)
{
	accum_study_defaults(o);
	o->mn = 8;
	o->k_max = 1024;
	o->seed = test_seed();
	o->csv_path = csv;
	o->argv_line = "test_gemm";
}

/* The study prints its table, appends two valid records per K and writes a CSV whose
 * numbers show the claim's shape; it refuses to overwrite the CSV without force. */
START_TEST(study_table_records_and_csv)
{
	char dir[] = "/tmp/mb_accum_XXXXXX", csv[64], why[256], *text = NULL, *again;
	size_t len = 0;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(csv, sizeof(csv), "%s/accum.csv", dir);
	struct accum_study_opts o;
	small_study(&o, csv);
	cJSON *doc = result_new();
	FILE *out = open_memstream(&text, &len);
	ck_assert_int_eq(accum_study_run(&o, doc, out), MB_OK);
	fclose(out);
	ck_assert_ptr_nonnull(strstr(text, "nopromo_max_rel_err"));
	ck_assert_ptr_nonnull(strstr(text, "K 256 -> 1024"));
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "records")), 6);
	ck_assert_int_eq(result_validate(doc, why, sizeof(why)), MB_OK);
	char *body = read_text(csv);
	ck_assert_ptr_nonnull(body);
	ck_assert(body[0] == '#');
	const char *rows = strstr(body, "k,log2_k,nopromo_max_rel_err");
	ck_assert_ptr_nonnull(rows);
	double e[4];
	int k = 0;
	for (const char *p = strchr(rows, '\n') + 1; *p; p = strchr(p, '\n') + 1)
		ck_assert_int_eq(sscanf(p, "%d,%*g,%lg,%*g,%lg,%lg", &k, &e[0], &e[1], &e[2]), 4);
	ck_assert_int_eq(k, 1024);
	ck_assert_double_lt(e[1], e[0]);   /* promoted below unpromoted at the largest K */
	FILE *null = fopen("/dev/null", "w");
	ck_assert_int_eq(accum_study_run(&o, NULL, null), MB_ERR_EXISTS);
	again = read_text(csv);
	ck_assert_str_eq(again, body);
	o.force = true;
	ck_assert_int_eq(accum_study_run(&o, NULL, null), MB_OK);
	fclose(null);
	unlink(csv);
	rmdir(dir);
	cJSON_Delete(doc);
	free(text);
	free(body);
	free(again);
}
END_TEST

START_TEST(study_rejects_bad_options)
{
	struct accum_study_opts o;
	enum accum_study_dist d;
	small_study(&o, "/tmp/mb_accum_never_written.csv");
	o.k_max = 128;
	ck_assert_int_eq(accum_study_run(&o, NULL, stdout), MB_ERR_ARG);
	small_study(&o, NULL);
	o.acc.promote = 0;
	ck_assert_int_eq(accum_study_run(&o, NULL, stdout), MB_ERR_ARG);
	ck_assert_int_eq(access("/tmp/mb_accum_never_written.csv", F_OK), -1);
	ck_assert_int_eq(accum_study_dist_parse("abs-normal", &d), MB_OK);
	ck_assert_int_eq(d, ACCUM_DIST_ABS_NORMAL);
	ck_assert_int_eq(accum_study_dist_parse("gaussian", &d), MB_ERR_PARSE);
}
END_TEST

static Suite *gemm_suite(void)
{
	Suite *s = suite_create("gemm");
	TCase *ref = tcase_create("reference");
	TCase *emu = tcase_create("emulation");
	TCase *study = tcase_create("study");
	tcase_add_test(ref, ref_f64_known_answer);
	tcase_add_loop_test(ref, fp8_ref_equals_ref_on_dequantized, 0, 18);
	tcase_add_test(ref, quantization_error_is_bounded);
	tcase_add_test(ref, fp8_ref_rejects_shape_mismatch);
	tcase_add_test(ref, compare_known_values);
	tcase_add_test(emu, models_known_answers);
	tcase_add_test(emu, alignment_uses_exponent_sums);
	tcase_add_loop_test(emu, exact_when_nothing_is_lost, 0, 6);
	tcase_add_loop_test(emu, error_grows_without_promotion_flat_with_it, 0, 2);
	tcase_add_test(emu, default_matches_hopper_magnitude);
	tcase_add_test(emu, block_scales_with_promotion_on_odd_shapes);
	tcase_add_test(emu, emulation_rejects_impossible_accumulators);
	tcase_add_test(study, study_table_records_and_csv);
	tcase_add_test(study, study_rejects_bad_options);
	suite_add_tcase(s, ref);
	suite_add_tcase(s, emu);
	suite_add_tcase(s, study);
	return s;
}

MB_CHECK_MAIN(gemm_suite)
