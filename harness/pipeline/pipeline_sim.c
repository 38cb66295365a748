/*
 * pipeline_sim.c - the event simulator of a pipeline plan (pipeline.h): every
 * operation's start and end, each device's busy time, bubble, gap and peak in-flight
 * activations.
 *
 * The simulator keeps a cursor per device and a stack of devices that may advance. A
 * device runs operations in its order while their inputs exist, each starting at
 * max(the device's clock, its inputs' arrival); when a forward or backward finishes,
 * the device that consumes its output (the next stage's for a forward, the previous
 * stage's for a backward) goes on the stack. Every operation is started once and every
 * wake-up follows a finished operation, so the cost is O(operations): a million in
 * well under a second.
 *
 * Each device's bubble is the step time minus its busy time; its gap the idle time
 * between its own first and last operation (pipeline.h). How the results compare with
 * the closed forms is in pipeline_closed.c.
 */
#include "pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

struct sim {
	const struct pipe_plan *p;
	const struct pipe_times *t;
	const struct pipe_times *dev;   /* per device and chunk (measured), or NULL: t */
	const double *dur;              /* per operation (measured), or NULL */
	struct pipe_sim *out;
	double comm;              /* one message between two devices */
	double *f_end, *b_end;    /* per (micro-batch, stage); < 0: not yet */
	long *cur;                /* per device: its next operation */
	double *clock;            /* per device: when its last operation ended */
	int *stack, top;
	unsigned char *queued;
};

/* hop is the message time from the device of (mb, from) to that of (mb, to). */
static double hop(const struct sim *s, int mb, int from, int to)
{
	return pipe_stage_device(s->p, mb, from) == pipe_stage_device(s->p, mb, to) ? 0 : s->comm;
}

/* f_ready is when forward (mb, stage)'s input has arrived; < 0: not yet produced. */
static double f_ready(const struct sim *s, int mb, int stage)
{
	double e;

	if (stage == 0)
		return 0;
	e = s->f_end[(long)mb * s->p->stages + stage - 1];
	return e < 0 ? -1 : e + hop(s, mb, stage - 1, stage);
}

/* b_ready is when backward (mb, stage)'s inputs exist: its own forward and the
 * gradient from the next stage (the last stage needs its forward only). */
static double b_ready(const struct sim *s, int mb, int stage)
{
	long i = (long)mb * s->p->stages + stage;
	double own = s->f_end[i], g;

	if (own < 0)
		return -1;
	if (stage == s->p->stages - 1)
		return own;
	g = s->b_end[i + 1];
	if (g < 0)
		return -1;
	g += hop(s, mb, stage + 1, stage);
	return g > own ? g : own;
}

/* op_ready is when an operation's inputs exist; < 0 while one is missing. */
static double op_ready(const struct sim *s, const struct pipe_op *op)
{
	double a, b;

	switch (op->kind) {
	case PIPE_OP_F:
		return f_ready(s, op->mb, op->stage);
	case PIPE_OP_B:
		return b_ready(s, op->mb, op->stage);
	case PIPE_OP_W:
		return s->b_end[(long)op->mb * s->p->stages + op->stage];
	default:
		a = f_ready(s, op->mb, op->stage);
		b = b_ready(s, op->mb2, op->stage2);
		return a < 0 || b < 0 ? -1 : a > b ? a : b;
	}
}

/* wake puts the device of (mb, stage) on the stack unless it is there already. */
static void wake(struct sim *s, int mb, int stage)
{
	int d;

	if (stage < 0 || stage >= s->p->stages)
		return;
	d = pipe_stage_device(s->p, mb, stage);
	if (!s->queued[d]) {
		s->queued[d] = 1;
		s->stack[s->top++] = d;
	}
}

/* finish records an operation's outputs and wakes their consumers. */
static void finish(struct sim *s, const struct pipe_op *op, double end)
{
	long S = s->p->stages;

	if (op->kind == PIPE_OP_F || op->kind == PIPE_OP_FB) {
		s->f_end[op->mb * S + op->stage] = end;
		wake(s, op->mb, op->stage + 1);
	}
	if (op->kind == PIPE_OP_B) {
		s->b_end[op->mb * S + op->stage] = end;
		wake(s, op->mb, op->stage - 1);
	}
	if (op->kind == PIPE_OP_FB) {
		s->b_end[op->mb2 * S + op->stage2] = end;
		wake(s, op->mb2, op->stage2 - 1);
	}
}

/* advance runs device d's operations while their inputs exist. */
static void advance(struct sim *s, int d)
{
	const struct pipe_plan *p = s->p;

	while (s->cur[d] < p->first[d + 1]) {
		long i = s->cur[d];
		const struct pipe_op *op = &p->ops[i];
		double ready = op_ready(s, op), start;

		if (ready < 0)
			return;
		start = ready > s->clock[d] ? ready : s->clock[d];
		s->out->start[i] = start;
		const struct pipe_times *t = s->dev ? &s->dev[d * p->chunks +
						pipe_stage_chunk(p, op->mb, op->stage)] : s->t;
		s->out->end[i] = s->clock[d] = start + (s->dur ? s->dur[i] : pipe_op_duration(p, op, t));
		s->cur[d]++;
		finish(s, op, s->out->end[i]);
	}
}

/* sim_alloc allocates the simulation's state and results. */
static int sim_alloc(struct sim *s, const struct pipe_plan *p, struct pipe_sim *out)
{
	size_t cells = (size_t)p->microbatches * (size_t)p->stages, n = (size_t)p->pp;

	out->start = malloc((size_t)p->n_ops * sizeof(double) + 1);
	out->end = malloc((size_t)p->n_ops * sizeof(double) + 1);
	out->dev = calloc(n, sizeof(*out->dev));
	s->f_end = malloc(cells * sizeof(double));
	s->b_end = malloc(cells * sizeof(double));
	s->cur = malloc(n * sizeof(long));
	s->clock = calloc(n, sizeof(double));
	s->stack = malloc(n * sizeof(int));
	s->queued = calloc(n, 1);
	if (!out->start || !out->end || !out->dev || !s->f_end || !s->b_end || !s->cur ||
	    !s->clock || !s->stack || !s->queued)
		return MB_ERR_NOMEM;
	for (size_t i = 0; i < cells; i++)
		s->f_end[i] = s->b_end[i] = -1;
	return MB_OK;
}

/* sim_release frees the simulation's state (not its results). */
static void sim_release(struct sim *s)
{
	free(s->f_end);
	free(s->b_end);
	free(s->cur);
	free(s->clock);
	free(s->stack);
	free(s->queued);
}

/* describe_stuck names the first operation of the first device that never ran. */
static void describe_stuck(const struct sim *s, char *why, size_t len)
{
	static const char kinds[] = "FBWX";

	for (int d = 0; d < s->p->pp; d++)
		if (s->cur[d] < s->p->first[d + 1]) {
			const struct pipe_op *op = &s->p->ops[s->cur[d]];
			snprintf(why, len, "%s: deadlock: device %d waits forever at its operation "
				 "%ld (%c micro-batch %d stage %d)", pipe_schedule_name(s->p->schedule),
				 d, s->cur[d] - s->p->first[d], kinds[op->kind], op->mb, op->stage);
			return;
		}
}

/* run_events drives the stack until no device can advance. Returns MB_OK when every
 * operation ran, else MB_ERR_CHECK with the stuck operation named. */
static int run_events(struct sim *s, char *why, size_t len)
{
	const struct pipe_plan *p = s->p;

	for (int d = p->pp - 1; d >= 0; d--) {
		s->cur[d] = p->first[d];
		s->stack[s->top++] = d;
		s->queued[d] = 1;
	}
	while (s->top > 0) {
		int d = s->stack[--s->top];
		s->queued[d] = 0;
		advance(s, d);
	}
	for (int d = 0; d < p->pp; d++)
		if (s->cur[d] < p->first[d + 1]) {
			describe_stuck(s, why, len);
			return MB_ERR_CHECK;
		}
	return MB_OK;
}

/* frees_activation tells whether an operation ends a micro-batch's stay on a chunk
 * (its W, or the full backward). */
static bool frees_activation(const struct pipe_op *op)
{
	return op->kind == PIPE_OP_W || (op->kind != PIPE_OP_F && op->with_w);
}

/* device_stats derives one device's span, busy time and peak activations. */
static void device_stats(const struct pipe_plan *p, struct pipe_sim *r, int d)
{
	struct pipe_device_stats *ds = &r->dev[d];
	double live = 0;

	*ds = (struct pipe_device_stats){ .fraction = NAN };
	if (p->first[d] == p->first[d + 1])
		return;
	ds->first_start = r->start[p->first[d]];
	ds->last_end = r->end[p->first[d + 1] - 1];
	for (long i = p->first[d]; i < p->first[d + 1]; i++) {
		const struct pipe_op *op = &p->ops[i];
		ds->busy += r->end[i] - r->start[i];
		if (op->kind == PIPE_OP_F || op->kind == PIPE_OP_FB)
			live += p->op_scale;
		if (live > ds->peak_act)
			ds->peak_act = live;
		if (frees_activation(op))
			live -= p->op_scale;
	}
}

/* summarize fills the step time, each device's bubble, gap and fraction, and the
 * maxima and means over devices. */
static void summarize(const struct pipe_plan *p, const struct pipe_times *t, struct pipe_sim *r)
{
	double work = p->microbatches * (t->f + t->b + t->w);

	r->step_time = 0;
	for (int d = 0; d < p->pp; d++) {
		device_stats(p, r, d);
		if (r->dev[d].last_end > r->step_time)
			r->step_time = r->dev[d].last_end;
	}
	for (int d = 0; d < p->pp; d++) {
		struct pipe_device_stats *ds = &r->dev[d];
		ds->bubble = r->step_time - ds->busy;
		ds->gap = ds->last_end - ds->first_start - ds->busy;
		ds->fraction = work > 0 ? ds->bubble / work : NAN;
		r->bubble_max = fmax(r->bubble_max, ds->bubble);
		r->gap_max = fmax(r->gap_max, ds->gap);
		r->fraction_max = fmax(r->fraction_max, ds->fraction);
		r->peak_act_max = fmax(r->peak_act_max, ds->peak_act);
		r->bubble_mean += ds->bubble / p->pp;
		r->gap_mean += ds->gap / p->pp;
		r->fraction_mean += ds->fraction / p->pp;
	}
}

int pipe_simulate(const struct pipe_plan *p, const struct pipe_times *t, struct pipe_sim *out,
		  char *why, size_t len)
{
	return pipe_simulate_devices(p, t, NULL, out, why, len);
}

int pipe_simulate_devices(const struct pipe_plan *p, const struct pipe_times *t,
			  const struct pipe_times *dev, struct pipe_sim *out, char *why, size_t len)
{
	return pipe_simulate_ops(p, t, dev, NULL, out, why, len);
}

int pipe_simulate_ops(const struct pipe_plan *p, const struct pipe_times *t,
		      const struct pipe_times *dev, const double *dur, struct pipe_sim *out,
		      char *why, size_t len)
{
	struct sim s = { .p = p, .t = t, .dev = dev, .dur = dur, .out = out };
	int err;

	*out = (struct pipe_sim){ .step_time = 0 };
	s.comm = t->latency + (t->bandwidth > 0 ? t->msg_bytes / t->bandwidth : 0);
	if ((err = sim_alloc(&s, p, out))) {
		snprintf(why, len, "out of memory simulating %ld operations", p->n_ops);
		goto out;
	}
	if ((err = run_events(&s, why, len)))
		goto out;
	summarize(p, t, out);
out:
	sim_release(&s);
	if (err)
		pipe_sim_free(out);
	return err;
}

void pipe_sim_free(struct pipe_sim *s)
{
	if (!s)
		return;
	free(s->start);
	free(s->end);
	free(s->dev);
	s->start = s->end = NULL;
	s->dev = NULL;
}
