/* stats.c - summary statistics of repeated timings (see stats.h). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int stats_compute(const double *samples, size_t n, struct stats *out)
{
	if (n < 1)
		return MB_ERR_ARG;
	double *s = malloc(n * sizeof(*s));
	if (!s)
		return MB_ERR_NOMEM;
	memcpy(s, samples, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);

	double sum = 0.0;
	for (size_t i = 0; i < n; i++)
		sum += s[i];
	double mean = sum / (double)n;
	/* NOTE: two-pass variance; the one-pass sum-of-squares form loses digits when
	 * the spread is tiny next to the mean, which is the usual case for timings. */
	double ss = 0.0;
	for (size_t i = 0; i < n; i++)
		ss += (s[i] - mean) * (s[i] - mean);

	out->n = (long)n;
	out->min = s[0];
	out->max = s[n - 1];
	out->median = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	out->mean = mean;
	out->stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
	out->cv = (n > 1 && mean != 0.0) ? out->stddev / mean : 0.0;
	for (size_t i = 0; i < n; i++)
		s[i] = fabs(s[i] - out->median);
	qsort(s, n, sizeof(*s), cmp_double);
	out->mad = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	free(s);
	return MB_OK;
}

double stats_quantile(const double *samples, size_t n, double q)
{
	double *s, h, v;
	size_t lo;

	if (n < 1 || !(q >= 0 && q <= 1) || !(s = malloc(n * sizeof(*s))))
		return NAN;
	memcpy(s, samples, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	h = q * (double)(n - 1);
	lo = (size_t)floor(h);
	v = lo + 1 < n ? s[lo] + (h - (double)lo) * (s[lo + 1] - s[lo]) : s[n - 1];
	free(s);
	return v;
}

/* One sample of the pooled set: its value and which side it came from. */
struct ranked {
	double v;
	int side;
};

static int cmp_ranked(const void *a, const void *b)
{
	return cmp_double(&((const struct ranked *)a)->v, &((const struct ranked *)b)->v);
}

int stats_mann_whitney(const double *a, size_t na, const double *b, size_t nb, double *z,
		       double *p)
{
	size_t n = na + nb, i, j;
	struct ranked *r;
	double rank_b = 0, ties = 0, u, mu, sigma, d;

	if (na < 1 || nb < 1)
		return MB_ERR_ARG;
	r = malloc(n * sizeof(*r));
	if (!r)
		return MB_ERR_NOMEM;
	for (i = 0; i < n; i++)
		r[i] = (struct ranked){ i < na ? a[i] : b[i - na], i >= na };
	qsort(r, n, sizeof(*r), cmp_ranked);
	/* Midranks for ties: a run of t equal values shares the mean of its ranks. */
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && r[j].v == r[i].v; j++)
			;
		double t = (double)(j - i), mid = 0.5 * (double)(i + 1 + j);
		for (size_t k = i; k < j; k++)
			rank_b += r[k].side ? mid : 0;
		ties += t * t * t - t;
	}
	free(r);
	u = rank_b - 0.5 * (double)nb * (double)(nb + 1);
	mu = 0.5 * (double)na * (double)nb;
	sigma = sqrt((double)na * (double)nb / 12.0 *
		     ((double)(n + 1) - ties / ((double)n * (double)(n - 1) + (n < 2))));
	d = u - mu;
	d = d > 0.5 ? d - 0.5 : d < -0.5 ? d + 0.5 : 0.0;
	*z = sigma > 0 ? d / sigma : 0.0;
	*p = sigma > 0 ? erfc(fabs(*z) / sqrt(2.0)) : 1.0;
	return MB_OK;
}
