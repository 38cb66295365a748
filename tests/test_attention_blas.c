/*
 * test_attention_blas.c - Check suite for the SGEMM attention core
 * (kernels/attention/attention_blas.c): forward (o, lse) and backward (dq, dk, dv)
 * against the FP64 reference core of attention.c on fresh random inputs, MHA, GQA and
 * MQA, causal and full, d_qk != d_v, sequences of one to three row blocks; the same bits
 * on one thread and on two; and the MLA and GQA blocks built on it against their FP64
 * versions.
 *
 * A failure prints the seed; MB_TEST_SEED=<n> replays it.
 */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "check_main.h"
#include "mla.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

/* rnd_f returns n floats uniform in [-1, 1) and their double copy. */
static float *rnd_f(uint64_t stream, size_t n, double **d)
{
	struct mb_rng rng;
	float *x = malloc(n * sizeof(float));
	*d = malloc(n * sizeof(double));
	mb_rng_seed(&rng, test_seed(), stream);
	mb_rng_fill_uniform_f32(&rng, x, n, -1, 1);
	for (size_t i = 0; i < n; i++)
		(*d)[i] = x[i];
	return x;
}

/* rel_max returns max |a - ref| / max |ref|. */
static double rel_max(const float *a, const double *ref, size_t n)
{
	double e = 0, r = 0;
	for (size_t i = 0; i < n; i++)
		e = fmax(e, fabs(a[i] - ref[i])), r = fmax(r, fabs(ref[i]));
	return e / r;
}

/* check_shape runs both cores forward and backward on one shape. */
static void check_shape(int b, int S, int h, int g, int dqk, int dv, bool causal)
{
	struct attn_shape s = { b, S, h, g, dqk, dv, causal, (float)(1.0 / sqrt(dqk)) };
	size_t t = (size_t)b * S, nq = t * h * dqk, nk = t * g * dqk, nv = t * g * dv;
	size_t no = t * h * dv, nl = t * h;
	double *q, *k, *v, *dout;
	float *qf = rnd_f(1, nq, &q), *kf = rnd_f(2, nk, &k), *vf = rnd_f(3, nv, &v);
	float *gf = rnd_f(4, no, &dout);
	double *o = malloc(no * 8), *l = malloc(nl * 8), *dq = malloc(nq * 8), *dk = malloc(nk * 8);
	double *dvv = malloc(nv * 8);
	float *of = malloc(no * 4), *lf = malloc(nl * 4), *dqf = malloc(nq * 4), *dkf = malloc(nk * 4);
	float *dvf = malloc(nv * 4);
	ck_assert_int_eq(attn_fwd_cpu_f64(&s, q, k, v, o, l), MB_OK);
	ck_assert_int_eq(attn_bwd_cpu_f64(&s, q, k, v, o, dout, l, dq, dk, dvv), MB_OK);
	ck_assert_int_eq(attn_fwd_blas(&s, qf, kf, vf, of, lf), MB_OK);
	ck_assert_int_eq(attn_bwd_blas(&s, qf, kf, vf, of, gf, lf, dqf, dkf, dvf), MB_OK);
	double e[5] = { rel_max(of, o, no), rel_max(lf, l, nl), rel_max(dqf, dq, nq),
			rel_max(dkf, dk, nk), rel_max(dvf, dvv, nv) };
	for (int i = 0; i < 5; i++)
		ck_assert_msg(e[i] < 2e-5, "seed %llu: b%d S%d h%d g%d causal %d: output %d rel %g",
			      (unsigned long long)test_seed(), b, S, h, g, causal, i, e[i]);
	free(q), free(k), free(v), free(dout), free(qf), free(kf), free(vf), free(gf);
	free(o), free(l), free(dq), free(dk), free(dvv), free(of), free(lf), free(dqf), free(dkf);
	free(dvf);
}

START_TEST(blas_core_matches_reference)
{
	const int shapes[][6] = { { 2, 7, 4, 4, 8, 8 }, { 1, 9, 4, 2, 6, 3 }, { 2, 5, 8, 2, 12, 5 },
				  { 1, 11, 3, 1, 5, 7 }, { 2, 70, 4, 1, 24, 16 },
				  { 1, 150, 2, 1, 16, 8 } };
	/* NOTE: S 70 and 150 span two and three row blocks of 64 (the last one partial) */
	for (int i = 0; i < 6; i++)
		for (int causal = 0; causal < 2; causal++) {
			const int *x = shapes[i];
			check_shape(x[0], x[1], x[2], x[3], x[4], x[5], causal);
		}
}
END_TEST

START_TEST(blocks_on_the_blas_core_match_fp64)
{
	struct mla_config c = { 32, 4, 16, 16, 8, 8, 8, 10000.0, 1e-6, NULL };
	struct mla_layout L;
	int B = 2, S = 66;
	mla_layout_of(&c, &L);
	size_t nx = (size_t)B * S * c.dim, nws = mla_workspace_count(&c, B, S);
	double *w, *x, *dy, *y = malloc(nx * 8), *ws = malloc(nws * 8), *dx = malloc(nx * 8);
	double *dw = malloc(L.total * 8);
	float *wf = rnd_f(5, L.total, &w), *xf = rnd_f(6, nx, &x), *gf = rnd_f(7, nx, &dy);
	float *yf = malloc(nx * 4), *wsf = malloc(nws * 4), *dxf = malloc(nx * 4);
	float *dwf = malloc(L.total * 4);
	ck_assert_int_eq(mla_fwd_f64(&c, B, S, w, x, y, ws), MB_OK);
	ck_assert_int_eq(mla_bwd_f64(&c, B, S, w, x, ws, dy, dx, dw), MB_OK);
	ck_assert_int_eq(mla_fwd_f32_blas(&c, B, S, wf, xf, yf, wsf), MB_OK);
	ck_assert_int_eq(mla_bwd_f32_blas(&c, B, S, wf, xf, wsf, gf, dxf, dwf), MB_OK);
	ck_assert_msg(rel_max(yf, y, nx) < 1e-4, "y %g", rel_max(yf, y, nx));
	ck_assert_msg(rel_max(dxf, dx, nx) < 1e-4, "dx %g", rel_max(dxf, dx, nx));
	ck_assert_msg(rel_max(dwf, dw, L.total) < 1e-4, "dw %g", rel_max(dwf, dw, L.total));
	struct gqa_config gc = { 32, 4, 2, 8, true, 10000.0, NULL };
	struct gqa_layout GL;
	gqa_layout_of(&gc, &GL);
	size_t gws = gqa_workspace_count(&gc, B, S);
	double *gw, *gws64 = malloc(gws * 8), *gdw = malloc(GL.total * 8);
	float *gwf = rnd_f(8, GL.total, &gw), *gwsf = malloc(gws * 4), *gdwf = malloc(GL.total * 4);
	ck_assert_int_eq(gqa_fwd_f64(&gc, B, S, gw, x, y, gws64), MB_OK);
	ck_assert_int_eq(gqa_bwd_f64(&gc, B, S, gw, x, gws64, dy, dx, gdw), MB_OK);
	ck_assert_int_eq(gqa_fwd_f32_blas(&gc, B, S, gwf, xf, yf, gwsf), MB_OK);
	ck_assert_int_eq(gqa_bwd_f32_blas(&gc, B, S, gwf, xf, gwsf, gf, dxf, gdwf), MB_OK);
	ck_assert_msg(rel_max(yf, y, nx) < 1e-4, "gqa y %g", rel_max(yf, y, nx));
	ck_assert_msg(rel_max(gdwf, gdw, GL.total) < 1e-4, "gqa dw %g", rel_max(gdwf, gdw, GL.total));
	free(w), free(x), free(dy), free(y), free(ws), free(dx), free(dw), free(wf), free(xf);
	free(gf), free(yf), free(wsf), free(dxf), free(dwf), free(gw), free(gws64), free(gdw);
	free(gwf), free(gwsf), free(gdwf);
}
END_TEST

/* A rounding that counts its calls: a copy (identity), or BF16 rounding. */
static int round_calls[2];   /* [transposed] */

static void round_act(void *ctx, const float *x, int rows, int cols, bool transposed, float *y)
{
	bool bf16 = ctx != NULL;
	round_calls[transposed]++;
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < cols; j++) {
			float v = x[(size_t)i * cols + j];
			if (bf16) {
				union { float f; uint32_t u; } b = { v };
				b.u = (b.u + 0x7fffu + ((b.u >> 16) & 1u)) & 0xffff0000u;
				v = b.f;
			}
			y[transposed ? (size_t)j * rows + i : (size_t)i * cols + j] = v;
		}
}

/* rel_f returns max |a - b| / max |b| over n floats. */
static double rel_f(const float *a, const float *b, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++)
		num = fmax(num, fabs((double)a[i] - b[i])), den = fmax(den, fabs((double)b[i]));
	return num / den;
}

/* Under a training recipe every projection of the MLA block rounds its Fprop input, its
 * Dgrad output gradient and both Wgrad operands: an identity rounding changes nothing,
 * BF16 rounding moves the results by BF16's error. */
START_TEST(projections_round_their_operands)
{
	static const int tag = 1;
	const struct attn_round copy = { NULL, round_act }, bf16 = { (void *)&tag, round_act };
	struct mla_config c = { 32, 4, 16, 16, 8, 8, 8, 10000.0, 1e-6, NULL };
	struct mla_layout L;
	int B = 2, S = 40;
	mla_layout_of(&c, &L);
	size_t nx = (size_t)B * S * c.dim, nws = mla_workspace_count(&c, B, S);
	double *w, *x, *dy;
	float *wf = rnd_f(15, L.total, &w), *xf = rnd_f(16, nx, &x), *gf = rnd_f(17, nx, &dy);
	float *out[3][3];   /* [none, copy, bf16][y, dx, dw] */
	const struct attn_round *r[3] = { NULL, &copy, &bf16 };
	float *wsf = malloc(nws * 4);
	for (int k = 0; k < 3; k++) {
		c.round = r[k];
		out[k][0] = malloc(nx * 4), out[k][1] = malloc(nx * 4), out[k][2] = malloc(L.total * 4);
		round_calls[0] = round_calls[1] = 0;
		ck_assert_int_eq(mla_fwd_f32_blas(&c, B, S, wf, xf, out[k][0], wsf), MB_OK);
		ck_assert_int_eq(round_calls[0], k ? 5 : 0);   /* wq_a, wq_b, wkv_a, wkv_b, wo */
		ck_assert_int_eq(mla_bwd_f32_blas(&c, B, S, wf, xf, wsf, gf, out[k][1], out[k][2]),
				 MB_OK);
		ck_assert_int_eq(round_calls[0], k ? 10 : 0);  /* and each Dgrad's dy */
		ck_assert_int_eq(round_calls[1], k ? 10 : 0);  /* each Wgrad's x^T and dy^T */
	}
	size_t n[3] = { nx, nx, L.total };
	for (int j = 0; j < 3; j++) {
		double same = rel_f(out[1][j], out[0][j], n[j]), moved = rel_f(out[2][j], out[0][j], n[j]);
		ck_assert_msg(same < 1e-5, "identity rounding moved output %d by %g", j, same);
		ck_assert_msg(moved > 1e-4 && moved < 2e-2, "bf16 moved output %d by %g", j, moved);
	}
	for (int k = 0; k < 3; k++)
		free(out[k][0]), free(out[k][1]), free(out[k][2]);
	free(w), free(x), free(dy), free(wf), free(xf), free(gf), free(wsf);
}
END_TEST

/* run_core runs the SGEMM core forward and backward on OpenBLAS's `threads`; out
 * receives o, lse, dq, dk, dv one after another. */
static void run_core(const struct attn_shape *s, const float *const in[4], int threads,
		     float *out)
{
	size_t t = (size_t)s->batch * s->seq, no = t * s->heads * s->d_v, nl = t * s->heads;
	size_t nq = t * s->heads * s->d_qk, nk = t * s->kv_heads * s->d_qk;
	float *o = out, *l = o + no, *dq = l + nl, *dk = dq + nq, *dv = dk + nk;
	int was = openblas_get_num_threads();
	openblas_set_num_threads(threads);
	ck_assert_int_eq(attn_fwd_blas(s, in[0], in[1], in[2], o, l), MB_OK);
	ck_assert_int_eq(attn_bwd_blas(s, in[0], in[1], in[2], o, in[3], l, dq, dk, dv), MB_OK);
	openblas_set_num_threads(was);
}

/* The (sequence, head) tasks run side by side on as many threads as OpenBLAS has: every
 * output has one writer and its sums a fixed order, so one thread and two give the same
 * bits (the training step's determinism rests on it). */
START_TEST(blas_core_same_bits_on_one_and_two_threads)
{
	struct attn_shape s = { 3, 130, 4, 2, 24, 16, true, (float)(1.0 / sqrt(24)) };
	size_t t = (size_t)s.batch * s.seq, nq = t * 4 * 24, nk = t * 2 * 24, nv = t * 2 * 16;
	size_t no = t * 4 * 16, all = no + t * 4 + nq + nk + nv;
	double *d[4];
	float *in[4] = { rnd_f(21, nq, &d[0]), rnd_f(22, nk, &d[1]), rnd_f(23, nv, &d[2]),
			 rnd_f(24, no, &d[3]) };
	float *one = malloc(all * 4), *two = malloc(all * 4);
	run_core(&s, (const float *const *)in, 1, one);
	run_core(&s, (const float *const *)in, 2, two);
	ck_assert_msg(memcmp(one, two, all * 4) == 0, "seed %llu: 1 and 2 threads differ",
		      (unsigned long long)test_seed());
	for (int i = 0; i < 4; i++)
		free(d[i]), free(in[i]);
	free(one), free(two);
}
END_TEST

static Suite *attention_blas_suite(void)
{
	Suite *s = suite_create("attention_blas");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, blas_core_matches_reference);
	tcase_add_test(tc, blocks_on_the_blas_core_match_fp64);
	tcase_add_test(tc, projections_round_their_operands);
	tcase_add_test(tc, blas_core_same_bits_on_one_and_two_threads);
	suite_add_tcase(s, tc);
	return s;
}

MB_CHECK_MAIN(attention_blas_suite)
