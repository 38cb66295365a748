/* ref_dgemm.c - plain triple-loop FP64 GEMM for references (see ref_dgemm.h). */
#include "ref_dgemm.h"

#include <stddef.h>

void attn_ref_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
		    int m, int n, int k, double alpha, const double *a, int lda, const double *b,
		    int ldb, double beta, double *c, int ldc)
{
	/* Strides of op(A)[i][p] and op(B)[p][j] in the row-major storage. */
	size_t ai = ta == CblasNoTrans ? (size_t)lda : 1, ap = ta == CblasNoTrans ? 1 : (size_t)lda;
	size_t bp = tb == CblasNoTrans ? (size_t)ldb : 1, bj = tb == CblasNoTrans ? 1 : (size_t)ldb;

	if (order != CblasRowMajor)
		return;
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			const double *x = a + (size_t)i * ai, *y = b + (size_t)j * bj;
			double s = 0;
			for (int p = 0; p < k; p++)
				s += x[(size_t)p * ap] * y[(size_t)p * bp];
			double *cij = c + (size_t)i * (size_t)ldc + (size_t)j;
			*cij = beta == 0 ? alpha * s : alpha * s + beta * *cij;
		}
}
