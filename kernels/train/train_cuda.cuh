/*
 * train_cuda.cuh - what the CUDA files of kernels/train share: BF16 loads and stores,
 * warp and block reductions (sum, max), the launch macro and the launch check.
 *
 * Under TRAIN_EMULATE (tests/train_emu.cpp) the .cu files are compiled as host C++: the
 * test defines threadIdx, blockIdx, __syncthreads, __shfl_xor_sync, atomicAdd and
 * emu_run first; TR_LAUNCH then runs the kernel on the host (one POSIX thread per CUDA
 * thread, blocks one after the other) instead of launching it, and the launchers
 * themselves (grid sizes, workspace carving, kernel order) run unchanged.
 *
 * Reductions assume blockDim.x is a multiple of 32 and at most 1024; their order is a
 * fixed tree, so a kernel's result does not depend on timing (deterministic).
 */
#ifndef MB_TRAIN_CUDA_CUH
#define MB_TRAIN_CUDA_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef TRAIN_EMULATE
extern "C" {
#include "bf16.h"
#include "status.h"
}
#define TR_LAUNCH(kernel, grid, block, stream, ...) \
	do { \
		(void)(stream); \
		emu_run([&] { kernel(__VA_ARGS__); }, dim3(grid), dim3(block)); \
	} while (0)
#define TR_LAUNCHED() MB_OK
#else
#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <cublasLt.h>   /* before cuda_check.h, outside extern "C" (C++ overloads) */
extern "C" {
#include "cuda_check.h"
#include "status.h"
}
#define TR_LAUNCH(kernel, grid, block, stream, ...) \
	kernel<<<(grid), (block), 0, (cudaStream_t)(stream)>>>(__VA_ARGS__)
#define TR_LAUNCHED() MB_CUDA_CHECK(cudaGetLastError())
#endif

#define TR_MAX_BLOCKS 65535L

/* tr_blocks returns a grid size for n independent items (grid-stride beyond), >= 1. */
static inline unsigned tr_blocks(long n)
{
	return (unsigned)(n < 1 ? 1 : n < TR_MAX_BLOCKS ? n : TR_MAX_BLOCKS);
}

/* tr_cdiv is ceil(a / b) for positive b. */
static inline long tr_cdiv(long a, long b)
{
	return (a + b - 1) / b;
}

/* tr_memset_async zeroes bytes at d_p on stream. */
static inline int tr_memset_async(void *d_p, size_t bytes, void *stream)
{
#ifdef TRAIN_EMULATE
	(void)stream;
	memset(d_p, 0, bytes);
	return MB_OK;
#else
	return MB_CUDA_CHECK(cudaMemsetAsync(d_p, 0, bytes, (cudaStream_t)stream));
#endif
}

/* tr_bf16_load widens BF16 bits to a float (exact). */
__device__ __forceinline__ float tr_bf16_load(uint16_t h)
{
#ifdef TRAIN_EMULATE
	return bf16_to_float(h);
#else
	return __bfloat162float(__ushort_as_bfloat16(h));
#endif
}

/* tr_bf16_store rounds a float to BF16 bits, nearest even (bf16_from_float on the host). */
__device__ __forceinline__ uint16_t tr_bf16_store(float x)
{
#ifdef TRAIN_EMULATE
	return bf16_from_float(x);
#else
	return __bfloat16_as_ushort(__float2bfloat16_rn(x));
#endif
}

/* tr_warp_sum returns the sum over the warp's 32 lanes to every lane (butterfly). */
__device__ __forceinline__ float tr_warp_sum(float v)
{
	for (int off = 16; off > 0; off >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, off);
	return v;
}

/* tr_warp_max returns the maximum over the warp's 32 lanes to every lane. */
__device__ __forceinline__ float tr_warp_max(float v)
{
	for (int off = 16; off > 0; off >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
	return v;
}

/* tr_block_sum returns the sum over the block to every thread: warps first, then the
 * warps' sums (scratch: 32 floats of shared memory). Every thread must call it. */
__device__ __forceinline__ float tr_block_sum(float v, float *scratch)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	v = tr_warp_sum(v);
	__syncthreads();   /* NOTE: scratch may still be read by a previous reduction */
	if (lane == 0)
		scratch[warp] = v;
	__syncthreads();
	return tr_warp_sum(lane < warps ? scratch[lane] : 0.0f);
}

/* tr_block_max: tr_block_sum's maximum. */
__device__ __forceinline__ float tr_block_max(float v, float *scratch)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	v = tr_warp_max(v);
	__syncthreads();
	if (lane == 0)
		scratch[warp] = v;
	__syncthreads();
	return tr_warp_max(lane < warps ? scratch[lane] : -INFINITY);
}

#endif
