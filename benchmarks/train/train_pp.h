/*
 * train_pp.h - pipeline parallelism on the training step (`moebench train --pp N
 * --schedule NAME`): the layers split into stages (train_dp_part; interleaved gives each
 * rank several layer ranges, one per chunk), the step's micro-batches run by a schedule
 * of harness/pipeline (generated, lowered to this rank's program, run by the MPI
 * executor with the model's stage forward and backward as the work), activations and
 * gradients sent between stages by the executor.
 *
 * Every micro-batch in flight has its own model (activations) sharing the weights and
 * the gradients of the caller's (net_share_params): the backward of each micro-batch adds
 * into one gradient, which goes to the data-parallel path (train_dp) as the step's
 * accumulated gradient of n_micro micro-batches.
 *
 * The embedding: the first stage embeds, the last holds a copy for MTP (as Megatron
 * keeps tied embeddings): their gradients are summed over the first and last stage
 * before the optimizer, so both copies take the same update and stay equal to the
 * single-rank embedding; the clipping norm counts the copy once (the first stage's).
 * (DualPipe: the pair sum covers it; DualPipeV: device 0 holds both ends, one copy.)
 *
 * Losses exist on the last stage only (the balance loss on every stage with MoE
 * blocks): the step's losses are summed over the pipeline, so every rank reports them.
 *
 * The bubble: the executor times every operation's compute; each rank's idle time is
 * the step's span minus its compute time. The step's measured times go to the simulator
 * for the same plan: each op's own compute time plus the executor's measured cost before
 * an op (posting and completing a receive, which for large messages is the transfer, or
 * the previous op's sends), the measured message latency between stages
 * (pipe_simulate_ops); the predicted idle of a rank is the simulated step time minus its
 * compute time. A stage-level figure takes each stage's (chunk's) mean F and B instead
 * (pipe_simulate_devices: blind to micro-batches of unequal cost, e.g. MoE load).
 *
 * Schedules: gpipe, 1f1b, interleaved (a layer range per chunk, virtual stage c*PP + d),
 * zb-h1 (B the input gradient, W the linear layers' deferred weight gradients:
 * net_stage_backward_input / net_stage_wgrad; attention's weight gradients stay in B),
 * dualpipe (device d holds stage d of direction 0 and stage PP-1-d of direction 1: two
 * copies of every stage over the device pairs, their gradients summed over the pair
 * before the optimizer, so both copies take the same update) and dualpipev (device d
 * holds stages d and 2PP-1-d of the V; the turn at device PP-1 passes through a
 * per-micro-batch buffer, no message). DualPipe's overlapped F&B pairs run as the
 * forward then the backward (one CPU core: no overlap to gain). Refused before any work
 * (train_pp_check): DualPipe with an odd number of stages, layers the virtual stages do
 * not divide (interleaved PP x v, DualPipeV 2 PP), micro-batch counts the schedule's
 * generator refuses.
 */
#ifndef MB_TRAIN_PP_H
#define MB_TRAIN_PP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pipeline.h"
#include "train_dp.h"
#include "train_ep.h"

#define TRAIN_PP_MAX 64

struct train_pp {
	struct train_dp *d;
	int pp, stage, chunks, n_micro, len;
	size_t mb_tokens;              /* tokens of one micro-batch (micro x len) */
	size_t msg;                    /* floats per activation or gradient message */
	struct pipe_plan plan;
	struct pipe_exec_program prog;
	struct pipe_exec_stage work;
	struct net_f32 **mb;           /* n_micro models; mb[0] the caller's, owning the weights */
	const int32_t *rows;           /* the step's micro-batches, n_micro x mb_tokens */
	struct net_stats *st;          /* per (micro-batch, chunk) */
	struct comm *embed;            /* the first and last stage (the embedding copies) */
	size_t emb_lo, emb_hi;         /* the embedding's elements in the allocation */
	float *vbuf;                   /* validation messages */
	float *turn;                   /* DualPipeV: per micro-batch, the message between the
					* two stages of the V on one device */
	struct train_ep *mb_ep;        /* EP: [n_micro], each micro-batch model's dispatch and
					* combine state ([0] unused: mb[0] has the caller's) */
	/* bubble figures, every rank of the pipeline (per rank of it; rank 0 computes them) */
	int steps;
	double idle[TRAIN_PP_MAX], sim[TRAIN_PP_MAX];   /* summed over the steps */
	double sim_mean[TRAIN_PP_MAX]; /* the simulator from each stage's mean op times */
	double last_idle, last_sim;    /* the last step, slowest rank: measured, simulated */
	double span;                   /* summed step spans */
	double msg_s;                  /* summed per-message times the simulator was given */
	double recv_s;                 /* summed per-receive costs the simulator was given */
};

/* train_pp_check refuses before any work, with cli_error_once's one line (returns 2), a
 * schedule that is unknown or not built, DualPipe with an odd number of stages, layers
 * the schedule's chunks do not divide, micro-batch counts the schedule cannot run. */
int train_pp_check(int pp, const char *schedule, int chunks, long n_micro,
		   const struct model_config *cfg);
/* train_pp_part records the schedule in d (every rank's part follows it: train_dp_part_of,
 * the gathering of --save) and fills this rank's part: its layer range per chunk. */
void train_pp_part(struct train_dp *d, const struct model_config *cfg, const char *schedule,
		   int chunks, struct net_part *p);
/* train_pp_stage_part sets the pipeline fields of part p for device `stage` of pp under
 * schedule (enum pipe_schedule) with `chunks` chunks per device. */
void train_pp_stage_part(const struct model_config *cfg, int schedule, int pp, int chunks,
			 int stage, struct net_part *p);
/* train_pp_open prepares the step: the plan, this rank's program, a model per
 * micro-batch sharing m0's weights, the embedding group. MB_OK or MB_ERR_*. */
int train_pp_open(struct train_pp *p, struct train_dp *d, struct net_f32 *m0,
		  const char *schedule, int chunks, int micro, int seq, int n_micro, uint64_t seed);
void train_pp_close(struct train_pp *p);
/* train_pp_comm (train_mix.c) gives the micro-batch models mb[1..] the caller's TP
 * collectives tp (NULL: none) and, when ep runs over more than one rank, each its own EP
 * state over ep's group: a micro-batch's backward reuses its forward's dispatch layout,
 * and other micro-batches run between the two (1f1b, interleaved, DualPipe). The EP group
 * holds the ranks of one pipeline stage, which run the same program: their dispatches
 * and combines come in the same order. MB_OK or MB_ERR_NOMEM. */
int train_pp_comm(struct train_pp *p, const struct net_tp_comm *tp, const struct train_ep *ep);
/* train_pp_ep_exposed is the seconds the micro-batch models' own EP states spent in
 * dispatch and combine (the caller's model counts in its own train_ep). */
double train_pp_ep_exposed(const struct train_pp *p);
/* train_pp_step runs the forward and backward of the step's micro-batches (rows: this
 * rank's n_micro x micro sequences) through the pipeline and leaves their summed
 * gradient accumulated in d (n_micro micro-batches), the embedding copies' gradients
 * summed; x[0..2]: the mean main, MTP and total loss (summed over the stages). */
int train_pp_step(struct train_pp *p, const int32_t *rows, double x[3]);
/* train_pp_eval runs the forwards alone and returns the mean main loss (every rank). */
int train_pp_eval(struct train_pp *p, const int32_t *rows, double *main_loss);

/* train_pp_reference_f64 is the FP64 model md's forward and backward of one micro-batch
 * (rows; the pipeline opened with one) through the stages in order, for `step`'s check:
 * the gradients of this rank's part in md (overwritten; the embedding copies summed) and
 * the total loss, summed over the stages, in *loss. Collective over the pipeline. */
int train_pp_reference_f64(struct train_pp *p, struct net_f64 *md, const int32_t *rows,
			   double *loss);
/* train_pp_plant adds delta to element j of the step's accumulated gradient (`step
 * --plant-error`: the check must catch it). */
void train_pp_plant(struct train_pp *p, size_t j, float delta);
/* train_pp_record adds the pipeline's parameters and bubble figures (per step: each
 * rank's measured idle time and the simulator's, the slowest rank's, the message time) to
 * record rec and writes the summary line (pipeline rank 0 holds the figures). */
void train_pp_record(const struct train_pp *p, const char *schedule, cJSON *rec, char *line,
		     size_t len);

#endif
