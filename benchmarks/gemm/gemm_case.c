/*
 * gemm_case.c - one measured GEMM of `moebench gemm`: inputs, the CPU and CUDA
 * implementations behind one set of callbacks, and the check with its two errors.
 *
 * Check: every output element where M*N*K <= GEMM_FULL_CHECK_FMA (the references are
 * cheap there); above, one element in every 16x16 output tile (so a wrong tile cannot
 * hide) plus S random ones (corners included). For each, two FP64 references are
 * computed on the host by plain loops (never the BLAS under test),
 *   arithmetic: from the inputs the implementation saw (BF16-rounded or dequantized FP8)
 *   quantization: from the unquantized FP32 inputs
 * and each error is |d - ref| / rms(ref over the samples): relative to the typical
 * output magnitude, so cancellation to near zero in one element cannot dominate.
 * Pass: arithmetic max within its tolerance and quantization mean within its own.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "bf16.h"
#include "gemm_bench.h"
#include "hardware.h"
#include "rng.h"
#include "status.h"


struct gemm_case {
	const struct gemm_shape_data *sd;
	struct gemm_shape_data *padded;  /* owned zero-padded inputs, when padded */
	const struct gemm_shape *logical; /* the shape as asked (before any padding) */
	int lm, ln;                     /* the logical M and N the check samples */
	enum gemm_kind kind;
	enum gemm_impl impl;
	bool fast_accum;
	int m, n, k, samples;
	long cover;                     /* checked elements before the random ones */
	bool full;                      /* every element is checked */
	float *bcache;                  /* per 16-column tile, B's sampled row as seen */
	size_t *bcol;                   /* which row each bcache slot holds (SIZE_MAX: none) */
	uint64_t seed;
	struct gemm_cuda *plan;         /* CUDA implementations */
	float *a_in, *b_in;             /* CPU implementation: the inputs it multiplies */
	float *d;                       /* host output [m, n] */
	struct gemm_errors err;
	double tol_arith, tol_quant;
};

/* ---- inputs ---- */

/* fill_normal fills x with N(0,1) values. NOTE: chunks of 2^16 elements each draw
 * from their own stream, so the values depend on (seed, stream) only, not on the
 * number of threads that filled them. */
static int fill_normal(float *x, size_t n, uint64_t seed, uint64_t stream)
{
	const size_t chunk = (size_t)1 << 16;
	long chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
	for (long c = 0; c < chunks; c++) {
		struct mb_rng rng;
		mb_rng_seed(&rng, seed, (stream << 32) + (uint64_t)c);
		size_t end = ((size_t)c + 1) * chunk < n ? ((size_t)c + 1) * chunk : n;
		for (size_t i = (size_t)c * chunk; i < end; i++)
			x[i] = (float)mb_rng_normal(&rng);
	}
	return MB_OK;
}

/* quantize_inputs quantizes A and B for the kinds requested. */
static int quantize_inputs(struct gemm_shape_data *sd, bool tensor, bool block)
{
	const struct gemm_shape *s = sd->shape;
	int err = MB_OK;
	if (tensor) {
		err = fp8_matrix_alloc(&sd->a_tensor, s->m, s->k, FP8_E4M3, FP8_PER_TENSOR);
		if (!err)
			err = fp8_matrix_alloc(&sd->b_tensor, s->n, s->k, FP8_E4M3, FP8_PER_TENSOR);
		if (!err)
			err = fp8_quantize(sd->a, &sd->a_tensor, false);
		if (!err)
			err = fp8_quantize(sd->b, &sd->b_tensor, false);
		sd->have_tensor = !err;
	}
	if (!err && block) {
		err = fp8_matrix_alloc(&sd->a_block, s->m, s->k, FP8_E4M3, FP8_PER_1X128);
		if (!err)
			err = fp8_matrix_alloc(&sd->b_block, s->n, s->k, FP8_E4M3, FP8_PER_128X128);
		if (!err)
			err = fp8_quantize(sd->a, &sd->a_block, false);
		if (!err)
			err = fp8_quantize(sd->b, &sd->b_block, false);
		sd->have_block = !err;
	}
	return err;
}

int gemm_shape_data_make(struct gemm_shape_data *sd, const struct gemm_shape *s,
			 uint64_t seed, uint64_t index, bool tensor, bool block)
{
	size_t na = (size_t)s->m * (size_t)s->k, nb = (size_t)s->n * (size_t)s->k;
	memset(sd, 0, sizeof(*sd));
	sd->shape = s;
	sd->a = malloc(na * sizeof(float));
	sd->b = malloc(nb * sizeof(float));
	if (!sd->a || !sd->b)
		return MB_ERR_NOMEM;
	fill_normal(sd->a, na, seed, 1000 + 2 * index);
	fill_normal(sd->b, nb, seed, 1001 + 2 * index);
	return quantize_inputs(sd, tensor, block);
}

/* pad_copy copies a [rows, cols] matrix into a zeroed [prows, pcols] one. */
static float *pad_copy(const float *x, int rows, int cols, int prows, int pcols)
{
	float *p = calloc((size_t)prows * (size_t)pcols, sizeof(float));
	for (int r = 0; p && r < rows; r++)
		memcpy(p + (size_t)r * (size_t)pcols, x + (size_t)r * (size_t)cols,
		       (size_t)cols * sizeof(float));
	return p;
}

/* round_up returns x rounded up to a multiple of m. */
static int round_up(int x, int m)
{
	return (x + m - 1) / m * m;
}

/* padded_free frees a copy made by gemm_shape_data_pad: its arrays, its own shape (read
 * before gemm_shape_data_free clears the struct) and itself. */
static void padded_free(struct gemm_shape_data *pd)
{
	if (!pd)
		return;
	struct gemm_shape *shape = (struct gemm_shape *)pd->shape;
	gemm_shape_data_free(pd);
	free(shape);
	free(pd);
}

int gemm_shape_data_pad(const struct gemm_shape_data *sd, int mult, bool tensor, bool block,
			struct gemm_shape_data **out)
{
	const struct gemm_shape *s = sd->shape;
	struct gemm_shape *ps = malloc(sizeof(*ps));
	struct gemm_shape_data *pd = calloc(1, sizeof(*pd));
	int err = ps && pd ? MB_OK : MB_ERR_NOMEM;
	*out = NULL;
	if (pd)
		pd->shape = ps;  /* owned by the copy from here on: padded_free frees it */
	if (!err) {
		*ps = *s;
		ps->m = round_up(s->m, mult), ps->n = round_up(s->n, mult), ps->k = round_up(s->k, mult);
		/* NOTE: zeros change no tile's amax, so every real element keeps its scale
		 * and code, and the products over the padding are exactly zero. */
		pd->a = pad_copy(sd->a, s->m, s->k, ps->m, ps->k);
		pd->b = pad_copy(sd->b, s->n, s->k, ps->n, ps->k);
		err = pd->a && pd->b ? quantize_inputs(pd, tensor, block) : MB_ERR_NOMEM;
	}
	if (err) {
		if (pd)
			padded_free(pd);
		else
			free(ps);
		return err;
	}
	*out = pd;
	return MB_OK;
}

void gemm_shape_data_free(struct gemm_shape_data *sd)
{
	free(sd->a);
	free(sd->b);
	if (sd->have_tensor || sd->a_tensor.q) {
		fp8_matrix_free(&sd->a_tensor);
		fp8_matrix_free(&sd->b_tensor);
	}
	if (sd->have_block || sd->a_block.q) {
		fp8_matrix_free(&sd->a_block);
		fp8_matrix_free(&sd->b_block);
	}
	memset(sd, 0, sizeof(*sd));
}


/* operands returns the quantized operands of a kind (NULL for BF16). */
static void operands(const struct gemm_shape_data *sd, enum gemm_kind kind,
		     const struct fp8_matrix **a8, const struct fp8_matrix **b8)
{
	*a8 = kind == GEMM_FP8_TENSOR ? &sd->a_tensor : kind == GEMM_FP8_BLOCK ? &sd->a_block : NULL;
	*b8 = kind == GEMM_FP8_TENSOR ? &sd->b_tensor : kind == GEMM_FP8_BLOCK ? &sd->b_block : NULL;
}

/* seen_inputs fills a_in, b_in with the operands as the implementation sees them:
 * BF16-rounded, or dequantized FP8 (decode * scale, rounded once to FP32). The CPU
 * implementation multiplies these; the arithmetic reference sums their products. */
static int seen_inputs(struct gemm_case *g)
{
	const struct fp8_matrix *a8, *b8;
	size_t na = (size_t)g->m * (size_t)g->k, nb = (size_t)g->n * (size_t)g->k;
	g->a_in = malloc(na * sizeof(float));
	g->b_in = malloc(nb * sizeof(float));
	if (!g->a_in || !g->b_in)
		return MB_ERR_NOMEM;
	operands(g->sd, g->kind, &a8, &b8);
	if (g->kind != GEMM_BF16) {
		fp8_dequantize(a8, g->a_in);
		fp8_dequantize(b8, g->b_in);
		return MB_OK;
	}
	for (size_t i = 0; i < na; i++)
		g->a_in[i] = bf16_round(g->sd->a[i]);
	for (size_t i = 0; i < nb; i++)
		g->b_in[i] = bf16_round(g->sd->b[i]);
	return MB_OK;
}

/* ---- the case's callbacks ---- */

static int case_poison(void *state)
{
	struct gemm_case *g = state;
	memset(g->d, 0xff, (size_t)g->m * (size_t)g->n * sizeof(float));
	return g->plan ? gemm_cuda_poison(g->plan) : MB_OK;
}

static int case_run(void *state)
{
	struct gemm_case *g = state;
	if (g->plan)
		return gemm_cuda_run(g->plan);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->m, g->n, g->k, 1.0f, g->a_in,
		    g->k, g->b_in, g->k, 0.0f, g->d, g->n);
	return MB_OK;
}

/* seen_row writes row r of A (is_a) or B as the implementation sees it into dst[k]:
 * from a_in/b_in when the CPU path built them, else straight from the codes and
 * scales (or by BF16 rounding), so a GPU case never dequantizes whole operands. */
static void seen_row(const struct gemm_case *g, bool is_a, size_t r, float *dst)
{
	const float *full = is_a ? g->a_in : g->b_in;
	const float *x = (is_a ? g->sd->a : g->sd->b) + r * (size_t)g->k;
	const struct fp8_matrix *a8, *b8;
	if (full) {
		memcpy(dst, full + r * (size_t)g->k, (size_t)g->k * sizeof(float));
		return;
	}
	operands(g->sd, g->kind, &a8, &b8);
	const struct fp8_matrix *m = is_a ? a8 : b8;
	for (int c = 0; c < g->k; c++)
		dst[c] = m ? fp8_decode(m->q[r * (size_t)g->k + (size_t)c], m->format) *
			     fp8_scale_of(m, (int)r, c)
			   : bf16_round(x[c]);
}

/* dot64 returns sum_k x[k] * y[k] in FP64. */
static double dot64(const float *x, const float *y, int k)
{
	double s = 0;
	for (int i = 0; i < k; i++)
		s += (double)x[i] * (double)y[i];
	return s;
}

void gemm_sample_errors(const struct gemm_sampler *sm, struct gemm_errors *e)
{
	struct mb_rng rng;
	int s = sm->samples;
	double *rq = malloc(3 * (size_t)s * sizeof(double)), *ru = rq ? rq + s : NULL;
	double *dv = rq ? rq + 2 * s : NULL, ssq_q = 0, ssq_u = 0;
	float *ra = malloc(4 * (size_t)sm->k * sizeof(float)), *rb = ra ? ra + sm->k : NULL;
	float *ua = ra ? ra + 2 * sm->k : NULL, *ub = ra ? ra + 3 * sm->k : NULL;
	size_t last_a = SIZE_MAX;
	*e = (struct gemm_errors){ INFINITY, INFINITY, INFINITY, INFINITY, 0, 0 };
	if (!rq || !ra)
		goto out;
	mb_rng_seed(&rng, sm->seed, 77);
	for (int t = 0; t < s; t++) {
		size_t ia, ib;
		sm->pick(sm->ctx, t, &rng, &ia, &ib, &dv[t]);
		/* NOTE: pickers visit a row of A many times in a row: build it once. */
		if (ia != last_a) {
			sm->row(sm->ctx, true, true, ia, ra);
			sm->row(sm->ctx, true, false, ia, ua);
			last_a = ia;
		}
		sm->row(sm->ctx, false, true, ib, rb);
		rq[t] = dot64(ra, rb, sm->k);
		sm->row(sm->ctx, false, false, ib, ub);
		ru[t] = dot64(ua, ub, sm->k);
		ssq_q += rq[t] * rq[t];
		ssq_u += ru[t] * ru[t];
	}
	double rms_q = sqrt(ssq_q / s), rms_u = sqrt(ssq_u / s);
	e->arith_max = e->quant_max = e->arith_mean = e->quant_mean = 0;
	for (int t = 0; t < s; t++) {
		double ea = fabs(dv[t] - rq[t]) / (rms_q > 0 ? rms_q : 1);
		double eq = fabs(dv[t] - ru[t]) / (rms_u > 0 ? rms_u : 1);
		if (!isfinite(dv[t])) {
			e->nonfinite++;
			ea = eq = INFINITY;
		}
		e->over += !(ea <= sm->tol_arith);
		e->arith_max = fmax(e->arith_max, ea);
		e->quant_max = fmax(e->quant_max, eq);
		e->arith_mean += ea / s;
		e->quant_mean += eq / s;
	}
out:
	free(rq);
	free(ra);
}

void gemm_errors_to_check(const struct gemm_errors *e, double tol_arith, double tol_quant,
			  int samples, struct bench_check *chk)
{
	chk->max_err = e->arith_max;
	chk->tolerance = tol_arith;
	chk->samples = samples;
	/* NOTE: a quantization error beyond its bound is a wrong scale, not noise. */
	chk->mismatches = e->over + (!(e->quant_mean <= tol_quant) && e->over == 0);
	chk->metric = "arith |d-ref|/rms(ref), ref from the dequantized inputs in FP64";
}

/* add_error adds {"max", "mean", "tolerance", "judged_on", "reference", "status"}. */
static void add_error(cJSON *errors, const char *name, double max, double mean, double tol,
		      const char *on, bool judged_on_mean)
{
	cJSON *e = cJSON_AddObjectToObject(errors, name);
	cJSON_AddNumberToObject(e, "max", isfinite(max) ? max : -1);
	cJSON_AddNumberToObject(e, "mean", isfinite(mean) ? mean : -1);
	cJSON_AddNumberToObject(e, "tolerance", tol);
	cJSON_AddStringToObject(e, "judged_on", judged_on_mean ? "mean" : "max");
	cJSON_AddStringToObject(e, "reference", on);
	cJSON_AddStringToObject(e, "status", (judged_on_mean ? mean : max) <= tol ? "pass" : "fail");
}

int gemm_errors_annotate(const struct gemm_errors *e, double tol_arith, double tol_quant,
			 cJSON *rec)
{
	cJSON *errors = cJSON_AddObjectToObject(rec, "errors");
	if (!errors)
		return MB_ERR_NOMEM;
	add_error(errors, "arithmetic", e->arith_max, e->arith_mean, tol_arith,
		  "FP64 product of the inputs as the implementation sees them", false);
	add_error(errors, "quantization", e->quant_max, e->quant_mean, tol_quant,
		  "FP64 product of the unquantized FP32 inputs", true);
	return MB_OK;
}

size_t gemm_check_in_tile(uint64_t seed, uint64_t key, size_t t, size_t len)
{
	uint64_t h = (seed ^ (key * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
	size_t w = len - t * GEMM_CHECK_TILE < GEMM_CHECK_TILE ? len - t * GEMM_CHECK_TILE
							      : GEMM_CHECK_TILE;
	return t * GEMM_CHECK_TILE + (size_t)((h ^ (h >> 31)) % w);
}

/* case_pick picks checked output t: every element in order (full), or one per 16x16
 * tile band by band; then the random ones, corners first, in the logical region. */
static void case_pick(const void *ctx, int t, struct mb_rng *rng, size_t *ia, size_t *ib,
		      double *d)
{
	const struct gemm_case *g = ctx;
	size_t tn = ((size_t)g->ln + GEMM_CHECK_TILE - 1) / GEMM_CHECK_TILE, i, j;
	long r = t - g->cover;
	if (t < g->cover && g->full) {
		i = (size_t)t / (size_t)g->ln;
		j = (size_t)t % (size_t)g->ln;
	} else if (t < g->cover) {
		i = gemm_check_in_tile(g->seed, (size_t)t / tn, (size_t)t / tn, (size_t)g->lm);
		j = gemm_check_in_tile(g->seed ^ 0x5bd1e995u, (size_t)t % tn, (size_t)t % tn, (size_t)g->ln);
	} else {
		i = r == 0 ? 0 : r == 1 ? (size_t)g->lm - 1 : mb_rng_next(rng) % (size_t)g->lm;
		j = r == 0 ? 0 : r == 1 ? (size_t)g->ln - 1 : mb_rng_next(rng) % (size_t)g->ln;
	}
	*ia = i;
	*ib = j;
	*d = g->d[i * (size_t)g->n + j];
}

/* cached_b_row serves B's row r as seen from bcache when its tile column's slot holds
 * it (filling an empty slot first); false when r is not the slot's row. NOTE: a GPU
 * case decodes a row from FP8 codes and scales each time: the cache keeps the tiled
 * check to one decode per column of tiles. */
static bool cached_b_row(const struct gemm_case *g, size_t r, float *dst)
{
	size_t slot = r / GEMM_CHECK_TILE, k = (size_t)g->k;
	if (!g->bcache || g->bcol[slot] != r) {
		if (!g->bcache || g->bcol[slot] != SIZE_MAX)
			return false;
		seen_row(g, false, r, g->bcache + slot * k);
		g->bcol[slot] = r;
	}
	memcpy(dst, g->bcache + slot * k, k * sizeof(float));
	return true;
}

/* case_row writes a row of A or B, as seen by the implementation or unquantized. */
static void case_row(const void *ctx, bool is_a, bool seen, size_t r, float *dst)
{
	const struct gemm_case *g = ctx;
	if (seen && !is_a && cached_b_row(g, r, dst))
		return;
	if (seen) {
		seen_row(g, is_a, r, dst);
		return;
	}
	memcpy(dst, (is_a ? g->sd->a : g->sd->b) + r * (size_t)g->k, (size_t)g->k * sizeof(float));
}

static int case_check(void *state, struct bench_check *chk)
{
	struct gemm_case *g = state;
	int err = g->plan ? gemm_cuda_download(g->plan, g->d) : MB_OK;
	if (err)
		return err;
	double fma = (double)g->lm * (double)g->ln * (double)g->k;
	size_t tiles = (((size_t)g->lm + GEMM_CHECK_TILE - 1) / GEMM_CHECK_TILE) *
		       (((size_t)g->ln + GEMM_CHECK_TILE - 1) / GEMM_CHECK_TILE);
	g->full = fma <= GEMM_FULL_CHECK_FMA;
	g->cover = g->full ? (long)g->lm * g->ln : (long)tiles;
	gemm_test_corrupt(g->d, g->m, g->n, g->lm, g->ln, g->k);
	size_t tn = ((size_t)g->ln + GEMM_CHECK_TILE - 1) / GEMM_CHECK_TILE;
	if (!g->full && !g->bcache) {
		g->bcache = malloc(tn * (size_t)g->k * sizeof(float));
		g->bcol = malloc(tn * sizeof(size_t));
		if (!g->bcache || !g->bcol)
			return MB_ERR_NOMEM;
		for (size_t c = 0; c < tn; c++)
			g->bcol[c] = SIZE_MAX;
	}
	int total = (int)(g->cover + (g->full ? 0 : g->samples));
	struct gemm_sampler sm = { g, g->k, total, g->seed, g->tol_arith, case_pick, case_row };
	gemm_sample_errors(&sm, &g->err);
	gemm_errors_to_check(&g->err, g->tol_arith, g->tol_quant, total, chk);
	return MB_OK;
}

static int case_annotate(void *state, cJSON *rec)
{
	struct gemm_case *g = state;
	char how[96];
	snprintf(how, sizeof(how), g->full ? "every output" : "one per %dx%d tile + %d random",
		 GEMM_CHECK_TILE, GEMM_CHECK_TILE, g->samples);
	if (!cJSON_AddStringToObject(cJSON_GetObjectItem(rec, "check"), "coverage", how))
		return MB_ERR_NOMEM;
	return gemm_errors_annotate(&g->err, g->tol_arith, g->tol_quant, rec);
}

static void case_destroy(void *state)
{
	struct gemm_case *g = state;
	if (!g)
		return;
	padded_free(g->padded);
	gemm_cuda_destroy(g->plan);
	free(g->a_in);
	free(g->b_in);
	free(g->d);
	free(g->bcache);
	free(g->bcol);
	free(g);
}

/* ---- building a case ---- */

/* case_params describes the case in its record. */
static cJSON *case_params(const struct gemm_case *g)
{
	const struct gemm_shape *s = g->logical;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "layer", s->layer);
	cJSON_AddStringToObject(p, "gemm", s->label);
	cJSON_AddStringToObject(p, "pass", s->pass);
	cJSON_AddNumberToObject(p, "m", s->m);
	cJSON_AddNumberToObject(p, "n", s->n);
	cJSON_AddNumberToObject(p, "k", s->k);
	cJSON_AddNumberToObject(p, "count", (double)s->count);
	cJSON_AddStringToObject(p, "dtype", gemm_kind_name(g->kind));
	cJSON_AddStringToObject(p, "impl", gemm_impl_name(g->impl));
	cJSON_AddBoolToObject(p, "fast_accum", g->fast_accum);
	cJSON_AddStringToObject(p, "scaling", g->kind == GEMM_FP8_BLOCK ? "a:1x128,b:128x128" :
					     g->kind == GEMM_FP8_TENSOR ? "per-tensor" : "none");
	if (g->padded) {
		char dims[64];
		snprintf(dims, sizeof(dims), "%dx%dx%d", g->m, g->n, g->k);
		cJSON_AddStringToObject(p, "padded_to", dims);
	}
	cJSON_AddStringToObject(p, "math", g->impl == GEMM_IMPL_CPU ?
				"OpenBLAS SGEMM on the dequantized inputs (FP32)" :
				"tensor cores, FP32 accumulation, BF16 output");
	return p;
}

/* case_peak returns the datasheet peak of the case's math, with its source. */
static double case_peak(const struct run_ctx *ctx, enum gemm_kind kind, const char **src)
{
	*src = NULL;
	if (ctx->backend->kind != BACKEND_CUDA)
		return NAN;
	const struct hardware_spec *hw = hardware_match(ctx->backend->dev.name);
	if (!hw)
		return NAN;
	*src = hw->source;
	return kind == GEMM_BF16 ? hw->peak_bf16_tflops : hw->peak_fp8_tflops;
}

/* case_make allocates the state and prepares the implementation. */
static int case_make(struct run_ctx *ctx, const struct gemm_shape_data *sd,
		     enum gemm_kind kind, enum gemm_impl impl, bool fast, int samples,
		     struct gemm_case **out)
{
	const struct gemm_shape *s = sd->shape;
	struct gemm_case *g = calloc(1, sizeof(*g));
	if (!g)
		return MB_ERR_NOMEM;
	*g = (struct gemm_case){ .sd = sd, .kind = kind, .impl = impl, .fast_accum = fast,
				 .m = s->m, .n = s->n, .k = s->k, .samples = samples,
				 .seed = ctx->opts->seed, .logical = s, .lm = s->m, .ln = s->n };
	g->tol_arith = impl == GEMM_IMPL_CPU ? TOL_ARITH_FP32_OUT :
		       (fast && kind != GEMM_BF16) ? TOL_ARITH_FAST : TOL_ARITH_BF16_OUT;
	g->tol_quant = kind == GEMM_BF16 ? TOL_QUANT_BF16 : TOL_QUANT_FP8;
	g->d = malloc((size_t)g->m * (size_t)g->n * sizeof(float));
	int err = g->d ? MB_OK : MB_ERR_NOMEM;
	if (!err && impl == GEMM_IMPL_CPU)
		err = seen_inputs(g);
	if (!err && impl != GEMM_IMPL_CPU) {
		const struct fp8_matrix *a8, *b8;
		operands(sd, kind, &a8, &b8);
		struct gemm_inputs in = { g->m, g->n, g->k, sd->a, sd->b, a8, b8 };
		err = gemm_cuda_create(&g->plan, kind, impl, fast, &in, ctx->backend->stream);
	}
	if (err) {
		case_destroy(g);
		return err;
	}
	*out = g;
	return MB_OK;
}

/* case_make_padded prepares the case on inputs zero-padded to multiples of mult. */
static int case_make_padded(struct run_ctx *ctx, const struct gemm_shape_data *sd,
			    enum gemm_kind kind, enum gemm_impl impl, bool fast, int samples,
			    int mult, struct gemm_case **out)
{
	struct gemm_shape_data *pd = NULL;
	int err = gemm_shape_data_pad(sd, mult, kind == GEMM_FP8_TENSOR, kind == GEMM_FP8_BLOCK, &pd);
	if (!err)
		err = case_make(ctx, pd, kind, impl, fast, samples, out);
	if (err) {
		padded_free(pd);
		return err;
	}
	(*out)->padded = pd;
	(*out)->logical = sd->shape;
	(*out)->lm = sd->shape->m;
	(*out)->ln = sd->shape->n;
	return MB_OK;
}

int gemm_run_case(struct run_ctx *ctx, const struct gemm_shape_data *sd, enum gemm_kind kind,
		  enum gemm_impl impl, bool fast_accum, int samples, double measured_peak,
		  int pad, bool *skipped)
{
	struct bench_case c = { .peak = NAN };
	struct gemm_case *g = NULL;
	const struct gemm_shape *s = sd->shape;
	*skipped = false;
	int err = pad > 0 ? case_make_padded(ctx, sd, kind, impl, fast_accum, samples, pad, &g)
			  : case_make(ctx, sd, kind, impl, fast_accum, samples, &g);
	/* NOTE: a shape an implementation does not take (FP8 block scaling needs K % 128,
	 * v1 needs N % 128) is run zero-padded to multiples of 128, as an FP8 training
	 * pipeline would pad it; the record says so and counts the logical FLOPs. */
	if (err == MB_ERR_ARG && pad == 0 && impl != GEMM_IMPL_CPU && kind != GEMM_BF16)
		err = case_make_padded(ctx, sd, kind, impl, fast_accum, samples, FP8_TILE, &g);
	if (err == MB_ERR_ARG || err == MB_ERR_UNSUPPORTED) {
		cli_note(ctx->opts->quiet, "gemm: %s/%s %s on %s: not taken by this implementation "
			 "(%s), skipped", s->layer, s->label, gemm_kind_name(kind), gemm_impl_name(impl),
			 mb_status_str(err));
		*skipped = true;
		return MB_OK;
	}
	if (err)
		return err;
	/* NOTE: an explicit shape's label is already its MxNxK. */
	char dims[48] = "";
	if (strcmp(s->layer, "explicit"))
		snprintf(dims, sizeof(dims), "/M%d_N%d_K%d", s->m, s->n, s->k);
	snprintf(c.name, sizeof(c.name), "%s/%s%s/%s/%s%s", s->layer, s->label, dims,
		 gemm_kind_name(kind), gemm_impl_name(impl), fast_accum ? "+fast" : "");
	c.params = case_params(g);
	c.flops = 2.0 * (double)s->m * (double)s->n * (double)s->k;
	c.peak = case_peak(ctx, kind, &c.peak_source);
	c.measured_peak = measured_peak;
	c.state = g;
	c.poison = case_poison;
	c.run = case_run;
	c.check = case_check;
	c.annotate = case_annotate;
	c.destroy = case_destroy;
	return driver_run_case(ctx, &c);
}
