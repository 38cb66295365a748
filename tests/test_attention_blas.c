/*
 * test_attention_blas.c - Check suite for the SGEMM attention core
 * (kernels/attention/attention_blas.c): forward (o, lse) and backward (dq, dk, dv)
 * against the FP64 reference core of attention.c on fresh random inputs, MHA, GQA and
 * MQA, causal and full, d_qk != d_v, sequences on both sides of the threading threshold;
 * and the MLA and GQA blocks built on it against their FP64 versions.
 *
 * A failure prints the seed; MB_TEST_SEED=<n> replays it.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

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
				  { 1, 11, 3, 1, 5, 7 }, { 2, 70, 4, 1, 24, 16 } };
	for (int i = 0; i < 5; i++)
		for (int causal = 0; causal < 2; causal++) {
			const int *x = shapes[i];
			check_shape(x[0], x[1], x[2], x[3], x[4], x[5], causal);
		}
}
END_TEST

START_TEST(blocks_on_the_blas_core_match_fp64)
{
	struct mla_config c = { 32, 4, 16, 16, 8, 8, 8, 10000.0, 1e-6 };
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
	struct gqa_config gc = { 32, 4, 2, 8, true, 10000.0 };
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

static Suite *attention_blas_suite(void)
{
	Suite *s = suite_create("attention_blas");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, blas_core_matches_reference);
	tcase_add_test(tc, blocks_on_the_blas_core_match_fp64);
	suite_add_tcase(s, tc);
	return s;
}

MB_CHECK_MAIN(attention_blas_suite)
