/*
 * pipeline_out.c - the outputs of `moebench pipeline` (pipeline_out.h): running one
 * schedule through generator, simulator and closed form; the text tables; the JSON
 * document; the timeline CSV.
 */
#define _GNU_SOURCE
#include "pipeline_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "context.h"
#include "mpi_world.h"
#include "result.h"
#include "session.h"
#include "status.h"

int pipe_result_run(struct pipe_result *r, enum pipe_schedule s, const struct pipe_setup *u)
{
	*r = (struct pipe_result){ .schedule = s };
	r->status = pipe_plan_build(s, u->pp, u->microbatches, u->chunks, &r->plan, r->why,
				    sizeof(r->why));
	if (r->status)
		return r->status == MB_ERR_ARG ? MB_OK : r->status;
	r->status = pipe_simulate(&r->plan, &u->times, &r->sim, r->why, sizeof(r->why));
	if (r->status)
		return r->status;
	pipe_closed_form(&r->plan, &u->times, &r->closed);
	return MB_OK;
}

void pipe_result_free(struct pipe_result *r)
{
	pipe_sim_free(&r->sim);
	pipe_plan_free(&r->plan);
}

/* fb_text describes the F&B duration in use. */
static void fb_text(const struct pipe_times *t, char *buf, size_t len)
{
	if (isnan(t->fb) || t->fb < 0)
		snprintf(buf, len, "f+b+w = %g", t->f + t->b + t->w);
	else
		snprintf(buf, len, "%g", t->fb);
}

/* print_header says what was simulated, in which unit, with which conventions. */
static void print_header(const struct pipe_setup *u, FILE *f)
{
	char fb[64];

	fb_text(&u->times, fb, sizeof(fb));
	fprintf(f, "pipeline: PP=%d devices, m=%d micro-batches, v=%d chunks (interleaved)\n"
		"durations per micro-batch per device share: f=%g b=%g w=%g fb=%s; latency %g",
		u->pp, u->microbatches, u->chunks, u->times.f, u->times.b, u->times.w, fb,
		u->times.latency);
	if (u->times.bandwidth > 0)
		fprintf(f, ", %g bytes at %g bytes per unit", u->times.msg_bytes, u->times.bandwidth);
	fprintf(f, "\n(times in the unit of --f; bubble: step time - busy time; fraction: "
		"bubble / (m(f+b+w)); the DualPipe table's B is b+w, its F&B fb)\n\n");
}

/* print_row prints one schedule's row of the side-by-side table. */
static void print_row(const struct pipe_result *r, FILE *f)
{
	const struct pipe_sim *s = &r->sim;
	const struct pipe_closed *c = &r->closed;

	if (r->status) {
		fprintf(f, "%-12s n/a: %s\n", pipe_schedule_name(r->schedule), r->why);
		return;
	}
	fprintf(f, "%-12s %7d %6d %8ld %10.5g %10.5g %11.5g %9.4f %11.5g %8.4f %-5s %8.3g %6d\n",
		pipe_schedule_name(r->schedule), r->plan.pp, r->plan.stages, r->plan.n_ops,
		s->step_time, s->bubble_max, s->bubble_mean, s->fraction_max, c->bubble,
		c->fraction, c->exact ? "yes" : "no", s->peak_act_max, r->plan.param_copies);
}

/* print_devices prints one schedule's per-device table. */
static void print_devices(const struct pipe_result *r, FILE *f)
{
	fprintf(f, "\n%s per device:\n%6s %11s %10s %10s %10s %10s %9s %9s\n",
		pipe_schedule_name(r->schedule), "device", "first_start", "last_end", "busy",
		"bubble", "gap", "fraction", "peak_act");
	for (int d = 0; d < r->plan.pp; d++) {
		const struct pipe_device_stats *ds = &r->sim.dev[d];
		fprintf(f, "%6d %11.5g %10.5g %10.5g %10.5g %10.5g %9.4f %9.3g\n", d, ds->first_start,
			ds->last_end, ds->busy, ds->bubble, ds->gap, ds->fraction, ds->peak_act);
	}
	fprintf(f, "(gap: idle between the device's own first and last operation, without "
		"the pipeline fill and drain)\n");
}

/* print_notes says, per schedule, whether simulation and closed form agree, and when
 * they do not, whether the durations lie outside the form's condition. */
static void print_notes(const struct pipe_result *r, int n, FILE *f)
{
	fprintf(f, "\n");
	for (int i = 0; i < n; i++) {
		const struct pipe_closed *c = &r[i].closed;
		double diff = r[i].sim.bubble_max - c->bubble;
		bool same = fabs(diff) <= 1e-9 * fmax(1, fabs(c->bubble));
		if (r[i].status)
			continue;
		fprintf(f, "%-12s %s = %.6g: ", pipe_schedule_name(r[i].schedule), c->formula,
			c->bubble);
		if (same)
			fprintf(f, "reproduced\n");
		else if (!c->exact && strcmp(c->condition, "any durations") == 0)
			fprintf(f, "differs by %+.6g; exact only with no message cost\n", diff);
		else if (!c->exact)
			fprintf(f, "differs by %+.6g; exact only when %s, with no message cost\n",
				diff, c->condition);
		else
			fprintf(f, "differs by %+.6g where it should hold (a generator bug?)\n", diff);
	}
}

void pipe_out_text(const struct pipe_setup *u, const struct pipe_result *r, int n, FILE *f)
{
	print_header(u, f);
	fprintf(f, "%-12s %7s %6s %8s %10s %10s %11s %9s %11s %8s %-5s %8s %6s\n", "schedule",
		"devices", "stages", "ops", "step_time", "bubble_max", "bubble_mean", "fraction",
		"closed_form", "cf_frac", "exact", "peak_act", "params");
	for (int i = 0; i < n; i++)
		print_row(&r[i], f);
	if (n == 1 && r[0].status == MB_OK)
		print_devices(&r[0], f);
	print_notes(r, n, f);
	fprintf(f, "(peak_act: in-flight activations, micro-batches x a device's share of "
		"layers; params: copies of the model's parameters over the pipeline)\n");
}

/* device_json is one device's figures. */
static cJSON *device_json(const struct pipe_device_stats *ds, int d)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "device", d);
	cJSON_AddNumberToObject(o, "first_start", ds->first_start);
	cJSON_AddNumberToObject(o, "last_end", ds->last_end);
	cJSON_AddNumberToObject(o, "busy", ds->busy);
	cJSON_AddNumberToObject(o, "bubble_time", ds->bubble);
	cJSON_AddNumberToObject(o, "gap_time", ds->gap);
	cJSON_AddNumberToObject(o, "bubble_fraction", ds->fraction);
	cJSON_AddNumberToObject(o, "peak_activations", ds->peak_act);
	return o;
}

/* schedule_json is one schedule's entry. */
static cJSON *schedule_json(const struct pipe_result *r)
{
	cJSON *o = cJSON_CreateObject(), *devs;
	const struct pipe_sim *s = &r->sim;

	cJSON_AddStringToObject(o, "schedule", pipe_schedule_name(r->schedule));
	if (r->status) {
		cJSON_AddStringToObject(o, "error", r->why);
		return o;
	}
	cJSON_AddNumberToObject(o, "devices", r->plan.pp);
	cJSON_AddNumberToObject(o, "stages", r->plan.stages);
	cJSON_AddNumberToObject(o, "operations", (double)r->plan.n_ops);
	cJSON_AddNumberToObject(o, "step_time", s->step_time);
	cJSON_AddNumberToObject(o, "bubble_time_max", s->bubble_max);
	cJSON_AddNumberToObject(o, "bubble_time_mean", s->bubble_mean);
	cJSON_AddNumberToObject(o, "gap_time_max", s->gap_max);
	cJSON_AddNumberToObject(o, "gap_time_mean", s->gap_mean);
	cJSON_AddNumberToObject(o, "bubble_fraction", s->fraction_max);
	cJSON_AddNumberToObject(o, "bubble_fraction_mean", s->fraction_mean);
	cJSON_AddNumberToObject(o, "closed_form_bubble", r->closed.bubble);
	cJSON_AddNumberToObject(o, "closed_form_fraction", r->closed.fraction);
	cJSON_AddStringToObject(o, "closed_form", r->closed.formula);
	cJSON_AddStringToObject(o, "closed_form_source", r->closed.source);
	cJSON_AddStringToObject(o, "closed_form_condition", r->closed.condition);
	cJSON_AddBoolToObject(o, "closed_form_exact", r->closed.exact);
	cJSON_AddNumberToObject(o, "peak_activations", s->peak_act_max);
	cJSON_AddNumberToObject(o, "param_copies", r->plan.param_copies);
	devs = cJSON_AddArrayToObject(o, "per_device");
	for (int d = 0; d < r->plan.pp; d++)
		cJSON_AddItemToArray(devs, device_json(&s->dev[d], d));
	return o;
}

cJSON *pipe_out_json(const struct pipe_setup *u, const struct pipe_result *r, int n)
{
	cJSON *o = cJSON_CreateObject(), *t, *arr;
	const struct pipe_times *d = &u->times;

	cJSON_AddStringToObject(o, "schema", "moebench.pipeline/1");
	cJSON_AddNumberToObject(o, "pp", u->pp);
	cJSON_AddNumberToObject(o, "microbatches", u->microbatches);
	cJSON_AddNumberToObject(o, "chunks", u->chunks);
	t = cJSON_AddObjectToObject(o, "durations");
	cJSON_AddNumberToObject(t, "f", d->f);
	cJSON_AddNumberToObject(t, "b", d->b);
	cJSON_AddNumberToObject(t, "w", d->w);
	cJSON_AddNumberToObject(t, "fb", isnan(d->fb) || d->fb < 0 ? d->f + d->b + d->w : d->fb);
	cJSON_AddNumberToObject(t, "latency", d->latency);
	cJSON_AddNumberToObject(t, "bandwidth", d->bandwidth);
	cJSON_AddNumberToObject(t, "msg_bytes", d->msg_bytes);
	arr = cJSON_AddArrayToObject(o, "schedules");
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, schedule_json(&r[i]));
	return o;
}

int pipe_out_print_json(cJSON *doc)
{
	char *t = doc ? cJSON_Print(doc) : NULL;
	int st = t ? 0 : cli_error(NULL, "out of memory");

	if (t)
		puts(t);
	free(t);
	cJSON_Delete(doc);
	return st;
}

void pipe_out_provenance(const struct pipe_setup *u, const char *what, FILE *f)
{
	char date[32], fb[64];
	time_t now = time(NULL);

	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fb_text(&u->times, fb, sizeof(fb));
	fprintf(f, "# moebench pipeline: %s\n# git_commit: %s\n# date: %s\n# argv: moebench",
		what, moebench_git_commit, date);
	for (int i = 0; i < u->argc; i++)
		fprintf(f, " %s", u->argv[i]);
	fprintf(f, "\n# pp: %d\n", u->pp);
	if (u->microbatches > 0)  /* 0: a sweep, one count per row */
		fprintf(f, "# microbatches: %d\n", u->microbatches);
	fprintf(f, "# chunks: %d\n# durations: f=%g b=%g w=%g fb=%s latency=%g\n", u->chunks,
		u->times.f, u->times.b, u->times.w, fb, u->times.latency);
}

/* op_label is the number the DualPipe figure shows for a micro-batch. */
static int op_label(const struct pipe_plan *p, int mb)
{
	return p->schedule == PIPE_DUALPIPE ? mb % (p->microbatches / 2) : mb;
}

/* timeline_rows writes one CSV row per operation. */
static void timeline_rows(const struct pipe_result *r, FILE *f)
{
	static const char *const kinds[] = { "F", "B", "W", "FB" };
	const struct pipe_plan *p = &r->plan;

	fprintf(f, "device,microbatch,microbatch2,chunk,kind,start,end,chunk2,label,label2,"
		"stage,stage2\n");
	for (int d = 0; d < p->pp; d++)
		for (long i = p->first[d]; i < p->first[d + 1]; i++) {
			const struct pipe_op *op = &p->ops[i];
			bool x = op->kind == PIPE_OP_FB;
			const char *k = op->kind == PIPE_OP_B && op->with_w ? "BW" : kinds[op->kind];
			fprintf(f, "%d,%d,%d,%d,%s,%.9g,%.9g,%d,%d,%d,%d,%d\n", d, op->mb, op->mb2,
				pipe_stage_chunk(p, op->mb, op->stage), k, r->sim.start[i], r->sim.end[i],
				x ? pipe_stage_chunk(p, op->mb2, op->stage2) : -1, op_label(p, op->mb),
				x ? op_label(p, op->mb2) : -1, op->stage, op->stage2);
		}
}

int pipe_out_write_text(const char *path, const char *text, const char *what, bool force)
{
	char why[512];
	int err = result_write_atomic(path, text, force, why, sizeof(why));

	return err ? session_output_error(err, what, why) : 0;
}

int pipe_out_check(const char *path, const char *what, bool force)
{
	char why[512];
	int err = path ? result_output_check(path, force, why, sizeof(why)) : MB_OK;

	/* NOTE: every rank of --execute checks; rank 0 alone says why. */
	if (err && !mpi_world_is_root())
		return 2;
	return err ? session_output_error(err, what, why) : 0;
}

int pipe_out_timeline(const struct pipe_setup *u, const struct pipe_result *r,
		      const char *path)
{
	char *text = NULL, what[96];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int st;

	if (!f)
		return cli_error(NULL, "out of memory");
	snprintf(what, sizeof(what), "simulated timeline of %s (plots/pipeline.gp)",
		 pipe_schedule_name(r->schedule));
	pipe_out_provenance(u, what, f);
	fprintf(f, "# step_time: %.9g\n", r->sim.step_time);
	timeline_rows(r, f);
	st = fclose(f) != 0 || !text ? cli_error(NULL, "out of memory")
				       : pipe_out_write_text(path, text, "--timeline", u->force);
	free(text);
	return st;
}
