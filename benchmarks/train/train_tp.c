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

int train_tp_whole(struct train_dp *d, const struct net_layout *L, float *w,
		   struct net_layout *W, float **ww)
{
	int err = whole_layout(L, W);
	*ww = NULL;
	if (err)
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
