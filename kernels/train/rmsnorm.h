/*
 * rmsnorm.h - RMSNorm of a training step, forward and backward, each one fused kernel
 * on the GPU. CPU reference in rmsnorm.c; CUDA in rmsnorm.cu (train_nocuda.c returns
 * MB_ERR_UNSUPPORTED without CUDA).
 *
 * Shape letters: R rows (tokens), D dimension. FP32 throughout (norms stay in higher
 * precision in DeepSeek-V3's FP8 recipe, 3.3).
 *   forward:  rstd[r] = 1 / sqrt(mean_c x[r, c]^2 + eps);  y = x * rstd[r] * gain
 *   backward: n = x * rstd;  g = dy * gain
 *             dx[r, c] = rstd[r] * (g[r, c] - n[r, c] * mean_c(g[r, :] * n[r, :]))
 *             dgain[c] += sum_r dy[r, c] * n[r, c]
 * The CUDA backward reduces dgain in two levels, in FP32 and in a fixed order: each of
 * G = min(R, RMSNORM_GROUPS) blocks sums its rows (r = b, b + G, ...) into its own
 * partial row of the workspace, then one pass adds the G partials in block order.
 */
#ifndef MB_RMSNORM_H
#define MB_RMSNORM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RMSNORM_GROUPS 256   /* partial rows of the gain gradient's first level */

/* rmsnorm_fwd_cpu writes y[R, D] and rstd[R] (sums in FP64). Returns MB_OK or MB_ERR_ARG. */
int rmsnorm_fwd_cpu(const float *x, const float *gain, long rows, int dim, float eps,
		    float *y, float *rstd);
/* rmsnorm_bwd_cpu writes dx[R, D] and adds into dgain[D] (sums in FP64), from the
 * forward's rstd. Returns MB_OK or MB_ERR_ARG. */
int rmsnorm_bwd_cpu(const float *dy, const float *x, const float *gain, const float *rstd,
		    long rows, int dim, float *dx, float *dgain);
/* rmsnorm_bwd_workspace: bytes rmsnorm_bwd_cuda needs (G partial rows of D floats). */
size_t rmsnorm_bwd_workspace(long rows, int dim);

/* CUDA versions (device pointers, stream a cudaStream_t, asynchronous): one block per
 * row. Return MB_OK, MB_ERR_ARG, MB_ERR_CUDA, or MB_ERR_UNSUPPORTED without CUDA. */
int rmsnorm_fwd_cuda(const float *d_x, const float *d_gain, long rows, int dim, float eps,
		     float *d_y, float *d_rstd, void *stream);
int rmsnorm_bwd_cuda(const float *d_dy, const float *d_x, const float *d_gain,
		     const float *d_rstd, long rows, int dim, float *d_dx, float *d_dgain,
		     void *d_work, size_t work_bytes, void *stream);

#ifdef __cplusplus
}
#endif

#endif
