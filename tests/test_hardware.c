/* test_hardware.c - datasheet lookup by device name and user hardware files. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "hardware.h"
#include "status.h"

START_TEST(matches_reported_names)
{
	const struct hardware_spec *h = hardware_match("NVIDIA H100 80GB HBM3");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->key, "h100-sxm");
	ck_assert_double_eq(h->peak_bf16_tflops, 989);
	ck_assert_double_eq(h->peak_fp8_tflops, 1979);
	ck_assert_double_eq(h->hbm_tbps, 3.35);
	ck_assert_str_eq(hardware_match("  nvidia h200 ")->key, "h200");
	ck_assert_str_eq(hardware_match("NVIDIA H800")->key, "h800-sxm");
	ck_assert_double_eq(hardware_match("NVIDIA H800")->scaleup_gbps, 200);
	ck_assert_double_eq(hardware_match("AMD Instinct MI250X")->peak_bf16_tflops, 191.5);
}
END_TEST

START_TEST(other_variants_do_not_match)
{
	/* PCIe and NVL parts have other peaks: they must be "n/a", not the SXM's. */
	ck_assert_ptr_null(hardware_match("NVIDIA H100 PCIe"));
	ck_assert_ptr_null(hardware_match("NVIDIA H200 NVL"));
	ck_assert_ptr_null(hardware_match("NVIDIA A100-SXM4-40GB"));
	ck_assert_ptr_null(hardware_match(""));
}
END_TEST

START_TEST(every_entry_has_a_source_and_required_models)
{
	const char *need[] = { "h100-sxm", "h800-sxm", "h200", "b200", "a100-sxm", "mi250x-gcd", "mi300x" };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		ck_assert_ptr_nonnull(hardware_find_key(need[i]));
	for (size_t i = 0; i < hardware_count(); i++) {
		ck_assert(strlen(hardware_at(i)->source) > 20);
		ck_assert(isfinite(hardware_at(i)->peak_bf16_tflops));
	}
	ck_assert(isnan(hardware_find_key("a100-sxm")->peak_fp8_tflops));
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(user_file_adds_and_overrides)
{
	char why[256];
	const char *path = "/tmp/mb_hw_ok.json";
	write_file(path, "[{\"key\": \"l40s\", \"names\": [\"NVIDIA L40S\"], \"peak_bf16_tflops\": 362,"
		   " \"peak_fp8_tflops\": 733, \"hbm_gb\": null, \"source\": \"my datasheet\"},"
		   " {\"key\": \"h100-sxm\", \"names\": [\"NVIDIA H100 80GB HBM3\"],"
		   " \"peak_bf16_tflops\": 900, \"source\": \"capped clocks\"}]");
	ck_assert_int_eq(hardware_load_json(path, why, sizeof(why)), MB_OK);
	const struct hardware_spec *h = hardware_match("NVIDIA L40S");
	ck_assert_ptr_nonnull(h);
	ck_assert_double_eq(h->peak_fp8_tflops, 733);
	ck_assert(isnan(h->hbm_gb));
	ck_assert(isnan(h->peak_fp32_tflops));
	ck_assert_double_eq(hardware_match("NVIDIA H100 80GB HBM3")->peak_bf16_tflops, 900);
	hardware_reset_loaded();
	ck_assert_double_eq(hardware_match("NVIDIA H100 80GB HBM3")->peak_bf16_tflops, 989);
	ck_assert_ptr_null(hardware_match("NVIDIA L40S"));
}
END_TEST

/* expect_reject loads text and expects MB_ERR_PARSE with fragment in the reason. */
static void expect_reject(const char *text, const char *fragment)
{
	char why[256];
	size_t before = hardware_count();
	write_file("/tmp/mb_hw_bad.json", text);
	ck_assert_int_eq(hardware_load_json("/tmp/mb_hw_bad.json", why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_msg(strstr(why, fragment), "'%s' lacks '%s'", why, fragment);
	ck_assert_msg(strstr(why, "/tmp/mb_hw_bad.json"), "'%s' does not name the file", why);
	ck_assert_uint_eq(hardware_count(), before); /* nothing half-added */
}

START_TEST(bad_files_are_rejected_with_the_field)
{
	expect_reject("[{\"key\": \"x\", \"names\": [\"X\"]}]", "\"source\"");
	expect_reject("{\"key\": \"x\", \"names\": [\"X\"], \"source\": \"s\", \"peak_bf16\": 1}", "peak_bf16");
	expect_reject("{\"key\": \"x\", \"names\": [\"X\"], \"source\": \"s\", \"hbm_gb\": -1}", "hbm_gb");
	expect_reject("{\"key\": \"x\", \"names\": \"X\", \"source\": \"s\"}", "names");
	expect_reject("[{\"key\": \"ok\", \"names\": [\"A\"], \"source\": \"s\"}, 3]", "entry 1");
	expect_reject("{\"key\": ", "not valid JSON");
	char why[256];
	ck_assert_int_eq(hardware_load_json("/tmp/mb_no_such_file.json", why, sizeof(why)), MB_ERR_IO);
}
END_TEST

static Suite *hardware_suite(void)
{
	Suite *s = suite_create("hardware");
	TCase *core = tcase_create("core");
	tcase_add_test(core, matches_reported_names);
	tcase_add_test(core, other_variants_do_not_match);
	tcase_add_test(core, every_entry_has_a_source_and_required_models);
	TCase *files = tcase_create("files");
	tcase_add_test(files, user_file_adds_and_overrides);
	tcase_add_test(files, bad_files_are_rejected_with_the_field);
	suite_add_tcase(s, core);
	suite_add_tcase(s, files);
	return s;
}

MB_CHECK_MAIN(hardware_suite)
