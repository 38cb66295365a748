/*
 * mla_impl.h - the MLA block's forward, backward and absorbed decode (see mla.h), once
 * per precision: mla.c defines REAL, SFX, GEMM and CORE (the attention core's suffix,
 * attn_*_cpu or attn_*_cpu_f64 through CORE_FWD, CORE_BWD, CORE_DECODE) and includes
 * this file twice. The layouts (struct mla_layout, struct mla_ws) are mla.c's.
 */
#include "block_real.h"

/* mla_q_fwd computes q [T, H, dqk] (before RoPE) into ws: through the q latent and its
 * norm when q_lora_rank > 0, else straight from x. */
static void SFX(mla_q_fwd)(const struct mla_config *c, int t, const REAL *w,
			   const struct mla_layout *L, const REAL *x, REAL *cq, REAL *cqn, REAL *q)
{
	int ql = c->q_lora_rank, hq = c->heads * (c->nope + c->rope);
	if (ql == 0) {
		LIN_FWD(c, t, c->dim, hq, x, w + L->wq_b, q);
		return;
	}
	LIN_FWD(c, t, c->dim, ql, x, w + L->wq_a, cq);
	SFX(rmsnorm_fwd)(t, ql, cq, ql, w + L->q_norm, c->eps, cqn);
	LIN_FWD(c, t, ql, hq, cqn, w + L->wq_b, q);
}

/* mla_kv_fwd computes the kv latent (kva), its norm (latn), the per-head keys and
 * values (kv) and the rotated shared RoPE key (krr) of T tokens whose positions are
 * pos0 + (index mod seq). */
static void SFX(mla_kv_fwd)(const struct mla_config *c, int t, int seq, int pos0,
			    const REAL *w, const struct mla_layout *L, const REAL *x, REAL *kva,
			    REAL *latn, REAL *kv, REAL *krr)
{
	int kvl = c->kv_lora_rank, dr = c->rope, wd = kvl + dr;
	LIN_FWD(c, t, c->dim, wd, x, w + L->wkv_a, kva);
	SFX(rmsnorm_fwd)(t, kvl, kva, wd, w + L->kv_norm, c->eps, latn);
	if (kv)
		LIN_FWD(c, t, kvl, c->heads * (c->nope + c->v_dim), latn, w + L->wkv_b, kv);
	for (int r = 0; r < t; r++)
		memcpy(krr + (size_t)r * dr, kva + (size_t)r * wd + kvl, (size_t)dr * sizeof(REAL));
	SFX(rope_rows)(krr, t, seq, pos0, 1, 0, (size_t)dr, dr, c->rope_theta, false);
}

/* mla_assemble rotates the rope part of every query head and builds the core's k
 * [T, H, dqk] = [k_nope | shared rotated key] and v [T, H, dv] from kv. */
static void SFX(mla_assemble)(const struct mla_config *c, int t, int seq, REAL *q,
			      const REAL *kv, const REAL *krr, REAL *k, REAL *v)
{
	int H = c->heads, dn = c->nope, dr = c->rope, dv = c->v_dim, dqk = dn + dr;
	SFX(rope_rows)(q + dn, t, seq, 0, H, (size_t)dqk, (size_t)H * dqk, dr, c->rope_theta,
		       false);
	for (int r = 0; r < t; r++)
		for (int h = 0; h < H; h++) {
			size_t row = (size_t)r * H + h;
			const REAL *kvh = kv + row * (dn + dv);
			memcpy(k + row * dqk, kvh, (size_t)dn * sizeof(REAL));
			memcpy(k + row * dqk + dn, krr + (size_t)r * dr, (size_t)dr * sizeof(REAL));
			memcpy(v + row * dv, kvh + dn, (size_t)dv * sizeof(REAL));
		}
}

int SFX(mla_fwd)(const struct mla_config *c, int batch, int seq, const REAL *w,
		 const REAL *x, REAL *y, REAL *ws)
{
	struct mla_layout L;
	struct mla_ws W;
	if (!w || !x || !y || !ws || mla_prepare(c, batch, seq, &L, &W))
		return MB_ERR_ARG;
	int t = batch * seq, dqk = c->nope + c->rope;
	struct attn_shape s = { batch, seq, c->heads, c->heads, dqk, c->v_dim, true,
				(float)(1.0 / sqrt(dqk)) };
	SFX(mla_q_fwd)(c, t, w, &L, x, ws + W.cq, ws + W.cqn, ws + W.q);
	SFX(mla_kv_fwd)(c, t, seq, 0, w, &L, x, ws + W.kva, ws + W.latn, ws + W.kv, ws + W.krr);
	SFX(mla_assemble)(c, t, seq, ws + W.q, ws + W.kv, ws + W.krr, ws + W.k, ws + W.v);
	int err = CORE_FWD(&s, ws + W.q, ws + W.k, ws + W.v, ws + W.o, ws + W.lse);
	if (!err)
		LIN_FWD(c, t, c->heads * c->v_dim, c->dim, ws + W.o, w + L.wo, y);
	return err;
}

/* mla_scatter turns the core's dq, dk, dv into the gradients of the projections'
 * outputs: dq's rope part rotated back (in place), dkv [T, H, dn + dv] and the shared
 * key's gradient summed over heads and rotated back into dkva[:, kvl:]. */
static void SFX(mla_scatter)(const struct mla_config *c, int t, int seq, REAL *dq,
			     const REAL *dk, const REAL *dv, REAL *dkv, REAL *dkva)
{
	int H = c->heads, dn = c->nope, dr = c->rope, dvd = c->v_dim, dqk = dn + dr;
	int wd = c->kv_lora_rank + dr;
	SFX(rope_rows)(dq + dn, t, seq, 0, H, (size_t)dqk, (size_t)H * dqk, dr, c->rope_theta,
		       true);
	for (int r = 0; r < t; r++) {
		REAL *dkr = dkva + (size_t)r * wd + c->kv_lora_rank;
		memset(dkr, 0, (size_t)dr * sizeof(REAL));
		for (int h = 0; h < H; h++) {
			size_t row = (size_t)r * H + h;
			memcpy(dkv + row * (dn + dvd), dk + row * dqk, (size_t)dn * sizeof(REAL));
			memcpy(dkv + row * (dn + dvd) + dn, dv + row * dvd, (size_t)dvd * sizeof(REAL));
			for (int i = 0; i < dr; i++)
				dkr[i] += dk[row * dqk + dn + i];
		}
	}
	SFX(rope_rows)(dkva + c->kv_lora_rank, t, seq, 0, 1, 0, (size_t)wd, dr, c->rope_theta,
		       true);
}

/* mla_kv_bwd takes dkv and dkva's RoPE part back through W_kvb, the latent norm and
 * W_kva: the three weights' gradients, and dx (overwritten). scratch: [T, kvl]. */
static void SFX(mla_kv_bwd)(const struct mla_config *c, int t, const REAL *w, REAL *dw,
			    const struct mla_layout *L, const REAL *x, const REAL *ws,
			    const struct mla_ws *W, const REAL *dkv, REAL *dkva, REAL *dx,
			    REAL *scratch)
{
	int kvl = c->kv_lora_rank, wd = kvl + c->rope;
	LIN_BWD(c, t, kvl, c->heads * (c->nope + c->v_dim), ws + W->latn, w + L->wkv_b,
			dkv, scratch, false, dw + L->wkv_b);
	SFX(rmsnorm_bwd)(t, kvl, ws + W->kva, wd, w + L->kv_norm, c->eps, scratch, dkva, wd,
			 dw + L->kv_norm);
	LIN_BWD(c, t, c->dim, wd, x, w + L->wkv_a, dkva, dx, false, dw + L->wkv_a);
}

/* mla_q_bwd takes dq (before RoPE) back through the q path, adding to dx. */
static void SFX(mla_q_bwd)(const struct mla_config *c, int t, const REAL *w, REAL *dw,
			   const struct mla_layout *L, const REAL *x, const REAL *ws,
			   const struct mla_ws *W, const REAL *dq, REAL *dx, REAL *s1, REAL *s2)
{
	int ql = c->q_lora_rank, hq = c->heads * (c->nope + c->rope);
	if (ql == 0) {
		LIN_BWD(c, t, c->dim, hq, x, w + L->wq_b, dq, dx, true, dw + L->wq_b);
		return;
	}
	LIN_BWD(c, t, ql, hq, ws + W->cqn, w + L->wq_b, dq, s1, false, dw + L->wq_b);
	SFX(rmsnorm_bwd)(t, ql, ws + W->cq, ql, w + L->q_norm, c->eps, s1, s2, ql, dw + L->q_norm);
	LIN_BWD(c, t, c->dim, ql, x, w + L->wq_a, s2, dx, true, dw + L->wq_a);
}

/* The backward's scratch: gradients of the core's tensors and of the projections. */
struct SFX(mla_grads) {
	REAL *dout, *dq, *dk, *dv, *dkv, *dkva, *s1, *s2, *base;
};

/* mla_grads_alloc carves the backward's scratch out of one allocation. */
static int SFX(mla_grads_alloc)(const struct mla_config *c, int t, struct SFX(mla_grads) *g)
{
	size_t th = (size_t)t * c->heads, dqk = (size_t)(c->nope + c->rope);
	size_t wide = (size_t)(c->q_lora_rank > c->kv_lora_rank ? c->q_lora_rank : c->kv_lora_rank);
	size_t n[8] = { th * c->v_dim, th * dqk, th * dqk, th * c->v_dim,
			th * (c->nope + c->v_dim), (size_t)t * (c->kv_lora_rank + c->rope),
			(size_t)t * wide, (size_t)t * wide };
	size_t total = 0;
	for (int i = 0; i < 8; i++)
		total += n[i];
	g->base = malloc(total * sizeof(REAL));
	if (!g->base)
		return MB_ERR_NOMEM;
	REAL **dst[8] = { &g->dout, &g->dq, &g->dk, &g->dv, &g->dkv, &g->dkva, &g->s1, &g->s2 };
	REAL *p = g->base;
	for (int i = 0; i < 8; i++) {
		*dst[i] = p;
		p += n[i];
	}
	return MB_OK;
}

int SFX(mla_bwd)(const struct mla_config *c, int batch, int seq, const REAL *w,
		 const REAL *x, const REAL *ws, const REAL *dy, REAL *dx, REAL *dw)
{
	struct mla_layout L;
	struct mla_ws W;
	struct SFX(mla_grads) g;
	if (!w || !x || !ws || !dy || !dx || !dw || mla_prepare(c, batch, seq, &L, &W))
		return MB_ERR_ARG;
	int t = batch * seq, dqk = c->nope + c->rope;
	struct attn_shape s = { batch, seq, c->heads, c->heads, dqk, c->v_dim, true,
				(float)(1.0 / sqrt(dqk)) };
	if (SFX(mla_grads_alloc)(c, t, &g))
		return MB_ERR_NOMEM;
	LIN_BWD(c, t, c->heads * c->v_dim, c->dim, ws + W.o, w + L.wo, dy, g.dout, false,
			dw + L.wo);
	int err = CORE_BWD(&s, ws + W.q, ws + W.k, ws + W.v, ws + W.o, g.dout, ws + W.lse, g.dq,
			   g.dk, g.dv);
	if (!err) {
		SFX(mla_scatter)(c, t, seq, g.dq, g.dk, g.dv, g.dkv, g.dkva);
		SFX(mla_kv_bwd)(c, t, w, dw, &L, x, ws, &W, g.dkv, g.dkva, dx, g.s1);
		SFX(mla_q_bwd)(c, t, w, dw, &L, x, ws, &W, g.dq, dx, g.s1, g.s2);
	}
	free(g.base);
	return err;
}

int SFX(mla_cache_from_ws)(const struct mla_config *c, int batch, int seq, const REAL *ws,
			   int cache_ctx, REAL *cache)
{
	struct mla_layout L;
	struct mla_ws W;
	if (!ws || !cache || cache_ctx < 1 || mla_prepare(c, batch, seq, &L, &W))
		return MB_ERR_ARG;
	int kvl = c->kv_lora_rank, dr = c->rope, n = seq < cache_ctx ? seq : cache_ctx;
	for (int b = 0; b < batch; b++)
		for (int p = 0; p < n; p++) {
			size_t r = (size_t)b * seq + p;
			REAL *row = cache + ((size_t)b * cache_ctx + p) * (kvl + dr);
			memcpy(row, ws + W.latn + r * kvl, (size_t)kvl * sizeof(REAL));
			memcpy(row + kvl, ws + W.krr + r * dr, (size_t)dr * sizeof(REAL));
		}
	return MB_OK;
}

/* mla_absorb_q writes the absorbed queries qa [B, H, kvl + dr]: q_nope W_uk^T per head
 * beside the (already rotated) q_rope. */
static void SFX(mla_absorb_q)(const struct mla_config *c, int batch, const REAL *w,
			      const struct mla_layout *L, const REAL *q, REAL *qa)
{
	int H = c->heads, dn = c->nope, dr = c->rope, kvl = c->kv_lora_rank, dqk = dn + dr;
	int ldw = H * (dn + c->v_dim), wd = kvl + dr;
	for (int h = 0; h < H; h++) {
		/* W_uk of head h is columns [h*(dn+dv), +dn) of W_kvb [kvl, H*(dn+dv)]. */
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, batch, kvl, dn, 1, q + (size_t)h * dqk,
		     H * dqk, w + L->wkv_b + (size_t)h * (dn + c->v_dim), ldw, 0,
		     qa + (size_t)h * wd, H * wd);
		for (int b = 0; b < batch; b++)
			memcpy(qa + ((size_t)b * H + h) * wd + kvl, q + ((size_t)b * H + h) * dqk + dn,
			       (size_t)dr * sizeof(REAL));
	}
}

/* mla_absorb_o takes the latent-space outputs ol [B, H, kvl] through W_uv per head
 * into o [B, H, dv]. */
static void SFX(mla_absorb_o)(const struct mla_config *c, int batch, const REAL *w,
			      const struct mla_layout *L, const REAL *ol, REAL *o)
{
	int H = c->heads, dn = c->nope, dv = c->v_dim, kvl = c->kv_lora_rank;
	for (int h = 0; h < H; h++)
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, dv, kvl, 1,
		     ol + (size_t)h * kvl, H * kvl, w + L->wkv_b + (size_t)h * (dn + dv) + dn,
		     H * (dn + dv), 0, o + (size_t)h * dv, H * dv);
}

/* mla_decode_append computes the new tokens' queries (rotated) into q and writes their
 * cache rows at position ctx - 1. scratch: [B, 2 max(q_lora, 1) + 2 (kvl + dr)]. */
static void SFX(mla_decode_append)(const struct mla_config *c, int batch, int ctx,
				   const REAL *w, const struct mla_layout *L, const REAL *x,
				   REAL *cache, REAL *q, REAL *scratch)
{
	int ql = c->q_lora_rank > 0 ? c->q_lora_rank : 1, kvl = c->kv_lora_rank, dr = c->rope;
	int H = c->heads, dqk = c->nope + dr, wd = kvl + dr;
	REAL *cq = scratch, *cqn = cq + (size_t)batch * ql, *kva = cqn + (size_t)batch * ql;
	REAL *latn = kva + (size_t)batch * wd, *krr = latn + (size_t)batch * kvl;
	SFX(mla_q_fwd)(c, batch, w, L, x, cq, cqn, q);
	SFX(mla_kv_fwd)(c, batch, 1, ctx - 1, w, L, x, kva, latn, NULL, krr);
	for (int b = 0; b < batch; b++) {
		REAL *row = cache + ((size_t)b * ctx + ctx - 1) * wd;
		memcpy(row, latn + (size_t)b * kvl, (size_t)kvl * sizeof(REAL));
		memcpy(row + kvl, krr + (size_t)b * dr, (size_t)dr * sizeof(REAL));
	}
	SFX(rope_rows)(q + c->nope, batch, 1, ctx - 1, H, (size_t)dqk, (size_t)H * dqk, dr,
		       c->rope_theta, false);
}

int SFX(mla_decode)(const struct mla_config *c, int batch, int ctx, const REAL *w,
		    const REAL *x, REAL *cache, REAL *y)
{
	struct mla_layout L;
	struct mla_ws W;
	if (!w || !x || !cache || !y || mla_prepare(c, batch, ctx, &L, &W))
		return MB_ERR_ARG;
	int H = c->heads, kvl = c->kv_lora_rank, wd = kvl + c->rope, dqk = c->nope + c->rope;
	int ql = c->q_lora_rank > 0 ? c->q_lora_rank : 1;
	size_t bh = (size_t)batch * H;
	size_t n = bh * dqk + bh * wd + bh * kvl + bh * c->v_dim + bh +
		   (size_t)batch * (2 * ql + wd + kvl + c->rope);
	REAL *q = malloc(n * sizeof(REAL));
	if (!q)
		return MB_ERR_NOMEM;
	REAL *qa = q + bh * dqk, *ol = qa + bh * wd, *o = ol + bh * kvl, *lse = o + bh * c->v_dim;
	SFX(mla_decode_append)(c, batch, ctx, w, &L, x, cache, q, lse + bh);
	SFX(mla_absorb_q)(c, batch, w, &L, q, qa);
	struct attn_decode_shape s = { batch, ctx, H, 1, wd, kvl, wd, wd, (float)(1.0 / sqrt(dqk)) };
	int err = CORE_DECODE(&s, qa, cache, cache, ol, lse);
	if (!err) {
		SFX(mla_absorb_o)(c, batch, w, &L, ol, o);
		LIN_FWD(c, batch, H * c->v_dim, c->dim, o, w + L.wo, y);
	}
	free(q);
	return err;
}
