/*
 * gemm_grouped_cuda.c - grouped FP8 GEMM for MoE experts (gemm_cuda.h, gemm_grouped_*).
 *
 * Shapes: G experts share B's shape [N,K] (B stacks them: [G*N, K], 128x128 scales);
 * A stacks each expert's rows, padded to a multiple of 128 ([sum of padded rows, K],
 * 1x128 scales), the contiguous layout token dispatch produces. For expert e with
 * first padded row r_e: D[r_e + i, :] = A[r_e + i, :] * B_e^T, over all padded rows
 * (padding rows of D are whatever A's padding rows give: zeros for zero padding).
 *
 *   impl V1        one launch of our kernel (gemm_fp8.cu) over all experts: each
 *                  128-row tile of A belongs to one expert and reads its B.
 *   impl CUBLASLT  a loop of cuBLASLt FP8 block-scaled GEMMs, one per expert with rows,
 *                  each a gemm_cuda plan over views of that expert's rows of A and B.
 * Both need N a multiple of 128, so no 128x128 scale block of B straddles two experts.
 */
#include "gemm_cuda.h"

#include <stdio.h>
#include <stdlib.h>

#include "gemm_cuda_impl.h"
#include "status.h"

struct gemm_grouped_cuda {
	enum gemm_impl impl;
	int groups, n;
	int *row0;                 /* first padded row of each expert */
	int *padded;               /* padded rows of each expert */
	struct gemm_v1 *v1;        /* impl V1 */
	struct gemm_cuda **plans;  /* impl CUBLASLT: one per expert, NULL where no rows */
};

/* grouped_rule returns NULL when `in` is a grouped problem both impls take, else the
 * rule it breaks; fills row0 and padded (groups entries each). */
static const char *grouped_rule(const struct gemm_grouped_inputs *in, int *row0, int *padded)
{
	long total = 0;

	if (in->groups < 1 || in->n < 1 || in->k < 1 || !in->rows || !in->a8 || !in->b8)
		return "groups, N, K must be positive and rows, A, B present";
	if (in->n % FP8_TILE)
		return "N must be a multiple of 128 (B's 128x128 scale blocks per expert)";
	for (int e = 0; e < in->groups; e++) {
		if (in->rows[e] < 0)
			return "rows per expert must not be negative";
		row0[e] = (int)total;
		padded[e] = (in->rows[e] + FP8_TILE - 1) / FP8_TILE * FP8_TILE;
		total += padded[e];
	}
	if (total == 0 || total != in->a8->rows || in->a8->cols != in->k)
		return "A must be [sum of rows padded to 128 per expert, K] and not empty";
	if ((long)in->groups * in->n != in->b8->rows || in->b8->cols != in->k)
		return "B must be [groups * N, K]";
	if (in->a8->scaling != FP8_PER_1X128 || in->b8->scaling != FP8_PER_128X128)
		return "A needs 1x128 scales, B 128x128 scales";
	return NULL;
}

/* grouped_plan_expert creates the cuBLASLt plan of expert e over views of its rows. */
static int grouped_plan_expert(struct gemm_grouped_cuda *g, int e,
			       const struct gemm_grouped_inputs *in, void *stream)
{
	struct fp8_matrix a = *in->a8, b = *in->b8;
	long b_block0 = (long)e * in->n / FP8_TILE;

	a.rows = a.scale_rows = g->padded[e];
	a.q += (size_t)g->row0[e] * in->k;
	a.scale += (size_t)g->row0[e] * a.scale_cols;
	b.rows = in->n;
	b.scale_rows = in->n / FP8_TILE;
	b.q += (size_t)e * in->n * in->k;
	b.scale += (size_t)b_block0 * b.scale_cols;
	struct gemm_inputs gi = { .m = g->padded[e], .n = in->n, .k = in->k, .a8 = &a, .b8 = &b };
	return gemm_cuda_create(&g->plans[e], GEMM_FP8_BLOCK, GEMM_IMPL_CUBLASLT, false, &gi,
				stream);
}

/* gemm_grouped_cuda_create checks the layout and uploads it for impl. */
int gemm_grouped_cuda_create(struct gemm_grouped_cuda **out, enum gemm_impl impl,
			     const struct gemm_grouped_inputs *in, void *stream)
{
	struct gemm_grouped_cuda *g = NULL;
	const char *rule = NULL;
	int err = MB_ERR_ARG;

	*out = NULL;
	if (in->groups < 1) {
		rule = "groups must be positive";
		goto out;
	}
	err = MB_ERR_NOMEM;
	g = calloc(1, sizeof(*g));
	if (!g)
		goto out;
	g->impl = impl;
	g->groups = in->groups;
	g->n = in->n;
	g->row0 = calloc((size_t)in->groups, sizeof(int));
	g->padded = calloc((size_t)in->groups, sizeof(int));
	g->plans = calloc((size_t)in->groups, sizeof(*g->plans));
	if (!g->row0 || !g->padded || !g->plans)
		goto out;
	rule = grouped_rule(in, g->row0, g->padded);
	if (!rule && impl != GEMM_IMPL_V1 && impl != GEMM_IMPL_CUBLASLT)
		rule = "impl must be v1 or cublaslt";
	err = rule ? MB_ERR_ARG : MB_OK;
	if (!err && impl == GEMM_IMPL_V1)
		err = gemm_v1_grouped_create(&g->v1, in, stream);
	for (int e = 0; !err && impl == GEMM_IMPL_CUBLASLT && e < g->groups; e++)
		if (g->padded[e])
			err = grouped_plan_expert(g, e, in, stream);
out:
	if (rule)
		fprintf(stderr, "gemm grouped: %s\n", rule);
	if (err)
		gemm_grouped_cuda_destroy(g);
	else
		*out = g;
	return err;
}

/* gemm_grouped_cuda_poison sets all of D to NaN. */
int gemm_grouped_cuda_poison(struct gemm_grouped_cuda *g)
{
	int err = MB_OK;

	if (g->impl == GEMM_IMPL_V1)
		return gemm_v1_poison(g->v1);
	for (int e = 0; !err && e < g->groups; e++)
		if (g->plans[e])
			err = gemm_cuda_poison(g->plans[e]);
	return err;
}

/* gemm_grouped_cuda_run enqueues the one launch (V1) or the loop of plans (CUBLASLT). */
int gemm_grouped_cuda_run(struct gemm_grouped_cuda *g)
{
	int err = MB_OK;

	if (g->impl == GEMM_IMPL_V1)
		return gemm_v1_run(g->v1);
	for (int e = 0; !err && e < g->groups; e++)
		if (g->plans[e])
			err = gemm_cuda_run(g->plans[e]);
	return err;
}

/* gemm_grouped_cuda_download waits and copies D [sum of padded rows, n] into d. */
int gemm_grouped_cuda_download(struct gemm_grouped_cuda *g, float *d)
{
	int err = MB_OK;

	if (g->impl == GEMM_IMPL_V1)
		return gemm_v1_download(g->v1, d);
	for (int e = 0; !err && e < g->groups; e++)
		if (g->plans[e])
			err = gemm_cuda_download(g->plans[e], d + (size_t)g->row0[e] * g->n);
	return err;
}

/* gemm_grouped_cuda_destroy frees g and its plans; NULL is fine. */
void gemm_grouped_cuda_destroy(struct gemm_grouped_cuda *g)
{
	if (!g)
		return;
	gemm_v1_destroy(g->v1);
	for (int e = 0; g->plans && e < g->groups; e++)
		gemm_cuda_destroy(g->plans[e]);
	free(g->plans);
	free(g->row0);
	free(g->padded);
	free(g);
}
