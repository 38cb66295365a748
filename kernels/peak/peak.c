/*
 * peak.c - CPU peak kernels of peak.h: OpenBLAS SGEMM/DGEMM and STREAM-style copy and
 * triad with OpenMP, each with its check.
 *
 *   GEMM   D[M,N] = A[M,K] * B[N,K]^T, row-major, through cblas_?gemm (NoTrans, Trans).
 *          Check: sampled elements against an FP64 dot product, error relative to
 *          sum_k |A_ik B_jk|.
 *   STREAM copy c = a (16 bytes per element moved), triad a = b + s*c (24 bytes).
 *          Inputs are small integers and s = 3, so every result is exact in FP64
 *          whether or not the compiler contracts to FMA: the check is exact equality.
 */
#include "peak.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "rng.h"
#include "status.h"

struct peak_gemm_cpu {
	enum peak_dtype dtype;
	int m, n, k;
	uint64_t seed;
	void *a, *b, *d;  /* float or double, by dtype */
};

int peak_gemm_cpu_create(struct peak_gemm_cpu **out, enum peak_dtype dtype, int m, int n,
			 int k, uint64_t seed)
{
	*out = NULL;
	if ((dtype != PEAK_FP32 && dtype != PEAK_FP64) || m < 1 || n < 1 || k < 1)
		return MB_ERR_ARG;
	size_t es = dtype == PEAK_FP32 ? sizeof(float) : sizeof(double);
	struct peak_gemm_cpu *g = calloc(1, sizeof(*g));
	if (!g)
		return MB_ERR_NOMEM;
	*g = (struct peak_gemm_cpu){ dtype, m, n, k, seed, NULL, NULL, NULL };
	g->a = malloc((size_t)m * (size_t)k * es);
	g->b = malloc((size_t)n * (size_t)k * es);
	g->d = malloc((size_t)m * (size_t)n * es);
	if (!g->a || !g->b || !g->d) {
		peak_gemm_cpu_destroy(g);
		return MB_ERR_NOMEM;
	}
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, 1);
	if (dtype == PEAK_FP32) {
		mb_rng_fill_uniform_f32(&rng, g->a, (size_t)m * (size_t)k, -1.0f, 1.0f);
		mb_rng_fill_uniform_f32(&rng, g->b, (size_t)n * (size_t)k, -1.0f, 1.0f);
	} else {
		mb_rng_fill_uniform_f64(&rng, g->a, (size_t)m * (size_t)k, -1.0, 1.0);
		mb_rng_fill_uniform_f64(&rng, g->b, (size_t)n * (size_t)k, -1.0, 1.0);
	}
	*out = g;
	return MB_OK;
}

void peak_gemm_cpu_poison(struct peak_gemm_cpu *g)
{
	/* All-ones bytes are NaN in both FP32 and FP64. */
	size_t es = g->dtype == PEAK_FP32 ? sizeof(float) : sizeof(double);
	memset(g->d, 0xff, (size_t)g->m * (size_t)g->n * es);
}

void peak_gemm_cpu_run(struct peak_gemm_cpu *g)
{
	if (g->dtype == PEAK_FP32)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->m, g->n, g->k, 1.0f,
			    g->a, g->k, g->b, g->k, 0.0f, g->d, g->n);
	else
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->m, g->n, g->k, 1.0,
			    g->a, g->k, g->b, g->k, 0.0, g->d, g->n);
}

/* elem reads element i of a float or double array as double. */
static double elem(const void *p, enum peak_dtype dt, size_t i)
{
	return dt == PEAK_FP32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

int peak_gemm_cpu_check(struct peak_gemm_cpu *g, int samples, struct peak_check *chk)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, g->seed, 99);
	/* NOTE: the bound is a few ulps of the accumulation type times a growth factor
	 * in log2(K) for blocked summation: FP32 ~1e-5 for K up to tens of thousands. */
	chk->tolerance = g->dtype == PEAK_FP32 ? 1e-5 : 1e-13;
	chk->max_err = 0;
	chk->mismatches = 0;
	chk->samples = samples;
	for (int s = 0; s < samples; s++) {
		size_t i = s == 0 ? 0 : s == 1 ? (size_t)g->m - 1 : mb_rng_next(&rng) % (size_t)g->m;
		size_t j = s == 0 ? 0 : s == 1 ? (size_t)g->n - 1 : mb_rng_next(&rng) % (size_t)g->n;
		double ref = 0, mag = 0;
		for (size_t k = 0; k < (size_t)g->k; k++) {
			double p = elem(g->a, g->dtype, i * (size_t)g->k + k) *
				   elem(g->b, g->dtype, j * (size_t)g->k + k);
			ref += p;
			mag += fabs(p);
		}
		double d = elem(g->d, g->dtype, i * (size_t)g->n + j);
		double err = fabs(d - ref) / (mag > 0 ? mag : 1);
		if (!isfinite(d) || !(err <= chk->tolerance))
			chk->mismatches++;
		if (!isfinite(d))
			err = INFINITY;
		if (err > chk->max_err)
			chk->max_err = err;
	}
	return MB_OK;
}

void peak_gemm_cpu_destroy(struct peak_gemm_cpu *g)
{
	if (!g)
		return;
	free(g->a);
	free(g->b);
	free(g->d);
	free(g);
}

struct peak_stream_cpu {
	enum peak_stream_op op;
	size_t n;
	double *a, *b, *c;
};

int peak_stream_cpu_create(struct peak_stream_cpu **out, enum peak_stream_op op, size_t n,
			   uint64_t seed)
{
	*out = NULL;
	if (n < 1)
		return MB_ERR_ARG;
	struct peak_stream_cpu *s = calloc(1, sizeof(*s));
	if (!s)
		return MB_ERR_NOMEM;
	s->op = op;
	s->n = n;
	s->a = malloc(n * sizeof(double));
	s->b = malloc(n * sizeof(double));
	s->c = malloc(n * sizeof(double));
	if (!s->a || !s->b || !s->c) {
		peak_stream_cpu_destroy(s);
		return MB_ERR_NOMEM;
	}
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, 2);
	/* NOTE: first touch in a parallel loop places pages by the threads that use them. */
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i++)
		s->a[i] = s->b[i] = s->c[i] = 0;
	for (size_t i = 0; i < n; i++) {
		s->a[i] = (double)(mb_rng_next(&rng) % 1000);
		s->b[i] = (double)(mb_rng_next(&rng) % 1000);
		s->c[i] = (double)(mb_rng_next(&rng) % 1000) - 500;
	}
	*out = s;
	return MB_OK;
}

size_t peak_stream_cpu_bytes(const struct peak_stream_cpu *s)
{
	return (s->op == PEAK_STREAM_COPY ? 2 : 3) * s->n * sizeof(double);
}

void peak_stream_cpu_poison(struct peak_stream_cpu *s)
{
	double *dst = s->op == PEAK_STREAM_COPY ? s->c : s->a;
	memset(dst, 0xff, s->n * sizeof(double));
}

void peak_stream_cpu_run(struct peak_stream_cpu *s)
{
	double *restrict a = s->a, *restrict b = s->b, *restrict c = s->c;
	const double scalar = 3.0;
	size_t n = s->n;
	if (s->op == PEAK_STREAM_COPY) {
#pragma omp parallel for schedule(static)
		for (size_t i = 0; i < n; i++)
			c[i] = a[i];
	} else {
#pragma omp parallel for schedule(static)
		for (size_t i = 0; i < n; i++)
			a[i] = b[i] + scalar * c[i];
	}
}

int peak_stream_cpu_check(struct peak_stream_cpu *s, struct peak_check *chk)
{
	chk->tolerance = 0;
	chk->mismatches = 0;
	chk->samples = (long)s->n;
	for (size_t i = 0; i < s->n; i++) {
		/* copy: c must equal a. triad: a must equal b + 3c, exact in FP64 for the
		 * integer inputs used here; a repeated triad recomputes the same value. */
		double want = s->op == PEAK_STREAM_COPY ? s->a[i] : s->b[i] + 3.0 * s->c[i];
		double got = s->op == PEAK_STREAM_COPY ? s->c[i] : s->a[i];
		if (got != want)
			chk->mismatches++;
	}
	chk->max_err = chk->mismatches ? 1 : 0;
	return MB_OK;
}

void peak_stream_cpu_destroy(struct peak_stream_cpu *s)
{
	if (!s)
		return;
	free(s->a);
	free(s->b);
	free(s->c);
	free(s);
}
