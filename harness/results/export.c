/*
 * export.c - a result document written as the text table and CSV, and the dispatch
 * over every format (see export.h for each format's shape; export_ci.c writes the
 * Google Benchmark JSON and Bencher Metric Format).
 */
#include "export.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "export_impl.h"
#include "status.h"


/* names_add adds name unless present and returns its index, or MB_ERR_NOMEM. */
long export_names_add(struct export_names *s, const char *name)
{
	const char **v;

	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return (long)i;
	if (s->n == s->cap) {
		v = realloc(s->v, (s->cap ? 2 * s->cap : 16) * sizeof(*v));
		if (!v)
			return MB_ERR_NOMEM;
		s->v = v;
		s->cap = s->cap ? 2 * s->cap : 16;
	}
	s->v[s->n] = name;
	return (long)s->n++;
}

/* get and str_or read an object's member (NULL-safe), str_or with a default. */
const cJSON *export_get(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const char *export_str_or(const cJSON *obj, const char *key, const char *dflt)
{
	const char *s = cJSON_GetStringValue(export_get(obj, key));
	return s ? s : dflt;
}

/* num_of reads a number, or an object's "median"; NAN for null or anything else. */
double export_num_of(const cJSON *item)
{
	if (cJSON_IsObject(item))
		item = export_get(item, "median");
	return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

/* time_stat reads one statistic of a record's time_s (median, min, max, cv, n). */
double export_time_stat(const cJSON *rec, const char *stat)
{
	const cJSON *t = export_get(export_get(rec, "metrics"), "time_s");
	const cJSON *v = export_get(t, stat);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* passed: the record carries a check that says "pass"; only then is it a figure. */
bool export_passed(const cJSON *rec)
{
	const char *status = export_str_or(export_get(rec, "check"), "status", NULL);
	return status && strcmp(status, "pass") == 0;
}

/* records_of returns the document's records array, or NULL. */
const cJSON *export_records_of(const cJSON *doc)
{
	const cJSON *recs = export_get(doc, "records");
	return cJSON_IsArray(recs) ? recs : NULL;
}

/* record_label writes "<benchmark>/<name>", suffixed "#k" when it is the k-th record
 * (k >= 2) of the document with that label, so exported names stay unique. */
void export_record_label(const cJSON *recs, const cJSON *rec, char *buf, size_t len)
{
	char other[512];
	const cJSON *r;
	int k = 1;

	snprintf(buf, len, "%s/%s", export_str_or(rec, "benchmark", "?"), export_str_or(rec, "name", "?"));
	cJSON_ArrayForEach(r, recs) {
		if (r == rec)
			break;
		snprintf(other, sizeof(other), "%s/%s", export_str_or(r, "benchmark", "?"),
			 export_str_or(r, "name", "?"));
		k += strcmp(other, buf) == 0;
	}
	if (k > 1)
		snprintf(buf + strlen(buf), len - strlen(buf), "#%d", k);
}

/* The columns of a table: the union of param keys and of derived metric names over the
 * records, in order of first appearance. */
struct export_cols {
	const cJSON *recs;
	struct export_names params, metrics;
};

/* cols_init finds the records of doc and gathers their columns; cols_free after. */
static int cols_init(const cJSON *doc, struct export_cols *c)
{
	const cJSON *rec, *m;
	long err = MB_OK;

	memset(c, 0, sizeof(*c));
	c->recs = export_records_of(doc);
	if (!c->recs)
		return MB_ERR_PARSE;
	cJSON_ArrayForEach(rec, c->recs) {
		cJSON_ArrayForEach(m, export_get(rec, "params"))
			if (err >= 0 && m->string)
				err = export_names_add(&c->params, m->string);
		cJSON_ArrayForEach(m, export_get(rec, "metrics"))
			if (err >= 0 && m->string && strcmp(m->string, "time_s") != 0)
				err = export_names_add(&c->metrics, m->string);
	}
	return err < 0 ? (int)err : MB_OK;
}

/* cols_free releases the column names (the strings belong to the document). */
static void cols_free(struct export_cols *c)
{
	free(c->params.v);
	free(c->metrics.v);
}

/* finish flushes out and maps a write error to MB_ERR_IO. */
static int finish(FILE *out, int err)
{
	if (fflush(out) != 0 || ferror(out))
		return err ? err : MB_ERR_IO;
	return err;
}

/* ---- CSV ---------------------------------------------------------------------- */

/* csv_str writes a field, quoted (quotes doubled) when it holds , " CR or LF. */
static void csv_str(FILE *out, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/* csv_num writes a finite number as %.9g; anything else as an empty field. */
static void csv_num(FILE *out, double v)
{
	if (isfinite(v))
		fprintf(out, "%.9g", v);
}

/* csv_value writes a JSON value as one field: empty for missing or null. */
static int csv_value(FILE *out, const cJSON *v)
{
	char *text;

	if (!v || cJSON_IsNull(v))
		return MB_OK;
	if (cJSON_IsNumber(v)) {
		csv_num(out, v->valuedouble);
	} else if (cJSON_IsString(v)) {
		csv_str(out, v->valuestring);
	} else if (cJSON_IsBool(v)) {
		fputs(cJSON_IsTrue(v) ? "true" : "false", out);
	} else {
		text = cJSON_PrintUnformatted(v);
		if (!text)
			return MB_ERR_NOMEM;
		csv_str(out, text);
		free(text);
	}
	return MB_OK;
}

/* comment_line writes "# key: value" with line breaks in value turned to spaces. */
static void comment_line(FILE *out, const char *key, const char *value)
{
	fprintf(out, "# %s: ", key);
	for (; *value; value++)
		fputc(*value == '\n' || *value == '\r' ? ' ' : *value, out);
	fputc('\n', out);
}

/* joined returns the strings of an array (or one string field of its objects) joined
 * by sep, as a new string (to free()); NULL when out of memory. */
char *export_joined(const cJSON *arr, const char *field, const char *sep)
{
	const cJSON *c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	cJSON_ArrayForEach(c, arr) {
		const char *v = field ? export_str_or(c, field, "?") : cJSON_GetStringValue(c);
		fprintf(f, "%s%s", c == arr->child ? "" : sep, v ? v : "?");
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* csv_provenance writes the '#' lines gnuplot skips: where the numbers come from. */
static int csv_provenance(const cJSON *doc, FILE *out)
{
	const cJSON *ctx = export_get(doc, "context");
	char *devices = export_joined(export_get(ctx, "devices"), "name", "; ");
	char *argv = export_joined(export_get(ctx, "argv"), NULL, " ");
	int err = devices && argv ? MB_OK : MB_ERR_NOMEM;

	if (!err) {
		comment_line(out, "schema", export_str_or(doc, "schema", "?"));
		comment_line(out, "git_commit", export_str_or(ctx, "git_commit", "?"));
		comment_line(out, "date", export_str_or(ctx, "date", "?"));
		comment_line(out, "host", export_str_or(ctx, "host", "?"));
		comment_line(out, "backend", export_str_or(ctx, "backend", "?"));
		comment_line(out, "devices", *devices ? devices : "none");
		comment_line(out, "argv", argv);
	}
	free(devices);
	free(argv);
	return err;
}

/* csv_header writes the column names: fixed ones around the params and metrics. */
/* is_fixed_column tells whether a parameter's name is taken by a fixed column. */
static bool is_fixed_column(const char *name)
{
	static const char *const fixed[] = { "benchmark", "name", "backend", "time_s_median",
		"time_s_min", "time_s_max", "time_s_cv", "time_s_n", "check_status", "max_err" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(name, fixed[i]) == 0)
			return true;
	return false;
}

/* csv_header writes the column names; a parameter named like a fixed column gets the
 * prefix "param_" so every column name is unique. */
static void csv_header(FILE *out, const struct export_names *params,
		       const struct export_names *metrics)
{
	char buf[256];
	fputs("benchmark,name,backend", out);
	for (size_t i = 0; i < params->n; i++) {
		fputc(',', out);
		snprintf(buf, sizeof(buf), "%s%s", is_fixed_column(params->v[i]) ? "param_" : "",
			 params->v[i]);
		csv_str(out, buf);
	}
	fputs(",time_s_median,time_s_min,time_s_max,time_s_cv,time_s_n", out);
	for (size_t i = 0; i < metrics->n; i++) {
		fputc(',', out);
		csv_str(out, metrics->v[i]);
	}
	fputs(",check_status,max_err\n", out);
}

/* csv_row writes one record; the time and metric fields stay empty unless it passed. */
static int csv_row(FILE *out, const cJSON *rec, const struct export_names *params,
		   const struct export_names *metrics)
{
	static const char *const ids[] = { "benchmark", "name", "backend" };
	static const char *const stats[] = { "median", "min", "max", "cv", "n" };
	bool figure = export_passed(rec);
	int err = MB_OK;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		fputs(i ? "," : "", out);
		csv_str(out, export_str_or(rec, ids[i], ""));
	}
	for (size_t i = 0; i < params->n && !err; i++) {
		fputc(',', out);
		err = csv_value(out, export_get(export_get(rec, "params"), params->v[i]));
	}
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
		fputc(',', out);
		csv_num(out, figure ? export_time_stat(rec, stats[i]) : NAN);
	}
	for (size_t i = 0; i < metrics->n; i++) {
		fputc(',', out);
		csv_num(out, figure ? export_num_of(export_get(export_get(rec, "metrics"), metrics->v[i])) : NAN);
	}
	fputc(',', out);
	csv_str(out, export_str_or(export_get(rec, "check"), "status", ""));
	fputc(',', out);
	csv_num(out, export_num_of(export_get(export_get(rec, "check"), "max_err")));
	fputc('\n', out);
	return err;
}

int export_csv(const cJSON *doc, FILE *out)
{
	struct export_cols c;
	const cJSON *rec;
	int err;

	if (!doc || !out)
		return MB_ERR_ARG;
	err = cols_init(doc, &c);
	if (!err)
		err = csv_provenance(doc, out);
	if (err)
		goto out;
	csv_header(out, &c.params, &c.metrics);
	cJSON_ArrayForEach(rec, c.recs)
		if (!err)
			err = csv_row(out, rec, &c.params, &c.metrics);
out:
	cols_free(&c);
	return finish(out, err);
}

/* ---- text --------------------------------------------------------------------- */

/* text_cell right-aligns a value in width w: a number (or an object's median) scaled
 * and printed with fmt; "n/a" for null; "-" when missing or the record is no figure. */
static void text_cell(FILE *out, int w, const cJSON *item, double scale, const char *fmt,
		      bool figure)
{
	char buf[32] = "-";
	double v = export_num_of(item);

	if (figure && item && !isnan(v))
		snprintf(buf, sizeof(buf), fmt, v * scale);
	else if (figure && item)
		snprintf(buf, sizeof(buf), "n/a");
	fprintf(out, "  %*s", w, buf);
}

/* col_width is a numeric column's width: its title, at least 9. */
static int col_width(const char *title)
{
	return strlen(title) > 9 ? (int)strlen(title) : 9;
}

/* text_header prints the column titles, units in the names. */
static void text_header(FILE *out, int name_w, int be_w, const struct export_names *m)
{
	fprintf(out, "%-*s  %-*s  %9s  %9s  %9s  %9s", name_w, "benchmark/name", be_w,
		"backend", "time_ms", "min_ms", "max_ms", "cv_pct");
	for (size_t i = 0; i < m->n; i++)
		fprintf(out, "  %*s", col_width(m->v[i]), m->v[i]);
	fprintf(out, "  %-5s  %9s\n", "check", "max_err");
}

/* text_row prints one record of the table. */
static void text_row(FILE *out, const cJSON *recs, const cJSON *rec, int name_w,
		     int be_w, const struct export_names *m)
{
	static const char *const stats[] = { "median", "min", "max" };
	const cJSON *t = export_get(export_get(rec, "metrics"), "time_s");
	const cJSON *check = export_get(rec, "check");
	bool figure = export_passed(rec);
	char label[512];

	export_record_label(recs, rec, label, sizeof(label));
	fprintf(out, "%-*s  %-*s", name_w, label, be_w, export_str_or(rec, "backend", "-"));
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++)
		text_cell(out, 9, export_get(t, stats[i]), 1e3, "%.4g", figure);
	text_cell(out, 9, export_get(t, "cv"), 100.0, "%.2f", figure);
	for (size_t i = 0; i < m->n; i++)
		text_cell(out, col_width(m->v[i]), export_get(export_get(rec, "metrics"), m->v[i]), 1.0,
			  "%.4g", figure);
	fprintf(out, "  %-5s", !check ? "-" : figure ? "pass" : "FAIL");
	text_cell(out, 9, export_get(check, "max_err"), 1.0, "%.2e", true);
	fputc('\n', out);
}

int export_text(const cJSON *doc, FILE *out)
{
	struct export_cols c;
	const cJSON *rec;
	int name_w = (int)strlen("benchmark/name"), be_w = (int)strlen("backend");
	char label[512];
	int err;

	if (!doc || !out)
		return MB_ERR_ARG;
	err = cols_init(doc, &c);
	if (err)
		goto out;
	cJSON_ArrayForEach(rec, c.recs) {
		export_record_label(c.recs, rec, label, sizeof(label));
		if ((int)strlen(label) > name_w)
			name_w = (int)strlen(label);
		if ((int)strlen(export_str_or(rec, "backend", "-")) > be_w)
			be_w = (int)strlen(export_str_or(rec, "backend", "-"));
	}
	text_header(out, name_w, be_w, &c.metrics);
	cJSON_ArrayForEach(rec, c.recs)
		text_row(out, c.recs, rec, name_w, be_w, &c.metrics);
out:
	cols_free(&c);
	return finish(out, err);
}

/* ---- dispatch ----------------------------------------------------------------- */

/* print_json writes a tree pretty-printed with a final newline. */
static int print_json(const cJSON *json, FILE *out)
{
	char *text = cJSON_Print(json);

	if (!text)
		return MB_ERR_NOMEM;
	fputs(text, out);
	fputc('\n', out);
	free(text);
	return finish(out, MB_OK);
}

/* export_tree builds a tree with make, prints it and frees it. */
static int export_tree(const cJSON *doc, FILE *out, int (*make)(const cJSON *, cJSON **))
{
	cJSON *json = NULL;
	int err;

	if (!out)
		return MB_ERR_ARG;
	err = make(doc, &json);
	if (!err)
		err = print_json(json, out);
	cJSON_Delete(json);
	return err;
}

int export_gbench(const cJSON *doc, FILE *out)
{
	return export_tree(doc, out, export_gbench_json);
}

int export_bmf(const cJSON *doc, FILE *out)
{
	return export_tree(doc, out, export_bmf_json);
}

int export_by_name(const char *format, const cJSON *doc, FILE *out)
{
	static const struct {
		const char *name;
		int (*write)(const cJSON *doc, FILE *out);
	} formats[] = {
		{ "text", export_text }, { "json", print_json }, { "csv", export_csv },
		{ "gbench", export_gbench }, { "bmf", export_bmf },
	};

	if (!format || !doc || !out)
		return MB_ERR_ARG;
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(format, formats[i].name) == 0)
			return formats[i].write(doc, out);
	return MB_ERR_ARG;
}
