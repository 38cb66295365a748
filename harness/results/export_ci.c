/*
 * export_ci.c - the result document in the formats CI tools read unchanged:
 * Google Benchmark JSON (github-action-benchmark's googlecpp, Bencher's cpp_google
 * adapter, Conbench) and Bencher Metric Format. Records without a passing check are
 * left out: they carry no performance figure.
 */
#include "export.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "export_impl.h"
#include "status.h"

/* ---- Google Benchmark JSON ---------------------------------------------------- */

/* gbench_context builds "context" with the keys Google Benchmark writes (values
 * moebench does not measure, such as mhz_per_cpu, are 0 or empty) plus moebench's. */
static cJSON *gbench_context(const cJSON *doc)
{
	static const char *const ours[] = { "moebench_version", "git_commit", "backend" };
	const cJSON *ctx = export_get(doc, "context");
	const cJSON *argv0 = cJSON_GetArrayItem(export_get(ctx, "argv"), 0);
	const char *type = export_str_or(export_get(ctx, "build"), "type", "release");
	char *devices = export_joined(export_get(ctx, "devices"), "name", "; ");
	cJSON *c = cJSON_CreateObject();
	bool ok = c && devices;

	ok = ok && cJSON_AddStringToObject(c, "date", export_str_or(ctx, "date", ""));
	ok = ok && cJSON_AddStringToObject(c, "host_name", export_str_or(ctx, "host", ""));
	ok = ok && cJSON_AddStringToObject(c, "executable",
		cJSON_GetStringValue(argv0) ? argv0->valuestring : "moebench");
	ok = ok && cJSON_AddNumberToObject(c, "num_cpus",
		cJSON_IsNumber(export_get(export_get(ctx, "cpu"), "cores")) ?
		export_get(export_get(ctx, "cpu"), "cores")->valuedouble : 0);
	ok = ok && cJSON_AddNumberToObject(c, "mhz_per_cpu", 0);
	ok = ok && cJSON_AddBoolToObject(c, "cpu_scaling_enabled", false);
	ok = ok && cJSON_AddArrayToObject(c, "caches");
	ok = ok && cJSON_AddArrayToObject(c, "load_avg");
	ok = ok && cJSON_AddStringToObject(c, "library_build_type",
		strcasecmp(type, "debug") == 0 ? "debug" : "release");
	ok = ok && cJSON_AddStringToObject(c, "moebench_schema", export_str_or(doc, "schema", ""));
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		ok = ok && cJSON_AddStringToObject(c, ours[i], export_str_or(ctx, ours[i], ""));
	ok = ok && cJSON_AddStringToObject(c, "devices", devices);
	free(devices);
	if (!ok) {
		cJSON_Delete(c);
		return NULL;
	}
	return c;
}

/* gbench_failed marks an entry whose check failed as Google Benchmark marks a run
 * skipped with an error (error_occurred, error_message, no time), so a dashboard sees
 * the failure instead of a missing point. */
static bool gbench_failed(cJSON *e, const cJSON *rec)
{
	const cJSON *c = export_get(rec, "check");
	char msg[256];

	snprintf(msg, sizeof(msg), "check failed: max_err %.3g > tolerance %.3g (%.0f of %.0f "
		 "samples wrong)", export_num_of(export_get(c, "max_err")),
		 export_num_of(export_get(c, "tolerance")),
		 export_num_of(export_get(c, "mismatches")),
		 export_num_of(export_get(c, "samples")));
	return cJSON_AddBoolToObject(e, "error_occurred", true) &&
	       cJSON_AddStringToObject(e, "error_message", msg);
}

/* gbench_entry builds one "benchmarks" entry; derived metrics become counters, and
 * gbps also Google Benchmark's bytes_per_second. A record whose check failed gets
 * zero times and gbench_failed's error keys. */
static cJSON *gbench_entry(const cJSON *rec, const char *label, long family,
			   long instance)
{
	const cJSON *m;
	cJSON *e = cJSON_CreateObject();
	bool failed = !export_passed(rec);
	double median_ns = failed ? 0 : export_time_stat(rec, "median") * 1e9;
	double n = failed ? 0 : export_time_stat(rec, "n");
	double gbps = export_num_of(export_get(export_get(rec, "metrics"), "gbps"));
	bool ok = e != NULL;

	ok = ok && cJSON_AddStringToObject(e, "name", label);
	ok = ok && cJSON_AddNumberToObject(e, "family_index", (double)family);
	ok = ok && cJSON_AddNumberToObject(e, "per_family_instance_index", (double)instance);
	ok = ok && cJSON_AddStringToObject(e, "run_name", label);
	ok = ok && cJSON_AddStringToObject(e, "run_type", "iteration");
	ok = ok && cJSON_AddNumberToObject(e, "repetitions", 1);
	ok = ok && cJSON_AddNumberToObject(e, "repetition_index", 0);
	ok = ok && cJSON_AddNumberToObject(e, "threads", 1);
	ok = ok && cJSON_AddNumberToObject(e, "iterations", isnan(n) ? 1 : n);
	ok = ok && cJSON_AddNumberToObject(e, "real_time", median_ns);
	/* NOTE: GPU event and CLOCK_MONOTONIC times are wall times; cpu_time repeats it
	 * because Conbench reads cpu_time unless the name says /real_time. */
	ok = ok && cJSON_AddNumberToObject(e, "cpu_time", median_ns);
	ok = ok && cJSON_AddStringToObject(e, "time_unit", "ns");
	if (failed)
		ok = ok && gbench_failed(e, rec);
	else if (isfinite(gbps))
		ok = ok && cJSON_AddNumberToObject(e, "bytes_per_second", gbps * 1e9);
	cJSON_ArrayForEach(m, export_get(rec, "metrics"))
		if (ok && !failed && m->string && strcmp(m->string, "time_s") != 0 &&
		    !isnan(export_num_of(m)) && !export_get(e, m->string))
			ok = cJSON_AddNumberToObject(e, m->string, export_num_of(m)) != NULL;
	if (!ok) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

/* is_figure tells whether a record goes to gbench and bmf: a passed check and a median
 * time. */
static bool is_figure(const cJSON *rec)
{
	return export_passed(rec) && isfinite(export_time_stat(rec, "median"));
}

int export_gbench_json(const cJSON *doc, cJSON **json)
{
	struct export_names families = { 0 };
	const cJSON *recs, *rec;
	cJSON *g = NULL, *list = NULL;
	long *count = NULL, fam;
	char label[512];
	bool ok;
	int err = MB_OK;

	if (!doc || !json)
		return MB_ERR_ARG;
	*json = NULL;
	recs = export_records_of(doc);
	if (!recs)
		return MB_ERR_PARSE;
	count = calloc((size_t)cJSON_GetArraySize(recs) + 1, sizeof(*count));
	g = cJSON_CreateObject();
	ok = g && count && cJSON_AddItemToObject(g, "context", gbench_context(doc));
	ok = ok && (list = cJSON_AddArrayToObject(g, "benchmarks")) != NULL;
	cJSON_ArrayForEach(rec, recs) {
		/* NOTE: a failed check is exported, marked as an error, never dropped. */
		if (!ok || (!is_figure(rec) && export_passed(rec)))
			continue;
		fam = export_names_add(&families, export_str_or(rec, "benchmark", "?"));
		ok = fam >= 0;
		export_record_label(recs, rec, label, sizeof(label));
		ok = ok && cJSON_AddItemToArray(list, gbench_entry(rec, label, fam,
								   count[fam]++));
	}
	if (!ok) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	*json = g;
	g = NULL;
out:
	cJSON_Delete(g);
	free(count);
	free(families.v);
	return err;
}

/* ---- Bencher Metric Format ---------------------------------------------------- */

/* bmf_slug turns a metric name into a Bencher measure slug: lower case, '-' for '_'. */
static void bmf_slug(const char *name, char *buf, size_t len)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < len; i++)
		buf[i] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
	buf[i] = '\0';
}

/* bmf_entry builds one benchmark's measures: latency in ns, then derived metrics. */
static cJSON *bmf_entry(const cJSON *rec)
{
	const cJSON *m;
	cJSON *e = cJSON_CreateObject(), *lat = NULL, *v;
	double lo = export_time_stat(rec, "min"), hi = export_time_stat(rec, "max");
	char slug[65];
	bool ok = e != NULL;

	ok = ok && (lat = cJSON_AddObjectToObject(e, "latency")) != NULL;
	ok = ok && cJSON_AddNumberToObject(lat, "value", export_time_stat(rec, "median") * 1e9);
	if (ok && isfinite(lo))
		ok = cJSON_AddNumberToObject(lat, "lower_value", lo * 1e9) != NULL;
	if (ok && isfinite(hi))
		ok = cJSON_AddNumberToObject(lat, "upper_value", hi * 1e9) != NULL;
	cJSON_ArrayForEach(m, export_get(rec, "metrics")) {
		if (!ok || !m->string || strcmp(m->string, "time_s") == 0 || isnan(export_num_of(m)))
			continue;
		bmf_slug(m->string, slug, sizeof(slug));
		if (export_get(e, slug))
			continue; /* NOTE: a metric named "latency" would clash; time wins. */
		ok = (v = cJSON_AddObjectToObject(e, slug)) != NULL;
		ok = ok && cJSON_AddNumberToObject(v, "value", export_num_of(m));
	}
	if (!ok) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

int export_bmf_json(const cJSON *doc, cJSON **json)
{
	const cJSON *recs, *rec;
	cJSON *b;
	char label[512];
	bool ok;

	if (!doc || !json)
		return MB_ERR_ARG;
	*json = NULL;
	recs = export_records_of(doc);
	if (!recs)
		return MB_ERR_PARSE;
	b = cJSON_CreateObject();
	ok = b != NULL;
	cJSON_ArrayForEach(rec, recs) {
		if (!ok || !is_figure(rec))
			continue;
		export_record_label(recs, rec, label, sizeof(label));
		ok = cJSON_AddItemToObject(b, label, bmf_entry(rec));
	}
	if (!ok) {
		cJSON_Delete(b);
		return MB_ERR_NOMEM;
	}
	*json = b;
	return MB_OK;
}
