/*
 * compare.h - noise-aware comparison of two result documents ("moebench compare").
 *
 *   moebench compare BASE NEW [--threshold PCT] [--metric NAME]
 *
 * Records of BASE and NEW are paired by benchmark + name + params, where params are
 * compared as canonical JSON (object keys sorted, so key order does not matter). For
 * each pair one metric is compared: "time_s" by default (its "median"), or any metric of
 * "metrics" named by --metric (a scalar, or an object with a "median"). The direction
 * follows result.h: names ending in "_s" or "_err" are lower-is-better, all others
 * higher-is-better.
 *
 * Before judging, both documents are validated (compare_validate_doc): a record that
 * cannot be a measurement makes the comparison MB_ERR_PARSE with sum->invalid set.
 *
 * The rule, per matched record whose checks pass and metrics exist:
 *   With >= COMPARE_MIN_SAMPLES repetition times a side (time_s.samples) and a metric
 *   that is time_s or work / time (its value times the median time equal in both runs):
 *     the statistic is the minimum repetition time (a rate at that time), the
 *     throughput the code can reach, which contention of some repetitions cannot move;
 *     change_pct = 100 * (new - base) / base;
 *     NOISY      either run was oversubscribed (whatever the change: a slowed BASE
 *                hides a regression as well as a slowed NEW fakes one): a load
 *                average above COMPARE_MAX_LOAD_PER_CPU per CPU, or fewer than half of
 *                its repetitions free of preemption (timing.clean_reps <
 *                COMPARE_MIN_CLEAN_SHARE x n; where not counted, its cpu_per_wall
 *                below COMPARE_STARVED_SHARE of the other's); no verdict is possible,
 *                never a regression
 *     SAME       |change_pct| <= threshold (default 5%)
 *     FASTER / SLOWER  |change_pct| > threshold AND a Mann-Whitney test over the
 *                repetitions gives p < COMPARE_ALPHA in the same direction
 *     AMBIGUOUS  |change_pct| > threshold, not significant (or the other direction)
 *   Otherwise (older files, few repetitions, other metrics), the median rule:
 *     change_pct of the metric's value (a scalar, or an object's "median");
 *     noise_pct  = 100 * 2 * sqrt(cv_base^2 + cv_new^2), cv the robust
 *                  1.4826 * mad / median of time_s (else "cv", else 0);
 *     SAME within the threshold; FASTER / SLOWER beyond it and beyond noise_pct;
 *     AMBIGUOUS beyond the threshold within the noise.
 *   BROKEN     check passed in BASE and fails in NEW (counts as a regression)
 *   n/a        the metric is null or missing in either run, base is 0, or the check
 *              failed in BASE (it is no performance figure); never a regression
 *
 * The text table shows a "_s" metric in milliseconds (base_time_ms); the JSON keeps
 * every metric in its own unit (seconds for time_s).
 *
 * Records present in only one document are listed ("only in base: ...", "only in new:
 * ..."); they are not verdicts. The caller exits 1 when compare_has_regression, 0
 * otherwise, and 2 when a function here returns MB_ERR_PARSE (an invalid document, no
 * record in common, or a --metric that no matched record has), with sum->why as reason.
 */
#ifndef MB_HARNESS_COMPARE_H
#define MB_HARNESS_COMPARE_H

#include <stdbool.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#define COMPARE_DEFAULT_THRESHOLD_PCT 5.0
#define COMPARE_DEFAULT_METRIC "time_s"

enum compare_verdict {
	COMPARE_SAME,
	COMPARE_FASTER,
	COMPARE_SLOWER,
	COMPARE_AMBIGUOUS,
	COMPARE_BROKEN,
	COMPARE_NA,
	COMPARE_NOISY,
	COMPARE_NVERDICTS
};

struct compare_opts {
	double threshold_pct; /* SAME band in percent, >= 0 */
	const char *metric;   /* metric name; NULL means "time_s" */
};

struct compare_summary {
	int counts[COMPARE_NVERDICTS]; /* matched records per verdict */
	int matched;                   /* records found in both documents */
	int only_base;                 /* records found only in BASE */
	int only_new;                  /* records found only in NEW */
	char why[512];                 /* reason, when MB_ERR_PARSE is returned */
	bool invalid;                  /* MB_ERR_PARSE came from compare_validate_doc */
};

/* compare_opts_default fills o with the defaults: threshold 5%, metric "time_s". */
void compare_opts_default(struct compare_opts *o);

/* compare_docs compares two parsed result documents and writes an aligned table
 * (benchmark/name, base, new, change_pct, noise_pct, verdict), the records only in one
 * of them, and a footer stating the rule and the counts, to out. o may be NULL for the
 * defaults. Returns MB_OK with *sum filled; MB_ERR_PARSE with sum->why set when the
 * documents are mismatched or lack "records"; MB_ERR_ARG for a NULL argument or a
 * negative threshold; MB_ERR_NOMEM; MB_ERR_IO when writing fails. */
int compare_docs(const cJSON *base, const cJSON *cur, const struct compare_opts *o,
		 FILE *out, struct compare_summary *sum);

/* compare_docs_json does the same comparison and returns it as a new cJSON object in
 * *json (owned by the caller), for CI:
 *   { "schema": "moebench.compare/1", "metric", "lower_is_better", "threshold_pct",
 *     "rule", "records": [ { "benchmark", "name", "params", "base", "new",
 *     "change_pct", "noise_pct", "verdict", "statistic", "p_value", "oversubscribed" } ], "only_in_base": [ {benchmark, name,
 *     params} ], "only_in_new": [...], "summary": { "SAME": n, ..., "n/a": n,
 *     "matched", "only_in_base", "only_in_new", "regression": bool } }
 * Numbers that are not defined (n/a) are null. Returns as compare_docs. */
int compare_docs_json(const cJSON *base, const cJSON *cur, const struct compare_opts *o,
		      cJSON **json, struct compare_summary *sum);

/* compare_classify applies the verdict rule above to one pair that has numbers and
 * passing checks: change and noise in percent, lower_is_better for the direction. */
enum compare_verdict compare_classify(double change_pct, double noise_pct,
				      double threshold_pct, bool lower_is_better);

/* The robust rule's constants (see the file comment). */
#define COMPARE_QUANTILE 0.0      /* quantile of the repetition times compared: the minimum */
#define COMPARE_ALPHA 0.01        /* Mann-Whitney two-sided p-value that counts */
#define COMPARE_MIN_SAMPLES 6     /* repetitions a side below which the median rule applies
				     (6 a side is the fewest that can reach p < 0.01) */
#define COMPARE_STARVED_SHARE 0.8 /* NEW's cpu_per_wall below this share of BASE's */
#define COMPARE_MIN_CLEAN_SHARE 0.5 /* a run's repetitions free of preemption, at least */
#define COMPARE_MAX_LOAD_PER_CPU 2.0 /* a run's 1-minute load average per CPU, at most */

/* The robust statistics of one matched pair (compare_robust.c). */
struct compare_robust {
	bool used;       /* both records keep >= COMPARE_MIN_SAMPLES repetition times */
	double base;     /* COMPARE_QUANTILE of BASE's repetition times, seconds */
	double cur;      /* the same of NEW's */
	double z;        /* Mann-Whitney z: > 0 when NEW's times tend to be larger */
	double p_value;  /* its two-sided p-value */
	bool starved;    /* a run was oversubscribed: load average > COMPARE_MAX_LOAD_
			    PER_CPU per CPU, fewer than COMPARE_MIN_CLEAN_SHARE of its
			    repetitions free of preemption, or, where that was not
			    counted, its cpu_per_wall < COMPARE_STARVED_SHARE x the
			    other's */
};

/* compare_robust fills r for a matched pair (r->used false when either record lacks
 * samples). Returns MB_OK or MB_ERR_NOMEM. */
int compare_robust(const cJSON *base, const cJSON *cur, struct compare_robust *r);

/* compare_classify_robust applies the robust rule to a pair whose change_pct was taken
 * from the minima: NOISY when r->starved, then SAME, then the rank test. */
enum compare_verdict compare_classify_robust(double change_pct, double threshold_pct,
					     const struct compare_robust *r,
					     bool lower_is_better);

/* compare_verdict_name returns "SAME", "FASTER", "SLOWER", "AMBIGUOUS", "BROKEN", "n/a"
 * or "NOISY". */
const char *compare_verdict_name(enum compare_verdict v);

/* compare_has_regression tells whether any record is SLOWER or BROKEN. */
bool compare_has_regression(const struct compare_summary *sum);

/* compare_validate_doc refuses what cannot be a measurement, naming the first record
 * ("records[3] (gemm/fp8/...): time_s.min ...") in why: per record, a passing check
 * needs time_s.n a whole number >= 1 and median, min, max, mean, stddev, cv (and mad
 * when present) finite and >= 0 with min <= median <= max and mean inside; a failed
 * check may hold nulls and n = 0; time_s.samples, when present, at most n numbers inside
 * [min, max]; every numeric metric finite; no two records with the same key
 * (compare_record_key). Returns MB_OK, MB_ERR_PARSE or MB_ERR_NOMEM. result_read has
 * already checked the schema (keys and types) and that nothing follows the JSON. */
int compare_validate_doc(const cJSON *doc, char *why, size_t why_len);

/* compare_record_key returns "benchmark \x1f name \x1f canonical params" (to free()),
 * the identity under which records of two documents are paired; NULL when out of
 * memory. */
char *compare_record_key(const cJSON *rec);

/* compare_canonical_json prints a JSON value with every object's keys sorted (arrays
 * keep their order), without whitespace, so equal values print equal. Returns a string
 * to free(), or NULL when out of memory. */
char *compare_canonical_json(const cJSON *item);

#endif
