/*
 * test_cli_io.c - the real program under the rules of issue 12, items 1, 2 and 8:
 * writes that lose nothing (never replacing a non-regular file, --force or not; every
 * output path checked before work; default names unique per run; every output under
 * the never-overwrite rule), input validation as a layer (one numeric parser, empty
 * values, repeated options, options of another mode, unknown counters, input files
 * that are not regular files), and the smaller things (README's mpirun lines, the
 * claims price override, pipeline --execute's result document, --format/--json, the
 * progress line).
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build_info.h"
#include "check_main.h"
#include "cli_harness.h"
#include "progress.h"
#include "timer.h"

#define TINY "--backend cpu --size 64 --stream 4K --iters 2 --warmup 0 --min-time 0 --quiet"
#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " \
	"OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np 2 "

/* count_files returns how many files `find` sees under dir/sub. */
static int count_files(const char *sub)
{
	ck_assert_int_eq(sh("find %s -type f 2>/dev/null | wc -l", sub), 0);
	return atoi(out);
}

/* ---- item 1: writes that lose nothing ---- */

START_TEST(non_regular_never_replaced)
{
	/* a FIFO with --force: before, rename() put a regular file in its place */
	ck_assert_int_eq(sh("mkfifo f && ln -s kept.json link.json && echo '{}' > kept.json"), 0);
	expect_error("$MB peak " TINY " --out f --force", "a FIFO");
	ck_assert_int_eq(sh("test -p f"), 0);
	expect_error("$MB peak " TINY " --out link.json --force", "symbolic link");
	ck_assert_int_eq(sh("test -L link.json && cat kept.json"), 0);
	ck_assert_str_eq(out, "{}\n");
	/* /dev/null: the hint no longer leads to --force, which would replace the device */
	expect_error("$MB peak " TINY " --out /dev/null", "character device");
	ck_assert_ptr_null(strstr(out, "pass --force"));
	ck_assert_int_eq(sh("test -c /dev/null"), 0);
	expect_error("$MB pipeline --schedule 1f1b --timeline f --force", "a FIFO");
	ck_assert_int_eq(sh("test -p f"), 0);
}
END_TEST

START_TEST(bad_out_path_refused_before_work)
{
	ck_assert_int_eq(sh("touch plain"), 0);
	/* before: the cases ran, then the write failed with exit 1 */
	expect_error("$MB peak --backend cpu --size 64 --stream 4K --iters 2 --warmup 0 "
		     "--min-time 0 --out plain/r.json", "Not a directory");
	ck_assert_ptr_null(strstr(out, "peak: cpu/"));
	expect_error("$MB pipeline --schedule 1f1b --timeline plain/t.csv", "--timeline");
	expect_error("$MB gemm --backend cpu --accum-study --accum-csv plain/a.csv", "--accum-csv");
	ck_assert_int_eq(count_files("."), 1);
}
END_TEST

START_TEST(default_names_unique_per_run)
{
	/* two runs started together in one folder: before, both picked the same
	 * one-second name and one lost its result */
	ck_assert_int_eq(sh("($MB peak " TINY " & $MB peak " TINY " & wait) > /dev/null && "
			    "ls results/runs/local | wc -l"), 0);
	ck_assert_str_eq(out, "2\n");
	ck_assert_int_eq(sh("ls results/runs/local | grep -Ec "
			    "'^[0-9]{8}-[0-9]{6}\\.[0-9]{6}Z-[^-]+-[0-9]+-peak\\.json$'"), 0);
	ck_assert_str_eq(out, "2\n");
}
END_TEST

START_TEST(every_output_never_overwritten)
{
	const char *twice[] = {
		"$MB pipeline --schedule 1f1b --timeline t.csv",
		"$MB pipeline --schedule all --sweep 8,16 --out s.csv",
		"$MB peak " TINY " --out r.json",
	};
	const char *file[] = { "t.csv", "s.csv", "r.json" };
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(sh("%s > /dev/null", twice[i]) == 0, "%s: %s", twice[i], out);
		ck_assert_int_eq(sh("md5sum %s > before", file[i]), 0);
		/* before: --timeline and --sweep --out replaced the file, exit 0 */
		expect_error(twice[i], "exists");
		ck_assert_int_eq(sh("md5sum %s | cmp - before", file[i]), 0);
		ck_assert_msg(sh("%s --force > /dev/null", twice[i]) == 0, "%s --force: %s",
			      twice[i], out);
	}
	if (sh("command -v gnuplot") != 0)
		return;
	ck_assert_int_eq(sh("$MB claims --plot figs > /dev/null"), 0);
	expect_error("$MB claims --plot figs", "exists");
	ck_assert_int_eq(sh("$MB claims --plot figs --force > /dev/null"), 0);
	ck_assert_int_eq(sh("ls -a figs | tr '\\n' ' '"), 0);
	ck_assert_str_eq(out, ". .. claims.csv claims.pdf claims.png ");
}
END_TEST

/* ---- item 2: input validation as a layer ---- */

START_TEST(numbers_never_wrap)
{
	/* before: 4294967297 wrapped to 1 and the command ran, exit 0 */
	expect_error("$MB model --mtp 4294967297", "out of range");
	expect_error("$MB model --seq 9223372036854775808", "--seq");
	expect_error("$MB peak --iters 2147483648", "--iters");
	expect_error("$MB peak --seed 18446744073709551616", "--seed");
	expect_error("$MB peak --seed -1", "--seed");
	expect_error("$MB peak --size ' 64'", "--size");
	expect_error("$MB peak --size 1.3K", "--size");
	expect_error("$MB pipeline --pp 0x", "--pp");
	ck_assert_int_eq(sh("$MB model --preset v3-tiny --seq 1K --format json | grep '\"seq\"'"), 0);
	ck_assert_ptr_nonnull(strstr(out, "1024"));
	ck_assert_int_eq(sh("$MB pipeline --schedule 1f1b --pp 4 --microbatches 0x10 --format json "
			    "| grep -c '\"microbatches\":\t16'"), 0);
}
END_TEST

START_TEST(empty_values_and_repeats)
{
	/* before: --plot '' wrote into /, --dtype '' ran zero cases and passed */
	expect_error("$MB claims --plot ''", "--plot: empty value");
	expect_error("$MB gemm --backend cpu --dtype ''", "--dtype: empty value");
	expect_error("$MB peak --out ''", "--out: empty value");
	expect_error("$MB peak --iters 3 --iters 4", "--iters: given twice");
	expect_error("$MB peak --json --format csv", "given twice");
	ck_assert_int_eq(sh("$MB peak --help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "at most once"));
	ck_assert_int_eq(count_files("."), 0);
}
END_TEST

START_TEST(options_of_another_mode)
{
	expect_error("$MB gemm --backend cpu --accum-csv a.csv", "applies only with --accum-study");
	expect_error("$MB pipeline --schedule 1f1b --hidden 512", "applies only with --execute");
	expect_error("$MB pipeline --schedule 1f1b --execute --f 2", "--f applies only to the simulation");
	expect_error("$MB claims --force", "applies only with --plot");
	expect_error("$MB a2a --backend cpu -b 64", "-b applies only with --collective");
	expect_error("$MB a2a --backend cpu --world 8", "--world applies only with --print-layout");
	ck_assert_int_eq(count_files("."), 0);
}
END_TEST

START_TEST(unknown_counter_named)
{
	if (!MOEBENCH_HAVE_PAPI)
		return; /* without PAPI no event can be resolved: all are kept unavailable */
	/* before: accepted, recorded as unavailable, exit 0 */
	expect_error("$MB peak " TINY " --counters PAPI_TOT_CYC,NO_SUCH_EVENT", "'NO_SUCH_EVENT'");
	ck_assert_int_eq(count_files("."), 0);
}
END_TEST

START_TEST(input_files_must_be_regular)
{
	ck_assert_int_eq(sh("mkfifo pipe"), 0);
	/* before: a FIFO blocked for ever (timeout's 124), /dev/zero read until memory ran out */
	expect_error("timeout 20 $MB model --model pipe", "a FIFO");
	expect_error("timeout 20 $MB info --hardware /dev/zero", "character device");
	expect_error("timeout 20 $MB compare pipe /dev/zero", "a FIFO");
	expect_error("timeout 20 $MB gemm --backend cpu --measured-peak pipe", "a FIFO");
	expect_error("$MB model --model .", "a directory");
	ck_assert_int_eq(sh("head -c 70000000 /dev/zero > big.json"), 0);
	expect_error("$MB model --model big.json", "limit");
}
END_TEST

START_TEST(format_is_canonical_json_an_alias)
{
	const char *cmds[] = { "model --preset v3-tiny", "claims --baseline deepseek-v3", "info",
			       "pipeline --schedule 1f1b" };
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(sh("$MB %s --format json | python3 -c 'import json,sys; json.load(sys.stdin)'",
				 cmds[i]) == 0, "%s --format json: %s", cmds[i], out);
		ck_assert_msg(sh("$MB %s --json | python3 -c 'import json,sys; json.load(sys.stdin)'",
				 cmds[i]) == 0, "%s --json: %s", cmds[i], out);
	}
	expect_error("$MB model --format csv", "--format");
	ck_assert_int_eq(sh("$MB model --help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "--format text|json"));
	ck_assert_ptr_nonnull(strstr(out, "alias of --format json"));
}
END_TEST

/* list_value writes a random value for a list option: items from words and small
 * numbers, joined by separators that are sometimes wrong. */
static void list_value(unsigned *seed, const char *const *words, int n_words, char *buf,
		       size_t len)
{
	static const char *const seps[] = { ",", ",", ",", ",,", "x", "=", ":", " ", "" };
	size_t used = 0;
	int items = rand_r(seed) % 4;
	buf[0] = '\0';
	for (int k = 0; k <= items && used + 40 < len; k++) {
		int r = rand_r(seed) % 6;
		if (r < 3)
			used += (size_t)snprintf(buf + used, len - used, "%s", words[rand_r(seed) % n_words]);
		else if (r < 5)
			used += (size_t)snprintf(buf + used, len - used, "%d", rand_r(seed) % 70 - 3);
		else
			used += (size_t)snprintf(buf + used, len - used, "%s", "4294967297");
		if (k < items)
			used += (size_t)snprintf(buf + used, len - used, "%s", seps[rand_r(seed) % 9]);
	}
}

START_TEST(fuzz_cli_lists)
{
	static const char *const layout[] = { "tp=", "pp=", "ep=", "dp=", "mb=", "tp=2", "zz=" };
	static const char *const shapes[] = { "8x8x8", "16x", "x", "v3-tiny:tokens=8", "v3-tiny:tokens=",
					      "deepseek-v3:tokens=0" };
	static const char *const dtypes[] = { "bf16", "fp8-block", "fp8-tensor", "fp4", "" };
	static const char *const events[] = { "PAPI_TOT_CYC", "perf::TASK-CLOCK", "none", "default" };
	const char *cmd[] = {
		"$MB model --preset v3-tiny --layout '%s' > /dev/null",
		"$MB pipeline --schedule 1f1b --sweep '%s' > /dev/null",
		"$MB gemm --backend cpu --shapes '%s' --dtype bf16 --iters 1 --warmup 0 --min-time 0 "
		"--quiet --out r.json --force > /dev/null",
		"$MB gemm --backend cpu --shapes 8x8x128 --dtype '%s' --iters 1 --warmup 0 "
		"--min-time 0 --quiet --out r.json --force > /dev/null",
		"$MB peak " TINY " --counters '%s' --out r.json --force > /dev/null",
	};
	const char *const *words[] = { layout, NULL, shapes, dtypes, events };
	int n_words[] = { 7, 0, 6, 5, 4 };
	unsigned seed = (unsigned)time(NULL);
	long cases = getenv("MB_FUZZ_CLI_CASES") ? atol(getenv("MB_FUZZ_CLI_CASES")) : 150;
	for (long i = 0; i < cases; i++) {
		char val[160], line[512];
		int c = (int)(i % 5);
		list_value(&seed, words[c] ? words[c] : layout + 5, words[c] ? n_words[c] : 1,
			   val, sizeof(val));
		snprintf(line, sizeof(line), cmd[c], val);
		int st = sh("{ %s; }", line);  /* stdout to /dev/null, stderr to out */
		/* a crash or a sanitizer report would exit otherwise */
		ck_assert_msg(st == 0 || st == 2, "case %ld (seed %u): '%s' exited %d: %s", i,
			      seed, line, st, out);
		if (st == 2)
			ck_assert_msg(strstr(out, "hint: "), "'%s': no hint: %s", line, out);
	}
}
END_TEST

/* ---- item 8: smaller things ---- */

START_TEST(readme_mpirun_oversubscribes)
{
	ck_assert_int_eq(sh("grep -c '^mpirun ' $SRC/README.md"), 0);
	ck_assert_int_gt(atoi(out), 0);
	/* before: four lines without it, which fail on a 2-core machine */
	ck_assert_int_eq(sh("grep '^mpirun ' $SRC/README.md | grep -vc -- --oversubscribe"), 1);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

START_TEST(claims_price_override)
{
	/* the source's price wins by default ... */
	ck_assert_int_eq(sh("$MB claims --baseline deepseek-v3 2>&1 | grep -c \"(the source's price)\""), 0);
	ck_assert_int_gt(atoi(out), 0);
	/* ... the option, given, wins with a note (before: no effect) */
	ck_assert_int_eq(sh("$MB claims --baseline deepseek-v3 --usd-per-gpu-hour 3 2>&1"), 0);
	ck_assert_ptr_nonnull(strstr(out, "x $3.00/GPU-hour (--usd-per-gpu-hour, over the source's $2.00)"));
	ck_assert_ptr_nonnull(strstr(out, "replaces the source's $2/GPU-hour"));
	ck_assert_ptr_null(strstr(out, "(the source's price)"));
	/* a what-if, not a finding: no "inconsistent" verdict on the cost */
	ck_assert_int_eq(sh("$MB claims --baseline deepseek-v3 --usd-per-gpu-hour 3 2>/dev/null | "
			    "grep '^  cost_usd' | grep -c inconsistent"), 1);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

START_TEST(pipeline_execute_writes_result)
{
	if (!MOEBENCH_HAVE_MPI)
		return;
	ck_assert_int_eq(sh(MPIRUN "$MB pipeline --schedule 1f1b --pp 2 --microbatches 4 --execute "
			    "--steps 3 --out r.json --quiet > /dev/null"), 0);
	/* a moebench.result/1 document compare reads, with the step's statistics */
	ck_assert_int_eq(sh("$MB compare r.json r.json > /dev/null"), 0);
	ck_assert_int_eq(sh("python3 -c 'import json; r=json.load(open(\"r.json\"))[\"records\"][0]; "
			    "print(r[\"name\"], r[\"metrics\"][\"time_s\"][\"n\"], r[\"check\"][\"status\"], "
			    "r[\"check\"][\"samples\"])'"), 0);
	ck_assert_str_eq(out, "execute/1f1b/pp2_m4 3 pass 16\n");
	/* the default name, like every measuring command */
	ck_assert_int_eq(sh(MPIRUN "$MB pipeline --schedule 1f1b --pp 2 --microbatches 4 --execute "
			    "--steps 2 --quiet > /dev/null && ls results/runs/local | grep -c pipeline"), 0);
	ck_assert_str_eq(out, "1\n");
}
END_TEST

/* progress_line runs progress_tick with the clock started ago_s seconds back, its
 * stderr captured into out. */
static void progress_line(double ago_s, bool quiet, long done, long total, double per,
			  long left)
{
	char path[128];
	struct progress p;
	snprintf(path, sizeof(path), "%s/err.txt", dir);
	fflush(stderr);
	int saved = dup(2);
	ck_assert_ptr_nonnull(freopen(path, "w", stderr));
	progress_start(&p, "gemm", "fp8/M4096", quiet);
	p.t0 -= ago_s;
	progress_tick(&p, "timing", done, total, per, left);
	progress_tick(&p, "timing", done + 1, total, per, left - 1); /* too soon: silent */
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ck_assert_int_eq(sh("cat err.txt"), 0);
}

START_TEST(progress_with_eta)
{
	progress_line(10, false, 3, 13, 2.0, 10);
	ck_assert_str_eq(out, "moebench: gemm: fp8/M4096: timing 3 of 13 repetitions, 10 s so far, "
			 "ETA 20 s\n");
	progress_line(1, false, 3, 13, 2.0, 10);   /* the first seconds are silent */
	ck_assert_str_eq(out, "");
	progress_line(10, true, 3, 13, 2.0, 10);   /* --quiet */
	ck_assert_str_eq(out, "");
}
END_TEST

static Suite *cli_io_suite(void)
{
	Suite *s = suite_create("cli_io");
	TCase *writes = tcase_create("writes"), *valid = tcase_create("validation");
	TCase *small = tcase_create("smaller");
	TCase *all[] = { writes, valid, small };
	for (int i = 0; i < 3; i++) {
		tcase_add_checked_fixture(all[i], cli_setup, cli_teardown);
		tcase_set_timeout(all[i], 300);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_test(writes, non_regular_never_replaced);
	tcase_add_test(writes, bad_out_path_refused_before_work);
	tcase_add_test(writes, default_names_unique_per_run);
	tcase_add_test(writes, every_output_never_overwritten);
	tcase_add_test(valid, numbers_never_wrap);
	tcase_add_test(valid, empty_values_and_repeats);
	tcase_add_test(valid, options_of_another_mode);
	tcase_add_test(valid, unknown_counter_named);
	tcase_add_test(valid, input_files_must_be_regular);
	tcase_add_test(valid, format_is_canonical_json_an_alias);
	tcase_add_test(valid, fuzz_cli_lists);
	tcase_add_test(small, readme_mpirun_oversubscribes);
	tcase_add_test(small, claims_price_override);
	tcase_add_test(small, pipeline_execute_writes_result);
	tcase_add_test(small, progress_with_eta);
	return s;
}

MB_CHECK_MAIN(cli_io_suite)
