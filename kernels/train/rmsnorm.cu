/*
 * rmsnorm.cu - CUDA kernels of RMSNorm (rmsnorm.h):
 *   fwd       one block per row: sum of squares (block tree), then y = x * rstd * gain
 *   bwd       G blocks, block b takes rows b, b + G, ...: per row the dot product of
 *             gain * dy with n (block tree), dx, and dy * n added into the block's own
 *             partial row of dgain (each thread owns its columns: no atomics)
 *   bwd_gain  one thread per column adds the G partial rows in block order into dgain
 */
#include "train_cuda.cuh"

extern "C" {
#include "rmsnorm.h"
}

#define RMS_THREADS 256

/* ---- GPU kernels ---- */

/* rms_fwd_kernel: block r (grid-stride) normalises row r. */
__global__ void rms_fwd_kernel(const float *__restrict__ x, const float *__restrict__ gain,
			       long rows, int dim, float eps, float *__restrict__ y,
			       float *__restrict__ rstd)
{
	__shared__ float scratch[32];
	for (long r = blockIdx.x; r < rows; r += gridDim.x) {
		const float *xr = x + r * dim;
		float ss = 0.0f;
		for (int c = threadIdx.x; c < dim; c += blockDim.x)
			ss += xr[c] * xr[c];
		ss = tr_block_sum(ss, scratch);
		const float s = 1.0f / sqrtf(ss / (float)dim + eps);
		if (threadIdx.x == 0)
			rstd[r] = s;
		for (int c = threadIdx.x; c < dim; c += blockDim.x)
			y[r * dim + c] = xr[c] * s * gain[c];
	}
}

/* rms_bwd_kernel: block b writes dx of its rows and its partial gain gradient
 * part[b, :] (first level of the two-level reduction). */
__global__ void rms_bwd_kernel(const float *__restrict__ dy, const float *__restrict__ x,
			       const float *__restrict__ gain, const float *__restrict__ rstd,
			       long rows, int dim, float *__restrict__ dx, float *__restrict__ part)
{
	__shared__ float scratch[32];
	float *pb = part + (long)blockIdx.x * dim;
	for (int c = threadIdx.x; c < dim; c += blockDim.x)
		pb[c] = 0.0f;
	for (long r = blockIdx.x; r < rows; r += gridDim.x) {
		const float *xr = x + r * dim, *dyr = dy + r * dim;
		const float s = rstd[r];
		float dot = 0.0f;
		for (int c = threadIdx.x; c < dim; c += blockDim.x) {
			const float n = xr[c] * s;
			dot += dyr[c] * gain[c] * n;
			pb[c] += dyr[c] * n;   /* this thread's column: no race */
		}
		dot = tr_block_sum(dot, scratch) / (float)dim;
		for (int c = threadIdx.x; c < dim; c += blockDim.x)
			dx[r * dim + c] = s * (dyr[c] * gain[c] - xr[c] * s * dot);
	}
}

/* rms_bwd_gain_kernel: dgain[c] += sum over the G partial rows, in row order. */
__global__ void rms_bwd_gain_kernel(const float *__restrict__ part, int groups, int dim,
				    float *__restrict__ dgain)
{
	for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < dim; c += gridDim.x * blockDim.x) {
		float acc = 0.0f;
		for (int b = 0; b < groups; b++)
			acc += part[(long)b * dim + c];
		dgain[c] += acc;
	}
}

/* ---- launchers ---- */

/* rmsnorm_fwd_cuda: see rmsnorm.h. */
extern "C" int rmsnorm_fwd_cuda(const float *d_x, const float *d_gain, long rows, int dim,
				float eps, float *d_y, float *d_rstd, void *stream)
{
	if (rows < 0 || dim <= 0 || !(eps >= 0.0f))
		return MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	TR_LAUNCH(rms_fwd_kernel, tr_blocks(rows), RMS_THREADS, stream, d_x, d_gain, rows, dim, eps,
		  d_y, d_rstd);
	return TR_LAUNCHED();
}

/* rmsnorm_bwd_cuda: see rmsnorm.h. */
extern "C" int rmsnorm_bwd_cuda(const float *d_dy, const float *d_x, const float *d_gain,
				const float *d_rstd, long rows, int dim, float *d_dx,
				float *d_dgain, void *d_work, size_t work_bytes, void *stream)
{
	if (rows < 0 || dim <= 0 || work_bytes < rmsnorm_bwd_workspace(rows, dim))
		return MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	const int groups = (int)(rows < RMSNORM_GROUPS ? rows : RMSNORM_GROUPS);
	float *part = (float *)d_work;
	TR_LAUNCH(rms_bwd_kernel, groups, RMS_THREADS, stream, d_dy, d_x, d_gain, d_rstd, rows, dim,
		  d_dx, part);
	TR_LAUNCH(rms_bwd_gain_kernel, tr_blocks(tr_cdiv(dim, RMS_THREADS)), RMS_THREADS, stream,
		  part, groups, dim, d_dgain);
	return TR_LAUNCHED();
}
