/*
 * train_run.h - what `moebench train` (cmd_train.c) and its output (train_out.c)
 * share: the options, the running figures of one step, the loss curve.
 */
#ifndef MB_TRAIN_RUN_H
#define MB_TRAIN_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "model.h"
#include "net.h"

struct train_opts {
	const char *preset, *precision, *data, *out, *csv, *peak_file;
	const char *save, *init_from, *tokenizer, *dispatch, *schedule;
	int64_t steps, batch, seq, warmup, val_every, val_batches, vocab, dp, micro;
	int64_t replicas;  /* --replicas: micro-batches side by side (train_replicas.h) */
	int64_t tp, pp, ep, etp, ranks_per_node, chunks;
	double lr, min_lr, init_std, mtp_weight, alpha, gamma, clip, wd, time_limit;
	double timeout;  /* seconds a DP collective may wait (comm.h) */
	uint64_t seed;
	bool quiet, force, zero1;
	bool overlap;    /* --ep-overlap: F of one micro-batch beside B of another */
	bool sp;         /* --sp: sequence parallelism under --tp (net_options.sp) */
};

/* One row of the loss curve. */
struct train_point {
	long step;
	double tokens, loss, mtp_loss, val_loss, lr, grad_norm, step_ms, tok_s, mfu, load;
	/* a 32-bit hash of the step's global tokens per expert (every MoE block), NaN for a
	 * dense model: runs with equal hashes routed alike (equality tests compare runs
	 * whose selections agree; a rounding-level tie flipped elsewhere shows here) */
	double load_hash;
	/* expert parallelism: the slowest rank's dispatch/combine time in the step that it
	 * waited for (all of it without --ep-overlap), 0 without EP */
	double ep_ms;
	/* pipeline: the step's idle time of its slowest rank, measured and as the simulator
	 * predicts it from the step's own op times (NaN without --pp) */
	double pp_bubble_ms, pp_bubble_sim_ms;
	/* --ep-overlap: the largest over the ranks of the dispatch/combine time hidden
	 * under the other chunk's compute (ep_ms is then the exposed part); 0 otherwise */
	double ep_hidden_ms;
};

struct train_curve {
	struct train_point *p;
	long n, cap;
};

/* train_curve_add appends a point; returns MB_OK or MB_ERR_NOMEM. */
int train_curve_add(struct train_curve *c, const struct train_point *pt);
/* train_print_step prints the llm.c/Megatron-style line of one step to stdout. */
void train_print_step(const struct train_point *p, long steps, bool moe);
/* train_write_csv writes the curve with '#' provenance lines (doc's context). */
int train_write_csv(const char *path, const cJSON *doc, const struct train_curve *c,
		    bool force, char *why, size_t why_len);
/* train_summary adds doc["summary"]["train"]: text lines and the curve. */
int train_summary(cJSON *doc, const struct train_curve *c, const char *lines);

/* train_measured_rate reads the TFLOP/s of the records of `op` (sgemm, bf16_gemm,
 * fp8_tensor_gemm, ...) of a `moebench peak` result file into *tflops (the last one; NaN
 * when it has none). Returns MB_OK, or the read error with why. */
int train_measured_rate(const char *path, const char *op, double *tflops, char *why,
			size_t why_len);

/* train_val_range returns the curve's first and best validation losses (NaN: none). */
void train_val_range(const struct train_curve *c, double *first, double *best);
/* train_times stores the steps' time statistics (time_s) in record r and returns the
 * median tokens/s (tokens_per_step over the median step); *steps the steps timed. */
double train_times(cJSON *r, const struct train_curve *c, double tokens_per_step,
		   long *steps);
/* train_ep_median_ms is the median over the steps of the slowest rank's EP time,
 * exposed or (hidden) hidden under the other chunk's compute; NaN without any. */
double train_ep_median_ms(const struct train_curve *c, bool hidden);

#endif
