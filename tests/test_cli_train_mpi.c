/*
 * test_cli_train_mpi.c - `moebench train` under mpirun --oversubscribe: the run's time
 * split by cause and --time-limit on several ranks, as a user runs them.
 * split: the result's record holds `split` with the names of `step`'s split
 * (train_split.h: split_s of the slowest rank, by_rank one object per rank), summed over
 * the run's steps; its summed terms (all but ep_comm_hidden and bubble_simulated) add up
 * to 75-105% of the rank's own step time and of the recorded step times summed: the
 * causes leave out only the step's work outside the model (batch, gradient
 * accumulation; the first step's first touch of the DP buffers, measured ~0.1 s of a
 * 0.57 s first step on this machine), and nothing is counted twice (5% for the
 * pipeline's idle time, measured by the executor's clock beside the model's). On one
 * rank, and on two (pp2: the bubble; ep2: the exposed dispatch/combine).
 * time-limit: pp2 with a 1 s limit and 1000 steps stops cleanly (exit 0) with every
 * rank naming the same step, which is the record's steps_done: the slowest rank's
 * clock decides for all (a rank stopping alone would leave the other waiting in the
 * next step's collectives); a negative limit is refused (exit 2).
 * memory: `step` under pp2 (gpipe), ep2 with ZeRO-1 and tp2 records rank 0's weights,
 * gradients and moments equal to memory.c's prediction for its part (ratio exactly 1)
 * and its activations within 10%.
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
#define BASE "--quiet --preset v3-tiny --data synthetic --seq 32 --batch 4 --val-batches 1"
#define FIVE "--steps 5 --val-every 5 --out r.json --force"
/* prints "ok", the figures, or what is wrong with r.json's split */
#define PY_SPLIT "python3 -c 'import json,sys; n=int(sys.argv[1]); " \
	"r=[r for r in json.load(open(\"r.json\"))[\"records\"] if r[\"benchmark\"]==\"train\"][0]; " \
	"sp=r[\"split\"]; names=[\"attention_block\",\"routing_permute\",\"expert_gemm\"," \
	"\"dense_gemm\",\"loss\",\"optimizer\",\"other\",\"tp_comm_total\",\"ep_comm_exposed\"," \
	"\"ep_comm_hidden\",\"bubble\",\"bubble_simulated\",\"dp_comm\"]; " \
	"assert sorted(sp[\"split_s\"])==sorted(names), sp[\"split_s\"]; " \
	"assert len(sp[\"by_rank\"])==n and len(sp[\"step_s_by_rank\"])==n; " \
	"s=sp[\"split_s\"]; tot=sum(v for k,v in s.items() if k not in (\"ep_comm_hidden\",\"bubble_simulated\")); " \
	"own=sp[\"step_s_by_rank\"][sp[\"slowest_rank\"]]; a=tot/own; b=tot/sp[\"time_s_sum\"]; " \
	"print(\"own %%.3f recorded %%.3f\" %% (a,b)); " \
	"assert 0.75<=a<=1.05 and 0.75<=b<=1.05; " \
	"assert all(s[k]>0 for k in sys.argv[2:]), s; print(\"ok\")'"

/* expect_split runs train with extra options on np ranks and checks its split, whose
 * causes `positive` (space-separated) must be above zero. */
static void expect_split(int np, const char *extra, const char *positive)
{
	int st = np > 1 ? sh("%s -np %d $MB train " BASE " " FIVE " %s", MPIRUN, np, extra)
			: sh("$MB train " BASE " " FIVE " %s", extra);
	ck_assert_msg(st == 0, "%s exited %d: %s", extra, st, out);
	ck_assert_msg(strstr(out, "train: time by cause (slowest rank"), "no split line: %s", out);
	st = sh(PY_SPLIT " %d %s", np, positive);
	ck_assert_msg(st == 0 && strstr(out, "ok"), "%s: %s", extra, out);
}

START_TEST(train_records_its_split_by_cause)
{
	expect_split(1, "", "attention_block expert_gemm optimizer");
	expect_split(2, "--pp 2 --micro-batch 1", "bubble bubble_simulated dp_comm");
	expect_split(2, "--ep 2", "ep_comm_exposed dp_comm");
}
END_TEST

START_TEST(time_limit_stops_every_rank_after_the_same_step)
{
	int st = sh("%s -np 2 $MB train " BASE " --steps 1000 --val-every 1000 --pp 2 "
		    "--micro-batch 1 --time-limit 1 --out r.json", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	long n[2] = { -1, -1 };
	for (int r = 0; r < 2; r++) {
		char key[64];
		snprintf(key, sizeof(key), "rank %d stopped by --time-limit after ", r);
		const char *p = strstr(out, key);
		ck_assert_msg(p, "no line of rank %d: %s", r, out);
		n[r] = strtol(p + strlen(key), NULL, 10);
	}
	ck_assert_msg(n[0] == n[1] && n[0] >= 1 && n[0] < 1000, "ranks stopped after %ld and %ld "
		      "steps", n[0], n[1]);
	st = sh("python3 -c 'import json; r=json.load(open(\"r.json\"))[\"records\"][0]; "
		"print(\"done\", r[\"metrics\"][\"steps_done\"])'");
	ck_assert_msg(st == 0, "%s", out);
	char want[32];
	snprintf(want, sizeof(want), "done %ld", n[0]);
	ck_assert_msg(strstr(out, want), "record: %s, ranks: %ld", out, n[0]);
	/* a negative limit is bad input, refused before any work */
	expect_error("$MB train " BASE " --time-limit -1 --out bad.json", "--time-limit");
	ck_assert_int_eq(sh("test -e bad.json"), 1);
}
END_TEST

/* step's memory on rank 0 of each layout: weights, gradients and moments exactly the
 * prediction for its part, activations within 10% (MLA's extra copies: 6-8%). */
START_TEST(step_predicts_each_ranks_part)
{
	static const char *lay[] = { "--pp 2 --schedule gpipe", "--ep 2 --zero1", "--tp 2 --etp 2" };
	for (int i = 0; i < 3; i++) {
		int st = sh("%s -np 2 $MB step --quiet --iters 1 --warmup 0 --batch 2 --seq 32 %s "
			    "--out s.json --force", MPIRUN, lay[i]);
		ck_assert_msg(st == 0, "%s exited %d: %s", lay[i], st, out);
		st = sh("python3 -c 'import json; m=json.load(open(\"s.json\"))[\"records\"][0]"
			"[\"metrics\"]; r=[m[\"mem_%%s_ratio\" %% t] for t in (\"weights\", "
			"\"grads\", \"optimizer\", \"activations\")]; print(r); "
			"assert r[:3]==[1.0,1.0,1.0] and abs(r[3]-1)<=0.10'");
		ck_assert_msg(st == 0, "%s: %s", lay[i], out);
	}
}
END_TEST

static Suite *train_mpi_suite(void)
{
	Suite *s = suite_create("cli_train_mpi");
	TCase *tc = tcase_create("train");
	tcase_add_checked_fixture(tc, cli_setup, cli_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, train_records_its_split_by_cause);
	tcase_add_test(tc, time_limit_stops_every_rank_after_the_same_step);
	tcase_add_test(tc, step_predicts_each_ranks_part);
	suite_add_tcase(s, tc);
	return s;
}

MB_CHECK_MAIN(train_mpi_suite)
