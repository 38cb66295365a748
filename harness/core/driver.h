/*
 * driver.h - the generic benchmark driver.
 *
 * A benchmark is a descriptor (struct bench_desc): its name, options and a function
 * that builds cases. Each case (struct bench_case) is a handful of callbacks over an
 * opaque state; the driver runs every case the same way:
 *
 *   poison the output -> run once -> check against the reference -> warm up ->
 *   time >= iters repetitions and >= min-time seconds -> statistics -> TFLOP/s or GB/s
 *   from the case's FLOP and byte counts -> % of the datasheet peak and of the measured
 *   peak -> one record.
 *
 * A case whose check fails is recorded with status "fail" and no performance figure,
 * and makes the command exit 1 (like nccl-tests' #wrong column).
 */
#ifndef MB_HARNESS_DRIVER_H
#define MB_HARNESS_DRIVER_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "backend.h"
#include "cli.h"

struct counters;
struct comm;

struct bench_check {
	double max_err;
	double tolerance;
	long samples;
	long mismatches;
	const char *metric;  /* what max_err measures, e.g. "abs_err/sum|a*b|" */
};

struct bench_case {
	char name[160];
	cJSON *params;          /* owned by the case; moved into the record */
	double flops;           /* per repetition, counted from the shapes; 0 if none */
	double bytes;           /* per repetition, counted from the shapes; 0 if none */
	double peak;            /* datasheet peak in the rate's unit, NaN when unknown */
	const char *peak_source;
	double measured_peak;   /* measured peak (`moebench peak`), same unit; 0 or NaN: none */
	void *state;
	int (*poison)(void *state);                            /* may be NULL */
	int (*run)(void *state);
	int (*check)(void *state, struct bench_check *chk);
	void (*destroy)(void *state);                          /* may be NULL */
	/* annotate adds fields of the case's own to its record after the check (e.g. the
	 * two errors of an FP8 GEMM); may be NULL. */
	int (*annotate)(void *state, cJSON *record);
	/* comm, when not NULL, makes the case collective over its ranks: every rank runs
	 * the same number of repetitions, each started together (barrier), and the time of
	 * a repetition is the slowest rank's (element-wise MAX over ranks before the
	 * statistics), as nccl-tests and docs/ARCHITECTURE.md's measuring rules ("a step's time is the slowest rank's").
	 * The check's mismatches are summed and max_err maxed over ranks. */
	struct comm *comm;
};

/* What the driver learnt of the last case it ran, typed, for the benchmark's own
 * summary: no summary reads its figures back out of the JSON document by string key. */
struct bench_outcome {
	bool recorded;          /* a record was written (false: the case could not finish) */
	bool pass;              /* its check passed; then the figures below are set */
	double median_s;        /* median time of one repetition; NaN when not measured */
	double tflops;          /* NaN when the case counts no FLOPs or was not measured */
	double gbps;            /* NaN when the case counts no bytes or was not measured */
	double pct_measured_peak;  /* NaN when there is no measured peak */
};

struct run_ctx {
	const char *benchmark;
	struct backend *backend;
	const struct cli_common *opts;
	cJSON *doc;
	struct counters *counters;
	bool suite;             /* `moebench run`: small sizes */
	int failures;           /* cases whose check failed */
	/* answered: the command answered without measuring (`a2a --print-layout`): exit 0,
	 * no result file. */
	bool answered;
	struct bench_outcome last;  /* of the case driver_run_case ran last */
};

/* One subcommand of moebench: every command is one entry of bench_registry
 * (benchmarks/registry.c). A measuring benchmark has `run` and goes through the generic
 * session (`moebench NAME` and the default suite). A command with a flow of its own
 * sets `command`, which `moebench NAME` runs instead; with `run` too it still has a case
 * in the default suite (claims, pipeline), without `run` it measures nothing (info,
 * model, compare). */
struct bench_desc {
	const char *name;
	const char *summary;
	const char *usage;
	const char *warmup, *iters, *min_time;   /* defaults of the shared options */
	const struct cli_opt *(*options)(void);  /* the command's own; may be NULL */
	/* run builds the cases for ctx->backend and passes each to driver_run_case.
	 * Returns MB_OK, or an error that stops the command (a failed check is not one).
	 * MB_ERR_ARG means bad input found before any case ran, already reported with
	 * cli_error: the command exits 2 and writes no result. */
	int (*run)(struct run_ctx *ctx);
	/* summarize, after all cases ran, adds the benchmark's summary to the document as
	 * doc["summary"][name] = { "lines": [text lines], ...figures }; the text format
	 * prints the lines under the table. May be NULL. */
	int (*summarize)(cJSON *doc);
	/* command, when set, is what `moebench NAME` runs, with argv[0] the name. */
	int (*command)(int argc, char **argv);
};

/* driver_run_case runs one case as described above, appends its record to ctx->doc,
 * sets ctx->last to what it measured, and destroys the case's state. Returns MB_OK (also when the check failed: that is
 * counted in ctx->failures) or the error that prevented measuring. */
int driver_run_case(struct run_ctx *ctx, struct bench_case *c);
/* driver_run_case_on_host runs a case whose work is host arithmetic (claims, the
 * pipeline simulator) on the CPU clock, whatever backend the command opened. */
int driver_run_case_on_host(struct run_ctx *ctx, struct bench_case *c);

#endif
