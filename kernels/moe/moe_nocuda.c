/*
 * moe_nocuda.c - the CUDA functions of kernels/moe (permute.h, route.h) for builds
 * without CUDA: each fails with MB_ERR_UNSUPPORTED (the build compiles this file or
 * permute.cu and route.cu, never both).
 */
#include "permute.h"
#include "route.h"
#include "status.h"

/* permute_gather_cuda fails: this build has no CUDA. */
int permute_gather_cuda(const uint8_t *d_src, const int32_t *d_slot_item, long slots,
			size_t row_bytes, uint8_t *d_dst, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* permute_arrange_cuda fails: this build has no CUDA. */
int permute_arrange_cuda(const uint8_t *d_rows, const struct permute_format *fmt,
			 const int32_t *d_row_copy, long rows_padded, void *d_xe,
			 float *d_xe_scale, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* permute_identity_experts_cuda fails: this build has no CUDA. */
int permute_identity_experts_cuda(const struct permute_format *fmt, long rows,
				  const void *d_xe, const float *d_xe_scale, uint16_t *d_y,
				  void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* permute_reduce_cuda fails: this build has no CUDA. */
int permute_reduce_cuda(const uint16_t *d_in, int hidden, const int32_t *d_idx,
			const float *d_w, int k, long n_out, uint16_t *d_out, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* permute_cuda_alloc fails: this build has no CUDA. */
int permute_cuda_alloc(void **d_p, size_t bytes)
{
	*d_p = NULL;
	return MB_ERR_UNSUPPORTED;
}

/* permute_cuda_free has nothing to free without CUDA. */
void permute_cuda_free(void *d_p)
{
}

/* permute_cuda_copy fails: this build has no CUDA. */
int permute_cuda_copy(void *dst, const void *src, size_t bytes, int kind, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* permute_cuda_sync fails: this build has no CUDA. */
int permute_cuda_sync(void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* route_cuda fails: this build has no CUDA. */
int route_cuda(const struct route_config *c, const float *d_logits, const float *d_bias,
	       long tokens, int32_t *d_topk_idx, float *d_topk_w, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}
