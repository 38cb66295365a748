/*
 * step_micro.h - micro-batches in `moebench step` (--micro-batch m: the rank's
 * sequences in forwards of m sequences, gradients accumulated as `train` accumulates
 * them) and, under --ep, --ep-overlap: the forward of one micro-batch beside the
 * backward of the previous one (train_overlap.h).
 *
 * One model per micro-batch, weights and gradients shared (net_share_params): each
 * keeps its forward's expert selection, which the FP64 check takes micro-batch by
 * micro-batch (the reference's gradients are the mean of its micro-batches', as the
 * step's are).
 *
 * --replicas r (train_replicas.h): the micro-batches run r at a time, each model
 * writing its own gradients (net_share_weights), all but the last's added into the
 * accumulator in micro-batch order after the wave. The last micro-batch runs on the
 * step's own model (its gradients in the shared buffer, as the caller expects),
 * micro-batch k < n-1 on model k + 1.
 */
#ifndef MB_STEP_MICRO_H
#define MB_STEP_MICRO_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "ep.h"
#include "net.h"
#include "train_dp.h"
#include "train_ep.h"
#include "train_overlap.h"
#include "train_replicas.h"

struct step_micro {
	int micro, n;              /* sequences per micro-batch, micro-batches (n <= 1: off) */
	int replicas;              /* --replicas: micro-batches run side by side (1: in turn) */
	struct net_profile rprof[TRAIN_REPLICAS_MAX];  /* each thread's clock, folded after a wave */
	struct net_stats rst[TRAIN_REPLICAS_MAX];      /* each thread's forward */
	struct net_profile *prof;  /* the step's clock */
	int len;                   /* tokens of one sequence row */
	struct net_f32 **m;        /* [n]: m[0] is the step's own model */
	struct train_dp *dp;
	struct comm *ep_dup;       /* --ep-overlap: the odd micro-batches' EP group */
	struct train_ep ep2;
	struct train_overlap ov;
	bool ov_on;
	const int32_t *rows;       /* the running step's rows */
	struct net_stats sum;      /* its forwards' figures, averaged */
};

/* step_micro_check refuses --micro-batch with --pp, and --ep-overlap where it cannot
 * run (train_overlap_check), after train_dp_layout. Returns 0 or exit status 2. */
int step_micro_check(long per_rank, long micro, int ep, int pp, bool overlap);

/* step_grad_error returns ||g - ref|| / ||ref|| over up to 4096 evenly spaced elements
 * of tensor t (the check's measure of a gradient). */
double step_grad_error(const struct net_tensor *t, const float *g, const double *ref);
/* step_grad_check adds tensor t's error (step_grad_error over gtol: it passes at <= 1)
 * to chk's largest error, samples and mismatches. */
void step_grad_check(const struct net_tensor *t, const float *g, const double *ref,
		     double gtol, struct bench_check *chk);
/* step_micro_open makes the models of micro-batches 1..n-1 of layout L beside m0
 * (micro sequences of seq tokens, rows of len), their EP callbacks (ep, or ep and a second state over a
 * duplicate of ep's group with overlap) and their clock (prof, or the overlap's).
 * Nothing to do for n <= 1. Returns MB_OK or an error. */
int step_micro_open(struct step_micro *sm, const struct net_layout *L, struct net_f32 *m0,
		    int micro, int n, int seq, int len, struct train_dp *dp, struct train_ep *ep, int rpn, enum ep_wire wire,
		    bool overlap, int replicas, struct net_profile *prof);
void step_micro_close(struct step_micro *sm);
/* step_micro_run runs the forward and backward of every micro-batch of rows,
 * accumulating the gradients of all but the last into dp (the last ones are left in
 * the shared buffer for the caller, the plant of --plant-error and the accumulation);
 * *st gets the forwards' mean losses. */
int step_micro_run(struct step_micro *sm, const int32_t *rows, struct net_stats *st);
/* step_micro_model is the model micro-batch k ran on; step_micro_last the last's (its
 * loads). */
struct net_f32 *step_micro_model(const struct step_micro *sm, int k);
struct net_f32 *step_micro_last(const struct step_micro *sm);
/* step_micro_reference runs md (micro sequences) on each micro-batch of rows with that
 * micro-batch's selection: md's gradients become the mean of the micro-batches', *loss
 * their mean loss. Returns MB_OK or an error. */
int step_micro_reference(struct step_micro *sm, struct net_f64 *md, const int32_t *rows,
			 double *loss);
/* step_micro_profile adds the overlap's clocks into prof (once, at the end). */
void step_micro_profile(struct step_micro *sm, struct net_profile *prof);
/* step_micro_ep returns the exposed EP seconds beyond ep's own (the second state's,
 * less the time away) and the hidden ones. */
void step_micro_ep(const struct step_micro *sm, double *exposed_extra, double *hidden);

#endif
