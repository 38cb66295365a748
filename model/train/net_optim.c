/*
 * net_optim.c - training rules of the trainable model (net.h): AdamW with FP32 master
 * weights (DeepSeek-V3 4.2: beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1), global
 * gradient-norm clipping, warm-up then cosine learning rate, and the auxiliary-loss-free
 * routing-bias update (DeepSeek-V3 2.1.2, through kernels/moe route_bias_update).
 */
#include "net.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "par_team.h"
#include "route.h"

void net_adamw_default(struct net_adamw *a)
{
	a->lr = 3e-3;
	a->beta1 = 0.9;
	a->beta2 = 0.95;
	a->eps = 1e-8;
	a->weight_decay = 0.1;
	a->clip = 1.0;
}

/* sumsq_span returns the sum of squares of x[n] in double: four running sums over
 * x[j], j mod 4 fixed, added in a fixed order. NOTE: one running sum was a chain of n
 * dependent additions (~4 cycles each, 5M elements at v3-tiny); four keep the order
 * independent of threads and of where a span starts. */
static double sumsq_span(const float *x, size_t n)
{
	double s[4] = { 0, 0, 0, 0 };
	size_t j = 0;
	for (; j + 4 <= n; j += 4)
		for (int u = 0; u < 4; u++)
			s[u] += (double)x[j + u] * x[j + u];
	for (; j < n; j++)
		s[0] += (double)x[j] * x[j];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

double net_grad_sumsq_range(const struct net_layout *L, const float *g, size_t lo, size_t hi)
{
	double ss = 0;
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		size_t a = t->off > lo ? t->off : lo, e = t->off + (size_t)(t->rows * t->cols);
		e = e < hi ? e : hi;
		bool sliced = t->rows != t->full_rows || t->cols != t->full_cols;
		if (!t->trainable || (L->part.tp_rank != 0 && !sliced) || a >= e)
			continue;
		ss += sumsq_span(g + a, e - a);
	}
	return ss;
}

/* One element-wise pass over n floats, bundled for its chunks (net_vec_pass). */
struct vec_run {
	enum net_vec_op op;
	float *y;
	const float *x;
	float s;
	size_t n;
};

#define VEC_CHUNK ((size_t)1 << 16)

static void vec_chunk(void *ctx, long c, void *scratch)
{
	const struct vec_run *r = ctx;
	size_t lo = (size_t)c * VEC_CHUNK, hi = lo + VEC_CHUNK < r->n ? lo + VEC_CHUNK : r->n;
	float *restrict y = r->y + lo;
	const float *restrict x = r->x + lo;
	(void)scratch;
	if (r->op == NET_VEC_COPY) {
		memcpy(y, x, (hi - lo) * sizeof(float));
	} else if (r->op == NET_VEC_ADD) {
		for (size_t j = 0; j < hi - lo; j++)
			y[j] += x[j];
	} else {
		for (size_t j = 0; j < hi - lo; j++)
			y[j] = x[j] * r->s;
	}
}

void net_vec_pass(enum net_vec_op op, float *y, const float *x, float s, size_t n)
{
	struct vec_run r = { op, y, x, s, n };
	/* NOTE: element by element, so the threads change no bit; par_for cannot fail
	 * without scratch */
	(void)par_for(openblas_get_num_threads(), (long)((n + VEC_CHUNK - 1) / VEC_CHUNK),
		      vec_chunk, &r, 0);
}

double net_grad_norm(const struct net_layout *L, const float *g)
{
	return sqrt(net_grad_sumsq_range(L, g, 0, L->total));
}

/* One tensor's AdamW constants, in float as the update runs. */
struct adamw_k {
	float b1, b2, eps, lr, sc, ic1, ic2, wd;
};

/* adamw_span updates n elements: gradient scaled by the clipping factor (in place),
 * moments, weight. NOTE: restrict and no early exit let the compiler vectorise it
 * (net_optim.c builds with -fno-math-errno so sqrtf needs no call; the moment v is
 * never negative, so errno was never set anyway); element by element, the same float
 * operations in the same order as one element at a time. */
static void adamw_span(const struct adamw_k *k, size_t n, float *restrict w, float *restrict g,
		       float *restrict m, float *restrict v)
{
	float b1 = k->b1, b2 = k->b2, eps = k->eps, lr = k->lr, sc = k->sc, ic1 = k->ic1;
	float ic2 = k->ic2, wd = k->wd;
	for (size_t j = 0; j < n; j++) {
		float gj = g[j] * sc;
		g[j] = gj;
		m[j] = b1 * m[j] + (1.0f - b1) * gj;
		v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
		w[j] -= lr * (m[j] * ic1 / (sqrtf(v[j] * ic2) + eps) + wd * w[j]);
	}
}

/* One AdamW update of elements [lo, hi), bundled for its chunks (par_team.h tasks). */
struct adamw_run {
	const struct net_layout *L;
	const struct net_adamw *a;
	double scale, c1, c2;
	size_t lo, hi;
	float *w, *g, *m, *v;
};

/* Elements per chunk: large enough that a chunk costs far more than taking it. */
#define ADAMW_CHUNK ((size_t)1 << 15)

/* adamw_chunk updates chunk c of a run: the part of every trainable tensor within it,
 * decoupled weight decay (AdamW, Loshchilov & Hutter) on matrices only, bias-corrected
 * moments, the moments indexed from element lo. NOTE: float arithmetic, one pass, as
 * fused optimizers do; the moments and weights are FP32 either way. Every element is
 * updated alone, so the chunks' order and threads change no bit. */
static void adamw_chunk(void *ctx, long c, void *scratch)
{
	const struct adamw_run *r = ctx;
	const struct net_adamw *a = r->a;
	size_t lo = r->lo + (size_t)c * ADAMW_CHUNK, hi = lo + ADAMW_CHUNK;
	hi = hi < r->hi ? hi : r->hi;
	(void)scratch;
	for (int i = 0; i < r->L->n; i++) {
		const struct net_tensor *t = &r->L->t[i];
		size_t s = t->off > lo ? t->off : lo, e = t->off + (size_t)(t->rows * t->cols);
		e = e < hi ? e : hi;
		if (!t->trainable || s >= e)
			continue;
		const struct adamw_k k = { (float)a->beta1, (float)a->beta2, (float)a->eps,
					   (float)a->lr, (float)r->scale, (float)(1.0 / r->c1),
					   (float)(1.0 / r->c2),
					   t->decay ? (float)a->weight_decay : 0.0f };
		adamw_span(&k, e - s, r->w + s, r->g + s, r->m + (s - r->lo), r->v + (s - r->lo));
	}
}

void net_adamw_range(const struct net_layout *L, const struct net_adamw *a, long t,
		     double scale, size_t lo, size_t hi, float *w, float *g, float *m, float *v)
{
	double c1 = 1.0 - pow(a->beta1, (double)t), c2 = 1.0 - pow(a->beta2, (double)t);
	struct adamw_run r = { L, a, scale, c1, c2, lo, hi, w, g, m, v };
	long chunks = hi > lo ? (long)((hi - lo + ADAMW_CHUNK - 1) / ADAMW_CHUNK) : 0;
	/* NOTE: the chunks on as many threads as OpenBLAS has (the step's thread count);
	 * par_for cannot fail without scratch */
	(void)par_for(openblas_get_num_threads(), chunks, adamw_chunk, &r, 0);
}

double net_clip_scale(const struct net_adamw *a, double norm)
{
	return (a->clip > 0 && norm > a->clip) ? a->clip / norm : 1.0;
}

double net_adamw_step(const struct net_layout *L, const struct net_adamw *a, long t,
		      float *w, float *g, float *m, float *v)
{
	double norm = net_grad_norm(L, g);
	net_adamw_range(L, a, t, net_clip_scale(a, norm), 0, L->total, w, g, m, v);
	return norm;
}

double net_lr_at(long step, long warmup, long steps, double lr, double min_lr)
{
	if (warmup > 0 && step < warmup)
		return lr * (double)(step + 1) / (double)warmup;
	if (steps <= warmup)
		return lr;
	double p = (double)(step - warmup) / (double)(steps - warmup);
	p = p > 1 ? 1 : p;
	return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(3.14159265358979323846 * p));
}

void net_bias_update(const struct net_layout *L, float *w, const long *const *load,
		     double gamma)
{
	for (int i = 0; i < L->blocks && L->cfg.expert_bias; i++) {
		const struct net_block *b = &L->blk[i];
		if (!b->moe || !b->held || !load[i])
			continue;
		route_bias_update(w + L->t[b->router_bias].off, load[i],
				  (int)L->cfg.routed_experts, (float)gamma);
	}
}
