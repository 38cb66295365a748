/*
 * test_cli_ep_mpi.c - expert parallelism of `moebench train` and `step` under mpirun
 * --oversubscribe, as a user runs it.
 * equal: ep2 (experts 0-3 on rank 0, 4-7 on rank 1, each rank's tokens dispatched to
 * them and combined back) and ep4 over two "nodes" (--ranks-per-node 2: the two-hop,
 * node-limited path) train v3-tiny for 3 steps to the per-step losses (and validation
 * losses) of one rank within 1e-5 relative and to its final weights (--save: every
 * rank's experts gathered to rank 0; st_compare.py) within 1e-5 per tensor in relative
 * L2 norm, no element off by more than 2 * sum of the step learning rates, as
 * test_cli_dp_mpi bounds DP (FP32 sums in another order; ep2 measured 1.0e-6), with the
 * same experts chosen every step (load_hash); the step's EP time is in the curve.
 * step: `step`'s own check (the FP64 model through the same dispatch and combine, in
 * FP64 rows) passes under ep2 with ZeRO-1 and fails with a planted gradient error.
 * refuse: --ranks-per-node not dividing --ep, --etp > 1 without TP, and EP x ETP not
 * dividing a stage's ranks are one error, exit 2, before any work. Built only with MPI.
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
#define RUN "--quiet --preset v3-tiny --data synthetic --steps 3 --seq 32 --val-every 3 " \
	"--val-batches 1 --batch 4"
/* the learning rates of steps 1..3: warm-up of 20 steps to 3e-3 */
#define LR_SUM (3e-3 * (1 + 2 + 3) / 20.0)
/* losses of every step of two result files: the largest relative difference, the
 * steps routed differently, and whether the second run recorded EP time every step */
#define PY_LOSS "python3 -c 'import json,sys; c=[json.load(open(f))[\"summary\"][\"train\"]" \
	"[\"curve\"] for f in sys.argv[1:]]; k=[\"loss\",\"mtp_loss\",\"val_loss\"]; " \
	"d=[abs(a[x]-b[x])/abs(a[x]) for a,b in zip(*c) for x in k if a[x] is not None]; " \
	"f=sum(a[\"load_hash\"]!=b[\"load_hash\"] for a,b in zip(*c)); " \
	"e=sum(p.get(\"ep_ms\",0)>0 for p in c[1]); " \
	"print(\"lossrel %%.3e n %%d flips %%d eptimed %%d\" %% (max(d), len(d), f, e))'"

/* figure returns the number after key in the last output (NAN when absent). */
static double figure(const char *key)
{
	const char *p = strstr(out, key);
	return p ? strtod(p + strlen(key), NULL) : 0.0 / 0.0;
}

/* expect_equal trains with extra options on np ranks and compares against one rank. */
static void expect_equal(int np, const char *extra)
{
	int st = sh("$MB train " RUN " --out one.json --save one.safetensors");
	ck_assert_msg(st == 0, "single-rank run exited %d: %s", st, out);
	st = sh("%s -np %d $MB train " RUN " %s --out ep.json --save ep.safetensors", MPIRUN, np,
		extra);
	ck_assert_msg(st == 0, "ep run exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_LOSS " one.json ep.json"), 0);
	ck_assert_msg(figure("lossrel ") <= 1e-5 && figure(" n ") == 8, "%s: %s", extra, out);
	ck_assert_msg(strstr(out, "flips 0"), "%s: %s", extra, out);
	ck_assert_msg(strstr(out, "eptimed 3"), "%s: %s", extra, out);
	ck_assert_int_eq(sh("python3 $SRC/tests/st_compare.py one.safetensors ep.safetensors"), 0);
	ck_assert_msg(figure("normrel ") <= 1e-5, "%s: %s", extra, out);
	ck_assert_msg(figure("maxabs ") <= 2 * LR_SUM, "%s: %s", extra, out);
	ck_assert_int_eq(sh("python3 -c 'import json; r=json.load(open(\"ep.json\"))[\"records\"][0]; "
			    "print(\"ep\", r[\"params\"][\"ep\"], \"exposed\", "
			    "r[\"metrics\"][\"ep_exposed_s\"] > 0)'"), 0);
	ck_assert_msg(strstr(out, "exposed True"), "%s", out);
}

START_TEST(ep2_equals_one_rank)
{
	expect_equal(2, "--ep 2");
	ck_assert_msg(strstr(out, "ep 2 "), "%s", out);
}
END_TEST

START_TEST(ep4_two_nodes_equals_one_rank)
{
	expect_equal(4, "--ep 4 --ranks-per-node 2");
	ck_assert_msg(strstr(out, "ep 4 "), "%s", out);
}
END_TEST

#define STEP "--quiet --iters 1 --warmup 0 --min-time 0 --batch 2 --seq 32"
#define PY_CHECK "python3 -c 'import json; r=json.load(open(\"s.json\"))[\"records\"][0]; " \
	"print(\"check\", r[\"check\"][\"status\"], \"ep\", r[\"params\"][\"ep\"])'"

START_TEST(step_check_passes_under_ep2)
{
	int st = sh("%s -np 2 $MB step " STEP " --ep 2 --zero1 --out s.json", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_CHECK), 0);
	ck_assert_msg(strstr(out, "check pass ep 2"), "%s", out);
}
END_TEST

START_TEST(step_check_catches_a_planted_error_under_ep2)
{
	int st = sh("%s -np 2 $MB step " STEP " --ep 2 --plant-error --out s.json", MPIRUN);
	ck_assert_msg(st == 1, "exited %d: %s", st, out);
	ck_assert_msg(strstr(out, "check FAILED"), "%s", out);
}
END_TEST

START_TEST(bad_ep_layouts_are_refused_before_any_work)
{
	expect_error(MPIRUN " -np 2 $MB train " RUN " --ep 2 --ranks-per-node 3 --out r.json",
		     "--ranks-per-node 3 does not divide --ep 2");
	expect_error(MPIRUN " -np 2 $MB step " STEP " --etp 2 --out r.json",
		     "--etp 2 with --tp 1: experts split over other than the TP ranks");
	expect_error(MPIRUN " -np 4 $MB step " STEP " --tp 2 --etp 2 --ep 4 --out r.json",
		     "--ep 4 x --etp 2 does not divide the 4 ranks of a stage");
	ck_assert_int_eq(sh("test -e r.json"), 1);
}
END_TEST

static Suite *ep_suite(void)
{
	Suite *s = suite_create("cli_ep_mpi");
	TCase *eq = tcase_create("equal");
	TCase *step = tcase_create("step");
	TCase *refuse = tcase_create("refuse");
	TCase *all[] = { eq, step, refuse };
	for (int i = 0; i < 3; i++) {
		tcase_add_checked_fixture(all[i], cli_setup, cli_teardown);
		tcase_set_timeout(all[i], 300);
	}
	tcase_add_test(eq, ep2_equals_one_rank);
	tcase_add_test(eq, ep4_two_nodes_equals_one_rank);
	tcase_add_test(step, step_check_passes_under_ep2);
	tcase_add_test(step, step_check_catches_a_planted_error_under_ep2);
	tcase_add_test(refuse, bad_ep_layouts_are_refused_before_any_work);
	suite_add_tcase(s, eq);
	suite_add_tcase(s, step);
	suite_add_tcase(s, refuse);
	return s;
}

MB_CHECK_MAIN(ep_suite)
