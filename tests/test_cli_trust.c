/*
 * test_cli_trust.c - the real program refuses to be fooled. check: a GEMM output with
 * one wrong 16x16 tile (sampled check) or one wrong element (full check), and an MLA
 * output with one wrong element, fail their check with exit 1 (planted through the
 * test-only MOEBENCH_TEST_CORRUPT), and a clean record says how many outputs it
 * compared. compare: a result file with trailing data, a negative time or a duplicate
 * record is refused with exit 2, naming the file and the record.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"

#define FAST "--backend cpu --iters 2 --warmup 0 --min-time 0 --quiet"
#define PY "python3 -c 'import json; d=json.load(open(\"r.json\")); "

START_TEST(clean_gemm_reports_its_coverage)
{
	/* 1024x1024x128 is over the full-check budget: 64x64 tiles + 1024 random. */
	ck_assert_int_eq(sh("$MB gemm --shapes 1024x1024x128,96x80x64 --dtype bf16 " FAST
			    " --out r.json"), 0);
	ck_assert_int_eq(sh(PY "print([(r[\"check\"][\"samples\"], r[\"check\"][\"coverage\"]) "
			    "for r in d[\"records\"]])'"), 0);
	ck_assert_str_eq(out, "[(5120, 'one per 16x16 tile + 1024 random'), "
			 "(7680, 'every output')]\n");
}
END_TEST

START_TEST(one_wrong_tile_fails_the_sampled_check)
{
	ck_assert_int_eq(sh("MOEBENCH_TEST_CORRUPT=tile $MB gemm --shapes 1024x1024x128 "
			    "--dtype bf16,fp8-block --samples 2 " FAST " --out r.json"), 1);
	ck_assert_int_eq(sh(PY "print([r[\"check\"][\"status\"] for r in d[\"records\"]])'"), 0);
	ck_assert_str_eq(out, "['fail', 'fail']\n");
}
END_TEST

START_TEST(one_wrong_element_fails_the_full_check)
{
	ck_assert_int_eq(sh("MOEBENCH_TEST_CORRUPT=element $MB gemm --shapes 96x80x64 "
			    "--dtype bf16 " FAST " --out r.json"), 1);
	ck_assert_int_eq(sh(PY "r=d[\"records\"][0][\"check\"]; print(r[\"status\"], "
			    "r[\"mismatches\"], r[\"samples\"])'"), 0);
	ck_assert_str_eq(out, "fail 1 7680\n");
}
END_TEST

START_TEST(one_wrong_tile_fails_the_grouped_check)
{
	/* Every expert's 16x16 tiles are covered: a wrong tile in the last expert's block
	 * fails each grouped GEMM, with only 2 random samples beside the tiles. */
	ck_assert_int_eq(sh("MOEBENCH_TEST_CORRUPT=tile $MB gemm --grouped 4 --dtype fp8-block "
			    "--samples 2 " FAST " --out r.json"), 1);
	ck_assert_int_eq(sh(PY "print(sorted(set(r[\"check\"][\"status\"] for r in d[\"records\"] "
			    "if r[\"params\"][\"layer\"] == \"moe.grouped\")))'"), 0);
	ck_assert_str_eq(out, "['fail']\n");
	ck_assert_int_eq(sh("$MB gemm --grouped 4 --dtype fp8-block --samples 2 " FAST
			    " --out s.json"), 0);
}
END_TEST

START_TEST(one_wrong_mla_element_fails)
{
	ck_assert_int_eq(sh("MOEBENCH_TEST_CORRUPT=element $MB mla --preset v3-tiny --seq 16 "
			    FAST " --out r.json"), 1);
	ck_assert_int_eq(sh("$MB mla --preset v3-tiny --seq 16 " FAST " --out s.json"), 0);
}
END_TEST

/* make_result writes r.json from a quick peak run. */
static void make_result(void)
{
	ck_assert_int_eq(sh("$MB peak --size 32 --stream 1K " FAST " --out r.json"), 0);
}

START_TEST(compare_refuses_trailing_data)
{
	make_result();
	ck_assert_int_eq(sh("cp r.json s.json && echo '{}' >> s.json"), 0);
	expect_error("$MB compare r.json s.json", "s.json");
	ck_assert_int_eq(sh("$MB compare r.json r.json"), 0);
}
END_TEST

START_TEST(compare_refuses_negative_time_naming_the_record)
{
	make_result();
	ck_assert_int_eq(sh(PY "d[\"records\"][1][\"metrics\"][\"time_s\"][\"min\"] = -1.0; "
			    "json.dump(d, open(\"s.json\", \"w\"))'"), 0);
	expect_error("$MB compare r.json s.json", "NEW records[1] (peak/cpu/dgemm");
	expect_error("$MB compare s.json r.json", "BASE records[1]");
}
END_TEST

START_TEST(compare_refuses_duplicate_records)
{
	make_result();
	ck_assert_int_eq(sh(PY "d[\"records\"].append(d[\"records\"][0]); "
			    "json.dump(d, open(\"s.json\", \"w\"))'"), 0);
	expect_error("$MB compare r.json s.json", "same benchmark, name and params as records[0]");
}
END_TEST

static Suite *trust_suite(void)
{
	Suite *s = suite_create("cli_trust");
	TCase *check = tcase_create("check");
	TCase *compare = tcase_create("compare");

	tcase_add_checked_fixture(check, cli_setup, cli_teardown);
	tcase_add_checked_fixture(compare, cli_setup, cli_teardown);
	tcase_add_test(check, clean_gemm_reports_its_coverage);
	tcase_add_test(check, one_wrong_tile_fails_the_sampled_check);
	tcase_add_test(check, one_wrong_element_fails_the_full_check);
	tcase_add_test(check, one_wrong_tile_fails_the_grouped_check);
	tcase_add_test(check, one_wrong_mla_element_fails);
	tcase_add_test(compare, compare_refuses_trailing_data);
	tcase_add_test(compare, compare_refuses_negative_time_naming_the_record);
	tcase_add_test(compare, compare_refuses_duplicate_records);
	suite_add_tcase(s, check);
	suite_add_tcase(s, compare);
	return s;
}

MB_CHECK_MAIN(trust_suite)
