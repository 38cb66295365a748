/*
 * core_nocuda.c - the CUDA side of harness/core for builds without CUDA: no device is
 * ever found (backend.h), and the reason says the build left CUDA out; CUDA-event
 * timing (timer.h) fails with MB_ERR_UNSUPPORTED.
 */
#include "backend.h"
#include "status.h"
#include "timer.h"

#include <stdio.h>

int backend_cuda_devices(struct device_info *devs, int max, int *count, char *why,
			 size_t why_len)
{
	*count = 0;
	snprintf(why, why_len, "this moebench was built without CUDA (MOEBENCH_CUDA=OFF or nvcc not found)");
	return MB_ERR_UNSUPPORTED;
}

void backend_cuda_versions(char *driver, char *runtime, size_t len)
{
	snprintf(driver, len, "n/a");
	snprintf(runtime, len, "n/a");
}

void backend_cublaslt_version(char *out, size_t len)
{
	snprintf(out, len, "n/a");
}

int backend_cuda_open_stream(struct backend *b, char *why, size_t why_len)
{
	snprintf(why, why_len, "built without CUDA");
	return MB_ERR_UNSUPPORTED;
}

void backend_close(struct backend *b)
{
	b->stream = NULL;
}

int backend_cuda_flush_l2(struct backend *b)
{
	return MB_OK;
}

int backend_sync(struct backend *b)
{
	return MB_OK;
}

int timer_cuda_reps(struct backend *b, int (*run)(void *), void *state, long n, bool cold,
		    double *samples)
{
	return MB_ERR_UNSUPPORTED;
}
