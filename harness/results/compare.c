/*
 * compare.c - noise-aware comparison of two result documents (see compare.h for the
 * rule). The comparison is computed once into rows (matched pairs first, in BASE
 * order, then the records found only in BASE, then only in NEW); the text table and the
 * JSON object are two renderings of those rows.
 */
#include "compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "result.h"
#include "status.h"

/* One matched pair, or one record present in only one document. */
struct compare_row {
	const cJSON *base; /* record in BASE; NULL when only in NEW */
	const cJSON *cur;  /* record in NEW; NULL when only in BASE */
	double base_val;   /* metric value; NAN when n/a */
	double cur_val;
	double change_pct; /* NAN when n/a */
	double noise_pct;
	struct compare_robust robust;
	enum compare_verdict verdict;
};

struct compare_run {
	const char *metric;
	double threshold_pct;
	bool lower_is_better;
	struct compare_row *rows;
	size_t nrows;
};

static const char *const verdict_names[COMPARE_NVERDICTS] = {
	"SAME", "FASTER", "SLOWER", "AMBIGUOUS", "BROKEN", "n/a", "NOISY",
};

void compare_opts_default(struct compare_opts *o)
{
	o->threshold_pct = COMPARE_DEFAULT_THRESHOLD_PCT;
	o->metric = COMPARE_DEFAULT_METRIC;
}

const char *compare_verdict_name(enum compare_verdict v)
{
	if ((int)v < 0 || v >= COMPARE_NVERDICTS)
		return "?";
	return verdict_names[v];
}

bool compare_has_regression(const struct compare_summary *sum)
{
	return sum->counts[COMPARE_SLOWER] > 0 || sum->counts[COMPARE_BROKEN] > 0;
}


enum compare_verdict compare_classify(double change_pct, double noise_pct,
				      double threshold_pct, bool lower_is_better)
{
	double mag = fabs(change_pct);
	if (!(mag > threshold_pct))
		return COMPARE_SAME;
	/* NOTE: a NaN noise makes the comparison false: unknown noise is AMBIGUOUS. */
	if (!(mag > noise_pct))
		return COMPARE_AMBIGUOUS;
	if (lower_is_better ? change_pct > 0 : change_pct < 0)
		return COMPARE_SLOWER;
	return COMPARE_FASTER;
}

static int compare_by_key(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a;
	const cJSON *y = *(const cJSON *const *)b;
	return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* canon_write prints item to f in canonical form: objects with their members sorted
 * by key, leaves exactly as cJSON prints them unformatted. */
static int canon_write(FILE *f, const cJSON *item)
{
	const cJSON *c;
	const cJSON **kids = NULL;
	size_t n = 0, i;
	char *leaf;
	int err = MB_OK;

	if (!cJSON_IsObject(item) && !cJSON_IsArray(item)) {
		leaf = cJSON_PrintUnformatted(item);
		if (!leaf)
			return MB_ERR_NOMEM;
		fputs(leaf, f);
		free(leaf);
		return MB_OK;
	}
	cJSON_ArrayForEach(c, item)
		n++;
	kids = malloc((n ? n : 1) * sizeof(*kids));
	if (!kids)
		return MB_ERR_NOMEM;
	n = 0;
	cJSON_ArrayForEach(c, item)
		kids[n++] = c;
	if (cJSON_IsObject(item))
		qsort(kids, n, sizeof(*kids), compare_by_key);
	fputc(cJSON_IsObject(item) ? '{' : '[', f);
	for (i = 0; i < n && !err; i++) {
		if (i)
			fputc(',', f);
		if (cJSON_IsObject(item)) {
			cJSON key = { .type = cJSON_String, .valuestring = kids[i]->string };
			err = canon_write(f, &key);
			fputc(':', f);
		}
		if (!err)
			err = canon_write(f, kids[i]);
	}
	fputc(cJSON_IsObject(item) ? '}' : ']', f);
	free(kids);
	return err;
}

char *compare_canonical_json(const cJSON *item)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int err;

	if (!f)
		return NULL;
	err = canon_write(f, item);
	if (fclose(f) != 0)
		err = MB_ERR_NOMEM;
	if (err) {
		free(buf);
		return NULL;
	}
	return buf;
}

static const char *str_or(const cJSON *obj, const char *key, const char *dflt)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
	return s ? s : dflt;
}

/* compare_record_key joins benchmark, name and canonical params (see compare.h). */
char *compare_record_key(const cJSON *rec)
{
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(rec, "params");
	char *canon = params ? compare_canonical_json(params) : strdup("{}");
	const char *bench = str_or(rec, "benchmark", ""), *name = str_or(rec, "name", "");
	size_t len;
	char *key;

	if (!canon)
		return NULL;
	len = strlen(bench) + strlen(name) + strlen(canon) + 3;
	key = malloc(len);
	if (key)
		snprintf(key, len, "%s\x1f%s\x1f%s", bench, name, canon);
	free(canon);
	return key;
}

static void keys_free(char **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
}

/* keys_build returns the key of every record of an array, in order. */
static int keys_build(const cJSON *records, char ***keys, size_t *n)
{
	const cJSON *rec;
	size_t i = 0;

	*n = (size_t)cJSON_GetArraySize(records);
	*keys = calloc(*n ? *n : 1, sizeof(**keys));
	if (!*keys)
		return MB_ERR_NOMEM;
	cJSON_ArrayForEach(rec, records) {
		(*keys)[i] = compare_record_key(rec);
		if (!(*keys)[i++])
			return MB_ERR_NOMEM;
	}
	return MB_OK;
}

/* metric_value reads a metric of a record: a number, or an object's "median". Null (or
 * any other shape) gives NAN; *present tells whether the key exists at all. */
static double metric_value(const cJSON *rec, const char *metric, bool *present)
{
	const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(rec, "metrics");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(metrics, metric);

	*present = m != NULL;
	if (cJSON_IsObject(m))
		m = cJSON_GetObjectItemCaseSensitive(m, "median");
	return cJSON_IsNumber(m) ? m->valuedouble : NAN;
}

/* time_cv returns time_s's relative spread: the robust 1.4826*mad/median when "mad" is
 * recorded (one outlier repetition barely moves it), else "cv", else stddev/mean, else
 * 0 (one repetition carries no noise estimate). */
static double time_cv(const cJSON *rec)
{
	const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(rec, "metrics");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(metrics, "time_s");
	const cJSON *cv = cJSON_GetObjectItemCaseSensitive(t, "cv");
	const cJSON *sd = cJSON_GetObjectItemCaseSensitive(t, "stddev");
	const cJSON *mean = cJSON_GetObjectItemCaseSensitive(t, "mean");

	const cJSON *mad = cJSON_GetObjectItemCaseSensitive(t, "mad");
	const cJSON *med = cJSON_GetObjectItemCaseSensitive(t, "median");
	if (cJSON_IsNumber(mad) && cJSON_IsNumber(med) && med->valuedouble > 0)
		return 1.4826 * fabs(mad->valuedouble) / med->valuedouble;
	if (cJSON_IsNumber(cv))
		return fabs(cv->valuedouble);
	if (cJSON_IsNumber(sd) && cJSON_IsNumber(mean) && mean->valuedouble > 0)
		return fabs(sd->valuedouble) / mean->valuedouble;
	return 0.0;
}

/* check_failed: a record whose check exists and does not say "pass". */
static bool check_failed(const cJSON *rec)
{
	const cJSON *check = cJSON_GetObjectItemCaseSensitive(rec, "check");
	const char *status = str_or(check, "status", NULL);
	return check && cJSON_IsObject(check) && (!status || strcmp(status, "pass") != 0);
}

/* time_median reads time_s.median, NAN when absent. */
static double time_median(const cJSON *rec)
{
	bool present;
	return metric_value(rec, "time_s", &present);
}

/* robust_values puts the robust statistic in the row's base_val and cur_val: the low
 * quantiles for time_s; for a metric that is work / time (its value times the median
 * time is the same in both runs: same work) the rate at the low quantile; any other
 * metric keeps its stored values and the old rule (returns false). */
static bool robust_values(const struct compare_run *r, struct compare_row *row)
{
	double wb, wc;

	if (strcmp(r->metric, "time_s") == 0) {
		row->base_val = row->robust.base;
		row->cur_val = row->robust.cur;
		return true;
	}
	wb = row->base_val * time_median(row->base);
	wc = row->cur_val * time_median(row->cur);
	if (r->lower_is_better || !isfinite(wb) || !(wb > 0) || !(fabs(wc - wb) <= 1e-6 * wb))
		return false;
	row->base_val = wb / row->robust.base;
	row->cur_val = wc / row->robust.cur;
	return true;
}

/* judge fills a matched row's numbers and verdict; *seen notes the metric exists. */
static int judge(const struct compare_run *r, struct compare_row *row, bool *seen)
{
	bool pb, pc;
	bool fail_b = check_failed(row->base), fail_c = check_failed(row->cur);
	double cvb = time_cv(row->base), cvc = time_cv(row->cur);
	int err;

	row->base_val = metric_value(row->base, r->metric, &pb);
	row->cur_val = metric_value(row->cur, r->metric, &pc);
	*seen = *seen || pb || pc;
	row->change_pct = NAN;
	row->noise_pct = NAN;
	row->robust.used = false;
	if (!fail_b && fail_c) {
		row->verdict = COMPARE_BROKEN;
		return MB_OK;
	}
	row->verdict = COMPARE_NA;
	if (fail_b || fail_c || isnan(row->base_val) || isnan(row->cur_val) ||
	    row->base_val == 0.0)
		return MB_OK;
	err = compare_robust(row->base, row->cur, &row->robust);
	if (err)
		return err;
	row->noise_pct = 200.0 * sqrt(cvb * cvb + cvc * cvc);
	row->robust.used = row->robust.used && robust_values(r, row);
	row->change_pct = 100.0 * (row->cur_val - row->base_val) / row->base_val;
	row->verdict = row->robust.used
		? compare_classify_robust(row->change_pct, r->threshold_pct, &row->robust,
					  r->lower_is_better)
		: compare_classify(row->change_pct, row->noise_pct, r->threshold_pct,
				   r->lower_is_better);
	return MB_OK;
}

/* pair_records fills r->rows: matched pairs in BASE order (a duplicate key pairs with
 * the first unused twin), then BASE-only, then NEW-only records. */
static int pair_records(struct compare_run *r, const cJSON *brecs, const cJSON *crecs,
			struct compare_summary *sum, bool *seen)
{
	char **kb = NULL, **kc = NULL;
	size_t nb = 0, nc = 0, i, j;
	bool *used_b = NULL, *used_c = NULL;
	int err;

	err = keys_build(brecs, &kb, &nb);
	if (!err)
		err = keys_build(crecs, &kc, &nc);
	if (err)
		goto out;
	r->rows = calloc(nb + nc + 1, sizeof(*r->rows));
	used_b = calloc(nb + 1, sizeof(*used_b));
	used_c = calloc(nc + 1, sizeof(*used_c));
	if (!r->rows || !used_b || !used_c) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < nb; i++)
		for (j = 0; j < nc && !used_b[i]; j++)
			if (!used_c[j] && strcmp(kb[i], kc[j]) == 0) {
				used_b[i] = used_c[j] = true;
				r->rows[r->nrows].base = cJSON_GetArrayItem(brecs, (int)i);
				r->rows[r->nrows].cur = cJSON_GetArrayItem(crecs, (int)j);
				err = judge(r, &r->rows[r->nrows], seen);
				if (err)
					goto out;
				sum->counts[r->rows[r->nrows++].verdict]++;
				sum->matched++;
			}
	for (i = 0; i < nb; i++)
		if (!used_b[i]) {
			r->rows[r->nrows++].base = cJSON_GetArrayItem(brecs, (int)i);
			sum->only_base++;
		}
	for (j = 0; j < nc; j++)
		if (!used_c[j]) {
			r->rows[r->nrows++].cur = cJSON_GetArrayItem(crecs, (int)j);
			sum->only_new++;
		}
out:
	keys_free(kb, nb);
	keys_free(kc, nc);
	free(used_b);
	free(used_c);
	return err;
}

/* prepare validates the inputs, pairs the records and judges every pair. */
static int prepare(const cJSON *base, const cJSON *cur, const struct compare_opts *o,
		   struct compare_run *r, struct compare_summary *sum)
{
	struct compare_opts dflt;
	const cJSON *brecs, *crecs;
	bool seen = false;
	int err;

	if (!base || !cur || !sum)
		return MB_ERR_ARG;
	memset(sum, 0, sizeof(*sum));
	if (!o) {
		compare_opts_default(&dflt);
		o = &dflt;
	}
	if (!(o->threshold_pct >= 0)) {
		snprintf(sum->why, sizeof(sum->why), "threshold must be >= 0");
		return MB_ERR_ARG;
	}
	memset(r, 0, sizeof(*r));
	r->metric = o->metric ? o->metric : COMPARE_DEFAULT_METRIC;
	r->threshold_pct = o->threshold_pct;
	r->lower_is_better = result_metric_lower_is_better(r->metric);
	for (int i = 0; i < 2; i++) {
		char why[sizeof(sum->why) - 8];
		err = compare_validate_doc(i ? cur : base, why, sizeof(why));
		if (err == MB_ERR_PARSE) {
			snprintf(sum->why, sizeof(sum->why), "%s %s", i ? "NEW" : "BASE", why);
			sum->invalid = true;
		}
		if (err)
			return err;
	}
	brecs = cJSON_GetObjectItemCaseSensitive(base, "records");
	crecs = cJSON_GetObjectItemCaseSensitive(cur, "records");
	if (!cJSON_IsArray(brecs) || !cJSON_IsArray(crecs)) {
		snprintf(sum->why, sizeof(sum->why), "%s has no \"records\" array",
			 cJSON_IsArray(brecs) ? "NEW" : "BASE");
		return MB_ERR_PARSE;
	}
	err = pair_records(r, brecs, crecs, sum, &seen);
	if (err)
		return err;
	if (sum->matched == 0) {
		snprintf(sum->why, sizeof(sum->why),
			 "no record in common (BASE has %d, NEW has %d)",
			 cJSON_GetArraySize(brecs), cJSON_GetArraySize(crecs));
		return MB_ERR_PARSE;
	}
	if (!seen) {
		snprintf(sum->why, sizeof(sum->why),
			 "metric \"%s\" appears in no matched record", r->metric);
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

static void row_label(const cJSON *rec, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", str_or(rec, "benchmark", "?"), str_or(rec, "name", "?"));
}

/* fmt_num prints v scaled, or "n/a" for NAN. */
static const char *fmt_num(char *buf, size_t len, const char *fmt, double v)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, fmt, v);
	return buf;
}

/* print_header prints the column titles; a "_s" metric is shown in milliseconds. */
static void print_header(FILE *out, const struct compare_run *r, int name_w, int val_w)
{
	char b[96], n[96];
	size_t len = strlen(r->metric);

	if (r->lower_is_better) {
		snprintf(b, sizeof(b), "base_%.*s_ms", (int)(len - 2), r->metric);
		snprintf(n, sizeof(n), "new_%.*s_ms", (int)(len - 2), r->metric);
	} else {
		snprintf(b, sizeof(b), "base_%s", r->metric);
		snprintf(n, sizeof(n), "new_%s", r->metric);
	}
	fprintf(out, "%-*s  %*s  %*s  %10s  %9s  %8s  %s\n", name_w, "benchmark/name", val_w, b,
		val_w, n, "change_pct", "noise_pct", "p_value", "verdict");
}

/* print_rows prints the matched pairs as a table and the unmatched records as lines. */
static int print_rows(FILE *out, const struct compare_run *r)
{
	char label[512], v[5][32];
	int name_w = (int)strlen("benchmark/name"), val_w = 12;
	double scale = r->lower_is_better ? 1e3 : 1.0;
	const struct compare_row *row;
	char *canon;

	for (row = r->rows; row < r->rows + r->nrows && row->base && row->cur; row++) {
		row_label(row->base, label, sizeof(label));
		if ((int)strlen(label) > name_w)
			name_w = (int)strlen(label);
	}
	if (val_w < (int)strlen(r->metric) + 6)
		val_w = (int)strlen(r->metric) + 6;
	print_header(out, r, name_w, val_w);
	for (row = r->rows; row < r->rows + r->nrows; row++) {
		row_label(row->base ? row->base : row->cur, label, sizeof(label));
		if (row->base && row->cur) {
			fprintf(out, "%-*s  %*s  %*s  %10s  %9s  %8s  %s%s\n", name_w, label, val_w,
				fmt_num(v[0], sizeof(v[0]), "%.4g", row->base_val * scale), val_w,
				fmt_num(v[1], sizeof(v[1]), "%.4g", row->cur_val * scale),
				fmt_num(v[2], sizeof(v[2]), "%+.2f", row->change_pct),
				fmt_num(v[3], sizeof(v[3]), "%.2f", row->noise_pct),
				fmt_num(v[4], sizeof(v[4]), "%.1e",
					row->robust.used ? row->robust.p_value : NAN),
				compare_verdict_name(row->verdict),
				row->robust.used ? "" : " (median rule)");
			continue;
		}
		canon = compare_canonical_json(cJSON_GetObjectItemCaseSensitive(
			row->base ? row->base : row->cur, "params"));
		if (!canon)
			return MB_ERR_NOMEM;
		fprintf(out, "only in %s: %s%s%s\n", row->base ? "base" : "new", label,
			strcmp(canon, "{}") && strcmp(canon, "null") ? " " : "",
			strcmp(canon, "{}") && strcmp(canon, "null") ? canon : "");
		free(canon);
	}
	return MB_OK;
}

/* print_footer states the rule with this run's numbers and the counts per verdict. */
static void print_footer(FILE *out, const struct compare_run *r,
			 const struct compare_summary *s)
{
	double t = r->threshold_pct;

	fprintf(out, "\nmetric: %s, %s is better; threshold %.2f%%\n", r->metric,
		r->lower_is_better ? "lower" : "higher", t);
	fprintf(out, "rule (records with >= %d repetition times): the minimum repetition "
		"(q%.0f; a rate at that time); change_pct = 100*(new-base)/base;\n"
		"      SLOWER/FASTER needs |change| > %.2f%% AND a Mann-Whitney p_value < %g "
		"in the same direction, else AMBIGUOUS (SAME when |change| <= %.2f%%);\n"
		"      NOISY (before all else): a run was oversubscribed (load average "
		"over %.0f per CPU, under half of its\n      repetitions unpreempted, or, "
		"uncounted, < %.0f%% of the other's CPU per wall second): no verdict, rerun on a "
		"quiet machine\n",
		COMPARE_MIN_SAMPLES, 100 * COMPARE_QUANTILE, t, COMPARE_ALPHA, t,
		COMPARE_MAX_LOAD_PER_CPU, 100 * COMPARE_STARVED_SHARE);
	fprintf(out, "rule (median rule, records without them): the medians; noise_pct = "
		"100*2*sqrt(cv_base^2+cv_new^2), cv = 1.4826*mad/median;\n"
		"      FASTER/SLOWER |change| > %.2f%% and > noise; AMBIGUOUS within noise\n", t);
	fprintf(out, "      BROKEN check passed in base, fails in new; n/a metric null or "
		"missing, or check failed in base (never a regression)\n");
	fprintf(out, "summary: %d matched: %d SAME, %d FASTER, %d SLOWER, %d AMBIGUOUS, "
		"%d NOISY, %d BROKEN, %d n/a; %d only in base, %d only in new\n", s->matched,
		s->counts[COMPARE_SAME], s->counts[COMPARE_FASTER], s->counts[COMPARE_SLOWER],
		s->counts[COMPARE_AMBIGUOUS], s->counts[COMPARE_NOISY], s->counts[COMPARE_BROKEN],
		s->counts[COMPARE_NA], s->only_base, s->only_new);
}

int compare_docs(const cJSON *base, const cJSON *cur, const struct compare_opts *o,
		 FILE *out, struct compare_summary *sum)
{
	struct compare_run r = { 0 };
	int err;

	if (!out)
		return MB_ERR_ARG;
	err = prepare(base, cur, o, &r, sum);
	if (err)
		goto out;
	err = print_rows(out, &r);
	if (err)
		goto out;
	print_footer(out, &r, sum);
	if (fflush(out) != 0 || ferror(out))
		err = MB_ERR_IO;
out:
	free(r.rows);
	return err;
}

static cJSON *num_or_null(double v)
{
	return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

/* row_json returns a row as {benchmark, name, params[, base, new, change_pct,
 * noise_pct, verdict]}; the numbers only for a matched pair. */
static cJSON *row_json(const struct compare_row *row)
{
	const cJSON *rec = row->base ? row->base : row->cur, *params;
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "benchmark", str_or(rec, "benchmark", "?"));
	ok = ok && cJSON_AddStringToObject(o, "name", str_or(rec, "name", "?"));
	params = cJSON_GetObjectItemCaseSensitive(rec, "params");
	ok = ok && cJSON_AddItemToObject(o, "params", params ? cJSON_Duplicate(params, true)
							    : cJSON_CreateObject());
	if (ok && row->base && row->cur) {
		ok = cJSON_AddItemToObject(o, "base", num_or_null(row->base_val));
		ok = ok && cJSON_AddItemToObject(o, "new", num_or_null(row->cur_val));
		ok = ok && cJSON_AddItemToObject(o, "change_pct", num_or_null(row->change_pct));
		ok = ok && cJSON_AddItemToObject(o, "noise_pct", num_or_null(row->noise_pct));
		ok = ok && cJSON_AddStringToObject(o, "verdict",
						   compare_verdict_name(row->verdict));
		ok = ok && cJSON_AddStringToObject(o, "statistic", row->robust.used ?
						   "min of repetitions" : "median");
		ok = ok && cJSON_AddItemToObject(o, "p_value", num_or_null(
			row->robust.used ? row->robust.p_value : NAN));
		ok = ok && cJSON_AddBoolToObject(o, "oversubscribed", row->robust.starved);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* summary_json returns the counts per verdict and of unmatched records. */
static cJSON *summary_json(const struct compare_summary *s)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL;

	for (int v = 0; ok && v < COMPARE_NVERDICTS; v++)
		ok = cJSON_AddNumberToObject(o, verdict_names[v], s->counts[v]) != NULL;
	ok = ok && cJSON_AddNumberToObject(o, "matched", s->matched);
	ok = ok && cJSON_AddNumberToObject(o, "only_in_base", s->only_base);
	ok = ok && cJSON_AddNumberToObject(o, "only_in_new", s->only_new);
	ok = ok && cJSON_AddBoolToObject(o, "regression", compare_has_regression(s));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int compare_docs_json(const cJSON *base, const cJSON *cur, const struct compare_opts *o,
		      cJSON **json, struct compare_summary *sum)
{
	struct compare_run r = { 0 };
	cJSON *doc = NULL, *recs = NULL, *ob = NULL, *on = NULL;
	bool ok;
	int err;

	if (!json)
		return MB_ERR_ARG;
	*json = NULL;
	err = prepare(base, cur, o, &r, sum);
	if (err)
		goto out;
	doc = cJSON_CreateObject();
	ok = doc != NULL;
	ok = ok && cJSON_AddStringToObject(doc, "schema", "moebench.compare/1");
	ok = ok && cJSON_AddStringToObject(doc, "metric", r.metric);
	ok = ok && cJSON_AddBoolToObject(doc, "lower_is_better", r.lower_is_better);
	ok = ok && cJSON_AddNumberToObject(doc, "threshold_pct", r.threshold_pct);
	ok = ok && cJSON_AddStringToObject(doc, "rule",
		"with >= 6 repetition times: their minimum; FASTER/SLOWER |change| > threshold "
		"and Mann-Whitney p < 0.01 in that direction, else AMBIGUOUS; NOISY first, "
		"whatever the change: a run had a load average over 2 per CPU or under half of "
		"its repetitions unpreempted "
		"(uncounted: < 80% of the other's cpu_per_wall). Without: medians, noise_pct = "
		"100*2*sqrt(cv_base^2+cv_new^2); SAME |change| <= threshold; BROKEN check "
		"pass -> fail; n/a no figure");
	ok = ok && (recs = cJSON_AddArrayToObject(doc, "records")) != NULL;
	ok = ok && (ob = cJSON_AddArrayToObject(doc, "only_in_base")) != NULL;
	ok = ok && (on = cJSON_AddArrayToObject(doc, "only_in_new")) != NULL;
	for (size_t i = 0; ok && i < r.nrows; i++) {
		const struct compare_row *row = &r.rows[i];
		cJSON *dst = row->base && row->cur ? recs : row->base ? ob : on;
		ok = cJSON_AddItemToArray(dst, row_json(row));
	}
	ok = ok && cJSON_AddItemToObject(doc, "summary", summary_json(sum));
	if (!ok) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	*json = doc;
	doc = NULL;
out:
	cJSON_Delete(doc);
	free(r.rows);
	return err;
}
