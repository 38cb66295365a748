/*
 * train_dp.h - data parallelism for the training step (`moebench train`, `step`): the
 * rank grid (harness/parallel/layout, Megatron's order; only dp > 1 is built so far,
 * tp = cp = pp = ep = etp = 1, the seam later layouts fill), the DP group, and the
 * gradient path of one optimizer step over it:
 *
 *   all-reduce  sum the accumulated gradients over the DP group, average, AdamW on
 *               every element on every rank (identical updates);
 *   ZeRO-1      (DeepSeek-V3 3.2.3) reduce-scatter the gradients, AdamW on the owned
 *               shard of the master weights and moments only, with the clipping norm
 *               summed over the shards, then all-gather of the parameters.
 *
 * Micro-batches accumulate into one padded FP32 buffer (train_dp_accumulate); expert
 * loads are summed over micro-batches and ranks so that the routing-bias update sees the
 * global load. Every rank of a DP group draws the same global batch and takes rows
 * [rank * B / dp, (rank + 1) * B / dp): the losses equal one rank's up to summation order.
 * The DP communication time is kept apart (comm_s) for the step's split by cause.
 */
#ifndef MB_TRAIN_DP_H
#define MB_TRAIN_DP_H

#include <stdbool.h>
#include <stddef.h>

#include "comm.h"
#include "layout.h"
#include "net.h"

struct train_dp {
	struct parallel_layout lay;
	struct comm *world, *dp;   /* dp == world while DP is the only dimension */
	int rank, size;            /* in the DP group */
	bool zero1;
	size_t total, shard;       /* elements; shard = ceil(total / size) */
	size_t lo, hi;             /* this rank's shard [lo, hi) of the allocation */
	float *acc, *buf;          /* size * shard each: accumulated gradients, gather space */
	int micro_done;            /* micro-batches accumulated since the last step */
	long *load;                /* blocks * experts, summed loads */
	int blocks, experts;
	double comm_s;             /* seconds in DP collectives since the last reset */
};

/* train_dp_layout checks a requested layout against the world before any work: dp 0
 * means the world size; dp must equal the world (no other dimension is built yet) and
 * divide the global batch into per-rank batches the micro-batch divides. Returns 0, or
 * exit status 2 after cli_error's one line (rank 0 prints). */
int train_dp_layout(int dp, long batch, long micro, int *dp_out);
/* train_dp_open makes the world and DP communicators and the buffers for a model of
 * `total` parameter elements (timeout_s bounds each collective). MB_OK or MB_ERR_*. */
int train_dp_open(struct train_dp *d, int dp, bool zero1, const struct net_layout *L,
		  double timeout_s, char *why, size_t why_len);
void train_dp_close(struct train_dp *d);
/* train_dp_accumulate adds one micro-batch's gradients g and expert loads (per block,
 * NULL for non-MoE blocks) into the step's accumulators. */
void train_dp_accumulate(struct train_dp *d, const float *g, const long *const *load);
/* train_dp_step finishes a step: reduces the accumulated gradients over the group into
 * g (the mean over every micro-batch of every rank), the loads into *load_out (per
 * block pointers into d->load, NULL for non-MoE), and applies AdamW at step t (clipped by
 * the global norm, returned in *norm) to w, m, v: every element (all-reduce) or the
 * owned shard then an all-gather (ZeRO-1; m and v then hold the shard alone, as
 * train_dp_moments sized them). MB_OK or the collective's error. */
int train_dp_step(struct train_dp *d, const struct net_layout *L, const struct net_adamw *a,
		  long t, float *w, float *g, float *m, float *v, const long **load_out,
		  double *norm);
/* train_dp_moments makes a model built with o keep AdamW moments for the owned shard
 * alone under ZeRO-1 (the optimizer-state memory it saves); nothing otherwise. */
void train_dp_moments(const struct train_dp *d, struct net_options *o);
/* train_dp_gather completes x from every rank's shard [lo, hi) under ZeRO-1 (the
 * reduced gradients a step left in g, for a check); nothing otherwise. Collective. */
int train_dp_gather(struct train_dp *d, float *x);
/* train_dp_mean averages n doubles over the DP group in place (losses). */
int train_dp_mean(struct train_dp *d, double *x, int n);
/* train_dp_max takes the maximum of n doubles over the world in place (step times). */
int train_dp_max(struct train_dp *d, double *x, int n);

#endif
