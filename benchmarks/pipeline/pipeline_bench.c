/*
 * pipeline.c - the pipeline schedules as a case of `moebench run`: one repetition
 * generates and simulates all six schedules at PP=4 with m=8 micro-batches (F = B = W
 * = 1, F&B = F + B + W, no message cost), what `moebench pipeline` computes without
 * the printing. It runs on the host whatever the backend (CLOCK_MONOTONIC).
 *
 * The check is exact: every schedule reproduces its published closed form (these
 * durations meet every form's condition; pipeline_closed.c), and every micro-batch
 * has one forward, one backward for inputs and one for weights per stage (an F&B
 * counted as its halves, a full backward as B and W).
 *
 * `moebench pipeline` is the command that prints the table; this descriptor has no
 * command of its own (the name is taken by it) and runs only in the suite.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "driver.h"
#include "pipeline.h"
#include "status.h"

#define BENCH_PP 4
#define BENCH_MB 8
#define BENCH_CHUNKS 2
#define CLOSED_TOL 1e-9

struct pipeline_state {
	struct pipe_plan plan[PIPE_N_SCHEDULES];
	struct pipe_sim sim[PIPE_N_SCHEDULES];
	int err;
};

/* pipeline_release frees the plans and simulations of the last repetition. */
static void pipeline_release(struct pipeline_state *st)
{
	for (int s = 0; s < PIPE_N_SCHEDULES; s++) {
		pipe_sim_free(&st->sim[s]);
		pipe_plan_free(&st->plan[s]);
	}
}

/* pipeline_run builds and simulates every schedule. */
static int pipeline_run(void *state)
{
	struct pipeline_state *st = state;
	struct pipe_times t;
	char why[256];

	pipeline_release(st);
	pipe_times_default(&t);
	for (int s = 0; s < PIPE_N_SCHEDULES && !st->err; s++) {
		st->err = pipe_plan_build((enum pipe_schedule)s, BENCH_PP, BENCH_MB, BENCH_CHUNKS,
					  &st->plan[s], why, sizeof(why));
		if (!st->err)
			st->err = pipe_simulate(&st->plan[s], &t, &st->sim[s], why, sizeof(why));
		if (st->err)
			fprintf(stderr, "moebench: error: pipeline: %s\n", why);
	}
	return st->err;
}

/* count_mismatches counts (micro-batch, stage) cells of a plan that do not have
 * exactly one F, one B and one W. */
static long count_mismatches(const struct pipe_plan *p)
{
	long cells = (long)p->microbatches * p->stages, bad = 0;
	unsigned char *n = calloc((size_t)cells * 3, 1);

	if (!n)
		return cells;
	for (long i = 0; i < p->n_ops; i++) {
		const struct pipe_op *op = &p->ops[i];
		long c = (long)op->mb * p->stages + op->stage, c2 = (long)op->mb2 * p->stages + op->stage2;
		if (op->kind == PIPE_OP_F || op->kind == PIPE_OP_FB)
			n[c * 3]++;
		if (op->kind == PIPE_OP_B)
			n[c * 3 + 1]++;
		if (op->kind == PIPE_OP_FB)
			n[c2 * 3 + 1]++;
		if (op->kind == PIPE_OP_W || (op->kind == PIPE_OP_B && op->with_w))
			n[c * 3 + 2]++;
		if (op->kind == PIPE_OP_FB && op->with_w)
			n[c2 * 3 + 2]++;
	}
	for (long c = 0; c < cells * 3; c++)
		bad += n[c] != 1;
	free(n);
	return bad;
}

/* pipeline_check compares every simulated bubble with its closed form and counts the
 * operations; max_err is the largest |simulated - closed form| bubble. */
static int pipeline_check(void *state, struct bench_check *chk)
{
	struct pipeline_state *st = state;
	struct pipe_times t;
	struct pipe_closed c;

	pipe_times_default(&t);
	*chk = (struct bench_check){ .tolerance = CLOSED_TOL,
				     .metric = "abs_err(bubble_max vs closed form)" };
	for (int s = 0; s < PIPE_N_SCHEDULES; s++) {
		double e;
		pipe_closed_form(&st->plan[s], &t, &c);
		e = fabs(st->sim[s].bubble_max - c.bubble);
		chk->max_err = fmax(chk->max_err, isnan(e) ? INFINITY : e);
		chk->mismatches += !(e <= CLOSED_TOL) || !c.exact;
		chk->mismatches += count_mismatches(&st->plan[s]);
		chk->samples += 1 + (long)st->plan[s].microbatches * st->plan[s].stages;
	}
	return MB_OK;
}

/* pipeline_destroy frees the state. */
static void pipeline_destroy(void *state)
{
	pipeline_release(state);
	free(state);
}

/* pipeline_bench_run runs the one case on a host backend of its own. */
static int pipeline_bench_run(struct run_ctx *ctx)
{
	struct bench_case c = { .peak = NAN };
	struct pipeline_state *st = calloc(1, sizeof(*st));

	if (!st)
		return MB_ERR_NOMEM;
	snprintf(c.name, sizeof(c.name), "cpu/pipeline_sim/all_pp%d_m%d", BENCH_PP, BENCH_MB);
	c.params = cJSON_CreateObject();
	cJSON_AddStringToObject(c.params, "op", "pipeline_sim");
	cJSON_AddNumberToObject(c.params, "pp", BENCH_PP);
	cJSON_AddNumberToObject(c.params, "microbatches", BENCH_MB);
	cJSON_AddNumberToObject(c.params, "chunks", BENCH_CHUNKS);
	c.state = st;
	c.run = pipeline_run;
	c.check = pipeline_check;
	c.destroy = pipeline_destroy;
	/* NOTE: arithmetic on the host: a CUDA backend would time it with GPU events. */
	return driver_run_case_on_host(ctx, &c);
}

const struct bench_desc bench_pipeline = {
	.name = "pipeline",
	.summary = "pipeline schedules: simulated bubble vs closed forms, timeline, --execute",
	.usage = "moebench pipeline [options]   (the suite times six schedules' simulation "
		 "and checks it against the closed forms)",
	.warmup = "1",
	.iters = "5",
	.min_time = "0.2",
	.run = pipeline_bench_run,
	.command = cmd_pipeline,
};
