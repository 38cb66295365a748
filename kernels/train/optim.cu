/*
 * optim.cu - CUDA kernels of the optimizer step (optim.h):
 *   adamw       one thread per element (grid-stride over the whole buffer); the segment
 *               of an element by binary search in the segment table; FP32 arithmetic
 *   norm_part   at most GRAD_NORM_BLOCKS blocks: squares summed per thread in FP64 over
 *               a grid-stride slice, then over the block (FP32 tree) into part[b]
 *   norm_final  one block adds the partials (fixed tree), writes the norm and the
 *               clipping scale: two passes, no float atomics, deterministic
 */
#include "train_cuda.cuh"

extern "C" {
#include "optim.h"
}

#define ADAMW_THREADS 256
#define NORM_THREADS 256
#define NORM_FINAL_THREADS 512   /* >= GRAD_NORM_BLOCKS: one partial per thread */

/* ---- GPU kernels ---- */

/* adamw_segment_of returns the segment holding element i, or -1. */
__device__ __forceinline__ int adamw_segment_of(const struct adamw_segment *segs, int nsegs,
						long i)
{
	int lo = 0, hi = nsegs - 1;
	while (lo <= hi) {
		const int mid = (lo + hi) / 2;
		if (i < segs[mid].offset)
			hi = mid - 1;
		else if (i >= segs[mid].offset + segs[mid].count)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/* adamw_kernel: the AdamW update of every element that lies in a segment. c1, c2 are
 * the bias corrections 1 - b^t. */
__global__ void adamw_kernel(const struct adamw_segment *__restrict__ segs, int nsegs, long n,
			     float lr, float b1, float b2, float eps, float c1, float c2,
			     float *__restrict__ param, const float *__restrict__ grad,
			     float *__restrict__ m, float *__restrict__ v,
			     const float *__restrict__ grad_scale, uint16_t *__restrict__ param_bf16)
{
	const float scale = grad_scale ? *grad_scale : 1.0f;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const int s = adamw_segment_of(segs, nsegs, i);
		if (s < 0)
			continue;
		const float g = grad[i] * scale;
		const float mi = b1 * m[i] + (1.0f - b1) * g, vi = b2 * v[i] + (1.0f - b2) * g * g;
		const float p = param[i] * (1.0f - lr * segs[s].weight_decay) -
				lr * (mi / c1) / (sqrtf(vi / c2) + eps);
		m[i] = mi;
		v[i] = vi;
		param[i] = p;
		if (param_bf16)
			param_bf16[i] = tr_bf16_store(p);
	}
}

/* norm_part_kernel: part[b] = sum of g^2 over block b's grid-stride slice. */
__global__ void norm_part_kernel(const float *__restrict__ g, long n, float *__restrict__ part)
{
	__shared__ float scratch[32];
	double ss = 0.0;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x)
		ss += (double)g[i] * g[i];
	const float total = tr_block_sum((float)ss, scratch);
	if (threadIdx.x == 0)
		part[blockIdx.x] = total;
}

/* norm_final_kernel (one block): norm = sqrt(sum of the parts), scale = the clip. */
__global__ void norm_final_kernel(const float *__restrict__ part, int parts, float max_norm,
				  float *__restrict__ norm, float *__restrict__ scale)
{
	__shared__ float scratch[32];
	const float total = tr_block_sum((int)threadIdx.x < parts ? part[threadIdx.x] : 0.0f, scratch);
	if (threadIdx.x == 0) {
		const float nr = sqrtf(total);
		*norm = nr;
		*scale = max_norm <= 0.0f ? 1.0f : fminf(1.0f, max_norm / (nr + 1e-6f));
	}
}

/* ---- launchers ---- */

/* adamw_cuda: see optim.h (the segments are checked on the device's side by the
 * binary search only: check them with adamw_segments_check when uploading). */
extern "C" int adamw_cuda(const struct adamw_config *c, const struct adamw_segment *d_segs,
			  int nsegs, long n, float *d_param, const float *d_grad, float *d_m,
			  float *d_v, const float *d_grad_scale, uint16_t *d_param_bf16,
			  void *stream)
{
	if (c->step < 1 || !(c->beta1 >= 0.0f && c->beta1 < 1.0f) ||
	    !(c->beta2 >= 0.0f && c->beta2 < 1.0f) || !(c->eps > 0.0f) || nsegs < 0 || n < 0)
		return MB_ERR_ARG;
	if (n == 0 || nsegs == 0)
		return MB_OK;
	const float c1 = (float)(1.0 - pow((double)c->beta1, (double)c->step));
	const float c2 = (float)(1.0 - pow((double)c->beta2, (double)c->step));
	TR_LAUNCH(adamw_kernel, tr_blocks(tr_cdiv(n, ADAMW_THREADS)), ADAMW_THREADS, stream, d_segs,
		  nsegs, n, c->lr, c->beta1, c->beta2, c->eps, c1, c2, d_param, d_grad, d_m, d_v,
		  d_grad_scale, d_param_bf16);
	return TR_LAUNCHED();
}

/* grad_norm_cuda: see optim.h. */
extern "C" int grad_norm_cuda(const float *d_g, long n, float max_norm, float *d_norm,
			      float *d_scale, void *d_work, size_t work_bytes, void *stream)
{
	if (n < 0 || work_bytes < grad_norm_workspace(n))
		return MB_ERR_ARG;
	long blocks = tr_cdiv(n, NORM_THREADS);
	blocks = blocks < 1 ? 1 : blocks > GRAD_NORM_BLOCKS ? GRAD_NORM_BLOCKS : blocks;
	float *part = (float *)d_work;
	TR_LAUNCH(norm_part_kernel, (unsigned)blocks, NORM_THREADS, stream, d_g, n, part);
	TR_LAUNCH(norm_final_kernel, 1, NORM_FINAL_THREADS, stream, part, (int)blocks, max_norm,
		  d_norm, d_scale);
	return TR_LAUNCHED();
}
