/*
 * compare_robust.c - the statistics behind compare's verdict when both records keep
 * their repetition times (time_s.samples, see compare.h for the rule): a low quantile
 * of each run, a Mann-Whitney test between the runs, and whether either run was
 * oversubscribed (record "timing", noise.h).
 */
#include "compare.h"

#include <math.h>
#include <stdlib.h>

#include "stats.h"
#include "status.h"

/* samples_of copies time_s.samples of a record into a new array (to free()); NULL
 * when there are fewer than COMPARE_MIN_SAMPLES or memory ran out. */
static double *samples_of(const cJSON *rec, size_t *n)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(rec, "metrics"), "time_s");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "samples"), *x;
	double *v;

	*n = (size_t)cJSON_GetArraySize(s);
	if (!cJSON_IsArray(s) || *n < COMPARE_MIN_SAMPLES || !(v = malloc(*n * sizeof(*v))))
		return NULL;
	*n = 0;
	cJSON_ArrayForEach(x, s)
		v[(*n)++] = x->valuedouble;
	return v;
}

/* timing_of reads timing[key] of a record, NAN when absent or null. */
static double timing_of(const cJSON *rec, const char *key)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(rec, "timing"), key);
	return cJSON_IsNumber(c) ? c->valuedouble : NAN;
}

/* contended tells whether run a ran on a machine too busy for its times to be trusted:
 * a 1-minute load average above COMPARE_MAX_LOAD_PER_CPU per CPU (memory bandwidth and
 * caches are shared with the co-runners even when no repetition is preempted); else,
 * where repetitions were counted, fewer than COMPARE_MIN_CLEAN_SHARE of them ran without
 * a preemption (with none, the minimum itself was preempted; with few, the machine was
 * oversubscribed, and the co-runners that took the cores also took memory bandwidth
 * and cache from the clean ones); elsewhere, a's process got less than
 * COMPARE_STARVED_SHARE of the other run's (b's) CPU per wall second. */
static bool contended(const cJSON *a, const cJSON *b)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "metrics"),
						 "time_s"), "n");
	double clean = timing_of(a, "clean_reps");
	double ca = timing_of(a, "cpu_per_wall"), cb = timing_of(b, "cpu_per_wall");
	double load = timing_of(a, "load_avg_1m"), cpus = timing_of(a, "online_cpus");
	if (cpus >= 1 && load > COMPARE_MAX_LOAD_PER_CPU * cpus)
		return true;
	if (isfinite(clean) && cJSON_IsNumber(n) && n->valuedouble >= 1)
		return clean < COMPARE_MIN_CLEAN_SHARE * n->valuedouble;
	return isfinite(ca) && isfinite(cb) && ca < COMPARE_STARVED_SHARE * cb;
}

int compare_robust(const cJSON *base, const cJSON *cur, struct compare_robust *r)
{
	size_t nb = 0, nc = 0;
	double *sb = samples_of(base, &nb), *sc = samples_of(cur, &nc);
	int err = MB_OK;

	r->used = false;
	r->starved = contended(base, cur) || contended(cur, base);
	if (sb && sc) {
		r->base = stats_quantile(sb, nb, COMPARE_QUANTILE);
		r->cur = stats_quantile(sc, nc, COMPARE_QUANTILE);
		err = stats_mann_whitney(sb, nb, sc, nc, &r->z, &r->p_value);
		r->used = !err && isfinite(r->base) && isfinite(r->cur) && r->base > 0;
	}
	free(sb);
	free(sc);
	return err == MB_ERR_NOMEM ? err : MB_OK;
}

enum compare_verdict compare_classify_robust(double change_pct, double threshold_pct,
					     const struct compare_robust *r,
					     bool lower_is_better)
{
	bool worse = lower_is_better ? change_pct > 0 : change_pct < 0;

	/* NOTE: first: under contention a SAME is no more reliable than a SLOWER (a
	 * slowed BASE hides a regression). */
	if (r->starved)
		return COMPARE_NOISY;
	if (!(fabs(change_pct) > threshold_pct))
		return COMPARE_SAME;
	/* The rank test must agree in direction: times larger in NEW when worse. */
	if (!(r->p_value < COMPARE_ALPHA) || (worse ? r->z <= 0 : r->z >= 0))
		return COMPARE_AMBIGUOUS;
	return worse ? COMPARE_SLOWER : COMPARE_FASTER;
}
