/*
 * test_cli_model.c - `moebench model` and `moebench claims` as a user meets them: exact
 * parameter and KV-cache integers through --json, every preset, the claims table and
 * its comparison, the figure rendered by gnuplot, `moebench run` carrying the claims
 * case (and failing it when the baselines are gone), and bad input exiting 2 with one
 * "moebench: error:" line and a hint.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"
#include "model.h"

#define RUN_FAST "--backend cpu --iters 2 --warmup 0 --min-time 0 --quiet"

/* expect_has checks that the last output contains text. */
static void expect_has(const char *text)
{
	ck_assert_msg(strstr(out, text), "output lacks '%s':\n%s", text, out);
}

START_TEST(model_json_exact_integers)
{
	ck_assert_int_eq(sh("$MB model --preset deepseek-v3 --json | python3 -c 'import json,sys; "
			    "d=json.load(sys.stdin); print(d[\"params_total\"], d[\"kv_cache_bytes_per_token\"])'"), 0);
	ck_assert_str_eq(out, "671026419200 70272\n");
	/* every key the issue names; the training count at 4096 without MTP is ~250 GFLOP */
	ck_assert_int_eq(sh("$MB model --preset deepseek-v3 --mtp 0 --seq 4K --json | python3 -c "
			    "'import json,sys; d=json.load(sys.stdin); k=[\"params_total\",\"params_active\","
			    "\"params_embedding\",\"flops_per_token_train\",\"flops_per_token_train_noncausal\","
			    "\"flops_per_token_6n\",\"flops_per_token_fwd\",\"kv_cache_bytes_per_token\"]; "
			    "print(all(x in d for x in k), d[\"flops_per_token_train\"], d[\"seq\"])'"), 0);
	ck_assert_str_eq(out, "True 250449887232 4096\n");
	ck_assert_int_eq(sh("$MB model --preset llama3-405b --kv-dtype fp8 --json | python3 -c "
			    "'import json,sys; d=json.load(sys.stdin); print(d[\"params_total\"], "
			    "d[\"kv_cache_bytes_per_token\"], d[\"kv_cache_bytes_per_token_at_dtype\"])'"), 0);
	ck_assert_str_eq(out, "405853388800 516096 258048\n");
}
END_TEST

START_TEST(model_text_table)
{
	ck_assert_int_eq(sh("$MB model"), 0); /* the default model: deepseek-v3 */
	expect_has("model deepseek-v3:");
	expect_has("671,026,419,200");
	expect_has("routed_experts");
	expect_has("= 260,641,652,736 FLOP");
	expect_has("6N (N = active incl. MTP)");
	expect_has("forward only (causal)");
	expect_has("KV cache per token (bf16): 70,272 bytes");
	ck_assert_int_eq(sh("$MB model --preset deepseek-v3 --kv-dtype fp8 --layout tp=1,pp=16,ep=64,dp=128"), 0);
	expect_has("KV cache per token (fp8): 35,136 bytes");
	expect_has("memory per GPU, layout tp=1 pp=16 ep=64 dp=128 (2048 GPUs)");
	ck_assert_int_eq(sh("$MB model --list"), 0);
	expect_has("v3-tiny");
	expect_has("gpt-1t");
}
END_TEST

START_TEST(model_every_preset)
{
	const struct model_config *c = model_preset_at((size_t)_i);
	ck_assert_int_eq(sh("$MB model --preset %s", c->name), 0);
	expect_has(c->name);
	expect_has("KV cache per token");
	ck_assert_int_eq(sh("$MB model --preset %s --json | python3 -c 'import json,sys; "
			    "d=json.load(sys.stdin); print(d[\"model\"], d[\"params_total\"] > 0)'", c->name), 0);
	char want[96];
	snprintf(want, sizeof(want), "%s True\n", c->name);
	ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(model_bad_input_exits_2)
{
	expect_error("$MB model --preset nope", "unknown preset 'nope'");
	expect_has("known presets are deepseek-v3, ");
	expect_has("v3-tiny");
	expect_error("$MB model --preset v3-tiny --model m.json", "both given");
	expect_error("$MB model --model missing.json", "missing.json");
	expect_error("echo '{\"preset\": \"llama3-8b\", \"heads\": 7}' > h.json; $MB model --model h.json",
			   "h.json: ");
	expect_error("echo '{\"layers\": \"many\"}' > l.json; $MB model --model l.json",
			   "l.json: layers");
	expect_error("echo '{\"layers\": ' > t.json; $MB model --model t.json", "t.json");
	expect_error("$MB model --seq 0", "--seq: 0");
	expect_error("$MB model --seq -4096", "--seq");
	expect_error("$MB model --mtp -1", "--mtp: -1");
	expect_error("$MB model --preset gpt-175b --seq 4096", "max_positions");
	expect_error("$MB model --kv-dtype fp4", "--kv-dtype");
	expect_error("$MB model --layout tp=3", "tp: 3 does not divide heads");
	expect_error("$MB model --layout tp=8,zz=2", "'zz=2'");
}
END_TEST

START_TEST(claims_side_by_side)
{
	ck_assert_int_eq(sh("$MB claims"), 0);
	expect_has("-- deepseek-v3/pre-training: deepseek-v3 on h800-sxm (fp8)");
	expect_has("-- llama3-405b/pre-training: llama3-405b on h100-sxm (bf16)");
	expect_has("-- frontier/gpt-175b");
	expect_has("-- megatron-bridge-deepseek-v3/h100-1024");
	expect_has("mfu_bf16_from_gpu_hours");
	expect_has("[v3] Table 1 (pre-training, $5.328M)");
	expect_has("dense peaks of h800-sxm: BF16 989, FP8 1979 TFLOP/s");
	expect_has("h800-sxm: NVIDIA H800 SXM5 datasheet");
	expect_has("== comparison: llama3-405b (a) vs deepseek-v3 (b)");
	expect_has("deepseek-v3/total 2.788M GPU-hours = 11.06x");
	expect_has("= total training FLOPs");
	expect_has("x achieved FLOP/s per GPU");
	/* the JSON carries every run and the same decomposition */
	ck_assert_int_eq(sh("$MB claims --json | python3 -c 'import json,sys; d=json.load(sys.stdin); "
			    "c=d[\"comparison\"][\"bf16\"]; print(len(d[\"runs\"]), "
			    "round(d[\"comparison\"][\"headline_gpu_hours_ratio\"], 2), "
			    "abs(c[\"total_flops\"] * c[\"rate_b_over_a\"] / c[\"gpu_hours\"] - 1) < 1e-12)'"), 0);
	ck_assert_str_eq(out, "17 11.06 True\n");
	ck_assert_int_eq(sh("$MB claims --baseline frontier"), 0);
	ck_assert_ptr_null(strstr(out, "== comparison"));
	ck_assert_ptr_null(strstr(out, "llama3-405b/"));
}
END_TEST

START_TEST(claims_inconsistent_is_a_finding)
{
	/* A planted 10% overstatement of DeepSeek-V3's size: the row says so, exit stays 0. */
	ck_assert_int_eq(sh("mkdir b && cp $SRC/results/baselines/*.json b/ && sed -i "
			    "'s/\"value\": 671e9/\"value\": 740e9/' b/deepseek-v3.json"), 0);
	ck_assert_int_eq(sh("MOEBENCH_BASELINES=b $MB claims --baseline deepseek-v3"), 0);
	expect_has("inconsistent");
	ck_assert_int_eq(sh("MOEBENCH_BASELINES=b $MB claims --baseline deepseek-v3 --tolerance 15"), 0);
	ck_assert_ptr_null(strstr(out, " inconsistent\n"));
}
END_TEST

START_TEST(claims_bad_input_exits_2)
{
	expect_error("$MB claims --baseline nope", "unknown baseline 'nope'");
	expect_has("known baselines are all, deepseek-v3, ");
	expect_error("$MB claims --tolerance -1", "--tolerance");
	expect_error("$MB claims --usd-per-gpu-hour 0", "--usd-per-gpu-hour");
	expect_error("MOEBENCH_BASELINES=nowhere $MB claims", "nowhere");
	ck_assert_int_eq(sh("mkdir b && cp $SRC/results/baselines/*.json b/ && sed -i "
			    "'s/\"ref\": \"v3\", \"where\": \"Table 1 (total/\"ref\": \"v4\", \"where\": \"Table 1 (total/' "
			    "b/deepseek-v3.json"), 0);
	expect_error("MOEBENCH_BASELINES=b $MB claims", "b/deepseek-v3.json: runs[4].figures.gpu_hours");
	expect_error("sed -i 's/\"ref\": \"v4\"/\"ref\": \"v3\"/; s/h800-sxm/h900/' "
			   "b/deepseek-v3.json; MOEBENCH_BASELINES=b $MB claims",
			   "b/deepseek-v3.json: runs[0].hardware: unknown hardware key \"h900\"");
	expect_error("echo '{\"schema\": ' > b/deepseek-v3.json; MOEBENCH_BASELINES=b $MB claims",
			   "b/deepseek-v3.json");
	expect_error("PATH=/nonexistent $MB claims --plot figs", "gnuplot is not on PATH");
	ck_assert_int_eq(sh("test -e figs"), 1); /* nothing written */
}
END_TEST

START_TEST(claims_plot_renders)
{
	ck_assert_int_eq(sh("{ $MB claims --plot figs > /dev/null; }"), 0);
	expect_has("figs/claims.png, figs/claims.pdf");
	ck_assert_int_eq(sh("python3 -c 'import os; "
			    "png=open(\"figs/claims.png\",\"rb\").read(); pdf=open(\"figs/claims.pdf\",\"rb\").read(); "
			    "csv=open(\"figs/claims.csv\").read().splitlines(); "
			    "print(png[:4]==b\"\\x89PNG\", len(png) > 10000, pdf[:4]==b\"%%PDF\", csv[0][0], "
			    "sum(1 for l in csv if l.startswith(\"deepseek-v3/pre-training,\")))'"), 0);
	ck_assert_str_eq(out, "True True True # 1\n");
	ck_assert_int_eq(sh("grep -c '^# git_commit: ' figs/claims.csv"), 0);
}
END_TEST

START_TEST(run_includes_claims)
{
	ck_assert_int_eq(sh("$MB run " RUN_FAST " --out r.json"), 0);
	expect_has("claims/cpu/claims_eval/baselines7_runs17");
	ck_assert_int_eq(sh("python3 -c 'import json; d=json.load(open(\"r.json\")); "
			    "r=[x for x in d[\"records\"] if x[\"benchmark\"]==\"claims\"]; "
			    "print(len(r), r[0][\"check\"][\"status\"], r[0][\"backend\"])'"), 0);
	ck_assert_str_eq(out, "1 pass cpu\n");
	/* Without DeepSeek-V3's file the invariants cannot hold: the check fails, exit 1. */
	ck_assert_int_eq(sh("mkdir b && cp $SRC/results/baselines/*.json b/ && rm b/deepseek-v3.json"), 0);
	ck_assert_int_eq(sh("MOEBENCH_BASELINES=b $MB run " RUN_FAST " --out f.json"), 1);
	expect_has("claims: cpu/claims_eval/baselines6_runs12: check FAILED");
}
END_TEST

static Suite *cli_model_suite(void)
{
	Suite *s = suite_create("cli_model");
	TCase *model = tcase_create("model");
	tcase_add_checked_fixture(model, cli_setup, cli_teardown);
	tcase_add_test(model, model_json_exact_integers);
	tcase_add_test(model, model_text_table);
	tcase_add_loop_test(model, model_every_preset, 0, (int)model_preset_count());
	TCase *claims = tcase_create("claims");
	tcase_add_checked_fixture(claims, cli_setup, cli_teardown);
	tcase_set_timeout(claims, 120);
	tcase_add_test(claims, claims_side_by_side);
	tcase_add_test(claims, claims_inconsistent_is_a_finding);
	tcase_add_test(claims, claims_plot_renders);
	tcase_add_test(claims, run_includes_claims);
	TCase *bad = tcase_create("bad_input");
	tcase_add_checked_fixture(bad, cli_setup, cli_teardown);
	tcase_add_test(bad, model_bad_input_exits_2);
	tcase_add_test(bad, claims_bad_input_exits_2);
	suite_add_tcase(s, model);
	suite_add_tcase(s, claims);
	suite_add_tcase(s, bad);
	return s;
}

MB_CHECK_MAIN(cli_model_suite)
