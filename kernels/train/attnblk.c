/*
 * attnblk.c - CPU twins of the attention blocks' device glue (attnblk.h): the
 * references tests/train_emu.cpp checks attnblk.cu against.
 */
#include <limits.h>

#include "attnblk.h"
#include "status.h"

#define REAL float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#include "block_real.h"

/* attnblk_rope_cpu: see attnblk.h. It IS the CPU blocks' RoPE (block_real.h's
 * rope_rows, float), so the device kernel is checked against what mla_fwd_f32 runs. */
int attnblk_rope_cpu(float *x, long rows, int seq, int pos0, int heads, long head_stride,
		     long row_stride, int dr, double theta, int inverse)
{
	if (!x || rows < 0 || rows > INT_MAX || seq < 1 || heads < 1 || dr < 2 || dr % 2)
		return MB_ERR_ARG;
	rope_rows_f32((float *)x, (int)rows, seq, pos0, heads, (size_t)head_stride,
		      (size_t)row_stride, dr, theta, inverse != 0);
	return MB_OK;
}

/* attnblk_copy_cpu: see attnblk.h. */
int attnblk_copy_cpu(long rows, int heads, int cols, const float *x, long ldx, long hx,
		     float *y, long ldy, long hy, int add)
{
	if (!x || !y || rows < 0 || heads < 1 || cols < 0)
		return MB_ERR_ARG;
	for (long r = 0; r < rows; r++)
		for (int h = 0; h < heads; h++)
			for (int c = 0; c < cols; c++) {
				float v = x[r * ldx + h * hx + c];
				float *d = y + r * ldy + h * hy + c;
				*d = add ? *d + v : v;
			}
	return MB_OK;
}

/* attnblk_headsum_cpu: see attnblk.h. */
int attnblk_headsum_cpu(long rows, int heads, int cols, const float *x, long ldx, long hx,
			float *y, long ldy)
{
	if (!x || !y || rows < 0 || heads < 1 || cols < 0)
		return MB_ERR_ARG;
	for (long r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++) {
			float s = 0;
			for (int h = 0; h < heads; h++)
				s += x[r * ldx + h * hx + c];
			y[r * ldy + c] = s;
		}
	return MB_OK;
}
