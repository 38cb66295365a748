/*
 * route_cuda_nocuda.c - route_cuda (route.h) for builds without CUDA; the build
 * compiles this file or route.cu, never both.
 */
#include "route.h"

#include "status.h"

/* route_cuda fails: this build has no CUDA. */
int route_cuda(const struct route_config *c, const float *d_logits, const float *d_bias,
	       long tokens, int32_t *d_topk_idx, float *d_topk_w, void *stream)
{
	(void)c;
	(void)d_logits;
	(void)d_bias;
	(void)tokens;
	(void)d_topk_idx;
	(void)d_topk_w;
	(void)stream;
	return MB_ERR_UNSUPPORTED;
}
