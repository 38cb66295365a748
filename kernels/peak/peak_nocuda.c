/*
 * peak_nocuda.c - the CUDA functions of peak.h for builds without CUDA.
 *
 * The build compiles this file or peak_cuda.c, never both. Every create fails with
 * MB_ERR_UNSUPPORTED and leaves *out NULL, so the other calls never see an object.
 */
#include "peak.h"
#include "status.h"

/* peak_gemm_cuda_create fails: this build has no CUDA. */
int peak_gemm_cuda_create(struct peak_gemm_cuda **out, enum peak_dtype dtype,
			  int m, int n, int k, uint64_t seed, void *stream)
{
	if (out)
		*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

/* peak_gemm_cuda_poison fails: no object can exist without CUDA. */
int peak_gemm_cuda_poison(struct peak_gemm_cuda *g)
{
	return MB_ERR_UNSUPPORTED;
}

/* peak_gemm_cuda_run fails: no object can exist without CUDA. */
int peak_gemm_cuda_run(struct peak_gemm_cuda *g)
{
	return MB_ERR_UNSUPPORTED;
}

/* peak_gemm_cuda_check fails: no object can exist without CUDA. */
int peak_gemm_cuda_check(struct peak_gemm_cuda *g, int samples, struct peak_check *chk)
{
	return MB_ERR_UNSUPPORTED;
}

/* peak_gemm_cuda_destroy does nothing: there is nothing to free. */
void peak_gemm_cuda_destroy(struct peak_gemm_cuda *g)
{
}

/* peak_copy_cuda_create fails: this build has no CUDA. */
int peak_copy_cuda_create(struct peak_copy_cuda **out, size_t bytes, uint64_t seed, void *stream)
{
	if (out)
		*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

/* peak_copy_cuda_poison fails: no object can exist without CUDA. */
int peak_copy_cuda_poison(struct peak_copy_cuda *c)
{
	return MB_ERR_UNSUPPORTED;
}

/* peak_copy_cuda_run fails: no object can exist without CUDA. */
int peak_copy_cuda_run(struct peak_copy_cuda *c)
{
	return MB_ERR_UNSUPPORTED;
}

/* peak_copy_cuda_check fails: no object can exist without CUDA. */
int peak_copy_cuda_check(struct peak_copy_cuda *c, struct peak_check *chk)
{
	return MB_ERR_UNSUPPORTED;
}

/* peak_copy_cuda_destroy does nothing: there is nothing to free. */
void peak_copy_cuda_destroy(struct peak_copy_cuda *c)
{
}
