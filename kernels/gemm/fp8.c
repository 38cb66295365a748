/*
 * fp8.c - FP8 (OCP E4M3FN, E5M2) conversions and fine-grained quantization, CPU
 * reference.
 *
 * The conversions work on the bits of the float: no FPU rounding mode, no library call,
 * so they give the same code on every machine. They equal CUDA's __nv_cvt_float_to_fp8
 * (__NV_SATFINITE) and __nv_cvt_fp8_to_halfraw bit for bit, NaNs included; the
 * fp8_cuda_parity test checks that wherever nvcc is installed.
 *
 * Quantization walks tiles of a matrix "view" (element (i, j) at x[i*si + j*sj]), so the
 * plain and the transposed layouts share one code path and agree bit for bit.
 */
#include "fp8.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* The parameters of one format: mantissa bits, exponent bias, largest finite code. */
struct fp8_params {
	int mant;
	int bias;
	uint8_t max_code;
	float max;
};

static const struct fp8_params fp8_e4m3 = { 3, 7, 0x7e, 448.0f };
static const struct fp8_params fp8_e5m2 = { 2, 15, 0x7b, 57344.0f };

/* NOTE: 0x7fffffff is the NaN CUDA's host conversion gives for every NaN code (the
 * canonical half NaN 0x7fff widened by __half2float), so decode returns exactly it. */
#define FP8_NAN_BITS 0x7fffffffu

/* params_of returns the parameters of a format. */
static const struct fp8_params *params_of(enum fp8_format f)
{
	return f == FP8_E5M2 ? &fp8_e5m2 : &fp8_e4m3;
}

/* float_bits and bits_float reinterpret a float without aliasing trouble. */
static uint32_t float_bits(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof(u));
	return u;
}

static float bits_float(uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof(x));
	return x;
}

float fp8_max_finite(enum fp8_format f)
{
	return params_of(f)->max;
}

const char *fp8_format_name(enum fp8_format f)
{
	return f == FP8_E5M2 ? "e5m2" : "e4m3";
}

const char *fp8_scaling_name(enum fp8_scaling s)
{
	switch (s) {
	case FP8_PER_TENSOR: return "tensor";
	case FP8_PER_1X128: return "1x128";
	case FP8_PER_128X128: return "128x128";
	}
	return "?";
}

/* round_shift returns sig >> s rounded to nearest, ties to even (0 < s < 32). */
static uint32_t round_shift(uint32_t sig, int s)
{
	uint32_t q = sig >> s, rem = sig & ((1u << s) - 1), half = 1u << (s - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++;
	return q;
}

/* fp8_encode rounds |x| to the format's grid and puts the sign back. Codes of one sign
 * are ordered like their values, so a rounding carry into the exponent field is right. */
uint8_t fp8_encode(float x, enum fp8_format f)
{
	const struct fp8_params *p = params_of(f);
	uint32_t u = float_bits(x), a = u & 0x7fffffffu;
	uint8_t sign = (uint8_t)((u >> 31) << 7), code;
	int emin = 1 - p->bias;

	if (a > 0x7f800000u)
		return 0x7f;    /* NOTE: CUDA canonicalises NaN first, so the sign is dropped */
	if (a >= float_bits(p->max)) {
		code = p->max_code;     /* saturate, infinities included (SATFINITE) */
	} else if ((a >> 23) == 0) {
		code = 0;               /* float subnormals lie far below half the smallest FP8 */
	} else {
		int e = (int)(a >> 23) - 127;
		uint32_t sig = (a & 0x7fffffu) | 0x800000u;
		if (e >= emin) {
			uint32_t q = round_shift(sig, 23 - p->mant);   /* 1.m, implicit bit kept */
			code = (uint8_t)((((uint32_t)(e - emin)) << p->mant) + q);
		} else {
			int s = 23 + emin - p->mant - e;   /* shift to units of the smallest subnormal */
			code = s >= 32 ? 0 : (uint8_t)round_shift(sig, s);
		}
	}
	return (uint8_t)(code | sign);
}

float fp8_decode(uint8_t code, enum fp8_format f)
{
	const struct fp8_params *p = params_of(f);
	int field = (code & 0x7f) >> p->mant, m = code & ((1 << p->mant) - 1);
	float sign = (code & 0x80) ? -1.0f : 1.0f;
	int emax_field = (1 << (7 - p->mant)) - 1;

	if (f == FP8_E4M3 && (code & 0x7f) == 0x7f)
		return bits_float(FP8_NAN_BITS);
	if (f == FP8_E5M2 && field == emax_field)
		return m ? bits_float(FP8_NAN_BITS) : sign * INFINITY;
	if (field == 0)
		return sign * ldexpf((float)m, 1 - p->bias - p->mant);
	return sign * ldexpf((float)((1 << p->mant) | m), field - p->bias - p->mant);
}

/* tile_shape gives the tile height and width of a scaling for a rows x cols matrix. */
static void tile_shape(enum fp8_scaling s, int rows, int cols, int *th, int *tw)
{
	*th = s == FP8_PER_TENSOR ? rows : s == FP8_PER_1X128 ? 1 : FP8_TILE;
	*tw = s == FP8_PER_TENSOR ? cols : FP8_TILE;
}

int fp8_matrix_alloc(struct fp8_matrix *m, int rows, int cols, enum fp8_format f,
		     enum fp8_scaling s)
{
	int th, tw;
	if (!m || rows <= 0 || cols <= 0 || (f != FP8_E4M3 && f != FP8_E5M2) ||
	    (s != FP8_PER_TENSOR && s != FP8_PER_1X128 && s != FP8_PER_128X128))
		return MB_ERR_ARG;
	tile_shape(s, rows, cols, &th, &tw);
	*m = (struct fp8_matrix){ .rows = rows, .cols = cols, .format = f, .scaling = s,
				  .scale_rows = (rows + th - 1) / th,
				  .scale_cols = (cols + tw - 1) / tw };
	m->q = calloc((size_t)rows * (size_t)cols, 1);
	m->scale = calloc((size_t)m->scale_rows * (size_t)m->scale_cols, sizeof(float));
	if (!m->q || !m->scale) {
		fp8_matrix_free(m);
		return MB_ERR_NOMEM;
	}
	return MB_OK;
}

void fp8_matrix_free(struct fp8_matrix *m)
{
	if (!m)
		return;
	free(m->q);
	free(m->scale);
	m->q = NULL;
	m->scale = NULL;
}

/* scale_for turns a tile's amax into its scale: amax / max_finite (1 for an all-zero
 * tile), at least FLT_MIN so x / s stays finite, optionally rounded up to a power of 2. */
static float scale_for(float amax, float max_finite, bool pow2)
{
	int e;
	if (amax == 0.0f)
		return 1.0f;
	float s = amax / max_finite;
	if (s < FLT_MIN)
		s = FLT_MIN;
	/* NOTE: frexpf gives s = f * 2^e with f in [0.5, 1); f == 0.5 is already 2^(e-1). */
	if (pow2 && frexpf(s, &e) != 0.5f)
		s = ldexpf(1.0f, e);
	return s;
}

/* quantize_tile fills one tile [r0, r1) x [c0, c1) of m from the view (x, si, sj). */
static void quantize_tile(const float *x, size_t si, size_t sj, struct fp8_matrix *m,
			  int r0, int r1, int c0, int c1, bool pow2, float *scale)
{
	float amax = 0.0f;
	for (int i = r0; i < r1; i++)
		for (int j = c0; j < c1; j++)
			amax = fmaxf(amax, fabsf(x[(size_t)i * si + (size_t)j * sj]));
	float s = scale_for(amax, fp8_max_finite(m->format), pow2);
	/* NOTE: x / s, an IEEE division, not x * (1 / s): the CUDA quantizer must do the
	 * same to stay bit-equal. */
	for (int i = r0; i < r1; i++)
		for (int j = c0; j < c1; j++)
			m->q[(size_t)i * m->cols + j] =
				fp8_encode(x[(size_t)i * si + (size_t)j * sj] / s, m->format);
	*scale = s;
}

/* quantize_view quantizes the rows x cols view whose element (i, j) is x[i*si + j*sj]
 * into m. Returns MB_ERR_ARG for a non-finite element (m is then unspecified). */
static int quantize_view(const float *x, size_t si, size_t sj, struct fp8_matrix *m,
			 bool pow2)
{
	int th, tw;
	for (int i = 0; i < m->rows; i++)
		for (int j = 0; j < m->cols; j++)
			if (!isfinite(x[(size_t)i * si + (size_t)j * sj]))
				return MB_ERR_ARG;
	tile_shape(m->scaling, m->rows, m->cols, &th, &tw);
	for (int tr = 0; tr < m->scale_rows; tr++) {
		for (int tc = 0; tc < m->scale_cols; tc++) {
			int r0 = tr * th, c0 = tc * tw;
			int r1 = r0 + th < m->rows ? r0 + th : m->rows;
			int c1 = c0 + tw < m->cols ? c0 + tw : m->cols;
			quantize_tile(x, si, sj, m, r0, r1, c0, c1, pow2,
				      &m->scale[(size_t)tr * m->scale_cols + tc]);
		}
	}
	return MB_OK;
}

int fp8_quantize(const float *x, struct fp8_matrix *m, bool pow2_scales)
{
	if (!x || !m || !m->q || !m->scale)
		return MB_ERR_ARG;
	return quantize_view(x, (size_t)m->cols, 1, m, pow2_scales);
}

int fp8_quantize_transposed(const float *x, int rows, int cols, struct fp8_matrix *m,
			    bool pow2_scales)
{
	if (!x || !m || !m->q || !m->scale || m->rows != cols || m->cols != rows)
		return MB_ERR_ARG;
	/* m(i, j) = x(j, i) = x[j * cols + i] */
	return quantize_view(x, 1, (size_t)cols, m, pow2_scales);
}

float fp8_scale_of(const struct fp8_matrix *m, int r, int c)
{
	int th, tw;
	tile_shape(m->scaling, m->rows, m->cols, &th, &tw);
	return m->scale[(size_t)(r / th) * m->scale_cols + c / tw];
}

void fp8_dequantize(const struct fp8_matrix *m, float *x)
{
	float lut[256];
	for (int c = 0; c < 256; c++)
		lut[c] = fp8_decode((uint8_t)c, m->format);
	for (int i = 0; i < m->rows; i++)
		for (int j = 0; j < m->cols; j++)
			x[(size_t)i * m->cols + j] =
				lut[m->q[(size_t)i * m->cols + j]] * fp8_scale_of(m, i, j);
}
