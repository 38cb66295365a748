/*
 * train_replicas.h - --replicas N in `train` and `step`: data parallelism inside the
 * process. A rank's micro-batches run N at a time, each whole forward and backward on
 * its own thread with one BLAS thread, and their gradients are summed in micro-batch
 * order after each wave, as when they run in turn: the same bits as --micro-batch alone.
 *
 * NOTE: why: on a 2-core machine one GEMM of v3-tiny's shapes split over two BLAS
 * threads ran at ~60% of two single-threaded ones side by side, and the step's
 * element-wise work ran on one core; two micro-batches side by side use both cores
 * for all of it (REPRODUCE.md). Each model of a wave writes its own gradients
 * (net_share_weights): N - 1 more buffers the size of the model's. The layout's
 * collectives (--tp, --ep, --pp) are called from inside the forward and backward, so
 * they are not combined with it; --dp is (its collectives run after the waves).
 */
#ifndef MB_TRAIN_REPLICAS_H
#define MB_TRAIN_REPLICAS_H

#include <stdbool.h>
#include <stdint.h>

#include "net.h"
#include "train_dp.h"

#define TRAIN_REPLICAS_MAX 64

/* train_replicas_check refuses --replicas r that the rank's micro-batches (per_rank /
 * *micro, or r of per_rank / r sequences when *micro is 0: *micro is then set) do not
 * fill in whole waves, or beside collectives inside the forward (--tp, --ep, --pp,
 * --ep-overlap). Returns 0 or exit status 2 (one error line). */
int train_replicas_check(long per_rank, long *micro, long replicas, int tp, int ep, int pp,
			 bool overlap);

/* train_replicas_run runs the forward (into st[i]) and backward of m[i] on rows[i] for
 * i < n side by side, one thread each and OpenBLAS at one thread meanwhile; the models'
 * clocks prof[i] (when into is not NULL) are then added into `into`: a phase took the
 * mean of the threads' times, a GEMM's FLOPs add. Returns MB_OK or the first error. */
int train_replicas_run(struct net_f32 *const *m, const int32_t *const *rows, int n,
		       struct net_stats *st, struct net_profile *prof, struct net_profile *into);

/* `train`'s replicas: r models, m[0] the trainer's own, each with its clock. */
struct train_replicas {
	int r;
	struct net_f32 *m[TRAIN_REPLICAS_MAX];
	struct net_profile prof[TRAIN_REPLICAS_MAX];
	struct net_stats st[TRAIN_REPLICAS_MAX];
	struct net_profile *into;   /* the run's clock */
};

/* train_replicas_open makes models 1..r-1 beside m0 (weights shared, gradients their
 * own; micro sequences of seq tokens) and points every model's clock at its own, folded
 * into prof. r <= 1 leaves m0 alone. Returns MB_OK or an error. */
int train_replicas_open(struct train_replicas *p, const struct net_layout *L, struct net_f32 *m0,
			int r, int micro, int seq, struct net_profile *prof);
void train_replicas_close(struct train_replicas *p);
/* train_replicas_micro runs n micro-batches (rows(ctx, k)) in waves of p->r, adding
 * each one's gradients and loads into dp in micro-batch order and its mean losses into
 * x[0..2] (main, MTP, total). Returns MB_OK or an error. */
int train_replicas_micro(struct train_replicas *p, struct train_dp *dp, int n,
			 const int32_t *(*rows)(void *ctx, int k), void *ctx, double *x);

#endif
