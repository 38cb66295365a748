/*
 * test_cli_tp_mpi.c - tensor parallelism of `moebench train` and `step` under mpirun
 * --oversubscribe -np 2, as a user runs it.
 * equal: tp2 on v3-tiny (MLA heads, dense and expert SwiGLU widths with --etp 2, the
 * vocabulary-parallel embedding, head and cross-entropy, MTP) and on llama3-tiny (GQA
 * with one kv head: k and v whole on both ranks, their gradients summed) train 3 steps to
 * the per-step losses (and validation losses) of one rank within 1e-5 relative, and to
 * its final weights (--save gathers the whole tensors; st_compare.py) within 1e-5 per
 * tensor in relative L2 norm, no element off by more than 2 * sum of the step learning
 * rates (AdamW, see test_cli_dp_mpi.c). These are FP32 sums taken in another order: the
 * runs measured ~1e-9 (losses) and ~2e-6 (weights). The TP ranks' copies of the
 * replicated tensors are compared at --save: bit-equal (tp_replica_spread 0).
 * --init-from under tp2 cuts the slices out of a whole checkpoint: training on from it
 * equals one rank doing the same.
 * step: `step`'s own FP64 check passes under tp2 (the FP64 model sliced alike; v3-tiny in
 * FP32 and BF16, llama3-tiny) and fails with a planted gradient error (exit 1); the record
 * names tp 2 and its TP time, and the split by cause gives each rank's tp_comm_total.
 * sp: --tp 2 --sp (sequence parallelism: norms and residuals on half the tokens each,
 * reduce-scatter and all-gather for the all-reduces) trains equal to one rank as above
 * (v3-tiny with MoE and MTP, llama3-tiny), and `step --sp` passes its FP64 check.
 * refuse: a TP size not dividing the heads, experts under --tp without --etp equal to
 * it, --sp on tokens per forward not dividing by --tp, and --sp without --tp, are one
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
#define RUN "--quiet --data synthetic --steps 3 --seq 32 --val-every 3 --val-batches 1 " \
	"--batch 4"
/* the learning rates of steps 1..3: warm-up of 20 steps to 3e-3 */
#define LR_SUM (3e-3 * (1 + 2 + 3) / 20.0)
/* losses of every step of two result files: the largest relative difference */
#define PY_LOSS "python3 -c 'import json,sys; c=[json.load(open(f))[\"summary\"][\"train\"]" \
	"[\"curve\"] for f in sys.argv[1:]]; k=[\"loss\",\"mtp_loss\",\"val_loss\"]; " \
	"d=[abs(a[x]-b[x])/abs(a[x]) for a,b in zip(*c) for x in k if a[x]]; " \
	"f=sum(a[\"load_hash\"]!=b[\"load_hash\"] for a,b in zip(*c) if a[\"load_hash\"]); " \
	"print(\"lossrel %%.3e n %%d flips %%d\" %% (max(d), len(d), f))'"

/* figure returns the number after key in the last output (NAN when absent). */
static double figure(const char *key)
{
	const char *p = strstr(out, key);
	return p ? strtod(p + strlen(key), NULL) : 0.0 / 0.0;
}

/* expect_equal trains preset with extra options on one rank, then on two, and compares
 * the losses (n of them finite and nonzero) and the saved weights. */
static void expect_equal(const char *preset, const char *extra, int n)
{
	int st = sh("$MB train " RUN " --preset %s --out one.json --save one.safetensors", preset);
	ck_assert_msg(st == 0, "single-rank run exited %d: %s", st, out);
	st = sh("%s -np 2 $MB train " RUN " --preset %s %s --out tp.json --save tp.safetensors",
		MPIRUN, preset, extra);
	ck_assert_msg(st == 0, "tp run exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_LOSS " one.json tp.json"), 0);
	ck_assert_msg(figure("lossrel ") <= 1e-5 && figure(" n ") == n, "%s: %s", preset, out);
	ck_assert_msg(strstr(out, "flips 0"), "%s: %s", preset, out);
	ck_assert_int_eq(sh("python3 $SRC/tests/st_compare.py one.safetensors tp.safetensors"), 0);
	ck_assert_msg(figure("normrel ") <= 1e-5, "%s: %s", preset, out);
	ck_assert_msg(figure("maxabs ") <= 2 * LR_SUM, "%s: %s", preset, out);
	ck_assert_int_eq(sh("python3 -c 'import json; r=json.load(open(\"tp.json\"))[\"records\"][0]; "
			    "m=r[\"metrics\"]; print(\"tp\", r[\"params\"][\"tp\"], \"tpcomm\", "
			    "m[\"tp_comm_s\"], \"spread\", m[\"tp_replica_spread\"])'"), 0);
	ck_assert_msg(strstr(out, "tp 2 tpcomm") && figure("tpcomm ") > 0, "%s", out);
	/* the replicated tensors (norms, LoRA down-projections, router) stayed equal */
	ck_assert_msg(strstr(out, "spread 0\n"), "%s", out);
}

START_TEST(tp2_v3_tiny_equals_one_rank)
{
	expect_equal("v3-tiny", "--tp 2 --etp 2", 8);
	/* on from the whole checkpoint: the slices cut out of it */
	int st = sh("$MB train " RUN " --preset v3-tiny --seed 7 --init-from one.safetensors "
		    "--out a.json --save a.safetensors");
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	st = sh("%s -np 2 $MB train " RUN " --preset v3-tiny --seed 7 --tp 2 --etp 2 "
		"--init-from one.safetensors --out b.json --save b.safetensors", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_int_eq(sh("python3 $SRC/tests/st_compare.py a.safetensors b.safetensors"), 0);
	ck_assert_msg(figure("normrel ") <= 1e-5, "%s", out);
}
END_TEST

START_TEST(tp2_llama3_tiny_equals_one_rank)
{
	expect_equal("llama3-tiny", "--tp 2", 5);
}
END_TEST

START_TEST(sp2_v3_tiny_equals_one_rank)
{
	expect_equal("v3-tiny", "--tp 2 --etp 2 --sp", 8);
}
END_TEST

START_TEST(sp2_llama3_tiny_equals_one_rank)
{
	expect_equal("llama3-tiny", "--tp 2 --sp", 5);
}
END_TEST

#define STEP "--quiet --iters 2 --warmup 0 --min-time 0 --batch 4 --seq 32 --tp 2 --etp 2"
#define PY_CHECK "python3 -c 'import json; r=json.load(open(\"s.json\"))[\"records\"][0]; " \
	"print(\"check\", r[\"check\"][\"status\"], \"tp\", r[\"params\"][\"tp\"], " \
	"\"tpms\", r[\"metrics\"][\"phase_tp_comm_ms\"], \"ranks\", len(r[\"split\"][\"by_rank\"]), " \
	"\"tpsplit\", min(x[\"tp_comm_total\"] for x in r[\"split\"][\"by_rank\"]))'"

START_TEST(step_check_passes_under_tp2)
{
	int st = sh("%s -np 2 $MB step " STEP " --out s.json", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_CHECK), 0);
	ck_assert_msg(strstr(out, "check pass tp 2") && figure("tpms ") > 0, "%s", out);
	/* the split by cause holds both ranks, each with its TP collectives' time */
	ck_assert_msg(figure("ranks ") == 2 && figure("tpsplit ") > 0, "%s", out);
	/* BF16 against the FP64 model (its own tolerance), and GQA with k/v whole */
	st = sh("%s -np 2 $MB step " STEP " --precision bf16 --out s.json --force", MPIRUN);
	ck_assert_msg(st == 0, "bf16 exited %d: %s", st, out);
	st = sh("%s -np 2 $MB step " STEP " --preset llama3-tiny --out s.json --force", MPIRUN);
	ck_assert_msg(st == 0, "llama3-tiny exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_CHECK), 0);
	ck_assert_msg(strstr(out, "check pass tp 2"), "%s", out);
}
END_TEST

START_TEST(step_check_catches_a_planted_error_under_tp2)
{
	int st = sh("%s -np 2 $MB step " STEP " --plant-error --out s.json", MPIRUN);
	ck_assert_msg(st == 1, "exited %d: %s", st, out);
	ck_assert_msg(strstr(out, "check FAILED"), "%s", out);
}
END_TEST

START_TEST(step_check_under_sp)
{
	int st = sh("%s -np 2 $MB step " STEP " --preset llama3-tiny --sp --out s.json", MPIRUN);
	ck_assert_msg(st == 0, "exited %d: %s", st, out);
	ck_assert_int_eq(sh(PY_CHECK), 0);
	ck_assert_msg(strstr(out, "check pass tp 2"), "%s", out);
	/* NOTE: --plant-error under --sp fails the check too (scripts/par-equal-tp.sh's
	 * note); left out here for the suite's time */
}
END_TEST

START_TEST(bad_tp_layouts_are_refused_before_any_work)
{
	expect_error(MPIRUN " -np 3 $MB train " RUN " --preset v3-tiny --tp 3 --out r.json",
		     "--tp 3 on v3-tiny: the TP size does not divide the attention heads");
	expect_error(MPIRUN " -np 2 $MB train " RUN " --preset v3-tiny --tp 2 --out r.json",
		     "--tp 2 --etp 1: the routed experts are sliced like the dense FFN");
	expect_error(MPIRUN " -np 2 $MB step --quiet --batch 4 --seq 32 --tp 2 --out r.json",
		     "--etp 1");
	expect_error(MPIRUN " -np 2 $MB train --quiet --data synthetic --steps 3 --batch 1 "
		     "--seq 33 --preset llama3-tiny --tp 2 --sp --out r.json",
		     "--sp: 33 tokens per forward (1 x --seq 33) do not split over --tp 2");
	expect_error("$MB train " RUN " --preset llama3-tiny --sp --out r.json",
		     "--sp: sequence parallelism splits the tokens over the TP ranks");
	ck_assert_int_eq(sh("test -e r.json"), 1);
}
END_TEST

static Suite *tp_suite(void)
{
	Suite *s = suite_create("cli_tp_mpi");
	TCase *eq = tcase_create("equal");
	TCase *step = tcase_create("step");
	TCase *refuse = tcase_create("refuse");
	tcase_add_checked_fixture(eq, cli_setup, cli_teardown);
	tcase_add_checked_fixture(step, cli_setup, cli_teardown);
	tcase_add_checked_fixture(refuse, cli_setup, cli_teardown);
	tcase_set_timeout(eq, 300);
	tcase_set_timeout(step, 300);
	tcase_add_test(eq, tp2_v3_tiny_equals_one_rank);
	tcase_add_test(eq, tp2_llama3_tiny_equals_one_rank);
	tcase_add_test(eq, sp2_v3_tiny_equals_one_rank);
	tcase_add_test(eq, sp2_llama3_tiny_equals_one_rank);
	tcase_add_test(step, step_check_passes_under_tp2);
	tcase_add_test(step, step_check_catches_a_planted_error_under_tp2);
	tcase_add_test(step, step_check_under_sp);
	tcase_add_test(refuse, bad_tp_layouts_are_refused_before_any_work);
	suite_add_tcase(s, eq);
	suite_add_tcase(s, step);
	suite_add_tcase(s, refuse);
	return s;
}

MB_CHECK_MAIN(tp_suite)
