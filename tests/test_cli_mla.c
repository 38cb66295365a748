/*
 * test_cli_mla.c - `moebench mla` as a user meets it: a tiny training run writes a
 * result whose every case passed its check, with the FLOP convention stated; a decode
 * run records the cache bytes per position of MLA, MHA and GQA; the summary prints
 * DeepSeek-V3's 70,272 KV bytes per token beside MHA and GQA; `moebench run` carries a
 * small MLA case; bad input exits 2 with one "moebench: error:" line, a hint, no file.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"

#define RUN_FAST "--backend cpu --iters 2 --warmup 0 --min-time 0 --quiet"

/* expect_has checks that the last output contains text. */
static void expect_has(const char *text)
{
	ck_assert_msg(strstr(out, text), "output lacks '%s':\n%s", text, out);
}

START_TEST(train_run_writes_checked_records)
{
	ck_assert_int_eq(sh("$MB mla --preset v3-tiny --seq 24 --batch 2 --compare mha,gqa:2 "
			    RUN_FAST " --out r.json"), 0);
	expect_has("v3-tiny KV cache per token (BF16, 4 layers): mla 640 B");
	ck_assert_int_eq(sh("python3 -c 'import json; d=json.load(open(\"r.json\")); "
			    "r=[x for x in d[\"records\"] if x[\"benchmark\"]==\"mla\"]; "
			    "print(len(r), all(x[\"check\"][\"status\"]==\"pass\" for x in r), "
			    "sorted(set(x[\"params\"][\"variant\"] for x in r)), "
			    "sorted(set(x[\"params\"][\"op\"] for x in r)), "
			    "all(x[\"metrics\"][\"tflops\"] > 0 for x in r), "
			    "\"nnz = S(S+1)/2\" in r[0][\"params\"][\"flop_convention\"])'"), 0);
	ck_assert_str_eq(out, "12 True ['gqa2', 'mha', 'mla'] "
			 "['block_bwd', 'block_fwd', 'core_bwd', 'core_fwd'] True True\n");
}
END_TEST

START_TEST(decode_run_records_cache_bytes)
{
	ck_assert_int_eq(sh("$MB mla --preset v3-tiny --mode decode --ctx 40 --batch 2 " RUN_FAST
			    " --out d.json"), 0);
	/* v3-tiny: MLA (64 + 16) x 2 B; MHA 2 x 4 x 32 x 2 B; GQA:2 half of that */
	ck_assert_int_eq(sh("python3 -c 'import json; d=json.load(open(\"d.json\")); "
			    "r=[x for x in d[\"records\"] if x[\"benchmark\"]==\"mla\"]; "
			    "print([(x[\"params\"][\"variant\"], x[\"params\"][\"kv_bytes_per_pos_bf16\"], "
			    "x[\"check\"][\"status\"], x[\"metrics\"][\"gbps\"] > 0) for x in r])'"), 0);
	ck_assert_str_eq(out, "[('mla', 160, 'pass', True), ('mha', 512, 'pass', True), "
			 "('gqa2', 256, 'pass', True)]\n");
}
END_TEST

START_TEST(summary_compares_deepseek_v3_kv)
{
	ck_assert_int_eq(sh("$MB mla --preset deepseek-v3,llama3-8b --mode decode --ctx 8 " RUN_FAST
			    " --out k.json"), 0);
	expect_has("deepseek-v3 KV cache per token (BF16, 61 layers): mla 70,272 B (1.00x mla) | "
		   "mha 3,997,696 B (56.89x mla) | gqa8 249,856 B (3.56x mla)");
	expect_has("llama3-8b KV cache per token (BF16, 32 layers): gqa8 131,072 B");
	expect_has("deepseek-v3 decode step at ctx 8, batch 1");
}
END_TEST

START_TEST(suite_carries_a_small_mla_case)
{
	ck_assert_int_eq(sh("$MB run " RUN_FAST " --out s.json"), 0);
	ck_assert_int_eq(sh("python3 -c 'import json; d=json.load(open(\"s.json\")); "
			    "r=[x for x in d[\"records\"] if x[\"benchmark\"]==\"mla\"]; "
			    "print(len(r) > 0, all(x[\"check\"][\"status\"]==\"pass\" and "
			    "x[\"metrics\"][\"time_s\"][\"median\"] < 1 for x in r))'"), 0);
	ck_assert_str_eq(out, "True True\n");
}
END_TEST

START_TEST(bad_input_exits_2)
{
	expect_error("$MB mla --preset nope " RUN_FAST " --out e.json", "unknown preset 'nope'");
	expect_error("$MB mla --preset llama3-8b --compare mla " RUN_FAST " --out e.json", "has no MLA");
	expect_error("$MB mla --preset v3-small --compare gqa:5 " RUN_FAST " --out e.json",
		     "kv_heads must divide heads");
	expect_error("$MB mla --preset deepseek-v3 --seq 1M --batch 64 " RUN_FAST " --out e.json",
		     "more than half of this machine");
	expect_error("$MB mla --impl cuda " RUN_FAST " --out e.json", "--impl cuda");
	expect_error("$MB mla --compare gqa " RUN_FAST " --out e.json", "cannot read 'gqa'");
	expect_error("$MB mla --mode serve " RUN_FAST " --out e.json", "serve");
	ck_assert_int_eq(sh("test -e e.json"), 1);
}
END_TEST

static Suite *cli_mla_suite(void)
{
	Suite *s = suite_create("cli_mla");
	TCase *tc = tcase_create("command");
	tcase_add_checked_fixture(tc, cli_setup, cli_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, train_run_writes_checked_records);
	tcase_add_test(tc, decode_run_records_cache_bytes);
	tcase_add_test(tc, summary_compares_deepseek_v3_kv);
	tcase_add_test(tc, suite_carries_a_small_mla_case);
	tcase_add_test(tc, bad_input_exits_2);
	suite_add_tcase(s, tc);
	return s;
}

MB_CHECK_MAIN(cli_mla_suite)
