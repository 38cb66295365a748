/*
 * attention_blas.c - the attention core (attention.h) in FP32 on OpenBLAS SGEMM, for the
 * CPU training step. Per (sequence, query head), in blocks of ATTN_ROWS query rows: the
 * block's scores against the keys it may see (all S, or 0..last row when causal) are one
 * SGEMM, the softmax a pass over its rows, the output another SGEMM; the backward
 * recomputes the probabilities from the saved log-sum-exp (FlashAttention-2's equations,
 * tiled along the queries only) with five SGEMMs per block. NOTE: the row blocks skip the
 * causal mask's upper blocks: at S = 256 and 64 rows a block, 10 of 16 score tiles are
 * computed instead of all 16. Exponentials in float (exp_poly.h, within ~2 ulp of
 * expf), their sums and D_i = dout_i . o_i accumulated in double. Same results as attention.c's reference to
 * FP32 rounding (tests/test_attention_blas.c checks it).
 *
 * Threads: the (sequence, head) tasks of the forward and the (sequence, key/value head)
 * tasks of the backward run side by side on a par_team.h team, as many threads as
 * OpenBLAS has, each SGEMM on one thread. NOTE: one head's GEMMs are small (64 x 256 x
 * 48 in v3-tiny): split over two threads they mostly wait; and a parallel loop around
 * SGEMMs that keep OpenBLAS's own threads nests two teams on the cores (3-8x slower,
 * measured), hence openblas_set_num_threads(1) for the loop (par_team.h says why not
 * OpenMP). Every output row has one writer, the query heads of a group run one after
 * another and the row blocks in order, so results do not depend on the thread count.
 */
#include "attention.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exp_poly.h"
#include "par_team.h"
#include "status.h"

/* Query rows per block: big enough for SGEMM's kernels, small enough to skip most of
 * the causal mask's zeros. */
#define ATTN_ROWS 64

/* Row strides and base offsets of one (sequence b, query head h, group g) slice. */
struct blas_slice {
	int ldq, ldk, ldv, ldo;
	size_t oq, ok, ov, oo, ol;
};

static struct blas_slice slice_of(const struct attn_shape *s, int b, int h)
{
	int S = s->seq, H = s->heads, G = s->kv_heads, g = h / (H / G);
	struct blas_slice sl = { H * s->d_qk, G * s->d_qk, G * s->d_v, H * s->d_v, 0, 0, 0, 0, 0 };
	sl.oq = (size_t)b * S * H * s->d_qk + (size_t)h * s->d_qk;
	sl.ok = (size_t)b * S * G * s->d_qk + (size_t)g * s->d_qk;
	sl.ov = (size_t)b * S * G * s->d_v + (size_t)g * s->d_v;
	sl.oo = (size_t)b * S * H * s->d_v + (size_t)h * s->d_v;
	sl.ol = ((size_t)b * H + h) * S;
	return sl;
}

/* keys returns how many keys rows [0, i1) of a block see: i1 when causal, else S. */
static int keys(const struct attn_shape *s, int i1)
{
	return s->causal ? i1 : s->seq;
}

/* sum_d returns the sum of x[n] in double, four running sums (a fixed order). */
static double sum_d(const float *x, int n)
{
	double s[4] = { 0, 0, 0, 0 };
	int j = 0;
	for (; j + 4 <= n; j += 4)
		for (int u = 0; u < 4; u++)
			s[u] += x[j + u];
	for (; j < n; j++)
		s[0] += x[j];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

/* scores writes p [m, n] = scale * q k^T of query rows i0.. of a slice against keys 0..n. */
static void scores(const struct attn_shape *s, const float *q, const float *k,
		   const struct blas_slice *sl, int i0, int m, int n, float *p)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, s->d_qk, s->scale,
		    q + sl->oq + (size_t)i0 * sl->ldq, sl->ldq, k + sl->ok, sl->ldk, 0, p, n);
}

/* softmax_rows turns the block's scores (rows i0.., n columns) into masked
 * probabilities in place and writes their lse. */
static void softmax_rows(const struct attn_shape *s, int i0, int m, int n, float *p, float *lse)
{
	for (int r = 0; r < m; r++) {
		float *row = p + (size_t)r * n;
		int i = i0 + r, len = s->causal ? i + 1 : n;
		float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
		for (int j = 0; j < len; j++)
			mx = row[j] > mx ? row[j] : mx;
#pragma omp simd
		for (int j = 0; j < len; j++)
			row[j] = exp_poly_f(row[j] - mx);
		double sum = sum_d(row, len);
		float inv = (float)(1.0 / sum);
#pragma omp simd
		for (int j = 0; j < len; j++)
			row[j] *= inv;
		for (int j = len; j < n; j++)
			row[j] = 0.0f;
		lse[i] = (float)(mx + log(sum));
	}
}

/* fwd_head: probabilities, lse, o = p v for one head, a row block at a time; p holds
 * ATTN_ROWS x S. */
static void fwd_head(const struct attn_shape *s, const float *q, const float *k,
		     const float *v, float *o, float *lse, int b, int h, float *p)
{
	struct blas_slice sl = slice_of(s, b, h);
	for (int i0 = 0; i0 < s->seq; i0 += ATTN_ROWS) {
		int m = s->seq - i0 < ATTN_ROWS ? s->seq - i0 : ATTN_ROWS, n = keys(s, i0 + m);
		scores(s, q, k, &sl, i0, m, n, p);
		softmax_rows(s, i0, m, n, p, lse + sl.ol);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, s->d_v, n, 1, p, n,
			    v + sl.ov, sl.ldv, 0, o + sl.oo + (size_t)i0 * sl.ldo, sl.ldo);
	}
}

/* team_begin returns the threads the (sequence, head) loop gets, OpenBLAS's count, and
 * leaves OpenBLAS one thread for the loop; team_end gives them back. */
static int team_begin(void)
{
	int n = openblas_get_num_threads();
	if (n > 1)
		openblas_set_num_threads(1);
	return n;
}

static void team_end(int n)
{
	if (n > 1)
		openblas_set_num_threads(n);
}

/* The forward's inputs and outputs, bundled for its tasks. */
struct blas_fwd {
	const struct attn_shape *s;
	const float *q, *k, *v;
	float *o, *lse;
};

/* fwd_task is task t = (sequence, head) of the forward; p: its thread's scratch. */
static void fwd_task(void *ctx, long t, void *p)
{
	const struct blas_fwd *f = ctx;
	int H = f->s->heads;
	fwd_head(f->s, f->q, f->k, f->v, f->o, f->lse, (int)(t / H), (int)(t % H), p);
}

int attn_fwd_blas(const struct attn_shape *s, const float *q, const float *k, const float *v,
		  float *o, float *lse)
{
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !lse)
		return MB_ERR_ARG;
	struct blas_fwd f = { s, q, k, v, o, lse };
	size_t rows = s->seq < ATTN_ROWS ? (size_t)s->seq : ATTN_ROWS;
	int n = team_begin();
	int err = par_for(n, (long)s->batch * s->heads, fwd_task, &f,
			  rows * s->seq * sizeof(float));
	team_end(n);
	return err;
}

/* The inputs of the backward, bundled. */
struct blas_bwd {
	const struct attn_shape *s;
	const float *q, *k, *v, *o, *dout, *lse;
	float *dq, *dk, *dv;
};

/* ds_rows turns a block's scores p and dout.v^T dp (rows i0.., n columns) into the
 * probabilities and ds = p (dp - D) in place, zero past the causal diagonal. */
static void ds_rows(const struct attn_shape *s, const struct blas_bwd *a,
		    const struct blas_slice *sl, int i0, int m, int n, float *p, float *dp)
{
	for (int r = 0; r < m; r++) {
		int i = i0 + r, len = s->causal ? i + 1 : n;
		const float *oi = a->o + sl->oo + (size_t)i * sl->ldo;
		const float *gi = a->dout + sl->oo + (size_t)i * sl->ldo;
		float l = a->lse[sl->ol + i], *pr = p + (size_t)r * n, *dr = dp + (size_t)r * n;
		double d = 0;
		for (int c = 0; c < s->d_v; c++)
			d += (double)gi[c] * oi[c];
#pragma omp simd
		for (int j = 0; j < len; j++) {
			pr[j] = exp_poly_f(pr[j] - l);
			dr[j] = (float)(pr[j] * (dr[j] - d));
		}
		for (int j = len; j < n; j++)
			pr[j] = dr[j] = 0.0f;
	}
}

/* bwd_block adds query rows i0..i0+m of head h to dk and dv of keys 0..n and writes
 * their dq; p, dp: [m, n]. */
static void bwd_block(const struct attn_shape *s, const struct blas_bwd *a,
		      const struct blas_slice *sl, int i0, int m, int n, float *p, float *dp)
{
	size_t oq = sl->oq + (size_t)i0 * sl->ldq, oo = sl->oo + (size_t)i0 * sl->ldo;
	scores(s, a->q, a->k, sl, i0, m, n, p);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, s->d_v, 1, a->dout + oo,
		    sl->ldo, a->v + sl->ov, sl->ldv, 0, dp, n);
	ds_rows(s, a, sl, i0, m, n, p, dp);
	/* dv += p^T dout; dq = scale ds k; dk += scale ds^T q */
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, s->d_v, m, 1, p, n, a->dout + oo,
		    sl->ldo, 1, a->dv + sl->ov, sl->ldv);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, s->d_qk, n, s->scale, dp, n,
		    a->k + sl->ok, sl->ldk, 0, a->dq + oq, sl->ldq);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, s->d_qk, m, s->scale, dp, n,
		    a->q + oq, sl->ldq, 1, a->dk + sl->ok, sl->ldk);
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

/* bwd_group computes dk, dv of group g of sequence b and dq of its query heads, the
 * heads and their row blocks in order; p holds 2 x ATTN_ROWS x S. */
static void bwd_group(const struct attn_shape *s, const struct blas_bwd *a, int b, int g,
		      float *p)
{
	int per = s->heads / s->kv_heads;
	zero_group(s, a, b, g);
	for (int h = g * per; h < (g + 1) * per; h++) {
		struct blas_slice sl = slice_of(s, b, h);
		for (int i0 = 0; i0 < s->seq; i0 += ATTN_ROWS) {
			int m = s->seq - i0 < ATTN_ROWS ? s->seq - i0 : ATTN_ROWS;
			int n = keys(s, i0 + m);
			bwd_block(s, a, &sl, i0, m, n, p, p + (size_t)m * n);
		}
	}
}

/* bwd_task is task t = (sequence, key/value head) of the backward. */
static void bwd_task(void *ctx, long t, void *p)
{
	const struct blas_bwd *a = ctx;
	int G = a->s->kv_heads;
	bwd_group(a->s, a, (int)(t / G), (int)(t % G), p);
}

int attn_bwd_blas(const struct attn_shape *s, const float *q, const float *k, const float *v,
		  const float *o, const float *dout, const float *lse, float *dq, float *dk,
		  float *dv)
{
	struct blas_bwd a = { s, q, k, v, o, dout, lse, dq, dk, dv };
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !dout || !lse || !dq || !dk ||
	    !dv)
		return MB_ERR_ARG;
	size_t rows = s->seq < ATTN_ROWS ? (size_t)s->seq : ATTN_ROWS;
	int n = team_begin();
	int err = par_for(n, (long)s->batch * s->kv_heads, bwd_task, &a,
			  2 * rows * s->seq * sizeof(float));
	team_end(n);
	return err;
}
