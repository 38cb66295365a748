/*
 * moe_bwd.c - CPU reference of the router backward and the combine backward
 * (moe_bwd.h), sums in FP64. The expert loads and the bias update have their reference
 * in route.c (route_count, route_bias_update).
 */
#include <math.h>
#include <string.h>

#include "bf16.h"
#include "moe_bwd.h"
#include "status.h"

/* router_bwd_token writes one token's dlogits row. */
static void router_bwd_token(const float *logits, const int32_t *idx, const float *dw,
			     int topk, double scale, float *dl)
{
	double s[MOE_BWD_MAX_TOPK], z = 0.0, dot = 0.0;
	for (int j = 0; j < topk; j++) {
		s[j] = 1.0 / (1.0 + exp(-(double)logits[idx[j]]));
		z += s[j];
		dot += dw[j] * s[j];
	}
	for (int j = 0; j < topk; j++) {
		const double ds = scale / z * (dw[j] - dot / z);
		dl[idx[j]] = (float)(ds * s[j] * (1.0 - s[j]));
	}
}

/* moe_router_bwd_cpu: see moe_bwd.h. */
int moe_router_bwd_cpu(const float *logits, const int32_t *topk_idx, const float *dw,
		       long tokens, int experts, int topk, float route_scale, float *dlogits)
{
	if (tokens < 0 || experts <= 0 || topk <= 0 || topk > MOE_BWD_MAX_TOPK || topk > experts)
		return MB_ERR_ARG;
	for (long i = 0; i < tokens * topk; i++)
		if (topk_idx[i] < 0 || topk_idx[i] >= experts)
			return MB_ERR_ARG;
	for (long t = 0; t < tokens; t++) {
		float *dl = dlogits + t * experts;
		memset(dl, 0, (size_t)experts * sizeof(float));
		router_bwd_token(logits + t * experts, topk_idx + t * topk, dw + t * topk, topk,
				 route_scale, dl);
	}
	return MB_OK;
}

/* moe_combine_bwd_cpu: see moe_bwd.h. */
int moe_combine_bwd_cpu(const uint16_t *y, const float *dout, const int32_t *rows,
			const float *w, long tokens, int topk, int hidden,
			const int32_t *row_token, long rows_padded, uint16_t *dy, float *dw)
{
	if (tokens < 0 || topk <= 0 || hidden <= 0 || rows_padded < 0)
		return MB_ERR_ARG;
	for (long r = 0; r < rows_padded; r++)
		if (row_token[r] < 0)
			memset(dy + r * hidden, 0, (size_t)hidden * sizeof(uint16_t));
	for (long t = 0; t < tokens; t++)
		for (int j = 0; j < topk; j++) {
			const int32_t r = rows[t * topk + j];
			double dot = 0.0;
			for (int c = 0; r >= 0 && c < hidden; c++) {
				const float g = dout[t * hidden + c];
				dot += (double)bf16_to_float(y[(long)r * hidden + c]) * g;
				dy[(long)r * hidden + c] = bf16_from_float(w[t * topk + j] * g);
			}
			dw[t * topk + j] = (float)dot;
		}
	return MB_OK;
}
