/*
 * test_cli_train.c - `moebench train` and `moebench step` as a user meets them: a short
 * run writes its per-step lines, its result with the loss curve and its CSV (rendered by
 * plots/train_loss.gp); a ~15 s run of v3-tiny on the fortunes corpus lowers the
 * validation loss at least 1.5 nats/byte below ln(256) (the loss at initialisation);
 * `step` passes its FP64 check and fails it (exit 1) with a planted error; --save,
 * --init-from (a mismatched checkpoint refused, the tensor named) and --vocab; `step`'s
 * --save, --init-from, --dump-batch (the batch and losses scripts/torch_step.py reads)
 * and --model (a preset with fewer layers); --replicas equal to --micro-batch; bad input
 * exits 2 with one error line and a hint, and writes no file; so does `step --backend
 * cuda` without a CUDA device.
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"

#define QUIET "--backend cpu --quiet"

/* expect_has checks that the last output contains text. */
static void expect_has(const char *text)
{
	ck_assert_msg(strstr(out, text), "output lacks '%s':\n%s", text, out);
}

START_TEST(short_run_writes_lines_result_and_csv)
{
	ck_assert_int_eq(sh("$MB train " QUIET " --data synthetic --steps 3 --batch 1 --seq 32 "
			    "--val-every 2 --out r.json --csv r.csv"), 0);
	expect_has("step     0/3 | val ");
	expect_has("step     1/3 | loss ");
	expect_has("| val ");
	expect_has("load max/mean");
	ck_assert_int_eq(sh("python3 -c 'import json; d=json.load(open(\"r.json\")); "
			    "c=d[\"summary\"][\"train\"][\"curve\"]; r=d[\"records\"][0]; "
			    "print(len(c), r[\"check\"][\"status\"], r[\"params\"][\"vocab\"], "
			    "c[0][\"val_loss\"] is not None, c[2][\"val_loss\"] is not None, "
			    "c[1][\"val_loss\"] is None)'"), 0);
	ck_assert_str_eq(out, "4 pass 256 True True True\n");
	/* a valid result document: compare reads it (against itself: no regression) */
	ck_assert_int_eq(sh("$MB compare r.json r.json"), 0);
	ck_assert_int_eq(sh("grep -c '^#' r.csv; grep -c '^[0-9]' r.csv"), 0);
	ck_assert_str_eq(out, "4\n4\n");
	ck_assert_int_eq(sh("gnuplot -c $SRC/plots/train_loss.gp fig r.csv && test -s fig.png"), 0);
}
END_TEST

/* Two separate train runs (other seeds, so other losses and times) are accepted by
 * compare and paired as one record: the exit is a verdict (0 or 1), never a refusal (2). */
START_TEST(compare_pairs_two_train_runs)
{
	for (int seed = 1; seed <= 2; seed++)
		ck_assert_int_eq(sh("$MB train " QUIET " --data synthetic --steps 2 --batch 1 "
				    "--seq 32 --val-every 2 --seed %d --out t%d.json", seed, seed), 0);
	int rc = sh("$MB compare t1.json t2.json 2>&1");
	ck_assert_msg(rc == 0 || rc == 1, "compare exit %d:\n%s", rc, out);
	expect_has("summary: 1 matched");
	expect_has("0 only in base, 0 only in new");
	ck_assert_int_eq(sh("python3 -c 'import json; m=json.load(open(\"t2.json\"))[\"records\"][0]"
			    "[\"metrics\"]; print(m[\"time_s\"][\"n\"], m[\"steps_done\"])'"), 0);
	ck_assert_str_eq(out, "2 2\n");
}
END_TEST

START_TEST(learning_lowers_validation_loss)
{
	ck_assert_int_eq(sh("$MB train " QUIET " --steps 40 --batch 4 --seq 64 --lr-warmup 5 "
			    "--val-every 40 --val-batches 4 --out r.json"), 0);
	ck_assert_int_eq(sh("python3 -c 'import json; d=json.load(open(\"r.json\")); "
			    "c=d[\"summary\"][\"train\"][\"curve\"]; "
			    "print(c[0][\"val_loss\"], d[\"records\"][0][\"metrics\"][\"final_val_loss\"])'"), 0);
	double v0 = 0, v = 0;
	ck_assert_int_eq(sscanf(out, "%lf %lf", &v0, &v), 2);
	/* before training within 0.1 of ln 256; after 40 steps at least 1.5 nats lower */
	ck_assert_msg(fabs(v0 - log(256.0)) < 0.1, "validation loss %g before training", v0);
	ck_assert_msg(v > 0 && v < v0 - 1.5, "validation loss %g -> %g after 40 steps", v0, v);
}
END_TEST

START_TEST(step_checks_itself)
{
	ck_assert_int_eq(sh("$MB step " QUIET " --batch 1 --seq 32 --iters 1 --warmup 0 "
			    "--out s.json"), 0);
	expect_has("step v3-tiny/fp32/b1_s32: ");
	expect_has("attention ");
	ck_assert_int_eq(sh("python3 -c 'import json; r=json.load(open(\"s.json\"))[\"records\"][0];"
			    " m=r[\"metrics\"]; print(r[\"check\"][\"status\"], m[\"tokens_per_s\"] > 0,"
			    " m[\"model_flops_per_token\"] > 1e6, m[\"predicted_bytes\"] > 0)'"), 0);
	ck_assert_str_eq(out, "pass True True True\n");
	ck_assert_int_eq(sh("$MB step " QUIET " --batch 1 --seq 32 --iters 1 --warmup 0 "
			    "--plant-error --out p.json"), 1);
	expect_has("check FAILED");
	ck_assert_int_eq(sh("$MB step " QUIET " --preset llama3-tiny --precision bf16 --batch 1 "
			    "--seq 32 --iters 1 --warmup 0 --out b.json"), 0);
	ck_assert_int_eq(sh("$MB step " QUIET " --precision fp8 --batch 2 --seq 64 --iters 1 "
			    "--warmup 0 --out f.json"), 0);
}
END_TEST

/* --replicas runs the micro-batches side by side on threads: in `step` the same losses
 * and the same gradients (the check's error against FP64, to the last digit) as
 * --micro-batch alone, and a planted error still fails it; in `train` the same weights,
 * byte for byte, after three steps. */
START_TEST(step_replicas_same_bits)
{
	const char *run = "$MB step " QUIET " --batch 4 --seq 32 --iters 2 --warmup 0 ";
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s --micro-batch 2 --dump-batch da.json --out a.json && "
		 "%s --replicas 2 --dump-batch db.json --out b.json", run, run);
	ck_assert_int_eq(sh(cmd), 0);
	ck_assert_int_eq(sh("python3 -c 'import json; a, b = (json.load(open(f))[\"records\"][0] "
			    "for f in (\"a.json\", \"b.json\")); da, db = (json.load(open(f)) for f "
			    "in (\"da.json\", \"db.json\")); print(b[\"name\"], "
			    "b[\"params\"][\"replicas\"], b[\"check\"][\"status\"], "
			    "a[\"check\"][\"max_err\"] == b[\"check\"][\"max_err\"] > 0, "
			    "[da[k] == db[k] for k in (\"loss\", \"main_loss\", \"mtp_loss\")])'"),
			 0);
	ck_assert_str_eq(out, "v3-tiny/fp32/b4_s32_r2 2 pass True [True, True, True]\n");
	snprintf(cmd, sizeof(cmd), "%s --replicas 4 --plant-error --out p.json", run);
	ck_assert_int_eq(sh(cmd), 1);
	expect_has("check FAILED");
	const char *tr = "$MB train " QUIET " --data synthetic --steps 3 --batch 4 --seq 32 ";
	snprintf(cmd, sizeof(cmd), "%s --micro-batch 2 --save ta.safetensors --out ta.json && "
		 "%s --replicas 2 --save tb.safetensors --out tb.json && "
		 "cmp ta.safetensors tb.safetensors", tr, tr);
	ck_assert_int_eq(sh(cmd), 0);
	expect_error("$MB step --batch 4 --replicas 3 --out x.json", "do not split into 3");
	expect_error("$MB train --batch 4 --replicas 8 --out x.json", "do not split into 8");
	expect_error("$MB step --batch 4 --micro-batch 2 --replicas 4 --out x.json",
		     "whole waves of 4");
}
END_TEST

START_TEST(bad_input_exits_2)
{
	expect_error("$MB train --preset nope --out x.json", "nope");
	expect_error("$MB train --data /no/such/dir --out x.json", "/no/such/dir");
	expect_error("$MB train --preset gpt-22b --out x.json", "gpt-22b");
	expect_error("$MB train --precision fp4 --out x.json", "fp4");
	expect_error("$MB step --preset nope --out x.json", "nope");
	/* a step predicted not to fit is refused before it allocates (v3-tiny at 4 x 128
	 * needs ~0.3 GB, so a 1 MB limit refuses it; v3-small needs ~44 GB) */
	expect_error("$MB step --mem-limit 1M --out x.json", "more than --mem-limit's");
	expect_error("$MB step --preset v3-small --mem-limit 16G --out x.json", "needs about 4");
	ck_assert_int_eq(sh("ls x.json 2>/dev/null | wc -l"), 0);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

/* `step --backend cuda` and `train --backend cuda` without a device (this CI, or a build without CUDA): one error
 * line naming CUDA, a hint, exit 2, no result; with a GPU the path cannot be reached. */
START_TEST(step_cuda_without_device)
{
	sh("$MB info --json | grep -c '\"cc\"'");
	if (atoi(out) > 0)
		return;
	expect_error("$MB step --backend cuda --out x.json", "CUDA");
	expect_error("$MB step --backend cuda --precision bf16 --preset v3-small --seq 4096 "
		     "--batch 1 --out x.json", "--backend cuda");
	expect_error("$MB train --backend cuda --steps 2 --out x.json", "CUDA");
	ck_assert_int_eq(sh("ls x.json 2>/dev/null | wc -l"), 0);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

START_TEST(save_init_from_and_bpe)
{
	ck_assert_int_eq(sh("$MB train " QUIET " --steps 2 --batch 1 --seq 32 --vocab 300 "
			    "--save a.safetensors --out r.json"), 0);
	expect_has("nats/token");
	ck_assert_int_eq(sh("test -s a.safetensors && test -s a.bpe.json"), 0);
	ck_assert_int_eq(sh("$MB train " QUIET " --steps 1 --batch 1 --seq 32 --vocab 300 "
			    "--tokenizer a.bpe.json --init-from a.safetensors --out r2.json"), 0);
	expect_error("$MB train --steps 1 --batch 1 --seq 32 --init-from a.safetensors "
		     "--out x.json", "model.embed_tokens.weight");
	expect_error("$MB train --preset llama3-tiny --vocab 300 --tokenizer a.bpe.json --steps 1 "
		     "--batch 1 --seq 32 --init-from a.safetensors --out x.json", "not in this model");
	ck_assert_int_eq(sh("ls x.json 2>/dev/null | wc -l"), 0);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

/* DUMP_CHECK prints what a --dump-batch file holds that the tests assert: rows x columns
 * of tokens, all in 0..255, loss == main + 0.3 mtp + balance, the FP32 loss within 1e-5
 * of the FP64 one, the config's layers and vocabulary. */
#define DUMP_CHECK(f) "python3 -c 'import json; d=json.load(open(\"" f "\")); t=d[\"tokens\"];" \
	" print(len(t), len(t[0]), all(0 <= x < 256 for r in t for x in r)," \
	" abs(d[\"loss\"] - d[\"main_loss\"] - 0.3 * d[\"mtp_loss\"] - d[\"balance_loss\"]) < 1e-12," \
	" abs(d[\"loss\"] / d[\"loss_fp64\"] - 1) < 1e-5, d[\"config\"][\"layers\"]," \
	" d[\"config\"][\"vocab\"])'"

/* loss_of prints the loss of a --dump-batch file. */
#define LOSS_OF(f) "python3 -c 'import json; print(json.load(open(\"" f "\"))[\"loss\"])'"

START_TEST(step_save_init_from_dump_and_model)
{
	static char first[sizeof(out)];
	ck_assert_int_eq(sh("$MB step " QUIET " --batch 2 --seq 32 --iters 1 --warmup 0 "
			    "--save w.safetensors --dump-batch d.json --out s.json"), 0);
	ck_assert_int_eq(sh(DUMP_CHECK("d.json")), 0);
	ck_assert_str_eq(out, "2 34 True True True 4 256\n");
	ck_assert_int_eq(sh(LOSS_OF("d.json")), 0);
	memcpy(first, out, sizeof(out));
	/* the saved starting weights give the same loss; a trained checkpoint another */
	ck_assert_int_eq(sh("$MB step " QUIET " --batch 2 --seq 32 --iters 1 --warmup 0 "
			    "--init-from w.safetensors --dump-batch e.json --out s2.json"), 0);
	ck_assert_int_eq(sh(LOSS_OF("e.json")), 0);
	ck_assert_str_eq(out, first);
	ck_assert_int_eq(sh("$MB train " QUIET " --data synthetic --steps 3 --batch 1 --seq 32 "
			    "--save t.safetensors --out t.json"), 0);
	ck_assert_int_eq(sh("$MB step " QUIET " --batch 2 --seq 32 --iters 1 --warmup 0 "
			    "--init-from t.safetensors --dump-batch f.json --out s3.json"), 0);
	ck_assert_int_eq(sh(LOSS_OF("f.json")), 0);
	ck_assert_str_ne(out, first);
	ck_assert_int_eq(sh("echo '{\"preset\": \"v3-tiny\", \"layers\": 2, \"name\": \"v3-tiny-2l\"}' "
			    "> m.json && $MB step " QUIET " --model m.json --batch 1 --seq 32 --iters 1 "
			    "--warmup 0 --dump-batch g.json --out s4.json"), 0);
	expect_has("step v3-tiny-2l/fp32/b1_s32: ");
	ck_assert_int_eq(sh(DUMP_CHECK("g.json")), 0);
	ck_assert_str_eq(out, "1 34 True True True 2 256\n");
	/* report counts the FLOPs of the model measured (params.config), not its preset's */
	ck_assert_int_eq(sh("$MB report s4.json"), 0);
	expect_has("step v3-tiny-2l/fp32/b1_s32 (s4.json");
	expect_has("the record says 1.10531e+07 (same)");
	expect_error("$MB step --batch 2 --seq 32 --dump-batch d.json --out x.json", "d.json exists");
	expect_error("$MB step --batch 2 --seq 32 --save w.safetensors --out x.json", "w.safetensors exists");
	expect_error("$MB step --model /no/such.json --out x.json", "/no/such.json");
	expect_error("$MB step --preset llama3-tiny --batch 1 --seq 32 --init-from w.safetensors "
		     "--out x.json", "--init-from");
	ck_assert_int_eq(sh("ls x.json 2>/dev/null | wc -l"), 0);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

static Suite *cli_train_suite(void)
{
	Suite *s = suite_create("cli_train");
	TCase *run = tcase_create("run");
	tcase_add_checked_fixture(run, cli_setup, cli_teardown);
	tcase_set_timeout(run, 300);
	tcase_add_test(run, short_run_writes_lines_result_and_csv);
	tcase_add_test(run, compare_pairs_two_train_runs);
	tcase_add_test(run, learning_lowers_validation_loss);
	tcase_add_test(run, step_checks_itself);
	tcase_add_test(run, step_replicas_same_bits);
	tcase_add_test(run, save_init_from_and_bpe);
	tcase_add_test(run, step_save_init_from_dump_and_model);
	suite_add_tcase(s, run);
	TCase *bad = tcase_create("errors");
	tcase_add_checked_fixture(bad, cli_setup, cli_teardown);
	tcase_add_test(bad, bad_input_exits_2);
	tcase_add_test(bad, step_cuda_without_device);
	suite_add_tcase(s, bad);
	return s;
}

MB_CHECK_MAIN(cli_train_suite)
