/*
 * test_compare.c - Check suite for harness/results/compare.c: the verdict rule (threshold,
 * noise, direction), BROKEN checks, n/a metrics, record pairing by benchmark + name +
 * canonical params, unmatched records and mismatched documents.
 *
 *   gcc -std=c11 -D_GNU_SOURCE -Ikernels -Iharness tests/test_compare.c \
 *       harness/results/compare.c kernels/common/status.c -lcheck -lsubunit -lcjson -lm && ./a.out
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "status.h"

/* new_doc returns an empty result document with a minimal context. */
static cJSON *new_doc(void)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *ctx = cJSON_AddObjectToObject(doc, "context");

	cJSON_AddStringToObject(doc, "schema", "moebench.result/1");
	cJSON_AddStringToObject(ctx, "git_commit", "abc123");
	cJSON_AddArrayToObject(doc, "records");
	return doc;
}

/* add_rec appends a record whose time_s has the given median and cv (mean = median,
 * stddev = cv*median, min median/(1+cv), max median*(1+cv), n = 10), tflops = 1e-3/median and a check;
 * params_json is parsed as the params object. */
static cJSON *add_rec(cJSON *doc, const char *name, const char *params_json,
		      double median, double cv, bool pass)
{
	cJSON *rec = cJSON_CreateObject();
	cJSON *metrics, *t, *check;

	cJSON_AddStringToObject(rec, "benchmark", "gemm");
	cJSON_AddStringToObject(rec, "name", name);
	cJSON_AddStringToObject(rec, "backend", "cpu");
	cJSON_AddItemToObject(rec, "params", cJSON_Parse(params_json ? params_json : "{}"));
	metrics = cJSON_AddObjectToObject(rec, "metrics");
	t = cJSON_AddObjectToObject(metrics, "time_s");
	cJSON_AddNumberToObject(t, "median", median);
	cJSON_AddNumberToObject(t, "min", median / (1 + cv));
	cJSON_AddNumberToObject(t, "max", median * (1 + cv));
	cJSON_AddNumberToObject(t, "mean", median);
	cJSON_AddNumberToObject(t, "stddev", cv * median);
	cJSON_AddNumberToObject(t, "cv", cv);
	cJSON_AddNumberToObject(t, "n", 10);
	cJSON_AddNumberToObject(metrics, "tflops", 1e-3 / median);
	check = cJSON_AddObjectToObject(rec, "check");
	cJSON_AddStringToObject(check, "status", pass ? "pass" : "fail");
	cJSON_AddNumberToObject(check, "max_err", pass ? 1e-6 : 0.5);
	cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "records"), rec);
	return rec;
}

/* run_compare compares base with cur under metric (NULL: default) into sum, keeping
 * the text output in *text (to free()) when text is not NULL; returns the status. */
static int run_compare(const cJSON *base, const cJSON *cur, const char *metric,
		       struct compare_summary *sum, char **text)
{
	struct compare_opts o;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	int err;

	compare_opts_default(&o);
	if (metric)
		o.metric = metric;
	err = compare_docs(base, cur, &o, out, sum);
	fclose(out);
	if (text)
		*text = buf;
	else
		free(buf);
	return err;
}

/* verdict_of compares one record pair (same name) and returns its verdict. */
static enum compare_verdict verdict_of(double med_b, double cv_b, bool pass_b,
				       double med_n, double cv_n, bool pass_n,
				       const char *metric)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;
	int v;

	add_rec(base, "fp8/M64", NULL, med_b, cv_b, pass_b);
	add_rec(cur, "fp8/M64", NULL, med_n, cv_n, pass_n);
	ck_assert_int_eq(run_compare(base, cur, metric, &sum, NULL), MB_OK);
	ck_assert_int_eq(sum.matched, 1);
	for (v = 0; v < COMPARE_NVERDICTS; v++)
		if (sum.counts[v])
			break;
	cJSON_Delete(base);
	cJSON_Delete(cur);
	return (enum compare_verdict)v;
}

START_TEST(slowdown_low_noise_is_slower)
{
	ck_assert_int_eq(verdict_of(1e-3, 0.01, true, 1.2e-3, 0.01, true, NULL),
			 COMPARE_SLOWER);
}
END_TEST

START_TEST(speedup_low_noise_is_faster)
{
	ck_assert_int_eq(verdict_of(1e-3, 0.01, true, 0.8e-3, 0.01, true, NULL),
			 COMPARE_FASTER);
}
END_TEST

START_TEST(change_within_noise_is_ambiguous)
{
	/* noise = 2*sqrt(0.3^2+0.3^2) = 85%: a 20% change proves nothing */
	ck_assert_int_eq(verdict_of(1e-3, 0.3, true, 1.2e-3, 0.3, true, NULL),
			 COMPARE_AMBIGUOUS);
}
END_TEST

START_TEST(outlier_cv_with_small_mad_still_slower)
{
	/* One preempted repetition inflates cv to 300%, but the MAD says the runs are
	 * tight (1.4826 * 1% spread): the 20% slowdown is real. */
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;
	cJSON *rb = add_rec(base, "fp8/M64", NULL, 1e-3, 3.0, true);
	cJSON *rc = add_rec(cur, "fp8/M64", NULL, 1.2e-3, 3.0, true);
	cJSON *tb = cJSON_GetObjectItem(cJSON_GetObjectItem(rb, "metrics"), "time_s");
	cJSON *tc = cJSON_GetObjectItem(cJSON_GetObjectItem(rc, "metrics"), "time_s");
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_OK);
	ck_assert_int_eq(sum.counts[COMPARE_AMBIGUOUS], 1);
	cJSON_AddNumberToObject(tb, "mad", 0.01e-3);
	cJSON_AddNumberToObject(tc, "mad", 0.012e-3);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_OK);
	ck_assert_int_eq(sum.counts[COMPARE_SLOWER], 1);
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(small_change_is_same)
{
	ck_assert_int_eq(verdict_of(1e-3, 0.01, true, 1.03e-3, 0.01, true, NULL),
			 COMPARE_SAME);
}
END_TEST

START_TEST(higher_is_better_drop_is_slower)
{
	/* tflops = 1e-3/median: 1.25x the time is a 20% drop in tflops */
	ck_assert_int_eq(verdict_of(1e-3, 0.01, true, 1.25e-3, 0.01, true, "tflops"),
			 COMPARE_SLOWER);
	ck_assert_int_eq(verdict_of(1.25e-3, 0.01, true, 1e-3, 0.01, true, "tflops"),
			 COMPARE_FASTER);
}
END_TEST

START_TEST(pass_to_fail_is_broken)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	add_rec(cur, "a", NULL, 0.9e-3, 0.01, false);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_OK);
	ck_assert_int_eq(sum.counts[COMPARE_BROKEN], 1);
	ck_assert_int_eq(sum.counts[COMPARE_FASTER], 0);
	ck_assert(compare_has_regression(&sum));
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(fail_in_base_is_na)
{
	ck_assert_int_eq(verdict_of(1e-3, 0.01, false, 2e-3, 0.01, true, NULL), COMPARE_NA);
}
END_TEST

START_TEST(null_metric_is_na_not_regression)
{
	cJSON *base = new_doc(), *cur = new_doc(), *rec;
	struct compare_summary sum;

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	rec = add_rec(cur, "a", NULL, 1e-3, 0.01, true);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(rec, "metrics"), "tflops",
				  cJSON_CreateNull());
	ck_assert_int_eq(run_compare(base, cur, "tflops", &sum, NULL), MB_OK);
	ck_assert_int_eq(sum.counts[COMPARE_NA], 1);
	ck_assert(!compare_has_regression(&sum));
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(classify_boundaries)
{
	ck_assert_int_eq(compare_classify(5.0, 0.0, 5.0, true), COMPARE_SAME);
	ck_assert_int_eq(compare_classify(-5.01, 1.0, 5.0, true), COMPARE_FASTER);
	ck_assert_int_eq(compare_classify(6.0, 6.0, 5.0, true), COMPARE_AMBIGUOUS);
	ck_assert_int_eq(compare_classify(6.0, NAN, 5.0, true), COMPARE_AMBIGUOUS);
	ck_assert_int_eq(compare_classify(-6.0, 1.0, 5.0, false), COMPARE_SLOWER);
}
END_TEST

START_TEST(only_in_one_file_is_listed)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;
	char *text = NULL;

	add_rec(base, "common", NULL, 1e-3, 0.01, true);
	add_rec(base, "gone", "{\"M\":64}", 1e-3, 0.01, true);
	add_rec(cur, "common", NULL, 1e-3, 0.01, true);
	add_rec(cur, "added", NULL, 1e-3, 0.01, true);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, &text), MB_OK);
	ck_assert_int_eq(sum.only_base, 1);
	ck_assert_int_eq(sum.only_new, 1);
	ck_assert_ptr_nonnull(strstr(text, "only in base: gemm/gone {\"M\":64}"));
	ck_assert_ptr_nonnull(strstr(text, "only in new: gemm/added"));
	ck_assert_ptr_nonnull(strstr(text, "noise_pct"));
	free(text);
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(params_key_order_does_not_matter)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;

	add_rec(base, "a", "{\"M\":64,\"N\":128,\"cfg\":{\"x\":1,\"y\":2}}", 1e-3, 0.01, true);
	add_rec(cur, "a", "{\"cfg\":{\"y\":2,\"x\":1},\"N\":128,\"M\":64}", 1e-3, 0.01, true);
	add_rec(base, "b", "{\"M\":64}", 1e-3, 0.01, true);
	add_rec(cur, "b", "{\"M\":65}", 1e-3, 0.01, true);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_OK);
	ck_assert_int_eq(sum.matched, 1);
	ck_assert_int_eq(sum.only_base, 1);
	ck_assert_int_eq(sum.only_new, 1);
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(canonical_json_sorts_keys_keeps_arrays)
{
	cJSON *a = cJSON_Parse("{\"b\":[2,1],\"a\":{\"d\":\"x\",\"c\":null}}");
	char *s = compare_canonical_json(a);

	ck_assert_str_eq(s, "{\"a\":{\"c\":null,\"d\":\"x\"},\"b\":[2,1]}");
	free(s);
	cJSON_Delete(a);
}
END_TEST

START_TEST(no_common_record_is_parse_error)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	add_rec(cur, "b", NULL, 1e-3, 0.01, true);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(sum.why, "no record in common"));
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(unknown_metric_is_parse_error)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	add_rec(cur, "a", NULL, 1e-3, 0.01, true);
	ck_assert_int_eq(run_compare(base, cur, "gbps", &sum, NULL), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(sum.why, "gbps"));
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(json_output_carries_verdicts)
{
	cJSON *base = new_doc(), *cur = new_doc(), *json = NULL, *rec;
	struct compare_summary sum;

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	add_rec(cur, "a", NULL, 1.2e-3, 0.01, true);
	add_rec(cur, "b", NULL, 1e-3, 0.01, true);
	ck_assert_int_eq(compare_docs_json(base, cur, NULL, &json, &sum), MB_OK);
	rec = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "records"), 0);
	ck_assert_str_eq(cJSON_GetObjectItem(rec, "verdict")->valuestring, "SLOWER");
	ck_assert_double_eq_tol(cJSON_GetObjectItem(rec, "change_pct")->valuedouble, 20.0,
				1e-9);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "only_in_new")), 1);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "summary"),
						   "regression")));
	cJSON_Delete(json);
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST


/* refused compares a valid BASE with NEW after edit(NEW's first record) and expects
 * MB_ERR_PARSE with a reason naming NEW's record and what. */
static void refused(void (*edit)(cJSON *rec, cJSON *doc), const char *what)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	edit(add_rec(cur, "a", NULL, 1e-3, 0.01, true), cur);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_ERR_PARSE);
	ck_assert(sum.invalid);
	ck_assert_msg(strstr(sum.why, "NEW records[0] (gemm/a)"), "%s", sum.why);
	ck_assert_msg(strstr(sum.why, what), "'%s' lacks '%s'", sum.why, what);
	cJSON_Delete(base);
	cJSON_Delete(cur);
}

static cJSON *time_of(cJSON *rec)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), "time_s");
}

static void set_time(cJSON *rec, const char *key, double v)
{
	cJSON_ReplaceItemInObject(time_of(rec), key, cJSON_CreateNumber(v));
}

static void edit_negative(cJSON *rec, cJSON *doc)
{
	(void)doc;
	set_time(rec, "min", -1e-3);
}

static void edit_min_over_max(cJSON *rec, cJSON *doc)
{
	(void)doc;
	set_time(rec, "min", 5e-3);
}

static void edit_n_zero(cJSON *rec, cJSON *doc)
{
	(void)doc;
	set_time(rec, "n", 0);
}

static void edit_infinite_metric(cJSON *rec, cJSON *doc)
{
	(void)doc;
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(rec, "metrics"), "tflops",
				  cJSON_CreateNumber(INFINITY));
}

static void edit_duplicate(cJSON *rec, cJSON *doc)
{
	cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "records"), cJSON_Duplicate(rec, true));
}

static void edit_null_time_in_pass(cJSON *rec, cJSON *doc)
{
	(void)doc;
	cJSON_ReplaceItemInObject(time_of(rec), "median", cJSON_CreateNull());
}

static void edit_sample_outside(cJSON *rec, cJSON *doc)
{
	cJSON *s = cJSON_AddArrayToObject(time_of(rec), "samples");
	(void)doc;
	cJSON_AddItemToArray(s, cJSON_CreateNumber(1e-3));
	cJSON_AddItemToArray(s, cJSON_CreateNumber(9e-3));
}

START_TEST(negative_time_is_refused) { refused(edit_negative, "time_s.min"); }
END_TEST
START_TEST(min_above_median_is_refused) { refused(edit_min_over_max, "min <= median"); }
END_TEST
START_TEST(zero_repetitions_is_refused) { refused(edit_n_zero, "time_s.n"); }
END_TEST
START_TEST(infinite_metric_is_refused) { refused(edit_infinite_metric, "metrics.tflops"); }
END_TEST
START_TEST(null_time_with_passing_check_is_refused)
{
	refused(edit_null_time_in_pass, "time_s.median");
}
END_TEST
START_TEST(sample_outside_min_max_is_refused)
{
	refused(edit_sample_outside, "time_s.samples");
}
END_TEST

START_TEST(duplicate_record_is_refused)
{
	cJSON *base = new_doc(), *cur = new_doc();
	struct compare_summary sum;

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	edit_duplicate(add_rec(cur, "a", "{\"m\":1,\"k\":2}", 1e-3, 0.01, true), cur);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_ERR_PARSE);
	ck_assert_msg(strstr(sum.why, "NEW records[1] (gemm/a)") &&
		      strstr(sum.why, "same benchmark, name and params as records[0]"), "%s",
		      sum.why);
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

START_TEST(failed_check_may_hold_nulls)
{
	cJSON *base = new_doc(), *cur = new_doc(), *rec;
	struct compare_summary sum;
	static const char *const keys[] = { "median", "min", "max", "mean", "stddev", "cv" };

	add_rec(base, "a", NULL, 1e-3, 0.01, true);
	rec = add_rec(cur, "a", NULL, 1e-3, 0.01, false);
	for (size_t k = 0; k < 6; k++)
		cJSON_ReplaceItemInObject(time_of(rec), keys[k], cJSON_CreateNull());
	set_time(rec, "n", 0);
	ck_assert_int_eq(run_compare(base, cur, NULL, &sum, NULL), MB_OK);
	ck_assert_int_eq(sum.counts[COMPARE_BROKEN], 1);
	cJSON_Delete(base);
	cJSON_Delete(cur);
}
END_TEST

static Suite *compare_suite(void)
{
	Suite *s = suite_create("compare");
	TCase *verdicts = tcase_create("verdicts");
	TCase *pairing = tcase_create("pairing");
	TCase *output = tcase_create("output");
	TCase *validate = tcase_create("validate");

	tcase_add_test(verdicts, outlier_cv_with_small_mad_still_slower);
	tcase_add_test(verdicts, slowdown_low_noise_is_slower);
	tcase_add_test(verdicts, speedup_low_noise_is_faster);
	tcase_add_test(verdicts, change_within_noise_is_ambiguous);
	tcase_add_test(verdicts, small_change_is_same);
	tcase_add_test(verdicts, higher_is_better_drop_is_slower);
	tcase_add_test(verdicts, pass_to_fail_is_broken);
	tcase_add_test(verdicts, fail_in_base_is_na);
	tcase_add_test(verdicts, null_metric_is_na_not_regression);
	tcase_add_test(verdicts, classify_boundaries);
	tcase_add_test(pairing, only_in_one_file_is_listed);
	tcase_add_test(pairing, params_key_order_does_not_matter);
	tcase_add_test(pairing, canonical_json_sorts_keys_keeps_arrays);
	tcase_add_test(pairing, no_common_record_is_parse_error);
	tcase_add_test(pairing, unknown_metric_is_parse_error);
	tcase_add_test(output, json_output_carries_verdicts);
	suite_add_tcase(s, verdicts);
	suite_add_tcase(s, pairing);
	suite_add_tcase(s, output);
	tcase_add_test(validate, negative_time_is_refused);
	tcase_add_test(validate, min_above_median_is_refused);
	tcase_add_test(validate, zero_repetitions_is_refused);
	tcase_add_test(validate, infinite_metric_is_refused);
	tcase_add_test(validate, null_time_with_passing_check_is_refused);
	tcase_add_test(validate, sample_outside_min_max_is_refused);
	tcase_add_test(validate, duplicate_record_is_refused);
	tcase_add_test(validate, failed_check_may_hold_nulls);
	suite_add_tcase(s, validate);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(compare_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
