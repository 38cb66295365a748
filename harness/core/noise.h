/*
 * noise.h - what else the machine was doing while a case was timed.
 *
 * A median over repetitions that all fell in a slow phase (another process on the
 * cores, BLAS worker threads waiting for a core, a lowered clock) looks like a tight,
 * trustworthy measurement. The record therefore says how the timed region ran:
 *
 *   "timing": { "wall_s": total wall time of the timed repetitions,
 *               "cpu_s": process CPU time (all threads) over the same region,
 *               "cpu_per_wall": cpu_s / wall_s (1 = one busy thread; below the threads
 *                               the case uses = the process waited for a core),
 *               "involuntary_switches": times the OS preempted a thread of ours,
 *               "clean_reps": repetitions during which no thread of ours was
 *                             preempted (null where not counted: CUDA, collectives);
 *                             0 means even the fastest repetition waited for a core,
 *               "load_avg_1m": the 1-minute load average when the region ended,
 *               "online_cpus": the CPUs online }
 *
 * and the context holds the machine's state at start: "machine": { "load_avg":
 * [1m, 5m, 15m], "online_cpus", "cpu_mhz" (null where unreadable), "cpu_mhz_source",
 * "blas_threads" }.
 */
#ifndef MB_HARNESS_NOISE_H
#define MB_HARNESS_NOISE_H

#include <cjson/cJSON.h>

struct noise_probe {
	long clean;    /* repetitions without a preemption; -1 when not counted */
	double wall;   /* CLOCK_MONOTONIC at start, seconds */
	double cpu;    /* CLOCK_PROCESS_CPUTIME_ID at start, seconds */
	long nivcsw;   /* involuntary context switches at start (getrusage) */
};

/* noise_probe_start reads the clocks and counters at the start of a timed region. */
void noise_probe_start(struct noise_probe *p);

/* noise_probe_json returns the "timing" object above for the region from p to now
 * (NULL when out of memory). */
cJSON *noise_probe_json(const struct noise_probe *p);

/* noise_switches returns the process's involuntary context switches so far. */
long noise_switches(void);

/* noise_machine_json returns the context's "machine" object (NULL when out of memory). */
cJSON *noise_machine_json(void);

/* noise_load_avg returns the 1-minute load average, or -1 when unreadable. */
double noise_load_avg(void);

#endif
