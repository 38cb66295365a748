/*
 * cmd_pipeline_run.c - the two `moebench pipeline` modes beyond one simulation
 * (pipeline_out.h): --sweep (the bubble fraction over micro-batch counts, for
 * plots/pipeline_sweep.gp) and --execute (the schedule run for real on PP MPI ranks by
 * the executor of pipeline_exec.h, its measured bubble beside the simulator's
 * prediction for the measured F, B and W times).
 */
#define _GNU_SOURCE
#include "pipeline_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "backend.h"
#include "cli.h"
#include "context.h"
#include "mpi_world.h"
#include "result.h"
#include "session.h"
#include "stats.h"
#include "status.h"

#define MAX_SWEEP 64

/* parse_list reads "8,16,32" into m (at most MAX_SWEEP). Returns 0 or an exit status. */
static int parse_list(const char *list, int *m, int *n)
{
	const char *p = list;
	char item[32];

	for (*n = 0; *p; (*n)++) {
		size_t len = strcspn(p, ",");
		int64_t v = 0;
		snprintf(item, sizeof(item), "%.*s", (int)(len < 31 ? len : 31), p);
		if (len == 0 || len > 31 || cli_parse_int(item, 1, 1 << 20, &v) || *n == MAX_SWEEP ||
		    (p[len] == ',' && !p[len + 1]))
			return cli_error("give up to 64 micro-batch counts: --sweep 8,16,32,64",
					 "--sweep: '%s' is not a list of micro-batch counts", list);
		m[*n] = (int)v;
		p += len + (p[len] == ',');
	}
	return *n ? 0 : cli_error("--sweep 8,16,32,64", "--sweep: empty list");
}

/* sweep_row prints one (schedule, m) to the text table, the CSV and the JSON. */
static void sweep_row(const struct pipe_result *r, int pp, int m, FILE *csv, cJSON *arr,
		      bool json)
{
	const char *name = pipe_schedule_name(r->schedule);
	cJSON *o;

	if (r->status) {
		fprintf(csv, "%s,%d,%d,,,,,,\n", name, pp, m);
		if (!json)
			printf("%-12s %12d   n/a: %s\n", name, m, r->why);
		if (arr) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "schedule", name);
			cJSON_AddNumberToObject(o, "microbatches", m);
			cJSON_AddStringToObject(o, "error", r->why);
			cJSON_AddItemToArray(arr, o);
		}
		return;
	}
	fprintf(csv, "%s,%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g\n", name, pp, m,
		r->plan.chunks, r->sim.step_time, r->sim.bubble_max, r->sim.fraction_max,
		r->closed.bubble, r->closed.fraction);
	if (!json)
		printf("%-12s %12d %10.5g %10.5g %9.4f %11.5g %8.4f\n", name, m, r->sim.step_time,
		       r->sim.bubble_max, r->sim.fraction_max, r->closed.bubble, r->closed.fraction);
	if (!arr)
		return;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "schedule", name);
	cJSON_AddNumberToObject(o, "microbatches", m);
	cJSON_AddNumberToObject(o, "step_time", r->sim.step_time);
	cJSON_AddNumberToObject(o, "bubble_time_max", r->sim.bubble_max);
	cJSON_AddNumberToObject(o, "bubble_fraction", r->sim.fraction_max);
	cJSON_AddNumberToObject(o, "closed_form_bubble", r->closed.bubble);
	cJSON_AddNumberToObject(o, "closed_form_fraction", r->closed.fraction);
	cJSON_AddItemToArray(arr, o);
}

/* sweep_all runs every (schedule, m) into the outputs. Returns 0 or an exit status. */
static int sweep_all(const struct pipe_setup *u, const enum pipe_schedule *s, int n,
		     const int *m, int nm, FILE *csv, cJSON *arr, bool json)
{
	struct pipe_setup v = *u;
	struct pipe_result r;

	for (int i = 0; i < n; i++)
		for (int k = 0; k < nm; k++) {
			int err;
			v.microbatches = m[k];
			err = pipe_result_run(&r, s[i], &v);
			if (err) {
				fprintf(stderr, "moebench: error: %s\n", r.why);
				pipe_result_free(&r);
				return 1;
			}
			sweep_row(&r, u->pp, m[k], csv, arr, json);
			pipe_result_free(&r);
		}
	return 0;
}

int pipe_cmd_sweep(const struct pipe_setup *u, const enum pipe_schedule *s, int n,
		   const char *list, const char *out, bool json)
{
	int m[MAX_SWEEP], nm, st = parse_list(list, m, &nm);
	struct pipe_setup swept = *u;
	char *text = NULL;
	size_t len = 0;
	cJSON *doc = NULL, *arr = NULL;
	FILE *csv;

	if (st)
		return st;
	if (!(csv = open_memstream(&text, &len)))
		return cli_error(NULL, "out of memory");
	swept.microbatches = 0;
	pipe_out_provenance(&swept, "bubble fraction over micro-batches "
			    "(plots/pipeline_sweep.gp)", csv);
	fprintf(csv, "schedule,pp,microbatches,chunks,step_time,bubble_time_max,bubble_fraction,"
		"closed_form_bubble,closed_form_fraction\n");
	if (json) {
		doc = pipe_out_json(&swept, NULL, 0);
		cJSON_DeleteItemFromObject(doc, "schedules");
		cJSON_DeleteItemFromObject(doc, "microbatches");
		arr = cJSON_AddArrayToObject(doc, "sweep");
	} else {
		printf("pipeline sweep: PP=%d, f=%g b=%g w=%g (bubble: the worst device's step "
		       "time - busy time)\n\n%-12s %12s %10s %10s %9s %11s %8s\n", u->pp,
		       u->times.f, u->times.b, u->times.w, "schedule", "microbatches",
		       "step_time", "bubble_max", "fraction", "closed_form", "cf_frac");
	}
	st = sweep_all(u, s, n, m, nm, csv, arr, json);
	if (fclose(csv) != 0 || !text)
		st = st ? st : cli_error(NULL, "out of memory");
	if (!st && out)
		st = pipe_out_write_text(out, text, "--out", u->force);
	if (!st && doc)
		st = pipe_out_print_json(doc);
	else
		cJSON_Delete(doc);
	free(text);
	return st;
}

/* Measured and predicted figures of an executed schedule, per device. */
struct exec_view {
	struct pipe_result sim;   /* the prediction for the measured unit times */
	struct pipe_times times;  /* those unit times, per device share */
	double *busy, *bubble;    /* measured, last step */
	double step_last;         /* measured: the last step's span */
};

/* measure derives each rank's busy time and bubble from the gathered events. */
static int measure(const struct pipe_exec_result *res, int pp, struct exec_view *v)
{
	v->busy = calloc((size_t)pp, sizeof(double));
	v->bubble = calloc((size_t)pp, sizeof(double));
	if (!v->busy || !v->bubble)
		return MB_ERR_NOMEM;
	for (int i = 0; i < res->n_events; i++) {
		const struct pipe_exec_event *e = &res->events[i];
		if (e->rank >= 0 && e->rank < pp)
			v->busy[e->rank] += e->end - e->start;
		v->step_last = fmax(v->step_last, e->end);
	}
	for (int d = 0; d < pp; d++)
		v->bubble[d] = v->step_last - v->busy[d];
	return MB_OK;
}

/* predict simulates the plan's schedule with the measured seconds per work unit. The
 * executor runs one work unit per F, B or W whatever its chunk's size, and F&B as its
 * parts in a row, so the durations per device share are the unit times / op_scale.
 * NOTE: schedules that never split B and W (gpipe, 1f1b, interleaved) run no W op; their
 * full backward is two units of the same GEMM, so W's unit is B's. */
static int predict(const struct pipe_setup *u, enum pipe_schedule s, double scale,
		   const struct pipe_exec_result *res, struct exec_view *v)
{
	struct pipe_setup p = *u;
	double w = res->unit_time[2] > 0 ? res->unit_time[2] : res->unit_time[1];

	p.times = (struct pipe_times){ .f = res->unit_time[0] / scale,
				       .b = res->unit_time[1] / scale, .w = w / scale,
				       .fb = NAN };
	v->times = p.times;
	return pipe_result_run(&v->sim, s, &p);
}

/* print_exec prints the measured figures beside the prediction. */
static void print_exec(const struct pipe_setup *u, const struct exec_view *v,
		       const struct pipe_exec_result *res, const struct pipe_exec_opts *o)
{
	const struct pipe_sim *s = &v->sim.sim;

	printf("pipeline --execute: %s on %d ranks, m=%d; work unit: %d tokens x %d x %d "
	       "GEMM; %d timed steps\nmeasured seconds per work unit: F %.4g, B %.4g, W %.4g\n\n",
	       pipe_schedule_name(v->sim.schedule), u->pp, u->microbatches, o->tokens,
	       o->hidden, o->hidden, o->steps, res->unit_time[0], res->unit_time[1],
	       res->unit_time[2]);
	printf("%-28s %12s %12s\n", "", "measured_s", "simulated_s");
	printf("%-28s %12.6g %12.6g\n", "step time (median of steps)", res->step_time, s->step_time);
	printf("%-28s %12.6g %12s\n", "step time (last step)", v->step_last, "");
	printf("\n%6s %12s %12s %12s %12s\n", "device", "busy_s", "bubble_s", "sim_busy_s",
	       "sim_bubble_s");
	for (int d = 0; d < u->pp; d++)
		printf("%6d %12.6g %12.6g %12.6g %12.6g\n", d, v->busy[d], v->bubble[d],
		       s->dev[d].busy, s->dev[d].bubble);
	printf("(bubble: the last step's span minus the device's busy time; simulated from "
	       "the measured unit times, no message cost)\n");
}

/* exec_json is the --execute --json document. */
static cJSON *exec_json(const struct pipe_setup *u, const struct exec_view *v,
			const struct pipe_exec_result *res)
{
	cJSON *o = cJSON_CreateObject(), *m, *devs;
	double bmax = 0, bmean = 0;

	cJSON_AddStringToObject(o, "schedule", pipe_schedule_name(v->sim.schedule));
	cJSON_AddNumberToObject(o, "pp", u->pp);
	cJSON_AddNumberToObject(o, "microbatches", u->microbatches);
	m = cJSON_AddObjectToObject(o, "measured");
	cJSON_AddNumberToObject(m, "step_time", res->step_time);
	cJSON_AddNumberToObject(m, "step_time_last", v->step_last);
	cJSON_AddItemToObject(m, "unit_time", cJSON_CreateDoubleArray(res->unit_time, 3));
	devs = cJSON_AddArrayToObject(m, "per_device");
	for (int d = 0; d < u->pp; d++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "device", d);
		cJSON_AddNumberToObject(e, "busy", v->busy[d]);
		cJSON_AddNumberToObject(e, "bubble_time", v->bubble[d]);
		cJSON_AddItemToArray(devs, e);
		bmax = fmax(bmax, v->bubble[d]);
		bmean += v->bubble[d] / u->pp;
	}
	cJSON_AddNumberToObject(m, "bubble_time_max", bmax);
	cJSON_AddNumberToObject(m, "bubble_time_mean", bmean);
	cJSON_AddItemToObject(o, "simulated", pipe_out_json(u, &v->sim, 1));
	return o;
}

/* exec_timeline writes the measured events as a timeline CSV (the plan supplies what
 * an event does not carry: full or split backward, stages). */
static int exec_timeline(const struct pipe_setup *measured, const struct pipe_plan *p,
			 const struct pipe_exec_result *res, const char *path)
{
	const struct pipe_setup *u = measured;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int st, *next = calloc((size_t)u->pp, sizeof(int));

	if (!f || !next) {
		if (f)
			fclose(f);
		free(text);
		free(next);
		return cli_error(NULL, "out of memory");
	}
	pipe_out_provenance(u, "measured timeline, seconds; durations: the measured seconds per "
			    "work unit (plots/pipeline.gp)", f);
	fprintf(f, "device,microbatch,microbatch2,chunk,kind,start,end,chunk2,label,label2,"
		"stage,stage2\n");
	for (int i = 0; i < res->n_events; i++) {
		const struct pipe_exec_event *e = &res->events[i];
		const struct pipe_op *op = e->rank >= 0 && e->rank < u->pp &&
			p->first[e->rank] + next[e->rank] < p->first[e->rank + 1] ?
			&p->ops[p->first[e->rank] + next[e->rank]++] : NULL;
		int half = p->schedule == PIPE_DUALPIPE ? p->microbatches / 2 : 1 << 30;
		const char *kind = e->kind == 'X' ? "FB" : op && e->kind == 'B' && op->with_w ? "BW" :
				   e->kind == 'F' ? "F" : e->kind == 'B' ? "B" : "W";
		fprintf(f, "%d,%d,%d,%d,%s,%.9g,%.9g,%d,%d,%d,%d,%d\n", e->rank, e->mb, e->mb2,
			e->chunk, kind, e->start, e->end, op && op->kind == PIPE_OP_FB ?
			pipe_stage_chunk(p, op->mb2, op->stage2) : -1, e->mb % half,
			e->mb2 >= 0 ? e->mb2 % half : -1, op ? op->stage : -1, op ? op->stage2 : -1);
	}
	st = fclose(f) != 0 || !text ? cli_error(NULL, "out of memory")
				       : pipe_out_write_text(path, text, "--timeline", u->force);
	free(text);
	free(next);
	return st;
}

/* exec_ready checks the build and the world. Returns 0 or an exit status (printed by
 * rank 0 only, so a job prints one error). */
static int exec_ready(const struct pipe_setup *u)
{
	char hint[160];

	snprintf(hint, sizeof(hint), "mpirun -np %d moebench pipeline --execute --pp %d ...",
		 u->pp, u->pp);
	if (!MOEBENCH_HAVE_MPI)
		return cli_error("install libopenmpi-dev (make deps does), rebuild, then run: "
				 "mpirun -np P moebench pipeline --execute ...",
				 "--execute needs MPI, and this build has none");
	if (mpi_world_size() != u->pp)
		return mpi_world_is_root() ? cli_error(hint, "--execute runs one rank per device: "
						       "%d rank%s for --pp %d", mpi_world_size(),
						       mpi_world_size() == 1 ? "" : "s", u->pp) : 2;
	if (!mpi_world_active())  /* --pp 1 outside a launcher */
		return cli_error(hint, "--execute runs under an MPI launcher, even on one rank");
	return 0;
}

/* exec_check compares the last step's executed operations with the plan: per rank,
 * the same operations (kind, micro-batch) in the same order and none missing. Returns
 * the mismatches; *samples receives the operations compared. */
static long exec_check(const struct pipe_plan *p, const struct pipe_exec_result *res,
		       long *samples)
{
	static const char kinds[] = "FBWX";
	long bad = 0;
	int *next = calloc((size_t)p->pp, sizeof(int));

	*samples = p->first[p->pp];
	if (!next)
		return *samples;
	for (int i = 0; i < res->n_events; i++) {
		const struct pipe_exec_event *e = &res->events[i];
		int r = e->rank;
		const struct pipe_op *op = r >= 0 && r < p->pp && p->first[r] + next[r] <
			p->first[r + 1] ? &p->ops[p->first[r] + next[r]++] : NULL;
		bad += !op || kinds[op->kind] != e->kind || op->mb != e->mb;
	}
	for (int d = 0; d < p->pp; d++)
		bad += p->first[d + 1] - p->first[d] - next[d];
	free(next);
	return bad;
}

/* exec_record fills the --execute record: the step's statistics and the bubble. */
static int exec_record(cJSON *rec, const struct pipe_setup *u, const struct pipe_plan *p,
		       const struct pipe_exec_result *res, const struct pipe_exec_opts *o,
		       const struct exec_view *v)
{
	struct stats st;
	long samples, bad = exec_check(p, res, &samples);
	double bmax = 0;
	cJSON *prm = cJSON_GetObjectItem(rec, "params");
	int err = stats_compute(res->step_times, (size_t)res->n_steps, &st);

	for (int d = 0; d < u->pp; d++)
		bmax = fmax(bmax, v->bubble[d]);
	cJSON_AddStringToObject(prm, "schedule", pipe_schedule_name(p->schedule));
	cJSON_AddNumberToObject(prm, "pp", u->pp);
	cJSON_AddNumberToObject(prm, "microbatches", u->microbatches);
	cJSON_AddNumberToObject(prm, "chunks", p->chunks);
	cJSON_AddNumberToObject(prm, "tokens", o->tokens);
	cJSON_AddNumberToObject(prm, "hidden", o->hidden);
	if (!err)
		err = result_set_time(rec, &st);
	if (!err)
		err = result_set_metric(rec, "bubble_max_s", bmax);
	if (!err)
		err = result_set_metric(rec, "simulated_step_s", v->sim.sim.step_time);
	if (!err)
		err = result_set_check(rec, bad == 0, (double)bad, 0, "operations out of the "
				       "plan's order", samples, bad);
	return err;
}

/* exec_result writes the --execute run as a moebench.result/1 document to path (rank
 * 0), like every measuring command. Returns an exit status. */
static int exec_result(const struct pipe_setup *u, const struct pipe_plan *p,
		       const struct pipe_exec_result *res, const struct pipe_exec_opts *o,
		       const struct exec_view *v, const char *path)
{
	struct backend host = { .kind = BACKEND_CPU };
	char name[128], why[512], *text = NULL;
	cJSON *doc = result_new(), *rec;
	int err = doc ? MB_OK : MB_ERR_NOMEM;

	snprintf(name, sizeof(name), "execute/%s/pp%d_m%d", pipe_schedule_name(p->schedule),
		 u->pp, u->microbatches);
	if (!err)
		err = context_fill(result_context(doc), u->argc, u->argv, &host, false);
	rec = err ? NULL : result_add_record(doc, "pipeline", name, "cpu");
	err = err ? err : rec ? exec_record(rec, u, p, res, o, v) : MB_ERR_NOMEM;
	if (!err && !(text = cJSON_Print(doc)))
		err = MB_ERR_NOMEM;
	cJSON_Delete(doc);
	if (err) {
		free(text);
		return fprintf(stderr, "moebench: error: --execute: %s\n", mb_status_str(err)), 1;
	}
	err = result_write_atomic(path, text, u->force, why, sizeof(why));
	free(text);
	if (err) {
		session_output_error(err, "--out", why);
		return err == MB_ERR_IO ? 1 : 2;
	}
	cli_note(u->quiet, "result written to %s", path);
	return exec_check(p, res, &(long){ 0 }) ? 1 : 0;
}

/* report prints (or writes) rank 0's results. Returns an exit status. */
static int report(const struct pipe_setup *u, const struct pipe_plan *p,
		  const struct pipe_exec_result *res, const struct pipe_exec_opts *o,
		  const char *timeline, const char *out, bool json)
{
	struct exec_view v = { .step_last = 0 };
	int st = 0, err = measure(res, u->pp, &v);

	if (!err)
		err = predict(u, p->schedule, p->op_scale, res, &v);
	if (err)
		st = (fprintf(stderr, "moebench: error: --execute: %s\n", err == MB_ERR_NOMEM ?
			      "out of memory" : v.sim.why), 1);
	if (!st && timeline) {
		struct pipe_setup mu = *u;  /* provenance: the measured durations */
		mu.times = v.times;
		st = exec_timeline(&mu, p, res, timeline);
	}
	if (!st && json)
		st = pipe_out_print_json(exec_json(u, &v, res));
	else if (!st)
		print_exec(u, &v, res, o);
	if (!st)
		st = exec_result(u, p, res, o, &v, out);
	pipe_result_free(&v.sim);
	free(v.busy);
	free(v.bubble);
	return st;
}

int pipe_cmd_execute(const struct pipe_setup *u, enum pipe_schedule s,
		     const struct pipe_exec_opts *o, const char *timeline, const char *out,
		     bool json)
{
	struct pipe_plan plan = { .n_ops = 0 };
	struct pipe_exec_program prog = { .n_ops = 0 };
	struct pipe_exec_result res = { .n_events = 0 };
	struct pipe_exec_opts opts = *o;
	char why[256];
	int st = exec_ready(u);

	if (st)
		return st;
	if (pipe_plan_build(s, u->pp, u->microbatches, u->chunks, &plan, why, sizeof(why)))
		return mpi_world_is_root() ? cli_error("moebench pipeline --help lists each "
						       "schedule's constraints", "%s", why) : 2;
	opts.msg_floats = opts.tokens * opts.hidden;
	if (pipe_lower(&plan, mpi_world_rank(), &prog))
		st = cli_error(NULL, "out of memory");
	else if (pipe_execute(&prog, &opts, &res))
		st = 1;
	else if (mpi_world_is_root())
		st = report(u, &plan, &res, o, timeline, out, json);
	pipe_exec_result_free(&res);
	pipe_exec_program_free(&prog);
	pipe_plan_free(&plan);
	return st;
}
