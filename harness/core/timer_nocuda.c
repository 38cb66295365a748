/* timer_nocuda.c - timer_cuda_reps for builds without CUDA. */
#include "timer.h"

#include "status.h"

int timer_cuda_reps(struct backend *b, int (*run)(void *), void *state, long n, bool cold,
		    double *samples)
{
	(void)b, (void)run, (void)state, (void)n, (void)cold, (void)samples;
	return MB_ERR_UNSUPPORTED;
}
