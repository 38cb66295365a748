/*
 * test_verdict.c - compare's verdict on real timings of this machine (noise.h,
 * compare_robust.c): 20 back-to-back pairs of the same work must give no SLOWER, and
 * the same pairs with 20% more work planted in NEW must be SLOWER in every pair. The
 * case is a synthetic dependent FMA chain (no memory traffic, no threads), timed by
 * the real driver, so the noise is the machine's and the statistics are compare's.
 * A pair judged NOISY (the machine was oversubscribed while it ran, which its records
 * must show) is measured again, up to 4 times; one still NOISY counts as no verdict,
 * never as caught: on a quiet machine every pair is judged, and the suite prints how
 * many were. Also: the Mann-Whitney test and the quantile on known answers, and the
 * record fields that say how the timed region ran.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "compare.h"
#include "driver.h"
#include "result.h"
#include "stats.h"
#include "status.h"

#define PAIRS 20
#define WORK 150000L /* FMA chain length: ~0.2 ms on a 2.6 GHz core */

struct chain {
	long n;
	double x;
};

/* chain_run is the work: n dependent multiply-adds (latency bound, one core). */
static int chain_run(void *s)
{
	struct chain *c = s;
	volatile double a = 0.999999, b = 1e-7;
	double x = c->x, ma = a, mb = b;
	for (long i = 0; i < c->n; i++)
		x = x * ma + mb;
	c->x = x;
	return MB_OK;
}

static int chain_check(void *s, struct bench_check *chk)
{
	struct chain *c = s;
	chk->max_err = isfinite(c->x) ? 0.0 : 1.0;
	chk->tolerance = 0.5;
	chk->samples = 1;
	chk->mismatches = 0;
	chk->metric = "finite";
	return MB_OK;
}

/* measure runs the chain of n steps through the driver into a new document. */
static cJSON *measure(long n)
{
	struct cli_common o = { .backend = "cpu", .warmup = 1, .iters = 60, .min_time = 0 };
	struct backend be = { .kind = BACKEND_CPU };
	cJSON *doc = result_new();
	struct run_ctx ctx = { .benchmark = "synthetic", .backend = &be, .opts = &o,
			       .doc = doc };
	struct chain st = { n, 1.0 };
	struct bench_case c = { .name = "fma_chain", .params = cJSON_CreateObject(),
				.flops = 2.0 * (double)WORK, .peak = NAN, .state = &st,
				.run = chain_run, .check = chain_check };

	o.quiet = true;
	ck_assert_int_eq(driver_run_case(&ctx, &c), MB_OK);
	ck_assert_int_eq(ctx.failures, 0);
	return doc;
}

/* was_loaded tells whether a run's load average was over 2 per CPU. */
static bool was_loaded(const cJSON *doc)
{
	const cJSON *tm = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc,
		"records"), 0), "timing");
	double load = cJSON_GetNumberValue(cJSON_GetObjectItem(tm, "load_avg_1m"));
	double cpus = cJSON_GetNumberValue(cJSON_GetObjectItem(tm, "online_cpus"));
	return load > COMPARE_MAX_LOAD_PER_CPU * cpus;
}

/* was_contended tells whether a run's record carries the evidence NOISY needs: fewer
 * than half of its repetitions unpreempted, or a load average over 2 per CPU. */
static bool was_contended(const cJSON *doc)
{
	const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "records"), 0);
	double n = cJSON_GetNumberValue(cJSON_GetObjectItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), "time_s"), "n"));
	const cJSON *tm = cJSON_GetObjectItem(rec, "timing");
	double clean = cJSON_GetNumberValue(cJSON_GetObjectItem(tm, "clean_reps"));
	return clean < COMPARE_MIN_CLEAN_SHARE * n || was_loaded(doc);
}

/* one_pair measures BASE (n_base) then NEW (n_new) back to back and returns the
 * verdict; a NOISY verdict must be backed by one of the records. */
static enum compare_verdict one_pair(long n_base, long n_new, const char *what, int i,
				     bool *loaded)
{
	cJSON *b = measure(n_base), *c = measure(n_new), *js = NULL, *row;
	struct compare_summary sum;
	enum compare_verdict v = COMPARE_NA;
	ck_assert_int_eq(compare_docs_json(b, c, NULL, &js, &sum), MB_OK);
	row = cJSON_GetArrayItem(cJSON_GetObjectItem(js, "records"), 0);
	fprintf(stderr, "verdict %s pair %2d: change %+6.2f%% p %.1e %s\n", what, i,
		cJSON_GetObjectItem(row, "change_pct")->valuedouble,
		cJSON_GetNumberValue(cJSON_GetObjectItem(row, "p_value")),
		cJSON_GetObjectItem(row, "verdict")->valuestring);
	for (int k = 0; k < COMPARE_NVERDICTS; k++)
		if (sum.counts[k])
			v = (enum compare_verdict)k;
	ck_assert_msg(v != COMPARE_NOISY || was_contended(b) || was_contended(c),
		      "NOISY without contention");
	*loaded = was_loaded(b) || was_loaded(c);
	cJSON_Delete(js);
	cJSON_Delete(b);
	cJSON_Delete(c);
	return v;
}

/* pairs runs PAIRS back-to-back pairs and counts verdicts. A NOISY pair (a run was
 * oversubscribed: no verdict is possible) is measured again, up to RETRIES times,
 * unless the load average says the machine is busy; *retried counts them. */
#define RETRIES 4
static void pairs(long n_base, long n_new, int counts[COMPARE_NVERDICTS], const char *what,
		  int *retried)
{
	memset(counts, 0, COMPARE_NVERDICTS * sizeof(*counts));
	*retried = 0;
	for (int i = 0; i < PAIRS; i++) {
		bool loaded;
		enum compare_verdict v = one_pair(n_base, n_new, what, i, &loaded);
		/* NOTE: a 1-minute load average will not fall in the seconds a retry takes */
		for (int r = 0; v == COMPARE_NOISY && !loaded && r < RETRIES; r++, (*retried)++)
			v = one_pair(n_base, n_new, what, i, &loaded);
		counts[v]++;
	}
}

START_TEST(same_work_gives_no_slower)
{
	int n[COMPARE_NVERDICTS], retried;
	pairs(WORK, WORK, n, "same", &retried);
	fprintf(stderr, "verdict same: %d SAME, %d AMBIGUOUS, %d NOISY, %d SLOWER, %d FASTER "
		"of %d pairs (%d re-measured)\n", n[COMPARE_SAME], n[COMPARE_AMBIGUOUS],
		n[COMPARE_NOISY], n[COMPARE_SLOWER], n[COMPARE_FASTER], PAIRS, retried);
	/* NOTE: a verdict is a test at a fixed significance, so identical work is called
	 * SLOWER now and then when the machine's load moves between the two runs (seen: 1
	 * of 20 once, under the sanitizers on a loaded 2-core VM); more than one of 20 is
	 * a broken rule, not chance */
	ck_assert_msg(n[COMPARE_SLOWER] <= 1, "%d of %d identical pairs called SLOWER",
		      n[COMPARE_SLOWER], PAIRS);
	ck_assert_msg(n[COMPARE_SAME] + n[COMPARE_NOISY] + n[COMPARE_AMBIGUOUS] +
		      n[COMPARE_FASTER] + n[COMPARE_SLOWER] == PAIRS,
		      "identical pairs with other verdicts");
}
END_TEST

START_TEST(planted_20pct_slowdown_is_slower_in_every_pair)
{
	int n[COMPARE_NVERDICTS], retried;
	pairs(WORK, WORK * 6 / 5, n, "planted", &retried);
	fprintf(stderr, "verdict planted: %d SLOWER, %d NOISY (no verdict: oversubscribed), "
		"%d other, of %d pairs (%d re-measured)\n", n[COMPARE_SLOWER],
		n[COMPARE_NOISY], PAIRS - n[COMPARE_SLOWER] - n[COMPARE_NOISY], PAIRS, retried);
	/* Every pair that could be judged is SLOWER: never SAME, AMBIGUOUS or FASTER. */
	ck_assert_msg(n[COMPARE_SLOWER] + n[COMPARE_NOISY] == PAIRS, "a 20%% slowdown caught "
		      "in %d of %d pairs (%d AMBIGUOUS, %d SAME)", n[COMPARE_SLOWER], PAIRS,
		      n[COMPARE_AMBIGUOUS], n[COMPARE_SAME]);
}
END_TEST

START_TEST(record_keeps_repetitions_and_timing)
{
	cJSON *doc = measure(WORK / 10);
	const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "records"), 0);
	const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), "time_s");
	const cJSON *tm = cJSON_GetObjectItem(rec, "timing");
	double n = cJSON_GetNumberValue(cJSON_GetObjectItem(t, "n"));
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "samples")), n < 256 ? n : 256);
	ck_assert(cJSON_GetNumberValue(cJSON_GetObjectItem(tm, "wall_s")) > 0);
	/* One busy thread: close to one CPU second per wall second unless preempted. */
	ck_assert(cJSON_GetNumberValue(cJSON_GetObjectItem(tm, "cpu_per_wall")) > 0.05);
	ck_assert(cJSON_GetNumberValue(cJSON_GetObjectItem(tm, "cpu_per_wall")) < 1.5);
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(tm, "involuntary_switches")));
	cJSON_Delete(doc);
}
END_TEST

START_TEST(mann_whitney_known_answers)
{
	const double a[] = { 1, 2, 3, 4, 5 }, b[] = { 6, 7, 8, 9, 10 };
	const double c[] = { 1, 2, 2, 3 }, d[] = { 2, 3, 3, 4 };
	double z, p;
	/* All of b above a: U = 25, mean 12.5, sigma = sqrt(25*11/12), z = 12/sigma,
	 * p = erfc(z/sqrt 2) = 0.0121858 (scipy's asymptotic mannwhitneyu agrees). */
	ck_assert_int_eq(stats_mann_whitney(a, 5, b, 5, &z, &p), MB_OK);
	ck_assert_double_eq_tol(p, 0.0121857, 1e-6);
	ck_assert(z > 0);
	ck_assert_int_eq(stats_mann_whitney(b, 5, a, 5, &z, &p), MB_OK);
	ck_assert(z < 0);
	/* With ties, by hand: midranks of d 3+6+6+8, U = 13, mean 8, tie term 24+24,
	 * sigma = sqrt(16/12*(9-48/56)), z = 4.5/sigma = 1.36570, p = 0.172034. */
	ck_assert_int_eq(stats_mann_whitney(c, 4, d, 4, &z, &p), MB_OK);
	ck_assert_double_eq_tol(p, 0.172034, 1e-6);
	ck_assert_int_eq(stats_mann_whitney(a, 5, a, 5, &z, &p), MB_OK);
	ck_assert_double_eq_tol(p, 1.0, 1e-12);
}
END_TEST

START_TEST(quantile_interpolates)
{
	const double x[] = { 5, 1, 4, 2, 3 };
	ck_assert_double_eq_tol(stats_quantile(x, 5, 0.0), 1, 1e-15);
	ck_assert_double_eq_tol(stats_quantile(x, 5, 0.1), 1.4, 1e-15);
	ck_assert_double_eq_tol(stats_quantile(x, 5, 0.5), 3, 1e-15);
	ck_assert_double_eq_tol(stats_quantile(x, 5, 1.0), 5, 1e-15);
	ck_assert(isnan(stats_quantile(x, 0, 0.5)));
}
END_TEST

/* doc_with returns a document of one record whose repetition times are n copies of
 * base_s, with `slow` of them (every k-th) preempted to 5x; clean_reps as given. */
static cJSON *doc_with(double base_s, int n, int slow, int clean)
{
	double *s = malloc((size_t)n * sizeof(*s));
	struct stats st;
	cJSON *doc = result_new(), *rec, *arr, *tm;

	for (int i = 0; i < n; i++)
		s[i] = base_s * (1 + 1e-3 * (i % 7)) * (i < slow ? 5 : 1);
	ck_assert_int_eq(stats_compute(s, (size_t)n, &st), MB_OK);
	rec = result_add_record(doc, "synthetic", "r", "cpu");
	ck_assert_int_eq(result_set_time(rec, &st), MB_OK);
	result_set_check(rec, true, 0, 1, "x", 1, 0);
	arr = cJSON_AddArrayToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"),
							 "time_s"), "samples");
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateNumber(s[i]));
	tm = cJSON_AddObjectToObject(rec, "timing");
	cJSON_AddNumberToObject(tm, "cpu_per_wall", 1.0);
	cJSON_AddNumberToObject(tm, "clean_reps", clean);
	free(s);
	return doc;
}

/* verdict_pair compares two documents of one record and returns the verdict. */
static enum compare_verdict verdict_pair(cJSON *b, cJSON *c)
{
	struct compare_summary sum;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int v;
	ck_assert_int_eq(compare_docs(b, c, NULL, f, &sum), MB_OK);
	fclose(f);
	free(buf);
	for (v = 0; v < COMPARE_NVERDICTS && !sum.counts[v]; v++)
		;
	cJSON_Delete(b);
	cJSON_Delete(c);
	return (enum compare_verdict)v;
}

START_TEST(preempted_majority_with_clean_minimum_is_same)
{
	/* half of NEW's repetitions preempted (its median 3x), the other half clean: the
	 * median rule would say SLOWER; the minimum sees no change. */
	ck_assert_int_eq(verdict_pair(doc_with(1e-3, 20, 0, 20), doc_with(1e-3, 20, 10, 10)),
			 COMPARE_SAME);
}
END_TEST

START_TEST(shifted_repetitions_are_slower)
{
	ck_assert_int_eq(verdict_pair(doc_with(1e-3, 20, 0, 20), doc_with(1.2e-3, 20, 0, 20)),
			 COMPARE_SLOWER);
	ck_assert_int_eq(verdict_pair(doc_with(1.2e-3, 20, 0, 20), doc_with(1e-3, 20, 0, 20)),
			 COMPARE_FASTER);
}
END_TEST

START_TEST(oversubscribed_run_is_noisy)
{
	/* 9 of 20 repetitions clean in NEW, then in BASE: no verdict either way */
	ck_assert_int_eq(verdict_pair(doc_with(1e-3, 20, 0, 20), doc_with(1.2e-3, 20, 0, 9)),
			 COMPARE_NOISY);
	ck_assert_int_eq(verdict_pair(doc_with(1e-3, 20, 0, 9), doc_with(1.2e-3, 20, 0, 20)),
			 COMPARE_NOISY);
	/* 10 of 20 clean is enough */
	ck_assert_int_eq(verdict_pair(doc_with(1e-3, 20, 0, 10), doc_with(1.2e-3, 20, 0, 10)),
			 COMPARE_SLOWER);
}
END_TEST

START_TEST(too_few_repetitions_for_significance_is_ambiguous)
{
	/* Six a side, overlapping: the change passes the threshold, the rank test not. */
	cJSON *b = doc_with(1e-3, 6, 3, 3), *c = doc_with(1.1e-3, 6, 0, 6);
	ck_assert_int_eq(verdict_pair(b, c), COMPARE_AMBIGUOUS);
}
END_TEST

START_TEST(loaded_machine_is_noisy)
{
	cJSON *b = doc_with(1e-3, 20, 0, 20), *c = doc_with(1.2e-3, 20, 0, 20);
	cJSON *tm = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "records"), 0),
					"timing");
	cJSON_AddNumberToObject(tm, "load_avg_1m", 9.0);
	cJSON_AddNumberToObject(tm, "online_cpus", 4);
	ck_assert_int_eq(verdict_pair(b, c), COMPARE_NOISY);
}
END_TEST

static Suite *verdict_suite(void)
{
	Suite *s = suite_create("verdict");
	TCase *stat = tcase_create("statistics");
	TCase *noise = tcase_create("false_alarms");

	tcase_add_test(stat, mann_whitney_known_answers);
	tcase_add_test(stat, quantile_interpolates);
	tcase_add_test(stat, preempted_majority_with_clean_minimum_is_same);
	tcase_add_test(stat, shifted_repetitions_are_slower);
	tcase_add_test(stat, oversubscribed_run_is_noisy);
	tcase_add_test(stat, loaded_machine_is_noisy);
	tcase_add_test(stat, too_few_repetitions_for_significance_is_ambiguous);
	tcase_add_test(noise, record_keeps_repetitions_and_timing);
	tcase_add_test(noise, same_work_gives_no_slower);
	tcase_add_test(noise, planted_20pct_slowdown_is_slower_in_every_pair);
	tcase_set_timeout(noise, 120);
	suite_add_tcase(s, stat);
	suite_add_tcase(s, noise);
	return s;
}

MB_CHECK_MAIN(verdict_suite)
