/*
 * swiglu.c - CPU reference of the SwiGLU activation and its backward (swiglu.h),
 * computed in FP64 and rounded once.
 */
#include <math.h>

#include "status.h"
#include "swiglu.h"

/* swiglu_fwd_cpu: see swiglu.h. */
int swiglu_fwd_cpu(const float *gate, const float *up, long rows, int cols, long ld, float *h)
{
	if (rows < 0 || cols <= 0 || ld < cols)
		return MB_ERR_ARG;
	for (long r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++) {
			const double a = gate[r * ld + c], s = 1.0 / (1.0 + exp(-a));
			h[r * cols + c] = (float)(a * s * up[r * ld + c]);
		}
	return MB_OK;
}

/* swiglu_bwd_cpu: see swiglu.h. */
int swiglu_bwd_cpu(const float *dh, const float *gate, const float *up, long rows, int cols,
		   long ld, float *dgate, float *dup)
{
	if (rows < 0 || cols <= 0 || ld < cols)
		return MB_ERR_ARG;
	for (long r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++) {
			const double a = gate[r * ld + c], s = 1.0 / (1.0 + exp(-a));
			const double g = dh[r * cols + c];
			dgate[r * ld + c] = (float)(g * up[r * ld + c] * s * (1.0 + a * (1.0 - s)));
			dup[r * ld + c] = (float)(g * a * s);
		}
	return MB_OK;
}
