/* driver.c - the generic benchmark driver (see driver.h). */
#define _GNU_SOURCE
#include "driver.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "comm.h"
#include "counters.h"
#include "mpi_world.h"
#include "noise.h"
#include "progress.h"
#include "result.h"
#include "stats.h"
#include "status.h"
#include "timer.h"

#define MAX_REPS 100000
/* Repetition times kept in a record (time_s.samples) for compare's rank test: enough
 * for a test at the 0.1% level, small enough to keep result files readable. */
#define KEPT_SAMPLES 256
/* Shortest warm-up, seconds (see warm_up). */
#define WARMUP_MIN_S 0.15

/* settle waits for the case's work: a collective case's communicator first (its wait
 * is bounded by the timeout, the stream's is not), then the backend. */
static int settle(struct run_ctx *ctx, struct bench_case *c)
{
	int err = c->comm ? comm_sync(c->comm) : MB_OK;
	if (!err)
		err = backend_sync(ctx->backend);
	return err;
}

/* agree_check makes a collective case's check the whole group's: mismatches and
 * samples summed, max_err the largest (NaN counts as infinite: MAX may drop a NaN),
 * and an error on any rank an error on every rank. */
static int agree_check(struct comm *comm, int err, struct bench_check *chk)
{
	double sum[2] = { (double)chk->mismatches, (double)chk->samples };
	double mx[2] = { isnan(chk->max_err) ? INFINITY : chk->max_err, err ? -(double)err : 0 };
	int e = comm_host_allreduce_f64(comm, sum, 2, COMM_SUM);
	if (!e)
		e = comm_host_allreduce_f64(comm, mx, 2, COMM_MAX);
	if (e)
		return e;
	chk->mismatches = (long)sum[0];
	chk->samples = (long)sum[1];
	chk->max_err = mx[0];
	return err ? err : -(int)mx[1];
}

/* test_hang is a test-only hook (tests/test_cli_ranks.c): MOEBENCH_TEST_HANG_RANK=R
 * makes world rank R of a collective case stop answering before its first
 * repetition (the check's: the others are then inside the collective), so the suite sees the other ranks name it. Unset in real runs. */
static void test_hang(const struct bench_case *c)
{
	const char *r = getenv("MOEBENCH_TEST_HANG_RANK");
	if (c->comm && r && atoi(r) == mpi_world_rank())
		for (;;)
			pause();
}

/* check_once poisons the output, runs once and checks against the reference. */
static int check_once(struct run_ctx *ctx, struct bench_case *c, struct bench_check *chk)
{
	int err = c->poison ? c->poison(c->state) : MB_OK;
	test_hang(c);
	if (!err)
		err = c->run(c->state);
	if (!err)
		err = settle(ctx, c);
	if (!err)
		err = c->check(c->state, chk);
	return c->comm ? agree_check(c->comm, err, chk) : err;
}

/* time_reps_cpu times host repetitions one by one, counting those during which no
 * thread of the process was preempted (the context switches are read outside the
 * timed interval): compare trusts a minimum only if some repetition ran clean. */
static int time_reps_cpu(struct run_ctx *ctx, struct bench_case *c, long n, double *s,
			 struct noise_probe *probe)
{
	int err = MB_OK;
	if (probe->clean < 0)
		probe->clean = 0;
	for (long i = 0; i < n && !err; i++) {
		long sw = noise_switches();
		err = timer_reps(ctx->backend, c->run, c->state, 1, ctx->opts->cold, &s[i]);
		probe->clean += noise_switches() == sw;
	}
	return err;
}

/* time_reps times n repetitions into s. A collective case starts each one together
 * (barrier) and keeps, per repetition, the slowest rank's time, so every rank holds
 * the same samples and extends the run by the same count. */
static int time_reps(struct run_ctx *ctx, struct bench_case *c, long n, double *s,
		     struct noise_probe *probe)
{
	bool cold = ctx->opts->cold;
	if (!c->comm && ctx->backend->kind == BACKEND_CPU)
		return time_reps_cpu(ctx, c, n, s, probe);
	if (!c->comm)
		return timer_reps(ctx->backend, c->run, c->state, n, cold, s);
	for (long i = 0; i < n; i++) {
		int err = comm_barrier(c->comm);
		if (!err)
			err = comm_time_rep(c->comm, c->run, c->state, cold, &s[i]);
		if (err)
			return err;
	}
	return comm_host_allreduce_f64(c->comm, s, (size_t)n, COMM_MAX);
}

/* warm_up runs the --warmup repetitions, then more until WARMUP_MIN_S has passed
 * (capped at MAX_REPS), so timing starts in the steady state, with a progress line when
 * they are long. NOTE: the time floor is there for what a count of repetitions does not
 * outlast: OpenBLAS worker threads keep spinning for ~0.1 s after each parallel call (a
 * previous case may just have made one), and on a machine with another busy process they
 * take the core from the timed thread for whole 4 ms scheduler ticks; right after
 * start-up, first touch of buffers and the thread pools' start do the same. A collective
 * case keeps the count alone: its ranks must run the same number of repetitions. */
static int warm_up(struct run_ctx *ctx, struct bench_case *c, struct progress *pg)
{
	const struct cli_common *o = ctx->opts;
	double t0 = timer_now();
	int err = MB_OK;
	long i = 0;

	for (; i < o->warmup && !err; i++) {
		err = c->run(c->state);
		double per = (timer_now() - t0) / (double)(i + 1);
		progress_tick(pg, "warming up", i + 1, o->warmup, per, o->warmup - i - 1 + o->iters);
	}
	if (!err)
		err = settle(ctx, c);
	while (!err && !c->comm && i > 0 && i < MAX_REPS && timer_now() - t0 < WARMUP_MIN_S) {
		err = c->run(c->state);
		if (!err)
			err = settle(ctx, c);
		i++;
	}
	return err;
}

/* time_chunks times repetitions [from, to) into s, in chunks of about a second so a
 * long case can say how far it is (a collective case in one go: every rank must time
 * the same counts). Adds their time to *total. */
static int time_chunks(struct run_ctx *ctx, struct bench_case *c, long from, long to,
		       double *s, double *total, struct progress *pg, struct noise_probe *probe)
{
	int err = MB_OK;
	for (long i = from; i < to && !err;) {
		double per = i > 0 ? *total / (double)i : 0;
		long chunk = c->comm ? to - i : per > 0 ? (long)(1.0 / per) : 1;
		chunk = chunk < 1 ? 1 : chunk > to - i ? to - i : chunk;
		err = time_reps(ctx, c, chunk, s + i, probe);
		for (long k = i; k < i + chunk && !err; k++)
			*total += s[k];
		i += chunk;
		progress_tick(pg, "timing", i, to, *total / (double)i, to - i);
	}
	return err;
}

/* time_case warms up, then times at least iters repetitions and min_time seconds.
 * *samples is allocated here; *n receives the count; *timing how the timed region ran
 * (noise.h). */
static int time_case(struct run_ctx *ctx, struct bench_case *c, double **samples, long *n,
		     cJSON **timing)
{
	struct noise_probe probe;
	const struct cli_common *o = ctx->opts;
	long cap = o->iters, have = 0;
	double *s = malloc((size_t)cap * sizeof(*s)), total = 0;
	int err = s ? MB_OK : MB_ERR_NOMEM;
	struct progress pg;
	/* NOTE: one voice: rank 0 of the world prints the progress. */
	progress_start(&pg, ctx->benchmark, c->name, o->quiet || !mpi_world_is_root());
	if (!err)
		err = warm_up(ctx, c, &pg);
	long want = o->iters;
	noise_probe_start(&probe);
	counters_start(ctx->counters);
	while (!err && have < want) {
		err = time_chunks(ctx, c, have, want, s, &total, &pg, &probe);
		have = want;
		if (err || total >= o->min_time || have >= MAX_REPS)
			break;
		/* NOTE: extend by the estimated count to reach min_time, at least doubling
		 * the rate of progress so a slow estimate cannot stall the loop. */
		double per = total / (double)have;
		long more = per > 0 ? (long)ceil((o->min_time - total) / per) : have;
		want = have + (more < have ? (more > 0 ? more : 1) : have);
		if (want > MAX_REPS)
			want = MAX_REPS;
		double *ns = realloc(s, (size_t)want * sizeof(*s));
		if (!ns)
			err = MB_ERR_NOMEM;
		else
			s = ns;
	}
	counters_stop(ctx->counters);
	*timing = noise_probe_json(&probe);
	if (!err && probe.clean == 0)
		cli_note(o->quiet, "%s: %s: every repetition was preempted (load average %.2f): "
			 "its times include waiting for a core", ctx->benchmark, c->name,
			 noise_load_avg());
	if (!err && !*timing)
		err = MB_ERR_NOMEM;
	*samples = s;
	*n = have;
	return err;
}

/* record_perf stores time statistics and the metrics derived from the shapes. */
static int record_perf(cJSON *rec, const struct bench_case *c, const struct stats *st,
		       struct bench_outcome *out)
{
	int err = result_set_time(rec, st);
	double rate = NAN;
	out->median_s = st->median;
	if (!err && c->flops > 0) {
		rate = out->tflops = c->flops / st->median / 1e12;
		err = result_set_metric(rec, "tflops", rate);
	}
	if (!err && c->bytes > 0) {
		double gbps = out->gbps = c->bytes / st->median / 1e9;
		if (!(c->flops > 0))
			rate = gbps;
		err = result_set_metric(rec, "gbps", gbps);
	}
	if (!err && isfinite(rate))
		err = result_set_metric(rec, "pct_peak", 100.0 * rate / c->peak);
	if (!err && isfinite(rate) && isfinite(c->measured_peak) && c->measured_peak > 0) {
		out->pct_measured_peak = 100.0 * rate / c->measured_peak;
		err = result_set_metric(rec, "pct_measured_peak", out->pct_measured_peak);
	}
	if (!err && isfinite(rate)) {
		cJSON *pk = cJSON_AddObjectToObject(rec, "peak");
		if (!pk)
			return MB_ERR_NOMEM;
		if (isfinite(c->peak))
			cJSON_AddNumberToObject(pk, "datasheet", c->peak);
		else
			cJSON_AddNullToObject(pk, "datasheet");
		cJSON_AddStringToObject(pk, "unit", c->flops > 0 ? "tflops" : "gbps");
		if (c->peak_source && isfinite(c->peak))
			cJSON_AddStringToObject(pk, "source", c->peak_source);
		else
			cJSON_AddNullToObject(pk, "source");
	}
	return err;
}

/* record_samples keeps the repetition times in time_s.samples, in the order they were
 * taken; beyond KEPT_SAMPLES an evenly strided subset (every k-th) keeps the shape of
 * the whole run, slow phases included. */
static int record_samples(cJSON *rec, const double *s, long n)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, "metrics"),
						    "time_s");
	cJSON *a = t ? cJSON_AddArrayToObject(t, "samples") : NULL;
	long keep = n < KEPT_SAMPLES ? n : KEPT_SAMPLES;

	if (!a)
		return MB_ERR_NOMEM;
	for (long i = 0; i < keep; i++)
		if (!cJSON_AddItemToArray(a, cJSON_CreateNumber(s[i * n / keep])))
			return MB_ERR_NOMEM;
	return MB_OK;
}

/* record_unmeasured stores an all-null time_s for a case that failed its check. */
static int record_unmeasured(cJSON *rec)
{
	struct stats st = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0 };
	return result_set_time(rec, &st);
}

int driver_run_case(struct run_ctx *ctx, struct bench_case *c)
{
	struct bench_check chk = { NAN, NAN, 0, 0, "n/a" };
	struct stats st;
	double *samples = NULL;
	cJSON *timing = NULL;
	long n = 0;
	const char *be = backend_name(ctx->backend->kind);
	ctx->last = (struct bench_outcome){ false, false, NAN, NAN, NAN, NAN };
	cli_note(ctx->opts->quiet, "%s: %s ...", ctx->benchmark, c->name);
	cJSON *rec = result_add_record(ctx->doc, ctx->benchmark, c->name, be);
	int err = rec ? MB_OK : MB_ERR_NOMEM;
	if (!err) {
		cJSON_ReplaceItemInObjectCaseSensitive(rec, "params", c->params);
		c->params = NULL;
		err = check_once(ctx, c, &chk);
	}
	bool pass = !err && chk.mismatches == 0 && chk.max_err <= chk.tolerance;
	if (!err)
		err = result_set_check(rec, pass, chk.max_err, chk.tolerance, chk.metric,
				       chk.samples, chk.mismatches);
	if (!err && c->annotate)
		err = c->annotate(c->state, rec);
	if (!err && !pass) {
		ctx->failures++;
		/* NOTE: a collective case's check is the group's: its rank 0 says so. */
		if (!c->comm || comm_rank(c->comm) == 0)
			fprintf(stderr, "moebench: %s: %s: check FAILED: max_err %.3g > tolerance %.3g "
				"(%ld of %ld samples wrong)\n", ctx->benchmark, c->name,
				chk.max_err, chk.tolerance, chk.mismatches, chk.samples);
		err = record_unmeasured(rec);
	} else if (!err) {
		err = time_case(ctx, c, &samples, &n, &timing);
		if (!err)
			err = stats_compute(samples, (size_t)n, &st);
		if (!err)
			err = record_perf(rec, c, &st, &ctx->last);
		if (!err)
			err = record_samples(rec, samples, n);
		if (!err && cJSON_AddItemToObject(rec, "timing", timing))
			timing = NULL;
		if (!err && ctx->backend->kind == BACKEND_CPU)
			err = counters_record(ctx->counters, n, rec);
	}
	ctx->last.recorded = !err;
	ctx->last.pass = !err && pass;
	if (err && rec) {
		/* NOTE: a case that could not finish leaves no record: a record without its
		 * check would make the whole document invalid. */
		cJSON_Delete(cJSON_DetachItemViaPointer(cJSON_GetObjectItem(ctx->doc, "records"), rec));
	}
	free(samples);
	cJSON_Delete(timing);
	cJSON_Delete(c->params);
	c->params = NULL;
	if (c->destroy)
		c->destroy(c->state);
	c->state = NULL;
	return err;
}

int driver_run_case_on_host(struct run_ctx *ctx, struct bench_case *c)
{
	struct backend host = { .kind = BACKEND_CPU };
	struct backend *opened = ctx->backend;
	ctx->backend = &host;
	int err = driver_run_case(ctx, c);
	ctx->backend = opened;
	return err;
}
