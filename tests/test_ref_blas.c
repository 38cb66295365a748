/*
 * test_ref_blas.c - the FP64 references that judge the MLA and GQA blocks do not use
 * the BLAS under test. This binary carries its own cblas_dgemm, a wrong one (it adds
 * 1 to every output and counts its calls); the linker binds moebench's calls to it.
 * The FP64 blocks must never call it and must still agree with the FP32 blocks (which
 * use the real SGEMM), so a BLAS wrong in DGEMM cannot make a check pass or fail.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <cblas.h>

#include "check_main.h"
#include "mla.h"
#include "ref_dgemm.h"
#include "rng.h"
#include "status.h"

static long wrong_calls;

/* cblas_dgemm: the wrong BLAS (see the file comment). */
void cblas_dgemm(OPENBLAS_CONST enum CBLAS_ORDER order, OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,
		 OPENBLAS_CONST enum CBLAS_TRANSPOSE tb, OPENBLAS_CONST blasint m,
		 OPENBLAS_CONST blasint n, OPENBLAS_CONST blasint k, OPENBLAS_CONST double alpha,
		 OPENBLAS_CONST double *a, OPENBLAS_CONST blasint lda, OPENBLAS_CONST double *b,
		 OPENBLAS_CONST blasint ldb, OPENBLAS_CONST double beta, double *c,
		 OPENBLAS_CONST blasint ldc)
{
	attn_ref_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
	for (blasint i = 0; i < m; i++)
		for (blasint j = 0; j < n; j++)
			c[(size_t)i * (size_t)ldc + (size_t)j] += 1.0;
	wrong_calls++;
}

/* rnd returns n never-zero doubles uniform in [-a, a). */
static double *rnd(uint64_t stream, size_t n, double a)
{
	struct mb_rng rng;
	double *x = malloc((n ? n : 1) * sizeof(*x));
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, 4242, stream);
	for (size_t i = 0; i < n; i++)
		do
			x[i] = mb_rng_uniform(&rng, -a, a);
		while (x[i] == 0.0);
	return x;
}

static float *to_f32(const double *x, size_t n)
{
	float *f = malloc((n ? n : 1) * sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f[i] = (float)x[i];
	return f;
}

static double max_diff(const float *a, const double *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(a[i] - b[i]));
	return m;
}

START_TEST(mla_fp64_reference_does_not_call_dgemm)
{
	const struct mla_config c = { .dim = 24, .heads = 4, .q_lora_rank = 6, .kv_lora_rank = 5,
				      .nope = 4, .rope = 4, .v_dim = 3, .rope_theta = 10000,
				      .eps = 1e-6 };
	struct mla_layout l;
	int batch = 2, seq = 9;
	mla_layout_of(&c, &l);
	size_t nw = l.total, nx = (size_t)batch * seq * c.dim;
	size_t nws = mla_workspace_count(&c, batch, seq);
	double *w = rnd(1, nw, 0.3), *x = rnd(2, nx, 1), *y = malloc(nx * 8), *ws = malloc(nws * 8);
	float *wf = to_f32(w, nw), *xf = to_f32(x, nx), *yf = malloc(nx * 4), *wsf = malloc(nws * 4);

	wrong_calls = 0;
	ck_assert_int_eq(mla_fwd_f64(&c, batch, seq, w, x, y, ws), MB_OK);
	ck_assert_int_eq(mla_fwd_f32(&c, batch, seq, wf, xf, yf, wsf), MB_OK);
	ck_assert_int_eq(wrong_calls, 0);
	ck_assert_msg(max_diff(yf, y, nx) < 1e-4, "y differs by %g", max_diff(yf, y, nx));
	free(w), free(x), free(y), free(ws), free(wf), free(xf), free(yf), free(wsf);
}
END_TEST

START_TEST(wrong_dgemm_is_reachable)
{
	/* The interposition works: a direct call lands in the wrong BLAS (else the test
	 * above could not fail). */
	double a = 2, b = 3, c = 0;
	wrong_calls = 0;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1);
	ck_assert_int_eq(wrong_calls, 1);
	ck_assert_double_eq(c, 7);
}
END_TEST

START_TEST(ref_dgemm_matches_definition_all_transposes)
{
	int m = 5, n = 7, k = 3;
	double *a = rnd(3, 35, 1), *b = rnd(4, 35, 1), *c0 = rnd(5, 35, 1);
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			double c[35];
			int lda = ta ? m : k, ldb = tb ? k : n;
			for (int i = 0; i < 35; i++)
				c[i] = c0[i];
			attn_ref_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
				       tb ? CblasTrans : CblasNoTrans, m, n, k, 0.5, a, lda, b, ldb,
				       2.0, c, n);
			for (int i = 0; i < m; i++)
				for (int j = 0; j < n; j++) {
					double s = 0;
					for (int p = 0; p < k; p++)
						s += (ta ? a[p * lda + i] : a[i * lda + p]) *
						     (tb ? b[j * ldb + p] : b[p * ldb + j]);
					ck_assert_double_eq_tol(c[i * n + j], 0.5 * s + 2.0 * c0[i * n + j],
								1e-14);
				}
		}
	free(a), free(b), free(c0);
}
END_TEST

static Suite *ref_blas_suite(void)
{
	Suite *s = suite_create("ref_blas");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, wrong_dgemm_is_reachable);
	tcase_add_test(tc, ref_dgemm_matches_definition_all_transposes);
	tcase_add_test(tc, mla_fp64_reference_does_not_call_dgemm);
	suite_add_tcase(s, tc);
	return s;
}

MB_CHECK_MAIN(ref_blas_suite)
