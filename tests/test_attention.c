/*
 * test_attention.c - Check suite for the attention core's CPU reference
 * (kernels/attention/attention.c): against a textbook softmax attention (MHA, GQA, d_qk != d_v,
 * causal and full), the saved log-sum-exp, causal masking, finite-difference gradients
 * in FP64, the float entry points against the double ones, decode against the last row
 * of the training form (also the v == k form MLA's absorbed decode uses), bad shapes.
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

#include "attention.h"
#include "check_main.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

/* rnd returns n never-zero doubles uniform in [-1, 1) from the given stream. */
static double *rnd(uint64_t stream, size_t n)
{
	struct mb_rng rng;
	double *x = malloc(n * sizeof(*x));
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, test_seed(), stream);
	for (size_t i = 0; i < n; i++)
		do
			x[i] = mb_rng_uniform(&rng, -1, 1);
		while (x[i] == 0.0);
	return x;
}

/* A shape and its tensors in double. */
struct attn_case {
	struct attn_shape s;
	size_t nq, nk, nv, no, nl;
	double *q, *k, *v, *o, *lse;
};

/* case_make draws a shape's inputs (stream base for reproducibility). */
static struct attn_case case_make(int b, int S, int h, int g, int dqk, int dv, bool causal,
				  uint64_t stream)
{
	struct attn_case c = { .s = { b, S, h, g, dqk, dv, causal, (float)(1.0 / sqrt(dqk)) } };
	size_t t = (size_t)b * S;
	c.nq = t * h * dqk, c.nk = t * g * dqk, c.nv = t * g * dv, c.no = t * h * dv, c.nl = t * h;
	c.q = rnd(stream, c.nq);
	c.k = rnd(stream + 1, c.nk);
	c.v = rnd(stream + 2, c.nv);
	c.o = malloc(c.no * sizeof(double));
	c.lse = malloc(c.nl * sizeof(double));
	ck_assert_int_eq(attn_fwd_cpu_f64(&c.s, c.q, c.k, c.v, c.o, c.lse), MB_OK);
	return c;
}

static void case_free(struct attn_case *c)
{
	free(c->q), free(c->k), free(c->v), free(c->o), free(c->lse);
}

/* naive_row computes output row (b, i, h) and its lse the textbook way: all scores,
 * masked ones -inf, exp / sum without any max subtraction. */
static void naive_row(const struct attn_case *c, int b, int i, int h, double *o, double *lse)
{
	const struct attn_shape *s = &c->s;
	int g = h / (s->heads / s->kv_heads);
	double sum = 0, w[64];
	memset(o, 0, (size_t)s->d_v * sizeof(double));
	for (int j = 0; j < s->seq; j++) {
		double sc = 0;
		for (int d = 0; d < s->d_qk; d++)
			sc += c->q[(((size_t)b * s->seq + i) * s->heads + h) * s->d_qk + d] *
			      c->k[(((size_t)b * s->seq + j) * s->kv_heads + g) * s->d_qk + d];
		w[j] = (s->causal && j > i) ? 0.0 : exp(sc * s->scale);
		sum += w[j];
	}
	for (int j = 0; j < s->seq; j++)
		for (int d = 0; d < s->d_v; d++)
			o[d] += w[j] / sum * c->v[(((size_t)b * s->seq + j) * s->kv_heads + g) * s->d_v + d];
	*lse = log(sum);
}

/* expect_naive compares every output row and lse with naive_row. */
static void expect_naive(const struct attn_case *c)
{
	const struct attn_shape *s = &c->s;
	double o[64], l;
	for (int b = 0; b < s->batch; b++)
		for (int i = 0; i < s->seq; i++)
			for (int h = 0; h < s->heads; h++) {
				naive_row(c, b, i, h, o, &l);
				size_t row = ((size_t)b * s->seq + i) * s->heads + h;
				for (int d = 0; d < s->d_v; d++)
					ck_assert_msg(fabs(c->o[row * s->d_v + d] - o[d]) < 1e-12,
						      "seed %llu: o(%d,%d,%d,%d)", (unsigned long long)test_seed(), b, i, h, d);
				ck_assert_msg(fabs(c->lse[((size_t)b * s->heads + h) * s->seq + i] - l) < 1e-12,
					      "seed %llu: lse(%d,%d,%d)", (unsigned long long)test_seed(), b, h, i);
			}
}

START_TEST(core_mha_gqa_equal_textbook)
{
	/* MHA, GQA 2 and 4 heads per group, MQA; d_qk != d_v; causal and full. */
	const int shapes[][6] = { { 2, 7, 4, 4, 8, 8 }, { 1, 9, 4, 2, 6, 3 }, { 2, 5, 8, 2, 12, 5 },
				  { 1, 11, 3, 1, 5, 7 } };
	for (int i = 0; i < 4; i++)
		for (int causal = 0; causal < 2; causal++) {
			const int *x = shapes[i];
			struct attn_case c = case_make(x[0], x[1], x[2], x[3], x[4], x[5], causal, 10 * i);
			expect_naive(&c);
			case_free(&c);
		}
}
END_TEST

START_TEST(core_float_matches_double)
{
	struct attn_case c = case_make(2, 13, 4, 2, 10, 6, true, 100);
	float *f[5];
	size_t n[5] = { c.nq, c.nk, c.nv, c.no, c.nl };
	for (int i = 0; i < 5; i++)
		f[i] = malloc(n[i] * sizeof(float));
	for (size_t i = 0; i < c.nq; i++)
		f[0][i] = (float)c.q[i];
	for (size_t i = 0; i < c.nk; i++)
		f[1][i] = (float)c.k[i];
	for (size_t i = 0; i < c.nv; i++)
		f[2][i] = (float)c.v[i];
	ck_assert_int_eq(attn_fwd_cpu(&c.s, f[0], f[1], f[2], f[3], f[4]), MB_OK);
	for (size_t i = 0; i < c.no; i++)
		ck_assert_msg(fabs(f[3][i] - c.o[i]) < 1e-5, "o[%zu] %g vs %g", i, f[3][i], c.o[i]);
	for (size_t i = 0; i < c.nl; i++)
		ck_assert_msg(fabs(f[4][i] - c.lse[i]) < 1e-5, "lse[%zu]", i);
	for (int i = 0; i < 5; i++)
		free(f[i]);
	case_free(&c);
}
END_TEST

START_TEST(core_causal_future_changes_nothing_earlier)
{
	struct attn_case c = case_make(1, 10, 4, 2, 6, 5, true, 200);
	int j = 6;  /* change position j of q, k and v */
	double *o2 = malloc(c.no * sizeof(double)), *l2 = malloc(c.nl * sizeof(double));
	for (int g = 0; g < 2 * 6; g++)
		c.k[(size_t)j * 2 * 6 + g] += 0.5;
	for (int g = 0; g < 2 * 5; g++)
		c.v[(size_t)j * 2 * 5 + g] -= 0.7;
	for (int g = 0; g < 4 * 6; g++)
		c.q[(size_t)j * 4 * 6 + g] *= -1.5;
	ck_assert_int_eq(attn_fwd_cpu_f64(&c.s, c.q, c.k, c.v, o2, l2), MB_OK);
	size_t row = 4 * 5;  /* elements of one position of o */
	for (size_t i = 0; i < (size_t)j * row; i++)
		ck_assert_msg(o2[i] == c.o[i], "earlier output %zu changed", i);
	/* and the changed position does change its own and later outputs */
	for (int i = j; i < 10; i++) {
		double diff = 0;
		for (size_t e = 0; e < row; e++)
			diff += fabs(o2[(size_t)i * row + e] - c.o[(size_t)i * row + e]);
		ck_assert_msg(diff > 1e-6, "position %d did not change", i);
	}
	free(o2), free(l2);
	case_free(&c);
}
END_TEST

/* loss returns sum o * r for the forward of c's inputs. */
static double loss(struct attn_case *c, const double *r)
{
	double *o = malloc(c->no * sizeof(double)), *l = malloc(c->nl * sizeof(double)), s = 0;
	ck_assert_int_eq(attn_fwd_cpu_f64(&c->s, c->q, c->k, c->v, o, l), MB_OK);
	for (size_t i = 0; i < c->no; i++)
		s += o[i] * r[i];
	free(o), free(l);
	return s;
}

/* fd_check compares g[n] with central differences of loss over x[n]. */
static void fd_check(struct attn_case *c, const double *r, double *x, const double *g, size_t n,
		     const char *what)
{
	const double h = 1e-5;
	for (size_t i = 0; i < n; i++) {
		double keep = x[i];
		x[i] = keep + h;
		double lp = loss(c, r);
		x[i] = keep - h;
		double lm = loss(c, r);
		x[i] = keep;
		double fd = (lp - lm) / (2 * h);
		ck_assert_msg(fabs(fd - g[i]) <= 1e-7 * (1 + fabs(fd)), "seed %llu: d%s[%zu]: %.10g vs fd %.10g",
			      (unsigned long long)test_seed(), what, i, g[i], fd);
	}
}

/* grad_check runs the backward and checks dq, dk, dv by finite differences. */
static void grad_check(int b, int S, int h, int g, int dqk, int dv, bool causal, uint64_t st)
{
	struct attn_case c = case_make(b, S, h, g, dqk, dv, causal, st);
	double *r = rnd(st + 5, c.no);
	double *dq = malloc(c.nq * sizeof(double)), *dk = malloc(c.nk * sizeof(double));
	double *dvv = malloc(c.nv * sizeof(double));
	ck_assert_int_eq(attn_bwd_cpu_f64(&c.s, c.q, c.k, c.v, c.o, r, c.lse, dq, dk, dvv), MB_OK);
	fd_check(&c, r, c.q, dq, c.nq, "q");
	fd_check(&c, r, c.k, dk, c.nk, "k");
	fd_check(&c, r, c.v, dvv, c.nv, "v");
	free(r), free(dq), free(dk), free(dvv);
	case_free(&c);
}

START_TEST(core_gradients_finite_differences)
{
	grad_check(2, 5, 4, 2, 6, 3, true, 300);   /* GQA, d_qk != d_v */
	grad_check(1, 6, 2, 2, 5, 4, false, 310);  /* MHA, full */
	grad_check(1, 4, 3, 1, 4, 6, true, 320);   /* MQA, d_v > d_qk */
}
END_TEST

START_TEST(core_float_backward_matches_double)
{
	struct attn_case c = case_make(1, 9, 4, 2, 8, 5, true, 400);
	double *r = rnd(405, c.no);
	double *g8[3] = { malloc(c.nq * 8), malloc(c.nk * 8), malloc(c.nv * 8) };
	ck_assert_int_eq(attn_bwd_cpu_f64(&c.s, c.q, c.k, c.v, c.o, r, c.lse, g8[0], g8[1], g8[2]), MB_OK);
	size_t n[6] = { c.nq, c.nk, c.nv, c.no, c.no, c.nl };
	const double *src[6] = { c.q, c.k, c.v, c.o, r, c.lse };
	float *f[6], *g4[3] = { malloc(c.nq * 4), malloc(c.nk * 4), malloc(c.nv * 4) };
	for (int i = 0; i < 6; i++) {
		f[i] = malloc(n[i] * sizeof(float));
		for (size_t e = 0; e < n[i]; e++)
			f[i][e] = (float)src[i][e];
	}
	ck_assert_int_eq(attn_bwd_cpu(&c.s, f[0], f[1], f[2], f[3], f[4], f[5], g4[0], g4[1], g4[2]), MB_OK);
	for (int t = 0; t < 3; t++)
		for (size_t e = 0; e < n[t]; e++)
			ck_assert_msg(fabs(g4[t][e] - g8[t][e]) < 1e-4, "grad %d[%zu]", t, e);
	for (int i = 0; i < 6; i++)
		free(f[i]);
	for (int t = 0; t < 3; t++)
		free(g8[t]), free(g4[t]);
	free(r);
	case_free(&c);
}
END_TEST

/* decode_case checks decode against the last row of the training form, with cache rows
 * padded to stride = d_qk + pad. */
static void decode_case(int b, int S, int h, int g, int dqk, int dv, int pad, uint64_t st)
{
	struct attn_case c = case_make(b, S, h, g, dqk, dv, true, st);
	int ks = dqk + pad, vs = dv + pad;
	size_t rows = (size_t)b * S * g;
	double *kc = rnd(st + 7, rows * ks), *vc = rnd(st + 8, rows * vs);
	double *q = malloc((size_t)b * h * dqk * 8), *o = malloc((size_t)b * h * dv * 8);
	double *l = malloc((size_t)b * h * 8);
	for (size_t r = 0; r < rows; r++) {
		memcpy(kc + r * ks, c.k + r * dqk, (size_t)dqk * 8);
		memcpy(vc + r * vs, c.v + r * dv, (size_t)dv * 8);
	}
	for (int bb = 0; bb < b; bb++)
		memcpy(q + (size_t)bb * h * dqk, c.q + (((size_t)bb * S + S - 1) * h) * dqk, (size_t)h * dqk * 8);
	struct attn_decode_shape ds = { b, S, h, g, dqk, dv, ks, vs, c.s.scale };
	ck_assert_int_eq(attn_decode_cpu_f64(&ds, q, kc, vc, o, l), MB_OK);
	for (int bb = 0; bb < b; bb++)
		for (int hh = 0; hh < h; hh++) {
			for (int d = 0; d < dv; d++)
				ck_assert(fabs(o[((size_t)bb * h + hh) * dv + d] -
					       c.o[(((size_t)bb * S + S - 1) * h + hh) * dv + d]) < 1e-12);
			ck_assert(fabs(l[(size_t)bb * h + hh] - c.lse[((size_t)bb * h + hh) * S + S - 1]) < 1e-12);
		}
	free(kc), free(vc), free(q), free(o), free(l);
	case_free(&c);
}

START_TEST(decode_equals_last_training_row)
{
	decode_case(2, 9, 4, 2, 6, 5, 0, 500);
	decode_case(1, 17, 4, 4, 8, 8, 3, 510);
	decode_case(3, 5, 6, 1, 7, 4, 1, 520);
}
END_TEST

START_TEST(decode_v_is_k_float)
{
	/* the absorbed-MLA form: one head group, v == k, d_v the first part of each row */
	int b = 2, ctx = 11, h = 4, w = 9, dv = 6;
	double *kc = rnd(600, (size_t)b * ctx * w), *q = rnd(601, (size_t)b * h * w);
	double *v = malloc((size_t)b * ctx * dv * 8);
	for (size_t r = 0; r < (size_t)b * ctx; r++)
		memcpy(v + r * dv, kc + r * w, (size_t)dv * 8);
	struct attn_decode_shape ds = { b, ctx, h, 1, w, dv, w, w, 0.3f };
	float *kf = malloc((size_t)b * ctx * w * 4), *qf = malloc((size_t)b * h * w * 4);
	float *of = malloc((size_t)b * h * dv * 4), *lf = malloc((size_t)b * h * 4);
	double *o = malloc((size_t)b * h * dv * 8), *l = malloc((size_t)b * h * 8);
	for (size_t i = 0; i < (size_t)b * ctx * w; i++)
		kf[i] = (float)kc[i];
	for (size_t i = 0; i < (size_t)b * h * w; i++)
		qf[i] = (float)q[i];
	ck_assert_int_eq(attn_decode_cpu(&ds, qf, kf, kf, of, lf), MB_OK);
	ds.v_stride = dv;
	ck_assert_int_eq(attn_decode_cpu_f64(&ds, q, kc, v, o, l), MB_OK);
	for (size_t i = 0; i < (size_t)b * h * dv; i++)
		ck_assert_msg(fabs(of[i] - o[i]) < 1e-5, "o[%zu] %g vs %g", i, of[i], o[i]);
	free(kc), free(q), free(v), free(kf), free(qf), free(of), free(lf), free(o), free(l);
}
END_TEST

/* NOTE: v == k with v_stride > k_stride: the value rows reach past the key rows, so the
 * float entry point must not read them from its widened copy of the keys (ASan build). */
START_TEST(decode_v_is_k_wider_value_stride)
{
	int ctx = 5, h = 2, dqk = 4, dv = 3, vs = 6;
	double *c8 = rnd(610, (size_t)ctx * vs), *q = rnd(611, (size_t)h * dqk);
	float cf[5 * 6], qf[2 * 4], of[2 * 3], lf[2];
	double o[2 * 3], l[2];
	for (int i = 0; i < ctx * vs; i++)
		cf[i] = (float)c8[i];
	for (int i = 0; i < h * dqk; i++)
		qf[i] = (float)q[i];
	struct attn_decode_shape ds = { 1, ctx, h, 1, dqk, dv, dqk, vs, 0.5f };
	ck_assert_int_eq(attn_decode_cpu(&ds, qf, cf, cf, of, lf), MB_OK);
	ck_assert_int_eq(attn_decode_cpu_f64(&ds, q, c8, c8, o, l), MB_OK);
	for (int i = 0; i < h * dv; i++)
		ck_assert_msg(fabs(of[i] - o[i]) < 1e-5, "o[%d] %g vs %g", i, of[i], o[i]);
	free(c8), free(q);
}
END_TEST

START_TEST(bad_shapes_rejected)
{
	char why[128];
	struct attn_shape s = { 1, 4, 6, 4, 8, 8, true, 0.5f };
	ck_assert_int_eq(attn_shape_check(&s, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "does not divide"));
	s.kv_heads = 3;
	ck_assert_int_eq(attn_shape_check(&s, why, sizeof(why)), MB_OK);
	s.d_v = 0;
	ck_assert_int_eq(attn_shape_check(&s, why, sizeof(why)), MB_ERR_ARG);
	double x[64] = { 1 };
	s.d_v = 8;
	s.seq = 0;
	ck_assert_int_eq(attn_fwd_cpu_f64(&s, x, x, x, x, x), MB_ERR_ARG);
	struct attn_decode_shape ds = { 1, 2, 2, 1, 8, 8, 4, 8, 0.5f };  /* stride < d_qk */
	ck_assert_int_eq(attn_decode_cpu_f64(&ds, x, x, x, x, x), MB_ERR_ARG);
}
END_TEST

static Suite *attention_suite(void)
{
	Suite *s = suite_create("attention");
	TCase *core = tcase_create("core");
	tcase_add_test(core, core_mha_gqa_equal_textbook);
	tcase_add_test(core, core_float_matches_double);
	tcase_add_test(core, core_causal_future_changes_nothing_earlier);
	tcase_add_test(core, core_gradients_finite_differences);
	tcase_add_test(core, core_float_backward_matches_double);
	suite_add_tcase(s, core);
	TCase *dec = tcase_create("decode");
	tcase_add_test(dec, decode_equals_last_training_row);
	tcase_add_test(dec, decode_v_is_k_float);
	tcase_add_test(dec, decode_v_is_k_wider_value_stride);
	suite_add_tcase(s, dec);
	TCase *lim = tcase_create("limits");
	tcase_add_test(lim, bad_shapes_rejected);
	suite_add_tcase(s, lim);
	return s;
}

MB_CHECK_MAIN(attention_suite)
