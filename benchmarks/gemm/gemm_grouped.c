/*
 * gemm_grouped.c - `moebench gemm --grouped G`: the routed experts of a preset's MoE
 * layer as grouped GEMMs, the way one GPU under expert parallelism runs them.
 *
 * G local experts (EP = experts / G) each get the layer's average tokens per expert,
 * their rows stacked and padded to 128 (the layout dispatch produces), weights stacked
 * [G*N, K]; FP8 with 1x128 activation and 128x128 weight scales. Implementations:
 *   v1        one launch of our kernel over all G experts
 *   cublaslt  a loop of G cuBLASLt block-scaled GEMMs
 *   cpu       a loop of G OpenBLAS SGEMMs on the dequantized inputs
 * Forward and dgrad group along M (tokens); wgrad groups along K and is not a grouped
 * GEMM of this layout, so it is left to the per-expert records. The check is the
 * per-expert one: sampled outputs of every expert against FP64 references.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "gemm_bench.h"
#include "hardware.h"
#include "rng.h"
#include "status.h"

struct grouped_case {
	enum gemm_impl impl;
	int groups, per, padded_per, n, k, samples;
	long cover;                /* checked outputs that cover every expert's 16x16 tiles */
	uint64_t seed, stream;      /* stream: from the shape's label, fresh inputs per GEMM */
	int *rows;
	float *a, *b;              /* FP32 [groups*padded_per, k] (zero padding), [groups*n, k] */
	struct fp8_matrix a8, b8;
	float *a_in, *b_in;        /* CPU path: dequantized */
	float *d;                  /* [groups*padded_per, n] */
	struct gemm_grouped_cuda *plan;
	struct gemm_errors err;
};

static void grouped_destroy(void *state)
{
	struct grouped_case *g = state;
	if (!g)
		return;
	gemm_grouped_cuda_destroy(g->plan);
	fp8_matrix_free(&g->a8);
	fp8_matrix_free(&g->b8);
	free(g->rows);
	free(g->a);
	free(g->b);
	free(g->a_in);
	free(g->b_in);
	free(g->d);
	free(g);
}

/* fill_inputs draws N(0,1) tokens and weights (padding rows stay zero) and quantizes. */
static int fill_inputs(struct grouped_case *g)
{
	struct mb_rng rng;
	size_t k = (size_t)g->k;
	mb_rng_seed(&rng, g->seed, g->stream);
	for (int e = 0; e < g->groups; e++)
		for (size_t i = 0; i < (size_t)g->per * k; i++)
			g->a[(size_t)e * (size_t)g->padded_per * k + i] = (float)mb_rng_normal(&rng);
	for (size_t i = 0; i < (size_t)g->groups * (size_t)g->n * k; i++)
		g->b[i] = (float)mb_rng_normal(&rng);
	int err = fp8_matrix_alloc(&g->a8, g->groups * g->padded_per, g->k, FP8_E4M3, FP8_PER_1X128);
	if (!err)
		err = fp8_matrix_alloc(&g->b8, g->groups * g->n, g->k, FP8_E4M3, FP8_PER_128X128);
	if (!err)
		err = fp8_quantize(g->a, &g->a8, false);
	if (!err)
		err = fp8_quantize(g->b, &g->b8, false);
	return err;
}

static int grouped_poison(void *state)
{
	struct grouped_case *g = state;
	memset(g->d, 0xff, (size_t)g->groups * (size_t)g->padded_per * (size_t)g->n * sizeof(float));
	return g->plan ? gemm_grouped_cuda_poison(g->plan) : MB_OK;
}

static int grouped_run(void *state)
{
	struct grouped_case *g = state;
	if (g->plan)
		return gemm_grouped_cuda_run(g->plan);
	size_t k = (size_t)g->k, rows = (size_t)g->padded_per;
	for (int e = 0; e < g->groups; e++)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->padded_per, g->n, g->k, 1.0f,
			    g->a_in + (size_t)e * rows * k, g->k, g->b_in + (size_t)e * (size_t)g->n * k,
			    g->k, 0.0f, g->d + (size_t)e * rows * (size_t)g->n, g->n);
	return MB_OK;
}

/* grouped_tiles returns the 16x16 output tiles of one expert's real rows. */
static long grouped_tiles(const struct grouped_case *g)
{
	return (long)((g->per + GEMM_CHECK_TILE - 1) / GEMM_CHECK_TILE) *
	       ((g->n + GEMM_CHECK_TILE - 1) / GEMM_CHECK_TILE);
}

/* grouped_pick picks checked output t: one in every 16x16 tile of every expert's real
 * rows, expert by expert; then random ones (an expert, a real row, a column), the first
 * expert's first and the last expert's last output first. */
static void grouped_pick(const void *ctx, int t, struct mb_rng *rng, size_t *ia, size_t *ib,
			 double *d)
{
	const struct grouped_case *g = ctx;
	size_t e, i, j, tn = ((size_t)g->n + GEMM_CHECK_TILE - 1) / GEMM_CHECK_TILE;
	long r = t - g->cover;
	if (t < g->cover) {
		size_t tt = (size_t)(t % grouped_tiles(g));
		e = (size_t)(t / grouped_tiles(g));
		i = gemm_check_in_tile(g->seed ^ e, tt / tn, tt / tn, (size_t)g->per);
		j = gemm_check_in_tile(g->seed ^ 0x5bd1e995u, tt % tn, tt % tn, (size_t)g->n);
	} else {
		e = r == 0 ? 0 : r == 1 ? (size_t)g->groups - 1 : mb_rng_next(rng) % (size_t)g->groups;
		i = r == 0 ? 0 : r == 1 ? (size_t)g->per - 1 : mb_rng_next(rng) % (size_t)g->per;
		j = r == 0 ? 0 : r == 1 ? (size_t)g->n - 1 : mb_rng_next(rng) % (size_t)g->n;
	}
	*ia = e * (size_t)g->padded_per + i;
	*ib = e * (size_t)g->n + j;
	*d = g->d[*ia * (size_t)g->n + j];
}

/* grouped_row writes a row of the stacked A or B, as seen (dequantized) or raw. */
static void grouped_row(const void *ctx, bool is_a, bool seen, size_t r, float *dst)
{
	const struct grouped_case *g = ctx;
	const struct fp8_matrix *m = is_a ? &g->a8 : &g->b8;
	const float *raw = (is_a ? g->a : g->b) + r * (size_t)g->k;
	for (int c = 0; c < g->k; c++)
		dst[c] = !seen ? raw[c] : fp8_decode(m->q[r * (size_t)g->k + (size_t)c], m->format) *
					  fp8_scale_of(m, (int)r, c);
}

static double grouped_tol_arith(const struct grouped_case *g)
{
	return g->impl == GEMM_IMPL_CPU ? TOL_ARITH_FP32_OUT : TOL_ARITH_BF16_OUT;
}

static int grouped_check(void *state, struct bench_check *chk)
{
	struct grouped_case *g = state;
	int err = g->plan ? gemm_grouped_cuda_download(g->plan, g->d) : MB_OK;
	if (err)
		return err;
	g->cover = (long)g->groups * grouped_tiles(g);
	/* NOTE: the test-only hook damages the last expert's block (gemm_corrupt.c). */
	gemm_test_corrupt(g->d + (size_t)(g->groups - 1) * (size_t)g->padded_per * (size_t)g->n,
			  g->padded_per, g->n, g->per, g->n, g->k);
	int n = (int)(g->cover + g->samples);
	struct gemm_sampler sm = { g, g->k, n, g->seed, grouped_tol_arith(g), grouped_pick,
				   grouped_row };
	gemm_sample_errors(&sm, &g->err);
	gemm_errors_to_check(&g->err, grouped_tol_arith(g), TOL_QUANT_FP8, n, chk);
	return MB_OK;
}

static int grouped_annotate(void *state, cJSON *rec)
{
	struct grouped_case *g = state;
	char how[96];
	snprintf(how, sizeof(how), "one per %dx%d tile of every expert + %d random",
		 GEMM_CHECK_TILE, GEMM_CHECK_TILE, g->samples);
	if (!cJSON_AddStringToObject(cJSON_GetObjectItem(rec, "check"), "coverage", how))
		return MB_ERR_NOMEM;
	return gemm_errors_annotate(&g->err, grouped_tol_arith(g), TOL_QUANT_FP8, rec);
}

/* grouped_make allocates and fills a case; the CPU path also dequantizes. */
static int grouped_make(struct run_ctx *ctx, const struct gemm_shape *s, int groups,
			enum gemm_impl impl, int samples, struct grouped_case **out)
{
	struct grouped_case *g = calloc(1, sizeof(*g));
	if (!g)
		return MB_ERR_NOMEM;
	*g = (struct grouped_case){ .impl = impl, .groups = groups, .per = s->m,
				    .padded_per = (s->m + FP8_TILE - 1) / FP8_TILE * FP8_TILE,
				    .n = s->n, .k = s->k, .samples = samples, .seed = ctx->opts->seed };
	/* FNV-1a of the label (and pass): each grouped GEMM draws its own inputs. */
	g->stream = 1469598103934665603ULL;
	for (const char *c = s->label; *c; c++)
		g->stream = (g->stream ^ (unsigned char)*c) * 1099511628211ULL;
	size_t ra = (size_t)groups * (size_t)g->padded_per, rb = (size_t)groups * (size_t)s->n;
	g->rows = malloc((size_t)groups * sizeof(int));
	g->a = calloc(ra * (size_t)s->k, sizeof(float));
	g->b = malloc(rb * (size_t)s->k * sizeof(float));
	g->d = malloc(ra * (size_t)s->n * sizeof(float));
	int err = g->rows && g->a && g->b && g->d ? fill_inputs(g) : MB_ERR_NOMEM;
	for (int e = 0; !err && e < groups; e++)
		g->rows[e] = s->m;
	if (!err && impl == GEMM_IMPL_CPU) {
		g->a_in = malloc(ra * (size_t)s->k * sizeof(float));
		g->b_in = malloc(rb * (size_t)s->k * sizeof(float));
		err = g->a_in && g->b_in ? MB_OK : MB_ERR_NOMEM;
		if (!err) {
			fp8_dequantize(&g->a8, g->a_in);
			fp8_dequantize(&g->b8, g->b_in);
		}
	} else if (!err) {
		struct gemm_grouped_inputs in = { groups, s->n, s->k, g->rows, &g->a8, &g->b8 };
		err = gemm_grouped_cuda_create(&g->plan, impl, &in, ctx->backend->stream);
	}
	if (err) {
		grouped_destroy(g);
		return err;
	}
	*out = g;
	return MB_OK;
}

/* grouped_params describes the case in its record. */
static cJSON *grouped_params(const struct gemm_shape *s, const struct grouped_case *g)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "layer", "moe.grouped");
	cJSON_AddStringToObject(p, "gemm", s->label);
	cJSON_AddStringToObject(p, "pass", s->pass);
	cJSON_AddNumberToObject(p, "groups", g->groups);
	cJSON_AddNumberToObject(p, "m", s->m);
	cJSON_AddNumberToObject(p, "m_padded", g->padded_per);
	cJSON_AddNumberToObject(p, "n", s->n);
	cJSON_AddNumberToObject(p, "k", s->k);
	/* NOTE: count is how many such groups make the layer's routed experts. */
	cJSON_AddNumberToObject(p, "count", (double)(s->count / g->groups));
	cJSON_AddStringToObject(p, "dtype", gemm_kind_name(GEMM_FP8_BLOCK));
	cJSON_AddStringToObject(p, "impl", gemm_impl_name(g->impl));
	cJSON_AddBoolToObject(p, "fast_accum", false);
	cJSON_AddStringToObject(p, "scaling", "a:1x128,b:128x128");
	cJSON_AddStringToObject(p, "launch", g->impl == GEMM_IMPL_V1 ? "one launch for all experts" :
				"one GEMM per expert, in a loop");
	return p;
}

int gemm_run_grouped(struct run_ctx *ctx, const struct gemm_shape *s, int groups,
		     enum gemm_impl impl, int samples, double measured_peak, bool *skipped)
{
	struct bench_case c = { .peak = NAN };
	struct grouped_case *g = NULL;
	*skipped = false;
	int err = grouped_make(ctx, s, groups, impl, samples, &g);
	if (err == MB_ERR_ARG || err == MB_ERR_UNSUPPORTED) {
		cli_note(ctx->opts->quiet, "gemm: grouped %s on %s: not taken (%s), skipped", s->label,
			 gemm_impl_name(impl), mb_status_str(err));
		*skipped = true;
		return MB_OK;
	}
	if (err)
		return err;
	snprintf(c.name, sizeof(c.name), "moe.grouped/%s/G%d_M%d_N%d_K%d/fp8-block/%s", s->label,
		 groups, s->m, s->n, s->k, gemm_impl_name(impl));
	c.params = grouped_params(s, g);
	c.flops = 2.0 * groups * (double)s->m * (double)s->n * (double)s->k;
	if (ctx->backend->kind == BACKEND_CUDA) {
		const struct hardware_spec *hw = hardware_match(ctx->backend->dev.name);
		c.peak = hw ? hw->peak_fp8_tflops : NAN;
		c.peak_source = hw ? hw->source : NULL;
	}
	c.measured_peak = measured_peak;
	c.state = g;
	c.poison = grouped_poison;
	c.run = grouped_run;
	c.check = grouped_check;
	c.annotate = grouped_annotate;
	c.destroy = grouped_destroy;
	return driver_run_case(ctx, &c);
}
