/*
 * attention_blas.c - the attention core (attention.h) in FP32 on OpenBLAS SGEMM, for the
 * CPU training step: per (sequence, query head) the S x S scores are one SGEMM, the
 * softmax a pass over its rows, the output another SGEMM; the backward recomputes the
 * probabilities from the saved log-sum-exp (FlashAttention-2's equations, without the
 * tiling) with four SGEMMs. The causal mask is applied after a full S x S product (the
 * upper half is wasted, the GEMM's speed is not). Exponentials in float (expf), their
 * sums and D_i = dout_i . o_i accumulated in double. Same results as attention.c's reference to FP32 rounding
 * (tests/test_attention.c checks it).
 *
 * Serial over (sequence, head): the threads are OpenBLAS's, inside each SGEMM.
 * NOTE: an OpenMP loop around the SGEMMs nests OpenBLAS's own threads inside OpenMP's
 * and was 3-8x slower on two shared cores. The query heads of a group run one after
 * another, so dk and dv accumulate in a fixed order.
 */
#include "attention.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* Row strides and base offsets of one (sequence b, query head h, group g) slice. */
struct blas_slice {
	const float *q, *k, *v;
	int ldq, ldk, ldv, ldo;
	size_t oq, ok, ov, oo;
};

static struct blas_slice slice_of(const struct attn_shape *s, int b, int h)
{
	int S = s->seq, H = s->heads, G = s->kv_heads, g = h / (H / G);
	struct blas_slice sl = { NULL, NULL, NULL, H * s->d_qk, G * s->d_qk, G * s->d_v,
				 H * s->d_v, 0, 0, 0, 0 };
	sl.oq = (size_t)b * S * H * s->d_qk + (size_t)h * s->d_qk;
	sl.ok = (size_t)b * S * G * s->d_qk + (size_t)g * s->d_qk;
	sl.ov = (size_t)b * S * G * s->d_v + (size_t)g * s->d_v;
	sl.oo = (size_t)b * S * H * s->d_v + (size_t)h * s->d_v;
	return sl;
}

/* scores writes p [S, S] = scale * q k^T of a slice. */
static void scores(const struct attn_shape *s, const float *q, const float *k,
		   const struct blas_slice *sl, float *p)
{
	int S = s->seq;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, s->d_qk, s->scale, q + sl->oq,
		    sl->ldq, k + sl->ok, sl->ldk, 0, p, S);
}

/* fwd_head: probabilities (masked softmax rows), lse, o = p v for one head. */
static void fwd_head(const struct attn_shape *s, const float *q, const float *k,
		     const float *v, float *o, float *lse, int b, int h, float *p)
{
	int S = s->seq;
	struct blas_slice sl = slice_of(s, b, h);
	scores(s, q, k, &sl, p);
	for (int i = 0; i < S; i++) {
		float *r = p + (size_t)i * S;
		int n = s->causal ? i + 1 : S;
		float m = -INFINITY;
		double sum = 0;
		for (int j = 0; j < n; j++)
			m = r[j] > m ? r[j] : m;
		for (int j = 0; j < n; j++)
			sum += (r[j] = expf(r[j] - m));
		double l = m + log(sum);
		float inv = (float)(1.0 / sum);
		for (int j = 0; j < n; j++)
			r[j] *= inv;
		for (int j = n; j < S; j++)
			r[j] = 0.0f;
		lse[((size_t)b * s->heads + h) * S + i] = (float)l;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, s->d_v, S, 1, p, S, v + sl.ov,
		    sl.ldv, 0, o + sl.oo, sl.ldo);
}

int attn_fwd_blas(const struct attn_shape *s, const float *q, const float *k, const float *v,
		  float *o, float *lse)
{
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !lse)
		return MB_ERR_ARG;
	float *p = malloc((size_t)s->seq * s->seq * sizeof(*p));
	if (!p)
		return MB_ERR_NOMEM;
	for (int t = 0; t < s->batch * s->heads; t++)
		fwd_head(s, q, k, v, o, lse, t / s->heads, t % s->heads, p);
	free(p);
	return MB_OK;
}

/* The inputs of the backward, bundled. */
struct blas_bwd {
	const float *q, *k, *v, *o, *dout, *lse;
	float *dq, *dk, *dv;
};

/* bwd_head adds head h's part of dk and dv and writes its dq; p, dp: [S, S]. */
static void bwd_head(const struct attn_shape *s, const struct blas_bwd *a, int b, int h,
		     float *p, float *dp)
{
	int S = s->seq, dv = s->d_v;
	struct blas_slice sl = slice_of(s, b, h);
	scores(s, a->q, a->k, &sl, p);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, dv, 1, a->dout + sl.oo, sl.ldo,
		    a->v + sl.ov, sl.ldv, 0, dp, S);
	for (int i = 0; i < S; i++) {
		const float *oi = a->o + sl.oo + (size_t)i * sl.ldo;
		const float *gi = a->dout + sl.oo + (size_t)i * sl.ldo;
		float l = a->lse[((size_t)b * s->heads + h) * S + i], *r = p + (size_t)i * S;
		float *dr = dp + (size_t)i * S;
		int n = s->causal ? i + 1 : S;
		double d = 0;
		for (int c = 0; c < dv; c++)
			d += (double)gi[c] * oi[c];
		for (int j = 0; j < n; j++) {
			r[j] = expf(r[j] - l);
			dr[j] = (float)(r[j] * (dr[j] - d));
		}
		for (int j = n; j < S; j++)
			r[j] = dr[j] = 0.0f;
	}
	/* dv += p^T dout; dq = scale ds k; dk += scale ds^T q */
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, dv, S, 1, p, S, a->dout + sl.oo,
		    sl.ldo, 1, a->dv + sl.ov, sl.ldv);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, s->d_qk, S, s->scale, dp, S,
		    a->k + sl.ok, sl.ldk, 0, a->dq + sl.oq, sl.ldq);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, s->d_qk, S, s->scale, dp, S,
		    a->q + sl.oq, sl.ldq, 1, a->dk + sl.ok, sl.ldk);
}

/* zero_group clears sequence b's rows of group g in dk and dv. */
static void zero_group(const struct attn_shape *s, const struct blas_bwd *a, int b, int g)
{
	int S = s->seq, G = s->kv_heads;
	for (int i = 0; i < S; i++) {
		size_t row = (size_t)b * S + i;
		memset(a->dk + (row * G + g) * s->d_qk, 0, (size_t)s->d_qk * sizeof(float));
		memset(a->dv + (row * G + g) * s->d_v, 0, (size_t)s->d_v * sizeof(float));
	}
}

int attn_bwd_blas(const struct attn_shape *s, const float *q, const float *k, const float *v,
		  const float *o, const float *dout, const float *lse, float *dq, float *dk,
		  float *dv)
{
	struct blas_bwd a = { q, k, v, o, dout, lse, dq, dk, dv };
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !dout || !lse || !dq || !dk ||
	    !dv)
		return MB_ERR_ARG;
	int per = s->heads / s->kv_heads;
	float *p = malloc(2 * (size_t)s->seq * s->seq * sizeof(*p));
	if (!p)
		return MB_ERR_NOMEM;
	for (int t = 0; t < s->batch * s->kv_heads; t++) {
		int b = t / s->kv_heads, g = t % s->kv_heads;
		zero_group(s, &a, b, g);
		for (int h = g * per; h < (g + 1) * per; h++)
			bwd_head(s, &a, b, h, p, p + (size_t)s->seq * s->seq);
	}
	free(p);
	return MB_OK;
}
