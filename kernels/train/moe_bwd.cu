/*
 * moe_bwd.cu - CUDA kernels of the MoE backward pieces and the balancing step
 * (moe_bwd.h):
 *   router_bwd   one warp per token: lanes j < K hold s_j; Z and sum dw s are warp sums;
 *                each lane then writes its strided share of the token's E gradients
 *   combine_bwd  one block per token: per row of the token, dy = w * dout (BF16) and the
 *                dot product (block tree, FP32) into dw
 *   pad_zero     one block per expert-major row: zeros where the row is padding
 *   load         integer atomics per (token, j)
 *   bias_update  one block: the total load (integer), then each expert's sign step
 */
#include "train_cuda.cuh"

extern "C" {
#include "moe_bwd.h"
}

#define MOE_BWD_THREADS 256
#define ROUTER_WARPS 4

/* ---- GPU kernels ---- */

/* moe_sigmoid is 1 / (1 + e^-x) in FP32. */
__device__ __forceinline__ float moe_sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* router_bwd_kernel: warp (block, warp) takes tokens t, t + warps in the grid, .... */
__global__ void router_bwd_kernel(const float *__restrict__ logits, const int32_t *__restrict__ idx,
				  const float *__restrict__ dw, long tokens, int experts, int topk,
				  float route_scale, float *__restrict__ dl)
{
	const int lane = threadIdx.x % 32;
	const long warps = (long)gridDim.x * (blockDim.x / 32);
	for (long t = (long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; t < tokens; t += warps) {
		const float *lt = logits + t * experts;
		const int32_t *it = idx + t * topk;
		const float *wt = dw + t * topk;
		const float s = lane < topk ? moe_sigmoid(lt[it[lane]]) : 0.0f;
		const float z = tr_warp_sum(s);
		const float dot = tr_warp_sum(lane < topk ? wt[lane] * s : 0.0f);
		for (int e = lane; e < experts; e += 32) {
			float g = 0.0f;
			for (int j = 0; j < topk; j++)
				if (it[j] == e) {
					const float sj = moe_sigmoid(lt[e]);
					g = route_scale / z * (wt[j] - dot / z) * sj * (1.0f - sj);
				}
			dl[t * experts + e] = g;
		}
	}
}

/* combine_bwd_kernel: block t writes the dy rows of token t and its dw. */
__global__ void combine_bwd_kernel(const uint16_t *__restrict__ y, const float *__restrict__ dout,
				   const int32_t *__restrict__ rows, const float *__restrict__ w,
				   long tokens, int topk, int hidden, uint16_t *__restrict__ dy,
				   float *__restrict__ dw)
{
	__shared__ float scratch[32];
	for (long t = blockIdx.x; t < tokens; t += gridDim.x) {
		const float *g = dout + t * hidden;
		for (int j = 0; j < topk; j++) {
			const int32_t r = rows[t * topk + j];
			float dot = 0.0f;
			for (int c = threadIdx.x; r >= 0 && c < hidden; c += blockDim.x) {
				dot += tr_bf16_load(y[(long)r * hidden + c]) * g[c];
				dy[(long)r * hidden + c] = tr_bf16_store(w[t * topk + j] * g[c]);
			}
			dot = tr_block_sum(dot, scratch);
			if (threadIdx.x == 0)
				dw[t * topk + j] = dot;
		}
	}
}

/* pad_zero_kernel: block r zeroes row r of dy when it is padding. */
__global__ void pad_zero_kernel(const int32_t *__restrict__ row_token, long rows_padded,
				int hidden, uint16_t *__restrict__ dy)
{
	for (long r = blockIdx.x; r < rows_padded; r += gridDim.x)
		if (row_token[r] < 0)
			for (int c = threadIdx.x; c < hidden; c += blockDim.x)
				dy[r * hidden + c] = 0;
}

/* load_kernel: load[e] += 1 per selected (token, expert). */
__global__ void load_kernel(const int32_t *__restrict__ idx, long n, int experts, int32_t *load)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x)
		if (idx[i] >= 0 && idx[i] < experts)
			atomicAdd(&load[idx[i]], 1);
}

/* bias_update_kernel (one block): the sign step of route_bias_update, same comparisons
 * in integers, same float subtraction or addition. */
__global__ void bias_update_kernel(float *__restrict__ bias, const int32_t *__restrict__ load,
				   int experts, float gamma)
{
	__shared__ long long total;
	if (threadIdx.x == 0) {
		long long sum = 0;
		for (int e = 0; e < experts; e++)
			sum += load[e];
		total = sum;
	}
	__syncthreads();
	for (int e = threadIdx.x; e < experts; e += blockDim.x) {
		const long long scaled = (long long)load[e] * experts;
		if (scaled > total)
			bias[e] -= gamma;
		else if (scaled < total)
			bias[e] += gamma;
	}
}

/* ---- launchers ---- */

/* moe_router_bwd_cuda: see moe_bwd.h. */
extern "C" int moe_router_bwd_cuda(const float *d_logits, const int32_t *d_topk_idx,
				   const float *d_dw, long tokens, int experts, int topk,
				   float route_scale, float *d_dlogits, void *stream)
{
	if (tokens < 0 || experts <= 0 || topk <= 0 || topk > MOE_BWD_MAX_TOPK || topk > experts)
		return MB_ERR_ARG;
	if (tokens == 0)
		return MB_OK;
	TR_LAUNCH(router_bwd_kernel, tr_blocks(tr_cdiv(tokens, ROUTER_WARPS)), 32 * ROUTER_WARPS,
		  stream, d_logits, d_topk_idx, d_dw, tokens, experts, topk, route_scale, d_dlogits);
	return TR_LAUNCHED();
}

/* moe_combine_bwd_cuda: see moe_bwd.h. */
extern "C" int moe_combine_bwd_cuda(const uint16_t *d_y, const float *d_dout,
				    const int32_t *d_rows, const float *d_w, long tokens, int topk,
				    int hidden, const int32_t *d_row_token, long rows_padded,
				    uint16_t *d_dy, float *d_dw, void *stream)
{
	if (tokens < 0 || topk <= 0 || hidden <= 0 || rows_padded < 0)
		return MB_ERR_ARG;
	if (rows_padded > 0)
		TR_LAUNCH(pad_zero_kernel, tr_blocks(rows_padded), MOE_BWD_THREADS, stream, d_row_token,
			  rows_padded, hidden, d_dy);
	if (tokens > 0)
		TR_LAUNCH(combine_bwd_kernel, tr_blocks(tokens), MOE_BWD_THREADS, stream, d_y, d_dout,
			  d_rows, d_w, tokens, topk, hidden, d_dy, d_dw);
	return TR_LAUNCHED();
}

/* moe_expert_load_cuda: see moe_bwd.h. */
extern "C" int moe_expert_load_cuda(const int32_t *d_topk_idx, long tokens, int topk,
				    int experts, int32_t *d_load, void *stream)
{
	if (tokens < 0 || topk <= 0 || experts <= 0)
		return MB_ERR_ARG;
	int err = tr_memset_async(d_load, (size_t)experts * sizeof(int32_t), stream);
	if (err || tokens == 0)
		return err;
	const long n = tokens * topk;
	TR_LAUNCH(load_kernel, tr_blocks(tr_cdiv(n, MOE_BWD_THREADS)), MOE_BWD_THREADS, stream,
		  d_topk_idx, n, experts, d_load);
	return TR_LAUNCHED();
}

/* moe_bias_update_cuda: see moe_bwd.h. */
extern "C" int moe_bias_update_cuda(float *d_bias, const int32_t *d_load, int experts,
				    float gamma, void *stream)
{
	if (experts <= 0)
		return MB_ERR_ARG;
	TR_LAUNCH(bias_update_kernel, 1, MOE_BWD_THREADS, stream, d_bias, d_load, experts, gamma);
	return TR_LAUNCHED();
}
