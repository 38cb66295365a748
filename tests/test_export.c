/*
 * test_export.c - Check suite for harness/results/export.c: CSV provenance, columns and
 * quoting; Google Benchmark JSON and Bencher Metric Format keys and units; the text
 * table; format dispatch.
 *
 *   gcc -std=c11 -D_GNU_SOURCE -Ikernels -Iharness tests/test_export.c \
 *       harness/results/export.c kernels/common/status.c -lcheck -lsubunit -lcjson -lm && ./a.out
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "status.h"

/* new_doc returns a result document with a context like a real run's. */
static cJSON *new_doc(void)
{
	cJSON *doc = cJSON_Parse(
		"{\"schema\":\"moebench.result/1\",\"context\":{\"date\":"
		"\"2026-11-23T04:21:00Z\",\"host\":\"node7\",\"argv\":[\"moebench\",\"gemm\","
		"\"--iters\",\"10\"],\"git_commit\":\"abc123\",\"moebench_version\":\"0.1\","
		"\"build\":{\"type\":\"Release\"},\"backend\":\"cuda\",\"cpu\":{\"model\":"
		"\"x\",\"cores\":16,\"mem_bytes\":1},\"devices\":[{\"index\":0,\"name\":"
		"\"NVIDIA H100 80GB HBM3\"}],\"world_size\":1},\"records\":[]}");
	return doc;
}

/* add_rec appends a record with time_s statistics around median, tflops (null when
 * negative) and a check; params_json is parsed as the params object. */
static cJSON *add_rec(cJSON *doc, const char *name, const char *params_json,
		      double median, double tflops, bool pass)
{
	cJSON *rec = cJSON_CreateObject();
	cJSON *metrics, *t, *check;

	cJSON_AddStringToObject(rec, "benchmark", "gemm");
	cJSON_AddStringToObject(rec, "name", name);
	cJSON_AddStringToObject(rec, "backend", "cuda");
	cJSON_AddItemToObject(rec, "params", cJSON_Parse(params_json));
	metrics = cJSON_AddObjectToObject(rec, "metrics");
	t = cJSON_AddObjectToObject(metrics, "time_s");
	cJSON_AddNumberToObject(t, "median", median);
	cJSON_AddNumberToObject(t, "min", median * 0.9);
	cJSON_AddNumberToObject(t, "max", median * 1.2);
	cJSON_AddNumberToObject(t, "mean", median);
	cJSON_AddNumberToObject(t, "stddev", median * 0.05);
	cJSON_AddNumberToObject(t, "cv", 0.05);
	cJSON_AddNumberToObject(t, "n", 20);
	if (tflops < 0)
		cJSON_AddNullToObject(metrics, "tflops");
	else
		cJSON_AddNumberToObject(metrics, "tflops", tflops);
	cJSON_AddNumberToObject(metrics, "pct_peak", 42.5);
	check = cJSON_AddObjectToObject(rec, "check");
	cJSON_AddStringToObject(check, "status", pass ? "pass" : "fail");
	cJSON_AddNumberToObject(check, "max_err", pass ? 1.5e-3 : 0.75);
	cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "records"), rec);
	return rec;
}

/* sample_doc: three records, one with a comma in its name and a null tflops, one
 * with an extra param, one whose check failed. */
static cJSON *sample_doc(void)
{
	cJSON *doc = new_doc();

	add_rec(doc, "fp8/M64", "{\"M\":64,\"N\":128}", 1.25e-3, 100.0, true);
	add_rec(doc, "bf16/M64,N7", "{\"M\":64,\"dtype\":\"bf16\"}", 2.5e-4, -1.0, true);
	add_rec(doc, "fp8/bad", "{\"M\":1}", 3e-3, 7.0, false);
	return doc;
}

/* near: equal to 1e-12 relative. NOTE: cJSON 1.7 prints 15 significant digits when
 * they read back within its epsilon, so a value may lose its last bit on the way. */
static bool near(double got, double want)
{
	return fabs(got - want) <= 1e-12 * fabs(want);
}

/* capture runs an export into a string (to free()), asserting its status. */
static char *capture(int (*fn)(const cJSON *, FILE *), const cJSON *doc, int want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	ck_assert_int_eq(fn(doc, out), want);
	fclose(out);
	return buf;
}

/* csv_fields counts the fields of one CSV line, honouring quotes. */
static int csv_fields(const char *line, size_t len)
{
	int n = 1;
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		if (line[i] == '"')
			quoted = !quoted;
		else if (line[i] == ',' && !quoted)
			n++;
	}
	return n;
}

START_TEST(csv_provenance_columns_rows)
{
	cJSON *doc = sample_doc();
	char *csv = capture(export_csv, doc, MB_OK), *line = csv, *eol;
	int comments = 0, rows = 0, header = 0;

	/* 3 ids + params M,N,dtype + 5 time columns + tflops,pct_peak + 2 check = 15 */
	for (; (eol = strchr(line, '\n')); line = eol + 1) {
		if (*line == '#') {
			comments++;
		} else if (!header) {
			header = csv_fields(line, (size_t)(eol - line));
			ck_assert(strncmp(line, "benchmark,name,backend,M,N,dtype,time_s_median",
					  46) == 0);
		} else {
			ck_assert_int_eq(csv_fields(line, (size_t)(eol - line)), 15);
			rows++;
		}
	}
	ck_assert_int_eq(header, 15);
	ck_assert_int_eq(rows, 3);
	ck_assert_int_ge(comments, 7);
	ck_assert_ptr_nonnull(strstr(csv, "# git_commit: abc123\n"));
	ck_assert_ptr_nonnull(strstr(csv, "# devices: NVIDIA H100 80GB HBM3\n"));
	ck_assert_ptr_nonnull(strstr(csv, "# argv: moebench gemm --iters 10\n"));
	ck_assert_ptr_nonnull(strstr(csv, "gemm,\"bf16/M64,N7\",cuda,64,,bf16,0.00025,"));
	free(csv);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(csv_column_names_are_unique)
{
	/* GEMM params "n" and "name" must not collide with the repetition count or the
	 * record name. */
	cJSON *doc = new_doc();
	add_rec(doc, "g", "{\"n\":64,\"name\":\"x\"}", 1e-3, 1.0, true);
	char *csv = capture(export_csv, doc, MB_OK), *line = csv;
	while (*line == '#')
		line = strchr(line, '\n') + 1;
	*strchr(line, '\n') = '\0';
	ck_assert_ptr_nonnull(strstr(line, ",param_name,"));
	ck_assert_ptr_nonnull(strstr(line, ",n,"));
	ck_assert_ptr_nonnull(strstr(line, ",time_s_n,"));
	char *cols[64];
	int n = 0;
	for (char *tok = strtok(line, ","); tok && n < 64; tok = strtok(NULL, ","))
		cols[n++] = tok;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			ck_assert_msg(strcmp(cols[i], cols[j]) != 0, "duplicate column '%s'", cols[i]);
	free(csv);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(csv_quotes_and_blanks)
{
	cJSON *doc = sample_doc();
	char *csv;

	cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "records"), 0),
				  "name", cJSON_CreateString("say \"hi\""));
	csv = capture(export_csv, doc, MB_OK);
	ck_assert_ptr_nonnull(strstr(csv, "gemm,\"say \"\"hi\"\"\",cuda,64,128,,"));
	/* the failed record keeps its identity and check, but no figure */
	ck_assert_ptr_nonnull(strstr(csv, "gemm,fp8/bad,cuda,1,,,,,,,,,,fail,0.75\n"));
	free(csv);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(gbench_keys_and_units)
{
	cJSON *doc = sample_doc(), *g, *b, *ctx;
	char *text = capture(export_gbench, doc, MB_OK);

	g = cJSON_Parse(text);
	ck_assert_ptr_nonnull(g);
	ctx = cJSON_GetObjectItem(g, "context");
	ck_assert(cJSON_IsArray(cJSON_GetObjectItem(ctx, "caches")));
	ck_assert_str_eq(cJSON_GetObjectItem(ctx, "host_name")->valuestring, "node7");
	ck_assert_str_eq(cJSON_GetObjectItem(ctx, "library_build_type")->valuestring,
			 "release");
	/* two figures and the failed check, marked (test gbench_marks_failed_checks) */
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(g, "benchmarks")), 3);
	b = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "benchmarks"), 0);
	ck_assert_str_eq(cJSON_GetObjectItem(b, "name")->valuestring, "gemm/fp8/M64");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "time_unit")->valuestring, "ns");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "run_type")->valuestring, "iteration");
	ck_assert(near(cJSON_GetObjectItem(b, "real_time")->valuedouble, 1.25e-3 * 1e9));
	ck_assert(near(cJSON_GetObjectItem(b, "cpu_time")->valuedouble, 1.25e-3 * 1e9));
	ck_assert_int_eq(cJSON_GetObjectItem(b, "iterations")->valueint, 20);
	ck_assert(cJSON_GetObjectItem(b, "tflops")->valuedouble == 100.0);
	b = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "benchmarks"), 1);
	ck_assert_ptr_null(cJSON_GetObjectItem(b, "tflops"));
	ck_assert_int_eq(cJSON_GetObjectItem(b, "per_family_instance_index")->valueint, 1);
	cJSON_Delete(g);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(gbench_marks_failed_checks)
{
	cJSON *doc = sample_doc(), *g, *b;
	char *text = capture(export_gbench, doc, MB_OK);

	g = cJSON_Parse(text);
	ck_assert_ptr_nonnull(g);
	b = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "benchmarks"), 2);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(cJSON_GetObjectItem(b, "name")->valuestring, "gemm/fp8/bad");
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(b, "error_occurred")));
	ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(b, "error_message")->valuestring,
				     "check failed: max_err 0.75"));
	/* no figure from a failed check: zero time, no counters */
	ck_assert(cJSON_GetObjectItem(b, "real_time")->valuedouble == 0);
	ck_assert_ptr_null(cJSON_GetObjectItem(b, "tflops"));
	/* a passing record has no error keys */
	ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetArrayItem(
		cJSON_GetObjectItem(g, "benchmarks"), 0), "error_occurred"));
	cJSON_Delete(g);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(gbench_bytes_per_second)
{
	cJSON *doc = new_doc(), *g, *b, *rec;
	char *text;

	rec = add_rec(doc, "copy", "{\"n\":4096}", 2e-6, 1.0, true);
	cJSON_AddNumberToObject(cJSON_GetObjectItem(rec, "metrics"), "gbps", 16.5);
	add_rec(doc, "no-bytes", "{\"n\":1}", 2e-6, 1.0, true);
	text = capture(export_gbench, doc, MB_OK);
	g = cJSON_Parse(text);
	ck_assert_ptr_nonnull(g);
	b = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "benchmarks"), 0);
	ck_assert(near(cJSON_GetObjectItem(b, "bytes_per_second")->valuedouble, 16.5e9));
	b = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "benchmarks"), 1);
	ck_assert_ptr_null(cJSON_GetObjectItem(b, "bytes_per_second"));
	cJSON_Delete(g);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(bmf_latency_and_measures)
{
	cJSON *doc = sample_doc(), *j, *lat;
	char *text = capture(export_bmf, doc, MB_OK);

	j = cJSON_Parse(text);
	ck_assert_ptr_nonnull(j);
	lat = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "gemm/fp8/M64"), "latency");
	ck_assert(near(cJSON_GetObjectItem(lat, "value")->valuedouble, 1.25e-3 * 1e9));
	ck_assert(near(cJSON_GetObjectItem(lat, "lower_value")->valuedouble,
		       1.25e-3 * 0.9 * 1e9));
	ck_assert(near(cJSON_GetObjectItem(lat, "upper_value")->valuedouble,
		       1.25e-3 * 1.2 * 1e9));
	ck_assert(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j,
		"gemm/fp8/M64"), "pct-peak"), "value")->valuedouble == 42.5);
	ck_assert_ptr_null(cJSON_GetObjectItem(j, "gemm/fp8/bad"));
	ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "gemm/bf16/M64,N7"),
					       "tflops"));
	cJSON_Delete(j);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(duplicate_labels_get_suffix)
{
	cJSON *doc = new_doc(), *j;
	char *text;

	add_rec(doc, "same", "{\"M\":1}", 1e-3, 1.0, true);
	add_rec(doc, "same", "{\"M\":2}", 2e-3, 1.0, true);
	text = capture(export_bmf, doc, MB_OK);
	j = cJSON_Parse(text);
	ck_assert_int_eq(cJSON_GetArraySize(j), 2);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "gemm/same#2"));
	cJSON_Delete(j);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(text_table_units_na_fail)
{
	cJSON *doc = sample_doc();
	char *text = capture(export_text, doc, MB_OK);

	ck_assert_ptr_nonnull(strstr(text, "time_ms"));
	ck_assert_ptr_nonnull(strstr(text, "cv_pct"));
	ck_assert_ptr_nonnull(strstr(text, "pct_peak"));
	ck_assert_ptr_nonnull(strstr(text, "1.25"));
	ck_assert_ptr_nonnull(strstr(text, "n/a"));
	ck_assert_ptr_nonnull(strstr(text, "FAIL"));
	ck_assert_ptr_nonnull(strstr(text, "7.50e-01"));
	free(text);
	cJSON_Delete(doc);
}
END_TEST

/* json_export and bogus_export adapt export_by_name to capture()'s signature. */
static int json_export(const cJSON *doc, FILE *out)
{
	return export_by_name("json", doc, out);
}

static int bogus_export(const cJSON *doc, FILE *out)
{
	return export_by_name("xml", doc, out);
}

START_TEST(by_name_dispatch)
{
	cJSON *doc = sample_doc(), *back;
	char *text = capture(json_export, doc, MB_OK);

	back = cJSON_Parse(text);
	ck_assert(cJSON_Compare(doc, back, true));
	cJSON_Delete(back);
	free(text);
	text = capture(bogus_export, doc, MB_ERR_ARG);
	ck_assert_str_eq(text, "");
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(no_records_is_parse_error)
{
	cJSON *doc = cJSON_Parse("{\"schema\":\"moebench.result/1\"}");
	char *text = capture(export_csv, doc, MB_ERR_PARSE);

	free(text);
	cJSON_Delete(doc);
}
END_TEST

static Suite *export_suite(void)
{
	Suite *s = suite_create("export");
	TCase *csv = tcase_create("csv");
	TCase *json = tcase_create("json");
	TCase *text = tcase_create("text");

	tcase_add_test(csv, csv_provenance_columns_rows);
	tcase_add_test(csv, csv_quotes_and_blanks);
	tcase_add_test(csv, csv_column_names_are_unique);
	tcase_add_test(csv, no_records_is_parse_error);
	tcase_add_test(json, gbench_keys_and_units);
	tcase_add_test(json, gbench_marks_failed_checks);
	tcase_add_test(json, gbench_bytes_per_second);
	tcase_add_test(json, bmf_latency_and_measures);
	tcase_add_test(json, duplicate_labels_get_suffix);
	tcase_add_test(json, by_name_dispatch);
	tcase_add_test(text, text_table_units_na_fail);
	suite_add_tcase(s, csv);
	suite_add_tcase(s, json);
	suite_add_tcase(s, text);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(export_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
