/* check_cuda.c - the CUDA and cuBLAS call checks of cuda_check.h. */
#include "cuda_check.h"

#include <stdio.h>

int mb_cuda_check(cudaError_t e, const char *call, const char *file, int line)
{
	if (e == cudaSuccess)
		return MB_OK;
	fprintf(stderr, "%s:%d: %s: %s: %s\n", file, line, call, cudaGetErrorName(e),
		cudaGetErrorString(e));
	return MB_ERR_CUDA;
}

int mb_cublas_check(cublasStatus_t s, const char *call, const char *file, int line)
{
	if (s == CUBLAS_STATUS_SUCCESS)
		return MB_OK;
	fprintf(stderr, "%s:%d: %s: %s: %s\n", file, line, call, cublasLtGetStatusName(s),
		cublasLtGetStatusString(s));
	return MB_ERR_CUBLAS;
}

int mb_cuda_upload(void *d_dst, const void *h_src, size_t bytes)
{
	int err = MB_CUDA_CHECK(cudaMemcpy(d_dst, h_src, bytes, cudaMemcpyHostToDevice));
	return err ? err : MB_CUDA_CHECK(cudaDeviceSynchronize());
}
