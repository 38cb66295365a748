/*
 * backend_cuda.c - the CUDA side of backend.h: device discovery and facts, the stream,
 * L2 flushes. Compiled only when moebench is built with CUDA.
 */
#define _GNU_SOURCE
#include "backend.h"

#include <stdio.h>
#include <string.h>
#include <cuda_runtime_api.h>
#include <cublasLt.h>

#include "cuda_check.h"
#include "status.h"

static void *flush_buf;
static size_t flush_bytes;

static void version_str(int v, char *out, size_t len)
{
	if (v <= 0)
		snprintf(out, len, "n/a");
	else
		snprintf(out, len, "%d.%d", v / 1000, (v % 1000) / 10);
}

void backend_cuda_versions(char *driver, char *runtime, size_t len)
{
	int d = 0, r = 0;
	if (cudaDriverGetVersion(&d) != cudaSuccess)
		d = 0;
	if (cudaRuntimeGetVersion(&r) != cudaSuccess)
		r = 0;
	version_str(d, driver, len);
	version_str(r, runtime, len);
}

void backend_cublaslt_version(char *out, size_t len)
{
	size_t v = cublasLtGetVersion();
	snprintf(out, len, "%zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
}

/* attr reads one device attribute, 0 when the runtime does not answer. */
static int attr(enum cudaDeviceAttr a, int dev)
{
	int v = 0;
	return cudaDeviceGetAttribute(&v, a, dev) == cudaSuccess ? v : 0;
}

static int fill_device(int i, struct device_info *d)
{
	struct cudaDeviceProp p;
	cudaError_t e = cudaGetDeviceProperties(&p, i);
	if (e != cudaSuccess)
		return mb_cuda_check(e, "cudaGetDeviceProperties", __FILE__, __LINE__);
	memset(d, 0, sizeof(*d));
	d->index = i;
	snprintf(d->name, sizeof(d->name), "%s", p.name);
	d->cc_major = p.major;
	d->cc_minor = p.minor;
	d->sms = p.multiProcessorCount;
	d->mem_bytes = p.totalGlobalMem;
	d->mem_bus_bits = p.memoryBusWidth;
	d->l2_bytes = p.l2CacheSize;
	/* NOTE: CUDA 13 dropped the clock fields from cudaDeviceProp; the attributes
	 * remain and report kHz. */
	d->clock_mhz = attr(cudaDevAttrClockRate, i) / 1000;
	d->mem_clock_mhz = attr(cudaDevAttrMemoryClockRate, i) / 1000;
	backend_cuda_versions(d->driver, d->runtime, sizeof(d->driver));
	return MB_OK;
}

int backend_cuda_devices(struct device_info *devs, int max, int *count, char *why,
			 size_t why_len)
{
	int n = 0;
	*count = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n == 0) {
		/* NOTE: a GPU-less machine answers cudaErrorNoDevice (100) or, with no
		 * driver at all, cudaErrorInsufficientDriver (35). Either means "no device". */
		snprintf(why, why_len, "no CUDA device answered (%s: %s)",
			 e == cudaSuccess ? "count" : cudaGetErrorName(e),
			 e == cudaSuccess ? "0 devices" : cudaGetErrorString(e));
		return MB_ERR_NODEV;
	}
	for (int i = 0; i < n && i < max; i++) {
		int err = fill_device(i, &devs[i]);
		if (err) {
			snprintf(why, why_len, "cannot read the properties of device %d", i);
			return MB_ERR_NODEV;
		}
		(*count)++;
	}
	return MB_OK;
}

int backend_cuda_open_stream(struct backend *b, char *why, size_t why_len)
{
	cudaStream_t s = NULL;
	int err = MB_CUDA_CHECK(cudaSetDevice(b->dev.index));
	if (!err)
		err = MB_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	if (err)
		snprintf(why, why_len, "cannot open CUDA device %d", b->dev.index);
	b->stream = s;
	return err ? MB_ERR_NODEV : MB_OK;
}

void backend_close(struct backend *b)
{
	if (b->kind == BACKEND_CUDA) {
		if (b->stream)
			cudaStreamDestroy((cudaStream_t)b->stream);
		if (flush_buf)
			cudaFree(flush_buf);
		flush_buf = NULL;
		flush_bytes = 0;
	}
	b->stream = NULL;
}

int backend_cuda_flush_l2(struct backend *b)
{
	int err = MB_OK;
	if (b->kind != BACKEND_CUDA)
		return MB_OK;
	size_t want = 2 * (size_t)(b->dev.l2_bytes > 0 ? b->dev.l2_bytes : 64 << 20);
	if (flush_bytes < want) {
		if (flush_buf)
			cudaFree(flush_buf);
		flush_buf = NULL;
		flush_bytes = 0;
		err = MB_CUDA_CHECK(cudaMalloc(&flush_buf, want));
		if (err)
			return err;
		flush_bytes = want;
	}
	static unsigned char v;
	return MB_CUDA_CHECK(cudaMemsetAsync(flush_buf, ++v, flush_bytes, (cudaStream_t)b->stream));
}

int backend_sync(struct backend *b)
{
	if (b->kind != BACKEND_CUDA)
		return MB_OK;
	return MB_CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)b->stream));
}
