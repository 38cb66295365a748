/*
 * test_cli_dp_mpi.c - data parallelism of `moebench train` under mpirun --oversubscribe
 * -np 2, as a user runs it. equal: dp2 (all-reduce), dp2 with ZeRO-1 and dp2 with
 * gradient accumulation over micro-batches train v3-tiny for 3 steps to the per-step
 * losses (and validation losses) of one rank within 1e-5 relative, and to its final
 * weights (--save, compared by st_compare.py) within 1e-5 per tensor in relative L2 norm
 * with no element off by more than 2 * sum of the step learning rates (AdamW divides each
 * gradient by its own RMS, so an element whose gradient is of rounding size may move by
 * up to about lr per step whatever the summation order). The bounds are those of FP32
 * sums taken in another order: the runs measured 1.4e-6 (norm) and 1.5e-6 (element).
 * Each run's per-step load_hash (tokens per expert) must agree with one rank's: the
 * comparison holds while both routed alike (scripts/dp-equal.sh runs the longer matrix
 * and says where a rounding-level top-k tie parts the runs).
 * step: `step`'s own check (the reduced first-step gradients against the FP64 model's,
 * averaged over the ranks) passes under dp2 and dp2 with ZeRO-1, and fails with a planted
 * gradient error (exit 1); ZeRO-1 on 2 ranks holds 4 bytes per parameter less (half of
 * the two FP32 moments).
 * refuse: layouts that do not divide the world or the batch, and a kept --save, are one
 * error (from rank 0), exit 2, before any work, no file. Built only with MPI.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"

#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " \
	"OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe"
#define BASE "--quiet --preset v3-tiny --data synthetic --steps 3 --seq 32 --val-every 3 " \
	"--val-batches 1"
#define RUN BASE " --batch 4"
/* the learning rates of steps 1..3: warm-up of 20 steps to 3e-3 */
#define LR_SUM (3e-3 * (1 + 2 + 3) / 20.0)
/* losses of every step of two result files: the largest relative difference */
#define PY_LOSS "python3 -c 'import json,sys; c=[json.load(open(f))[\"summary\"][\"train\"]" \
	"[\"curve\"] for f in sys.argv[1:]]; k=[\"loss\",\"mtp_loss\",\"val_loss\"]; " \
	"d=[abs(a[x]-b[x])/abs(a[x]) for a,b in zip(*c) for x in k if a[x] is not None]; " \
	"f=sum(a[\"load_hash\"]!=b[\"load_hash\"] for a,b in zip(*c)); " \
	"print(\"lossrel %%.3e n %%d flips %%d\" %% (max(d), len(d), f))'"

/* figure returns the number after key in the last output (NAN when absent). */
static double figure(const char *key)
{
	const char *p = strstr(out, key);
	return p ? strtod(p + strlen(key), NULL) : 0.0 / 0.0;
}

/* expect_equal trains with extra options on np ranks and compares against one.json /
 * one.safetensors (the single-rank run made first). */
static void expect_equal(int np, const char *extra)
{
	int st = sh("%s -np %d $MB train " RUN " %s --out dp.json --save dp.safetensors", MPIRUN,
		    np, extra);
	ck_assert_msg(st == 0, "dp run exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_LOSS " one.json dp.json"), 0);
	double lossrel = figure("lossrel ");
	ck_assert_msg(lossrel <= 1e-5 && figure(" n ") == 8, "%s: %s", extra, out);
	/* the same experts chosen every step (a tie decided by rounding would part the
	 * runs legitimately: then this configuration is no longer a test of equality) */
	ck_assert_msg(strstr(out, "flips 0"), "%s: %s", extra, out);
	ck_assert_int_eq(sh("python3 $SRC/tests/st_compare.py one.safetensors dp.safetensors"), 0);
	ck_assert_msg(figure("normrel ") <= 1e-5, "%s: %s", extra, out);
	ck_assert_msg(figure("maxabs ") <= 2 * LR_SUM, "%s: %s", extra, out);
	ck_assert_int_eq(sh("python3 -c 'import json; p=json.load(open(\"dp.json\"))[\"records\"][0]"
			    "[\"params\"]; print(\"dp\", p[\"dp\"], \"zero1\", p[\"zero1\"])'"), 0);
	ck_assert_msg(strstr(out, "dp 2 zero1"), "%s", out);
}

/* one_rank makes the reference run. */
static void one_rank(void)
{
	int st = sh("$MB train " RUN " --out one.json --save one.safetensors");
	ck_assert_msg(st == 0, "single-rank run exited %d: %s", st, out);
}

START_TEST(dp2_allreduce_equals_one_rank)
{
	one_rank();
	expect_equal(2, "");
}
END_TEST

START_TEST(dp2_zero1_equals_one_rank)
{
	one_rank();
	expect_equal(2, "--zero1");
	ck_assert_int_eq(sh("python3 -c 'import json; print(json.load(open(\"dp.json\"))"
			    "[\"records\"][0][\"params\"][\"zero1\"])'"), 0);
	ck_assert_msg(strstr(out, "True"), "%s", out);
}
END_TEST

START_TEST(dp2_micro_batches_equal_one_rank)
{
	one_rank();
	expect_equal(2, "--zero1 --micro-batch 1");
}
END_TEST

#define STEP "--quiet --iters 2 --warmup 0 --min-time 0 --batch 4 --seq 32"
/* the check column of the step's record */
#define PY_CHECK "python3 -c 'import json; r=json.load(open(\"s.json\"))[\"records\"][0]; " \
	"print(\"check\", r[\"check\"][\"status\"], \"dp\", r[\"params\"][\"dp\"])'"

START_TEST(step_check_passes_under_dp2)
{
	int st = sh("%s -np 2 $MB step " STEP " --out s.json", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_CHECK), 0);
	ck_assert_msg(strstr(out, "check pass dp 2"), "%s", out);
	ck_assert_int_eq(sh("cp s.json a.json"), 0);
	st = sh("%s -np 2 $MB step " STEP " --zero1 --out s.json --force", MPIRUN);
	ck_assert_msg(st == 0, "zero1 exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_CHECK), 0);
	ck_assert_msg(strstr(out, "check pass dp 2"), "%s", out);
	/* ZeRO-1 keeps the moments of half the parameters: 2 x 4 bytes x P / 2 fewer */
	ck_assert_int_eq(sh("python3 -c 'import json; f=lambda n: json.load(open(n))[\"records\"][0]; "
			    "a, z = f(\"a.json\"), f(\"s.json\"); P=a[\"params\"][\"params\"]; "
			    "print(\"saved\", (a[\"metrics\"][\"model_bytes\"] - "
			    "z[\"metrics\"][\"model_bytes\"]) / (4.0 * P))'"), 0);
	ck_assert_msg(strstr(out, "saved 1.0"), "%s", out);
	/* the split by cause: both ranks, the DP term measured, compute terms present */
	ck_assert_int_eq(sh("python3 -c 'import json; s=json.load(open(\"s.json\"))[\"records\"][0]"
			    "[\"split\"]; r=s[\"by_rank\"]; assert len(r) == 2, r; "
			    "assert all(x[\"dp_comm\"] > 0 and x[\"expert_gemm\"] > 0 and "
			    "x[\"tp_comm_total\"] == 0 for x in r), r; "
			    "assert s[\"split_s\"] == r[s[\"slowest_rank\"]]'"), 0);
}
END_TEST

START_TEST(step_check_catches_a_planted_error_under_dp2)
{
	int st = sh("%s -np 2 $MB step " STEP " --zero1 --plant-error --out s.json", MPIRUN);
	ck_assert_msg(st == 1, "exited %d: %s", st, out);
	ck_assert_msg(strstr(out, "check FAILED"), "%s", out);
}
END_TEST

START_TEST(dp_not_dividing_the_world_is_refused)
{
	expect_error(MPIRUN " -np 2 $MB train " RUN " --dp 3 --out r.json",
		     "the data-parallel size is 2");
	ck_assert_int_eq(sh("test -e r.json"), 1);
	expect_error(MPIRUN " -np 2 $MB step " STEP " --dp 3 --out r.json",
		     "the data-parallel size is 2");
	ck_assert_int_eq(sh("test -e r.json"), 1);
}
END_TEST

/* Layouts the model or the world cannot take are refused before any work. */
START_TEST(bad_layouts_are_refused_before_any_work)
{
	expect_error(MPIRUN " -np 2 $MB train " RUN " --pp 5 --out r.json",
		     "--pp 5 is more stages than the 4 layers");
	expect_error(MPIRUN " -np 2 $MB step " STEP " --ep 3 --out r.json",
		     "--ep 3 does not divide the 8 routed experts");
	expect_error(MPIRUN " -np 2 $MB train " RUN " --tp 4 --out r.json",
		     "--tp 4 x --pp 1 does not divide the world of 2 ranks");
	ck_assert_int_eq(sh("test -e r.json"), 1);
}
END_TEST

START_TEST(dp_not_dividing_the_batch_is_refused)
{
	expect_error(MPIRUN " -np 2 $MB train " BASE " --batch 3 --out r.json",
		     "does not divide --batch 3");
	ck_assert_int_eq(sh("test -e r.json"), 1);
	expect_error(MPIRUN " -np 2 $MB train " RUN " --micro-batch 3 --out r.json",
		     "--micro-batch 3 does not divide");
	ck_assert_int_eq(sh("test -e r.json"), 1);
}
END_TEST

START_TEST(a_kept_save_is_refused_once_before_training)
{
	ck_assert_int_eq(sh("echo keep > m.safetensors"), 0);
	expect_error(MPIRUN " -np 2 $MB train " RUN " --save m.safetensors --out r.json",
		     "--save: m.safetensors exists");
	ck_assert_int_eq(sh("test -e r.json"), 1);
	ck_assert_int_eq(sh("cat m.safetensors"), 0);
	ck_assert_str_eq(out, "keep\n");
}
END_TEST

static Suite *dp_suite(void)
{
	Suite *s = suite_create("cli_dp_mpi");
	TCase *eq = tcase_create("equal");
	TCase *step = tcase_create("step");
	TCase *refuse = tcase_create("refuse");
	tcase_add_checked_fixture(step, cli_setup, cli_teardown);
	tcase_set_timeout(step, 300);
	tcase_add_checked_fixture(eq, cli_setup, cli_teardown);
	tcase_add_checked_fixture(refuse, cli_setup, cli_teardown);
	tcase_set_timeout(eq, 300);
	tcase_add_test(eq, dp2_allreduce_equals_one_rank);
	tcase_add_test(eq, dp2_zero1_equals_one_rank);
	tcase_add_test(eq, dp2_micro_batches_equal_one_rank);
	tcase_add_test(step, step_check_passes_under_dp2);
	tcase_add_test(step, step_check_catches_a_planted_error_under_dp2);
	tcase_add_test(refuse, dp_not_dividing_the_world_is_refused);
	tcase_add_test(refuse, bad_layouts_are_refused_before_any_work);
	tcase_add_test(refuse, dp_not_dividing_the_batch_is_refused);
	tcase_add_test(refuse, a_kept_save_is_refused_once_before_training);
	suite_add_tcase(s, eq);
	suite_add_tcase(s, step);
	suite_add_tcase(s, refuse);
	return s;
}

MB_CHECK_MAIN(dp_suite)
