/*
 * swiglu.cu - CUDA kernels of SwiGLU (swiglu.h): one thread per element (grid-stride),
 * the forward and the backward each one pass over their operands.
 */
#include "train_cuda.cuh"

extern "C" {
#include "swiglu.h"
}

#define SWIGLU_THREADS 256

/* ---- GPU kernels ---- */

/* swiglu_sigmoid is 1 / (1 + e^-a) in FP32 (saturates cleanly at both ends). */
__device__ __forceinline__ float swiglu_sigmoid(float a)
{
	return 1.0f / (1.0f + expf(-a));
}

/* swiglu_fwd_kernel: h[i] = silu(gate) * up for element i = r * F + c. */
__global__ void swiglu_fwd_kernel(const float *__restrict__ gate, const float *__restrict__ up,
				  long n, int cols, long ld, float *__restrict__ h)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long j = (i / cols) * ld + i % cols;
		const float a = gate[j];
		h[i] = a * swiglu_sigmoid(a) * up[j];
	}
}

/* swiglu_bwd_kernel: dgate and dup of element i from dh[i]. */
__global__ void swiglu_bwd_kernel(const float *__restrict__ dh, const float *__restrict__ gate,
				  const float *__restrict__ up, long n, int cols, long ld,
				  float *__restrict__ dgate, float *__restrict__ dup)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long j = (i / cols) * ld + i % cols;
		const float a = gate[j], s = swiglu_sigmoid(a), g = dh[i];
		dgate[j] = g * up[j] * s * (1.0f + a * (1.0f - s));
		dup[j] = g * a * s;
	}
}

/* ---- launchers ---- */

/* swiglu_fwd_cuda: see swiglu.h. */
extern "C" int swiglu_fwd_cuda(const float *d_gate, const float *d_up, long rows, int cols,
			       long ld, float *d_h, void *stream)
{
	if (rows < 0 || cols <= 0 || ld < cols)
		return MB_ERR_ARG;
	const long n = rows * cols;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(swiglu_fwd_kernel, tr_blocks(tr_cdiv(n, SWIGLU_THREADS)), SWIGLU_THREADS, stream,
		  d_gate, d_up, n, cols, ld, d_h);
	return TR_LAUNCHED();
}

/* swiglu_bwd_cuda: see swiglu.h. */
extern "C" int swiglu_bwd_cuda(const float *d_dh, const float *d_gate, const float *d_up,
			       long rows, int cols, long ld, float *d_dgate, float *d_dup,
			       void *stream)
{
	if (rows < 0 || cols <= 0 || ld < cols)
		return MB_ERR_ARG;
	const long n = rows * cols;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(swiglu_bwd_kernel, tr_blocks(tr_cdiv(n, SWIGLU_THREADS)), SWIGLU_THREADS, stream,
		  d_dh, d_gate, d_up, n, cols, ld, d_dgate, d_dup);
	return TR_LAUNCHED();
}
