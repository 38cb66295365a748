/*
 * pipeline_out.h - what `moebench pipeline` prints and writes (cmd_pipeline.c): the
 * table of schedules, the per-device table, the JSON document, the timeline CSV for
 * plots/pipeline.gp and the sweep CSV for plots/pipeline_sweep.gp.
 *
 * Timeline CSV (one row per operation, '#' provenance lines first):
 *   device, microbatch, microbatch2, chunk, kind, start, end, chunk2, label, label2,
 *   stage, stage2
 * kind is F, B (input gradient), W (weight gradient), BW (the full backward, B and W
 * fused) or FB (DualPipe's overlapped pair: microbatch/chunk/stage are its forward's,
 * microbatch2/chunk2/stage2 its backward's; -1 elsewhere). label is the micro-batch as
 * the DualPipe figure numbers it (within its direction), else the micro-batch.
 *
 * Sweep CSV: schedule, pp, microbatches, chunks, step_time, bubble_time_max,
 *   bubble_fraction, closed_form_bubble, closed_form_fraction (empty when the
 *   schedule rejects that size).
 */
#ifndef MB_HARNESS_PIPELINE_OUT_H
#define MB_HARNESS_PIPELINE_OUT_H

#include <stdbool.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "pipeline.h"

/* One schedule's outcome: built and simulated, or rejected with the constraint. */
struct pipe_result {
	enum pipe_schedule schedule;
	int status;            /* MB_OK, or the error that stopped it (why says it) */
	char why[256];
	struct pipe_plan plan;
	struct pipe_sim sim;
	struct pipe_closed closed;
};

/* The settings of one `moebench pipeline` run, as the outputs describe them. */
struct pipe_setup {
	int pp, microbatches, chunks;
	struct pipe_times times;
	int argc;
	char **argv;
	bool force;            /* --force: replace existing regular output files */
	bool quiet;            /* --quiet: no notes on stderr */
};

/* pipe_result_run builds, simulates and evaluates the closed form of one schedule.
 * A rejected size is recorded in r (status, why), not returned: returns MB_OK or
 * MB_ERR_CHECK (the simulator found a deadlock: a generator bug, why says where). */
int pipe_result_run(struct pipe_result *r, enum pipe_schedule s, const struct pipe_setup *u);
void pipe_result_free(struct pipe_result *r);

/* pipe_out_text prints the schedules side by side, then, for a single schedule, its
 * per-device table, then where simulation and closed form disagree and why. */
void pipe_out_text(const struct pipe_setup *u, const struct pipe_result *r, int n, FILE *f);
/* pipe_out_json returns a new object: the setup and one entry per schedule. */
cJSON *pipe_out_json(const struct pipe_setup *u, const struct pipe_result *r, int n);
/* pipe_out_print_json prints doc to stdout and deletes it; 0 or an exit status. */
int pipe_out_print_json(cJSON *doc);
/* pipe_out_provenance writes the '#' lines of a CSV (what, commit, date, argv, setup). */
void pipe_out_provenance(const struct pipe_setup *u, const char *what, FILE *f);
/* pipe_out_timeline writes r's timeline CSV to path atomically. Returns 0 or an exit
 * status after printing the error. */
int pipe_out_timeline(const struct pipe_setup *u, const struct pipe_result *r,
		      const char *path);
/* pipe_out_write_text writes text to path atomically, replacing an existing regular
 * file only when force (result_write_atomic's rule); 0 or an exit status. */
int pipe_out_write_text(const char *path, const char *text, const char *what, bool force);
/* pipe_out_check checks before any work that path can be written under that rule
 * (result_output_check); what names the option. 0 or an exit status (2). */
int pipe_out_check(const char *path, const char *what, bool force);

/* pipe_cmd_sweep simulates the schedules at each micro-batch count of `list` ("8,16")
 * and prints a table (or JSON), writing the sweep CSV to out when given.
 * pipe_cmd_execute runs schedule s across the MPI ranks (one per device) and, on rank
 * 0, prints the measured bubble and step time beside the simulator's prediction for
 * the measured durations; timeline, when given, receives the measured events; out is
 * the path of its result document (moebench.result/1: the step's statistics, the
 * bubble, and the check that every rank ran the plan's operations in order). Both
 * return an exit status (cmd_pipeline_run.c). */
int pipe_cmd_sweep(const struct pipe_setup *u, const enum pipe_schedule *s, int n,
		   const char *list, const char *out, bool json);
int pipe_cmd_execute(const struct pipe_setup *u, enum pipe_schedule s,
		     const struct pipe_exec_opts *o, const char *timeline, const char *out,
		     bool json);

#endif
