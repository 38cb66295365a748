/*
 * test_cli_ep_overlap_mpi.c - `moebench train --ep 2 --ep-overlap` under mpirun
 * --oversubscribe: the forward of one micro-batch beside the backward of the previous
 * one (DualPipe's F&B), EP dispatch/combine posted non-blocking and waited for after
 * the other chunk computed.
 * equal: v3-tiny, 3 steps, 2 micro-batches per rank: the overlapped run does the plain
 * run's arithmetic in the same order, so every per-step loss is the same double and the
 * --save files are the same bytes; and it hid EP time (ep_hidden_s > 0, operations
 * overlapped, every step's hidden time in the curve).
 * step: `step --ep 2 --micro-batch 1 --ep-overlap`'s own check (the FP64 model on each
 * micro-batch with its selection) passes with the split's ep_comm_hidden above 0, and
 * fails with a planted gradient error.
 * refuse: --ep-overlap without EP or with one micro-batch per rank is one
 * error, exit 2, before any work. Built only with MPI.
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
	"--val-batches 1 --batch 4 --ep 2 --micro-batch 1"
/* the curves of two runs: steps whose losses are not the same doubles, and the steps
 * of the second with hidden EP time; then the second's hidden seconds and operations */
#define PY_SAME "python3 -c 'import json,sys; d=[json.load(open(f)) for f in sys.argv[1:]]; " \
	"c=[x[\"summary\"][\"train\"][\"curve\"] for x in d]; k=[\"loss\",\"mtp_loss\",\"val_loss\"]; " \
	"n=sum(a[x]!=b[x] for a,b in zip(*c) for x in k); " \
	"h=sum(p.get(\"ep_hidden_ms\",0)>0 for p in c[1]); m=d[1][\"records\"][0][\"metrics\"]; " \
	"print(\"differ %%d of %%d hidden_steps %%d hidden_s %%.6f ops %%d\" %% (n, 3*len(c[0]), h, " \
	"m[\"ep_hidden_s\"], m[\"ep_overlapped_ops\"]))'"

/* figure returns the number after key in the last output (NAN when absent). */
static double figure(const char *key)
{
	const char *p = strstr(out, key);
	return p ? strtod(p + strlen(key), NULL) : 0.0 / 0.0;
}

START_TEST(overlap_equals_the_plain_run_and_hides_ep_time)
{
	int st = sh("%s -np 2 $MB train " RUN " --out a.json --save a.safetensors", MPIRUN);
	ck_assert_msg(st == 0, "plain run exited %d: %s", st, out);
	st = sh("%s -np 2 $MB train " RUN " --ep-overlap --out b.json --save b.safetensors",
		MPIRUN);
	ck_assert_msg(st == 0, "overlapped run exited %d: %s", st, out);
	ck_assert_msg(strstr(out, "hidden under the other chunk's compute"), "%s", out);
	ck_assert_int_eq(sh("cmp a.safetensors b.safetensors"), 0);
	ck_assert_int_eq(sh(PY_SAME " a.json b.json"), 0);
	ck_assert_msg(strstr(out, "differ 0 of 12 "), "%s", out);
	ck_assert_msg(strstr(out, "hidden_steps 3 "), "%s", out);
	ck_assert_msg(figure("hidden_s ") > 0 && figure(" ops ") >= 12, "%s", out);
}
END_TEST

#define STEP "--quiet --iters 1 --warmup 0 --min-time 0 --batch 4 --seq 32 --ep 2 " \
	"--micro-batch 1 --ep-overlap"
#define PY_CHECK "python3 -c 'import json; r=json.load(open(\"s.json\"))[\"records\"][0]; " \
	"print(\"check\", r[\"check\"][\"status\"], \"hidden\", " \
	"r[\"split\"][\"split_s\"][\"ep_comm_hidden\"] > 0)'"

START_TEST(step_check_passes_with_overlap)
{
	int st = sh("%s -np 2 $MB step " STEP " --out s.json", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_CHECK), 0);
	ck_assert_msg(strstr(out, "check pass hidden True"), "%s", out);
	st = sh("%s -np 2 $MB step " STEP " --plant-error --out p.json", MPIRUN);
	ck_assert_msg(st == 1 && strstr(out, "check FAILED"), "exited %d: %s", st, out);
}
END_TEST

START_TEST(overlap_outside_ep_micro_batches_is_refused)
{
	expect_error(MPIRUN " -np 2 $MB train --quiet --data synthetic --steps 1 --batch 4 "
		     "--micro-batch 1 --ep-overlap --out r.json", "--ep-overlap overlaps EP");
	expect_error(MPIRUN " -np 2 $MB train --quiet --data synthetic --steps 1 --batch 4 "
		     "--ep 2 --micro-batch 2 --ep-overlap --out r.json",
		     "this rank has 1 micro-batch");
	ck_assert_int_eq(sh("test -e r.json"), 1);
}
END_TEST

static Suite *overlap_suite(void)
{
	Suite *s = suite_create("cli_ep_overlap_mpi");
	TCase *eq = tcase_create("equal");
	TCase *refuse = tcase_create("refuse");
	TCase *all[] = { eq, refuse };
	for (int i = 0; i < 2; i++) {
		tcase_add_checked_fixture(all[i], cli_setup, cli_teardown);
		tcase_set_timeout(all[i], 300);
	}
	tcase_add_test(eq, overlap_equals_the_plain_run_and_hides_ep_time);
	tcase_add_test(eq, step_check_passes_with_overlap);
	tcase_add_test(refuse, overlap_outside_ep_micro_batches_is_refused);
	suite_add_tcase(s, eq);
	suite_add_tcase(s, refuse);
	return s;
}

MB_CHECK_MAIN(overlap_suite)
