/* timer.c - CPU timing of repetitions, dispatch to CUDA events (see timer.h). */
#define _GNU_SOURCE
#include "timer.h"

#include <time.h>

#include "backend.h"
#include "status.h"

double timer_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int timer_reps(struct backend *b, int (*run)(void *), void *state, long n, bool cold,
	       double *samples)
{
	if (b->kind == BACKEND_CUDA)
		return timer_cuda_reps(b, run, state, n, cold, samples);
	for (long i = 0; i < n; i++) {
		double t0 = timer_now();
		int err = run(state);
		samples[i] = timer_now() - t0;
		if (err)
			return err;
	}
	return MB_OK;
}
