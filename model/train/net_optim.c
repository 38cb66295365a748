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

double net_grad_sumsq_range(const struct net_layout *L, const float *g, size_t lo, size_t hi)
{
	double ss = 0;
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		size_t a = t->off > lo ? t->off : lo, e = t->off + (size_t)(t->rows * t->cols);
		e = e < hi ? e : hi;
		bool sliced = t->rows != t->full_rows || t->cols != t->full_cols;
		if (!t->trainable || (L->part.tp_rank != 0 && !sliced))
			continue;
		for (size_t j = a; j < e; j++)
			ss += (double)g[j] * g[j];
	}
	return ss;
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

/* adamw_tensor scales one tensor's gradient by the clipping factor (in place) and
 * updates it: decoupled weight decay (AdamW, Loshchilov & Hutter) on matrices only,
 * bias-corrected moments; elements [lo, hi), the moments indexed from element base.
 * NOTE: float arithmetic, one pass, as fused optimizers do; the moments and weights are
 * FP32 either way. Large tensors are cut into chunks run on as many threads as OpenBLAS
 * has: every element is updated alone, so the thread count changes no bit. */
static void adamw_tensor(const struct net_tensor *t, const struct net_adamw *a, double scale,
			 double c1, double c2, size_t lo, size_t hi, size_t base, float *w,
			 float *g, float *m, float *v)
{
	const struct adamw_k k = { (float)a->beta1, (float)a->beta2, (float)a->eps,
				   (float)a->lr, (float)scale, (float)(1.0 / c1), (float)(1.0 / c2),
				   t->decay ? (float)a->weight_decay : 0.0f };
	const size_t chunk = 1 << 14;
	long chunks = (long)((hi - lo + chunk - 1) / chunk);
	int n = openblas_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(n) if (n > 1 && chunks > 1)
	for (long c = 0; c < chunks; c++) {
		size_t j = lo + (size_t)c * chunk, e = j + chunk < hi ? j + chunk : hi;
		adamw_span(&k, e - j, w + j, g + j, m + (j - base), v + (j - base));
	}
}

void net_adamw_range(const struct net_layout *L, const struct net_adamw *a, long t,
		     double scale, size_t lo, size_t hi, float *w, float *g, float *m, float *v)
{
	double c1 = 1.0 - pow(a->beta1, (double)t), c2 = 1.0 - pow(a->beta2, (double)t);
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *ti = &L->t[i];
		size_t s = ti->off > lo ? ti->off : lo, e = ti->off + (size_t)(ti->rows * ti->cols);
		e = e < hi ? e : hi;
		if (ti->trainable && s < e)
			adamw_tensor(ti, a, scale, c1, c2, s, e, lo, w, g, m, v);
	}
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
