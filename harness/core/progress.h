/*
 * progress.h - a progress line with an ETA for the long phases of a case (warm-up and
 * timed repetitions of a large GEMM on the CPU can take minutes): silent for the first
 * PROGRESS_QUIET_S seconds, so short cases print nothing, then at most one line every
 * PROGRESS_EVERY_S seconds on stderr:
 *
 *   moebench: gemm: fp8/M4096_N7168_K2048: timing 3 of 10 repetitions, 21 s so far, ETA 49 s
 */
#ifndef MB_HARNESS_PROGRESS_H
#define MB_HARNESS_PROGRESS_H

#include <stdbool.h>

#define PROGRESS_QUIET_S 3.0
#define PROGRESS_EVERY_S 5.0

struct progress {
	const char *benchmark, *name;  /* what the line names */
	bool quiet;                    /* --quiet, or not the rank that speaks */
	double t0, last;               /* start and last line, timer_now() seconds */
	long lines;                    /* lines printed */
};

/* progress_start starts the clock of a case's progress. */
void progress_start(struct progress *p, const char *benchmark, const char *name, bool quiet);
/* progress_eta_s estimates the seconds left: `left` more repetitions at per_rep each. */
double progress_eta_s(long left, double per_rep);
/* progress_tick prints "<phase> <done> of <total> repetitions" with the time so far
 * and the ETA (per_rep seconds per repetition, left repetitions to go), when the
 * quiet period is over and the last line is old enough. */
void progress_tick(struct progress *p, const char *phase, long done, long total,
		   double per_rep, long left);

#endif
