/*
 * test_cli_pp_mpi.c - pipeline parallelism of `moebench train` under mpirun
 * --oversubscribe, as a user runs it.
 * equal: pp2 with 1f1b and with DualPipe (two copies of the stages, gradients summed
 * over the device pair; bidirectional micro-batches, overlapped F&B pairs) trains
 * v3-tiny for 3 steps on 4 micro-batches to the per-step losses (and validation losses)
 * of one rank with the same micro-batch within 1e-5 relative, and to its final weights
 * (--save gathers the stages into the whole model; st_compare.py) within 1e-5 per tensor
 * in relative L2 norm, no element off by more than 2 * sum of the step learning rates;
 * the routing the same every step (load_hash). The bounds are FP32 sums in another order
 * (the runs measured 1.4e-9 on the losses, 1.1e-6 on the embedding, whose two copies'
 * gradients are summed over the first and last stage).
 * bubble: the result holds each rank's measured idle time and the simulator's, both
 * positive (a 2-stage pipeline of 4 micro-batches idles), and the summary line.
 * step: `step --pp 2 --schedule zb-h1`'s own check (the reduced first-step gradients of
 * each stage against the FP64 model run stage by stage) passes, and its split by cause
 * holds each rank's bubble beside the simulated one.
 * refuse: DualPipe with an odd number of stages, chunks that do not divide the layers
 * (interleaved, DualPipeV's V), a micro-batch count the schedule cannot run, an unknown
 * schedule: one error, exit 2, no file. scripts/par-equal-pp.sh runs every schedule.
 * Built only with MPI.
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
#define RUN BASE " --batch 8 --micro-batch 2"
/* the learning rates of steps 1..3: warm-up of 20 steps to 3e-3 */
#define LR_SUM (3e-3 * (1 + 2 + 3) / 20.0)
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

/* expect_equal trains pp2 with extra options and compares against one rank's run. */
static void expect_equal(const char *extra)
{
	int st = sh("$MB train " RUN " --out one.json --save one.safetensors");
	ck_assert_msg(st == 0, "single-rank run exited %d: %s", st, out);
	st = sh("%s -np 2 $MB train " RUN " --pp 2 %s --out pp.json --save pp.safetensors",
		MPIRUN, extra);
	ck_assert_msg(st == 0, "pp run exited %d: %s", st, out);
	ck_assert_msg(strstr(out, "pipeline: "), "no pipeline line: %s", out);
	ck_assert_int_eq(sh(PY_LOSS " one.json pp.json"), 0);
	ck_assert_msg(figure("lossrel ") <= 1e-5 && figure(" n ") == 8, "%s: %s", extra, out);
	ck_assert_msg(strstr(out, "flips 0"), "%s: %s", extra, out);
	ck_assert_int_eq(sh("python3 $SRC/tests/st_compare.py one.safetensors pp.safetensors"), 0);
	ck_assert_msg(figure("normrel ") <= 1e-5, "%s: %s", extra, out);
	ck_assert_msg(figure("maxabs ") <= 2 * LR_SUM, "%s: %s", extra, out);
}

START_TEST(pp2_1f1b_equals_one_rank)
{
	expect_equal("--schedule 1f1b");
	/* the bubble, per rank and simulated, in the record */
	ck_assert_int_eq(sh("python3 -c 'import json; r=json.load(open(\"pp.json\"))[\"records\"][0]; "
			    "m=r[\"metrics\"]; p=r[\"params\"]; ok=all(m[k] > 0 for k in (\"pp_bubble_s\", "
			    "\"pp_bubble_sim_s\", \"pp_bubble_s_rank0\", \"pp_bubble_s_rank1\", "
			    "\"pp_bubble_sim_s_rank1\")); print(\"bubble\", ok, p[\"pp\"], p[\"schedule\"], "
			    "p[\"microbatches\"])'"), 0);
	ck_assert_msg(strstr(out, "bubble True 2 1f1b 4"), "%s", out);
}
END_TEST

START_TEST(pp2_dualpipe_equals_one_rank)
{
	expect_equal("--schedule dualpipe");
}
END_TEST

START_TEST(step_check_passes_under_pp2_zb_h1)
{
	int st = sh("%s -np 2 $MB step --quiet --iters 2 --warmup 0 --min-time 0 --batch 4 "
		    "--seq 32 --pp 2 --schedule zb-h1 --out s.json", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_int_eq(sh("python3 -c 'import json; r=json.load(open(\"s.json\"))[\"records\"][0]; "
			    "b=r[\"split\"][\"by_rank\"]; print(\"check\", r[\"check\"][\"status\"], "
			    "\"bubble\", all(x[\"bubble\"] > 0 and x[\"bubble_simulated\"] > 0 for x in b), "
			    "len(b))'"), 0);
	ck_assert_msg(strstr(out, "check pass bubble True 2"), "%s", out);
}
END_TEST

/* expect_refused checks one error line naming what, exit 2, no result file. */
static void expect_refused(int np, const char *extra, const char *what)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s -np %d $MB train " RUN " %s --out r.json", MPIRUN, np, extra);
	expect_error(cmd, what);
	ck_assert_int_eq(sh("test -e r.json"), 1);
}

START_TEST(bad_pipelines_are_refused_before_any_work)
{
	expect_refused(3, "--pp 3 --schedule dualpipe", "it needs an even number");
	expect_refused(2, "--pp 2 --schedule interleaved --chunks 3",
		       "2 stages x 3 chunks do not divide the 4 layers");
	expect_refused(4, "--pp 4 --schedule dualpipev",
		       "4 stages x 2 chunks do not divide the 4 layers");
	expect_error(MPIRUN " -np 2 $MB train " BASE " --batch 4 --pp 2 --schedule interleaved "
		     "--out r.json", "interleaved needs micro-batches a multiple of PP");
	ck_assert_int_eq(sh("test -e r.json"), 1);
	expect_refused(2, "--pp 2 --schedule nope", "unknown schedule");
}
END_TEST

static Suite *pp_suite(void)
{
	Suite *s = suite_create("cli_pp_mpi");
	TCase *eq = tcase_create("equal");
	TCase *refuse = tcase_create("refuse");
	tcase_add_checked_fixture(eq, cli_setup, cli_teardown);
	tcase_add_checked_fixture(refuse, cli_setup, cli_teardown);
	tcase_set_timeout(eq, 300);
	tcase_set_timeout(refuse, 120);
	tcase_add_test(eq, pp2_1f1b_equals_one_rank);
	tcase_add_test(eq, pp2_dualpipe_equals_one_rank);
	tcase_add_test(eq, step_check_passes_under_pp2_zb_h1);
	tcase_add_test(refuse, bad_pipelines_are_refused_before_any_work);
	suite_add_tcase(s, eq);
	suite_add_tcase(s, refuse);
	return s;
}

MB_CHECK_MAIN(pp_suite)
