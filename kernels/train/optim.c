/*
 * optim.c - CPU reference of AdamW, the global gradient norm and the clipping scale
 * (optim.h); the AdamW arithmetic in FP64, rounded once per stored value.
 */
#include <math.h>

#include "bf16.h"
#include "optim.h"
#include "status.h"

/* adamw_segments_check: see optim.h. */
int adamw_segments_check(const struct adamw_segment *segs, int nsegs, long n)
{
	long end = 0;
	if (nsegs < 0 || n < 0)
		return MB_ERR_ARG;
	for (int i = 0; i < nsegs; i++) {
		if (segs[i].offset < end || segs[i].count <= 0 || segs[i].offset + segs[i].count > n)
			return MB_ERR_ARG;
		end = segs[i].offset + segs[i].count;
	}
	return MB_OK;
}

/* adamw_config_ok is 1 for a usable configuration. */
static int adamw_config_ok(const struct adamw_config *c)
{
	return c->step >= 1 && c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f &&
	       c->beta2 < 1.0f && c->eps > 0.0f;
}

/* adamw_cpu: see optim.h. */
int adamw_cpu(const struct adamw_config *c, const struct adamw_segment *segs, int nsegs,
	      long n, float *param, const float *grad, float *m, float *v, float grad_scale,
	      uint16_t *param_bf16)
{
	if (!adamw_config_ok(c) || adamw_segments_check(segs, nsegs, n))
		return MB_ERR_ARG;
	const double b1 = c->beta1, b2 = c->beta2;
	const double c1 = 1.0 - pow(b1, (double)c->step), c2 = 1.0 - pow(b2, (double)c->step);
	for (int s = 0; s < nsegs; s++) {
		const double decay = 1.0 - (double)c->lr * segs[s].weight_decay;
		for (long i = segs[s].offset; i < segs[s].offset + segs[s].count; i++) {
			const double g = (double)grad[i] * grad_scale;
			const double mi = b1 * m[i] + (1.0 - b1) * g, vi = b2 * v[i] + (1.0 - b2) * g * g;
			const double p = param[i] * decay - c->lr * (mi / c1) / (sqrt(vi / c2) + c->eps);
			m[i] = (float)mi;
			v[i] = (float)vi;
			param[i] = (float)p;
			if (param_bf16)
				param_bf16[i] = bf16_from_float(param[i]);
		}
	}
	return MB_OK;
}

/* grad_norm_cpu: see optim.h. */
double grad_norm_cpu(const float *g, long n)
{
	double ss = 0.0;
	for (long i = 0; i < n; i++)
		ss += (double)g[i] * g[i];
	return sqrt(ss);
}

/* grad_clip_scale: see optim.h. */
float grad_clip_scale(double norm, float max_norm)
{
	if (max_norm <= 0.0f)
		return 1.0f;
	const double s = max_norm / (norm + 1e-6);
	return s < 1.0 ? (float)s : 1.0f;
}

/* grad_norm_workspace: one float per first-pass block. */
size_t grad_norm_workspace(long n)
{
	(void)n;
	return GRAD_NORM_BLOCKS * sizeof(float);
}
