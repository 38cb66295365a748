/* gemm_names.c - the names of gemm_cuda.h's kinds and implementations, for options
 * and result records; built with and without CUDA. */
#include "gemm_cuda.h"

/* gemm_kind_name returns "bf16", "fp8-tensor" or "fp8-block" ("?" for anything else). */
const char *gemm_kind_name(enum gemm_kind k)
{
	switch (k) {
	case GEMM_BF16:
		return "bf16";
	case GEMM_FP8_TENSOR:
		return "fp8-tensor";
	case GEMM_FP8_BLOCK:
		return "fp8-block";
	}
	return "?";
}

/* gemm_impl_name returns "cpu", "cublaslt" or "v1" ("?" for anything else). */
const char *gemm_impl_name(enum gemm_impl i)
{
	switch (i) {
	case GEMM_IMPL_CPU:
		return "cpu";
	case GEMM_IMPL_CUBLASLT:
		return "cublaslt";
	case GEMM_IMPL_V1:
		return "v1";
	}
	return "?";
}
