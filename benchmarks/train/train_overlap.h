/*
 * train_overlap.h - DualPipe's F&B overlap on the CPU for expert parallelism (`train`
 * and `step` with --ep N --micro-batch m --ep-overlap): the forward of micro-batch j+1
 * runs beside the backward of micro-batch j, so that each one's EP dispatch/combine
 * travels while the other computes.
 *
 * Two threads, one per chunk, pass a baton: only the holder computes or calls MPI
 * (MPI_THREAD_SERIALIZED), so the order of the work is fixed and the same on every
 * rank, BLAS sees one caller at a time, and only the backward writes gradients. At
 * each EP operation the holder posts it (MPI_Ialltoallv, MPI_Iallgather: comm_mpi.c's
 * wait hook) and hands the baton over; it waits for the operation only when the baton
 * comes back. Open MPI moves data only inside MPI calls, so the computing chunk tests
 * the other's operation at its op boundaries (the profile clock of its model, around
 * every GEMM). The arithmetic is the plain loop's: the same forwards and backwards,
 * gradients accumulated in micro-batch order, so the results are bit-identical.
 *
 * Each micro-batch in flight has its own model (activations; weights and gradients
 * shared, net_share_params) and its own EP state (struct train_ep: the layouts a
 * forward keeps for its backward) over its own duplicate of the EP group, so each
 * communicator sees one chunk's operations in program order.
 *
 * Time: away_s is the time a chunk spent holding no baton inside an EP operation (the
 * other chunk computed meanwhile); hidden_s the part of it during which the operation
 * was in flight: from posting until a test saw it complete (one op's resolution) or
 * the baton came back. Exposed EP time is the callbacks' wall time less away_s.
 */
#ifndef MB_TRAIN_OVERLAP_H
#define MB_TRAIN_OVERLAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "comm.h"
#include "net.h"

struct train_overlap {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int turn;                      /* the chunk holding the baton: 0 forward, 1 backward */
	bool live[2];                  /* the chunk has work left in this pair */
	bool pairing;                  /* a pair is running: the hook hands the baton over */
	pthread_t holder;              /* the holder's thread (the only one that tests) */
	struct comm_req *pending[2];   /* a chunk's operation in flight while it is away */
	double t_done[2];              /* when a test saw it complete (0: not yet) */
	struct net_profile prof[2];    /* the clocks of the two models (the progress tests) */
	int prof_of[2];                /* the profile of each chunk in this pair */
	double away_s, hidden_s;       /* totals since init */
	long handoffs;                 /* operations overlapped */
};

/* The work of one optimizer step's micro-batches: model m[k % n_models] runs
 * micro-batch k (n_models even: the overlap's clocks and EP states go by k % 2). */
struct train_overlap_job {
	struct net_f32 *const *m;
	int n_models, n_micro;
	const int32_t *(*rows)(void *ctx, int k);   /* micro-batch k's tokens */
	/* done is called after micro-batch k's backward, in order of k, with its forward's
	 * figures: it accumulates the gradients (still in the models' shared buffer) */
	void (*done)(void *ctx, struct net_f32 *m, int k, const struct net_stats *st);
	void *ctx;
};

/* train_overlap_check refuses (cli_error_once, exit status 2) --ep-overlap outside EP
 * over 2+ ranks, with --pp, with fewer than 2 micro-batches per rank, or under an MPI
 * without MPI_THREAD_SERIALIZED. Returns 0 or 2. */
int train_overlap_check(int ep, int pp, int n_micro);
/* train_overlap_init prepares o and hooks it on the EP communicators of the even and
 * odd micro-batches' models, and sets the profile clocks of m0 and m1 (more models:
 * net_profile_set_f32(m[k], &o->prof[k % 2])). Returns MB_OK or an error. */
int train_overlap_init(struct train_overlap *o, struct comm *c0, struct comm *c1,
		       struct net_f32 *m0, struct net_f32 *m1);
void train_overlap_free(struct train_overlap *o, struct comm *c0, struct comm *c1);
/* train_overlap_run runs the job: F0, then F(k+1) beside B(k) for each k, then the last
 * B. Returns MB_OK or the first error of a forward or backward. */
int train_overlap_run(struct train_overlap *o, const struct train_overlap_job *j);

/* train_overlap_fold moves the two models' phase times (their own clocks) into prof
 * and zeroes them, so a split counts both chunks' compute once. */
void train_overlap_fold(struct train_overlap *o, struct net_profile *prof);

#endif
