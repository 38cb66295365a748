/*
 * test_mla_block.c (GPU) - the MLA block on CUDA (mla_cuda.h) against the CPU reference
 * mla_fwd_f32 / mla_bwd_f32 (mla.h) on the same BF16-rounded weights, inputs and output
 * gradients, outputs poisoned (0xFF bytes: BF16 and FP32 NaN) first: forward y,
 * backward dx and dw checked weight by weight (the five matrices and both RMSNorm
 * gains). Configs: a tiny one (core 64/64), the same without q_lora_rank, and a
 * v3-small-like one on DeepSeek-V3's core shape (192/128); sequences on and off the
 * core's 64-row tiles (1, 64, 100, 300), batch 1 and 2. Exits 77 (CTest: skipped) when
 * no CUDA device answers.
 *
 * Errors are max |x - ref| / max |ref| per tensor. Every activation and activation
 * gradient is rounded to BF16 (2^-9 relative) between steps and the core rounds P and
 * dS to BF16 (tests/gpu/test_attention.c: 1e-2 and 2e-2 on the core alone), so 2e-2
 * for y and 3e-2 for the gradients, which pass through a few more roundings.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

#include "bf16.h"
#include "mla.h"
#include "mla_cuda.h"
#include "rng.h"
#include "status.h"

#include "gpu_main.h"

#define OUT_TOL 2e-2
#define GRAD_TOL 3e-2

/* Configs: dim, heads, q_lora, kv_lora, nope, rope, v_dim. */
static const int configs[][7] = {
	{ 64, 2, 32, 32, 32, 32, 64 },          /* tiny, core 64/64 */
	{ 64, 2, 0, 32, 32, 32, 64 },           /* tiny without the q latent */
	{ 1024, 16, 512, 256, 128, 64, 128 },   /* v3-small-like on V3's core 192/128 */
	{ 256, 4, 0, 128, 128, 64, 128 },       /* 192/128 without the q latent */
};

/* Cases: config, batch, seq. */
static const int cases[][3] = {
	{ 0, 1, 1 }, { 0, 2, 64 }, { 0, 1, 100 }, { 1, 2, 100 }, { 1, 1, 64 },
	{ 2, 1, 64 }, { 2, 2, 300 }, { 3, 1, 100 }, { 3, 2, 17 },
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static struct mla_config config_of(int i)
{
	const int *c = configs[i];
	return (struct mla_config){ c[0], c[1], c[2], c[3], c[4], c[5], c[6], 10000, 1e-6, NULL };
}

/* draw fills n floats uniform in [lo, hi), rounded to BF16, from one rng stream. */
static void draw(float *x, size_t n, double lo, double hi, uint64_t seed, uint64_t s)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, s);
	for (size_t i = 0; i < n; i++)
		x[i] = bf16_round((float)mb_rng_uniform(&rng, lo, hi));
}

/* The host side of one case: BF16-valued inputs, the reference, the GPU's outputs. */
struct block_case {
	struct mla_config c;
	struct mla_layout L;
	int batch, seq;
	size_t n;                           /* batch * seq * dim */
	float *w, *x, *dy, *ws, *y_ref, *dx_ref, *dw_ref, *y, *dx, *dw;
};

/* case_make draws the inputs (projections scaled 1/sqrt(dim), gains around 1) and runs
 * the CPU reference forward and backward. */
static struct block_case case_make(int i, uint64_t seed)
{
	struct block_case b = { .c = config_of(cases[i][0]), .batch = cases[i][1], .seq = cases[i][2] };
	mla_layout_of(&b.c, &b.L);
	b.n = (size_t)b.batch * b.seq * b.c.dim;
	size_t nw = b.L.total, nws = mla_workspace_count(&b.c, b.batch, b.seq);
	float **bufs[] = { &b.x, &b.dy, &b.y_ref, &b.dx_ref, &b.y, &b.dx };
	for (int k = 0; k < 6; k++)
		ck_assert_ptr_nonnull(*bufs[k] = malloc(b.n * sizeof(float)));
	ck_assert(nws > 0 && (b.ws = malloc(nws * sizeof(float))));
	ck_assert((b.w = malloc(nw * sizeof(float))) && (b.dw_ref = malloc(nw * sizeof(float))) &&
		  (b.dw = malloc(nw * sizeof(float))));
	double a = 1.0 / sqrt(b.c.dim);
	draw(b.w, nw, -a, a, seed, 1);
	draw(b.w + b.L.q_norm, b.L.wq_b - b.L.q_norm, 0.5, 1.5, seed, 2);
	draw(b.w + b.L.kv_norm, b.L.wkv_b - b.L.kv_norm, 0.5, 1.5, seed, 3);
	draw(b.x, b.n, -1, 1, seed, 4);
	draw(b.dy, b.n, -1, 1, seed, 5);
	ck_assert_int_eq(mla_fwd_f32(&b.c, b.batch, b.seq, b.w, b.x, b.y_ref, b.ws), MB_OK);
	ck_assert_int_eq(mla_bwd_f32(&b.c, b.batch, b.seq, b.w, b.x, b.ws, b.dy, b.dx_ref, b.dw_ref),
			 MB_OK);
	return b;
}

static void case_free(struct block_case *b)
{
	float *p[] = { b->w, b->x, b->dy, b->ws, b->y_ref, b->dx_ref, b->dw_ref, b->y, b->dx, b->dw };
	for (int k = 0; k < 10; k++)
		free(p[k]);
}

/* case_run_gpu runs the block on the device: poison, forward, y; poison, backward
 * (skipped with run_bwd false: dx and dw stay poisoned), dx and dw. */
static void case_run_gpu(struct block_case *b, bool run_bwd)
{
	struct mla_cuda *m = NULL;
	ck_assert_int_eq(mla_cuda_create(&m, &b->c, b->batch, b->seq, stream), MB_OK);
	ck_assert_int_eq(mla_cuda_upload(m, b->w, b->x, b->dy), MB_OK);
	ck_assert_int_eq(mla_cuda_poison(m), MB_OK);
	ck_assert_int_eq(mla_cuda_fwd(m), MB_OK);
	ck_assert_int_eq(mla_cuda_download_y(m, b->y), MB_OK);
	ck_assert_int_eq(mla_cuda_poison(m), MB_OK);
	if (run_bwd)
		ck_assert_int_eq(mla_cuda_bwd(m), MB_OK);
	ck_assert_int_eq(mla_cuda_download_grads(m, b->dx, b->dw), MB_OK);
	mla_cuda_destroy(m);
}

/* scaled_err returns max |x - ref| / max |ref| (+inf if x has a non-finite value). */
static double scaled_err(const float *x, const float *ref, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]))
			return INFINITY;
		num = fmax(num, fabs((double)x[i] - ref[i]));
		den = fmax(den, fabs((double)ref[i]));
	}
	return den > 0 ? num / den : num;
}

/* dw_err returns the largest scaled_err over the weights present, weight by weight (a
 * gain's gradient is not hidden behind a matrix's); *worst names the weight. */
static double dw_err(const struct block_case *b, const char **worst)
{
	static const char *names[] = { "wq_a", "q_norm", "wq_b", "wkv_a", "kv_norm", "wkv_b", "wo" };
	const struct mla_layout *L = &b->L;
	size_t off[8] = { L->wq_a, L->q_norm, L->wq_b, L->wkv_a, L->kv_norm, L->wkv_b, L->wo, L->total };
	double e = 0;
	*worst = "none";
	for (int k = 0; k < 7; k++) {
		if (off[k + 1] == off[k])
			continue;
		double ek = scaled_err(b->dw + off[k], b->dw_ref + off[k], off[k + 1] - off[k]);
		if (!(ek <= e)) {
			e = ek;
			*worst = names[k];
		}
	}
	return e;
}

START_TEST(block_matches_reference)
{
	struct block_case b = case_make(_i, 700 + _i);
	const char *worst;
	case_run_gpu(&b, true);
	double ey = scaled_err(b.y, b.y_ref, b.n), edx = scaled_err(b.dx, b.dx_ref, b.n);
	double edw = dw_err(&b, &worst);
	printf("mla block dim %d H %d q_lora %d kv_lora %d %d+%d/%d B%d S%d: y %.3g dx %.3g "
	       "dw %.3g (%s)\n", b.c.dim, b.c.heads, b.c.q_lora_rank, b.c.kv_lora_rank, b.c.nope,
	       b.c.rope, b.c.v_dim, b.batch, b.seq, ey, edx, edw, worst);
	ck_assert_msg(ey <= OUT_TOL, "case %d: y %g", _i, ey);
	ck_assert_msg(edx <= GRAD_TOL && edw <= GRAD_TOL, "case %d: dx %g dw %g (%s)", _i, edx, edw,
		      worst);
	case_free(&b);
}
END_TEST

/* A backward that never ran leaves the poison, which the checks must see. */
START_TEST(poisoned_gradients_fail_the_check)
{
	struct block_case b = case_make(1, 9);
	const char *worst;
	case_run_gpu(&b, false);
	ck_assert(isinf(scaled_err(b.dx, b.dx_ref, b.n)) && isinf(dw_err(&b, &worst)));
	ck_assert(scaled_err(b.y, b.y_ref, b.n) <= OUT_TOL);
	case_free(&b);
}
END_TEST

START_TEST(rejects_what_the_core_does_not_take)
{
	struct mla_cuda *m = (struct mla_cuda *)1;
	struct mla_config tiny = { 256, 4, 128, 64, 32, 16, 32, 10000, 1e-6, NULL };  /* v3-tiny: 48/32 */
	ck_assert_int_eq(mla_cuda_create(&m, &tiny, 1, 64, stream), MB_ERR_UNSUPPORTED);
	ck_assert_ptr_null(m);
	struct mla_config c = config_of(0);
	ck_assert_int_eq(mla_cuda_create(&m, &c, 0, 64, stream), MB_ERR_ARG);
	c.rope = 31;
	ck_assert_int_eq(mla_cuda_create(&m, &c, 1, 64, stream), MB_ERR_ARG);
	ck_assert_int_eq(mla_cuda_fwd(NULL), MB_ERR_ARG);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("gpu_mla_block");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 600);
	tcase_add_loop_test(core, block_matches_reference, 0, NCASES);
	tcase_add_test(core, poisoned_gradients_fail_the_check);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, rejects_what_the_core_does_not_take);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	return gpu_main(make_suite);
}
