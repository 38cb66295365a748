/* test_result.c - the result document: build, write atomically, read back, validate. */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "result.h"
#include "stats.h"
#include "status.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mb_result_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* sample_doc builds a one-record document with known numbers. */
static cJSON *sample_doc(void)
{
	cJSON *doc = result_new();
	struct stats st = { 0.002, 0.001, 0.004, 0.0025, 0.001, 0.4, 0.0005, 7 };
	cJSON_AddStringToObject(result_context(doc), "host", "test");
	cJSON *r = result_add_record(doc, "peak", "cpu/sgemm/M8", "cpu");
	cJSON_AddNumberToObject(cJSON_GetObjectItem(r, "params"), "m", 8);
	ck_assert_int_eq(result_set_time(r, &st), MB_OK);
	ck_assert_int_eq(result_set_metric(r, "tflops", 1.5), MB_OK);
	ck_assert_int_eq(result_set_metric(r, "pct_peak", NAN), MB_OK);
	ck_assert_int_eq(result_set_check(r, true, 1e-7, 1e-5, "rel", 16, 0), MB_OK);
	return doc;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(round_trip)
{
	char path[128], why[256];
	make_dir();
	snprintf(path, sizeof(path), "%s/sub/dir/r.json", dir);
	cJSON *doc = sample_doc(), *back = NULL;
	char *text = cJSON_Print(doc);
	ck_assert_int_eq(result_write_atomic(path, text, false, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(result_read(path, &back, why, sizeof(why)), MB_OK);
	ck_assert(cJSON_Compare(doc, back, true));
	const cJSON *m = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(back, "records"), 0), "metrics");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "pct_peak")));
	ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "time_s"), "median")->valuedouble, 0.002);
	free(text);
	cJSON_Delete(doc);
	cJSON_Delete(back);
}
END_TEST

START_TEST(refuses_to_overwrite_without_force)
{
	char path[128], why[256];
	make_dir();
	snprintf(path, sizeof(path), "%s/r.json", dir);
	write_text(path, "old");
	ck_assert_int_eq(result_write_atomic(path, "new", false, why, sizeof(why)), MB_ERR_EXISTS);
	ck_assert_ptr_nonnull(strstr(why, "--force"));
	FILE *f = fopen(path, "r");
	char buf[8] = "";
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_str_eq(buf, "old");
	ck_assert_int_eq(result_write_atomic(path, "new", true, why, sizeof(why)), MB_OK);
}
END_TEST

START_TEST(non_regular_targets_never_replaced)
{
	char fifo[128], link[128], target[128], why[256];
	struct stat st;
	make_dir();
	snprintf(fifo, sizeof(fifo), "%s/f", dir);
	snprintf(link, sizeof(link), "%s/l.json", dir);
	snprintf(target, sizeof(target), "%s/t.json", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	write_text(target, "old");
	ck_assert_int_eq(symlink(target, link), 0);
	/* with force too: a FIFO, a link, a directory, a device stay what they are */
	ck_assert_int_eq(result_write_atomic(fifo, "new", true, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "a FIFO"));
	ck_assert_int_eq(result_write_atomic(link, "new", true, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_int_eq(result_write_atomic(dir, "new", true, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_int_eq(result_output_check("/dev/null", true, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "a character device"));
	ck_assert(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
	ck_assert(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
	/* a path under a regular file is refused before any work */
	snprintf(link, sizeof(link), "%s/t.json/x.json", dir);
	ck_assert_int_eq(result_output_check(link, false, why, sizeof(why)), MB_ERR_IO);
	ck_assert_int_eq(result_output_check(target, false, why, sizeof(why)), MB_ERR_EXISTS);
	ck_assert_int_eq(result_output_check(target, true, why, sizeof(why)), MB_OK);
}
END_TEST

START_TEST(default_paths_differ)
{
	char a[256], tail[64];
	result_default_path("peak", a, sizeof(a));
	/* <YYYYmmdd-HHMMSS>.<microseconds>Z-<host>-<pid>-peak.json */
	snprintf(tail, sizeof(tail), "-%ld-peak.json", (long)getpid());
	ck_assert_ptr_nonnull(strstr(a, tail));
	ck_assert_int_eq(strncmp(a, "results/runs/local/", 19), 0);
	ck_assert_int_eq(a[19 + 15], '.');
	ck_assert_int_eq(a[19 + 22], 'Z');
}
END_TEST

START_TEST(failed_write_leaves_existing_file_and_no_temporary)
{
	char path[128], why[256], buf[8] = "";
	make_dir();
	snprintf(path, sizeof(path), "%s/r.json", dir);
	write_text(path, "old");
	/* A read-only directory makes the temporary file impossible: the write fails
	 * and the existing file must be unchanged. Root ignores permissions, so use a
	 * destination whose parent is a regular file instead. */
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/r.json/inner.json", dir);
	ck_assert_int_eq(result_write_atomic(bad, "new", true, why, sizeof(why)), MB_ERR_IO);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_str_eq(buf, "old");
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "ls %s | grep -c tmp", dir);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), p));
	pclose(p);
	ck_assert_str_eq(buf, "0\n");
}
END_TEST

START_TEST(no_temporary_left_after_success)
{
	char path[128], why[256], cmd[160], buf[8] = "";
	make_dir();
	snprintf(path, sizeof(path), "%s/r.json", dir);
	ck_assert_int_eq(result_write_atomic(path, "{}", false, why, sizeof(why)), MB_OK);
	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", dir);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), p));
	pclose(p);
	ck_assert_str_eq(buf, "1\n");
}
END_TEST

/* expect_invalid mutates a valid document and expects validation to name path. */
static void expect_invalid(void (*mutate)(cJSON *), const char *path_part)
{
	char why[256];
	cJSON *doc = sample_doc();
	mutate(doc);
	ck_assert_int_eq(result_validate(doc, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_msg(strstr(why, path_part), "'%s' does not name '%s'", why, path_part);
	cJSON_Delete(doc);
}

static cJSON *rec0(cJSON *doc)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "records"), 0);
}
static void wrong_schema(cJSON *d) { cJSON_ReplaceItemInObject(d, "schema", cJSON_CreateString("x/2")); }
static void no_records(cJSON *d) { cJSON_DeleteItemFromObject(d, "records"); }
static void no_median(cJSON *d)
{
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetObjectItem(rec0(d), "metrics"), "time_s"), "median");
}
static void bad_status(cJSON *d)
{
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(rec0(d), "check"), "status", cJSON_CreateString("ok"));
}
static void name_not_string(cJSON *d) { cJSON_ReplaceItemInObject(rec0(d), "name", cJSON_CreateNumber(3)); }

START_TEST(schema_violations_name_the_field)
{
	char why[256];
	cJSON *doc = sample_doc();
	ck_assert_int_eq(result_validate(doc, why, sizeof(why)), MB_OK);
	cJSON_Delete(doc);
	expect_invalid(wrong_schema, "schema");
	expect_invalid(no_records, "records");
	expect_invalid(no_median, "records[0].metrics.time_s.median");
	expect_invalid(bad_status, "records[0].check.status");
	expect_invalid(name_not_string, "records[0].name");
}
END_TEST

START_TEST(read_rejects_malformed_json_and_missing_file)
{
	char path[128], why[256];
	cJSON *doc = NULL;
	make_dir();
	snprintf(path, sizeof(path), "%s/bad.json", dir);
	write_text(path, "{\"schema\": \"moebench.result/1\", ");
	ck_assert_int_eq(result_read(path, &doc, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_ptr_null(doc);
	ck_assert_ptr_nonnull(strstr(why, "not valid JSON"));
	snprintf(path, sizeof(path), "%s/absent.json", dir);
	ck_assert_int_eq(result_read(path, &doc, why, sizeof(why)), MB_ERR_IO);
}
END_TEST

START_TEST(metric_direction)
{
	ck_assert(result_metric_lower_is_better("time_s"));
	ck_assert(!result_metric_lower_is_better("tflops"));
	ck_assert(!result_metric_lower_is_better("gbps"));
	ck_assert(!result_metric_lower_is_better("s"));
	ck_assert(result_metric_lower_is_better("max_rel_err"));
	ck_assert(!result_metric_lower_is_better("err"));
}
END_TEST

static Suite *result_suite(void)
{
	Suite *s = suite_create("result");
	TCase *core = tcase_create("core");
	tcase_add_test(core, round_trip);
	tcase_add_test(core, metric_direction);
	TCase *files = tcase_create("atomic");
	tcase_add_test(files, refuses_to_overwrite_without_force);
	tcase_add_test(files, non_regular_targets_never_replaced);
	tcase_add_test(files, default_paths_differ);
	tcase_add_test(files, failed_write_leaves_existing_file_and_no_temporary);
	tcase_add_test(files, no_temporary_left_after_success);
	TCase *schema = tcase_create("schema");
	tcase_add_test(schema, schema_violations_name_the_field);
	tcase_add_test(schema, read_rejects_malformed_json_and_missing_file);
	suite_add_tcase(s, core);
	suite_add_tcase(s, files);
	suite_add_tcase(s, schema);
	return s;
}

MB_CHECK_MAIN(result_suite)
