/*
 * net_ops.c - the CPU op tables of the trainable model (net_ops.h).
 *
 * Attention blocks: kernels/attention on the SGEMM core (attention_blas.c) in float,
 * on the FP64 reference core in double. FP32: OpenBLAS SGEMM. BF16: both operands of
 * each GEMM rounded to BF16 (nearest even), FP32 accumulation. FP8, DeepSeek-V3 3.3 emulated exactly on the CPU: E4M3
 * codes, 1x128 tiles for activations and activation gradients (along the GEMM's K),
 * 128x128 blocks for weights, each operand quantised and dequantised with
 * kernels/gemm fp8.c, then an FP32 GEMM: the accumulation is FP32 throughout, i.e.
 * promotion to FP32 at least every 128 K (the limited 14-bit tensor-core accumulator of
 * gemm_fp8_emulated is not modelled here). Wgrad's operands are dY^T and X^T, both
 * tiled 1x128 along the tokens.
 * The attention blocks (kernels/attention) get their input and weights rounded
 * (quant_act, quant_weight) and round every projection's operands inside through
 * net_attn_round: their Fprop, Dgrad and Wgrad as here. The attention core, RoPE and
 * the blocks' norms stay FP32 (DeepSeek-V3 3.3's high-precision parts).
 */
#include "net_ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "exp_poly.h"
#include "fp8.h"
#include "route.h"
#include "status.h"

#define REAL float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
/* NOTE: the FP32 table's SiLU, sigmoid and softmax through exp_poly_f (about 2 ulp from
 * expf): libm's expf, a call per element, kept SwiGLU's loops scalar (perf) */
#define EXP exp_poly_f
#include "block_real.h"
#include "net_ops_model_impl.h"
#undef REAL
#undef SFX
#undef GEMM
#undef EXP

/* qdq writes dequant(quant(x)) for x [rows, cols] (or of x^T into y [cols, rows] when
 * transposed); FP32 copy when the precision is fp32, BF16 rounding for bf16. */
static void qdq(enum net_precision p, const float *x, int rows, int cols, bool transposed,
		enum fp8_scaling s, float *y)
{
	size_t n = (size_t)rows * cols;
	if (p == NET_FP8) {
		struct fp8_matrix m;
		int r = transposed ? cols : rows, c = transposed ? rows : cols;
		if (fp8_matrix_alloc(&m, r, c, FP8_E4M3, s) == 0) {
			int err = transposed ? fp8_quantize_transposed(x, rows, cols, &m, false)
					     : fp8_quantize(x, &m, false);
			if (!err) {
				fp8_dequantize(&m, y);
				fp8_matrix_free(&m);
				return;
			}
			fp8_matrix_free(&m);
		}
		/* NOTE: quantisation fails only on a non-finite input or no memory: the
		 * values then pass unrounded and the loss shows the non-finite value. */
	}
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < cols; j++) {
			float v = x[(size_t)i * cols + j];
			v = p == NET_BF16 ? bf16_round(v) : v;
			y[transposed ? (size_t)j * rows + i : (size_t)i * cols + j] = v;
		}
	(void)n;
}

static void f32_linear_fwd(enum net_precision p, bool low, int t, int in, int out,
			   const float *x, const float *w, float *y)
{
	if (!low || p == NET_FP32) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, out, in, 1, x, in, w, in, 0,
			    y, out);
		return;
	}
	float *xq = malloc(((size_t)t * in + (size_t)out * in) * sizeof(float));
	if (!xq)
		return;
	float *wq = xq + (size_t)t * in;
	qdq(p, x, t, in, false, FP8_PER_1X128, xq);
	qdq(p, w, out, in, false, FP8_PER_128X128, wq);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, out, in, 1, xq, in, wq, in, 0, y,
		    out);
	free(xq);
}

/* f32_linear_bwd_low: Dgrad dX = dY W (K = out) and Wgrad dW += dY^T X (K = T) on
 * quantised operands. */
static void f32_linear_bwd_low(enum net_precision p, int t, int in, int out, const float *x,
			       const float *w, const float *dy, float *dx, bool acc, float *dw)
{
	size_t nd = (size_t)t * out, nw = (size_t)out * in, nx = (size_t)t * in;
	float *dyq = malloc((nd + nw + nd + nx) * sizeof(float));
	if (!dyq)
		return;
	float *wtq = dyq + nd, *dytq = wtq + nw, *xtq = dytq + nd;
	qdq(p, dy, t, out, false, FP8_PER_1X128, dyq);
	qdq(p, w, out, in, true, FP8_PER_128X128, wtq);            /* W^T [in, out] */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, in, out, 1, dyq, out, wtq, out,
		    acc ? 1 : 0, dx, in);
	qdq(p, dy, t, out, true, FP8_PER_1X128, dytq);             /* dY^T [out, T] */
	qdq(p, x, t, in, true, FP8_PER_1X128, xtq);                /* X^T [in, T] */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, out, in, t, 1, dytq, t, xtq, t, 1, dw,
		    in);
	free(dyq);
}

static void f32_linear_bwd(enum net_precision p, bool low, int t, int in, int out,
			   const float *x, const float *w, const float *dy, float *dx, bool acc,
			   float *dw)
{
	if (low && p != NET_FP32) {
		f32_linear_bwd_low(p, t, in, out, x, w, dy, dx, acc, dw);
		return;
	}
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, t, 1, dy, out, x, in, 1, dw,
		    in);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, in, out, 1, dy, out, w, in,
		    acc ? 1 : 0, dx, in);
}

/* f32_linear_bwd_dx is f32_linear_bwd's Dgrad alone (the same operands and rounding). */
static void f32_linear_bwd_dx(enum net_precision p, bool low, int t, int in, int out,
			      const float *w, const float *dy, float *dx, bool acc)
{
	if (!(low && p != NET_FP32)) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, in, out, 1, dy, out, w,
			    in, acc ? 1 : 0, dx, in);
		return;
	}
	size_t nd = (size_t)t * out, nw = (size_t)out * in;
	float *dyq = malloc((nd + nw) * sizeof(float));
	if (!dyq)
		return;
	float *wtq = dyq + nd;
	qdq(p, dy, t, out, false, FP8_PER_1X128, dyq);
	qdq(p, w, out, in, true, FP8_PER_128X128, wtq);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, in, out, 1, dyq, out, wtq, out,
		    acc ? 1 : 0, dx, in);
	free(dyq);
}

/* f32_linear_bwd_dw is f32_linear_bwd's Wgrad alone. */
static void f32_linear_bwd_dw(enum net_precision p, bool low, int t, int in, int out,
			      const float *x, const float *dy, float *dw)
{
	if (!(low && p != NET_FP32)) {
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, t, 1, dy, out, x, in,
			    1, dw, in);
		return;
	}
	size_t nd = (size_t)t * out, nx = (size_t)t * in;
	float *dytq = malloc((nd + nx) * sizeof(float));
	if (!dytq)
		return;
	float *xtq = dytq + nd;
	qdq(p, dy, t, out, true, FP8_PER_1X128, dytq);
	qdq(p, x, t, in, true, FP8_PER_1X128, xtq);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, out, in, t, 1, dytq, t, xtq, t, 1, dw,
		    in);
	free(dytq);
}

static void f32_quant_act(enum net_precision p, int t, int n, const float *x, float *y)
{
	qdq(p, x, t, n, false, FP8_PER_1X128, y);
}

static void f32_quant_weight(enum net_precision p, int rows, int cols, const float *w, float *y)
{
	qdq(p, w, rows, cols, false, FP8_PER_128X128, y);
}

/* round_act is struct attn_round's act for the precision in ctx: activations and
 * activation gradients tiled 1x128 along cols (of x^T when transposed). */
static void round_act(void *ctx, const float *x, int rows, int cols, bool transposed, float *y)
{
	qdq(*(const enum net_precision *)ctx, x, rows, cols, transposed, FP8_PER_1X128, y);
}

const struct attn_round *net_attn_round(enum net_precision p)
{
	static const enum net_precision bf16 = NET_BF16, fp8 = NET_FP8;
	static const struct attn_round r_bf16 = { (void *)&bf16, round_act };
	static const struct attn_round r_fp8 = { (void *)&fp8, round_act };
	return p == NET_BF16 ? &r_bf16 : p == NET_FP8 ? &r_fp8 : NULL;
}

/* f32_scale: y *= s, one rounding an element (the CUDA table's netop_scale_cuda). */
static int f32_scale(float *y, float s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] *= s;
	return MB_OK;
}

#define SFX(name) name##_f32   /* NET_OPS_MODEL_CPU names the f32 entries */
const struct net_ops_f32 net_cpu_ops_f32 = {
	f32_linear_fwd, f32_linear_bwd, f32_quant_act, f32_quant_weight,
	mla_fwd_f32_blas, mla_bwd_f32_blas, gqa_fwd_f32_blas, gqa_bwd_f32_blas,
	f32_linear_bwd_dx, f32_linear_bwd_dw,
	NET_OPS_MODEL_CPU,
	.adamw_step = net_adamw_step, .scale = f32_scale,
};
#undef SFX

#define REAL double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#include "block_real.h"
#include "net_ops_model_impl.h"

static void f64_linear_fwd(enum net_precision p, bool low, int t, int in, int out,
			   const double *x, const double *w, double *y)
{
	(void)p, (void)low;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, out, in, 1, x, in, w, in, 0, y,
		    out);
}

static void f64_linear_bwd(enum net_precision p, bool low, int t, int in, int out,
			   const double *x, const double *w, const double *dy, double *dx,
			   bool acc, double *dw)
{
	(void)p, (void)low;
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, t, 1, dy, out, x, in, 1, dw,
		    in);
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, in, out, 1, dy, out, w, in,
		    acc ? 1 : 0, dx, in);
}

static void f64_linear_bwd_dx(enum net_precision p, bool low, int t, int in, int out,
			      const double *w, const double *dy, double *dx, bool acc)
{
	(void)p, (void)low;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, in, out, 1, dy, out, w, in,
		    acc ? 1 : 0, dx, in);
}

static void f64_linear_bwd_dw(enum net_precision p, bool low, int t, int in, int out,
			      const double *x, const double *dy, double *dw)
{
	(void)p, (void)low;
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, t, 1, dy, out, x, in, 1, dw,
		    in);
}

static void f64_copy_act(enum net_precision p, int t, int n, const double *x, double *y)
{
	(void)p;
	memcpy(y, x, (size_t)t * n * sizeof(double));
}

static void f64_copy_weight(enum net_precision p, int rows, int cols, const double *w,
			    double *y)
{
	f64_copy_act(p, rows, cols, w, y);
}

const struct net_ops_f64 net_cpu_ops_f64 = {
	f64_linear_fwd, f64_linear_bwd, f64_copy_act, f64_copy_weight,
	mla_fwd_f64, mla_bwd_f64, gqa_fwd_f64, gqa_bwd_f64,
	f64_linear_bwd_dx, f64_linear_bwd_dw,
	NET_OPS_MODEL_CPU,
};
