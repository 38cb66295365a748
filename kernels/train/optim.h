/*
 * optim.h - the optimizer end of a training step: the global gradient norm with its
 * clipping scale, and AdamW over all parameters in one launch (multi-tensor: the
 * parameters are one buffer, tensors are segments of it, each with its weight decay).
 * CPU reference in optim.c; CUDA in optim.cu (train_nocuda.c returns MB_ERR_UNSUPPORTED
 * without CUDA). FP32 master weights, gradients and moments.
 *
 * AdamW (Loshchilov and Hutter, decoupled decay; PyTorch's order), step t from 1:
 *   g = grad * scale (the clipping scale; 1 without clipping)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p = p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * DeepSeek-V3 (4.2): b1 0.9, b2 0.95, eps 1e-8, wd 0.1, gradient clipping norm 1.0.
 * Clipping (PyTorch's clip_grad_norm_): scale = min(1, max_norm / (norm + 1e-6)).
 */
#ifndef MB_OPTIM_H
#define MB_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRAD_NORM_BLOCKS 512   /* partial sums of the norm's first pass, at most */

struct adamw_config {
	float lr, beta1, beta2, eps;
	long step;                 /* t >= 1: the bias corrections' exponent */
};

/* A tensor of the parameter buffer: elements [offset, offset + count), its decay. */
struct adamw_segment {
	long offset, count;
	float weight_decay;
};

/* adamw_segments_check returns MB_OK when the segments are sorted, disjoint, inside
 * [0, n) and their counts positive, else MB_ERR_ARG. */
int adamw_segments_check(const struct adamw_segment *segs, int nsegs, long n);

/* adamw_cpu updates param, m, v over every segment (elements outside are untouched);
 * when param_bf16 is not NULL it also writes the BF16 rounding of each updated
 * parameter there (the copy BF16 GEMMs read). Returns MB_OK or MB_ERR_ARG. */
int adamw_cpu(const struct adamw_config *c, const struct adamw_segment *segs, int nsegs,
	      long n, float *param, const float *grad, float *m, float *v, float grad_scale,
	      uint16_t *param_bf16);

/* grad_norm_cpu returns the L2 norm of g[n], summed in FP64. */
double grad_norm_cpu(const float *g, long n);
/* grad_clip_scale returns min(1, max_norm / (norm + 1e-6)); 1 when max_norm <= 0. */
float grad_clip_scale(double norm, float max_norm);
/* grad_norm_workspace: bytes grad_norm_cuda needs. */
size_t grad_norm_workspace(long n);

/* adamw_cuda: adamw_cpu on the device. d_segs is a device copy of the segments (the
 * layout is fixed for a run: upload once); d_grad_scale a device float (the output of
 * grad_norm_cuda, so no host round trip) or NULL for 1. Returns MB_OK, MB_ERR_ARG,
 * MB_ERR_CUDA, or MB_ERR_UNSUPPORTED without CUDA. */
int adamw_cuda(const struct adamw_config *c, const struct adamw_segment *d_segs, int nsegs,
	       long n, float *d_param, const float *d_grad, float *d_m, float *d_v,
	       const float *d_grad_scale, uint16_t *d_param_bf16, void *stream);
/* grad_norm_cuda writes the norm of d_g[n] to *d_norm and the clipping scale to *d_scale
 * (device floats) in two passes: at most GRAD_NORM_BLOCKS blocks each sum squares over a
 * grid-stride slice into the workspace, then one block adds the partials in a fixed tree.
 * The block count depends on n only, so the result is deterministic. Returns as
 * adamw_cuda. */
int grad_norm_cuda(const float *d_g, long n, float max_norm, float *d_norm, float *d_scale,
		   void *d_work, size_t work_bytes, void *stream);

#ifdef __cplusplus
}
#endif

#endif
