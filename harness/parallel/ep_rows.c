/*
 * ep_rows.c - dispatch and combine of rows of any width and element type over the
 * plans of ep_layout (ep.h): the training step's FP32 and FP64 activations and
 * gradients, optionally sent as BF16. Host communicators only (the training step runs
 * on the CPU). The backward of the training step is built from these two: the
 * combine's backward dispatches the output gradients, the dispatch's backward is an
 * unweighted combine of the input gradients.
 */
#include "ep_impl.h"

#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "fp8.h"
#include "status.h"

/* get / put read and write element i of an FP32 (es 4), FP64 (8) or BF16 (2) row. */
static double get(const void *p, size_t es, size_t i)
{
	if (es == 8)
		return ((const double *)p)[i];
	if (es == 4)
		return ((const float *)p)[i];
	return bf16_to_float(((const uint16_t *)p)[i]);
}

static void put(void *p, size_t es, size_t i, double v)
{
	if (es == 8)
		((double *)p)[i] = v;
	else if (es == 4)
		((float *)p)[i] = (float)v;
	else
		((uint16_t *)p)[i] = bf16_from_float((float)v);
}

/* convert copies a row of width elements from element size es to wes. */
static void convert(const void *src, size_t es, void *dst, size_t wes, int width)
{
	if (es == wes) {
		memcpy(dst, src, (size_t)width * es);
		return;
	}
	for (int c = 0; c < width; c++)
		put(dst, wes, (size_t)c, get(src, es, (size_t)c));
}

/* wire_bytes returns the bytes of a row of width elements of size es on the wire. */
static size_t wire_bytes(enum ep_wire wire, int width, size_t es)
{
	size_t scales = ((size_t)width + FP8_TILE - 1) / FP8_TILE;
	return wire == EP_WIRE_FP8 ? 4 * scales + (size_t)width
	       : (size_t)width * (wire == EP_WIRE_BF16 ? 2 : es);
}

/* pack_rows writes x [n, width] (FP32 or FP64) as wire rows into dst: the rows
 * themselves, rounded to BF16, or DeepSeek-V3's FP8 (1x128 tiles of E4M3 codes with
 * FP32 scales, fp8_quantize's bits, the scales first). */
static int pack_rows(const void *x, long n, int width, size_t es, enum ep_wire wire,
		     uint8_t *dst)
{
	size_t rb = wire_bytes(wire, width, es), sc = (rb - (size_t)width) / 4;
	if (wire != EP_WIRE_FP8) {
		for (long t = 0; t < n; t++)
			convert((const uint8_t *)x + (size_t)t * (size_t)width * es, es,
				dst + (size_t)t * rb, wire == EP_WIRE_BF16 ? 2 : es, width);
		return MB_OK;
	}
	struct fp8_matrix m = { 0 };
	if (n == 0)
		return MB_OK;
	int err = fp8_matrix_alloc(&m, (int)n, width, FP8_E4M3, FP8_PER_1X128);
	if (!err)
		err = fp8_quantize(x, &m, false);
	for (long t = 0; !err && t < n; t++) {
		memcpy(dst + (size_t)t * rb, m.scale + (size_t)t * sc, 4 * sc);
		memcpy(dst + (size_t)t * rb + 4 * sc, m.q + (size_t)t * (size_t)width, (size_t)width);
	}
	if (m.q)
		fp8_matrix_free(&m);
	return err;
}

/* unpack_row writes one wire row back as width elements of size es. */
static void unpack_row(const uint8_t *src, int width, size_t es, enum ep_wire wire, void *dst)
{
	if (wire != EP_WIRE_FP8) {
		convert(src, wire == EP_WIRE_BF16 ? 2 : es, dst, es, width);
		return;
	}
	size_t sc = ((size_t)width + FP8_TILE - 1) / FP8_TILE;
	float scale[64];
	memcpy(scale, src, 4 * (sc < 64 ? sc : 64));
	for (int c = 0; c < width; c++)
		put(dst, es, (size_t)c, (double)(fp8_decode(src[4 * sc + (size_t)c], FP8_E4M3) *
						 scale[c / FP8_TILE]));
}

void ep_rows_free(struct ep *ep)
{
	ep_buf_free(ep, &ep->r_src);
	for (int h = 0; h < 2; h++) {
		ep_buf_free(ep, &ep->r_out[h]);
		ep_buf_free(ep, &ep->r_in[h]);
		ep_buf_free(ep, &ep->r_back[h]);
		ep_buf_free(ep, &ep->r_ret[h]);
	}
	free(ep->crow);
	free(ep->row_pos);
	free(ep->row_w);
	ep->crow = ep->row_pos = NULL;
	ep->row_w = NULL;
}

/* rows_tables numbers the expert-major rows without padding (compact rows, expert by
 * expert) and records each one's routing weight and top-k position in its token. */
static int rows_tables(struct ep *ep)
{
	const struct permute_experts *x = &ep->ex;
	const struct ep_hop *last = ep_last_hop(ep);
	const int k = ep->cfg.topk, mi = PERMUTE_META_INTS(k);
	long n = 0;
	free(ep->crow);
	free(ep->row_pos);
	free(ep->row_w);
	ep->crow = malloc(((size_t)x->rows_padded + 1) * sizeof(int32_t));
	ep->row_pos = malloc(((size_t)x->copies * (size_t)k + 1) * sizeof(int32_t));
	ep->row_w = malloc(((size_t)x->copies * (size_t)k + 1) * sizeof(float));
	if (!ep->crow || !ep->row_pos || !ep->row_w)
		return MB_ERR_NOMEM;
	for (int e = 0; e < x->experts; e++)
		for (long r = x->offsets[e]; r < x->offsets[e + 1]; r++)
			ep->crow[r] = r < x->offsets[e] + x->rows[e] ? (int32_t)n++ : -1;
	ep->rows = n;
	for (long c = 0; c < x->copies; c++) {
		const int32_t *ex = last->meta + c * mi + 2;
		for (int j = 0, i = 0; j < k; j++) {
			if (ex[j] < 0)
				continue;
			int32_t r = ep->crow[x->copy_rows[c * k + i]];
			ep->row_pos[r] = j;
			ep->row_w[r] = x->copy_weights[c * k + i];
			i++;
		}
	}
	return MB_OK;
}

/* hop_send moves a hop's rows (rb bytes each) to its destinations. */
static int hop_send(struct ep *ep, struct ep_hop *h, const void *out, void *in, size_t rb)
{
	return ep_alltoallv(ep, out, h->send, in, h->recv, rb, COMM_U8);
}

/* hop_back moves one row per received copy of a hop back to where it came from. */
static int hop_back(struct ep *ep, struct ep_hop *h, const void *out, void *in, size_t rb)
{
	return ep_alltoallv(ep, out, h->recv, in, h->send, rb, COMM_U8);
}

int ep_rows_dispatch(struct ep *ep, const void *x, int width, size_t es, enum ep_wire wire,
		     void *xe, long *rows, long *counts)
{
	struct ep_hop *h0 = &ep->hop[0], *h1 = &ep->hop[1];
	size_t rb = wire_bytes(wire, width, es);
	int hl = ep->two_hop ? 1 : 0;
	if (ep->dev || (wire != EP_WIRE_SAME && es != 4) || width > 64 * FP8_TILE)
		return MB_ERR_ARG;
	int err = rows_tables(ep);
	if (!err)
		err = ep_buf_need(ep, &ep->r_src, (size_t)ep->tokens * rb);
	if (!err)
		err = pack_rows(x, ep->tokens, width, es, wire, ep->r_src.p);
	if (!err)
		err = ep_buf_need(ep, &ep->r_out[0], (size_t)h0->plan.slots * rb);
	if (!err)
		err = ep_buf_need(ep, &ep->r_in[0], (size_t)h0->received * rb);
	if (!err && ep->two_hop)
		err = ep_buf_need(ep, &ep->r_out[1], (size_t)h1->plan.slots * rb);
	if (!err && ep->two_hop)
		err = ep_buf_need(ep, &ep->r_in[1], (size_t)h1->received * rb);
	if (err)
		return err;
	uint8_t *o0 = ep->r_out[0].p, *i0 = ep->r_in[0].p;
	permute_gather(ep->r_src.p, h0->plan.slot_item, h0->plan.slots, rb, o0);
	err = hop_send(ep, h0, o0, i0, rb);
	/* the relay forwards what it received, unchanged */
	if (!err && ep->two_hop) {
		permute_gather(i0, h1->plan.slot_item, h1->plan.slots, rb, ep->r_out[1].p);
		err = hop_send(ep, h1, ep->r_out[1].p, ep->r_in[1].p, rb);
	}
	if (err)
		return err;
	const uint8_t *in = ep->r_in[hl].p;
	for (long r = 0; r < ep->ex.rows_padded; r++)
		if (ep->crow[r] >= 0)
			unpack_row(in + (size_t)ep->ex.row_copy[r] * rb, width, es, wire,
				   (uint8_t *)xe + (size_t)ep->crow[r] * (size_t)width * es);
	*rows = ep->rows;
	for (int e = 0; counts && e < ep->ex.experts; e++)
		counts[e] = ep->ex.rows[e];
	return MB_OK;
}

/* sum_rows writes out row i = sum over j of (w ? w[i*k+j] : 1) * in[idx[i*k+j]] (rows
 * of width elements of size ies; idx -1 ends a list; map renumbers idx when given) into
 * out rows of size oes, accumulating in double. */
static void sum_rows(const uint8_t *in, size_t ies, const int32_t *idx, const int32_t *map,
		     const float *w, int k, long n, int width, void *out, size_t oes, double *acc)
{
	size_t irb = (size_t)width * ies;
	for (long i = 0; i < n; i++) {
		memset(acc, 0, (size_t)width * sizeof(double));
		for (int j = 0; j < k && idx[i * k + j] >= 0; j++) {
			int32_t r = map ? map[idx[i * k + j]] : idx[i * k + j];
			double wj = w ? w[i * k + j] : 1.0;
			for (int c = 0; c < width; c++)
				acc[c] += wj * get(in + (size_t)r * irb, ies, (size_t)c);
		}
		for (int c = 0; c < width; c++)
			put(out, oes, (size_t)i * (size_t)width + (size_t)c, acc[c]);
	}
}

int ep_rows_combine(struct ep *ep, const void *y, int width, size_t es, enum ep_wire wire,
		    bool weighted, void *out)
{
	struct ep_hop *h0 = &ep->hop[0], *h1 = &ep->hop[1], *last = ep_last_hop(ep);
	size_t wes = wire == EP_WIRE_BF16 ? 2 : es, rb = (size_t)width * wes;
	int hl = ep->two_hop ? 1 : 0, k = ep->cfg.topk;
	double *acc = malloc(((size_t)width + 1) * sizeof(double));
	int err = acc ? MB_OK : MB_ERR_NOMEM;
	/* NOTE: combine sends BF16 at the lowest (DeepSeek-V3 combines in BF16) */
	if (ep->dev || wire == EP_WIRE_FP8 || (wire == EP_WIRE_BF16 && es != 4))
		err = MB_ERR_ARG;
	for (int h = 0; h <= hl && !err; h++) {
		err = ep_buf_need(ep, &ep->r_back[h], (size_t)ep->hop[h].received * rb);
		if (!err)
			err = ep_buf_need(ep, &ep->r_ret[h], (size_t)ep->hop[h].plan.slots * rb);
	}
	/* 1. per received copy: the (weighted) sum of its rows' outputs, sent back */
	if (!err) {
		sum_rows(y, es, ep->ex.copy_rows, ep->crow, weighted ? ep->ex.copy_weights : NULL,
			 k, ep->ex.copies, width, ep->r_back[hl].p, wes, acc);
		err = hop_back(ep, last, ep->r_back[hl].p, ep->r_ret[hl].p, rb);
	}
	/* 2. two-hop: the relay sums its node's partial rows, one row per node goes back */
	if (!err && ep->two_hop) {
		sum_rows(ep->r_ret[1].p, wes, h1->plan.item_slots, NULL, NULL, k, h0->received,
			 width, ep->r_back[0].p, wes, acc);
		err = hop_back(ep, h0, ep->r_back[0].p, ep->r_ret[0].p, rb);
	}
	/* 3. the source sums the rows of each token */
	if (!err)
		sum_rows(ep->r_ret[0].p, wes, h0->plan.item_slots, NULL, NULL, k, ep->tokens, width,
			 out, es, acc);
	free(acc);
	return err;
}

void ep_rows_tables(const struct ep *ep, const float **w, const int32_t **pos)
{
	*w = ep->row_w;
	*pos = ep->row_pos;
}
