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

#endif
