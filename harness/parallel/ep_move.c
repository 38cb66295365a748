/*
 * ep_move.c - the timed phases of expert-parallel dispatch and combine (ep.h): the
 * payload all-to-alls with the local permutations around them, on the CPU for host
 * communicators and by the CUDA kernels of permute.cu for device ones.
 */
#include "ep_impl.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

/* gather writes the hop's send rows from src rows: src[slot_item[s]] for each slot. */
static int gather(struct ep *ep, struct ep_hop *h, const uint8_t *src)
{
	const struct permute_plan *p = &h->plan;
	if (ep->dev)
		return permute_gather_cuda(src, h->d_slot_item.p, p->slots, ep->fmt.row_bytes,
					   h->rows_out.p, ep->stream);
	permute_gather(src, p->slot_item, p->slots, ep->fmt.row_bytes, h->rows_out.p);
	return MB_OK;
}

/* send_rows runs one hop's payload all-to-all (bytes, row_bytes per copy). */
static int send_rows(struct ep *ep, struct ep_hop *h)
{
	return ep_alltoallv(ep, h->rows_out.p, h->send, h->rows_in.p, h->recv,
			    ep->fmt.row_bytes, COMM_U8);
}

int ep_dispatch(struct ep *ep, const uint8_t *x_rows)
{
	struct ep_hop *last = ep_last_hop(ep);
	int err = gather(ep, &ep->hop[0], x_rows);
	if (!err)
		err = send_rows(ep, &ep->hop[0]);
	/* NOTE: the relay forwards what it received, unchanged (FP8 stays FP8). */
	if (!err && ep->two_hop)
		err = gather(ep, &ep->hop[1], ep->hop[0].rows_in.p);
	if (!err && ep->two_hop)
		err = send_rows(ep, &ep->hop[1]);
	if (err)
		return err;
	if (ep->dev)
		return permute_arrange_cuda(last->rows_in.p, &ep->fmt, ep->d_row_copy.p,
					    ep->ex.rows_padded, ep->xe.p, ep->xs.p, ep->stream);
	permute_arrange(last->rows_in.p, &ep->fmt, &ep->ex, ep->xe.p, ep->xs.p);
	return MB_OK;
}

void *ep_expert_input(struct ep *ep, float **scale)
{
	if (scale)
		*scale = ep->fmt.payload == PERMUTE_FP8 ? ep->xs.p : NULL;
	return ep->xe.p;
}

int ep_identity_experts(struct ep *ep, uint16_t **y)
{
	*y = ep->y.p;
	if (ep->dev)
		return permute_identity_experts_cuda(&ep->fmt, ep->ex.rows_padded, ep->xe.p,
						     ep->xs.p, ep->y.p, ep->stream);
	permute_identity_experts(&ep->fmt, ep->ex.rows_padded, ep->xe.p, ep->xs.p, ep->y.p);
	return MB_OK;
}

/* reduce is permute_reduce on the host or the device (d_idx, d_w: device tables). */
static int reduce(struct ep *ep, const uint16_t *in, const int32_t *idx, const int32_t *d_idx,
		  const float *w, const float *d_w, long n_out, uint16_t *out)
{
	if (ep->dev)
		return permute_reduce_cuda(in, ep->cfg.hidden, d_idx, d_w, ep->cfg.topk, n_out, out,
					   ep->stream);
	permute_reduce(in, ep->cfg.hidden, idx, w, ep->cfg.topk, n_out, out);
	return MB_OK;
}

/* send_back returns one BF16 row per received copy to the rank it came from: the
 * reverse all-to-all of the hop (counts swapped). */
static int send_back(struct ep *ep, struct ep_hop *h)
{
	return ep_alltoallv(ep, h->ret_out.p, h->recv, h->ret_in.p, h->send,
			    (size_t)ep->cfg.hidden, COMM_BF16);
}

int ep_combine(struct ep *ep, const uint16_t *y, uint16_t *out)
{
	struct ep_hop *h0 = &ep->hop[0], *h1 = &ep->hop[1], *last = ep_last_hop(ep);
	/* 1. per received copy: sum of weight * output over the experts it picked here */
	int err = reduce(ep, y, ep->ex.copy_rows, ep->d_copy_rows.p, ep->ex.copy_weights,
			 ep->d_copy_w.p, ep->ex.copies, last->ret_out.p);
	if (!err)
		err = send_back(ep, last);
	/* 2. two-hop: the relay sums its node's partial rows, one row per node goes back */
	if (!err && ep->two_hop)
		err = reduce(ep, h1->ret_in.p, h1->plan.item_slots, h1->d_item_slots.p, NULL, NULL,
			     h0->received, h0->ret_out.p);
	if (!err && ep->two_hop)
		err = send_back(ep, h0);
	/* 3. the source sums the rows of each token */
	if (!err)
		err = reduce(ep, h0->ret_in.p, h0->plan.item_slots, h0->d_item_slots.p, NULL, NULL,
			     ep->tokens, out);
	return err;
}

/* distinct_groups counts (token, group) pairs of this rank's tokens, group e / epg. */
static long distinct_groups(const struct ep *ep, int epg)
{
	const int k = ep->cfg.topk;
	long n = 0;
	for (long t = 0; t < ep->tokens; t++) {
		const int32_t *ex = ep->meta0 + t * PERMUTE_META_INTS(k) + 2;
		for (int j = 0; j < k; j++) {
			int first = 1;
			for (int i = 0; i < j; i++)
				first &= ex[i] / epg != ex[j] / epg;
			n += first;
		}
	}
	return n;
}

/* remote_copies counts the copies of a hop that leave this rank. */
static long remote_copies(const struct ep *ep, const struct ep_hop *h)
{
	long n = 0;
	for (int r = 0; r < ep->size; r++)
		n += r == ep->rank ? 0 : (long)h->send[r];
	return n;
}

void ep_traffic_of(const struct ep *ep, struct ep_traffic *t)
{
	*t = ep->tr;
	t->tokens = ep->tokens;
	t->hop1_copies = ep->hop[0].plan.slots;
	t->hop1_remote = remote_copies(ep, &ep->hop[0]);
	t->hop2_copies = ep->two_hop ? ep->hop[1].plan.slots : 0;
	t->hop2_remote = ep->two_hop ? remote_copies(ep, &ep->hop[1]) : 0;
	t->rank_copies = distinct_groups(ep, ep->local_experts);
	t->node_copies = distinct_groups(ep, ep->local_experts * ep->rpn);
	t->recv_copies = ep->ex.copies;
	t->expert_rows = 0;
	for (int e = 0; e < ep->ex.experts; e++)
		t->expert_rows += ep->ex.rows[e];
	t->rows_padded = ep->ex.rows_padded;
}
