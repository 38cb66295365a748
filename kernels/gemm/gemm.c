/*
 * gemm.c - GEMM references in FP64 and the FP8 accumulation-precision emulation, CPU.
 *
 * D[M,N] = A[M,K] * B[N,K]^T, both operands K-major. The FP8 reference sums each
 * 128-wide K block of raw FP8 products exactly and then multiplies by the block's two
 * scales, which equals summing decode(q) * scale products but needs no dequantized copy.
 * The emulation (see gemm.h) runs each output's dot product through a model of the
 * tensor core's accumulator, group by group, with optional promotion to FP32.
 * Rows are spread over OpenMP threads; every output is computed the same way whatever
 * the thread count, so results are deterministic.
 */
#include "gemm.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>

#include "status.h"

/* ---- references ---- */

void gemm_ref_f64(const float *a, const float *b, int m, int n, int k, double *d)
{
#pragma omp parallel for schedule(static)
	for (int i = 0; i < m; i++) {
		for (int j = 0; j < n; j++) {
			const float *ar = a + (size_t)i * k, *br = b + (size_t)j * k;
			double s = 0.0;
			for (int t = 0; t < k; t++)
				s += (double)ar[t] * (double)br[t];
			d[(size_t)i * n + j] = s;
		}
	}
}

/* decode_table fills lut with the exact value of every code of a format. */
static void decode_table(enum fp8_format f, float lut[256])
{
	for (int c = 0; c < 256; c++)
		lut[c] = fp8_decode((uint8_t)c, f);
}

/* dot_ref is one output of gemm_fp8_ref: per 128-wide K block, the exact sum of the FP8
 * products times the block's scales (their product is exact in double). */
static double dot_ref(const struct fp8_matrix *a, const struct fp8_matrix *b, int i, int j,
		      const float *la, const float *lb)
{
	const uint8_t *qa = a->q + (size_t)i * a->cols, *qb = b->q + (size_t)j * b->cols;
	double acc = 0.0;
	for (int k0 = 0; k0 < a->cols; k0 += FP8_TILE) {
		int k1 = k0 + FP8_TILE < a->cols ? k0 + FP8_TILE : a->cols;
		double s = 0.0;
		for (int t = k0; t < k1; t++)
			s += (double)la[qa[t]] * (double)lb[qb[t]];
		acc += s * ((double)fp8_scale_of(a, i, k0) * (double)fp8_scale_of(b, j, k0));
	}
	return acc;
}

int gemm_fp8_ref(const struct fp8_matrix *a, const struct fp8_matrix *b, double *d)
{
	float la[256], lb[256];
	if (!a || !b || !d || a->cols != b->cols || a->rows <= 0 || b->rows <= 0)
		return MB_ERR_ARG;
	decode_table(a->format, la);
	decode_table(b->format, lb);
#pragma omp parallel for schedule(static)
	for (int i = 0; i < a->rows; i++)
		for (int j = 0; j < b->rows; j++)
			d[(size_t)i * b->rows + j] = dot_ref(a, b, i, j, la, lb);
	return MB_OK;
}

/* ---- accumulation emulation ---- */

struct gemm_accum gemm_accum_default(void)
{
	return (struct gemm_accum){ .mantissa_bits = 13, .group = 32, .promote = 128,
				    .model = GEMM_ACCUM_ALIGNED };
}

const char *gemm_accum_model_name(enum gemm_accum_model m)
{
	switch (m) {
	case GEMM_ACCUM_ALIGNED: return "aligned";
	case GEMM_ACCUM_SUM_TRUNC: return "sum-trunc";
	case GEMM_ACCUM_SUM_NEAREST: return "sum-nearest";
	}
	return "?";
}

/* What one emulated GEMM needs: the operands, their decode and exponent tables, the
 * accumulator's configuration. */
struct accum_ctx {
	const struct fp8_matrix *a, *b;
	struct gemm_accum acc;
	float la[256], lb[256];
	int ea[256], eb[256];
};

/* exponent_table gives the exponent the tensor core aligns by: floor(log2|v|) for a
 * normal value, the format's e_min for a subnormal (the exponent field reads 1 - bias),
 * 0 for zero and non-finite codes (they never set e_max; see step_aligned). */
static void exponent_table(enum fp8_format f, const float *lut, int *e)
{
	int emin = f == FP8_E5M2 ? -14 : -6;
	for (int c = 0; c < 256; c++) {
		int x = isfinite(lut[c]) && lut[c] != 0.0f ? ilogbf(lut[c]) : 0;
		e[c] = x < emin ? emin : x;
	}
}

/* round_bits keeps `bits` explicit mantissa bits of x, toward zero or to nearest even
 * (nearbyint in the default rounding mode). Zero and non-finite values pass through. */
static double round_bits(double x, int bits, bool nearest)
{
	if (x == 0.0 || !isfinite(x))
		return x;
	double unit = ldexp(1.0, ilogb(x) - bits), q = x / unit;
	return (nearest ? nearbyint(q) : trunc(q)) * unit;
}

/* step_aligned adds len products to c the way Hopper's FP8 WGMMA does (gemm.h): align
 * to the largest exponent, truncate every addend to `bits` below it, add exactly,
 * truncate the sum. Multiplying by powers of two keeps every step exact in double. */
static double step_aligned(const struct accum_ctx *x, double c, const uint8_t *qa,
			   const uint8_t *qb, int len)
{
	if (!isfinite(c))
		return c;
	int bits = x->acc.mantissa_bits, emax = c != 0.0 ? ilogb(c) : INT_MIN;
	for (int t = 0; t < len; t++)
		if (x->la[qa[t]] != 0.0f && x->lb[qb[t]] != 0.0f && x->ea[qa[t]] + x->eb[qb[t]] > emax)
			emax = x->ea[qa[t]] + x->eb[qb[t]];
	if (emax == INT_MIN)
		return c;   /* every product zero and c == 0 */
	double unit = ldexp(1.0, emax - bits), inv = ldexp(1.0, bits - emax);
	double s = trunc(c * inv) * unit;
	for (int t = 0; t < len; t++)
		s += trunc((double)x->la[qa[t]] * (double)x->lb[qb[t]] * inv) * unit;
	return round_bits(s, bits, false);
}

/* step_sum adds the products exactly (up to FP64 rounding for extreme exponent spreads)
 * and rounds only the running sum. */
static double step_sum(const struct accum_ctx *x, double c, const uint8_t *qa,
		       const uint8_t *qb, int len, bool nearest)
{
	double s = c;
	for (int t = 0; t < len; t++)
		s += (double)x->la[qa[t]] * (double)x->lb[qb[t]];
	return round_bits(s, x->acc.mantissa_bits, nearest);
}

/* dot_emulated is one output of gemm_fp8_emulated: groups through the limited
 * accumulator, promoted into an FP32 total with the scales of the block it covers. */
static double dot_emulated(const struct accum_ctx *x, int i, int j)
{
	int k = x->a->cols, group = x->acc.group, promote = x->acc.promote;
	const uint8_t *qa = x->a->q + (size_t)i * k, *qb = x->b->q + (size_t)j * k;
	float total = 0.0f;
	double c = 0.0;
	for (int k0 = 0; k0 < k; k0 += group) {
		int len = group < k - k0 ? group : k - k0, k1 = k0 + len;
		if (x->acc.model == GEMM_ACCUM_ALIGNED)
			c = step_aligned(x, c, qa + k0, qb + k0, len);
		else
			c = step_sum(x, c, qa + k0, qb + k0, len,
				     x->acc.model == GEMM_ACCUM_SUM_NEAREST);
		if (k1 == k || (promote > 0 && k1 % promote == 0)) {
			/* NOTE: the promotion interval lies inside one 128-wide scale block
			 * (checked), so the scales at k0 are the interval's scales. */
			float s = fp8_scale_of(x->a, i, k0) * fp8_scale_of(x->b, j, k0);
			total = fmaf((float)c, s, total);
			c = 0.0;
		}
	}
	return total;
}

/* scales_vary_along_k tells whether an operand's scale changes between K blocks. */
static bool scales_vary_along_k(const struct fp8_matrix *m)
{
	return m->scaling != FP8_PER_TENSOR && m->scale_cols > 1;
}

/* accum_args_ok checks the rules gemm.h lists for gemm_fp8_emulated. */
static bool accum_args_ok(const struct fp8_matrix *a, const struct fp8_matrix *b,
			  const struct gemm_accum *acc)
{
	if (!a || !b || !acc || a->cols != b->cols || a->rows <= 0 || b->rows <= 0)
		return false;
	if (acc->mantissa_bits < 1 || acc->mantissa_bits > 23 || acc->group < 1 ||
	    acc->promote < 0 || (acc->promote > 0 && acc->promote % acc->group != 0))
		return false;
	if (acc->model != GEMM_ACCUM_ALIGNED && acc->model != GEMM_ACCUM_SUM_TRUNC &&
	    acc->model != GEMM_ACCUM_SUM_NEAREST)
		return false;
	if ((scales_vary_along_k(a) || scales_vary_along_k(b)) &&
	    (acc->promote == 0 || FP8_TILE % acc->promote != 0))
		return false;
	return true;
}

int gemm_fp8_emulated(const struct fp8_matrix *a, const struct fp8_matrix *b,
		      const struct gemm_accum *acc, double *d)
{
	struct accum_ctx x;
	if (!d || !accum_args_ok(a, b, acc))
		return MB_ERR_ARG;
	x.a = a;
	x.b = b;
	x.acc = *acc;
	decode_table(a->format, x.la);
	decode_table(b->format, x.lb);
	exponent_table(a->format, x.la, x.ea);
	exponent_table(b->format, x.lb, x.eb);
#pragma omp parallel for schedule(dynamic)
	for (int i = 0; i < a->rows; i++)
		for (int j = 0; j < b->rows; j++)
			d[(size_t)i * b->rows + j] = dot_emulated(&x, i, j);
	return MB_OK;
}

/* ---- comparison ---- */

void gemm_compare(const void *d, int is_double, const double *ref, size_t n,
		  struct gemm_err *e)
{
	const double *dd = d;
	const float *df = d;
	double mean_abs = 0.0, sum = 0.0;
	*e = (struct gemm_err){ 0 };
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		mean_abs += fabs(ref[i]);
	double floor_abs = 1e-3 * (mean_abs / (double)n);
	for (size_t i = 0; i < n; i++) {
		double v = is_double ? dd[i] : (double)df[i];
		if (!isfinite(v)) {
			e->nonfinite++;
			continue;
		}
		double den = fmax(fabs(ref[i]), floor_abs);
		double rel = den > 0.0 ? fabs(v - ref[i]) / den : (v == ref[i] ? 0.0 : INFINITY);
		e->max_rel = fmax(e->max_rel, rel);
		sum += rel;
	}
	e->mean_rel = sum / (double)n;
	if (e->nonfinite)
		e->max_rel = e->mean_rel = INFINITY;
}
