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
 * The rule, per matched record:
 *   change_pct = 100 * (new - base) / base                      (signed, of the metric)
 *   noise_pct  = 100 * 2 * sqrt(cv_base^2 + cv_new^2)
 *     where cv is time_s's relative spread: the robust 1.4826 * mad / median when "mad"
 *     is recorded (a single preempted repetition barely moves it), else "cv"
 *     (stddev / mean), else 0 for a single repetition. Every derived metric shares
 *     time_s's relative noise. Twice the combined spread is a ~95% band.
 *   BROKEN     check passed in BASE and fails in NEW (counts as a regression)
 *   n/a        the metric is null or missing in either run, base is 0, or the check
 *              failed in BASE (it is no performance figure); never a regression
 *   SAME       |change_pct| <= threshold (default 5%)
 *   FASTER / SLOWER   |change_pct| > threshold and |change_pct| > noise_pct; SLOWER is
 *              the worse direction (time up, or tflops down)
 *   AMBIGUOUS  |change_pct| > threshold but within noise_pct
 *
 * The text table shows a "_s" metric in milliseconds (base_time_ms); the JSON keeps
 * every metric in its own unit (seconds for time_s).
 *
 * Records present in only one document are listed ("only in base: ...", "only in new:
 * ..."); they are not verdicts. The caller exits 1 when compare_has_regression, 0
 * otherwise, and 2 when a function here returns MB_ERR_PARSE (mismatched documents: no
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
	char why[256];                 /* reason, when MB_ERR_PARSE is returned */
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
 *     "change_pct", "noise_pct", "verdict" } ], "only_in_base": [ {benchmark, name,
 *     params} ], "only_in_new": [...], "summary": { "SAME": n, ..., "n/a": n,
 *     "matched", "only_in_base", "only_in_new", "regression": bool } }
 * Numbers that are not defined (n/a) are null. Returns as compare_docs. */
int compare_docs_json(const cJSON *base, const cJSON *cur, const struct compare_opts *o,
		      cJSON **json, struct compare_summary *sum);

/* compare_classify applies the verdict rule above to one pair that has numbers and
 * passing checks: change and noise in percent, lower_is_better for the direction. */
enum compare_verdict compare_classify(double change_pct, double noise_pct,
				      double threshold_pct, bool lower_is_better);

/* compare_verdict_name returns "SAME", "FASTER", "SLOWER", "AMBIGUOUS", "BROKEN" or
 * "n/a". */
const char *compare_verdict_name(enum compare_verdict v);

/* compare_has_regression tells whether any record is SLOWER or BROKEN. */
bool compare_has_regression(const struct compare_summary *sum);

/* compare_canonical_json prints a JSON value with every object's keys sorted (arrays
 * keep their order), without whitespace, so equal values print equal. Returns a string
 * to free(), or NULL when out of memory. */
char *compare_canonical_json(const cJSON *item);

#endif
