/*
 * net_optim.c - training rules of the trainable model (net.h): AdamW with FP32 master
 * weights (DeepSeek-V3 4.2: beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1), global
 * gradient-norm clipping, warm-up then cosine learning rate, and the auxiliary-loss-free
 * routing-bias update (DeepSeek-V3 2.1.2, through kernels/moe route_bias_update).
 */
#include "net.h"

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

/* adamw_tensor scales one tensor's gradient by the clipping factor (in place) and
 * updates it: decoupled weight decay (AdamW, Loshchilov & Hutter) on matrices only,
 * bias-corrected moments; elements [lo, hi), the moments indexed from element base.
 * NOTE: float arithmetic, one pass, as fused optimizers do;
 * the moments and weights are FP32 either way. */
static void adamw_tensor(const struct net_tensor *t, const struct net_adamw *a, double scale,
			 double c1, double c2, size_t lo, size_t hi, size_t base, float *w,
			 float *g, float *m, float *v)
{
	float b1 = (float)a->beta1, b2 = (float)a->beta2, eps = (float)a->eps;
	float lr = (float)a->lr, sc = (float)scale, ic1 = (float)(1.0 / c1);
	float ic2 = (float)(1.0 / c2), wd = t->decay ? (float)a->weight_decay : 0.0f;
	for (size_t j = lo; j < hi; j++) {
		float gj = g[j] * sc;
		g[j] = gj;
		float *mj = &m[j - base], *vj = &v[j - base];
		*mj = b1 * *mj + (1.0f - b1) * gj;
		*vj = b2 * *vj + (1.0f - b2) * gj * gj;
		w[j] -= lr * (*mj * ic1 / (sqrtf(*vj * ic2) + eps) + wd * w[j]);
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
		if (!b->moe || !load[i])
			continue;
		route_bias_update(w + L->t[b->router_bias].off, load[i],
				  (int)L->cfg.routed_experts, (float)gamma);
	}
}
