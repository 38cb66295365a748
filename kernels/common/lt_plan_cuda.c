/* lt_plan_cuda.c - the cuBLASLt matmul plans of lt_plan.h. */
#include "lt_plan.h"

#include <stdio.h>
#include <string.h>

#include "cuda_check.h"
#include "status.h"

/* lt_set sets one attribute of the descriptor. */
static int lt_set(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr,
		  const void *v, size_t size)
{
	return MB_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, attr, v, size));
}

/* lt_make_layouts describes cuBLASLt's A, B and C (= D). */
static int lt_make_layouts(struct mb_lt_plan *p, const struct mb_lt_spec *s)
{
	const struct mb_lt_matrix *a = &s->a, *b = &s->b, *c = &s->c;
	int err;

	err = MB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, a->type, a->rows, a->cols, a->ld));
	if (!err)
		err = MB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, b->type, b->rows, b->cols,
								 b->ld));
	if (!err)
		err = MB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, c->type, c->rows, c->cols,
								 c->ld));
	return err;
}

/* lt_make_scales sets what s gives of the accumulation mode, the scale pointers (A's,
 * B's) and the scale modes (A's, B's), in that order; nothing for what it leaves zero. */
static int lt_make_scales(struct mb_lt_plan *p, const struct mb_lt_spec *s)
{
	static const cublasLtMatmulDescAttributes_t ptr_attr[2] = {
		CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER };
	static const cublasLtMatmulDescAttributes_t mode_attr[2] = {
		CUBLASLT_MATMUL_DESC_A_SCALE_MODE, CUBLASLT_MATMUL_DESC_B_SCALE_MODE };
	const struct mb_lt_matrix *x[2] = { &s->a, &s->b };
	int8_t fast = s->accum == MB_LT_ACCUM_FAST ? 1 : 0;
	int err = MB_OK;

	if (s->accum != MB_LT_ACCUM_DEFAULT)
		err = lt_set(p->op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast));
	for (int i = 0; i < 2 && !err; i++)
		if (x[i]->scale)
			err = lt_set(p->op, ptr_attr[i], &x[i]->scale, sizeof(x[i]->scale));
	for (int i = 0; i < 2 && !err; i++)
		if (x[i]->scale_mode)
			err = lt_set(p->op, mode_attr[i], &x[i]->scale_mode,
				     sizeof(x[i]->scale_mode));
	return err;
}

/* lt_make_desc creates the operation: FP32 compute and scale, the two transpose flags,
 * then the optional attributes of s. */
static int lt_make_desc(struct mb_lt_plan *p, const struct mb_lt_spec *s)
{
	cublasOperation_t trans_a = s->a.op, trans_b = s->b.op;
	cublasLtEpilogue_t epilogue = (cublasLtEpilogue_t)s->epilogue;
	int err;

	err = MB_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
	if (!err)
		err = lt_set(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a));
	if (!err)
		err = lt_set(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b));
	if (!err)
		err = lt_make_scales(p, s);
	if (!err && s->epilogue)
		err = lt_set(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue));
	return err;
}

/* lt_pick_algo asks the heuristic for its best algorithm within the workspace; none
 * (NOT_SUPPORTED, or zero results) is MB_ERR_UNSUPPORTED with a line on stderr. */
static int lt_pick_algo(struct mb_lt_plan *p, cublasLtHandle_t lt, const struct mb_lt_spec *s)
{
	cublasLtMatmulPreference_t pref = NULL;
	cublasLtMatmulHeuristicResult_t result;
	uint64_t workspace = s->workspace_bytes;
	cublasStatus_t st;
	int returned = 0;
	int err;

	err = MB_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
	if (err)
		goto out;
	err = MB_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref,
			CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
	if (err)
		goto out;
	st = cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->a, p->b, p->c, p->c, pref, 1, &result,
					    &returned);
	/* NOTE: "no heuristic for this configuration" comes back as NOT_SUPPORTED. */
	if (st != CUBLAS_STATUS_NOT_SUPPORTED)
		err = mb_cublas_check(st, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
	if (!err && (st == CUBLAS_STATUS_NOT_SUPPORTED || returned == 0)) {
		fprintf(stderr, "%s:%d: cublasLtMatmulAlgoGetHeuristic: no algorithm for %s "
			"GEMM M=%d N=%d K=%d on this device\n", __FILE__, __LINE__,
			s->what ? s->what : "the", s->m, s->n, s->k);
		err = MB_ERR_UNSUPPORTED;
	}
	if (!err)
		p->algo = result.algo;
out:
	if (pref)
		cublasLtMatmulPreferenceDestroy(pref);
	return err;
}

int mb_lt_plan_make(struct mb_lt_plan *p, cublasLtHandle_t lt, const struct mb_lt_spec *s)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->workspace_bytes = s->workspace_bytes;
	err = lt_make_layouts(p, s);
	if (!err)
		err = lt_make_desc(p, s);
	return err ? err : lt_pick_algo(p, lt, s);
}

int mb_lt_plan_run(cublasLtHandle_t lt, const struct mb_lt_plan *p, const float *alpha,
		   const void *a, const void *b, const float *beta, void *d, void *workspace,
		   cudaStream_t stream)
{
	return MB_CUBLAS_CHECK(cublasLtMatmul(lt, p->op, alpha, a, p->a, b, p->b, beta, d, p->c,
					      d, p->c, &p->algo, workspace,
					      (size_t)p->workspace_bytes, stream));
}

void mb_lt_plan_free(struct mb_lt_plan *p)
{
	if (p->a)
		cublasLtMatrixLayoutDestroy(p->a);
	if (p->b)
		cublasLtMatrixLayoutDestroy(p->b);
	if (p->c)
		cublasLtMatrixLayoutDestroy(p->c);
	if (p->op)
		cublasLtMatmulDescDestroy(p->op);
	memset(p, 0, sizeof(*p));
}
