/*
 * rmsnorm.c - CPU reference of RMSNorm forward and backward (rmsnorm.h), sums in FP64.
 */
#include <math.h>

#include "rmsnorm.h"
#include "status.h"

/* rmsnorm_fwd_cpu: see rmsnorm.h. */
int rmsnorm_fwd_cpu(const float *x, const float *gain, long rows, int dim, float eps,
		    float *y, float *rstd)
{
	if (rows < 0 || dim <= 0 || !(eps >= 0.0f))
		return MB_ERR_ARG;
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * dim;
		double ss = 0.0;
		for (int c = 0; c < dim; c++)
			ss += (double)xr[c] * xr[c];
		const double s = 1.0 / sqrt(ss / dim + eps);
		rstd[r] = (float)s;
		for (int c = 0; c < dim; c++)
			y[r * dim + c] = (float)(xr[c] * s * gain[c]);
	}
	return MB_OK;
}

/* rmsnorm_bwd_cpu: see rmsnorm.h. */
int rmsnorm_bwd_cpu(const float *dy, const float *x, const float *gain, const float *rstd,
		    long rows, int dim, float *dx, float *dgain)
{
	if (rows < 0 || dim <= 0)
		return MB_ERR_ARG;
	for (int c = 0; c < dim; c++) {
		double acc = dgain[c];
		for (long r = 0; r < rows; r++)
			acc += (double)dy[r * dim + c] * x[r * dim + c] * rstd[r];
		dgain[c] = (float)acc;
	}
	for (long r = 0; r < rows; r++) {
		const double s = rstd[r];
		double dot = 0.0;
		for (int c = 0; c < dim; c++)
			dot += (double)dy[r * dim + c] * gain[c] * x[r * dim + c] * s;
		dot /= dim;
		for (int c = 0; c < dim; c++)
			dx[r * dim + c] = (float)(s * ((double)dy[r * dim + c] * gain[c] -
						       x[r * dim + c] * s * dot));
	}
	return MB_OK;
}

/* rmsnorm_bwd_workspace: see rmsnorm.h. */
size_t rmsnorm_bwd_workspace(long rows, int dim)
{
	if (rows <= 0 || dim <= 0)
		return 0;
	return (size_t)(rows < RMSNORM_GROUPS ? rows : RMSNORM_GROUPS) * (size_t)dim * sizeof(float);
}
