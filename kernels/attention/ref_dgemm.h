/*
 * ref_dgemm.h - a plain triple-loop FP64 GEMM with CBLAS's row-major signature, for
 * the FP64 references that judge the attention and MLA kernels: a reference computed
 * by the BLAS under test would pass a BLAS that is wrong in both precisions.
 */
#ifndef MB_KERNELS_REF_DGEMM_H
#define MB_KERNELS_REF_DGEMM_H

#include <cblas.h>

/* attn_ref_dgemm computes C = alpha * op(A) op(B) + beta * C for row-major matrices
 * (order must be CblasRowMajor), op being the identity or the transpose. With beta 0,
 * C is only written (a poisoned C is fine). Accumulates in FP64 in k order. */
void attn_ref_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
		    int m, int n, int k, double alpha, const double *a, int lda, const double *b,
		    int ldb, double beta, double *c, int ldc);

#endif
