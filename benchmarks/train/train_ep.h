/*
 * train_ep.h - expert parallelism on the training step (`moebench train`, `step` with
 * --ep N): the model's struct net_comm filled with harness/parallel/ep's dispatch and
 * combine over the EP group (ep_rows.c: FP32 or FP64 rows; FP32 optionally sent as BF16,
 * or dispatched as FP8 with 1x128 scales in FP8 runs, combined in BF16; node-limited two-hop routing with --ranks-per-node). One struct ep per MoE
 * block: the forward's layout is kept for that block's backward.
 *
 * The backward: the combine's backward dispatches the output gradients (w * dout to
 * each expert row; dout . y back to the token's k-th weight through an unweighted
 * combine of K-wide rows, one nonzero each); the dispatch's backward is an unweighted
 * combine of the rows' input gradients.
 *
 * Every callback's wall time is added to exposed_s: dispatch and combine run blocking
 * (the projection's "EP exposed" term), unless --ep-overlap (train_overlap.h) hands
 * the CPU to another micro-batch's chunk inside them: that time away is then taken off
 * by the overlap, which counts the part the exchange was in flight as hidden.
 */
#ifndef MB_TRAIN_EP_H
#define MB_TRAIN_EP_H

#include <stdbool.h>

#include "comm.h"
#include "ep.h"
#include "net.h"

struct train_ep {
	struct net_comm nc;        /* set on the model (net_comm_set_*) */
	struct comm *c;            /* the EP group */
	int blocks, hidden, experts, topk, rpn;
	enum ep_wire wire;         /* the forward dispatch's: FP32, BF16 or FP8 */
	struct ep **blk;           /* [blocks], NULL for dense blocks (made on first use) */
	void *vec;                 /* [rows, K] doubles: the weights' gradients, per row */
	size_t vec_cap;
	double exposed_s;          /* seconds in dispatch/combine since the last reset */
	long calls;
};

/* train_ep_wire turns --dispatch fp32|bf16|fp8 into the forward dispatch's wire (combine
 * and the backward then move BF16 rows), refusing FP8 outside --precision fp8 (exit
 * status 2 after cli_error_once). Returns 0 or 2. */
int train_ep_wire(const char *dispatch, const char *precision, enum ep_wire *wire);
/* train_ep_check refuses (cli_error_once, exit status 2) --ranks-per-node that does not
 * divide --ep (ep > 1). Returns 0 or 2. */
int train_ep_check(int ep, int ranks_per_node);
/* train_ep_open prepares the callbacks over the EP group c for layout L (nothing to do
 * when c has one rank: nc stays empty and the model runs its experts itself). */
int train_ep_open(struct train_ep *t, struct comm *c, const struct net_layout *L, int rpn,
		  enum ep_wire wire);
void train_ep_close(struct train_ep *t);
/* train_ep_active says whether the model needs t->nc (EP over more than one rank). */
bool train_ep_active(const struct train_ep *t);

#endif
