/*
 * train_dp.h - the rank grid of the training step (`moebench train`, `step`) and its
 * data-parallel gradient path.
 *
 * Grid: harness/parallel/layout's Megatron order (tp-cp-dp-pp for the dense part,
 * etp-ep-edp-pp for the experts), DP = world / (TP * PP), EDP = world / (ETP * EP * PP).
 * Each rank holds a part of the model (net_part: its pipeline stage's layers, its TP
 * slices, its EP share of the routed experts; train_dp_part) whose layout places the
 * routed experts' matrices last, so the allocation is two regions:
 *   dense   [0, dense_total)      reduced over the DP group,
 *   experts [dense_total, total)  reduced over the expert-DP group.
 *
 * One optimizer step over the grid, per region:
 *   all-reduce  sum the accumulated gradients over the region's group, average, AdamW on
 *               every element on every rank (identical updates);
 *   ZeRO-1      (DeepSeek-V3 3.2.3) reduce-scatter the gradients, AdamW on the owned
 *               shard of the master weights and moments only, then all-gather of the
 *               parameters.
 * The clipping norm is the square root of a sum over the world in which every gradient
 * element is counted once: by its shard's owner (ZeRO-1) or by the group's rank 0.
 *
 * Micro-batches accumulate into one padded FP32 buffer per region (train_dp_accumulate);
 * expert loads are summed over micro-batches and the DP group so the routing-bias update
 * sees the global load. Every DP rank draws the same global batch and takes rows
 * [rank * B / dp, (rank + 1) * B / dp): the losses equal one rank's up to summation
 * order. The DP communication time is kept apart (comm_s) for the step's split by cause.
 *
 * TP (Megatron, net_layout.c slices the tensors): the model calls the collectives
 * train_dp_tp hands it over the TP group (partial outputs of row-parallel layers,
 * partial input gradients of column-parallel ones, the vocabulary-parallel embedding
 * and cross-entropy) and sums the gradients of its tp_partial tensors, so every TP rank
 * ends a backward with the same gradients of the replicated tensors; the clipping norm
 * counts replicated tensors on tp_rank 0 alone (net_grad_sumsq_range). Routed experts are
 * sliced like the dense FFN: --etp must equal --tp (EDP = world / (TP * EP * PP) then
 * holds each slice once). Their time is tp_comm_s.
 */
#ifndef MB_TRAIN_DP_H
#define MB_TRAIN_DP_H

#include <stdbool.h>
#include <stddef.h>

#include "comm.h"
#include "layout.h"
#include "model.h"
#include "net.h"

/* The layout asked for on the command line (--tp --pp --ep --etp --dp). */
struct train_grid {
	int tp, pp, ep, etp, dp;   /* dp 0: the world / (tp * pp) */
};

/* A stretch of the allocation reduced over one group. */
struct train_region {
	struct comm *c;
	int rank, size;
	size_t lo, hi;             /* [lo, hi) of the allocation */
	size_t shard;              /* ceil((hi - lo) / size) */
	size_t own_lo, own_hi;     /* the shard this rank updates under ZeRO-1 (absolute) */
	float *acc, *buf;          /* size * shard each: accumulated gradients, gather space */
};

struct train_dp {
	struct parallel_layout lay;
	struct layout_coords me;
	struct comm *world;
	struct comm *dp, *edp, *tp, *pp, *ep;   /* this rank's groups (size 1 included) */
	int rank, size;            /* in the DP group: the batch is split over it */
	bool zero1;
	size_t total;
	struct train_region reg[2];   /* dense over dp, experts over edp */
	size_t moments;            /* elements of AdamW moments kept (ZeRO-1: the shards) */
	int micro_done;            /* micro-batches accumulated since the last step */
	long *load;                /* blocks * experts, summed loads */
	int blocks, experts;
	double comm_s;             /* seconds in DP collectives since the last reset */
	double timeout_s;          /* what bounds every collective (the run's --timeout) */
	struct net_tp_comm tpc;    /* the model's TP collectives (train_dp_tp) */
	double tp_comm_s;          /* seconds in them */
	/* elements the clipping norm leaves out on this rank: a copy another rank counts
	 * (the last pipeline stage's embedding, train_pp.h) */
	size_t norm_skip_lo, norm_skip_hi;
	/* the pipeline schedule (enum pipe_schedule) and chunks per rank the parts follow
	 * (train_pp_part sets them; 0, 0: one even range per stage) */
	int pp_schedule, pp_chunks;
};

/* train_dp_layout checks a requested grid against the world and the model before any
 * work, and completes g->dp: sizes that do not divide, PP over the layers, EP not
 * dividing the experts, a batch the DP size or the micro-batch does not divide, and
 * expert slicings not built (--etp other than 1 or --tp) are refused; TP, PP, EP and DP
 * combine (scripts/par-equal-mix.sh). Returns 0, or exit status 2 after cli_error's
 * one line (rank 0 prints). */
int train_dp_layout(struct train_grid *g, long batch, long micro, const struct model_config *cfg);
/* train_sp_check refuses --sp (sequence parallelism) without --tp 2 or more, and on
 * micro-batches whose tokens (micro x seq) the TP size does not divide; it combines with
 * PP, EP and DP (scripts/par-equal-mix.sh). Returns 0, or 2 after cli_error's line. */
int train_sp_check(bool sp, const struct train_grid *g, long micro, long seq);
/* train_dp_layout_of is train_dp_layout for a world of `world` ranks, not this run's:
 * `moebench scale` checks every size of a sweep before it launches any. */
int train_dp_layout_of(int world, struct train_grid *g, long batch, long micro,
		       const struct model_config *cfg);
/* train_dp_open makes the world, the layout and every group (timeout_s bounds each
 * collective). MB_OK or MB_ERR_*. */
int train_dp_open(struct train_dp *d, const struct train_grid *g, bool zero1,
		  const struct model_config *cfg, double timeout_s, char *why, size_t why_len);
/* train_dp_part fills the part of the model this rank holds; train_dp_part_of that of
 * world rank `rank` (what rank 0 needs to place another rank's weights). */
void train_dp_part(const struct train_dp *d, const struct model_config *cfg, struct net_part *p);
void train_dp_part_of(const struct train_dp *d, const struct model_config *cfg, int rank,
		      struct net_part *p);
/* train_dp_save writes the whole model to path (safetensors, atomically) on world rank 0:
 * its own weights when every rank holds the whole model, else every rank's part
 * gathered there and placed by name (slices at their origin; copies held twice, equal,
 * written once); path NULL: gathered, not written. Collective over the world; MB_OK or
 * the error (why on rank 0). */
int train_dp_save(struct train_dp *d, const struct net_layout *L, const float *w,
		  const char *path, char *why, size_t why_len);
/* train_dp_buffers sizes the regions and buffers for this rank's layout L. */
int train_dp_buffers(struct train_dp *d, const struct net_layout *L);
void train_dp_close(struct train_dp *d);
/* train_dp_accumulate adds one micro-batch's gradients g and expert loads (per block,
 * NULL for non-MoE blocks) into the step's accumulators. */
void train_dp_accumulate(struct train_dp *d, const float *g, const long *const *load);
/* train_dp_step finishes a step: reduces the accumulated gradients over each region's
 * group into g (the mean over every micro-batch of every DP rank), the loads into
 * *load_out (per block pointers into d->load, NULL for non-MoE), and applies AdamW at step
 * t (clipped by the global norm, returned in *norm) to w, m, v: every element
 * (all-reduce) or the owned shards then an all-gather (ZeRO-1; m and v then hold the
 * shards alone, dense first, as train_dp_moments sized them). MB_OK or the collective's
 * error. */
int train_dp_step(struct train_dp *d, const struct net_layout *L, const struct net_adamw *a,
		  long t, float *w, float *g, float *m, float *v, const long **load_out,
		  double *norm);
/* train_dp_moments makes a model built with o keep AdamW moments for the owned shards
 * alone under ZeRO-1 (the optimizer-state memory it saves); nothing otherwise. */
void train_dp_moments(const struct train_dp *d, struct net_options *o);
/* train_dp_owned says whether element j's reduced gradient is this rank's after a step
 * (ZeRO-1 leaves the others unreduced; every element otherwise). */
bool train_dp_owned(const struct train_dp *d, size_t j);
/* train_dp_gather completes x from every rank's shards under ZeRO-1 (the reduced
 * gradients a step left in g, for a check); nothing otherwise. Collective. */
int train_dp_gather(struct train_dp *d, float *x);
/* train_dp_tp returns the TP collectives to hand the model (net_tp_set), timed into
 * tp_comm_s; NULL when TP is 1. */
const struct net_tp_comm *train_dp_tp(struct train_dp *d);
/* train_tp_spread sets *spread to the largest difference between the TP ranks' copies
 * of the replicated tensors of L (norms, LoRA down-projections, router: the backward
 * gives them equal gradients, so the copies must stay bit-equal: 0). Collective over the
 * TP group. */
int train_tp_spread(struct train_dp *d, const struct net_layout *L, const float *w,
		    double *spread);
/* train_dp_mean averages n doubles over the DP group in place (losses). */
int train_dp_mean(struct train_dp *d, double *x, int n);
/* train_dp_max takes the maximum of n doubles over the world in place (step times). */
int train_dp_max(struct train_dp *d, double *x, int n);

#endif
