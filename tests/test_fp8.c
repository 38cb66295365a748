/*
 * test_fp8.c - Check suite for kernels/gemm/fp8.c: conversion edge cases (ties to even,
 * subnormals, saturation, NaN, -0), every code, a brute-force nearest-value check on
 * random floats, and quantization (tile scales, edge tiles, powers of two, the
 * transposed layout, error bounds per format and scaling).
 *
 * Inputs are fresh random draws each run; a failure prints the seed, and
 * MB_TEST_SEED=<n> replays it.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "fp8.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

static const enum fp8_format formats[] = { FP8_E4M3, FP8_E5M2 };
static const enum fp8_scaling scalings[] = { FP8_PER_TENSOR, FP8_PER_1X128, FP8_PER_128X128 };

/* random_matrix fills x[n] with never-zero values of both signs over 2^-6..2^6. */
static void random_matrix(struct mb_rng *rng, float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double mag = ldexp(mb_rng_uniform(rng, 1.0, 2.0), (int)mb_rng_uniform(rng, -6, 6));
		x[i] = (float)(mb_rng_next(rng) & 1 ? -mag : mag);
	}
}

/* ---- conversions ---- */

struct enc_case {
	float x;
	enum fp8_format f;
	uint8_t code;
};

static const struct enc_case enc_cases[] = {
	/* ties to even at several exponents, and just past a tie */
	{ 1.0625f, FP8_E4M3, 0x38 }, { 1.1875f, FP8_E4M3, 0x3a },
	{ 0x1.1p0f + 0x1p-20f, FP8_E4M3, 0x39 },
	{ 34.0f, FP8_E4M3, 0x60 }, { 38.0f, FP8_E4M3, 0x62 }, { 0x1.1p-4f, FP8_E4M3, 0x18 },
	{ 1.125f, FP8_E5M2, 0x3c }, { 1.375f, FP8_E5M2, 0x3e }, { 18432.0f, FP8_E5M2, 0x74 },
	{ 22528.0f, FP8_E5M2, 0x76 }, { -1.375f, FP8_E5M2, 0xbe },
	/* subnormals: smallest, half of it (tie to 0), ties between subnormals, into normal */
	{ 0x1p-9f, FP8_E4M3, 0x01 }, { 0x1p-10f, FP8_E4M3, 0x00 }, { 0x1.01p-10f, FP8_E4M3, 0x01 },
	{ 0x3p-10f, FP8_E4M3, 0x02 }, { 0x7p-9f, FP8_E4M3, 0x07 }, { 0xfp-10f, FP8_E4M3, 0x08 },
	{ 0x1p-6f, FP8_E4M3, 0x08 }, { -0x1p-9f, FP8_E4M3, 0x81 },
	{ 0x1p-16f, FP8_E5M2, 0x01 }, { 0x1p-17f, FP8_E5M2, 0x00 }, { 0x3p-17f, FP8_E5M2, 0x02 },
	{ 0x3p-16f, FP8_E5M2, 0x03 }, { 0x7p-17f, FP8_E5M2, 0x04 }, { 0x1p-14f, FP8_E5M2, 0x04 },
	/* saturation at and above the largest finite value, infinities included */
	{ 448.0f, FP8_E4M3, 0x7e }, { 449.0f, FP8_E4M3, 0x7e }, { 464.0f, FP8_E4M3, 0x7e },
	{ 480.0f, FP8_E4M3, 0x7e }, { FLT_MAX, FP8_E4M3, 0x7e }, { -448.5f, FP8_E4M3, 0xfe },
	{ INFINITY, FP8_E4M3, 0x7e }, { -INFINITY, FP8_E4M3, 0xfe },
	{ 57344.0f, FP8_E5M2, 0x7b }, { 61439.0f, FP8_E5M2, 0x7b }, { 61440.0f, FP8_E5M2, 0x7b },
	{ 65536.0f, FP8_E5M2, 0x7b }, { INFINITY, FP8_E5M2, 0x7b }, { -INFINITY, FP8_E5M2, 0xfb },
	/* zeros keep their sign; underflow keeps the sign too */
	{ 0.0f, FP8_E4M3, 0x00 }, { -0.0f, FP8_E4M3, 0x80 }, { -0.0f, FP8_E5M2, 0x80 },
	{ -1e-20f, FP8_E4M3, 0x80 }, { FLT_TRUE_MIN, FP8_E5M2, 0x00 }, { -FLT_MIN, FP8_E5M2, 0x80 },
};

START_TEST(encode_edge_cases)
{
	const struct enc_case *c = &enc_cases[_i];
	uint8_t got = fp8_encode(c->x, c->f);
	ck_assert_msg(got == c->code, "encode(%a, %s) = 0x%02x, expected 0x%02x", (double)c->x,
		      fp8_format_name(c->f), got, c->code);
}
END_TEST

START_TEST(nan_is_kept_and_canonical)
{
	const uint32_t nans[] = { 0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xffffffffu };
	for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++) {
		float x;
		memcpy(&x, &nans[i], sizeof(x));
		/* CUDA canonicalises NaN before converting: the sign is not kept */
		ck_assert_uint_eq(fp8_encode(x, FP8_E4M3), 0x7f);
		ck_assert_uint_eq(fp8_encode(x, FP8_E5M2), 0x7f);
	}
	for (int f = 0; f < 2; f++)
		for (int c = 0; c < 256; c++) {
			float v = fp8_decode((uint8_t)c, formats[f]);
			uint32_t u;
			memcpy(&u, &v, sizeof(u));
			if (isnan(v))
				ck_assert_uint_eq(u, 0x7fffffffu);
		}
}
END_TEST

START_TEST(decode_known_values)
{
	ck_assert_float_eq(fp8_decode(0x7e, FP8_E4M3), 448.0f);
	ck_assert_float_eq(fp8_decode(0xfe, FP8_E4M3), -448.0f);
	ck_assert_float_eq(fp8_decode(0x38, FP8_E4M3), 1.0f);
	ck_assert_float_eq(fp8_decode(0x08, FP8_E4M3), 0x1p-6f);
	ck_assert_float_eq(fp8_decode(0x01, FP8_E4M3), 0x1p-9f);
	ck_assert_float_eq(fp8_decode(0x07, FP8_E4M3), 0x7p-9f);
	ck_assert_float_eq(fp8_decode(0x7b, FP8_E5M2), 57344.0f);
	ck_assert_float_eq(fp8_decode(0x01, FP8_E5M2), 0x1p-16f);
	ck_assert_float_eq(fp8_decode(0x3c, FP8_E5M2), 1.0f);
	ck_assert(isinf(fp8_decode(0x7c, FP8_E5M2)) && fp8_decode(0x7c, FP8_E5M2) > 0);
	ck_assert(isinf(fp8_decode(0xfc, FP8_E5M2)) && fp8_decode(0xfc, FP8_E5M2) < 0);
	ck_assert(fp8_decode(0x80, FP8_E4M3) == 0.0f && signbit(fp8_decode(0x80, FP8_E4M3)));
	ck_assert_float_eq(fp8_max_finite(FP8_E4M3), 448.0f);
	ck_assert_float_eq(fp8_max_finite(FP8_E5M2), 57344.0f);
	ck_assert_str_eq(fp8_format_name(FP8_E5M2), "e5m2");
	ck_assert_str_eq(fp8_scaling_name(FP8_PER_128X128), "128x128");
}
END_TEST

/* Every code: NaN codes are exactly E4M3's two and E5M2's six; decode -> encode is the
 * identity except NaN payloads (one canonical NaN) and E5M2's infinities (saturated). */
START_TEST(round_trip_of_every_code)
{
	for (int f = 0; f < 2; f++) {
		int nans = 0;
		for (int c = 0; c < 256; c++) {
			float v = fp8_decode((uint8_t)c, formats[f]);
			uint8_t back = fp8_encode(v, formats[f]);
			if (isnan(v)) {
				nans++;
				ck_assert(isnan(fp8_decode(back, formats[f])));
			} else if (isinf(v)) {
				ck_assert_uint_eq(back, (c & 0x80) | (formats[f] == FP8_E5M2 ? 0x7b : 0x7e));
			} else {
				ck_assert_msg(back == c, "%s code 0x%02x -> %a -> 0x%02x",
					      fp8_format_name(formats[f]), c, (double)v, back);
			}
		}
		ck_assert_int_eq(nans, formats[f] == FP8_E4M3 ? 2 : 6);
	}
}
END_TEST

/* nearest_code finds the code nearest |x| by brute force over the positive finite
 * codes, ties to the even code; |x| >= max saturates (there the distances, in double,
 * would no longer tell codes apart). */
static uint8_t nearest_code(float x, enum fp8_format f)
{
	uint8_t max = f == FP8_E4M3 ? 0x7e : 0x7b, best = 0;
	double ax = fabs((double)x);
	for (int c = 0; c <= max; c++) {
		if (ax >= fp8_max_finite(f)) {
			best = max;
			break;
		}
		double d = fabs((double)fp8_decode((uint8_t)c, f) - ax);
		double db = fabs((double)fp8_decode(best, f) - ax);
		if (d < db || (d == db && (c & 1) == 0))
			best = (uint8_t)c;
	}
	return (uint8_t)(best | (signbit(x) ? 0x80 : 0));
}

START_TEST(encode_is_nearest_even_on_random_floats)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 1);
	for (int i = 0; i < 40000; i++) {
		uint32_t u = (uint32_t)mb_rng_next(&rng);
		float x;
		if (i & 1) {    /* magnitudes across both formats' ranges */
			double m = ldexp(mb_rng_uniform(&rng, 1.0, 2.0), (int)mb_rng_uniform(&rng, -20, 18));
			x = (float)(u & 1 ? -m : m);
		} else {        /* any bit pattern */
			memcpy(&x, &u, sizeof(x));
		}
		for (int f = 0; f < 2 && isfinite(x); f++)
			ck_assert_msg(fp8_encode(x, formats[f]) == nearest_code(x, formats[f]),
				      "%s encode(%a) seed %llu", fp8_format_name(formats[f]),
				      (double)x, (unsigned long long)test_seed());
	}
}
END_TEST

/* ---- quantization ---- */

/* tile_dims gives the documented tile of a scaling: 1 x cols... as fp8.h says. */
static void tile_dims(const struct fp8_matrix *m, int *th, int *tw)
{
	*th = m->scaling == FP8_PER_TENSOR ? m->rows : m->scaling == FP8_PER_1X128 ? 1 : 128;
	*tw = m->scaling == FP8_PER_TENSOR ? m->cols : 128;
}

/* tile_amaxes fills amax[scale_rows * scale_cols] with each tile's largest |x|. */
static void tile_amaxes(const struct fp8_matrix *m, const float *x, float *amax)
{
	int th, tw;
	tile_dims(m, &th, &tw);
	for (int t = 0; t < m->scale_rows * m->scale_cols; t++)
		amax[t] = 0.0f;
	for (int i = 0; i < m->rows; i++)
		for (int j = 0; j < m->cols; j++) {
			float *a = &amax[(i / th) * m->scale_cols + j / tw];
			*a = fmaxf(*a, fabsf(x[(size_t)i * m->cols + j]));
		}
}

/* random_case draws a shape (mostly not multiples of 128) and never-zero data, and
 * allocates m for case i: format i/3 % 2, scaling i % 3. Returns x (to free). */
static float *random_case(int i, uint64_t stream, struct fp8_matrix *m)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), stream);
	int rows = 1 + (int)mb_rng_uniform(&rng, 0, 300), cols = 1 + (int)mb_rng_uniform(&rng, 0, 400);
	float *x = malloc((size_t)rows * cols * sizeof(*x));
	ck_assert_ptr_nonnull(x);
	random_matrix(&rng, x, (size_t)rows * cols);
	ck_assert_int_eq(fp8_matrix_alloc(m, rows, cols, formats[i / 3 % 2], scalings[i % 3]), MB_OK);
	return x;
}

/* Every scale is its tile's amax / max_finite; edge tiles cover what remains. */
START_TEST(scales_are_tile_amax_over_max)
{
	struct fp8_matrix m;
	float *x = random_case(_i, 100 + (uint64_t)_i, &m);
	float *amax = malloc((size_t)m.scale_rows * m.scale_cols * sizeof(*amax));
	int th, tw;
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_OK);
	tile_dims(&m, &th, &tw);
	ck_assert_int_eq(m.scale_rows, (m.rows + th - 1) / th);
	ck_assert_int_eq(m.scale_cols, (m.cols + tw - 1) / tw);
	tile_amaxes(&m, x, amax);
	for (int t = 0; t < m.scale_rows * m.scale_cols; t++)
		ck_assert_msg(m.scale[t] == amax[t] / fp8_max_finite(m.format), "%dx%d %s tile %d seed %llu",
			      m.rows, m.cols, fp8_scaling_name(m.scaling), t,
			      (unsigned long long)test_seed());
	for (int i = 0; i < m.rows; i++)
		for (int j = 0; j < m.cols; j++)
			ck_assert(fp8_scale_of(&m, i, j) == m.scale[(i / th) * m.scale_cols + j / tw]);
	fp8_matrix_free(&m);
	free(amax);
	free(x);
}
END_TEST

/* Power-of-two scales: exactly 2^e, the smallest with amax / s <= max_finite. */
START_TEST(pow2_scales_round_up)
{
	struct fp8_matrix m;
	float *x = random_case(_i, 200 + (uint64_t)_i, &m);
	float *amax = malloc((size_t)m.scale_rows * m.scale_cols * sizeof(*amax));
	int e;
	ck_assert_int_eq(fp8_quantize(x, &m, true), MB_OK);
	tile_amaxes(&m, x, amax);
	float max = fp8_max_finite(m.format);
	for (int t = 0; t < m.scale_rows * m.scale_cols; t++) {
		ck_assert_float_eq(frexpf(m.scale[t], &e), 0.5f);
		ck_assert_float_le(amax[t] / m.scale[t], max);
		ck_assert_float_gt(amax[t] / (0.5f * m.scale[t]), max);
	}
	fp8_matrix_free(&m);
	free(amax);
	free(x);
}
END_TEST

/* A large value in the last, partial tile changes that tile's scale only. */
START_TEST(edge_tile_scale_is_its_own)
{
	struct fp8_matrix m;
	float *x = malloc(200 * 300 * sizeof(*x));
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 2);
	random_matrix(&rng, x, 200 * 300);   /* |x| < 128 */
	x[199 * 300 + 299] = 4480.0f;
	ck_assert_int_eq(fp8_matrix_alloc(&m, 200, 300, FP8_E4M3, FP8_PER_128X128), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_OK);
	ck_assert_int_eq(m.scale_rows * m.scale_cols, 6);
	ck_assert_float_eq(m.scale[1 * 3 + 2], 10.0f);
	for (int t = 0; t < 5; t++)
		ck_assert_float_lt(m.scale[t], 128.0f / 448.0f);
	ck_assert_uint_eq(m.q[199 * 300 + 299], 0x7e);
	fp8_matrix_free(&m);
	ck_assert_int_eq(fp8_matrix_alloc(&m, 200, 300, FP8_E4M3, FP8_PER_1X128), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_OK);
	ck_assert_int_eq(m.scale_cols, 3);
	ck_assert_float_eq(m.scale[199 * 3 + 2], 10.0f);
	ck_assert_float_lt(m.scale[199 * 3 + 1], 128.0f / 448.0f);
	ck_assert_float_lt(m.scale[198 * 3 + 2], 128.0f / 448.0f);
	fp8_matrix_free(&m);
	free(x);
}
END_TEST

/* dequant(quant(x)) per element: relative error <= 2^-4 (E4M3) or 2^-3 (E5M2) where
 * x / s is normal; absolute error <= half the smallest subnormal times s below that.
 * The slack 1 + 2^-20 covers the float division and multiplication around the code. */
START_TEST(round_trip_error_bounds)
{
	struct fp8_matrix m;
	float *x = random_case(_i % 6, 300 + (uint64_t)_i, &m);
	float *y = malloc((size_t)m.rows * m.cols * sizeof(*y));
	bool pow2 = _i >= 6;
	ck_assert_int_eq(fp8_quantize(x, &m, pow2), MB_OK);
	fp8_dequantize(&m, y);
	bool e4 = m.format == FP8_E4M3;
	double rel = e4 ? 0x1p-4 : 0x1p-3, min_normal = e4 ? 0x1p-6 : 0x1p-14;
	double half_sub = e4 ? 0x1p-10 : 0x1p-17, slack = 1.0 + 0x1p-20;
	for (int i = 0; i < m.rows; i++)
		for (int j = 0; j < m.cols; j++) {
			size_t at = (size_t)i * m.cols + j;
			double s = fp8_scale_of(&m, i, j), err = fabs((double)y[at] - x[at]);
			double bound = fabs(x[at]) / s >= min_normal ? rel * fabs(x[at]) : half_sub * s;
			ck_assert_msg(err <= bound * slack, "%s %s pow2=%d x=%a y=%a s=%a seed %llu",
				      fp8_format_name(m.format), fp8_scaling_name(m.scaling), pow2,
				      (double)x[at], (double)y[at], s, (unsigned long long)test_seed());
		}
	fp8_matrix_free(&m);
	free(x);
	free(y);
}
END_TEST

/* fp8_quantize_transposed(x) is byte for byte fp8_quantize(x^T). */
START_TEST(transposed_equals_quantize_of_transpose)
{
	struct fp8_matrix m, mt, t;
	float *x = random_case(_i % 6, 400 + (uint64_t)_i, &m);
	float *xt = malloc((size_t)m.rows * m.cols * sizeof(*xt));
	bool pow2 = _i >= 6;
	for (int i = 0; i < m.rows; i++)
		for (int j = 0; j < m.cols; j++)
			xt[(size_t)j * m.rows + i] = x[(size_t)i * m.cols + j];
	ck_assert_int_eq(fp8_matrix_alloc(&mt, m.cols, m.rows, m.format, m.scaling), MB_OK);
	ck_assert_int_eq(fp8_matrix_alloc(&t, m.cols, m.rows, m.format, m.scaling), MB_OK);
	ck_assert_int_eq(fp8_quantize(xt, &mt, pow2), MB_OK);
	ck_assert_int_eq(fp8_quantize_transposed(x, m.rows, m.cols, &t, pow2), MB_OK);
	ck_assert_int_eq(memcmp(mt.q, t.q, (size_t)m.rows * m.cols), 0);
	ck_assert_int_eq(memcmp(mt.scale, t.scale,
				(size_t)t.scale_rows * t.scale_cols * sizeof(float)), 0);
	ck_assert_int_eq(fp8_quantize_transposed(x, m.rows, m.cols, &m, pow2),
			 m.rows == m.cols ? MB_OK : MB_ERR_ARG);
	fp8_matrix_free(&m);
	fp8_matrix_free(&mt);
	fp8_matrix_free(&t);
	free(x);
	free(xt);
}
END_TEST

/* ---- limits ---- */

START_TEST(zero_tile_has_scale_one)
{
	struct fp8_matrix m;
	float x[2 * 130] = { 0 };
	x[129] = 3.5f;   /* only row 0's second 1x128 tile is non-zero */
	ck_assert_int_eq(fp8_matrix_alloc(&m, 2, 130, FP8_E4M3, FP8_PER_1X128), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_OK);
	ck_assert_float_eq(m.scale[0], 1.0f);
	ck_assert_float_eq(m.scale[1], 3.5f / 448.0f);
	ck_assert_float_eq(m.scale[2], 1.0f);
	ck_assert_uint_eq(m.q[129], 0x7e);
	ck_assert_uint_eq(m.q[0], 0x00);
	fp8_matrix_free(&m);
}
END_TEST

START_TEST(tiny_amax_clamps_scale_to_flt_min)
{
	struct fp8_matrix m;
	float x[3] = { 1e-40f, -2e-41f, 5e-39f }, y[3];
	ck_assert_int_eq(fp8_matrix_alloc(&m, 1, 3, FP8_E5M2, FP8_PER_TENSOR), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, true), MB_OK);
	ck_assert_float_eq(m.scale[0], FLT_MIN);
	fp8_dequantize(&m, y);
	for (int i = 0; i < 3; i++)
		ck_assert(isfinite(y[i]) && fabsf(y[i] - x[i]) <= 0.125f * fabsf(x[i]));
	fp8_matrix_free(&m);
}
END_TEST

START_TEST(bad_arguments_are_rejected)
{
	struct fp8_matrix m;
	float x[4] = { 1.0f, NAN, 2.0f, 3.0f };
	ck_assert_int_eq(fp8_matrix_alloc(&m, 0, 4, FP8_E4M3, FP8_PER_TENSOR), MB_ERR_ARG);
	ck_assert_int_eq(fp8_matrix_alloc(&m, 4, -1, FP8_E4M3, FP8_PER_TENSOR), MB_ERR_ARG);
	ck_assert_int_eq(fp8_matrix_alloc(&m, 2, 2, (enum fp8_format)7, FP8_PER_TENSOR), MB_ERR_ARG);
	ck_assert_int_eq(fp8_matrix_alloc(&m, 2, 2, FP8_E4M3, (enum fp8_scaling)9), MB_ERR_ARG);
	ck_assert_int_eq(fp8_matrix_alloc(&m, 2, 2, FP8_E4M3, FP8_PER_TENSOR), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_ERR_ARG);      /* NaN input */
	x[1] = INFINITY;
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_ERR_ARG);      /* infinite input */
	x[1] = 1.0f;
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_OK);
	ck_assert_int_eq(fp8_quantize_transposed(x, 1, 4, &m, false), MB_ERR_ARG);
	ck_assert_int_eq(fp8_quantize(NULL, &m, false), MB_ERR_ARG);
	fp8_matrix_free(&m);
	fp8_matrix_free(&m);   /* twice is harmless */
}
END_TEST

static Suite *fp8_suite(void)
{
	Suite *s = suite_create("fp8");
	TCase *conv = tcase_create("conversion");
	TCase *quant = tcase_create("quantization");
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(conv, encode_edge_cases, 0, (int)(sizeof(enc_cases) / sizeof(enc_cases[0])));
	tcase_add_test(conv, nan_is_kept_and_canonical);
	tcase_add_test(conv, decode_known_values);
	tcase_add_test(conv, round_trip_of_every_code);
	tcase_add_test(conv, encode_is_nearest_even_on_random_floats);
	tcase_add_loop_test(quant, scales_are_tile_amax_over_max, 0, 12);
	tcase_add_loop_test(quant, pow2_scales_round_up, 0, 12);
	tcase_add_test(quant, edge_tile_scale_is_its_own);
	tcase_add_loop_test(quant, round_trip_error_bounds, 0, 12);
	tcase_add_loop_test(quant, transposed_equals_quantize_of_transpose, 0, 12);
	tcase_add_test(limits, zero_tile_has_scale_one);
	tcase_add_test(limits, tiny_amax_clamps_scale_to_flt_min);
	tcase_add_test(limits, bad_arguments_are_rejected);
	suite_add_tcase(s, conv);
	suite_add_tcase(s, quant);
	suite_add_tcase(s, limits);
	return s;
}

MB_CHECK_MAIN(fp8_suite)
