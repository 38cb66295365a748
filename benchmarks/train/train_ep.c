/*
 * train_ep.c - the expert-parallel callbacks of the training step (train_ep.h).
 */
#include "train_ep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ep.h"
#include "status.h"
#include "timer.h"

int train_ep_wire(const char *dispatch, const char *precision, enum ep_wire *wire)
{
	*wire = strcmp(dispatch, "bf16") == 0 ? EP_WIRE_BF16
		: strcmp(dispatch, "fp8") == 0 ? EP_WIRE_FP8 : EP_WIRE_SAME;
	if (*wire == EP_WIRE_FP8 && strcmp(precision, "fp8") != 0)
		return cli_error_once("pass --precision fp8 with --dispatch fp8, or --dispatch bf16",
				      "--dispatch fp8 in a --precision %s run: FP8 dispatch feeds "
				      "FP8 GEMMs", precision);
	return 0;
}

int train_ep_check(int ep, int ranks_per_node)
{
	/* NOTE: without EP there is nothing to route by node: any value is accepted */
	if (ep > 1 && (ranks_per_node < 1 || ep % ranks_per_node))
		return cli_error_once("pass a --ranks-per-node that divides --ep",
				      "--ranks-per-node %d does not divide --ep %d", ranks_per_node,
				      ep);
	return 0;
}

/* back_wire is the wire of combine and of the backward: BF16 when the dispatch rounds
 * (DeepSeek-V3 combines in BF16), the rows themselves otherwise; FP64 rows (the check's
 * model) travel unrounded. */
static enum ep_wire back_wire(const struct train_ep *t, size_t es)
{
	return es == 4 && t->wire != EP_WIRE_SAME ? EP_WIRE_BF16 : EP_WIRE_SAME;
}

/* block_ep returns block's dispatch/combine state, made on first use. */
static struct ep *block_ep(struct train_ep *t, int block)
{
	if (block < 0 || block >= t->blocks)
		return NULL;
	if (!t->blk[block]) {
		struct ep_config cfg = { t->hidden, t->experts, t->topk, t->rpn, PERMUTE_BF16 };
		if (ep_create(t->c, &cfg, NULL, &t->blk[block]))
			return NULL;
	}
	return t->blk[block];
}

/* ep_fwd_dispatch: net_comm's ep_dispatch (a layout, then the rows). */
static int ep_fwd_dispatch(void *ctx, int block, size_t es, const int32_t *idx, const float *w,
			   int T, const void *x, void *xe, long rows_max, long *rows,
			   long *counts)
{
	struct train_ep *t = ctx;
	struct ep *ep = block_ep(t, block);
	double t0 = timer_now();
	int err = ep ? ep_layout(ep, idx, w, T) : MB_ERR_NOMEM;
	long n = 0;
	for (int e = 0; !err && e < ep_experts(ep)->experts; e++)
		n += ep_experts(ep)->rows[e];
	if (!err && n > rows_max) {
		fprintf(stderr, "moebench: error: EP block %d: %ld rows over the bound %ld\n", block,
			n, rows_max);
		err = MB_ERR_ARG;
	}
	if (!err)
		err = ep_rows_dispatch(ep, x, t->hidden, es, es == 4 ? t->wire : EP_WIRE_SAME, xe,
				       rows, counts);
	t->exposed_s += timer_now() - t0;
	t->calls++;
	return err;
}

/* ep_fwd_combine: net_comm's ep_combine. */
static int ep_fwd_combine(void *ctx, int block, size_t es, const void *y, void *out)
{
	struct train_ep *t = ctx;
	struct ep *ep = block_ep(t, block);
	double t0 = timer_now();
	int err = ep ? ep_rows_combine(ep, y, t->hidden, es, back_wire(t, es), true, out)
		     : MB_ERR_NOMEM;
	t->exposed_s += timer_now() - t0;
	return err;
}

/* row_grads turns the dispatched output gradients g (in dy) into dy = w * g and writes
 * each row's dot(g, y) at its top-k position of a K-wide row of vec (zeros elsewhere). */
static void row_grads(struct train_ep *t, struct ep *ep, size_t es, long rows, const void *y,
		      void *dy)
{
	const float *w;
	const int32_t *pos;
	int d = t->hidden, k = t->topk;
	ep_rows_tables(ep, &w, &pos);
	memset(t->vec, 0, (size_t)rows * (size_t)k * es);
	for (long r = 0; r < rows; r++) {
		double dot = 0;
		size_t o = (size_t)r * (size_t)d;
		if (es == 8) {
			double *g = (double *)dy + o;
			const double *yr = (const double *)y + o;
			for (int j = 0; j < d; j++)
				dot += g[j] * yr[j], g[j] *= (double)w[r];
			((double *)t->vec)[(size_t)r * k + (size_t)pos[r]] = dot;
		} else {
			float *g = (float *)dy + o;
			const float *yr = (const float *)y + o;
			for (int j = 0; j < d; j++)
				dot += (double)g[j] * yr[j], g[j] *= w[r];
			((float *)t->vec)[(size_t)r * k + (size_t)pos[r]] = (float)dot;
		}
	}
}

/* ep_bwd_combine: net_comm's ep_combine_bwd. */
static int ep_bwd_combine(void *ctx, int block, size_t es, const void *dout, const void *y,
			  void *dy, void *dw)
{
	struct train_ep *t = ctx;
	struct ep *ep = block_ep(t, block);
	double t0 = timer_now();
	long rows = 0;
	int err = ep ? ep_rows_dispatch(ep, dout, t->hidden, es, back_wire(t, es), dy, &rows,
					NULL) : MB_ERR_NOMEM;
	size_t need = ((size_t)rows + 1) * (size_t)t->topk * sizeof(double);
	if (!err && need > t->vec_cap) {
		free(t->vec);
		t->vec = malloc(need);
		t->vec_cap = t->vec ? need : 0;
		err = t->vec ? MB_OK : MB_ERR_NOMEM;
	}
	if (!err)
		row_grads(t, ep, es, rows, y, dy);
	/* NOTE: each K-wide row has one nonzero and the sums add zeros to it: dw is exact */
	if (!err)
		err = ep_rows_combine(ep, t->vec, t->topk, es, false, false, dw);
	t->exposed_s += timer_now() - t0;
	return err;
}

/* ep_bwd_dispatch: net_comm's ep_dispatch_bwd. */
static int ep_bwd_dispatch(void *ctx, int block, size_t es, const void *dx, void *out)
{
	struct train_ep *t = ctx;
	struct ep *ep = block_ep(t, block);
	double t0 = timer_now();
	int err = ep ? ep_rows_combine(ep, dx, t->hidden, es, back_wire(t, es), false, out)
		     : MB_ERR_NOMEM;
	t->exposed_s += timer_now() - t0;
	return err;
}

int train_ep_open(struct train_ep *t, struct comm *c, const struct net_layout *L, int rpn,
		  enum ep_wire wire)
{
	memset(t, 0, sizeof(*t));
	if (!c || comm_size(c) == 1)
		return MB_OK;
	*t = (struct train_ep){ .c = c, .blocks = L->blocks, .hidden = (int)L->cfg.dim,
				.experts = (int)L->cfg.routed_experts,
				.topk = (int)L->cfg.activated_experts, .rpn = rpn, .wire = wire };
	t->blk = calloc((size_t)t->blocks, sizeof(*t->blk));
	if (!t->blk)
		return MB_ERR_NOMEM;
	t->nc = (struct net_comm){ t, ep_fwd_dispatch, ep_fwd_combine, ep_bwd_combine,
				   ep_bwd_dispatch };
	return MB_OK;
}

void train_ep_close(struct train_ep *t)
{
	for (int b = 0; t->blk && b < t->blocks; b++)
		ep_free(t->blk[b]);
	free(t->blk);
	free(t->vec);
	memset(t, 0, sizeof(*t));
}

bool train_ep_active(const struct train_ep *t)
{
	return t->c != NULL;
}
