/*
 * attention.c - the CPU reference of the attention core (see attention.h): causal or
 * full scaled-dot-product attention with d_qk != d_v, key/value heads shared by groups
 * of query heads (GQA), the log-sum-exp saved by the forward, and the backward that
 * recomputes the probabilities from it.
 *
 * Shapes: B batch, S sequence, H query heads, G = kv_heads key/value heads.
 * Everything is computed in double; the float entry points convert their inputs to
 * double, call the double ones and round the outputs once. The loops are the textbook
 * ones (no tiling): a reference to check GPU kernels and blocks against, and a
 * baseline a CPU benchmark can time.
 *
 *   forward   p_ij = exp(scale * q_i.k_j - lse_i), lse_i = log sum_j exp(scale q_i.k_j)
 *             o_i = sum_j p_ij v_j                      (j <= i when causal)
 *   backward  D_i = dout_i.o_i, ds_ij = p_ij (dout_i.v_j - D_i)
 *             dq_i = scale sum_j ds_ij k_j, dk_j = scale sum_i ds_ij q_i,
 *             dv_j = sum_i p_ij dout_i
 * (FlashAttention-2, Dao 2023, Algorithm 2, without the tiling.)
 *
 * OpenMP: the forward and decode over (batch, query head); the backward over (batch,
 * key/value head), so every dk/dv row has one writer and results do not depend on the
 * thread count.
 */
#include "attention.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

int attn_shape_check(const struct attn_shape *s, char *why, size_t why_len)
{
	const char *msg = NULL;
	char buf[160];
	if (!s)
		msg = "no shape";
	else if (s->batch < 1 || s->seq < 1 || s->heads < 1 || s->kv_heads < 1 || s->d_qk < 1 ||
		 s->d_v < 1)
		msg = "batch, seq, heads, kv_heads, d_qk and d_v must all be >= 1";
	else if (s->heads % s->kv_heads) {
		snprintf(buf, sizeof(buf), "kv_heads %d does not divide heads %d", s->kv_heads,
			 s->heads);
		msg = buf;
	} else if (!isfinite(s->scale))
		msg = "scale is not finite";
	if (msg && why && why_len)
		snprintf(why, why_len, "%s", msg);
	return msg ? MB_ERR_ARG : MB_OK;
}

/* decode_shape_ok checks a decode shape: sizes >= 1, groups dividing heads, rows at
 * least as wide as the parts read. */
static bool decode_shape_ok(const struct attn_decode_shape *s)
{
	return s && s->batch >= 1 && s->ctx >= 1 && s->heads >= 1 && s->kv_heads >= 1 &&
	       s->d_qk >= 1 && s->d_v >= 1 && s->heads % s->kv_heads == 0 &&
	       s->k_stride >= s->d_qk && s->v_stride >= s->d_v && isfinite(s->scale);
}

/* work tells whether a pass of b x h x rows x cols scores of width d is worth more
 * than one thread. NOTE: tiny calls (finite-difference checks make thousands) would
 * otherwise pay a parallel region each, and far more on a loaded machine. */
static bool work(int b, int h, int rows, int cols, int d)
{
	return (double)b * h * rows * cols * d > 1e5;
}

/* dot returns sum x[c] * y[c] over n. */
static double dot(const double *x, const double *y, int n)
{
	double acc = 0.0;
	for (int c = 0; c < n; c++)
		acc += x[c] * y[c];
	return acc;
}

/* softmax_row turns the n scaled scores in p into probabilities (in place) and returns
 * their log-sum-exp. NOTE: the maximum is subtracted first so exp never overflows. */
static double softmax_row(double *p, int n)
{
	double m = -INFINITY, sum = 0.0;
	for (int j = 0; j < n; j++)
		m = p[j] > m ? p[j] : m;
	for (int j = 0; j < n; j++) {
		p[j] = exp(p[j] - m);
		sum += p[j];
	}
	for (int j = 0; j < n; j++)
		p[j] /= sum;
	return m + log(sum);
}

/* fwd_head computes the outputs and log-sum-exps of query head h of sequence b; p is
 * scratch for one row of scores (seq). */
static void fwd_head(const struct attn_shape *s, const double *q, const double *k,
		     const double *v, double *o, double *lse, int b, int h, double *p)
{
	int S = s->seq, H = s->heads, G = s->kv_heads, dqk = s->d_qk, dv = s->d_v;
	int g = h / (H / G);
	for (int i = 0; i < S; i++) {
		const double *qi = q + ((size_t)b * S + i) * H * dqk + (size_t)h * dqk;
		double *oi = o + ((size_t)b * S + i) * H * dv + (size_t)h * dv;
		int n = s->causal ? i + 1 : S;
		for (int j = 0; j < n; j++)
			p[j] = s->scale * dot(qi, k + ((size_t)b * S + j) * G * dqk +
						      (size_t)g * dqk, dqk);
		lse[((size_t)b * H + h) * S + i] = softmax_row(p, n);
		memset(oi, 0, (size_t)dv * sizeof(*oi));
		for (int j = 0; j < n; j++) {
			const double *vj = v + ((size_t)b * S + j) * G * dv + (size_t)g * dv;
			for (int c = 0; c < dv; c++)
				oi[c] += p[j] * vj[c];
		}
	}
}

int attn_fwd_cpu_f64(const struct attn_shape *s, const double *q, const double *k,
		     const double *v, double *o, double *lse)
{
	int nomem = 0;
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !lse)
		return MB_ERR_ARG;
	int tasks = s->batch * s->heads;
	bool par = work(s->batch, s->heads, s->seq, s->seq, s->d_qk + s->d_v);
#pragma omp parallel reduction(| : nomem) if (par)
	{
		double *p = malloc((size_t)s->seq * sizeof(*p));
		nomem = !p;
#pragma omp for schedule(dynamic)
		for (int t = 0; t < tasks; t++)
			if (p)
				fwd_head(s, q, k, v, o, lse, t / s->heads, t % s->heads, p);
		free(p);
	}
	return nomem ? MB_ERR_NOMEM : MB_OK;
}

/* axpy adds a * x to y over n. */
static void axpy(double a, const double *x, double *y, int n)
{
	for (int c = 0; c < n; c++)
		y[c] += a * x[c];
}

/* bwd_query adds query row i of head h (sequence b) to the gradients: its dq row in
 * full, and its share of the dk, dv rows of group g. */
static void bwd_query(const struct attn_shape *s, const double *q, const double *k,
		      const double *v, const double *o, const double *dout, const double *lse,
		      double *dq, double *dk, double *dv, int b, int h, int i)
{
	int S = s->seq, H = s->heads, G = s->kv_heads, dqk = s->d_qk, dvd = s->d_v;
	int g = h / (H / G), n = s->causal ? i + 1 : S;
	size_t qrow = ((size_t)b * S + i) * H + (size_t)h;
	const double *qi = q + qrow * dqk, *doi = dout + qrow * dvd;
	double *dqi = dq + qrow * dqk;
	double D = dot(doi, o + qrow * dvd, dvd), l = lse[((size_t)b * H + h) * S + i];
	memset(dqi, 0, (size_t)dqk * sizeof(*dqi));
	for (int j = 0; j < n; j++) {
		size_t krow = ((size_t)b * S + j) * G + (size_t)g;
		const double *kj = k + krow * dqk, *vj = v + krow * dvd;
		double p = exp(s->scale * dot(qi, kj, dqk) - l);
		double ds = p * (dot(doi, vj, dvd) - D);
		axpy(p, doi, dv + krow * dvd, dvd);
		axpy(s->scale * ds, qi, dk + krow * dqk, dqk);
		axpy(s->scale * ds, kj, dqi, dqk);
	}
}

/* bwd_group computes dk, dv of key/value head g of sequence b and dq of the query
 * heads that read it. */
static void bwd_group(const struct attn_shape *s, const double *q, const double *k,
		      const double *v, const double *o, const double *dout, const double *lse,
		      double *dq, double *dk, double *dv, int b, int g)
{
	int S = s->seq, G = s->kv_heads, per = s->heads / G;
	for (int j = 0; j < S; j++) {
		size_t krow = ((size_t)b * S + j) * G + (size_t)g;
		memset(dk + krow * s->d_qk, 0, (size_t)s->d_qk * sizeof(*dk));
		memset(dv + krow * s->d_v, 0, (size_t)s->d_v * sizeof(*dv));
	}
	for (int h = g * per; h < (g + 1) * per; h++)
		for (int i = 0; i < S; i++)
			bwd_query(s, q, k, v, o, dout, lse, dq, dk, dv, b, h, i);
}

int attn_bwd_cpu_f64(const struct attn_shape *s, const double *q, const double *k,
		     const double *v, const double *o, const double *dout, const double *lse,
		     double *dq, double *dk, double *dv)
{
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !dout || !lse || !dq ||
	    !dk || !dv)
		return MB_ERR_ARG;
	int tasks = s->batch * s->kv_heads;
	bool par = work(s->batch, s->heads, s->seq, s->seq, s->d_qk + s->d_v);
#pragma omp parallel for schedule(dynamic) if (par)
	for (int t = 0; t < tasks; t++)
		bwd_group(s, q, k, v, o, dout, lse, dq, dk, dv, t / s->kv_heads, t % s->kv_heads);
	return MB_OK;
}

/* decode_head computes the output of query head h of sequence b against the cache;
 * p is scratch for ctx scores. */
static void decode_head(const struct attn_decode_shape *s, const double *q, const double *k,
			const double *v, double *o, double *lse, int b, int h, double *p)
{
	int H = s->heads, G = s->kv_heads, g = h / (H / G), n = s->ctx;
	const double *qh = q + ((size_t)b * H + h) * s->d_qk;
	double *oh = o + ((size_t)b * H + h) * s->d_v;
	for (int j = 0; j < n; j++)
		p[j] = s->scale * dot(qh, k + (((size_t)b * n + j) * G + g) * s->k_stride, s->d_qk);
	lse[(size_t)b * H + h] = softmax_row(p, n);
	memset(oh, 0, (size_t)s->d_v * sizeof(*oh));
	for (int j = 0; j < n; j++)
		axpy(p[j], v + (((size_t)b * n + j) * G + g) * s->v_stride, oh, s->d_v);
}

int attn_decode_cpu_f64(const struct attn_decode_shape *s, const double *q, const double *k,
			const double *v, double *o, double *lse)
{
	int nomem = 0;
	if (!decode_shape_ok(s) || !q || !k || !v || !o || !lse)
		return MB_ERR_ARG;
	int tasks = s->batch * s->heads;
	bool par = work(s->batch, s->heads, 1, s->ctx, s->d_qk + s->d_v);
#pragma omp parallel reduction(| : nomem) if (par)
	{
		double *p = malloc((size_t)s->ctx * sizeof(*p));
		nomem = !p;
#pragma omp for schedule(static)
		for (int t = 0; t < tasks; t++)
			if (p)
				decode_head(s, q, k, v, o, lse, t / s->heads, t % s->heads, p);
		free(p);
	}
	return nomem ? MB_ERR_NOMEM : MB_OK;
}

/* ---- float entry points: widen, compute in double, round once ---- */

/* widen returns a new double copy of x[n], or NULL. */
static double *widen(const float *x, size_t n)
{
	double *y = malloc((n ? n : 1) * sizeof(*y));
	for (size_t i = 0; y && i < n; i++)
		y[i] = x[i];
	return y;
}

/* narrow rounds x[n] into y. */
static void narrow(const double *x, float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = (float)x[i];
}

/* Element counts of one shape's tensors. */
struct attn_sizes {
	size_t q, k, v, o, lse;
};

/* sizes_of counts the elements of q, k, v, o and lse. */
static struct attn_sizes sizes_of(const struct attn_shape *s)
{
	size_t t = (size_t)s->batch * (size_t)s->seq;
	return (struct attn_sizes){ t * s->heads * s->d_qk, t * s->kv_heads * s->d_qk,
				    t * s->kv_heads * s->d_v, t * s->heads * s->d_v,
				    t * s->heads };
}

int attn_fwd_cpu(const struct attn_shape *s, const float *q, const float *k, const float *v,
		 float *o, float *lse)
{
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !lse)
		return MB_ERR_ARG;
	struct attn_sizes n = sizes_of(s);
	double *q8 = widen(q, n.q), *k8 = widen(k, n.k), *v8 = widen(v, n.v);
	double *o8 = malloc(n.o * sizeof(*o8)), *l8 = malloc(n.lse * sizeof(*l8));
	int err = q8 && k8 && v8 && o8 && l8 ? attn_fwd_cpu_f64(s, q8, k8, v8, o8, l8)
					    : MB_ERR_NOMEM;
	if (!err) {
		narrow(o8, o, n.o);
		narrow(l8, lse, n.lse);
	}
	free(q8), free(k8), free(v8), free(o8), free(l8);
	return err;
}

/* bwd_widened runs the double backward on widened copies of the float inputs and
 * rounds the gradients into dq, dk, dv. */
static int bwd_widened(const struct attn_shape *s, const float *const in[6], float *dq,
		       float *dk, float *dv)
{
	struct attn_sizes n = sizes_of(s);
	size_t len[6] = { n.q, n.k, n.v, n.o, n.o, n.lse };
	double *w[6] = { 0 }, *g[3];
	int err = MB_OK;
	for (int i = 0; i < 6 && !err; i++)
		err = (w[i] = widen(in[i], len[i])) ? MB_OK : MB_ERR_NOMEM;
	g[0] = malloc(n.q * sizeof(double));
	g[1] = malloc(n.k * sizeof(double));
	g[2] = malloc(n.v * sizeof(double));
	if (!err && (!g[0] || !g[1] || !g[2]))
		err = MB_ERR_NOMEM;
	if (!err)
		err = attn_bwd_cpu_f64(s, w[0], w[1], w[2], w[3], w[4], w[5], g[0], g[1], g[2]);
	if (!err) {
		narrow(g[0], dq, n.q);
		narrow(g[1], dk, n.k);
		narrow(g[2], dv, n.v);
	}
	for (int i = 0; i < 6; i++)
		free(w[i]);
	free(g[0]), free(g[1]), free(g[2]);
	return err;
}

int attn_bwd_cpu(const struct attn_shape *s, const float *q, const float *k, const float *v,
		 const float *o, const float *dout, const float *lse, float *dq, float *dk,
		 float *dv)
{
	if (attn_shape_check(s, NULL, 0) || !q || !k || !v || !o || !dout || !lse || !dq ||
	    !dk || !dv)
		return MB_ERR_ARG;
	const float *in[6] = { q, k, v, o, dout, lse };
	return bwd_widened(s, in, dq, dk, dv);
}

int attn_decode_cpu(const struct attn_decode_shape *s, const float *q, const float *k,
		    const float *v, float *o, float *lse)
{
	if (!decode_shape_ok(s) || !q || !k || !v || !o || !lse)
		return MB_ERR_ARG;
	size_t rows = (size_t)s->batch * s->ctx * s->kv_heads, nq = (size_t)s->batch * s->heads;
	/* NOTE: MLA's absorbed decode passes v == k (the latent is key and value): widen
	 * the cache once. Only when the value rows lie within the widened key rows: a
	 * wider v_stride would read past them. */
	double *k8 = widen(k, rows * s->k_stride);
	double *v8 = v == k && s->v_stride <= s->k_stride ? k8 : widen(v, rows * s->v_stride);
	double *q8 = widen(q, nq * s->d_qk), *o8 = malloc(nq * s->d_v * sizeof(*o8));
	double *l8 = malloc(nq * sizeof(*l8));
	int err = k8 && v8 && q8 && o8 && l8 ? attn_decode_cpu_f64(s, q8, k8, v8, o8, l8)
					    : MB_ERR_NOMEM;
	if (!err) {
		narrow(o8, o, nq * s->d_v);
		narrow(l8, lse, nq);
	}
	if (v8 != k8)
		free(v8);
	free(k8), free(q8), free(o8), free(l8);
	return err;
}
