/*
 * quantize_cuda.cu - fp8_quantize_cuda (gemm_cuda.h): FP8 quantization of a device FP32
 * matrix X[rows, cols] on the GPU, bit-equal to fp8_quantize (fp8.c) on the host.
 *
 * Three launches on the caller's stream, the same arithmetic as the CPU in the same
 * order, so codes and scales match bit for bit:
 *   1. amax: one CTA of 128 threads per 128-column strip of a tile (1 row for 1x128,
 *      up to 128 rows for 128x128 and per-tensor); a block max, then atomicMax on the
 *      FP32 bits into the tile's slot of d_scale (non-negative floats order as their
 *      bits do; the slots start at +0). NaN is skipped, as fp8.c skips it.
 *   2. scale: per tile, the scale from its amax, as fp8.c computes it.
 *   3. codes: per element, __nv_cvt_float_to_fp8(x / scale, __NV_SATFINITE, format),
 *      the conversion fp8_encode is required to equal (tests/fp8_cuda_parity.cu); an
 *      IEEE division, not x * (1 / s), as fp8.c does.
 * Inputs must be finite: fp8_quantize refuses others with MB_ERR_ARG; here a NaN or
 * infinity is not detected and gives unspecified codes and scales.
 */
#include <cuda_runtime_api.h>
#include <cuda_fp8.h>
#include <cublasLt.h>   /* before cuda_check.h, outside extern "C" (C++ overloads) */
#include <float.h>
#include <stdint.h>
#include <stdio.h>

extern "C" {
#include "cuda_check.h"
#include "gemm_cuda.h"
#include "status.h"
}

#define QUANT_THREADS FP8_TILE

/* The tiling of one quantization: tile (tr, tc) covers rows [tr*tile_rows, ...) and
 * columns [tc*tile_cols, ...); scale_cols tiles per row of tiles. */
struct quant_grid {
	int rows, cols;
	int tile_rows, tile_cols;   /* per tensor: rows x cols, one tile */
	int scale_cols;
	int strip_rows;             /* rows one amax CTA covers */
};

/* quant_tile returns the scale slot of element (r, c). */
__device__ __forceinline__ long quant_tile(const struct quant_grid &q, int r, int c)
{
	return (long)(r / q.tile_rows) * q.scale_cols + c / q.tile_cols;
}

/* quant_amax_kernel: CTA b covers columns [128*(b % strips_c), +128) of rows
 * [strip_rows*(b / strips_c), +strip_rows), all inside one tile. */
__global__ void quant_amax_kernel(const float *__restrict__ x, struct quant_grid q,
				  float *amax)
{
	__shared__ float warp_max[QUANT_THREADS / 32];
	int strips_c = (q.cols + QUANT_THREADS - 1) / QUANT_THREADS;
	int c = (int)(blockIdx.x % strips_c) * QUANT_THREADS + (int)threadIdx.x;
	int r0 = (int)(blockIdx.x / strips_c) * q.strip_rows;
	int r1 = min(r0 + q.strip_rows, q.rows);
	float m = 0.0f;

	if (c < q.cols)
		for (int r = r0; r < r1; r++) {
			float v = fabsf(x[(size_t)r * q.cols + c]);
			m = v > m ? v : m;   /* NOTE: a NaN compares false and is skipped */
		}
	for (int off = 16; off > 0; off /= 2) {
		float o = __shfl_down_sync(0xffffffffu, m, off);
		m = o > m ? o : m;
	}
	if (threadIdx.x % 32 == 0)
		warp_max[threadIdx.x / 32] = m;
	__syncthreads();
	if (threadIdx.x == 0) {
		for (int w = 1; w < QUANT_THREADS / 32; w++)
			m = warp_max[w] > m ? warp_max[w] : m;
		long t = quant_tile(q, r0, (int)(blockIdx.x % strips_c) * QUANT_THREADS);
		atomicMax((unsigned int *)&amax[t], __float_as_uint(m));
	}
}

/* quant_scale_of returns the scale of a tile from its amax, as fp8.c's scale_for does:
 * amax / max_finite (1 for an all-zero tile), at least FLT_MIN, optionally rounded up
 * to a power of two. */
__device__ __forceinline__ float quant_scale_of(float amax, float max_finite, bool pow2)
{
	float s;
	int e;

	if (amax == 0.0f)
		return 1.0f;
	s = __fdiv_rn(amax, max_finite);
	if (s < FLT_MIN)
		s = FLT_MIN;
	if (!pow2)
		return s;
	/* NOTE: frexpf and ldexpf are exact, so host and device agree bit for bit. */
	float mant = frexpf(s, &e);   /* s = mant * 2^e, mant in [0.5, 1) */
	return mant == 0.5f ? s : ldexpf(1.0f, e);
}

/* quant_scale_kernel turns each tile's amax into its scale, in place. */
__global__ void quant_scale_kernel(float *scale, long tiles, float max_finite, bool pow2)
{
	long t = (long)blockIdx.x * blockDim.x + threadIdx.x;

	if (t < tiles)
		scale[t] = quant_scale_of(scale[t], max_finite, pow2);
}

/* quant_code_kernel encodes every element with its tile's scale. */
__global__ void quant_code_kernel(const float *__restrict__ x, struct quant_grid q,
				  const float *__restrict__ scale, __nv_fp8_interpretation_t f,
				  unsigned char *out)
{
	size_t n = (size_t)q.rows * q.cols;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		int r = (int)(i / q.cols), c = (int)(i % q.cols);
		float v = __fdiv_rn(x[i], scale[quant_tile(q, r, c)]);
		out[i] = (unsigned char)__nv_cvt_float_to_fp8(v, __NV_SATFINITE, f);
	}
}

/* quant_grid_of describes the tiles of one scaling. */
static struct quant_grid quant_grid_of(int rows, int cols, enum fp8_scaling s)
{
	struct quant_grid q = { rows, cols, rows, cols, 1, FP8_TILE };

	if (s == FP8_PER_1X128)
		q = (struct quant_grid){ rows, cols, 1, FP8_TILE, (cols + FP8_TILE - 1) / FP8_TILE, 1 };
	else if (s == FP8_PER_128X128)
		q = (struct quant_grid){ rows, cols, FP8_TILE, FP8_TILE,
					 (cols + FP8_TILE - 1) / FP8_TILE, FP8_TILE };
	return q;
}

/* fp8_quantize_cuda: see gemm_cuda.h. Returns MB_OK, MB_ERR_ARG (empty shape, NULL
 * buffer, unknown format or scaling) or MB_ERR_CUDA. */
extern "C" int fp8_quantize_cuda(const float *d_x, int rows, int cols, enum fp8_format f,
				 enum fp8_scaling s, bool pow2_scales, unsigned char *d_q,
				 float *d_scale, void *stream)
{
	cudaStream_t st = (cudaStream_t)stream;
	struct quant_grid q = quant_grid_of(rows, cols, s);
	long strips, tiles;
	int err;

	if (rows <= 0 || cols <= 0 || !d_x || !d_q || !d_scale ||
	    (f != FP8_E4M3 && f != FP8_E5M2) ||
	    (s != FP8_PER_TENSOR && s != FP8_PER_1X128 && s != FP8_PER_128X128))
		return MB_ERR_ARG;
	strips = (long)((rows + q.strip_rows - 1) / q.strip_rows) * ((cols + FP8_TILE - 1) / FP8_TILE);
	tiles = (long)((rows + q.tile_rows - 1) / q.tile_rows) * q.scale_cols;
	err = MB_CUDA_CHECK(cudaMemsetAsync(d_scale, 0, (size_t)tiles * sizeof(float), st));
	if (err)
		return err;
	quant_amax_kernel<<<(unsigned)strips, QUANT_THREADS, 0, st>>>(d_x, q, d_scale);
	err = MB_CUDA_CHECK(cudaGetLastError());
	if (err)
		return err;
	quant_scale_kernel<<<(unsigned)((tiles + 255) / 256), 256, 0, st>>>(
		d_scale, tiles, fp8_max_finite(f), pow2_scales);
	err = MB_CUDA_CHECK(cudaGetLastError());
	if (err)
		return err;
	quant_code_kernel<<<1024, 256, 0, st>>>(d_x, q, d_scale,
						f == FP8_E4M3 ? __NV_E4M3 : __NV_E5M2, d_q);
	return MB_CUDA_CHECK(cudaGetLastError());
}
