/*
 * attn_round.c - an attention block's linear layers under a training recipe's rounding
 * (mla.h, struct attn_round): the three GEMMs of a projection on rounded operands, as
 * the trainable model's other linear layers compute them (model/train/net_ops.c):
 *   Fprop  y  = round(x) W                  (x tiled 1x128 along in)
 *   Dgrad  dx = round(dy) W^T               (dy tiled 1x128 along out)
 *   Wgrad  dW = round(x^T) round(dy^T)^T    (both tiled 1x128 along the tokens)
 * W arrives rounded (128x128 blocks of the same matrix). FP32 accumulation throughout.
 */
#include "mla.h"

#include <cblas.h>
#include <stdlib.h>

void attn_round_linear_fwd(const struct attn_round *r, int t, int in, int out, const float *x,
			   const float *w, float *y)
{
	float *xq = malloc((size_t)t * in * sizeof(float));
	/* NOTE: without memory the GEMM runs on x unrounded: a 1x128 copy of a block's
	 * activations, far below what the block's workspace already took */
	if (xq)
		r->act(r->ctx, x, t, in, false, xq);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, out, in, 1, xq ? xq : x, in, w,
		    out, 0, y, out);
	free(xq);
}

void attn_round_linear_bwd(const struct attn_round *r, int t, int in, int out, const float *x,
			   const float *w, const float *dy, float *dx, bool accumulate, float *dw)
{
	size_t nd = (size_t)t * out, nx = (size_t)t * in;
	float *dyq = malloc((2 * nd + nx) * sizeof(float));
	if (!dyq) {
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, t, 1, x, in, dy, out,
			    0, dw, out);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, in, out, 1, dy, out, w, out,
			    accumulate ? 1 : 0, dx, in);
		return;
	}
	float *dyt = dyq + nd, *xt = dyt + nd;
	r->act(r->ctx, dy, t, out, false, dyq);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, in, out, 1, dyq, out, w, out,
		    accumulate ? 1 : 0, dx, in);
	r->act(r->ctx, x, t, in, true, xt);      /* x^T [in, t] */
	r->act(r->ctx, dy, t, out, true, dyt);   /* dy^T [out, t] */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, in, out, t, 1, xt, t, dyt, t, 0, dw,
		    out);
	free(dyq);
}
