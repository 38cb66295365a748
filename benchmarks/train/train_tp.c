/*
 * train_tp.c - the check that the TP ranks' copies of the replicated tensors agree
 * (train_dp.h): their largest and smallest copy of each element, by one all-reduce of the
 * maximum of w and of -w over the TP group.
 */
#include "train_dp.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

int train_tp_spread(struct train_dp *d, const struct net_layout *L, const float *w,
		    double *spread)
{
	size_t n = 0, at = 0;
	for (int i = 0; i < L->n; i++)
		if (L->t[i].rows == L->t[i].full_rows && L->t[i].cols == L->t[i].full_cols)
			n += (size_t)(L->t[i].rows * L->t[i].cols);
	float *x = calloc(n ? 2 * n : 1, sizeof(float));
	if (!x)
		return MB_ERR_NOMEM;
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		if (t->rows != t->full_rows || t->cols != t->full_cols)
			continue;
		for (size_t j = 0; j < (size_t)(t->rows * t->cols); j++, at++) {
			x[at] = w[t->off + j];
			x[n + at] = -w[t->off + j];
		}
	}
	/* the maximum of x and of -x: the largest and the smallest copy of each element */
	int err = comm_allreduce(d->tp, x, x, 2 * n, COMM_F32, COMM_MAX);
	*spread = 0;
	for (size_t j = 0; j < n && !err; j++)
		*spread = (double)x[j] + (double)x[n + j] > *spread ? (double)x[j] + x[n + j]
								     : *spread;
	free(x);
	return err;
}
