/*
 * xent.h - the vocabulary cross-entropy of a training step fused with its gradient: per
 * row (token) the loss -log softmax(logits)[target] and, in the same call, the logits'
 * gradient. CPU reference in xent.c; CUDA in xent.cu (train_nocuda.c returns
 * MB_ERR_UNSUPPORTED without CUDA).
 *
 * Shape letters: R rows, V vocabulary. Logits [R, V] in FP32 or BF16 (enum xent_dtype),
 * losses [R] in FP32, the gradient in the logits' type and may overwrite them:
 *   lse = log sum_v exp(x[v]);  loss = lse - x[target]
 *   dx[v] = dscale * (exp(x[v] - lse) - [v == target])
 * dscale is d(total loss)/d(row loss), e.g. 1 / (rows with a target) for a mean.
 * A target < 0 marks a row without a target (padding): loss 0, gradient 0.
 *
 * The CUDA kernel gives each row one block that walks the vocabulary in chunks of
 * blockDim.x logits, twice: first keeping a running (max, sum of exp(x - max)) per thread
 * (rescaled when the max grows: numerically stable for any logit range), combined over the
 * block, then writing the gradient. No [R, V] probability buffer exists.
 */
#ifndef MB_XENT_H
#define MB_XENT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum xent_dtype { XENT_FP32, XENT_BF16 };

/* xent_cpu computes losses[R] and, when dlogits is not NULL, the gradient (it may
 * alias logits), in FP64 from the stored logits. Returns MB_OK or MB_ERR_ARG (a bad
 * size, a target >= V). */
int xent_cpu(const void *logits, enum xent_dtype dtype, const int32_t *targets, long rows,
	     int vocab, float dscale, float *losses, void *dlogits);

/* xent_cuda: the same on the device (device pointers, stream a cudaStream_t,
 * asynchronous); a target >= V is treated as no target. Returns MB_OK, MB_ERR_ARG,
 * MB_ERR_CUDA, or MB_ERR_UNSUPPORTED without CUDA. */
int xent_cuda(const void *d_logits, enum xent_dtype dtype, const int32_t *d_targets, long rows,
	      int vocab, float dscale, float *d_losses, void *d_dlogits, void *stream);

#ifdef __cplusplus
}
#endif

#endif
