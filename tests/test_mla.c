/*
 * test_mla.c - Check suite for the attention blocks (kernels/attention/mla.c, kernels/attention/gqa.c):
 * finite-difference gradients of the whole MLA block in FP64 for x and every weight
 * (with and without query compression) and of the MHA/GQA block; the float path
 * against the double one; the absorbed decode against the training form's output on
 * the same inputs; RoPE touching only the rope parts; the cache bytes per position
 * against the model accounting (DeepSeek-V3: 576 * 2 * 61 = 70,272 bytes per token).
 *
 * Inputs are fresh random draws each run; a failure prints the seed, and
 * MB_TEST_SEED=<n> replays it.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accounting.h"
#include "check_main.h"
#include "mla.h"
#include "model.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

/* rnd returns n never-zero doubles uniform in [-a, a) from the given stream. */
static double *rnd(uint64_t stream, size_t n, double a)
{
	struct mb_rng rng;
	double *x = malloc((n ? n : 1) * sizeof(*x));
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, test_seed(), stream);
	for (size_t i = 0; i < n; i++)
		do
			x[i] = mb_rng_uniform(&rng, -a, a);
		while (x[i] == 0.0);
	return x;
}

/* to_f32 returns a float copy of x[n]. */
static float *to_f32(const double *x, size_t n)
{
	float *f = malloc((n ? n : 1) * sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f[i] = (float)x[i];
	return f;
}

static const struct mla_config tiny = { .dim = 10, .heads = 3, .q_lora_rank = 6,
					 .kv_lora_rank = 5, .nope = 4, .rope = 4, .v_dim = 3,
					 .rope_theta = 10000, .eps = 1e-6 };

/* A block under test: MLA or GQA behind the same two calls. */
struct block {
	const struct mla_config *mla;
	const struct gqa_config *gqa;
	int batch, seq;
	size_t nw, nx, nws;
};

static int block_fwd(const struct block *b, const double *w, const double *x, double *y, double *ws)
{
	return b->mla ? mla_fwd_f64(b->mla, b->batch, b->seq, w, x, y, ws)
		      : gqa_fwd_f64(b->gqa, b->batch, b->seq, w, x, y, ws);
}

static int block_bwd(const struct block *b, const double *w, const double *x, const double *ws,
		     const double *dy, double *dx, double *dw)
{
	return b->mla ? mla_bwd_f64(b->mla, b->batch, b->seq, w, x, ws, dy, dx, dw)
		      : gqa_bwd_f64(b->gqa, b->batch, b->seq, w, x, ws, dy, dx, dw);
}

/* block_loss returns sum y * r of a forward. */
static double block_loss(const struct block *b, const double *w, const double *x, const double *r)
{
	double *y = malloc(b->nx * sizeof(double)), *ws = malloc(b->nws * sizeof(double)), s = 0;
	ck_assert_int_eq(block_fwd(b, w, x, y, ws), MB_OK);
	for (size_t i = 0; i < b->nx; i++)
		s += y[i] * r[i];
	free(y), free(ws);
	return s;
}

/* fd_expect compares g[n] with central differences of the loss over p[n] (p is w or x). */
static void fd_expect(const struct block *b, double *w, double *x, double *p, const double *g,
		      size_t n, const double *r, const char *what)
{
	const double h = 1e-5;
	for (size_t i = 0; i < n; i++) {
		double keep = p[i];
		p[i] = keep + h;
		double lp = block_loss(b, w, x, r);
		p[i] = keep - h;
		double lm = block_loss(b, w, x, r);
		p[i] = keep;
		double fd = (lp - lm) / (2 * h);
		ck_assert_msg(fabs(fd - g[i]) <= 1e-6 * (1 + fabs(fd)),
			      "seed %llu: d%s[%zu]: %.10g vs fd %.10g", (unsigned long long)test_seed(),
			      what, i, g[i], fd);
	}
}

/* grad_check_block checks dx and dw of a block by finite differences. */
static void grad_check_block(struct block *b, uint64_t st)
{
	double *w = rnd(st, b->nw, 0.5), *x = rnd(st + 1, b->nx, 1), *r = rnd(st + 2, b->nx, 1);
	double *y = malloc(b->nx * 8), *ws = malloc(b->nws * 8), *dx = malloc(b->nx * 8);
	double *dw = malloc(b->nw * 8);
	ck_assert_int_eq(block_fwd(b, w, x, y, ws), MB_OK);
	ck_assert_int_eq(block_bwd(b, w, x, ws, r, dx, dw), MB_OK);
	fd_expect(b, w, x, x, dx, b->nx, r, "x");
	fd_expect(b, w, x, w, dw, b->nw, r, "w");
	free(w), free(x), free(r), free(y), free(ws), free(dx), free(dw);
}

/* mla_block describes an MLA block of batch x seq. */
static struct block mla_block(const struct mla_config *c, int batch, int seq)
{
	struct mla_layout l;
	mla_layout_of(c, &l);
	return (struct block){ c, NULL, batch, seq, l.total, (size_t)batch * seq * c->dim,
			       mla_workspace_count(c, batch, seq) };
}

START_TEST(mla_gradients_finite_differences)
{
	struct mla_config c = tiny;
	struct block b = mla_block(&c, 2, 4);
	grad_check_block(&b, 100);
	c.q_lora_rank = 0;  /* DeepSeek-V2-Lite: queries straight from x */
	b = mla_block(&c, 1, 5);
	grad_check_block(&b, 110);
}
END_TEST

START_TEST(gqa_gradients_finite_differences)
{
	struct gqa_config g = { .dim = 8, .heads = 4, .kv_heads = 2, .head_dim = 4, .rope = true,
				.rope_theta = 10000 };
	struct gqa_layout l;
	gqa_layout_of(&g, &l);
	struct block b = { NULL, &g, 2, 4, l.total, 2 * 4 * 8, gqa_workspace_count(&g, 2, 4) };
	grad_check_block(&b, 200);
	g.kv_heads = 4;  /* MHA without RoPE */
	g.rope = false;
	gqa_layout_of(&g, &l);
	b = (struct block){ NULL, &g, 1, 5, l.total, 5 * 8, gqa_workspace_count(&g, 1, 5) };
	grad_check_block(&b, 210);
}
END_TEST

/* max_diff returns max |a - b| over n. */
static double max_diff(const float *a, const double *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(a[i] - b[i]));
	return m;
}

START_TEST(mla_float_matches_double)
{
	struct mla_config c = tiny;
	c.dim = 24, c.heads = 4;
	struct block b = mla_block(&c, 2, 9);
	double *w = rnd(300, b.nw, 0.3), *x = rnd(301, b.nx, 1), *r = rnd(302, b.nx, 1);
	double *y = malloc(b.nx * 8), *ws = malloc(b.nws * 8), *dx = malloc(b.nx * 8), *dw = malloc(b.nw * 8);
	float *wf = to_f32(w, b.nw), *xf = to_f32(x, b.nx), *rf = to_f32(r, b.nx);
	float *yf = malloc(b.nx * 4), *wsf = malloc(b.nws * 4), *dxf = malloc(b.nx * 4), *dwf = malloc(b.nw * 4);
	ck_assert_int_eq(mla_fwd_f64(&c, 2, 9, w, x, y, ws), MB_OK);
	ck_assert_int_eq(mla_bwd_f64(&c, 2, 9, w, x, ws, r, dx, dw), MB_OK);
	ck_assert_int_eq(mla_fwd_f32(&c, 2, 9, wf, xf, yf, wsf), MB_OK);
	ck_assert_int_eq(mla_bwd_f32(&c, 2, 9, wf, xf, wsf, rf, dxf, dwf), MB_OK);
	ck_assert_msg(max_diff(yf, y, b.nx) < 1e-4, "y differs by %g", max_diff(yf, y, b.nx));
	ck_assert_msg(max_diff(dxf, dx, b.nx) < 1e-4, "dx differs by %g", max_diff(dxf, dx, b.nx));
	ck_assert_msg(max_diff(dwf, dw, b.nw) < 1e-3, "dw differs by %g", max_diff(dwf, dw, b.nw));
	free(w), free(x), free(r), free(y), free(ws), free(dx), free(dw);
	free(wf), free(xf), free(rf), free(yf), free(wsf), free(dxf), free(dwf);
}
END_TEST

/* decode_check runs the training form on [batch, ctx], then the absorbed decode of the
 * last token against a cache of the first ctx - 1 positions, and compares y. */
static void decode_check(const struct mla_config *c, int batch, int ctx, uint64_t st)
{
	struct block b = mla_block(c, batch, ctx);
	int wd = c->kv_lora_rank + c->rope;
	double *w = rnd(st, b.nw, 0.5), *x = rnd(st + 1, b.nx, 1);
	double *y = malloc(b.nx * 8), *ws = malloc(b.nws * 8), *yd = malloc((size_t)batch * c->dim * 8);
	double *cache = malloc((size_t)batch * ctx * wd * 8), *full = malloc((size_t)batch * ctx * wd * 8);
	double *xl = malloc((size_t)batch * c->dim * 8);
	ck_assert_int_eq(mla_fwd_f64(c, batch, ctx, w, x, y, ws), MB_OK);
	ck_assert_int_eq(mla_cache_from_ws_f64(c, batch, ctx, ws, ctx, full), MB_OK);
	memcpy(cache, full, (size_t)batch * ctx * wd * 8);
	for (int bb = 0; bb < batch; bb++) {
		memset(cache + ((size_t)bb * ctx + ctx - 1) * wd, 0xff, (size_t)wd * 8);  /* NaN */
		memcpy(xl + (size_t)bb * c->dim, x + ((size_t)bb * ctx + ctx - 1) * c->dim, (size_t)c->dim * 8);
	}
	ck_assert_int_eq(mla_decode_f64(c, batch, ctx, w, xl, cache, yd), MB_OK);
	for (size_t i = 0; i < (size_t)batch * ctx * wd; i++)
		ck_assert_msg(fabs(cache[i] - full[i]) < 1e-12, "cache[%zu]", i);
	float *wf = to_f32(w, b.nw), *xf = to_f32(xl, (size_t)batch * c->dim);
	float *cf = to_f32(full, (size_t)batch * ctx * wd), *yf = malloc((size_t)batch * c->dim * 4);
	ck_assert_int_eq(mla_decode_f32(c, batch, ctx, wf, xf, cf, yf), MB_OK);
	for (int bb = 0; bb < batch; bb++)
		for (int d = 0; d < c->dim; d++) {
			double want = y[((size_t)bb * ctx + ctx - 1) * c->dim + d];
			ck_assert_msg(fabs(yd[(size_t)bb * c->dim + d] - want) < 1e-10,
				      "seed %llu: y(%d,%d) %.12g vs %.12g", (unsigned long long)test_seed(), bb, d,
				      yd[(size_t)bb * c->dim + d], want);
			ck_assert_msg(fabs(yf[(size_t)bb * c->dim + d] - want) < 1e-4, "f32 y(%d,%d)", bb, d);
		}
	free(w), free(x), free(y), free(ws), free(yd), free(cache), free(full), free(xl);
	free(wf), free(xf), free(cf), free(yf);
}

START_TEST(absorbed_decode_equals_training_form)
{
	struct mla_config c = tiny;
	decode_check(&c, 2, 7, 400);
	c.q_lora_rank = 0;
	c.heads = 4, c.kv_lora_rank = 12, c.rope = 6;
	decode_check(&c, 3, 5, 410);
	decode_check(&c, 1, 1, 420);  /* the first token: a cache of itself */
}
END_TEST

START_TEST(rope_touches_only_the_rope_part)
{
	const struct mla_config *c = &tiny;
	int batch = 1, seq = 5, H = c->heads, dn = c->nope, dr = c->rope, dqk = dn + dr;
	int kvl = c->kv_lora_rank, hq = H * dqk;
	struct block b = mla_block(c, batch, seq);
	struct mla_layout L;
	struct mla_ws W;
	mla_layout_of(c, &L);
	ck_assert_int_eq(mla_ws_layout(c, batch, seq, &W), MB_OK);
	double *w = rnd(500, b.nw, 0.5), *x = rnd(501, b.nx, 1);
	double *y = malloc(b.nx * 8), *ws = malloc(b.nws * 8);
	ck_assert_int_eq(mla_fwd_f64(c, batch, seq, w, x, y, ws), MB_OK);
	for (int t = 0; t < seq; t++)
		for (int h = 0; h < H; h++) {
			const double *q = ws + W.q + ((size_t)t * H + h) * dqk;
			const double *k = ws + W.k + ((size_t)t * H + h) * dqk;
			const double *kr = ws + W.kva + (size_t)t * (kvl + dr) + kvl;
			double pre[16];  /* q before RoPE: cqn W_qb */
			for (int e = 0; e < dqk; e++) {
				pre[e] = 0;
				for (int r = 0; r < c->q_lora_rank; r++)
					pre[e] += ws[W.cqn + (size_t)t * c->q_lora_rank + r] *
						  w[L.wq_b + (size_t)r * hq + h * dqk + e];
			}
			for (int e = 0; e < dn; e++) {
				ck_assert(fabs(q[e] - pre[e]) < 1e-12);
				ck_assert(k[e] == ws[W.kv + ((size_t)t * H + h) * (dn + c->v_dim) + e]);
			}
			for (int e = 0; e < dr; e += 2) {
				double n1 = hypot(q[dn + e], q[dn + e + 1]), n0 = hypot(pre[dn + e], pre[dn + e + 1]);
				ck_assert(fabs(n1 - n0) < 1e-12);  /* a rotation of each pair */
				ck_assert(fabs(hypot(k[dn + e], k[dn + e + 1]) - hypot(kr[e], kr[e + 1])) < 1e-12);
				/* position 0 is the identity; the first pair turns by t radians */
				ck_assert(t > 0 || (fabs(q[dn + e] - pre[dn + e]) < 1e-12 && k[dn + e] == kr[e]));
			}
			ck_assert(t == 0 || fabs(q[dn] - pre[dn]) > 1e-9);
			ck_assert(k[dn] == ws[W.krr + (size_t)t * dr]);  /* shared by every head */
		}
	free(w), free(x), free(y), free(ws);
}
END_TEST

START_TEST(kv_bytes_match_model_accounting)
{
	int mla_presets = 0;
	for (size_t i = 0; i < model_preset_count(); i++) {
		const struct model_config *m = model_preset_at(i);
		uint64_t want, per;
		ck_assert_int_eq(model_kv_cache_bytes_per_token(m, 2, &want), MB_OK);
		if (m->attention == MODEL_ATTN_MLA) {
			struct mla_config c = { (int)m->dim, (int)m->heads, (int)m->q_lora_rank,
						(int)m->kv_lora_rank, (int)m->qk_nope_head_dim,
						(int)m->qk_rope_head_dim, (int)m->v_head_dim, 10000, 1e-6,
						NULL };
			per = mla_kv_bytes_per_pos(&c, 2);
			mla_presets++;
		} else {
			struct gqa_config g = { (int)m->dim, (int)m->heads, (int)m->kv_heads,
						(int)m->head_dim, true, 10000, NULL };
			per = gqa_kv_bytes_per_pos(&g, 2);
		}
		ck_assert_msg(per * (uint64_t)m->layers == want, "%s: %llu x %lld != %llu", m->name,
			      (unsigned long long)per, (long long)m->layers, (unsigned long long)want);
	}
	ck_assert_int_ge(mla_presets, 2);
	const struct model_config *v3 = model_preset_find("deepseek-v3");
	struct mla_config c = { (int)v3->dim, (int)v3->heads, 1536, 512, 128, 64, 128, 10000, 1e-6,
				NULL };
	ck_assert_uint_eq(mla_kv_bytes_per_pos(&c, 2) * 61, 70272);
	struct gqa_config mha = { 7168, 128, 128, 128, true, 10000, NULL };
	ck_assert_uint_eq(gqa_kv_bytes_per_pos(&mha, 2), 2 * 128 * 128 * 2);
}
END_TEST

START_TEST(bad_configs_rejected)
{
	struct mla_config c = tiny;
	char why[128];
	ck_assert_int_eq(mla_check(&c, why, sizeof(why)), MB_OK);
	c.rope = 5;
	ck_assert_int_eq(mla_check(&c, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "even"));
	ck_assert_uint_eq(mla_workspace_count(&c, 1, 4), 0);
	c = tiny;
	c.heads = 4096, c.kv_lora_rank = 1 << 20;  /* heads * (kv_lora + rope) past INT_MAX */
	ck_assert_int_eq(mla_check(&c, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "too large"));
	c = tiny;
	c.q_lora_rank = -1;
	ck_assert_int_eq(mla_check(&c, why, sizeof(why)), MB_ERR_ARG);
	struct gqa_config g = { 8, 6, 4, 4, true, 10000, NULL };
	ck_assert_int_eq(gqa_check(&g, why, sizeof(why)), MB_ERR_ARG);
	double x[4] = { 1, 2, 3, 4 };
	ck_assert_int_eq(mla_fwd_f64(&tiny, 0, 4, x, x, x, x), MB_ERR_ARG);
}
END_TEST

static Suite *mla_suite(void)
{
	Suite *s = suite_create("mla");
	TCase *grad = tcase_create("gradients");
	tcase_add_test(grad, mla_gradients_finite_differences);
	tcase_add_test(grad, gqa_gradients_finite_differences);
	tcase_add_test(grad, mla_float_matches_double);
	suite_add_tcase(s, grad);
	TCase *dec = tcase_create("decode");
	tcase_add_test(dec, absorbed_decode_equals_training_form);
	suite_add_tcase(s, dec);
	TCase *core = tcase_create("structure");
	tcase_add_test(core, rope_touches_only_the_rope_part);
	tcase_add_test(core, kv_bytes_match_model_accounting);
	tcase_add_test(core, bad_configs_rejected);
	suite_add_tcase(s, core);
	return s;
}

MB_CHECK_MAIN(mla_suite)
