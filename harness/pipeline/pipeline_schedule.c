/*
 * pipeline_schedule.c - the schedule generator (pipeline.h): names, constraints, the
 * stage-to-device mapping, and the per-device operation order of gpipe, 1f1b,
 * interleaved and zb-h1 (dualpipe and dualpipev are in pipeline_dualpipe.c).
 *
 * Written from the papers' and reference schedules' definitions (Megatron-LM's
 * interleaved warm-up count and chunk order; ZB-H1's "same number of in-flight
 * micro-batches on every stage"); no code is taken from them.
 */
#include "pipeline.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_impl.h"
#include "status.h"

/* NOTE: bounds that keep every index an int and a plan under ~2 GB. */
#define PIPE_MAX_PP 4096
#define PIPE_MAX_MB (1 << 20)
#define PIPE_MAX_CHUNKS 64
#define PIPE_MAX_OPS (1L << 26)

static const char *const schedule_names[PIPE_N_SCHEDULES] = {
	"gpipe", "1f1b", "interleaved", "zb-h1", "dualpipe", "dualpipev",
};

const char *pipe_schedule_name(enum pipe_schedule s)
{
	return (unsigned)s < PIPE_N_SCHEDULES ? schedule_names[s] : "?";
}

int pipe_schedule_parse(const char *name, enum pipe_schedule *out)
{
	for (int i = 0; i < PIPE_N_SCHEDULES; i++)
		if (name && strcmp(name, schedule_names[i]) == 0) {
			*out = (enum pipe_schedule)i;
			return MB_OK;
		}
	return MB_ERR_ARG;
}

const char *pipe_schedule_names(void)
{
	return "gpipe|1f1b|interleaved|zb-h1|dualpipe|dualpipev";
}

/* stages_of gives the virtual stages a micro-batch passes under schedule s. */
static int stages_of(enum pipe_schedule s, int pp, int v)
{
	return s == PIPE_INTERLEAVED ? pp * v : s == PIPE_DUALPIPEV ? 2 * pp : pp;
}

/* check_dual applies DualPipe's and DualPipeV's constraints, as the reference asserts
 * them (dualpipe.py: ranks even, chunks even and >= 2 x ranks; dualpipev.py: chunks
 * >= 2 x ranks). */
static int check_dual(enum pipe_schedule s, int pp, int m, char *why, size_t len)
{
	if (s == PIPE_DUALPIPE && pp % 2)
		return mb_fail(MB_ERR_ARG, why, len, "dualpipe needs an even number of devices (--pp %d); "
			    "device d pairs with device PP-1-d", pp);
	if (s == PIPE_DUALPIPE && m % 2)
		return mb_fail(MB_ERR_ARG, why, len, "dualpipe needs an even number of micro-batches "
			    "(--microbatches %d): half enter at each end", m);
	if (m < 2 * pp) {
		snprintf(why, len, "%s needs micro-batches >= 2 x PP (%d < %d), as the reference "
			 "schedule asserts", pipe_schedule_name(s), m, 2 * pp);
		return MB_ERR_ARG;
	}
	return MB_OK;
}

int pipe_plan_check(enum pipe_schedule s, int pp, int m, int v, char *why, size_t len)
{
	if ((unsigned)s >= PIPE_N_SCHEDULES)
		return mb_fail(MB_ERR_ARG, why, len, "unknown schedule %d", (int)s);
	if (pp < 1 || pp > PIPE_MAX_PP)
		return mb_fail(MB_ERR_ARG, why, len, "--pp %d out of range: 1 to %d devices", pp, PIPE_MAX_PP);
	if (m < 1 || m > PIPE_MAX_MB)
		return mb_fail(MB_ERR_ARG, why, len, "--microbatches %d out of range: 1 to %d", m, PIPE_MAX_MB);
	if (s == PIPE_INTERLEAVED && (v < 2 || v > PIPE_MAX_CHUNKS))
		return mb_fail(MB_ERR_ARG, why, len, "interleaved needs 2 to %d chunks per device (--chunks %d; "
			    "1 chunk is 1f1b)", PIPE_MAX_CHUNKS, v);
	if (s == PIPE_INTERLEAVED && m % pp)
		return mb_fail(MB_ERR_ARG, why, len, "interleaved needs micro-batches a multiple of PP "
			    "(%d is not a multiple of %d)", m, pp);
	if ((s == PIPE_DUALPIPE || s == PIPE_DUALPIPEV) && check_dual(s, pp, m, why, len))
		return MB_ERR_ARG;
	if (3L * m * stages_of(s, pp, v) > PIPE_MAX_OPS)
		return mb_fail(MB_ERR_ARG, why, len, "too many operations: 3 x %d micro-batches x %d stages "
			    "exceeds 2^26", m, stages_of(s, pp, v));
	return MB_OK;
}

int pipe_stage_device(const struct pipe_plan *p, int mb, int stage)
{
	switch (p->schedule) {
	case PIPE_INTERLEAVED:
		return stage % p->pp;
	case PIPE_DUALPIPE:
		return mb < p->microbatches / 2 ? stage : p->pp - 1 - stage;
	case PIPE_DUALPIPEV:
		return stage < p->pp ? stage : 2 * p->pp - 1 - stage;
	default:
		return stage;
	}
}

int pipe_stage_chunk(const struct pipe_plan *p, int mb, int stage)
{
	switch (p->schedule) {
	case PIPE_INTERLEAVED:
		return stage / p->pp;
	case PIPE_DUALPIPE:
		return mb >= p->microbatches / 2;
	case PIPE_DUALPIPEV:
		return stage >= p->pp;
	default:
		return 0;
	}
}

void pipe_times_default(struct pipe_times *t)
{
	*t = (struct pipe_times){ .f = 1, .b = 1, .w = 1, .fb = NAN };
}

double pipe_op_duration(const struct pipe_plan *p, const struct pipe_op *op,
			const struct pipe_times *t)
{
	double d;

	switch (op->kind) {
	case PIPE_OP_F:
		d = t->f;
		break;
	case PIPE_OP_B:
		d = op->with_w ? t->b + t->w : t->b;
		break;
	case PIPE_OP_W:
		d = t->w;
		break;
	default:
		d = isnan(t->fb) || t->fb < 0 ? t->f + t->b + (op->with_w ? t->w : 0) : t->fb;
	}
	return d * p->op_scale;
}

/* gen_gpipe: every forward, then every full backward, micro-batches in order. */
static void gen_gpipe(struct pipe_plan *p, int d)
{
	for (int i = 0; i < p->microbatches; i++)
		pipe_emit(p, PIPE_OP_F, 0, i, d, -1, -1);
	for (int i = 0; i < p->microbatches; i++)
		pipe_emit(p, PIPE_OP_B, 1, i, d, -1, -1);
}

/* gen_1f1b: PP-1-d warm-up forwards, then alternate a forward and a backward, then the
 * remaining backwards. zb-h1 (split) runs the same F/B order with B and W separate,
 * device d deferring W of micro-batch i until after B of micro-batch i + d, so every
 * device holds PP micro-batches in flight (warm-up + 1 + d). */
static void gen_1f1b(struct pipe_plan *p, int d, bool split)
{
	int m = p->microbatches, warm = p->pp - 1 - d < m ? p->pp - 1 - d : m;
	int next_w = 0;

	for (int i = 0; i < warm; i++)
		pipe_emit(p, PIPE_OP_F, 0, i, d, -1, -1);
	for (int i = 0; i < m; i++) {
		if (warm + i < m)
			pipe_emit(p, PIPE_OP_F, 0, warm + i, d, -1, -1);
		pipe_emit(p, PIPE_OP_B, !split, i, d, -1, -1);
		if (split && i - d >= 0)
			pipe_emit(p, PIPE_OP_W, 0, next_w++, d, -1, -1);
	}
	while (split && next_w < m)
		pipe_emit(p, PIPE_OP_W, 0, next_w++, d, -1, -1);
}

/* interleaved_unit maps device d's k-th forward (or backward) to a micro-batch and a
 * virtual stage, in Megatron's order: groups of PP micro-batches run chunk 0, 1, ...,
 * v-1 forward and v-1 ... 0 backward. */
static void interleaved_unit(const struct pipe_plan *p, int d, int k, bool fwd, int *mb,
			     int *stage)
{
	int pp = p->pp, v = p->chunks, chunk = (k / pp) % v;

	if (!fwd)
		chunk = v - 1 - chunk;
	*mb = k / (pp * v) * pp + k % pp;
	*stage = chunk * pp + d;
}

/* gen_interleaved: Megatron's warm-up of 2(PP-d-1) + (v-1)PP forwards, then one
 * forward one backward, then the rest. NOTE: Megatron runs every forward first when
 * m == PP; we keep the formula there too (it needs no special case without blocking
 * sends), which is what the closed form describes. */
static void gen_interleaved(struct pipe_plan *p, int d)
{
	int total = p->microbatches * p->chunks, mb, stage;
	int warm = 2 * (p->pp - d - 1) + (p->chunks - 1) * p->pp;

	if (warm > total)
		warm = total;
	for (int k = 0; k < warm; k++) {
		interleaved_unit(p, d, k, true, &mb, &stage);
		pipe_emit(p, PIPE_OP_F, 0, mb, stage, -1, -1);
	}
	for (int k = 0; k < total; k++) {
		if (warm + k < total) {
			interleaved_unit(p, d, warm + k, true, &mb, &stage);
			pipe_emit(p, PIPE_OP_F, 0, mb, stage, -1, -1);
		}
		interleaved_unit(p, d, k, false, &mb, &stage);
		pipe_emit(p, PIPE_OP_B, 1, mb, stage, -1, -1);
	}
}

/* plan_alloc sizes the plan for its upper bound of operations. */
static int plan_alloc(struct pipe_plan *p)
{
	long cap = 3L * p->microbatches * p->stages;

	p->ops = malloc((size_t)cap * sizeof(*p->ops));
	p->first = calloc((size_t)p->pp + 1, sizeof(*p->first));
	return p->ops && p->first ? MB_OK : MB_ERR_NOMEM;
}

int pipe_plan_build(enum pipe_schedule s, int pp, int m, int v, struct pipe_plan *out,
		    char *why, size_t len)
{
	struct pipe_plan p = { .schedule = s, .pp = pp, .microbatches = m };
	int err = pipe_plan_check(s, pp, m, v, why, len);

	*out = p;  /* a rejected size leaves an empty plan, safe to free */
	if (err)
		return err;
	p.chunks = s == PIPE_INTERLEAVED ? v : s == PIPE_DUALPIPE || s == PIPE_DUALPIPEV ? 2 : 1;
	p.stages = stages_of(s, pp, v);
	p.op_scale = s == PIPE_INTERLEAVED ? 1.0 / v : s == PIPE_DUALPIPEV ? 0.5 : 1.0;
	p.param_copies = s == PIPE_DUALPIPE ? 2 : 1;
	if ((err = plan_alloc(&p)))
		goto out;
	for (int d = 0; d < pp && !err; d++) {
		p.first[d] = p.n_ops;
		if (s == PIPE_GPIPE)
			gen_gpipe(&p, d);
		else if (s == PIPE_1F1B || s == PIPE_ZBH1)
			gen_1f1b(&p, d, s == PIPE_ZBH1);
		else if (s == PIPE_INTERLEAVED)
			gen_interleaved(&p, d);
		else
			err = pipe_gen_dualpipe(&p, d);
	}
	p.first[pp] = p.n_ops;
out:
	if (err) {
		snprintf(why, len, "out of memory building the %s plan", pipe_schedule_name(s));
		pipe_plan_free(&p);
	}
	*out = p;
	return err;
}

void pipe_plan_free(struct pipe_plan *p)
{
	if (!p)
		return;
	free(p->ops);
	free(p->first);
	p->ops = NULL;
	p->first = NULL;
	p->n_ops = 0;
}
