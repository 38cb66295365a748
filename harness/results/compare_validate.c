/*
 * compare_validate.c - what `compare` refuses to judge (see compare.h): a document that
 * passed the schema check of result_read but whose numbers cannot be a measurement.
 * A regression gate that accepts a negative time, min > max, n = 0 or two records with
 * the same key can be passed by a doctored or broken file, so each such record is
 * named and the comparison refused.
 */
#include "compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* label_of writes "records[i] (benchmark/name)" for messages. */
static void label_of(const cJSON *rec, int i, char *buf, size_t len)
{
	const char *b = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "benchmark"));
	const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "name"));
	snprintf(buf, len, "records[%d] (%s/%s)", i, b ? b : "?", n ? n : "?");
}

/* time_stat reads time_s[key]: *v the number, NAN for null; false when it is neither
 * a finite non-negative number nor (when nulls are allowed) null. */
static bool time_stat(const cJSON *t, const char *key, bool null_ok, double *v)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(t, key);
	*v = NAN;
	if (cJSON_IsNull(x) || !x)
		return null_ok && (x || strcmp(key, "mad") == 0);
	if (!cJSON_IsNumber(x))
		return false;
	*v = x->valuedouble;
	return isfinite(*v) && *v >= 0;
}

/* check_samples checks time_s.samples when present: an array of at most n finite,
 * non-negative repetition times inside [min, max]. */
static int check_samples(const cJSON *t, double n, double mn, double mx, char *why,
			 size_t len)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "samples"), *x;
	if (!s)
		return MB_OK;
	if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) > n) {
		snprintf(why, len, "time_s.samples: must be an array of at most n = %.0f times", n);
		return MB_ERR_PARSE;
	}
	cJSON_ArrayForEach(x, s)
		if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < mn ||
		    x->valuedouble > mx) {
			snprintf(why, len, "time_s.samples: a repetition outside [min, max] or "
				 "not a finite number");
			return MB_ERR_PARSE;
		}
	return MB_OK;
}

/* check_time checks one record's time_s: a passing record holds a measurement (n >= 1,
 * finite non-negative statistics, min <= median <= max, mean inside); a failed one may
 * hold nulls and n = 0, but no impossible number. */
static int check_time(const cJSON *rec, bool pass, char *why, size_t len)
{
	static const char *const keys[] = { "median", "min", "max", "mean", "stddev", "cv", "mad" };
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(rec, "metrics"), "time_s");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "n");
	double v[7];

	for (size_t k = 0; k < 7; k++)
		if (!time_stat(t, keys[k], !pass || k >= 6, &v[k])) {
			snprintf(why, len, "time_s.%s: must be a finite number >= 0%s", keys[k],
				 pass ? " (the check passed, so it was measured)" : " or null");
			return MB_ERR_PARSE;
		}
	if (!cJSON_IsNumber(n) || n->valuedouble != floor(n->valuedouble) ||
	    n->valuedouble < (pass ? 1 : 0) || n->valuedouble > 1e12) {
		snprintf(why, len, "time_s.n: must be a whole number >= %d", pass ? 1 : 0);
		return MB_ERR_PARSE;
	}
	/* NOTE: the mean of equal repetitions can exceed them by an ulp of rounding. */
	if (!isnan(v[0]) && !(v[1] <= v[0] && v[0] <= v[2] && v[1] * (1 - 1e-9) <= v[3] &&
			      v[3] <= v[2] * (1 + 1e-9))) {
		snprintf(why, len, "time_s: needs min <= median <= max and min <= mean <= max "
			 "(min %g, median %g, mean %g, max %g)", v[1], v[0], v[3], v[2]);
		return MB_ERR_PARSE;
	}
	if (isnan(v[0]) != isnan(v[1]) || isnan(v[0]) != isnan(v[2])) {
		snprintf(why, len, "time_s: median, min and max must be all numbers or all null");
		return MB_ERR_PARSE;
	}
	return check_samples(t, n->valuedouble, v[1], v[2], why, len);
}

/* check_metrics refuses a derived metric that is a number but not finite (1e999 parses
 * as infinity). */
static int check_metrics(const cJSON *rec, char *why, size_t len)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(rec, "metrics"))
		if (cJSON_IsNumber(m) && !isfinite(m->valuedouble)) {
			snprintf(why, len, "metrics.%s: not a finite number", m->string);
			return MB_ERR_PARSE;
		}
	return MB_OK;
}

/* check_unique refuses a second record with the key of an earlier one: which of two
 * twins would be compared is otherwise arbitrary. */
static int check_unique(char **keys, int i, const cJSON *recs, char *why, size_t len)
{
	for (int j = 0; j < i; j++)
		if (strcmp(keys[j], keys[i]) == 0) {
			char first[256];
			label_of(cJSON_GetArrayItem(recs, j), j, first, sizeof(first));
			snprintf(why, len, "the same benchmark, name and params as %s", first);
			return MB_ERR_PARSE;
		}
	return MB_OK;
}

int compare_validate_doc(const cJSON *doc, char *why, size_t why_len)
{
	const cJSON *recs = cJSON_GetObjectItemCaseSensitive(doc, "records"), *rec;
	int n = cJSON_GetArraySize(recs), i = 0, err = MB_OK;
	char **keys = calloc((size_t)n + 1, sizeof(*keys)), inner[384], label[256];

	if (!keys)
		return MB_ERR_NOMEM;
	cJSON_ArrayForEach(rec, recs) {
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(rec, "check"), "status"));
		keys[i] = compare_record_key(rec);
		if (!keys[i]) {
			err = MB_ERR_NOMEM;
			break;
		}
		err = check_time(rec, st && strcmp(st, "pass") == 0, inner, sizeof(inner));
		if (!err)
			err = check_metrics(rec, inner, sizeof(inner));
		if (!err)
			err = check_unique(keys, i, recs, inner, sizeof(inner));
		if (err) {
			label_of(rec, i, label, sizeof(label));
			snprintf(why, why_len, "%s: %s", label, inner);
			break;
		}
		i++;
	}
	for (int j = 0; j <= n; j++)
		free(keys[j]);
	free(keys);
	return err;
}
