/*
 * train_state.h - the state of one `moebench train` run, shared by the command
 * (cmd_train.c), its record (train_record.c) and its device loop (train_dev.c).
 */
#ifndef MB_TRAIN_STATE_H
#define MB_TRAIN_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "bpe.h"
#include "driver.h"
#include "net.h"
#include "net_data.h"
#include "rng.h"
#include "train_dp.h"
#include "train_ep.h"
#include "train_overlap.h"
#include "train_pp.h"
#include "train_replicas.h"
#include "train_run.h"
#include "train_split.h"

struct train_dev;

/* The state of one training run. */
struct trainer {
	const struct train_opts *o;   /* the command's options */
	struct model_config cfg;
	struct net_layout L;
	struct net_options no;
	struct net_adamw adam;
	struct net_corpus corpus;
	struct net_f32 *m;
	struct mb_rng rng;
	struct bpe *bpe;
	int32_t *tok;
	int len;
	double flops_per_token, peak_flops;
	struct train_curve curve;
	struct train_dp dp;
	struct train_pp pp;
	struct train_ep ep;
	/* --ep-overlap: the second micro-batch in flight (weights shared with m), its EP
	 * state over a duplicate of the EP group, and the baton of the two chunks */
	struct net_f32 *m2;
	struct train_ep ep2;
	struct comm *ep_dup;
	struct train_overlap ov;
	bool ov_on;
	struct train_replicas rep;      /* --replicas (rep.r 1: the micro-batches in turn) */
	double *x_acc;                  /* train_micro's sums while overlapping */
	int micro, n_micro, per_rank;   /* sequences per forward, forwards per rank-step */
	double tp_spread;               /* TP replicas' largest difference at --save (NaN: none) */
	bool moe;
	struct net_profile prof;        /* the phases of every model of the rank */
	struct train_split split;       /* this rank's time by cause, summed over the steps */
	double split_step_s;            /* this rank's own step times, summed */
	const char *split_over;         /* what the split sums (the record's "over") */
	/* --backend cuda (train_dev.c): the model in device memory on one rank */
	struct train_dev *dev;          /* NULL on the CPU */
};

/* What the split's terms were at a step's start. */
struct split_mark {
	double ph[NET_PH_COUNT], dp, tp, idle, sim;
};

/* train_ep_seconds is this rank's time in EP dispatch/combine so far, exposed (every
 * model's: the pipeline's micro-batch models and --ep-overlap's second model). */
double train_ep_seconds(const struct trainer *t);
/* train_record adds the run's record (final figures, median tokens/s), its time by cause
 * and the summary to ctx->doc. Collective over the world. */
int train_record(struct run_ctx *ctx, struct trainer *t, int run_err);


/* ---- --backend cuda (train_dev.c) ---- */
/* train_dev_refuse returns MB_ERR_ARG after one error line for what the device loop does
 * not take (more than one rank, --zero1, --sp, --ep-overlap, --replicas), else MB_OK. */
int train_dev_refuse(const struct train_opts *o, int world);
/* train_dev_open makes t->m on the device (t->L, t->no, t->micro), the event clock and
 * the weights' host copy, and sets t->peak_flops; 0 or exit status 2 (one error line). */
int train_dev_open(struct trainer *t, const struct backend *be, uint64_t seed);
/* train_dev_attach gives t (t->o, t->L, t->cfg, t->m, t->micro, t->n_micro, t->len set)
 * the device loop's state around a model made elsewhere (a test's, on the CPU table):
 * train_dev_open without the device, the clock and the peaks. MB_OK or MB_ERR_NOMEM. */
int train_dev_attach(struct trainer *t);
/* train_dev_host is the weights' host copy; train_dev_params fills it from the device
 * (upload false) or sends it there. MB_OK or the error. */
float *train_dev_host(struct trainer *t);
int train_dev_params(struct trainer *t, bool upload);
/* train_dev_step runs optimizer step `step` (0-based; t->adam.lr set) on tok (t->n_micro
 * micro-batches of t->micro rows of t->len): forward and backward of each, their mean
 * gradient, AdamW with the clip, the bias update; waits for the stream. x[0..2] the mean
 * losses (main, MTP, total), x[3] the step's seconds, x[4..5] 0 (no EP); *norm the
 * gradient norm before clipping; load[block] the experts' loads summed over the
 * micro-batches. The profiled step adds its phases to t->split. */
int train_dev_step(struct trainer *t, long step, const int32_t *tok, double *x, double *norm,
		   const long **load);
/* train_dev_record adds the device's figures to record r (tok_s: the median tokens/s)
 * and a line to lines. */
void train_dev_record(const struct trainer *t, double tok_s, cJSON *r, char *lines, size_t len);
/* train_dev_close frees the device model, the clock and the table train_dev_open
 * opened, and the host copy. */
void train_dev_close(struct trainer *t);

#endif
