/*
 * test_cli_scale_mpi.c - `moebench scale` as a user runs it, each size launched through
 * mpirun --oversubscribe. sweep: a tiny weak and strong sweep over 1 and 2 ranks writes
 * one scale record per point (params gpus, mode, preset, precision, seq, vocab; metrics
 * tokens_per_s) whose efficiencies follow the formulas from the kept step results
 * (weak: tokens/s per rank at N over N0; strong: T(N0) N0 / (T(N) N)), each step's
 * check passed, the table names cores per rank and Frontier's figures, `moebench report`
 * reads the document, and the kept files are not overwritten without --force. refuse: a
 * strong batch a size does not divide and a launcher without {n} are one error, exit 2,
 * before any launch. Built only with MPI.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"

#define ENV "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
#define BASE ENV "$MB scale --batch 2 --seq 16 --step-iters 2 --step-warmup 0"
#define SCALE BASE " --ranks 1,2"
/* recomputes every efficiency from the kept step files; prints the largest error */
#define PY_EFF "python3 -c 'import json\n" \
	"d=json.load(open(\"s.json\"))[\"records\"]\n" \
	"def step(f): r=json.load(open(f))[\"records\"][0]; return r[\"metrics\"]\n" \
	"worst=0\n" \
	"for r in d:\n" \
	"  p=r[\"params\"]; n=p[\"gpus\"]; m=p[\"mode\"]; s=step(p[\"step_result\"])\n" \
	"  b=step(\"scale_results/step_%%s_n1.json\" %% m)\n" \
	"  e=(s[\"tokens_per_s\"]/n)/b[\"tokens_per_s\"] if m==\"weak\" else " \
	"b[\"time_s\"][\"median\"]/(s[\"time_s\"][\"median\"]*n)\n" \
	"  worst=max(worst,abs(e-r[\"metrics\"][\"scaling_efficiency\"]))\n" \
	"  assert r[\"check\"][\"status\"]==\"pass\" and p[\"preset\"]==\"v3-tiny\" and p[\"seq\"]==16\n" \
	"print(\"records\", len(d), \"worst\", worst)'"

START_TEST(weak_and_strong_sweep_over_1_and_2_ranks)
{
	int st = sh(SCALE " --out s.json --csv s.csv");
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_msg(strstr(out, "cores/rank") && strstr(out, "Frontier") &&
		      strstr(out, "gpt-175b weak 100% strong 89%"), "%s", out);
	ck_assert_int_eq(sh("ls scale_results | tr '\\n' ' '"), 0);
	ck_assert_str_eq(out, "step_strong_n1.json step_strong_n2.json step_weak_n1.json "
			 "step_weak_n2.json ");
	st = sh(PY_EFF);
	ck_assert_msg(st == 0, "%s", out);
	ck_assert_msg(strstr(out, "records 4 worst "), "%s", out);
	ck_assert_double_le(strtod(strstr(out, "worst ") + 6, NULL), 1e-9);
	ck_assert_int_eq(sh("grep -c '^weak,1,' s.csv && grep -c '^strong,2,' s.csv"), 0);
	st = sh("$MB report s.json");
	ck_assert_msg(st == 0 && strstr(out, "(strong vs 1)") && strstr(out, "(weak vs 1)"), "%s",
		      out);
}
END_TEST

START_TEST(kept_results_are_not_overwritten)
{
	ck_assert_int_eq(sh("mkdir -p scale_results && echo keep > scale_results/step_weak_n2.json"),
			 0);
	expect_error(SCALE " --mode weak --out s.json", "step_weak_n2.json exists");
	ck_assert_int_eq(sh("cat scale_results/step_weak_n2.json"), 0);
	ck_assert_str_eq(out, "keep\n");
	ck_assert_int_eq(sh("test -e s.json || test -e scale_results/step_weak_n1.json"), 1);
}
END_TEST

START_TEST(bad_sweeps_are_refused_before_any_launch)
{
	expect_error(BASE " --ranks 1,3 --mode strong --out s.json", "3 ranks do not divide");
	expect_error(SCALE " --launcher 'mpirun -np 2' --out s.json", "no {n}");
	expect_error(BASE " --ranks 2,1 --out s.json", "--ranks 2,1");
	ck_assert_int_eq(sh("test -e s.json || test -e scale_results"), 1);
}
END_TEST

static Suite *scale_suite(void)
{
	Suite *s = suite_create("cli_scale_mpi");
	TCase *sweep = tcase_create("sweep");
	TCase *refuse = tcase_create("refuse");
	tcase_add_checked_fixture(sweep, cli_setup, cli_teardown);
	tcase_add_checked_fixture(refuse, cli_setup, cli_teardown);
	tcase_set_timeout(sweep, 300);
	tcase_add_test(sweep, weak_and_strong_sweep_over_1_and_2_ranks);
	tcase_add_test(refuse, kept_results_are_not_overwritten);
	tcase_add_test(refuse, bad_sweeps_are_refused_before_any_launch);
	suite_add_tcase(s, sweep);
	suite_add_tcase(s, refuse);
	return s;
}

MB_CHECK_MAIN(scale_suite)
