/* timer_cuda.c - CUDA-event timing of repetitions on the backend's stream (timer.h). */
#include "timer.h"

#include <cuda_runtime_api.h>

#include "backend.h"
#include "cuda_check.h"
#include "status.h"

#define BATCH 256

/* time_batch records n (<= BATCH) event-bracketed repetitions, then reads them. */
static int time_batch(struct backend *b, int (*run)(void *), void *state, long n, bool cold,
		      cudaEvent_t *ev, double *samples)
{
	cudaStream_t s = (cudaStream_t)b->stream;
	int err = MB_OK;
	for (long i = 0; i < n && !err; i++) {
		if (cold)
			err = backend_cuda_flush_l2(b);
		if (!err)
			err = MB_CUDA_CHECK(cudaEventRecord(ev[2 * i], s));
		if (!err)
			err = run(state);
		if (!err)
			err = MB_CUDA_CHECK(cudaEventRecord(ev[2 * i + 1], s));
	}
	if (!err)
		err = MB_CUDA_CHECK(cudaStreamSynchronize(s));
	for (long i = 0; i < n && !err; i++) {
		float ms = 0;
		err = MB_CUDA_CHECK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
		samples[i] = 1e-3 * (double)ms;
	}
	return err;
}

int timer_cuda_reps(struct backend *b, int (*run)(void *), void *state, long n, bool cold,
		    double *samples)
{
	cudaEvent_t ev[2 * BATCH];
	int made = 0, err = MB_OK;
	for (; made < 2 * BATCH && !err; made++)
		err = MB_CUDA_CHECK(cudaEventCreate(&ev[made]));
	if (err) {
		made--;
		goto out;
	}
	for (long done = 0; done < n && !err; done += BATCH) {
		long m = n - done < BATCH ? n - done : BATCH;
		err = time_batch(b, run, state, m, cold, ev, samples + done);
	}
out:
	for (int i = 0; i < made; i++)
		cudaEventDestroy(ev[i]);
	return err;
}
