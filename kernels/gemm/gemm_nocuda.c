/*
 * gemm_nocuda.c - the functions of gemm_cuda.h for builds without CUDA.
 *
 * The build compiles this file or gemm_cuda.c (with quantize_cuda.cu and gemm_fp8.cu),
 * never both. Every create fails with MB_ERR_UNSUPPORTED and leaves *out NULL, so the
 * other calls never see an object.
 */
#include "gemm_cuda.h"
#include "status.h"

/* gemm_cuda_create fails: this build has no CUDA. */
int gemm_cuda_create(struct gemm_cuda **out, enum gemm_kind kind, enum gemm_impl impl,
		     bool fast_accum, const struct gemm_inputs *in, void *stream)
{
	if (out)
		*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

/* gemm_cuda_poison fails: no object can exist without CUDA. */
int gemm_cuda_poison(struct gemm_cuda *g)
{
	return MB_ERR_UNSUPPORTED;
}

/* gemm_cuda_run fails: no object can exist without CUDA. */
int gemm_cuda_run(struct gemm_cuda *g)
{
	return MB_ERR_UNSUPPORTED;
}

/* gemm_cuda_download fails: no object can exist without CUDA. */
int gemm_cuda_download(struct gemm_cuda *g, float *d)
{
	return MB_ERR_UNSUPPORTED;
}

/* gemm_cuda_destroy does nothing: there is nothing to free. */
void gemm_cuda_destroy(struct gemm_cuda *g)
{
}

/* gemm_grouped_cuda_create fails: this build has no CUDA. */
int gemm_grouped_cuda_create(struct gemm_grouped_cuda **out, enum gemm_impl impl,
			     const struct gemm_grouped_inputs *in, void *stream)
{
	if (out)
		*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

/* gemm_grouped_cuda_poison fails: no object can exist without CUDA. */
int gemm_grouped_cuda_poison(struct gemm_grouped_cuda *g)
{
	return MB_ERR_UNSUPPORTED;
}

/* gemm_grouped_cuda_run fails: no object can exist without CUDA. */
int gemm_grouped_cuda_run(struct gemm_grouped_cuda *g)
{
	return MB_ERR_UNSUPPORTED;
}

/* gemm_grouped_cuda_download fails: no object can exist without CUDA. */
int gemm_grouped_cuda_download(struct gemm_grouped_cuda *g, float *d)
{
	return MB_ERR_UNSUPPORTED;
}

/* gemm_grouped_cuda_destroy does nothing: there is nothing to free. */
void gemm_grouped_cuda_destroy(struct gemm_grouped_cuda *g)
{
}

/* fp8_quantize_cuda fails: this build has no CUDA. */
int fp8_quantize_cuda(const float *d_x, int rows, int cols, enum fp8_format f,
		      enum fp8_scaling s, bool pow2_scales, unsigned char *d_q, float *d_scale,
		      void *stream)
{
	return MB_ERR_UNSUPPORTED;
}
