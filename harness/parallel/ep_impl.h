/*
 * ep_impl.h - the state of expert-parallel dispatch/combine shared by ep.c (setup and
 * layout), ep_move.c (dispatch and combine) and ep_check.c (checks). Not an interface.
 */
#ifndef MB_HARNESS_EP_IMPL_H
#define MB_HARNESS_EP_IMPL_H

#include "ep.h"

/* A buffer that grows to the largest size asked, host or device. */
struct ep_buf {
	void *p;
	size_t cap;
};

/* One hop: the plan at the sender, per-peer copy counts both ways, and the rows. */
struct ep_hop {
	struct permute_plan plan;
	size_t *send, *recv;          /* [size] copies to / from each peer */
	long received;                /* sum of recv */
	int32_t *meta;                /* [received] meta rows received (host) */
	struct ep_buf rows_out, rows_in;       /* payload rows sent / received */
	struct ep_buf ret_out, ret_in;         /* combine: BF16 rows sent back / returned */
	struct ep_buf d_slot_item, d_item_slots;  /* device copies of the plan's tables */
};

struct ep {
	struct comm *c;
	struct ep_config cfg;
	struct permute_format fmt;
	void *stream;
	bool dev, two_hop;
	int rank, size, rpn, nodes, local_experts;
	long tokens;
	int32_t *meta0;               /* [T] this rank's tokens (host) */
	struct ep_hop hop[2];         /* hop[1] used on the two-hop path only */
	struct permute_experts ex;
	struct ep_buf xe, xs, y;
	struct ep_buf d_row_copy, d_copy_rows, d_copy_w;
	struct ep_buf stage_send, stage_recv;  /* device staging of host meta rows */
	size_t *cnt[4];               /* scratch: send/recv counts and displacements */
	/* rows of the training step (ep_rows.c): per hop rows sent / received, and sent
	 * back / returned by combine; per expert-major row its compact number (-1 for
	 * padding); per compact row the routing weight and the top-k position */
	struct ep_buf r_src, r_out[2], r_in[2], r_back[2], r_ret[2];
	int32_t *crow, *row_pos;
	float *row_w;
	long rows;
	struct ep_traffic tr;
};

/* ep_buf_need grows b to at least bytes (contents lost). */
int ep_buf_need(struct ep *ep, struct ep_buf *b, size_t bytes);
void ep_buf_free(struct ep *ep, struct ep_buf *b);
/* ep_alltoallv moves items (elems elements of type t each) with per-peer item counts. */
int ep_alltoallv(struct ep *ep, const void *send, const size_t *send_items, void *recv,
		 const size_t *recv_items, size_t elems, enum comm_dtype t);
/* ep_rows_free releases ep_rows.c's buffers and tables. */
void ep_rows_free(struct ep *ep);
/* ep_last_hop returns the hop whose copies reach the experts. */
struct ep_hop *ep_last_hop(struct ep *ep);

#endif
