/*
 * fp8_layout.cu - the FP8 layout kernels of the op table (fp8_layout.h). Compiled as host
 * C++ by tests/train_emu.cpp as well (TRAIN_EMULATE), where the launches run one host
 * thread per CUDA thread.
 */
#include "train_cuda.cuh"

extern "C" {
#include "fp8_layout.h"
}

#define FP8LAY_THREADS 256

/* fp8lay_grid: blocks for n elements, grid-stride beyond the cap. */
static inline unsigned fp8lay_grid(long n)
{
	return tr_blocks(tr_cdiv(n, FP8LAY_THREADS));
}

/* fp8lay_pad_kernel: i runs over y in its own order (coalesced writes). */
__global__ void fp8lay_pad_kernel(int rows, int cols, const float *x, int trans, int yrows,
				  int ld, float *y)
{
	const int yr = trans ? cols : rows, w = trans ? rows : cols;
	const long n = (long)yrows * ld;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long r = i / ld, c = i % ld;
		y[i] = c >= w || r >= yr ? 0.0f : trans ? x[c * cols + r] : x[r * cols + c];
	}
}

__global__ void fp8lay_scales_kernel(int sr, int sc, const float *in, int vec, float *out)
{
	const int ld = (sc + 3) / 4 * 4;
	const long n = vec ? (long)sr * sc : (long)sr * ld;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		if (vec) {
			const long c = i / sr, r = i % sr;
			out[i] = in[r * sc + c];
		} else {
			const long r = i / ld, c = i % ld;
			out[i] = c < sc ? in[r * sc + c] : 0.0f;
		}
	}
}

/* fp8lay_e4m3: the value of an E4M3 (FN) code: bias 7, subnormals below exponent 1, S.1111.111
 * NaN, no infinities (fp8_decode's values; its NaN bits are not needed here: quantized
 * finite inputs give no NaN code). */
__device__ __forceinline__ float fp8lay_e4m3(uint8_t q)
{
	const int e = (q >> 3) & 15, m = q & 7;
	float v = e == 15 && m == 7 ? NAN : e == 0 ? ldexpf((float)m, -9)
						   : ldexpf((float)(8 + m), e - 10);
	return q & 0x80 ? -v : v;
}

__global__ void fp8lay_dequant_kernel(int rows, int cols, const uint8_t *q, const float *scale,
				      int tile_rows, float *y)
{
	const long n = (long)rows * cols;
	const int sc = (cols + 127) / 128;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long r = i / cols, c = i % cols;
		y[i] = fp8lay_e4m3(q[i]) * scale[(r / tile_rows) * sc + c / 128];
	}
}

extern "C" int fp8lay_pad_cuda(int rows, int cols, const float *d_x, int trans, int yrows,
			       int ld, float *d_y, void *stream)
{
	if (rows < 0 || cols < 0 || ld < (trans ? rows : cols) || yrows < (trans ? cols : rows))
		return MB_ERR_ARG;
	const long n = (long)yrows * ld;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(fp8lay_pad_kernel, fp8lay_grid(n), FP8LAY_THREADS, stream, rows, cols, d_x,
		  trans, yrows, ld, d_y);
	return TR_LAUNCHED();
}

extern "C" int fp8lay_scales_cuda(int sr, int sc, const float *d_in, int vec, float *d_out,
				  void *stream)
{
	if (sr <= 0 || sc <= 0)
		return MB_ERR_ARG;
	const long n = vec ? (long)sr * sc : (long)sr * ((sc + 3) / 4 * 4);
	TR_LAUNCH(fp8lay_scales_kernel, fp8lay_grid(n), FP8LAY_THREADS, stream, sr, sc, d_in, vec,
		  d_out);
	return TR_LAUNCHED();
}

extern "C" int fp8lay_dequant_cuda(int rows, int cols, const uint8_t *d_q, const float *d_scale,
				   int tile_rows, float *d_y, void *stream)
{
	if (rows < 0 || cols < 0 || (tile_rows != 1 && tile_rows != 128))
		return MB_ERR_ARG;
	const long n = (long)rows * cols;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(fp8lay_dequant_kernel, fp8lay_grid(n), FP8LAY_THREADS, stream, rows, cols, d_q,
		  d_scale, tile_rows, d_y);
	return TR_LAUNCHED();
}
