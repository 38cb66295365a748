/*
 * permute.cu - CUDA kernels of the dispatch/combine permutations (permute.h), bit for bit
 * the CPU reference of permute.c:
 *   gather    one CTA per send slot, 16-byte vector copies of the payload row
 *   arrange   one CTA per expert-major row: the received row, or zeros (scale 1)
 *   identity  one thread per element: BF16(decode(code) * scale), or the BF16 value
 *   reduce    one thread per (output row, column): FP32 fmaf over the row's inputs in
 *             list order, rounded once to BF16 (__float2bfloat16_rn = bf16_from_float)
 * Plus device allocation and copies for harness/parallel/ep.c, which holds no CUDA headers.
 */
#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cublasLt.h>   /* before cuda_check.h, outside extern "C" (C++ overloads) */
#include <stdint.h>

extern "C" {
#include "cuda_check.h"
#include "fp8.h"
#include "permute.h"
#include "status.h"
}

#define PERMUTE_THREADS 256
#define PERMUTE_MAX_BLOCKS 65535L

/* ---- GPU kernels ---- */

/* gather_kernel: CTA s (grid-stride) copies row slot_item[s] of src to row s of dst. */
__global__ void gather_kernel(const uint4 *__restrict__ src, const int32_t *__restrict__ slot_item,
			      long slots, long row_vecs, uint4 *__restrict__ dst)
{
	for (long s = blockIdx.x; s < slots; s += gridDim.x) {
		const uint4 *from = src + (long)slot_item[s] * row_vecs;
		for (long v = threadIdx.x; v < row_vecs; v += blockDim.x)
			dst[s * row_vecs + v] = from[v];
	}
}

/* arrange_kernel: CTA r (grid-stride) writes expert-major row r from its received row
 * (row_copy[r]) or as padding. */
__global__ void arrange_kernel(const uint8_t *__restrict__ rows, size_t row_bytes, int hidden,
			       int scales, bool fp8, const int32_t *__restrict__ row_copy,
			       long rows_padded, void *xe, float *xe_scale)
{
	for (long r = blockIdx.x; r < rows_padded; r += gridDim.x) {
		int32_t c = row_copy[r];
		const uint8_t *src = c >= 0 ? rows + (size_t)c * row_bytes : NULL;
		if (!fp8) {
			uint16_t *d = (uint16_t *)xe + (size_t)r * hidden;
			for (int i = threadIdx.x; i < hidden; i += blockDim.x)
				d[i] = src ? ((const uint16_t *)src)[i] : 0;
			continue;
		}
		uint8_t *q = (uint8_t *)xe + (size_t)r * hidden;
		float *sc = xe_scale + (size_t)r * scales;
		for (int i = threadIdx.x; i < scales; i += blockDim.x)
			sc[i] = src ? ((const float *)src)[i] : 1.0f;
		for (int i = threadIdx.x; i < hidden; i += blockDim.x)
			q[i] = src ? src[4 * (size_t)scales + i] : 0;
	}
}

/* identity_kernel: y = BF16(decode(q) * scale) per element (FP8 input). */
__global__ void identity_kernel(const uint8_t *__restrict__ q, const float *__restrict__ scale,
				int hidden, int scales, size_t n, uint16_t *__restrict__ y)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t r = i / hidden, c = i % hidden;
		__nv_fp8_e4m3 v;
		v.__x = q[i];
		float d = __fmul_rn((float)v, scale[r * scales + c / FP8_TILE]);
		y[i] = __bfloat16_as_ushort(__float2bfloat16_rn(d));
	}
}

/* reduce_kernel: block (x: column tile, y: output row) sums the row's inputs per column. */
__global__ void reduce_kernel(const uint16_t *__restrict__ in, int hidden,
			      const int32_t *__restrict__ idx, const float *__restrict__ w, int k,
			      long n_out, uint16_t *__restrict__ out)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= hidden)
		return;
	for (long i = blockIdx.y; i < n_out; i += gridDim.y) {
		float acc = 0.0f;
		for (int j = 0; j < k && idx[i * k + j] >= 0; j++) {
			float v = __bfloat162float(__ushort_as_bfloat16(in[(size_t)idx[i * k + j] * hidden + c]));
			acc = w ? fmaf(w[i * k + j], v, acc) : __fadd_rn(acc, v);
		}
		out[(size_t)i * hidden + c] = __bfloat16_as_ushort(__float2bfloat16_rn(acc));
	}
}

/* ---- launchers ---- */

/* blocks_for returns a grid size for n independent items, at least 1. */
static unsigned blocks_for(long n)
{
	return (unsigned)(n < 1 ? 1 : n < PERMUTE_MAX_BLOCKS ? n : PERMUTE_MAX_BLOCKS);
}

/* permute_gather_cuda: see permute.h (row_bytes is a multiple of 16). */
extern "C" int permute_gather_cuda(const uint8_t *d_src, const int32_t *d_slot_item, long slots,
				   size_t row_bytes, uint8_t *d_dst, void *stream)
{
	if (slots == 0)
		return MB_OK;
	gather_kernel<<<blocks_for(slots), 128, 0, (cudaStream_t)stream>>>(
		(const uint4 *)d_src, d_slot_item, slots, (long)(row_bytes / 16), (uint4 *)d_dst);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* permute_arrange_cuda: see permute.h. */
extern "C" int permute_arrange_cuda(const uint8_t *d_rows, const struct permute_format *fmt,
				    const int32_t *d_row_copy, long rows_padded, void *d_xe,
				    float *d_xe_scale, void *stream)
{
	if (rows_padded == 0)
		return MB_OK;
	arrange_kernel<<<blocks_for(rows_padded), PERMUTE_THREADS, 0, (cudaStream_t)stream>>>(
		d_rows, fmt->row_bytes, fmt->hidden, fmt->scales, fmt->payload == PERMUTE_FP8,
		d_row_copy, rows_padded, d_xe, d_xe_scale);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* permute_identity_experts_cuda: see permute.h (BF16: a device copy). */
extern "C" int permute_identity_experts_cuda(const struct permute_format *fmt, long rows,
					     const void *d_xe, const float *d_xe_scale,
					     uint16_t *d_y, void *stream)
{
	size_t n = (size_t)rows * (size_t)fmt->hidden;
	if (n == 0)
		return MB_OK;
	if (fmt->payload == PERMUTE_BF16)
		return MB_CUDA_CHECK(cudaMemcpyAsync(d_y, d_xe, 2 * n, cudaMemcpyDeviceToDevice,
						     (cudaStream_t)stream));
	identity_kernel<<<blocks_for((long)((n + PERMUTE_THREADS - 1) / PERMUTE_THREADS)),
			  PERMUTE_THREADS, 0, (cudaStream_t)stream>>>(
		(const uint8_t *)d_xe, d_xe_scale, fmt->hidden, fmt->scales, n, d_y);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* permute_reduce_cuda: see permute.h. */
extern "C" int permute_reduce_cuda(const uint16_t *d_in, int hidden, const int32_t *d_idx,
				   const float *d_w, int k, long n_out, uint16_t *d_out, void *stream)
{
	if (n_out == 0)
		return MB_OK;
	dim3 grid((unsigned)((hidden + PERMUTE_THREADS - 1) / PERMUTE_THREADS), blocks_for(n_out));
	reduce_kernel<<<grid, PERMUTE_THREADS, 0, (cudaStream_t)stream>>>(d_in, hidden, d_idx, d_w,
									   k, n_out, d_out);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* ---- device memory for C callers ---- */

/* permute_cuda_alloc: cudaMalloc. */
extern "C" int permute_cuda_alloc(void **d_p, size_t bytes)
{
	*d_p = NULL;
	return MB_CUDA_CHECK(cudaMalloc(d_p, bytes));
}

/* permute_cuda_free: cudaFree (NULL is fine). */
extern "C" void permute_cuda_free(void *d_p)
{
	if (d_p)
		cudaFree(d_p);
}

/* permute_cuda_copy: cudaMemcpyAsync of the given kind on stream. */
extern "C" int permute_cuda_copy(void *dst, const void *src, size_t bytes, int kind, void *stream)
{
	static const cudaMemcpyKind kinds[] = { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
						cudaMemcpyDeviceToDevice };
	if (kind < 0 || kind > 2)
		return MB_ERR_ARG;
	if (bytes == 0)
		return MB_OK;
	return MB_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kinds[kind], (cudaStream_t)stream));
}

/* permute_cuda_sync: waits for stream. */
extern "C" int permute_cuda_sync(void *stream)
{
	return MB_CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)stream));
}
