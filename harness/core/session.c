/* session.c - the shared flow of measuring commands (see session.h). */
#define _GNU_SOURCE
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "counters.h"
#include "export.h"
#include "hardware.h"
#include "mpi_world.h"
#include "result.h"
#include "status.h"

struct session {
	const char *command;
	struct cli_common common;
	struct backend backend;
	struct counters *counters;
	cJSON *doc;
	char out_path[1024];
	bool answered;   /* a benchmark answered without measuring: no result file */
};

int session_output_error(int err, const char *opt, const char *why)
{
	char hint[160];
	if (err == MB_ERR_EXISTS)
		snprintf(hint, sizeof(hint), "pass --force to replace it, or choose another %s", opt);
	else if (err == MB_ERR_ARG)
		snprintf(hint, sizeof(hint), "%s takes the path of a regular file to create (or, "
			 "with --force, replace)", opt);
	else
		snprintf(hint, sizeof(hint), "choose a %s path in a directory you can write", opt);
	return cli_error(hint, "%s: %s", opt, why);
}

/* prepare loads hardware files, opens the backend and counters, and starts the
 * document. Returns 0, or the exit status after printing the error. */
static int prepare(struct session *s, int argc, char **argv)
{
	char why[512];
	const struct cli_common *o = &s->common;
	int err;
	if (o->out)
		snprintf(s->out_path, sizeof(s->out_path), "%s", o->out);
	else
		result_default_path(s->command, s->out_path, sizeof(s->out_path));
	/* NOTE: before any work: a result that cannot be written is refused now, not
	 * after minutes of measuring. Every rank checks rank 0's path, so all stop together
	 * (rank 0 alone prints). */
	if ((err = result_output_check(s->out_path, o->force, why, sizeof(why))))
		return mpi_world_is_root() ? session_output_error(err, "--out", why) : 2;
	if (o->hardware && hardware_load_json(o->hardware, why, sizeof(why)))
		return cli_error("see README.md, 'Your own hardware', for the fields", "%s", why);
	err = backend_open(o->backend, o->device, &s->backend, why, sizeof(why));
	if (err == MB_ERR_NODEV)
		return cli_error("use --backend cpu, or run on a machine with a CUDA GPU and driver",
				 "--backend cuda: %s", why);
	if (err)
		return cli_error("moebench info lists the devices", "%s", why);
	if (why[0])
		cli_note(o->quiet, "no CUDA device, running on the CPU: %s", why);
	if (counters_open(o->counters, &s->counters, why, sizeof(why)))
		return cli_error("papi_avail and papi_native_avail list this machine's events; "
				 "example: --counters PAPI_TOT_CYC,perf::TASK-CLOCK", "%s", why);
	s->doc = result_new();
	if (!s->doc)
		return cli_error(NULL, "out of memory");
	context_fill(result_context(s->doc), argc, argv, &s->backend,
		     counters_any_available(s->counters));
	return 0;
}

/* print_summaries prints every benchmark's summary lines (doc["summary"]). */
static void print_summaries(const cJSON *doc)
{
	const cJSON *bench, *line;
	cJSON_ArrayForEach(bench, cJSON_GetObjectItem(doc, "summary")) {
		cJSON_ArrayForEach(line, cJSON_GetObjectItem(bench, "lines"))
			if (cJSON_IsString(line))
				printf("%s\n", line->valuestring);
	}
}

/* report_failures prints the run's error and failed checks, if any. */
static void report_failures(const struct session *s, int run_err, int failures)
{
	if (run_err)
		fprintf(stderr, "moebench: error: %s: the run stopped: %s\n", s->command,
			mb_status_str(run_err));
	if (failures)
		fprintf(stderr, "moebench: %d check%s FAILED (see the records marked fail)\n",
			failures, failures == 1 ? "" : "s");
}

/* finish writes the result file and prints the chosen format; returns the status.
 * Under MPI only rank 0 writes and prints; the others report their failures only. */
static int finish(struct session *s, int run_err, int failures)
{
	char why[512];
	/* NOTE: MB_ERR_ARG from a benchmark is bad input it found once the backend was
	 * known (it printed the error): exit 2 and write nothing. */
	if (run_err == MB_ERR_ARG)
		return 2;
	if (s->answered && !run_err)
		return failures ? 1 : 0;
	int status = (run_err || failures) ? 1 : 0;
	if (!mpi_world_is_root()) {
		report_failures(s, run_err, failures);
		return status;
	}
	char *text = cJSON_Print(s->doc);
	if (!text)
		return cli_error(NULL, "out of memory");
	int err = result_write_atomic(s->out_path, text, s->common.force, why, sizeof(why));
	free(text);
	if (err) {
		session_output_error(err, "--out", why);
		return err == MB_ERR_EXISTS || err == MB_ERR_ARG ? 2 : 1;
	}
	export_by_name(s->common.format, s->doc, stdout);
	if (strcmp(s->common.format, "text") == 0)
		print_summaries(s->doc);
	fflush(stdout);
	cli_note(s->common.quiet, "result written to %s", s->out_path);
	report_failures(s, run_err, failures);
	return status;
}

static void release(struct session *s)
{
	cJSON_Delete(s->doc);
	counters_close(s->counters);
	backend_close(&s->backend);
	hardware_reset_loaded();
}

/* run_one runs a benchmark's cases into the session's document. */
static int run_one(struct session *s, const struct bench_desc *d, bool suite, int *failures)
{
	struct run_ctx ctx = { .benchmark = d->name, .backend = &s->backend, .opts = &s->common,
			       .doc = s->doc, .counters = s->counters, .suite = suite };
	int err = d->run(&ctx);
	*failures += ctx.failures;
	s->answered = s->answered || ctx.answered;
	if (!err && d->summarize)
		err = d->summarize(s->doc);
	return err;
}

int session_bench(const struct bench_desc *d, int argc, char **argv)
{
	struct session s = { .command = d->name };
	char *pos[1];
	int npos, failures = 0;
	bool help;
	const struct cli_opt *common = cli_common_opts(&s.common, d->warmup, d->iters, d->min_time);
	int st = cli_parse(d->name, argc, argv, common, d->options ? d->options() : NULL, pos, 0,
			   &npos, &help, d->usage);
	if (st || help)
		return st;
	st = prepare(&s, argc, argv);
	if (!st) {
		int err = run_one(&s, d, false, &failures);
		st = finish(&s, err, failures);
	}
	release(&s);
	return st;
}

int session_suite(int argc, char **argv)
{
	struct session s = { .command = "run" };
	char *pos[1];
	int npos, failures = 0, err = MB_OK;
	bool help;
	const struct cli_opt *common = cli_common_opts(&s.common, "1", "5", "0.2");
	int st = cli_parse("run", argc, argv, common, NULL, pos, 0, &npos, &help,
			   "moebench run [options]   (every benchmark at small sizes)");
	if (st || help)
		return st;
	st = prepare(&s, argc, argv);
	for (int i = 0; !st && !err && bench_registry[i]; i++) {
		const struct bench_desc *d = bench_registry[i];
		if (!d->run)
			continue;
		/* Each benchmark's own options take their defaults in the suite. */
		if (d->options) {
			char *no_args[] = { (char *)d->name };
			bool h;
			cli_parse(d->name, 1, no_args, NULL, d->options(), pos, 0, &npos, &h, d->usage);
		}
		err = run_one(&s, d, true, &failures);
	}
	if (!st)
		st = finish(&s, err, failures);
	release(&s);
	return st;
}
