/*
 * cmd_pipeline.c - `moebench pipeline`: pipeline-parallel schedules, their simulated
 * bubble beside the published closed form, the timeline figure's CSV, a sweep over
 * micro-batch counts, and (--execute) a real run across MPI ranks.
 *
 *   moebench pipeline                                    # every schedule, PP=4, m=8
 *   moebench pipeline --schedule dualpipe --pp 8 --microbatches 16 --timeline dp.csv
 *   moebench pipeline --schedule all --pp 8 --f 1 --b 1 --w 1 --fb 2 --json
 *   moebench pipeline --schedule all --pp 8 --sweep 8,16,32,64,128 --out sweep.csv
 *   mpirun -np 4 moebench pipeline --schedule 1f1b --pp 4 --execute
 *
 * Conventions: --f, --b, --w are the forward, the backward for inputs and the backward
 * for weights of one micro-batch through one device's share of the layers (the
 * zero-bubble paper's B and W; the DualPipe table's B is b + w); --fb the overlapped
 * F&B pair (default f + b + w). A device's bubble is its idle time in the step (step
 * time minus busy time, Megatron's definition, which the closed forms state); its gap
 * the idle time between its own first and last operation. Exit 0; 1 when a run fails;
 * 2 on bad input (a schedule's constraint, named).
 */
#include "commands.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mpi_world.h"
#include "result.h"
#include "pipeline_out.h"
#include "status.h"

#define MAX_SWEEP 64

struct pipe_cli {
	const char *schedule, *timeline, *sweep, *out;
	bool simulate, execute, json, quiet, force;
	char result_path[1024];  /* --execute: the result document */
	struct pipe_setup u;
	struct pipe_exec_opts exec;
	int64_t msg_bytes;
};

static const char usage_line[] =
	"moebench pipeline [--schedule NAME|all] [--pp P] [--microbatches M] [--chunks V] "
	"[--f T --b T --w T --fb T] [--latency T] [--simulate | --execute] "
	"[--timeline FILE.csv] [--sweep M1,M2,... [--out FILE.csv]] [--out FILE.json] [--force] "
	"[--format text|json]";

/* print_conventions is the part of --help the option table cannot say. */
static void print_conventions(void)
{
	printf("\nschedules: %s, or all\n"
	       "durations are per micro-batch through one device's share of the layers (1/PP of\n"
	       "the model): --b is the backward for inputs and --w the backward for weights, as\n"
	       "in the zero-bubble paper; the DualPipe table's B is b + w and its F&B is --fb.\n"
	       "gpipe, 1f1b and interleaved never split B and W (their backward takes b + w);\n"
	       "interleaved ops take 1/v of the durations, DualPipeV ops 1/2.\n"
	       "A device's bubble is its idle time in the step (step time - busy time); the\n"
	       "bubble fraction is bubble / (m x (f + b + w)) (Megatron's definition).\n"
	       "constraints: interleaved v >= 2 and m a multiple of PP; dualpipe PP even, m even\n"
	       "and m >= 2 x PP; dualpipev m >= 2 x PP (as the reference schedules assert).\n"
	       "--execute runs the schedule on PP MPI ranks: mpirun -np P moebench pipeline "
	       "--execute ...\n", pipe_schedule_names());
}

/* parse_options fills c from argv. Returns 0, or an exit status (help counts as 0 with
 * *help set). */
static int parse_options(struct pipe_cli *c, int argc, char **argv, bool *help)
{
	char *pos[1];
	int npos;
	const struct cli_opt opts[] = {
		{ "schedule", CLI_STRING, &c->schedule, "all", "a schedule (below), or all", 0, -1, NULL },
		{ "pp", CLI_INT, &c->u.pp, "4", "pipeline devices (ranks)", 1, 4096, NULL },
		{ "microbatches", CLI_INT, &c->u.microbatches, NULL, "micro-batches per step (default 2 x PP)", 1, 1 << 20, NULL },
		{ "chunks", CLI_INT, &c->u.chunks, "2", "model chunks per device of interleaved (v)", 1, 64, NULL },
		{ "f", CLI_DOUBLE, &c->u.times.f, "1", "forward time", 0, 1e30, NULL },
		{ "b", CLI_DOUBLE, &c->u.times.b, "1", "backward-for-inputs time", 0, 1e30, NULL },
		{ "w", CLI_DOUBLE, &c->u.times.w, "1", "backward-for-weights time", 0, 1e30, NULL },
		{ "fb", CLI_DOUBLE, &c->u.times.fb, NULL, "overlapped F&B pair time (default f + b + w)", 0, 1e30, NULL },
		{ "latency", CLI_DOUBLE, &c->u.times.latency, "0", "time per message between devices", 0, 1e30, NULL },
		{ "bandwidth", CLI_DOUBLE, &c->u.times.bandwidth, "0", "bytes per time unit between devices (0: no transfer term)", 0, 1e30, NULL },
		{ "msg-bytes", CLI_SIZE, &c->msg_bytes, "0", "bytes per activation or gradient message", 0, 1e18, NULL },
		{ "simulate", CLI_FLAG, &c->simulate, NULL, "simulate the schedule (the default)", 0, -1, NULL },
		{ "execute", CLI_FLAG, &c->execute, NULL, "run it across PP MPI ranks (mpirun -np P)", 0, -1, NULL },
		{ "timeline", CLI_STRING, &c->timeline, NULL, "write one row per operation to FILE.csv (one schedule)", 0, -1, NULL },
		{ "sweep", CLI_STRING, &c->sweep, NULL, "simulate each micro-batch count of a comma list", 0, -1, NULL },
		{ "out", CLI_STRING, &c->out, NULL, "--sweep: the sweep's CSV; --execute: the result file (default: a new results/runs/local/...-pipeline.json)", 0, -1, NULL },
		{ "force", CLI_FLAG, &c->force, NULL, "replace existing regular --out and --timeline files", 0, -1, NULL },
		{ "json", CLI_FLAG, &c->json, NULL, "print one JSON object", 0, -1, NULL },
		{ "hidden", CLI_INT, &c->exec.hidden, "256", "--execute: GEMM size per work unit (tokens x hidden x hidden)", 8, 16384, NULL },
		{ "tokens", CLI_INT, &c->exec.tokens, "64", "--execute: tokens per micro-batch", 1, 1 << 20, NULL },
		{ "steps", CLI_INT, &c->exec.steps, "3", "--execute: timed steps after one warm-up", 1, 1000, NULL },
		{ "timeout", CLI_DOUBLE, &c->exec.timeout_s, "60", "--execute: abort when a step takes longer (s)", 0.1, 1e6, NULL },
		{ "quiet", CLI_FLAG, &c->quiet, NULL, "no notes on stderr", 0, -1, NULL },
		CLI_END
	};
	int st = cli_parse("pipeline", argc, argv, NULL, opts, pos, 0, &npos, help, usage_line);

	if (!st && *help)
		print_conventions();
	return st;
}

/* check_mode_options refuses options of the other mode: --execute measures the
 * durations the simulator takes as options, and only it takes the GEMM's size. */
static int check_mode_options(const struct pipe_cli *c)
{
	const void *sim[] = { &c->u.times.f, &c->u.times.b, &c->u.times.w, &c->u.times.fb,
			      &c->u.times.latency, &c->u.times.bandwidth, &c->msg_bytes };
	const char *sim_names[] = { "f", "b", "w", "fb", "latency", "bandwidth", "msg-bytes" };
	const void *exe[] = { &c->exec.hidden, &c->exec.tokens, &c->exec.steps,
			      &c->exec.timeout_s };
	const char *exe_names[] = { "hidden", "tokens", "steps", "timeout" };
	int st = 0;

	for (int i = 0; i < 7 && !st; i++)
		if (cli_given(sim[i]) && c->execute)
			st = cli_error("--execute measures F, B and W: drop the durations",
				       "--%s applies only to the simulation (not --execute)",
				       sim_names[i]);
	for (int i = 0; i < 4 && !st; i++)
		st = cli_only_with(exe[i], exe_names[i], c->execute, "--execute");
	return st;
}

/* check_outputs checks before any work that every file this run writes can be
 * written (every rank checks, rank 0 prints, so an MPI run stops together). */
static int check_outputs(struct pipe_cli *c)
{
	int st = 0;

	if (c->execute && !c->out)
		result_default_path("pipeline", c->result_path, sizeof(c->result_path));
	else if (c->execute)
		snprintf(c->result_path, sizeof(c->result_path), "%s", c->out);
	st = pipe_out_check(c->timeline, "--timeline", c->force);
	if (!st)
		st = pipe_out_check(c->sweep ? c->out : NULL, "--out", c->force);
	if (!st)
		st = pipe_out_check(c->execute ? c->result_path : NULL, "--out", c->force);
	return st;
}

/* check_modes rejects option combinations that mean nothing. */
static int check_modes(const struct pipe_cli *c, bool all)
{
	const char *run = "moebench pipeline --help lists the modes";

	if (c->simulate && c->execute)
		return cli_error(run, "--simulate and --execute exclude each other");
	if (c->execute && all)
		return cli_error("name one schedule: --schedule 1f1b", "--execute runs one schedule, "
				 "not all");
	if (c->timeline && all)
		return cli_error("name one schedule: --schedule dualpipe", "--timeline draws one "
				 "schedule, not all");
	if (c->sweep && (c->execute || c->timeline))
		return cli_error(run, "--sweep simulates only: drop --execute and --timeline");
	if (c->out && !c->sweep && !c->execute)
		return cli_error("add --sweep M1,M2,... (its CSV) or --execute (its result file)",
				 "--out applies only with --sweep or --execute");
	return check_mode_options(c);
}

/* pick_schedules parses --schedule into a list. Returns 0 or an exit status. */
static int pick_schedules(const char *name, enum pipe_schedule *list, int *n)
{
	char hint[160];

	*n = 0;
	if (strcmp(name, "all") == 0) {
		for (int i = 0; i < PIPE_N_SCHEDULES; i++)
			list[(*n)++] = (enum pipe_schedule)i;
		return 0;
	}
	if (pipe_schedule_parse(name, &list[0]) == MB_OK) {
		*n = 1;
		return 0;
	}
	snprintf(hint, sizeof(hint), "schedules are %s, or all", pipe_schedule_names());
	return cli_error(hint, "--schedule: unknown schedule '%s'", name);
}

/* run_all runs every listed schedule; a single schedule's rejected size is bad input.
 * Returns 0 or an exit status. */
static int run_all(const struct pipe_cli *c, const enum pipe_schedule *list, int n,
		   struct pipe_result *r)
{
	for (int i = 0; i < n; i++) {
		int err = pipe_result_run(&r[i], list[i], &c->u);
		if (err)
			return fprintf(stderr, "moebench: error: %s\n", r[i].why), 1;
		if (r[i].status && n == 1)
			return cli_error("moebench pipeline --help lists each schedule's "
					 "constraints", "%s", r[i].why);
		if (r[i].status)
			cli_note(c->quiet || c->json, "%s skipped: %s", pipe_schedule_name(list[i]),
				 r[i].why);
	}
	return 0;
}

/* simulate runs the chosen schedules and prints them. */
static int simulate(const struct pipe_cli *c, const enum pipe_schedule *list, int n)
{
	struct pipe_result r[PIPE_N_SCHEDULES];
	int st;

	memset(r, 0, sizeof(r));
	st = run_all(c, list, n, r);
	if (!st && c->timeline)
		st = pipe_out_timeline(&c->u, &r[0], c->timeline);
	if (!st && c->json)
		st = pipe_out_print_json(pipe_out_json(&c->u, r, n));
	else if (!st)
		pipe_out_text(&c->u, r, n, stdout);
	for (int i = 0; i < n; i++)
		pipe_result_free(&r[i]);
	return st;
}

int cmd_pipeline(int argc, char **argv)
{
	struct pipe_cli c = { .u = { .argc = argc, .argv = argv, .times.fb = NAN } };
	enum pipe_schedule list[PIPE_N_SCHEDULES];
	bool help;
	int n, st = parse_options(&c, argc, argv, &help);

	if (st || help)
		return st;
	if ((st = pick_schedules(c.schedule, list, &n)) || (st = check_modes(&c, n > 1)))
		return st;
	if (c.u.microbatches == 0)
		c.u.microbatches = 2 * c.u.pp;
	c.u.times.msg_bytes = (double)c.msg_bytes;
	c.u.force = c.force;
	c.u.quiet = c.quiet;
	if ((st = check_outputs(&c)))
		return st;
	if (c.sweep)
		return pipe_cmd_sweep(&c.u, list, n, c.sweep, c.out, c.json);
	if (c.execute)
		return pipe_cmd_execute(&c.u, list[0], &c.exec, c.timeline, c.result_path, c.json);
	return simulate(&c, list, n);
}
