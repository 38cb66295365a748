/*
 * train_tp.c - the whole tensors of a TP part for `train --save` and `--init-from`
 * (train_dp.h): each TP rank places its slices at their row0/col0, the replicated
 * tensors from tp_rank 0 alone, and a sum over the TP group completes them (every other
 * element is a zero, so the sum is exact).
 */
#include "train_dp.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

/* whole_layout builds W: the tensors of L's part with tp 1 (whole). */
static int whole_layout(const struct net_layout *L, struct net_layout *W)
{
	struct net_part p = L->part;
	p.tp = 1;
	p.tp_rank = 0;
	return net_layout_build_part(&L->cfg, &p, W, NULL, 0);
}

/* replica_spread returns in *spread the largest difference between the TP ranks' copies
 * of the replicated tensors of L (the backward leaves them identical gradients, so the
 * copies must stay equal: the check of it). Collective over the TP group. */
static int replica_spread(struct train_dp *d, const struct net_layout *L, const float *w,
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

int train_tp_whole(struct train_dp *d, const struct net_layout *L, float *w,
		   struct net_layout *W, float **ww, double *spread)
{
	int err = replica_spread(d, L, w, spread);
	*ww = NULL;
	if (err || (err = whole_layout(L, W)))
		return err;
	*ww = calloc(W->total ? W->total : 1, sizeof(float));
	if (!*ww)
		return MB_ERR_NOMEM;
	if ((err = net_slices_copy(L, w, W, *ww, true)))
		return err;
	if (L->part.tp_rank != 0)
		for (int i = 0; i < L->n; i++) {
			const struct net_tensor *t = &L->t[i];
			if (t->rows == t->full_rows && t->cols == t->full_cols) {
				const struct net_tensor *u = &W->t[net_find(W, t->name)];
				memset(*ww + u->off, 0, (size_t)(u->rows * u->cols) * sizeof(float));
			}
		}
	return comm_allreduce(d->tp, *ww, *ww, W->total, COMM_F32, COMM_SUM);
}

int train_tp_load(const struct net_layout *L, float *w, const char *path, char *why,
		  size_t why_len)
{
	struct net_layout W;
	int err = whole_layout(L, &W);
	if (err)
		return err;
	float *ww = malloc((W.total ? W.total : 1) * sizeof(float));
	err = ww ? net_load(&W, ww, path, why, why_len) : MB_ERR_NOMEM;
	if (!err)
		err = net_slices_copy(L, w, &W, ww, false);
	free(ww);
	net_layout_free(&W);
	return err;
}
