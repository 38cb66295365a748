/*
 * test_cli_scale_mpi.c - `moebench scale` as a user runs it, each size launched through
 * mpirun --oversubscribe. sweep: a tiny weak and strong sweep over 1 and 2 ranks writes
 * one scale record per point (params gpus, mode, preset, precision, seq, vocab; metrics
 * tokens_per_s) whose efficiencies follow the formulas from the kept step results
 * (weak: tokens/s per rank at N over N0; strong: T(N0) N0 / (T(N) N)), each step's
 * check passed, the table names cores per rank and Frontier's figures, `moebench report`
 * reads the document, and the kept files are not overwritten without --force. layouts:
 * an EP sweep whose weak series grows the routed experts with the ranks (--grow experts,
 * 4 per rank) runs each size with the grid and model it names (the kept model JSON, EP
 * over every rank, the per-rank weights fixed while the router's FLOPs grow) and its
 * efficiencies follow the formulas (weak in model FLOP/s per rank). refuse: a strong
 * batch a size does not divide, a launcher without {n}, a layout a size cannot take (EP
 * 3 over 8 experts, PP 8 over 4 layers, a fixed size of the swept dimension) are one
 * error, exit 2, before any launch. Built only with MPI.
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

/* checks every point of an EP sweep with grown experts against its kept files */
#define PY_LAYOUT "python3 -c 'import json\n" \
	"d=json.load(open(\"l.json\"))[\"records\"]\n" \
	"def step(f): return json.load(open(f))[\"records\"][0][\"metrics\"]\n" \
	"worst=0\n" \
	"for r in d:\n" \
	"  p=r[\"params\"]; n=p[\"gpus\"]; s=step(p[\"step_result\"])\n" \
	"  b=step(\"scale_results/step_%%s_n1.json\" %% p[\"series\"])\n" \
	"  e=(s[\"tokens_per_s\"]*s[\"model_flops_per_token\"]/n)/(b[\"tokens_per_s\"]*" \
	"b[\"model_flops_per_token\"]) if p[\"mode\"]==\"weak\" else " \
	"b[\"time_s\"][\"median\"]/(s[\"time_s\"][\"median\"]*n)\n" \
	"  worst=max(worst,abs(e-r[\"metrics\"][\"scaling_efficiency\"]))\n" \
	"  grown=p[\"series\"]==\"weak-ep+experts\"\n" \
	"  assert p[\"series\"] in (\"weak-ep+experts\",\"strong-ep\"), p\n" \
	"  assert r[\"check\"][\"status\"]==\"pass\" and p[\"ep\"]==n and p[\"dp\"]==n, p\n" \
	"  assert p[\"tp\"]==1 and p[\"pp\"]==1 and p[\"routed_experts\"]==(4*n if grown else 8), p\n" \
	"  if grown: assert json.load(open(p[\"model\"]))[\"routed_experts\"]==4*n\n" \
	"  assert r[\"model_config\"][\"routed_experts\"]==p[\"routed_experts\"], r\n" \
	"  if grown and n==2: assert s[\"model_flops_per_token\"]>b[\"model_flops_per_token\"] and " \
	"abs(s[\"mem_weights_bytes\"]/b[\"mem_weights_bytes\"]-1)<0.01, (s, b)\n" \
	"print(\"records\", len(d), \"worst\", worst)'"

START_TEST(ep_sweep_with_grown_experts)
{
	int st = sh(SCALE " --layout ep --grow experts --experts-per-rank 4 --out l.json "
		    "--csv l.csv");
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_msg(strstr(out, "cores/rank") && strstr(out, "weak-ep+experts") &&
		      strstr(out, "strong-ep"), "%s", out);
	ck_assert_int_eq(sh("ls scale_results | tr '\\n' ' '"), 0);
	ck_assert_str_eq(out, "model_weak-ep+experts_n1.json model_weak-ep+experts_n2.json "
			 "step_strong-ep_n1.json step_strong-ep_n2.json "
			 "step_weak-ep+experts_n1.json step_weak-ep+experts_n2.json ");
	st = sh(PY_LAYOUT);
	ck_assert_msg(st == 0, "%s", out);
	ck_assert_msg(strstr(out, "records 4 worst "), "%s", out);
	ck_assert_double_le(strtod(strstr(out, "worst ") + 6, NULL), 1e-9);
	ck_assert_int_eq(sh("grep -c ',ep,experts,1,1,2,2,4,8,weak-ep+experts$' l.csv && "
			    "grep -c ',ep,none,1,1,2,2,4,8,strong-ep$' l.csv"), 0);
	st = sh("$MB report l.json");
	ck_assert_msg(st == 0 && strstr(out, "(weak-ep+experts vs 1)") &&
		      strstr(out, "(strong-ep vs 1)"), "%s", out);
	/* each point counted as the model it measured (the grown experts), not the preset */
	ck_assert_msg(strstr(out, "(same)") && !strstr(out, "DIFFERS"), "%s", out);
}
END_TEST

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
	expect_error(BASE " --ranks 1,2,3 --layout dp,ep --out s.json",
		     "--ep 3 does not divide the 8 routed experts");
	ck_assert_msg(strstr(out, "refuses weak-ep at 3 ranks") && strstr(out, "nothing launched"),
		      "%s", out);
	expect_error(BASE " --ranks 1,2,8 --layout pp --mode weak --out s.json",
		     "--pp 8 is more stages than the 4 layers");
	expect_error(SCALE " --layout ep --ep 2 --out s.json", "--layout ep with a fixed --ep");
	expect_error(SCALE " --grow layers --layout dp --out s.json", "--layout dp has no pp");
	ck_assert_int_eq(sh("test -e s.json || test -e scale_results"), 1);
}
END_TEST

static Suite *scale_suite(void)
{
	Suite *s = suite_create("cli_scale_mpi");
	TCase *sweep = tcase_create("sweep");
	TCase *refuse = tcase_create("refuse");
	TCase *layouts = tcase_create("layouts");
	tcase_add_checked_fixture(sweep, cli_setup, cli_teardown);
	tcase_add_checked_fixture(layouts, cli_setup, cli_teardown);
	tcase_set_timeout(layouts, 300);
	tcase_add_test(layouts, ep_sweep_with_grown_experts);
	tcase_add_checked_fixture(refuse, cli_setup, cli_teardown);
	tcase_set_timeout(sweep, 300);
	tcase_add_test(sweep, weak_and_strong_sweep_over_1_and_2_ranks);
	tcase_add_test(refuse, kept_results_are_not_overwritten);
	tcase_add_test(refuse, bad_sweeps_are_refused_before_any_launch);
	suite_add_tcase(s, sweep);
	suite_add_tcase(s, layouts);
	suite_add_tcase(s, refuse);
	return s;
}

MB_CHECK_MAIN(scale_suite)
