/*
 * ep.c - expert-parallel dispatch/combine (ep.h): setup, memory where the communicator
 * wants it, and the layout phase. Dispatch and combine are in ep_move.c, the checks in
 * ep_check.c.
 */
#include "ep_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

int ep_create(struct comm *c, const struct ep_config *cfg, void *stream, struct ep **out)
{
	struct ep *ep = calloc(1, sizeof(*ep));
	int size = comm_size(c), err = ep ? MB_OK : MB_ERR_NOMEM;
	*out = NULL;
	if (!err && (cfg->experts <= 0 || cfg->topk <= 0 || cfg->topk > cfg->experts ||
		     cfg->experts % size || cfg->ranks_per_node <= 0 || size % cfg->ranks_per_node))
		err = MB_ERR_ARG;
	if (!err)
		err = permute_format_of(cfg->hidden, cfg->payload, &ep->fmt);
	if (err) {
		free(ep);
		return err;
	}
	*ep = (struct ep){ .c = c, .cfg = *cfg, .fmt = ep->fmt, .stream = stream,
			   .dev = comm_on_device(c), .rank = comm_rank(c), .size = size,
			   .rpn = cfg->ranks_per_node, .nodes = size / cfg->ranks_per_node,
			   .local_experts = cfg->experts / size };
	ep->two_hop = ep->rpn > 1 && ep->nodes > 1;
	for (int i = 0; i < 4; i++)
		ep->cnt[i] = calloc((size_t)size, sizeof(size_t));
	for (int h = 0; h < 2; h++) {
		ep->hop[h].send = calloc((size_t)size, sizeof(size_t));
		ep->hop[h].recv = calloc((size_t)size, sizeof(size_t));
		if (!ep->hop[h].send || !ep->hop[h].recv)
			err = MB_ERR_NOMEM;
	}
	if (err || !ep->cnt[0] || !ep->cnt[1] || !ep->cnt[2] || !ep->cnt[3]) {
		ep_free(ep);
		return MB_ERR_NOMEM;
	}
	*out = ep;
	return MB_OK;
}

/* hop_free releases one hop's plan, tables and buffers. */
static void hop_free(struct ep *ep, struct ep_hop *h)
{
	permute_plan_free(&h->plan);
	free(h->send);
	free(h->recv);
	free(h->meta);
	struct ep_buf *bufs[] = { &h->rows_out, &h->rows_in, &h->ret_out, &h->ret_in,
				  &h->d_slot_item, &h->d_item_slots };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		ep_buf_free(ep, bufs[i]);
}

void ep_free(struct ep *ep)
{
	if (!ep)
		return;
	hop_free(ep, &ep->hop[0]);
	hop_free(ep, &ep->hop[1]);
	ep_rows_free(ep);
	permute_experts_free(&ep->ex);
	struct ep_buf *bufs[] = { &ep->xe, &ep->xs, &ep->y, &ep->d_row_copy, &ep->d_copy_rows,
				  &ep->d_copy_w, &ep->stage_send, &ep->stage_recv };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		ep_buf_free(ep, bufs[i]);
	for (int i = 0; i < 4; i++)
		free(ep->cnt[i]);
	free(ep->meta0);
	free(ep);
}

bool ep_two_hop(const struct ep *ep)
{
	return ep->two_hop;
}

const struct permute_format *ep_format(const struct ep *ep)
{
	return &ep->fmt;
}

const struct permute_experts *ep_experts(const struct ep *ep)
{
	return &ep->ex;
}

struct ep_hop *ep_last_hop(struct ep *ep)
{
	return &ep->hop[ep->two_hop ? 1 : 0];
}

const struct permute_plan *ep_plan(const struct ep *ep, int hop)
{
	return &ep->hop[hop == 1 && ep->two_hop ? 1 : 0].plan;
}

const uint8_t *ep_received_rows(struct ep *ep, long *copies)
{
	struct ep_hop *last = ep_last_hop(ep);
	*copies = last->received;
	return last->rows_in.p;
}

/* ---- memory where the communicator wants it ---- */

int ep_alloc(struct ep *ep, void **p, size_t bytes)
{
	/* NOTE: never a zero-byte allocation: a rank may receive nothing. */
	if (ep->dev)
		return permute_cuda_alloc(p, bytes + 16);
	*p = malloc(bytes + 16);
	return *p ? MB_OK : MB_ERR_NOMEM;
}

void ep_release(struct ep *ep, void *p)
{
	if (ep->dev)
		permute_cuda_free(p);
	else
		free(p);
}

int ep_upload(struct ep *ep, void *dst, const void *host, size_t bytes)
{
	if (ep->dev)
		return permute_cuda_copy(dst, host, bytes, 0, ep->stream);
	memmove(dst, host, bytes);
	return MB_OK;
}

int ep_download(struct ep *ep, void *host, const void *src, size_t bytes)
{
	if (!ep->dev) {
		memmove(host, src, bytes);
		return MB_OK;
	}
	int err = permute_cuda_copy(host, src, bytes, 1, ep->stream);
	return err ? err : permute_cuda_sync(ep->stream);
}

int ep_buf_need(struct ep *ep, struct ep_buf *b, size_t bytes)
{
	if (b->p && bytes <= b->cap)
		return MB_OK;
	ep_buf_free(ep, b);
	int err = ep_alloc(ep, &b->p, bytes);
	b->cap = err ? 0 : bytes;
	return err;
}

void ep_buf_free(struct ep *ep, struct ep_buf *b)
{
	if (b->p)
		ep_release(ep, b->p);
	b->p = NULL;
	b->cap = 0;
}

int ep_alltoallv(struct ep *ep, const void *send, const size_t *send_items, void *recv,
		 const size_t *recv_items, size_t elems, enum comm_dtype t)
{
	size_t *sc = ep->cnt[0], *sd = ep->cnt[1], *rc = ep->cnt[2], *rd = ep->cnt[3];
	size_t so = 0, ro = 0;
	for (int r = 0; r < ep->size; r++) {
		sc[r] = send_items[r] * elems, sd[r] = so, so += sc[r];
		rc[r] = recv_items[r] * elems, rd[r] = ro, ro += rc[r];
	}
	return comm_alltoallv(ep->c, send, sc, sd, recv, rc, rd, t);
}

/* host_alltoallv is ep_alltoallv for host buffers whatever the communicator: a device
 * communicator stages them through device memory. */
static int host_alltoallv(struct ep *ep, const void *send, long sent, const size_t *send_items,
			  void *recv, long received, const size_t *recv_items, size_t elems,
			  enum comm_dtype t)
{
	size_t es = comm_dtype_size(t) * elems;
	if (!ep->dev)
		return ep_alltoallv(ep, send, send_items, recv, recv_items, elems, t);
	int err = ep_buf_need(ep, &ep->stage_send, (size_t)sent * es);
	if (!err)
		err = ep_buf_need(ep, &ep->stage_recv, (size_t)received * es);
	if (!err)
		err = ep_upload(ep, ep->stage_send.p, send, (size_t)sent * es);
	if (!err)
		err = ep_alltoallv(ep, ep->stage_send.p, send_items, ep->stage_recv.p, recv_items,
				   elems, t);
	if (!err)
		err = comm_sync(ep->c);
	if (!err)
		err = ep_download(ep, recv, ep->stage_recv.p, (size_t)received * es);
	return err;
}

/* ---- layout ---- */

/* exchange_counts tells every peer how many copies it gets from this rank (an
 * all-gather of the count rows: small, and host memory for either kind of comm). A
 * rank whose planning failed (local_err) still takes part, sending -1 counts, so every
 * rank returns an error instead of waiting for it until the timeout. */
static int exchange_counts(struct ep *ep, struct ep_hop *h, int local_err)
{
	size_t n = (size_t)ep->size;
	long long *mine = malloc(n * sizeof(long long)), *all = malloc(n * n * sizeof(long long));
	int err = mine && all ? MB_OK : MB_ERR_NOMEM, failed = -1;
	/* NOTE: a rank out of memory here cannot take part: the timeout ends the run. */
	for (size_t r = 0; !err && r < n; r++)
		mine[r] = local_err ? -1 : (long long)h->send[r];
	if (!err)
		err = comm_host_allgather_i64(ep->c, mine, all, n);
	for (size_t r = 0; !err && r < n * n; r++)
		if (all[r] < 0 && failed < 0)
			failed = (int)(r / n);
	h->received = 0;
	for (size_t r = 0; !err && failed < 0 && r < n; r++) {
		h->recv[r] = (size_t)all[r * n + (size_t)ep->rank];
		h->received += (long)h->recv[r];
	}
	free(mine);
	free(all);
	if (!err && local_err)
		fprintf(stderr, "moebench: error: rank %d: ep layout: planning the dispatch failed: "
			"%s\n", ep->rank, mb_status_str(local_err));
	else if (!err && failed >= 0)
		fprintf(stderr, "moebench: error: rank %d: ep layout: rank %d of the EP group "
			"failed to plan its dispatch\n", ep->rank, failed);
	return err ? err : local_err ? local_err : failed >= 0 ? MB_ERR_ARG : MB_OK;
}

/* hop_layout plans one hop over items' meta rows (expert e to group e / epg, group g
 * to rank g * stride + offset), exchanges the counts and sends the copies' meta rows. */
static int hop_layout(struct ep *ep, struct ep_hop *h, const int32_t *meta, long items,
		      int epg, int groups, int stride, int offset)
{
	const int k = ep->cfg.topk, mi = PERMUTE_META_INTS(k);
	permute_plan_free(&h->plan);
	int err = permute_plan_build(meta, items, k, epg, groups, &h->plan);
	int32_t *smeta = err ? NULL : malloc(((size_t)h->plan.slots + 1) * (size_t)mi * 4);
	if (!err && !smeta)
		err = MB_ERR_NOMEM;
	if (!err) {
		permute_meta_gather(meta, &h->plan, epg, smeta);
		memset(h->send, 0, (size_t)ep->size * sizeof(size_t));
		for (int g = 0; g < groups; g++)
			h->send[g * stride + offset] = (size_t)h->plan.counts[g];
	}
	err = exchange_counts(ep, h, err);
	free(h->meta);
	h->meta = err ? NULL : malloc(((size_t)h->received + 1) * (size_t)mi * 4);
	if (!err && !h->meta)
		err = MB_ERR_NOMEM;
	if (!err)
		err = host_alltoallv(ep, smeta, h->plan.slots, h->send, h->meta, h->received,
				     h->recv, (size_t)mi, COMM_I32);
	ep->tr.layout_bytes += 8.0 * ep->size + 4.0 * mi * (double)h->plan.slots;
	free(smeta);
	return err;
}

/* upload_table copies a host table to its device buffer (device communicators). */
static int upload_table(struct ep *ep, struct ep_buf *b, const void *host, size_t bytes)
{
	int err = ep_buf_need(ep, b, bytes);
	return err ? err : ep_upload(ep, b->p, host, bytes);
}

/* hop_buffers sizes one hop's row buffers and uploads its tables for the device. */
static int hop_buffers(struct ep *ep, struct ep_hop *h, long items)
{
	size_t rb = ep->fmt.row_bytes, hb = 2 * (size_t)ep->cfg.hidden;
	size_t slots = (size_t)h->plan.slots, recv = (size_t)h->received;
	int err = ep_buf_need(ep, &h->rows_out, slots * rb);
	if (!err)
		err = ep_buf_need(ep, &h->rows_in, recv * rb);
	if (!err)
		err = ep_buf_need(ep, &h->ret_out, recv * hb);
	if (!err)
		err = ep_buf_need(ep, &h->ret_in, slots * hb);
	if (!err && ep->dev)
		err = upload_table(ep, &h->d_slot_item, h->plan.slot_item, slots * 4);
	if (!err && ep->dev)
		err = upload_table(ep, &h->d_item_slots, h->plan.item_slots,
				   (size_t)items * (size_t)ep->cfg.topk * 4);
	return err;
}

/* experts_buffers sizes the expert-major buffers and uploads their tables. */
static int experts_buffers(struct ep *ep)
{
	const struct permute_experts *x = &ep->ex;
	size_t rows = (size_t)x->rows_padded, h = (size_t)ep->cfg.hidden;
	size_t ck = (size_t)x->copies * (size_t)x->topk;
	int err = ep_buf_need(ep, &ep->xe, rows * h * (ep->fmt.payload == PERMUTE_FP8 ? 1 : 2));
	if (!err)
		err = ep_buf_need(ep, &ep->xs, rows * (size_t)ep->fmt.scales * 4);
	if (!err)
		err = ep_buf_need(ep, &ep->y, rows * h * 2);
	if (!err && ep->dev)
		err = upload_table(ep, &ep->d_row_copy, x->row_copy, rows * 4);
	if (!err && ep->dev)
		err = upload_table(ep, &ep->d_copy_rows, x->copy_rows, ck * 4);
	if (!err && ep->dev)
		err = upload_table(ep, &ep->d_copy_w, x->copy_weights, ck * 4);
	return err;
}

int ep_layout(struct ep *ep, const int32_t *topk_idx, const float *topk_w, long tokens)
{
	const int k = ep->cfg.topk, L = ep->local_experts;
	struct ep_hop *last = ep_last_hop(ep);
	int err = MB_OK;
	if (tokens > ep->tokens || !ep->meta0) {
		free(ep->meta0);
		ep->meta0 = malloc(((size_t)tokens + 1) * (size_t)PERMUTE_META_INTS(k) * 4);
		if (!ep->meta0)
			return MB_ERR_NOMEM;
	}
	ep->tokens = tokens;
	ep->tr.layout_bytes = 0;
	permute_meta_init(ep->rank, topk_idx, topk_w, tokens, k, ep->meta0);
	if (ep->two_hop)   /* first hop: to the nodes, at the peer with my local rank */
		err = hop_layout(ep, &ep->hop[0], ep->meta0, tokens, L * ep->rpn, ep->nodes,
				 ep->rpn, ep->rank % ep->rpn);
	else
		err = hop_layout(ep, &ep->hop[0], ep->meta0, tokens, L, ep->size, 1, 0);
	if (!err && ep->two_hop)   /* second hop: inside the node, to the experts' ranks */
		err = hop_layout(ep, &ep->hop[1], ep->hop[0].meta, ep->hop[0].received, L,
				 ep->size, 1, 0);
	permute_experts_free(&ep->ex);
	if (!err)
		err = permute_experts_build(last->meta, last->received, k, ep->rank * L, L, &ep->ex);
	if (!err)
		err = hop_buffers(ep, &ep->hop[0], tokens);
	if (!err && ep->two_hop)
		err = hop_buffers(ep, &ep->hop[1], ep->hop[0].received);
	if (!err)
		err = experts_buffers(ep);
	return err;
}
