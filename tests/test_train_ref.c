/*
 * test_train_ref.c - the CPU references of kernels/train checked on their own, so CI
 * without CUDA covers them too (train_emu checks the CUDA kernels against them):
 *   gradients  each backward against central differences of its forward, on fresh random
 *              inputs (MB_TEST_SEED replays): L = sum(c * out) with random c, a sample of
 *              input elements perturbed by h = 1e-3. The forwards round to FP32, so the
 *              differences carry ~1e-7 / h of noise: tolerance 2e-3 of the largest
 *              gradient (a wrong term is O(1))
 *   optimizer  AdamW's first step and the clipping scale by hand
 *   contracts  bad ids and targets refused, gathers and scatter-adds exact
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embedding.h"
#include "moe_bwd.h"
#include "optim.h"
#include "rmsnorm.h"
#include "rng.h"
#include "status.h"
#include "swiglu.h"
#include "xent.h"

#include "check_main.h"
#include "test_seed.h"

#define FD_H 1e-3f
#define FD_TOL 2e-3

/* rnd fills n floats uniform in [lo, hi) from the run's seed and stream id. */
static float *rnd(size_t n, float lo, float hi, uint64_t id)
{
	struct mb_rng rng;
	float *x = malloc(n * sizeof(float) + 1);
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, test_seed(), id);
	mb_rng_fill_uniform_f32(&rng, x, n, lo, hi);
	return x;
}

/* dot returns sum c[i] * x[i] in FP64. */
static double dot(const float *c, const float *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)c[i] * x[i];
	return s;
}

/* A forward as a function of its perturbed input: returns L = sum c * out. */
typedef double (*fd_forward)(void *ctx);

/* fd_check compares grad[i] with the central difference of f over x[i] for every
 * stride-th element, relative to the largest |grad|; returns that error. */
static double fd_check(fd_forward f, void *ctx, float *x, const float *grad, size_t n,
		       size_t stride)
{
	double err = 0, big = 0;
	for (size_t i = 0; i < n; i++)
		big = fmax(big, fabs(grad[i]));
	for (size_t i = 0; i < n; i += stride) {
		const float keep = x[i];
		x[i] = keep + FD_H;
		const double up = f(ctx);
		x[i] = keep - FD_H;
		const double down = f(ctx);
		x[i] = keep;
		err = fmax(err, fabs((up - down) / (2.0 * (double)FD_H) - grad[i]));
	}
	ck_assert(big > 0);
	return err / big;
}

/* ---- RMSNorm ---- */

struct rms_ctx {
	float *x, *g, *c, *y, *r;
	long rows;
	int dim;
};

static double rms_forward(void *p)
{
	struct rms_ctx *k = p;
	ck_assert_int_eq(rmsnorm_fwd_cpu(k->x, k->g, k->rows, k->dim, 1e-6f, k->y, k->r), MB_OK);
	return dot(k->c, k->y, (size_t)k->rows * k->dim);
}

START_TEST(rmsnorm_gradients)
{
	const long R = 3;
	const int D = 37;
	const size_t n = (size_t)R * D;
	struct rms_ctx k = { rnd(n, -2, 2, 1), rnd(D, 0.5f, 1.5f, 2), rnd(n, -1, 1, 3),
			     malloc(n * 4), malloc(R * 4), R, D };
	float *dx = malloc(n * 4), *dg = calloc(D, 4);
	ck_assert(k.y && k.r && dx && dg);
	rms_forward(&k);
	ck_assert_int_eq(rmsnorm_bwd_cpu(k.c, k.x, k.g, k.r, R, D, dx, dg), MB_OK);
	ck_assert_double_le(fd_check(rms_forward, &k, k.x, dx, n, 1), FD_TOL);
	ck_assert_double_le(fd_check(rms_forward, &k, k.g, dg, D, 1), FD_TOL);
	free(k.x), free(k.g), free(k.c), free(k.y), free(k.r), free(dx), free(dg);
}
END_TEST

/* ---- SwiGLU (fused layout) ---- */

struct swiglu_ctx {
	float *in, *c, *h;
	long rows;
	int cols;
};

static double swiglu_forward(void *p)
{
	struct swiglu_ctx *k = p;
	ck_assert_int_eq(swiglu_fwd_cpu(k->in, k->in + k->cols, k->rows, k->cols, 2L * k->cols, k->h),
			 MB_OK);
	return dot(k->c, k->h, (size_t)k->rows * k->cols);
}

START_TEST(swiglu_gradients)
{
	const long R = 4;
	const int F = 23;
	const size_t n = (size_t)R * F;
	struct swiglu_ctx k = { rnd(2 * n, -4, 4, 10), rnd(n, -1, 1, 11), malloc(n * 4), R, F };
	float *d = malloc(2 * n * 4);
	ck_assert(k.h && d);
	ck_assert_int_eq(swiglu_bwd_cpu(k.c, k.in, k.in + F, R, F, 2L * F, d, d + F), MB_OK);
	ck_assert_double_le(fd_check(swiglu_forward, &k, k.in, d, 2 * n, 1), FD_TOL);
	free(k.in), free(k.c), free(k.h), free(d);
}
END_TEST

/* ---- cross-entropy ---- */

struct xent_ctx {
	float *x, *loss;
	int32_t *tgt;
	long rows;
	int vocab;
	float dscale;
};

static double xent_forward(void *p)
{
	struct xent_ctx *k = p;
	double s = 0;
	ck_assert_int_eq(xent_cpu(k->x, XENT_FP32, k->tgt, k->rows, k->vocab, 0, k->loss, NULL), MB_OK);
	for (long r = 0; r < k->rows; r++)
		s += (double)k->dscale * k->loss[r];
	return s;
}

START_TEST(xent_gradients)
{
	const long R = 4;
	const int V = 301;
	int32_t tgt[4] = { 7, -1, 300, 0 };
	struct xent_ctx k = { rnd((size_t)R * V, -5, 5, 20), malloc(R * 4), tgt, R, V, 1.0f / 3 };
	float *dx = malloc((size_t)R * V * 4);
	ck_assert(k.loss && dx);
	ck_assert_int_eq(xent_cpu(k.x, XENT_FP32, tgt, R, V, k.dscale, k.loss, dx), MB_OK);
	ck_assert_float_eq(k.loss[1], 0.0f);   /* no target: no loss */
	ck_assert_double_le(fd_check(xent_forward, &k, k.x, dx, (size_t)R * V, 1), FD_TOL);
	tgt[2] = V;   /* a target past the vocabulary is refused */
	ck_assert_int_eq(xent_cpu(k.x, XENT_FP32, tgt, R, V, k.dscale, k.loss, dx), MB_ERR_ARG);
	free(k.x), free(k.loss), free(dx);
}
END_TEST

/* ---- router and combine ---- */

struct router_ctx {
	float *logits, *dw;
	int32_t *idx;
	long tokens;
	int experts, topk;
	float scale;
};

/* router_forward: L = sum dw * w, w the normalised, scaled sigmoid of the selection. */
static double router_forward(void *p)
{
	struct router_ctx *k = p;
	double L = 0;
	for (long t = 0; t < k->tokens; t++) {
		double s[8], z = 0;
		for (int j = 0; j < k->topk; j++) {
			s[j] = 1.0 / (1.0 + exp(-(double)k->logits[t * k->experts + k->idx[t * k->topk + j]]));
			z += s[j];
		}
		for (int j = 0; j < k->topk; j++)
			L += k->dw[t * k->topk + j] * k->scale * s[j] / z;
	}
	return L;
}

START_TEST(router_gradients)
{
	int32_t idx[2 * 4] = { 3, 0, 9, 5, 1, 2, 11, 7 };
	struct router_ctx k = { rnd(2 * 12, -3, 3, 30), rnd(2 * 4, -1, 1, 31), idx, 2, 12, 4, 2.5f };
	float dl[2 * 12];
	ck_assert_int_eq(moe_router_bwd_cpu(k.logits, idx, k.dw, 2, 12, 4, 2.5f, dl), MB_OK);
	ck_assert_float_eq(dl[4], 0.0f);   /* expert 4 of token 0 was not selected */
	ck_assert_double_le(fd_check(router_forward, &k, k.logits, dl, 2 * 12, 1), FD_TOL);
	idx[0] = 12;   /* an expert outside [0, E) is refused */
	ck_assert_int_eq(moe_router_bwd_cpu(k.logits, idx, k.dw, 2, 12, 4, 2.5f, dl), MB_ERR_ARG);
	free(k.logits), free(k.dw);
}
END_TEST

START_TEST(combine_backward_by_hand)
{
	/* two tokens, H 2; token 0 -> rows 2 and 0, token 1 -> row 1; row 3 is padding */
	const uint16_t y[4 * 2] = { 0x3f80, 0x4000, 0x4040, 0x4080, 0xbf80, 0x3f00, 0x1234, 0x5678 };
	const float dout[2 * 2] = { 0.5f, -1.0f, 2.0f, 4.0f }, w[2 * 2] = { 0.25f, 2.0f, 1.5f, 0.0f };
	const int32_t rows[2 * 2] = { 2, 0, 1, -1 }, row_token[4] = { 0, 1, 0, -1 };
	uint16_t dy[4 * 2];
	float dw[4];
	memset(dy, 0xff, sizeof(dy));
	ck_assert_int_eq(moe_combine_bwd_cpu(y, dout, rows, w, 2, 2, 2, row_token, 4, dy, dw), MB_OK);
	/* y rows: (1, 2), (3, 4), (-1, 0.5) */
	ck_assert_float_eq(dw[0], -1.0f * 0.5f + 0.5f * -1.0f);   /* row 2 . dout 0 */
	ck_assert_float_eq(dw[1], 1.0f * 0.5f + 2.0f * -1.0f);    /* row 0 . dout 0 */
	ck_assert_float_eq(dw[2], 3.0f * 2.0f + 4.0f * 4.0f);     /* row 1 . dout 1 */
	ck_assert_float_eq(dw[3], 0.0f);
	ck_assert_uint_eq(dy[2 * 2 + 0], 0x3e00);   /* 0.25 * 0.5 = 0.125 */
	ck_assert_uint_eq(dy[0 * 2 + 1], 0xc000);   /* 2 * -1 = -2 */
	ck_assert_uint_eq(dy[1 * 2 + 1], 0x40c0);   /* 1.5 * 4 = 6 */
	ck_assert_uint_eq(dy[3 * 2 + 0], 0);        /* padding zeroed */
	ck_assert_uint_eq(dy[3 * 2 + 1], 0);
}
END_TEST

/* ---- optimizer ---- */

START_TEST(adamw_first_step_by_hand)
{
	/* step 1: m = 0.1 g, v = 0.05 g^2, so m / (1 - b1) = g, v / (1 - b2) = g^2 and the
	 * step is lr * g / (|g| + eps) = lr * sign(g); decay multiplies by 1 - lr wd */
	const struct adamw_config c = { 0.1f, 0.9f, 0.95f, 1e-8f, 1 };
	const struct adamw_segment segs[2] = { { 0, 2, 0.1f }, { 3, 1, 0.0f } };
	float p[4] = { 1.0f, -2.0f, 5.0f, 3.0f }, g[4] = { 0.5f, -4.0f, 1.0f, 2.0f };
	float m[4] = { 0 }, v[4] = { 0 };
	uint16_t b[4] = { 0, 0, 0xabcd, 0 };
	ck_assert_int_eq(adamw_cpu(&c, segs, 2, 4, p, g, m, v, 0.5f, b), MB_OK);
	ck_assert_float_eq_tol(p[0], 1.0f * 0.99f - 0.1f, 1e-6f);
	ck_assert_float_eq_tol(p[1], -2.0f * 0.99f + 0.1f, 1e-6f);
	ck_assert_float_eq(p[2], 5.0f);   /* outside every segment */
	ck_assert_uint_eq(b[2], 0xabcd);
	ck_assert_float_eq_tol(p[3], 3.0f - 0.1f, 1e-6f);
	ck_assert_float_eq_tol(m[1], 0.1f * -2.0f, 1e-7f);   /* g scaled by 0.5 */
	ck_assert_float_eq_tol(v[1], 0.05f * 4.0f, 1e-7f);
	ck_assert_uint_eq(b[3], 0x403a);   /* 2.90625: 2.9 rounded to BF16 */
	const struct adamw_segment bad[2] = { { 0, 3, 0.1f }, { 2, 1, 0.0f } };   /* overlap */
	ck_assert_int_eq(adamw_cpu(&c, bad, 2, 4, p, g, m, v, 1.0f, NULL), MB_ERR_ARG);
}
END_TEST

START_TEST(grad_norm_and_clip)
{
	const float g[3] = { 3.0f, -4.0f, 12.0f };
	ck_assert_double_eq_tol(grad_norm_cpu(g, 3), 13.0, 1e-12);
	ck_assert_float_eq_tol(grad_clip_scale(13.0, 1.0f), 1.0f / 13.0f, 1e-7f);
	ck_assert_float_eq(grad_clip_scale(13.0, 20.0f), 1.0f);
	ck_assert_float_eq(grad_clip_scale(13.0, 0.0f), 1.0f);   /* clipping off */
}
END_TEST

/* ---- embedding ---- */

START_TEST(embedding_gather_and_scatter)
{
	const float table[3 * 2] = { 1, 2, 3, 4, 5, 6 }, dout[4 * 2] = { 1, 1, 2, 2, 4, 4, 8, 8 };
	int32_t ids[4] = { 2, 0, 2, 2 };
	float out[4 * 2], dt[3 * 2] = { 0.5f, 0, 0, 0, 0, 0 };
	ck_assert_int_eq(embedding_fwd_cpu(table, 3, ids, 4, 2, out), MB_OK);
	ck_assert_float_eq(out[0], 5.0f);
	ck_assert_float_eq(out[3], 2.0f);
	ck_assert_int_eq(embedding_bwd_cpu(dout, ids, 4, 2, 3, dt), MB_OK);
	ck_assert_float_eq(dt[0], 2.5f);    /* 0.5 + token 1 */
	ck_assert_float_eq(dt[2], 0.0f);    /* id 1: no token */
	ck_assert_float_eq(dt[4], 13.0f);   /* tokens 0, 2, 3 */
	ids[1] = 3;
	ck_assert_int_eq(embedding_fwd_cpu(table, 3, ids, 4, 2, out), MB_ERR_ARG);
	ck_assert_int_eq(embedding_bwd_cpu(dout, ids, 4, 2, 3, dt), MB_ERR_ARG);
	ck_assert_float_eq(dt[4], 13.0f);   /* refused before writing */
}
END_TEST

START_TEST(xent_uniform_logits_give_ln_vocab)
{
	const int V = 1000;
	float *x = rnd(V, 2.5f, 2.5f, 40), loss;
	const int32_t tgt = 17;
	ck_assert_int_eq(xent_cpu(x, XENT_FP32, &tgt, 1, V, 1.0f, &loss, NULL), MB_OK);
	ck_assert_float_eq_tol(loss, logf((float)V), 1e-5f);
	free(x);
}
END_TEST

/* train_ref_suite: gradients, optimizer, contracts. */
static Suite *train_ref_suite(void)
{
	Suite *s = suite_create("train_ref");
	TCase *tc = tcase_create("gradients");
	tcase_add_test(tc, rmsnorm_gradients);
	tcase_add_test(tc, swiglu_gradients);
	tcase_add_test(tc, xent_gradients);
	tcase_add_test(tc, router_gradients);
	tcase_add_test(tc, combine_backward_by_hand);
	suite_add_tcase(s, tc);
	tc = tcase_create("optimizer");
	tcase_add_test(tc, adamw_first_step_by_hand);
	tcase_add_test(tc, grad_norm_and_clip);
	suite_add_tcase(s, tc);
	tc = tcase_create("contracts");
	tcase_add_test(tc, embedding_gather_and_scatter);
	tcase_add_test(tc, xent_uniform_logits_give_ln_vocab);
	suite_add_tcase(s, tc);
	return s;
}

MB_CHECK_MAIN(train_ref_suite)
