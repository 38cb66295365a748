/*
 * xent.c - CPU reference of the fused cross-entropy and its gradient (xent.h), in FP64
 * with the maximum subtracted.
 */
#include <math.h>

#include "bf16.h"
#include "status.h"
#include "xent.h"

/* logit_at reads logit i of the row as a double. */
static double logit_at(const void *row, enum xent_dtype dtype, long i)
{
	return dtype == XENT_BF16 ? bf16_to_float(((const uint16_t *)row)[i])
				  : ((const float *)row)[i];
}

/* put_grad stores gradient element i in the logits' type. */
static void put_grad(void *row, enum xent_dtype dtype, long i, double g)
{
	if (dtype == XENT_BF16)
		((uint16_t *)row)[i] = bf16_from_float((float)g);
	else
		((float *)row)[i] = (float)g;
}

/* xent_row computes one row's loss and (when drow) gradient. */
static float xent_row(const void *row, enum xent_dtype dtype, int32_t target, int vocab,
		      float dscale, void *drow)
{
	double m = -INFINITY, s = 0.0;
	for (int v = 0; v < vocab; v++)
		m = fmax(m, logit_at(row, dtype, v));
	for (int v = 0; v < vocab; v++)
		s += exp(logit_at(row, dtype, v) - m);
	const double lse = m + log(s);
	const double loss = target >= 0 ? lse - logit_at(row, dtype, target) : 0.0;
	if (drow)
		for (int v = 0; v < vocab; v++) {
			double g = target < 0 ? 0.0
					      : exp(logit_at(row, dtype, v) - lse) - (v == target);
			put_grad(drow, dtype, v, dscale * g);
		}
	return (float)loss;
}

/* xent_cpu: see xent.h. */
int xent_cpu(const void *logits, enum xent_dtype dtype, const int32_t *targets, long rows,
	     int vocab, float dscale, float *losses, void *dlogits)
{
	const size_t esize = dtype == XENT_BF16 ? 2 : 4;
	if (rows < 0 || vocab <= 0 || (dtype != XENT_FP32 && dtype != XENT_BF16))
		return MB_ERR_ARG;
	for (long r = 0; r < rows; r++)
		if (targets[r] >= vocab)
			return MB_ERR_ARG;
	for (long r = 0; r < rows; r++) {
		const size_t off = (size_t)r * vocab * esize;
		losses[r] = xent_row((const char *)logits + off, dtype, targets[r], vocab, dscale,
				     dlogits ? (char *)dlogits + off : NULL);
	}
	return MB_OK;
}
