/*
 * test_cli_a2a.c - `moebench a2a` as a user meets it: dispatch/combine on one rank and,
 * in MPI builds, under mpirun -np 2 and 4 (one result file from rank 0, the slowest
 * rank's time, busbw = algbw x (n-1)/n, #wrong 0, two hops when ranks share nodes); the
 * permutation kernels timed alone (records checked, bytes by the rule, GB/s against
 * --measured-peak's copy); the collective mode's nccl-tests columns and sizes;
 * --print-layout against a hand-worked layout; the busbw figure (plots/a2a_busbw.gp);
 * bad input (an impossible layout under mpirun included, a bad --measured-peak file)
 * exiting 2 with one "moebench: error:" line, a hint, and no file.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "check_main.h"
#include "cli_harness.h"

#define FAST "--backend cpu --iters 2 --warmup 0 --min-time 0 --quiet"
#define SMALL "--tokens 64 --hidden 256 --experts 16 --topk 4 --groups 4 --topk-groups 2"
#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " \
	"OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe"
#define PY "python3 -c '"

/* Prints, per phase record (not the kernels'): name, check status, algbw > 0, busbw / algbw (rounded), and the
 * world size; then the summary's #wrong line. */
#define SHOW_MOE PY "import json; d=json.load(open(\"r.json\")); n=d[\"context\"][\"world_size\"]\n" \
	"for r in d[\"records\"]:\n" \
	"  if r[\"name\"].startswith(\"moe/kernel/\"): continue\n" \
	"  m=r[\"metrics\"]; print(r[\"name\"].split(\"/\")[1], r[\"check\"][\"status\"], " \
	"m[\"algbw_GBps\"]>0, round(m[\"busbw_GBps\"]/m[\"algbw_GBps\"],6), n)\n" \
	"print([l for l in d[\"summary\"][\"a2a_moe\"][\"lines\"] if \"#wrong\" in l][0][:14])'"

/* need_mpi says whether this build runs the multi-rank cases (and fails without mpirun). */
static int need_mpi(void)
{
	if (!MOEBENCH_HAVE_MPI)
		return 0;
	ck_assert_msg(sh("command -v mpirun") == 0, "mpirun not on PATH: install openmpi-bin");
	return 1;
}

START_TEST(one_rank_dispatch_combine)
{
	int st = sh("$MB a2a " FAST " " SMALL " --max-nodes 0 --out r.json");
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	ck_assert_int_eq(sh(SHOW_MOE), 0);
	ck_assert_str_eq(out, "layout pass True 0.0 1\ndispatch pass True 0.0 1\n"
			      "combine pass True 0.0 1\na2a moe #wrong\n");
	ck_assert_int_eq(sh("grep -c '#wrong 0 ' r.json"), 0);
}
END_TEST

/* Prints, per kernel record: kernel, payload, check status, gbps > 0, whether the
 * bytes follow the rule from the shapes, pct_measured_peak = 100 gbps / measured copy
 * (or None); then the summary's kernel line up to its figures. */
#define SHOW_KERNELS PY "import json; d=json.load(open(\"r.json\"))\n" \
	"s=d[\"summary\"][\"a2a_moe\"]; w=s[\"kernels_GBps\"].get(\"measured_copy\")\n" \
	"for r in d[\"records\"]:\n" \
	"  n=r[\"name\"].split(\"/\"); p=r[\"params\"]; m=r[\"metrics\"]\n" \
	"  if n[1] != \"kernel\": continue\n" \
	"  L=p[\"logical_row_bytes\"]; o=p[\"output_rows\"]; e=p[\"expert_rows\"]; " \
	"h=2*p[\"hidden\"]; k=p[\"topk\"]\n" \
	"  b={\"gather\": o*(2*p[\"row_bytes\"]+4), \"arrange\": e*L+o*(L+4), " \
	"\"reduce\": e*h+o*(h+8*k)}[n[2]]\n" \
	"  pm=m.get(\"pct_measured_peak\"); pm=None if pm is None else abs(pm-100*m[\"gbps\"]/w)<1e-6*pm\n" \
	"  print(n[2], n[3], r[\"check\"][\"status\"], m[\"gbps\"]>0, p[\"bytes_per_rep\"]==b, pm)\n" \
	"print([l for l in s[\"lines\"] if \"kernels\" in l][0][:24])'"

/* 2 ranks on one node (one hop), 4 ranks two per node with FP8 (two hops) and BF16
 * with Zipf skew; busbw is algbw x (n-1)/n. */
START_TEST(multi_rank_dispatch_combine)
{
	static const char *const runs[] = {
		"-np 2 %s a2a " FAST " " SMALL " --dtype bf16",
		"-np 4 %s a2a " FAST " " SMALL " --dtype fp8 --ranks-per-node 2 --max-nodes 1",
		"-np 4 %s a2a " FAST " " SMALL " --dtype bf16 --skew zipf:1.2 --ranks-per-node 2",
	};
	static const char *const want[] = {
		"layout pass True 0.5 2\ndispatch pass True 0.5 2\ncombine pass True 0.5 2\n",
		"layout pass True 0.75 4\ndispatch pass True 0.75 4\ncombine pass True 0.75 4\n",
		"layout pass True 0.75 4\ndispatch pass True 0.75 4\ncombine pass True 0.75 4\n",
	};
	static const int np[] = { 2, 4, 4 };
	char line[512], expect[512];
	if (!need_mpi())
		return;
	snprintf(line, sizeof(line), MPIRUN " %s --out r.json", runs[_i]);
	int st = sh(line, "$MB");
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	ck_assert_int_eq(sh("ls *.json | wc -l"), 0);
	ck_assert_str_eq(out, "1\n");
	ck_assert_int_eq(sh(SHOW_MOE), 0);
	snprintf(expect, sizeof(expect), "%sa2a moe #wrong\n", want[_i]);
	ck_assert_str_eq(out, expect);
	ck_assert_int_eq(sh("grep -c 'a2a moe #wrong 0 (' r.json; grep -c two-hop r.json"), _i == 0);
	ck_assert_str_eq(out, _i == 0 ? "1\n0\n" : "1\n1\n");
	/* the loads: every token's 4 copies counted once, per expert and per rank */
	ck_assert_int_eq(sh(PY "import json; s=json.load(open(\"r.json\"))[\"summary\"][\"a2a_moe\"]; "
			    "print(len(s[\"tokens_per_expert\"]), sum(s[\"tokens_per_expert\"]), "
			    "sum(s[\"tokens_per_rank\"]), len(s[\"tokens_per_rank\"]))'"), 0);
	snprintf(expect, sizeof(expect), "16 %d %d %d\n", 64 * 4 * np[_i], 64 * 4 * np[_i], np[_i]);
	ck_assert_str_eq(out, expect);
}
END_TEST

/* The permutation kernels timed alone on one rank, checked, for both payloads; on
 * one rank each token sends one copy: gather moves exactly T rows. */
START_TEST(kernel_cases)
{
	static const char *const dtype[] = { "fp8", "bf16" };
	char want[256];
	int st = sh("$MB a2a " FAST " " SMALL " --dtype %s --out r.json", dtype[_i]);
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	ck_assert_int_eq(sh(SHOW_KERNELS), 0);
	snprintf(want, sizeof(want), "gather %s pass True True None\narrange %s pass True True None\n"
		 "reduce bf16 pass True True None\na2a moe kernels: gather \n", dtype[_i], dtype[_i]);
	ck_assert_str_eq(out, want);
	/* FP8 rows at H 256: 256 codes + 2 scales x 4 = 264, padded to 272 bytes */
	ck_assert_int_eq(sh(PY "import json; d=json.load(open(\"r.json\")); print([r[\"params\"]"
			    "[\"bytes_per_rep\"] for r in d[\"records\"] if \"/gather/\" in r[\"name\"]])'"), 0);
	ck_assert_str_eq(out, _i == 0 ? "[35072]\n" : "[65792]\n");
}
END_TEST

/* --measured-peak with a real `moebench peak` file: pct_measured_peak against its
 * stream_copy, and the copy figure on the kernel line. */
START_TEST(kernel_measured_peak)
{
	int st = sh("$MB peak --backend cpu --size 256 --iters 2 --min-time 0 --warmup 0 --quiet "
		    "--out p.json && $MB a2a " FAST " " SMALL " --measured-peak p.json --out r.json");
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	ck_assert_int_eq(sh(SHOW_KERNELS), 0);
	ck_assert_str_eq(out, "gather fp8 pass True True True\narrange fp8 pass True True True\n"
			      "reduce bf16 pass True True True\na2a moe kernels: gather \n");
	ck_assert_int_eq(sh("grep -c 'GB/s (measured copy [0-9.]* GB/s)' r.json"), 0);
	ck_assert_str_eq(out, "1\n");
}
END_TEST

/* nccl-tests' columns, the -b -e -f sizes, #wrong 0, and busbw = algbw x factor. */
START_TEST(collective_columns)
{
	static const char *const coll[] = { "alltoall", "allreduce", "allgather", "reducescatter" };
	static const double factor4[] = { 0.75, 1.5, 0.75, 0.75 };
	if (!need_mpi())
		return;
	int st = sh(MPIRUN " -np 4 $MB a2a " FAST " --collective %s -b 1K -e 64K -f 4 --out c.json",
		    coll[_i]);
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	ck_assert_msg(strstr(out, "     size(B)        count      type  redop  root    time(us) "
			      "algbw(GB/s) busbw(GB/s)  #wrong"), "%s", out);
	ck_assert_int_eq(sh(PY "import json; d=json.load(open(\"c.json\")); "
			    "print([r[\"size_bytes\"] for r in d[\"summary\"][\"a2a\"][\"rows\"]], "
			    "sum(r[\"wrong\"] for r in d[\"summary\"][\"a2a\"][\"rows\"]), "
			    "set(round(r[\"metrics\"][\"busbw_GBps\"]/r[\"metrics\"][\"algbw_GBps\"], 6) "
			    "for r in d[\"records\"]))'"), 0);
	char want[128];
	snprintf(want, sizeof(want), "[1024, 4096, 16384, 65536] 0 {%g}\n", factor4[_i]);
	ck_assert_str_eq(out, want);
}
END_TEST

/* The 16-rank example of test_layout.c, printed: TP 2, PP 2, EP 4, 8 ranks per node. */
START_TEST(print_layout)
{
	ck_assert_int_eq(sh("$MB a2a --print-layout --world 16 --tp 2 --pp 2 --ep 4 "
			    "--ranks-per-node 8 --quiet"), 0);
	ck_assert_msg(strstr(out, "world 16 = tp 2 x cp 1 x dp 4 x pp 2; experts: etp 1 x ep 4 x "
			      "edp 2 x pp 2"), "%s", out);
	ck_assert_msg(strstr(out, "    13     1     5   1   0   2   1    0    1    1  tp[12-13] "
			      "cp[13] dp[9,11..15] pp[5,13] etp[13] ep[12-15] edp[9,13]"), "%s", out);
	ck_assert_int_eq(sh("ls results 2>/dev/null | wc -l"), 0);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

/* The busbw figure from two exported sweeps (one rank: no launcher needed). */
START_TEST(busbw_plot)
{
	ck_assert_int_eq(sh("$MB a2a " FAST " --collective allreduce -b 1K -e 64K -f 4 --format csv "
			    "--out r.json > r.csv && $MB a2a " FAST " --collective allgather -b 1K "
			    "-e 64K -f 4 --format csv --out g.json > g.csv"), 0);
	ck_assert_int_eq(sh("grep -c '^a2a,' r.csv"), 0);
	ck_assert_str_eq(out, "4\n");
	int st = sh("gnuplot -c $SRC/plots/a2a_busbw.gp busbw r.csv g.csv && test -s busbw.png");
	ck_assert_msg(st == 0, "gnuplot (gnuplot-nox, which make deps installs): %s", out);
}
END_TEST

START_TEST(bad_input)
{
	expect_error("$MB a2a " FAST " --skew zipf:x", "--skew");
	expect_error("$MB a2a " FAST " --collective ring", "--collective");
	expect_error("$MB a2a " FAST " --collective alltoall -b 1M -e 1K", "-b is larger than -e");
	expect_error("$MB a2a --print-layout --world 12 --ep 5", "--ep 5 x --pp 1 = 5 does not "
		     "divide the 12 ranks");
	expect_error("$MB a2a " FAST " --experts 250", "250");
	expect_error("$MB a2a " FAST " --collective alltoall -b 1K -e 1G -f 1.01", "size sweep of");
	ck_assert_int_eq(sh("ls | wc -l"), 0);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

/* --measured-peak: a file that is no result, and a result without a copy record. */
START_TEST(bad_measured_peak)
{
	ck_assert_int_eq(sh("printf '{\"records\": [' > bad.json"), 0);
	expect_error("$MB a2a " FAST " " SMALL " --measured-peak bad.json", "--measured-peak");
	expect_error("$MB a2a " FAST " " SMALL " --measured-peak nothere.json", "nothere.json");
	ck_assert_int_eq(sh("$MB a2a " FAST " " SMALL " --out a.json"), 0);
	expect_error("$MB a2a " FAST " " SMALL " --measured-peak a.json --out b.json",
		     "no stream_copy record");
	ck_assert_int_eq(sh("ls"), 0);
	ck_assert_str_eq(out, "a.json\nbad.json\n");
}
END_TEST

/* Under mpirun, bad input is reported once (rank 0), not once per rank. */
START_TEST(bad_layout_under_mpirun)
{
	if (!need_mpi())
		return;
	expect_error(MPIRUN " -np 4 $MB a2a " FAST " --ep 3", "--ep 3 x --pp 1 = 3 does not "
		     "divide the 4 ranks");
	expect_error(MPIRUN " -np 2 $MB a2a " FAST " --experts 250", "250");
	expect_error(MPIRUN " -np 2 $MB a2a " FAST " --collective alltoall -b 1K -e 1G -f 1.01",
		     "size sweep of");
	/* EP group {0,1,2} over nodes of two: two ranks on one node, one on the other. */
	expect_error(MPIRUN " -np 6 $MB a2a " FAST " --tokens 64 --hidden 256 --topk 4 --groups 4 "
		     "--topk-groups 2 --experts 48 --ep 3 "
		     "--ranks-per-node 2", "the EP group of rank 0 has unequal numbers of ranks");
}
END_TEST

static Suite *cli_a2a_suite(void)
{
	Suite *s = suite_create("cli_a2a");
	TCase *run = tcase_create("run");
	tcase_add_checked_fixture(run, cli_setup, cli_teardown);
	tcase_set_timeout(run, 120);
	tcase_add_test(run, one_rank_dispatch_combine);
	tcase_add_loop_test(run, kernel_cases, 0, 2);
	tcase_add_test(run, kernel_measured_peak);
	tcase_add_loop_test(run, multi_rank_dispatch_combine, 0, 3);
	tcase_add_loop_test(run, collective_columns, 0, 4);
	tcase_add_test(run, print_layout);
	tcase_add_test(run, busbw_plot);
	suite_add_tcase(s, run);
	TCase *bad = tcase_create("bad_input");
	tcase_add_checked_fixture(bad, cli_setup, cli_teardown);
	tcase_set_timeout(bad, 60);
	tcase_add_test(bad, bad_input);
	tcase_add_test(bad, bad_measured_peak);
	tcase_add_test(bad, bad_layout_under_mpirun);
	suite_add_tcase(s, bad);
	return s;
}

MB_CHECK_MAIN(cli_a2a_suite)
