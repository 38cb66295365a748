/*
 * gqa_impl.h - the MHA/GQA block's forward and backward (see mla.h), once per
 * precision: gqa.c defines REAL, SFX, GEMM, CORE_FWD and CORE_BWD and includes this
 * file twice. The workspace layout (struct gqa_ws) is gqa.c's.
 */
#include "block_real.h"

/* gqa_rope_heads rotates every head of x [T, heads, hd] at its position (or, with
 * transpose, rotates back a gradient). */
static void SFX(gqa_rope_heads)(const struct gqa_config *c, int t, int seq, int heads,
				REAL *x, bool transpose)
{
	int hd = c->head_dim;
	if (!c->rope)
		return;
	SFX(rope_rows)(x, t, seq, 0, heads, (size_t)hd, (size_t)heads * hd, hd, c->rope_theta,
		       transpose);
}

int SFX(gqa_fwd)(const struct gqa_config *c, int batch, int seq, const REAL *w,
		 const REAL *x, REAL *y, REAL *ws)
{
	struct gqa_layout L;
	struct gqa_ws W;
	if (!w || !x || !y || !ws || gqa_prepare(c, batch, seq, &L, &W))
		return MB_ERR_ARG;
	int t = batch * seq, H = c->heads, G = c->kv_heads, hd = c->head_dim;
	struct attn_shape s = { batch, seq, H, G, hd, hd, true, (float)(1.0 / sqrt(hd)) };
	LIN_FWD(c, t, c->dim, H * hd, x, w + L.wq, ws + W.q);
	LIN_FWD(c, t, c->dim, G * hd, x, w + L.wk, ws + W.k);
	LIN_FWD(c, t, c->dim, G * hd, x, w + L.wv, ws + W.v);
	SFX(gqa_rope_heads)(c, t, seq, H, ws + W.q, false);
	SFX(gqa_rope_heads)(c, t, seq, G, ws + W.k, false);
	int err = CORE_FWD(&s, ws + W.q, ws + W.k, ws + W.v, ws + W.o, ws + W.lse);
	if (!err)
		LIN_FWD(c, t, H * hd, c->dim, ws + W.o, w + L.wo, y);
	return err;
}

int SFX(gqa_bwd)(const struct gqa_config *c, int batch, int seq, const REAL *w,
		 const REAL *x, const REAL *ws, const REAL *dy, REAL *dx, REAL *dw)
{
	struct gqa_layout L;
	struct gqa_ws W;
	if (!w || !x || !ws || !dy || !dx || !dw || gqa_prepare(c, batch, seq, &L, &W))
		return MB_ERR_ARG;
	int t = batch * seq, H = c->heads, G = c->kv_heads, hd = c->head_dim;
	struct attn_shape s = { batch, seq, H, G, hd, hd, true, (float)(1.0 / sqrt(hd)) };
	size_t nq = (size_t)t * H * hd, nk = (size_t)t * G * hd;
	REAL *dout = malloc((2 * nq + 2 * nk) * sizeof(REAL));
	if (!dout)
		return MB_ERR_NOMEM;
	REAL *dq = dout + nq, *dk = dq + nq, *dv = dk + nk;
	LIN_BWD(c, t, H * hd, c->dim, ws + W.o, w + L.wo, dy, dout, false, dw + L.wo);
	int err = CORE_BWD(&s, ws + W.q, ws + W.k, ws + W.v, ws + W.o, dout, ws + W.lse, dq, dk, dv);
	if (!err) {
		SFX(gqa_rope_heads)(c, t, seq, H, dq, true);
		SFX(gqa_rope_heads)(c, t, seq, G, dk, true);
		LIN_BWD(c, t, c->dim, H * hd, x, w + L.wq, dq, dx, false, dw + L.wq);
		LIN_BWD(c, t, c->dim, G * hd, x, w + L.wk, dk, dx, true, dw + L.wk);
		LIN_BWD(c, t, c->dim, G * hd, x, w + L.wv, dv, dx, true, dw + L.wv);
	}
	free(dout);
	return err;
}
