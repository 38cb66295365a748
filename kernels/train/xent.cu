/*
 * xent.cu - CUDA kernel of the fused cross-entropy (xent.h): one block per row
 * (grid-stride), two walks over the row's logits in chunks of XENT_THREADS:
 *   1. per thread a running (max m, sum s of exp(x - m)), rescaled when m grows; the
 *      block combines them (max, then the sum of s * exp(m - max)) into lse
 *   2. the gradient dscale * (exp(x - lse) - [v == target]) over the same logits
 * The gradient may overwrite the logits: each element is read then written by one
 * thread, and the target's logit is read before the first barrier.
 */
#include "train_cuda.cuh"

extern "C" {
#include "xent.h"
}

#define XENT_THREADS 512

/* ---- GPU kernels ---- */

/* xent_load reads logit i of a row stored as FP32 or BF16. */
template <bool BF16> __device__ __forceinline__ float xent_load(const void *row, long i)
{
	return BF16 ? tr_bf16_load(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

/* xent_store writes gradient element i in the row's type. */
template <bool BF16> __device__ __forceinline__ void xent_store(void *row, long i, float g)
{
	if (BF16)
		((uint16_t *)row)[i] = tr_bf16_store(g);
	else
		((float *)row)[i] = g;
}

/* xent_lse returns log sum exp of the row (all threads of the block get it). */
template <bool BF16> __device__ float xent_lse(const void *row, int vocab, float *scratch)
{
	float m = -INFINITY, s = 0.0f;
	for (int v = threadIdx.x; v < vocab; v += blockDim.x) {
		const float x = xent_load<BF16>(row, v);
		if (x > m) {
			s = s * expf(m - x) + 1.0f;   /* exp(-inf) = 0 on the first logit */
			m = x;
		} else {
			s += expf(x - m);
		}
	}
	const float big = tr_block_max(m, scratch);
	const float sum = tr_block_sum(m == -INFINITY ? 0.0f : s * expf(m - big), scratch);
	return big + logf(sum);
}

/* xent_kernel: block r computes row r's loss and, when dlogits is set, its gradient.
 * NOTE: no __restrict__ on logits and dlogits: they may be the same buffer. */
template <bool BF16>
__global__ void xent_kernel(const void *logits, const int32_t *__restrict__ targets, long rows,
			    int vocab, float dscale, float *__restrict__ losses, void *dlogits)
{
	__shared__ float scratch[32];
	const size_t esize = BF16 ? 2 : 4;
	for (long r = blockIdx.x; r < rows; r += gridDim.x) {
		const void *row = (const char *)logits + (size_t)r * vocab * esize;
		const int32_t target = targets[r] < vocab ? targets[r] : -1;
		const float xt = target >= 0 && threadIdx.x == 0 ? xent_load<BF16>(row, target) : 0.0f;
		const float lse = xent_lse<BF16>(row, vocab, scratch);
		if (threadIdx.x == 0)
			losses[r] = target >= 0 ? lse - xt : 0.0f;
		if (!dlogits)
			continue;
		void *drow = (char *)dlogits + (size_t)r * vocab * esize;
		for (int v = threadIdx.x; v < vocab; v += blockDim.x) {
			const float p = expf(xent_load<BF16>(row, v) - lse);
			xent_store<BF16>(drow, v, target < 0 ? 0.0f : dscale * (p - (v == target ? 1.0f : 0.0f)));
		}
	}
}

/* ---- launchers ---- */

/* xent_cuda: see xent.h. */
extern "C" int xent_cuda(const void *d_logits, enum xent_dtype dtype, const int32_t *d_targets,
			 long rows, int vocab, float dscale, float *d_losses, void *d_dlogits,
			 void *stream)
{
	if (rows < 0 || vocab <= 0 || (dtype != XENT_FP32 && dtype != XENT_BF16))
		return MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	if (dtype == XENT_BF16)
		TR_LAUNCH(xent_kernel<true>, tr_blocks(rows), XENT_THREADS, stream, d_logits, d_targets,
			  rows, vocab, dscale, d_losses, d_dlogits);
	else
		TR_LAUNCH(xent_kernel<false>, tr_blocks(rows), XENT_THREADS, stream, d_logits,
			  d_targets, rows, vocab, dscale, d_losses, d_dlogits);
	return TR_LAUNCHED();
}
