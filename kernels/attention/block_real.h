/*
 * block_real.h - the pieces the attention blocks share (mla_impl.h, gqa_impl.h), once
 * per precision: projections through BLAS, RoPE, RMSNorm. A template: the includer
 * defines REAL (float|double), SFX(name) (name##_f32|_f64) and GEMM (cblas_sgemm, or
 * attn_ref_dgemm's plain loops: the FP64 path is a reference and must not share the
 * BLAS it judges), and includes it once per precision (hence no include guard; static
 * inline, so a translation unit that leaves one unused gets no warning).
 */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rope_angles.h"

/* linear_fwd: y[T, out] = x[T, in] w[in, out]. */
static inline void SFX(linear_fwd)(int t, int in, int out, const REAL *x, const REAL *w,
				   REAL *y)
{
	GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, out, in, 1, x, in, w, out, 0, y, out);
}

/* linear_bwd: dw[in, out] = x^T dy; dx[T, in] = dy w^T, added to dx when accumulate. */
static inline void SFX(linear_bwd)(int t, int in, int out, const REAL *x, const REAL *w,
				   const REAL *dy, REAL *dx, bool accumulate, REAL *dw)
{
	GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, t, 1, x, in, dy, out, 0, dw, out);
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, t, in, out, 1, dy, out, w, out,
	     accumulate ? 1 : 0, dx, in);
}

/* rope rotates r[dr] as position pos (DeepSeek's interleaved pairs, mla.h); with
 * transpose it applies the inverse rotation, which is what the backward needs. */
static inline void SFX(rope)(REAL *r, int dr, int pos, double theta, bool transpose)
{
	for (int i = 0; i < dr / 2; i++) {
		double ang = pos * pow(theta, -2.0 * i / dr), cs = cos(ang);
		double sn = transpose ? -sin(ang) : sin(ang);
		double a = r[2 * i], b = r[2 * i + 1];
		r[2 * i] = (REAL)(a * cs - b * sn);
		r[2 * i + 1] = (REAL)(a * sn + b * cs);
	}
}

/* rope_rows rotates (or, with transpose, rotates back) `heads` vectors of dr per row of
 * t rows, row r at position pos0 + r mod seq: x + r * row_stride + h * head_stride.
 * NOTE: the angles' cos and sin come from the thread's table (rope_angles.h), computed
 * with the very expressions rope uses, so the results are rope's to the bit (rotating
 * back by -sin: a c - b (-s) is a c + b s and a (-s) + b c is b c - a s in IEEE
 * arithmetic); rope's pow, cos and sin per element pair showed in the CPU step's
 * profile. Falls back to rope when the table cannot be allocated. */
static inline void SFX(rope_rows)(REAL *x, int t, int seq, int pos0, int heads,
				  size_t head_stride, size_t row_stride, int dr, double theta,
				  bool transpose)
{
	int npos = t < seq ? t : seq, half = dr / 2;
	const double *cs = rope_angles(npos, pos0, dr, theta);
	if (!cs) {
		for (int r = 0; r < t; r++)
			for (int h = 0; h < heads; h++)
				SFX(rope)(x + (size_t)r * row_stride + (size_t)h * head_stride, dr,
					  pos0 + r % seq, theta, transpose);
		return;
	}
	const double *sn = cs + (size_t)npos * half;
	for (int r = 0; r < t; r++)
		for (int h = 0; h < heads; h++) {
			REAL *v = x + (size_t)r * row_stride + (size_t)h * head_stride;
			const double *c = cs + (size_t)(r % seq) * half, *s = sn + (size_t)(r % seq) * half;
			for (int i = 0; i < half && !transpose; i++) {
				double a = v[2 * i], b = v[2 * i + 1];
				v[2 * i] = (REAL)(a * c[i] - b * s[i]);
				v[2 * i + 1] = (REAL)(a * s[i] + b * c[i]);
			}
			for (int i = 0; i < half && transpose; i++) {
				double a = v[2 * i], b = v[2 * i + 1];
				v[2 * i] = (REAL)(a * c[i] + b * s[i]);
				v[2 * i + 1] = (REAL)(b * c[i] - a * s[i]);
			}
		}
}

/* rmsnorm_fwd: y[t] = x[t] / rms(x[t]) * g for T rows of n (x rows ldx apart). */
static inline void SFX(rmsnorm_fwd)(int t, int n, const REAL *x, int ldx, const REAL *g,
				    double eps, REAL *y)
{
	for (int r = 0; r < t; r++) {
		const REAL *xr = x + (size_t)r * ldx;
		double ss = 0;
		for (int c = 0; c < n; c++)
			ss += (double)xr[c] * xr[c];
		double inv = 1.0 / sqrt(ss / n + eps);
		for (int c = 0; c < n; c++)
			y[(size_t)r * n + c] = (REAL)(xr[c] * inv * g[c]);
	}
}

/* rmsnorm_bwd: from dy [T, n], dx (rows lddx apart) and dg [n] (overwritten):
 * dx = inv g dy - x inv^3 sum(g dy x) / n, dg = sum_t dy x inv. */
static inline void SFX(rmsnorm_bwd)(int t, int n, const REAL *x, int ldx, const REAL *g,
				    double eps, const REAL *dy, REAL *dx, int lddx, REAL *dg)
{
	memset(dg, 0, (size_t)n * sizeof(*dg));
	for (int r = 0; r < t; r++) {
		const REAL *xr = x + (size_t)r * ldx, *dyr = dy + (size_t)r * n;
		double ss = 0, s = 0;
		for (int c = 0; c < n; c++) {
			ss += (double)xr[c] * xr[c];
			s += (double)g[c] * dyr[c] * xr[c];
		}
		double inv = 1.0 / sqrt(ss / n + eps), k = inv * inv * inv * s / n;
		for (int c = 0; c < n; c++) {
			dx[(size_t)r * lddx + c] = (REAL)(inv * g[c] * dyr[c] - k * xr[c]);
			dg[c] += (REAL)(dyr[c] * xr[c] * inv);
		}
	}
}
