/*
 * timer.h - timing repetitions of one operation.
 *
 * CPU: CLOCK_MONOTONIC around each repetition. CUDA: a pair of events recorded on the
 * stream around each repetition, read after the batch completes, so host overhead
 * between launches is not counted and launches stay asynchronous. With cold, the L2
 * is flushed between repetitions, outside the timed events.
 */
#ifndef MB_HARNESS_TIMER_H
#define MB_HARNESS_TIMER_H

#include <stdbool.h>

struct backend;

/* timer_now returns CLOCK_MONOTONIC in seconds. */
double timer_now(void);

/* timer_reps times n repetitions of run(state) on backend b into samples[0..n), in
 * seconds. Returns MB_OK, or the first error run or the device returned. */
int timer_reps(struct backend *b, int (*run)(void *), void *state, long n, bool cold,
	       double *samples);

/* timer_cuda_reps is the CUDA events version used by timer_reps (MB_ERR_UNSUPPORTED
 * in builds without CUDA). */
int timer_cuda_reps(struct backend *b, int (*run)(void *), void *state, long n, bool cold,
		    double *samples);

#endif
