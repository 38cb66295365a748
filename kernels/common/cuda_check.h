/*
 * cuda_check.h - checks for CUDA runtime and cuBLAS(Lt) calls, callable from C.
 *
 *   err = MB_CUDA_CHECK(cudaMalloc(&d_a, bytes)); if (err) goto out;
 *
 * On failure it prints "file:line: call: error name: error string" to stderr and
 * yields MB_ERR_CUDA / MB_ERR_CUBLAS; on success MB_OK.
 */
#ifndef MB_CUDA_CHECK_H
#define MB_CUDA_CHECK_H

#include <cuda_runtime_api.h>
#include <cublasLt.h>

#include "status.h"

int mb_cuda_check(cudaError_t e, const char *call, const char *file, int line);
int mb_cublas_check(cublasStatus_t s, const char *call, const char *file, int line);

#define MB_CUDA_CHECK(call) mb_cuda_check((call), #call, __FILE__, __LINE__)

/* mb_cuda_upload copies bytes from host memory to the device and waits until they have
 * landed. NOTE: cudaMemcpy from pageable memory returns once the data is staged, before
 * its DMA completes, and nothing orders that DMA before a kernel on a non-blocking
 * stream (the backends' streams are): the device synchronisation does. For setup, never
 * inside a timed region. */
int mb_cuda_upload(void *d_dst, const void *h_src, size_t bytes);
#define MB_CUBLAS_CHECK(call) mb_cublas_check((call), #call, __FILE__, __LINE__)

#endif
