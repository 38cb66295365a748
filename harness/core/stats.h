/*
 * stats.h - summary statistics of repeated timings.
 *
 * The median is the figure moebench quotes; min, max and the coefficient of variation
 * (stddev / mean, sample standard deviation) say how noisy it was. The median absolute
 * deviation (MAD) is the robust spread: one preempted repetition moves the stddev a
 * lot and the MAD hardly at all, so compare judges noise by 1.4826 * MAD / median
 * (the normal-consistent scale) when it is recorded.
 */
#ifndef MB_HARNESS_STATS_H
#define MB_HARNESS_STATS_H

#include <stddef.h>

struct stats {
	double median;
	double min;
	double max;
	double mean;
	double stddev; /* sample standard deviation (n - 1); 0 when n < 2 */
	double cv;     /* stddev / mean; 0 when n < 2 or mean == 0 */
	double mad;    /* median absolute deviation from the median (unscaled) */
	long n;
};

/* stats_compute summarises n samples (n >= 1). The samples are not modified; a
 * scratch copy is sorted. Returns MB_OK, MB_ERR_ARG (n < 1) or MB_ERR_NOMEM. */
int stats_compute(const double *samples, size_t n, struct stats *out);

/* stats_quantile returns the q-quantile (0 <= q <= 1) of n >= 1 samples, linearly
 * interpolated between order statistics (type 7, R's default); NAN when n is 0 or out
 * of memory. The samples are not modified. */
double stats_quantile(const double *samples, size_t n, double q);

/* stats_mann_whitney tests whether two sets of repetitions come from one distribution
 * (Mann-Whitney U, normal approximation with continuity and tie corrections; fine from
 * about 8 samples a side). *z > 0 when b tends to be larger than a; *p is the two-sided
 * p-value. Nothing is assumed about the shape of the distributions, which suits timings
 * (skewed, with a tail of preempted repetitions). Returns MB_OK, MB_ERR_ARG (a side
 * empty) or MB_ERR_NOMEM. */
int stats_mann_whitney(const double *a, size_t na, const double *b, size_t nb, double *z,
		       double *p);

#endif
