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
