/*
 * net_clock_cuda.c - the device step's clock and memory high-water mark (net_ops.h):
 * CUDA events on the op table's stream at the profile's boundaries, cudaMemGetInfo
 * sampled at each.
 */
#include <math.h>

#include "cuda_check.h"
#include "net_ops_cuda.h"
#include "status.h"

static struct {
	cudaEvent_t base, probe;   /* the last boundary's event and the next one's */
	double seconds;            /* stream time from the open to base */
	double peak;               /* most bytes in use seen (NaN: none yet) */
	bool open;
} clk = { .peak = NAN };

/* clk_sample keeps the most bytes in use on the device (total - free). */
static void clk_sample(void)
{
	size_t free_b = 0, total_b = 0;
	if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
		return;
	double used = (double)(total_b - free_b);
	if (!(used <= clk.peak))
		clk.peak = used;
}

int net_cuda_clock_open(void)
{
	if (!net_cuda.open || clk.open)
		return MB_ERR_ARG;
	clk.seconds = 0;
	clk.peak = NAN;
	int err = MB_CUDA_CHECK(cudaEventCreate(&clk.base));
	if (!err)
		err = MB_CUDA_CHECK(cudaEventCreate(&clk.probe));
	if (!err)
		err = MB_CUDA_CHECK(cudaEventRecord(clk.base, net_cuda.stream));
	if (!err)
		err = MB_CUDA_CHECK(cudaEventSynchronize(clk.base));
	clk.open = !err;
	if (err) {
		net_cuda_clock_close();
		return err;
	}
	clk_sample();
	return MB_OK;
}

/* net_cuda_clock_now: the elapsed time from base to a new event, added in double (an
 * event pair's float milliseconds stay short), then that event becomes the base. NaN
 * (error kept for net_cuda_ops_status) when the clock is not open or an event fails. */
double net_cuda_clock_now(void)
{
	float ms = 0;
	if (!clk.open)
		return NAN;
	int err = MB_CUDA_CHECK(cudaEventRecord(clk.probe, net_cuda.stream));
	if (!err)
		err = MB_CUDA_CHECK(cudaEventSynchronize(clk.probe));
	if (!err)
		err = MB_CUDA_CHECK(cudaEventElapsedTime(&ms, clk.base, clk.probe));
	if (net_cuda_fail(err))
		return NAN;
	cudaEvent_t e = clk.base;
	clk.base = clk.probe;
	clk.probe = e;
	clk.seconds += 1e-3 * (double)ms;
	clk_sample();
	return clk.seconds;
}

double net_cuda_mem_peak(void)
{
	return clk.peak;
}

void net_cuda_clock_close(void)
{
	if (clk.base)
		cudaEventDestroy(clk.base);
	if (clk.probe)
		cudaEventDestroy(clk.probe);
	clk.base = clk.probe = NULL;
	clk.open = false;
}
