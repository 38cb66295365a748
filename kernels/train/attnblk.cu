/*
 * attnblk.cu - the attention blocks' device glue (attnblk.h): grid-stride elementwise
 * kernels, one thread per output element (a rotated pair for RoPE).
 */
#include "train_cuda.cuh"

extern "C" {
#include "attnblk.h"
}

#define ATTNBLK_THREADS 256

/* attnblk_rope_kernel: one thread per (row, head, pair). */
__global__ void attnblk_rope_kernel(float *x, long rows, int seq, int pos0, int heads,
				    long head_stride, long row_stride, int dr, double theta,
				    int inverse)
{
	const int half = dr / 2;
	const long n = rows * heads * half;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long r = i / ((long)heads * half);
		const int h = (int)(i / half % heads), p = (int)(i % half);
		float *v = x + r * row_stride + h * head_stride + 2 * p;
		double ang = (double)(pos0 + r % seq) * pow(theta, -2.0 * p / dr);
		double cs = cos(ang), sn = inverse ? -sin(ang) : sin(ang);
		double a = v[0], b = v[1];
		v[0] = (float)(a * cs - b * sn);
		v[1] = (float)(a * sn + b * cs);
	}
}

/* attnblk_copy_kernel: i runs over [rows, heads, cols] of the destination. */
__global__ void attnblk_copy_kernel(long rows, int heads, int cols, const float *x, long ldx,
				    long hx, float *y, long ldy, long hy, int add)
{
	const long n = rows * heads * cols;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long r = i / ((long)heads * cols);
		const int h = (int)(i / cols % heads), c = (int)(i % cols);
		const float v = x[r * ldx + h * hx + c];
		float *d = y + r * ldy + h * hy + c;
		*d = add ? *d + v : v;
	}
}

/* attnblk_headsum_kernel: one thread per (row, column), heads in order. */
__global__ void attnblk_headsum_kernel(long rows, int heads, int cols, const float *x,
				       long ldx, long hx, float *y, long ldy)
{
	const long n = rows * cols;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long r = i / cols;
		const int c = (int)(i % cols);
		float s = 0;
		for (int h = 0; h < heads; h++)
			s += x[r * ldx + h * hx + c];
		y[r * ldy + c] = s;
	}
}

__global__ void attnblk_widen_kernel(const uint16_t *x, long n, float *y)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x)
		y[i] = tr_bf16_load(x[i]);
}

/* ---- launchers ---- */

extern "C" int attnblk_rope_cuda(float *d_x, long rows, int seq, int pos0, int heads,
				 long head_stride, long row_stride, int dr, double theta,
				 int inverse, void *stream)
{
	if (!d_x || rows < 0 || seq < 1 || heads < 1 || dr < 2 || dr % 2)
		return MB_ERR_ARG;
	const long n = rows * heads * (dr / 2);
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(attnblk_rope_kernel, tr_blocks(tr_cdiv(n, ATTNBLK_THREADS)), ATTNBLK_THREADS,
		  stream, d_x, rows, seq, pos0, heads, head_stride, row_stride, dr, theta, inverse);
	return TR_LAUNCHED();
}

extern "C" int attnblk_copy_cuda(long rows, int heads, int cols, const float *d_x, long ldx,
				 long hx, float *d_y, long ldy, long hy, int add, void *stream)
{
	if (!d_x || !d_y || rows < 0 || heads < 1 || cols < 0)
		return MB_ERR_ARG;
	const long n = rows * heads * cols;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(attnblk_copy_kernel, tr_blocks(tr_cdiv(n, ATTNBLK_THREADS)), ATTNBLK_THREADS,
		  stream, rows, heads, cols, d_x, ldx, hx, d_y, ldy, hy, add);
	return TR_LAUNCHED();
}

extern "C" int attnblk_headsum_cuda(long rows, int heads, int cols, const float *d_x,
				    long ldx, long hx, float *d_y, long ldy, void *stream)
{
	if (!d_x || !d_y || rows < 0 || heads < 1 || cols < 0)
		return MB_ERR_ARG;
	const long n = rows * cols;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(attnblk_headsum_kernel, tr_blocks(tr_cdiv(n, ATTNBLK_THREADS)),
		  ATTNBLK_THREADS, stream, rows, heads, cols, d_x, ldx, hx, d_y, ldy);
	return TR_LAUNCHED();
}

extern "C" int attnblk_widen_cuda(const uint16_t *d_x, long n, float *d_y, void *stream)
{
	if (!d_x || !d_y || n < 0)
		return MB_ERR_ARG;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(attnblk_widen_kernel, tr_blocks(tr_cdiv(n, ATTNBLK_THREADS)), ATTNBLK_THREADS,
		  stream, d_x, n, d_y);
	return TR_LAUNCHED();
}
