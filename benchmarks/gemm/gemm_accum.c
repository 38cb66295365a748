/*
 * gemm_accum.c - `moebench gemm --accum-study`: the FP8 accumulation-precision study.
 *
 * On every backend: the CPU emulation of a limited-precision accumulator, with and
 * without promotion every 128 K (benchmarks/gemm/accum_study.c). On CUDA, the same question put
 * to the hardware: for K = 256 ... 16384, one E4M3 per-tensor-scaled GEMM of positive
 * inputs (uniform [0,1), so no cancellation hides the error) through cuBLASLt without
 * and with CUBLASLT_MATMUL_DESC_FAST_ACCUM, and through our v1 with promotion every 128 K
 * and without, each against the FP64 product of the same quantized inputs.
 * The errors are what is measured, not a defect: the table goes to the summary, and
 * only a non-finite output fails the command.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accum_study.h"
#include "gemm.h"
#include "gemm_bench.h"
#include "rng.h"
#include "status.h"

#define STUDY_MN 128  /* v1 needs N % 128 == 0 */

struct gpu_variant {
	enum gemm_impl impl;
	bool fast;
	const char *label;
};

static const struct gpu_variant variants[] = {
	{ GEMM_IMPL_CUBLASLT, false, "cublaslt" },
	{ GEMM_IMPL_CUBLASLT, true, "cublaslt+fast" },
	{ GEMM_IMPL_V1, false, "v1_promote128" },
	{ GEMM_IMPL_V1, true, "v1_no_promotion" },
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

/* quantized_uniform makes a [rows, k] E4M3 per-tensor matrix of uniform [0,1) values. */
static int quantized_uniform(struct fp8_matrix *m, int rows, int k, uint64_t seed,
			     uint64_t stream)
{
	struct mb_rng rng;
	float *x = malloc((size_t)rows * (size_t)k * sizeof(float));
	int err = x ? fp8_matrix_alloc(m, rows, k, FP8_E4M3, FP8_PER_TENSOR) : MB_ERR_NOMEM;
	if (!err) {
		mb_rng_seed(&rng, seed, stream);
		mb_rng_fill_uniform_f32(&rng, x, (size_t)rows * (size_t)k, 0.0f, 1.0f);
		err = fp8_quantize(x, m, false);
	}
	free(x);
	return err;
}

/* run_variant runs one GEMM through a variant and measures it against ref. */
static int run_variant(const struct gpu_variant *v, const struct gemm_inputs *in,
		       const double *ref, void *stream, struct gemm_err *e)
{
	struct gemm_cuda *g = NULL;
	float *d = malloc((size_t)in->m * (size_t)in->n * sizeof(float));
	int err = d ? gemm_cuda_create(&g, GEMM_FP8_TENSOR, v->impl, v->fast, in, stream) : MB_ERR_NOMEM;
	if (!err)
		err = gemm_cuda_poison(g);
	if (!err)
		err = gemm_cuda_run(g);
	if (!err)
		err = gemm_cuda_download(g, d);
	if (!err)
		gemm_compare(d, 0, ref, (size_t)in->m * (size_t)in->n, e);
	gemm_cuda_destroy(g);
	free(d);
	return err;
}

/* study_k measures every variant at one K; appends a line and figures. */
static int study_k(struct run_ctx *ctx, int k, cJSON *lines, cJSON *figs, int *nonfinite)
{
	struct fp8_matrix a = { 0 }, b = { 0 };
	double *ref = malloc((size_t)STUDY_MN * STUDY_MN * sizeof(double));
	char line[512];
	int err = ref ? quantized_uniform(&a, STUDY_MN, k, ctx->opts->seed, 501) : MB_ERR_NOMEM;
	if (!err)
		err = quantized_uniform(&b, STUDY_MN, k, ctx->opts->seed, 502);
	if (!err)
		err = gemm_fp8_ref(&a, &b, ref);
	int used = snprintf(line, sizeof(line), "  %6d", k);
	struct gemm_inputs in = { STUDY_MN, STUDY_MN, k, NULL, NULL, &a, &b };
	for (size_t i = 0; i < N_VARIANTS && !err; i++) {
		struct gemm_err e;
		err = run_variant(&variants[i], &in, ref, ctx->backend->stream, &e);
		if (err)
			break;
		*nonfinite += (int)e.nonfinite;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "k", k);
		cJSON_AddStringToObject(o, "variant", variants[i].label);
		cJSON_AddNumberToObject(o, "max_rel_err", e.max_rel);
		cJSON_AddNumberToObject(o, "mean_rel_err", e.mean_rel);
		cJSON_AddItemToArray(figs, o);
		used += snprintf(line + used, sizeof(line) - (size_t)used, "  %9.3e %9.3e", e.max_rel, e.mean_rel);
	}
	if (!err)
		cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
	free(ref);
	return err;
}

/* gpu_study runs the hardware table into doc["summary"]["gemm_accum_gpu"]. */
static int gpu_study(struct run_ctx *ctx, int k_min, int k_max)
{
	cJSON *summary = cJSON_GetObjectItem(ctx->doc, "summary");
	if (!summary)
		summary = cJSON_AddObjectToObject(ctx->doc, "summary");
	cJSON *s = cJSON_AddObjectToObject(summary, "gemm_accum_gpu");
	cJSON *lines = cJSON_AddArrayToObject(s, "lines");
	cJSON *figs = cJSON_AddArrayToObject(s, "points");
	char head[512];
	int used = snprintf(head, sizeof(head), "       K");
	for (size_t i = 0; i < N_VARIANTS; i++)
		used += snprintf(head + used, sizeof(head) - (size_t)used, "  %19s", variants[i].label);
	cJSON_AddItemToArray(lines, cJSON_CreateString(
		"FP8 accumulation on this GPU: e4m3 per-tensor, M=N=128, inputs uniform[0,1); "
		"max and mean relative error vs the FP64 product of the same quantized inputs"));
	cJSON_AddItemToArray(lines, cJSON_CreateString(head));
	int nonfinite = 0, err = MB_OK;
	for (int k = k_min; k <= k_max && !err; k *= 2) {
		cli_note(ctx->opts->quiet, "gemm: accumulation study on the GPU, K = %d", k);
		err = study_k(ctx, k, lines, figs, &nonfinite);
	}
	if (!err && nonfinite)
		ctx->failures++;
	return err;
}

/* emulation_study runs the CPU emulation table, keeping its text as summary lines so
 * stdout shows it in the text format and stays clean JSON/CSV otherwise. */
static int emulation_study(struct run_ctx *ctx, const struct accum_study_opts *o)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return MB_ERR_NOMEM;
	int err = accum_study_run(o, ctx->doc, mem);
	fclose(mem);
	cJSON *summary = cJSON_GetObjectItem(ctx->doc, "summary");
	if (!summary)
		summary = cJSON_AddObjectToObject(ctx->doc, "summary");
	cJSON *lines = cJSON_AddArrayToObject(cJSON_AddObjectToObject(summary, "gemm_accum_emulated"), "lines");
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	free(text);
	return err;
}

int gemm_accum_study(struct run_ctx *ctx, const char *csv_path, const char *dist)
{
	struct accum_study_opts o;
	accum_study_defaults(&o);
	o.seed = ctx->opts->seed;
	o.csv_path = csv_path;
	o.force = ctx->opts->force;
	if (dist && accum_study_dist_parse(dist, &o.dist)) {
		cli_error("--accum-dist takes uniform, abs-normal or normal", "--accum-dist: '%s'", dist);
		return MB_ERR_ARG;
	}
	int err = emulation_study(ctx, &o);
	if (err == MB_ERR_EXISTS)
		return MB_ERR_ARG;
	if (!err && ctx->backend->kind == BACKEND_CUDA)
		err = gpu_study(ctx, o.k_min, o.k_max);
	return err;
}
