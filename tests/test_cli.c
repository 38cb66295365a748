/*
 * test_cli.c - the moebench program as a user meets it: bad input exits 2 with one
 * "moebench: error:" line and a hint and writes nothing; a real (tiny) peak run writes
 * a result that compare reads; a planted 20% slowdown makes compare exit 1.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"
#include "result.h"
#include "status.h"

#define SMALL "--size 96 --stream 64K --iters 3 --warmup 0 --min-time 0 --quiet"
#define TINY "--backend cpu " SMALL
#define TINY_RUN "--backend cpu --iters 2 --warmup 0 --min-time 0 --quiet"

/* expect_usage_error runs moebench with args and expects exit 2, one error line
 * naming what, and a hint. */
#define expect_usage_error(args, what) expect_error("$MB " args, what)

START_TEST(bad_input_exits_2)
{
	expect_usage_error("", "no command");
	expect_usage_error("frobnicate", "unknown command 'frobnicate'");
	expect_usage_error("peak --bogus", "'--bogus'");
	expect_usage_error("peak --iters 0", "--iters");
	expect_usage_error("peak --iters ten", "--iters");
	expect_usage_error("peak --backend tpu", "--backend");
	expect_usage_error("peak --size 12Q", "--size");
	expect_usage_error("peak --format yaml", "--format");
	expect_usage_error("peak --out", "--out needs a value");
	expect_usage_error("peak --counters a,,b " TINY, "--counters");
	expect_usage_error("peak --hardware missing.json " TINY, "missing.json");
	expect_usage_error("info --hardware missing.json", "missing.json");
	expect_usage_error("compare only-one.json", "two result files");
	expect_usage_error("gemm --backend cpu --shapes nope", "unknown preset 'nope'");
	expect_usage_error("gemm --backend cpu --shapes 12x34", "--shapes");
	expect_usage_error("gemm --backend cpu --shapes deepseek-v3:tokens=0", "--shapes");
	expect_usage_error("gemm --backend cpu --dtype fp4", "'fp4'");
	expect_usage_error("gemm --backend cpu --pass fwd,sideways", "'sideways'");
	expect_usage_error("gemm --backend cpu --impl cublaslt", "needs the CUDA backend");
	expect_usage_error("gemm --backend cpu --measured-peak missing.json", "missing.json");
	expect_usage_error("gemm --backend cpu --shapes v3-tiny --grouped 3", "does not divide the 8 routed experts");
	expect_usage_error("gemm --backend cpu --shapes 64x64x128 --grouped 2", "no routed-expert GEMM");
	ck_assert_int_eq(sh("ls %s | wc -l", dir), 0);
	ck_assert_str_eq(out, "0\n"); /* nothing written by any of them */
}
END_TEST

START_TEST(cuda_without_device_is_a_user_error)
{
	sh("$MB info --json | grep -c '\"cc\"'");
	if (atoi(out) > 0)
		return; /* a GPU answers here: the error path cannot be reached */
	expect_usage_error("peak --backend cuda " SMALL, "--backend cuda");
	/* auto falls back with one note and succeeds */
	ck_assert_int_eq(sh("$MB peak --backend auto --size 64 --stream 4K --iters 2 --warmup 0 --min-time 0 --out a.json"), 0);
	ck_assert_ptr_nonnull(strstr(out, "no CUDA device, running on the CPU"));
}
END_TEST

START_TEST(help_and_version)
{
	ck_assert_int_eq(sh("$MB --help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "peak"));
	ck_assert_ptr_nonnull(strstr(out, "compare"));
	ck_assert_int_eq(sh("$MB peak --help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "--iters N"));
	ck_assert_ptr_nonnull(strstr(out, "[default: 10]"));
	ck_assert_int_eq(sh("$MB --version"), 0);
	ck_assert_ptr_nonnull(strstr(out, "commit "));
	ck_assert_ptr_nonnull(strstr(out, "openblas"));
}
END_TEST

START_TEST(existing_out_is_kept)
{
	ck_assert_int_eq(sh("echo keep > r.json"), 0);
	expect_usage_error("peak " TINY " --out r.json", "r.json exists");
	ck_assert_int_eq(sh("cat r.json"), 0);
	ck_assert_str_eq(out, "keep\n");
	ck_assert_int_eq(sh("$MB peak " TINY " --out r.json --force"), 0);
	ck_assert_int_eq(sh("grep -c moebench.result/1 r.json"), 0);
}
END_TEST

/* slow_down multiplies every record's time_s by factor and divides its rates. */
static void slow_down(const char *src, const char *dst, double factor)
{
	char why[256], path[256];
	cJSON *doc = NULL, *rec;
	snprintf(path, sizeof(path), "%s/%s", dir, src);
	ck_assert_int_eq(result_read(path, &doc, why, sizeof(why)), MB_OK);
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(doc, "records")) {
		cJSON *m = cJSON_GetObjectItem(rec, "metrics"), *t = cJSON_GetObjectItem(m, "time_s"), *v;
		cJSON_ArrayForEach(v, t)
			if (strcmp(v->string, "n") && strcmp(v->string, "cv") && strcmp(v->string, "mad") &&
			    cJSON_IsNumber(v))
				cJSON_SetNumberValue(v, v->valuedouble * factor);
		/* the repetition times too: compare judges on them */
		cJSON *x;
		cJSON_ArrayForEach(x, cJSON_GetObjectItem(t, "samples"))
			cJSON_SetNumberValue(x, x->valuedouble * factor);
		/* the noise of both runs made small, so the change is unambiguous */
		cJSON_SetNumberValue(cJSON_GetObjectItem(t, "cv"), 0.01);
		cJSON_SetNumberValue(cJSON_GetObjectItem(t, "mad"),
				     0.01 * cJSON_GetObjectItem(t, "median")->valuedouble);
	}
	char *text = cJSON_Print(doc);
	snprintf(path, sizeof(path), "%s/%s", dir, dst);
	ck_assert_int_eq(result_write_atomic(path, text, true, why, sizeof(why)), MB_OK);
	free(text);
	cJSON_Delete(doc);
}

START_TEST(run_then_compare)
{
	ck_assert_int_eq(sh("$MB peak " TINY " --out base.json"), 0);
	ck_assert_int_eq(sh("$MB compare base.json base.json"), 0);
	ck_assert_ptr_nonnull(strstr(out, "SAME"));
	slow_down("base.json", "quiet.json", 1.0);
	slow_down("base.json", "slow.json", 1.2);
	ck_assert_int_eq(sh("$MB compare quiet.json slow.json"), 1);
	ck_assert_ptr_nonnull(strstr(out, "SLOWER"));
	ck_assert_int_eq(sh("$MB compare slow.json quiet.json"), 0);
	ck_assert_ptr_nonnull(strstr(out, "FASTER"));
	ck_assert_int_eq(sh("echo '{\"schema\": ' > broken.json; $MB compare base.json broken.json"), 2);
	ck_assert_ptr_nonnull(strstr(out, "moebench: error: "));
	ck_assert_int_eq(sh("$MB compare base.json nowhere.json"), 2);
}
END_TEST

START_TEST(gemm_on_cpu_checks_and_summarizes)
{
	/* K = 200 is not a multiple of 128: the CPU path handles the partial tiles. */
	ck_assert_int_eq(sh("$MB gemm " TINY_RUN " --shapes 64x96x256,33x40x200 --out g.json"), 0);
	ck_assert_ptr_nonnull(strstr(out, "explicit/M33_N40_K200/fp8-block/cpu"));
	ck_assert_ptr_nonnull(strstr(out, "layer explicit ("));
	ck_assert_ptr_nonnull(strstr(out, "vs bf16/cpu"));
	ck_assert_int_eq(sh("python3 -c \"import json; d=json.load(open('g.json')); "
			    "r=[x for x in d['records'] if x['benchmark']=='gemm']; "
			    "print(len(r), all(x['check']['status']=='pass' for x in r), "
			    "r[-1]['errors']['quantization']['mean'] > 1e-3)\""), 0);
	ck_assert_str_eq(out, "6 True True\n");
	/* --pad: zero-padded to 128 multiples, checked on the logical 33x40 region. */
	ck_assert_int_eq(sh("$MB gemm " TINY_RUN " --shapes 33x40x200 --pad 128 --dtype fp8-block --out pad.json"), 0);
	ck_assert_int_eq(sh("python3 -c \"import json; r=json.load(open('pad.json'))['records'][0]; "
			    "print(r['params']['padded_to'], r['params']['m'], r['check']['status'])\""), 0);
	ck_assert_str_eq(out, "128x128x256 33 pass\n");
	/* --grouped: the routed experts as one grouped GEMM over 4 local experts. */
	ck_assert_int_eq(sh("$MB gemm " TINY_RUN " --shapes v3-tiny:tokens=256 --layer moe --pass fwd "
			    "--dtype fp8-block --grouped 4 --out grp.json"), 0);
	ck_assert_ptr_nonnull(strstr(out, "moe.grouped/moe.expert.fc1/fwd/G4_M64_N256_K256/fp8-block/cpu"));
	ck_assert_ptr_nonnull(strstr(out, "layer moe.grouped ("));
	ck_assert_int_eq(sh("python3 -c \"import json; r=[x for x in json.load(open('grp.json'))['records'] "
			    "if x['params'].get('layer')=='moe.grouped']; print(len(r), "
			    "all(x['check']['status']=='pass' for x in r), r[0]['params']['count'])\""), 0);
	ck_assert_str_eq(out, "2 True 2\n");
	ck_assert_int_eq(sh("$MB gemm " TINY_RUN " --shapes v3-tiny:tokens=128 --pass fwd --dtype fp8-block --out p.json"), 0);
	ck_assert_ptr_nonnull(strstr(out, "layer moe (v3-tiny:tokens=128"));
	ck_assert_ptr_nonnull(strstr(out, "moe/moe.expert.fc1/fwd"));
}
END_TEST

START_TEST(gemm_accum_study_on_cpu)
{
	/* The emulated accumulator: the error grows with K without promotion, stays flat
	 * with it; the table is on stdout in the text format, and JSON stays clean. */
	ck_assert_int_eq(sh("$MB gemm " TINY_RUN " --accum-study --out a.json"), 0);
	ck_assert_ptr_nonnull(strstr(out, "FP8 accumulation study"));
	ck_assert_ptr_nonnull(strstr(out, "  16384 "));
	ck_assert_int_eq(sh("$MB gemm " TINY_RUN " --accum-study --out b.json --format json | python3 -c "
			    "\"import json,sys; d=json.load(sys.stdin); r=[x for x in d['records'] "
			    "if x['name'].startswith('accum/')]; print(len(r) >= 14)\""), 0);
	ck_assert_str_eq(out, "True\n");
	expect_usage_error("gemm --backend cpu --accum-study --accum-dist cauchy", "cauchy");
}
END_TEST

START_TEST(formats_on_stdout)
{
	ck_assert_int_eq(sh("$MB peak " TINY " --out f.json --format csv"), 0);
	ck_assert_msg(out[0] == '#', "csv must start with provenance: %s", out);
	ck_assert_int_eq(sh("$MB peak " TINY " --out g.json --format gbench | python3 -c "
			    "'import json,sys; d=json.load(sys.stdin); print(d[\"benchmarks\"][0][\"time_unit\"])'"), 0);
	ck_assert_str_eq(out, "ns\n");
	ck_assert_int_eq(sh("$MB peak " TINY " --out b.json --format bmf | python3 -c "
			    "'import json,sys; d=json.load(sys.stdin); print(len(d))'"), 0);
	ck_assert_str_eq(out, "4\n");
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *bad = tcase_create("bad_input");
	tcase_add_checked_fixture(bad, cli_setup, cli_teardown);
	tcase_add_test(bad, bad_input_exits_2);
	tcase_add_test(bad, cuda_without_device_is_a_user_error);
	tcase_add_test(bad, existing_out_is_kept);
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, cli_setup, cli_teardown);
	tcase_set_timeout(core, 120);
	tcase_add_test(core, help_and_version);
	tcase_add_test(core, run_then_compare);
	tcase_add_test(core, formats_on_stdout);
	tcase_add_test(core, gemm_on_cpu_checks_and_summarizes);
	tcase_add_test(core, gemm_accum_study_on_cpu);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, core);
	return s;
}

MB_CHECK_MAIN(cli_suite)
