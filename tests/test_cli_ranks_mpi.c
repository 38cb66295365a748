/*
 * test_cli_ranks_mpi.c - moebench under mpirun (--oversubscribe) as a user meets it.
 * ranks: ranks started with different options are refused at start-up with one error
 * naming them (exit 2); notes come from rank 0 alone; a rank that stops answering is
 * named by the others (nonblocking waits), or the wait ends with the watchdog's line
 * (blocking calls). collective: `a2a --collective` on 3 ranks (no expert layout),
 * blocking calls by default and --nonblocking on request, nccl-tests' -n -w -c;
 * dispatch/combine print both DeepEP bandwidth conventions. Built only with MPI.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"

#define FAST "--backend cpu --iters 2 --warmup 0 --min-time 0"
#define SMALL "--tokens 64 --hidden 256 --experts 16 --topk 4 --groups 4 --topk-groups 2"
#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " \
	"OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe"
#define PY "python3 -c 'import json; d=json.load(open(\"r.json\")); "

/* count returns how many times text occurs in the last output. */
static int count(const char *text)
{
	int n = 0;
	for (const char *p = strstr(out, text); p; p = strstr(p + 1, text))
		n++;
	return n;
}

START_TEST(different_options_are_one_error_naming_the_rank)
{
	expect_error(MPIRUN " -np 2 $MB a2a " FAST " " SMALL " --out r.json : -np 1 $MB a2a "
		     FAST " " SMALL " --hidden 512 --out r.json", "rank 2 differs from rank 0");
	ck_assert_int_eq(sh("test -e r.json"), 1);
}
END_TEST

START_TEST(notes_come_from_rank_0_alone)
{
	ck_assert_int_eq(sh(MPIRUN " -np 3 $MB a2a " FAST " --collective allreduce -b 8 -e 64 "
			    "-f 8 --out r.json"), 0);
	ck_assert_int_eq(count("moebench: a2a: allreduce/float/sum/8B ..."), 1);
	ck_assert_int_eq(count("moebench: result written to"), 1);
	ck_assert_int_eq(count("     size(B)        count"), 1);
}
END_TEST

START_TEST(a_silent_rank_is_named)
{
	/* nonblocking collective, and dispatch/combine's alltoallv: the others name it */
	int st = sh("MOEBENCH_TEST_HANG_RANK=1 " MPIRUN " -np 3 $MB a2a " FAST " --collective "
		    "alltoall -b 1K -e 1K --nonblocking --timeout 2 --out r.json");
	ck_assert_msg(st != 0 && strstr(out, "rank 1 (world rank 1, pid "), "exit %d: %s", st, out);
	ck_assert_int_eq(count("moebench: error:"), 1);
	st = sh("MOEBENCH_TEST_HANG_RANK=2 " MPIRUN " -np 4 $MB a2a " FAST " " SMALL
		" --ranks-per-node 2 --timeout 2 --out r.json");
	ck_assert_msg(st != 0 && strstr(out, "rank 2 (world rank 2, pid "), "exit %d: %s", st, out);
	ck_assert_int_eq(count("moebench: error:"), 1);
}
END_TEST

START_TEST(a_hang_in_a_blocking_call_ends_with_the_watchdog)
{
	int st = sh("MOEBENCH_TEST_HANG_RANK=1 " MPIRUN " -np 2 $MB a2a " FAST " --collective "
		    "allreduce -b 1K -e 1K --timeout 2 --out r.json");
	ck_assert_msg(st != 0 && strstr(out, "rank 0: comm allreduce on world: rank 0 of 2: "
					"blocked for more than 2 s in a blocking call"),
		      "exit %d: %s", st, out);
}
END_TEST

START_TEST(three_ranks_run_a_plain_collective)
{
	int st = sh(MPIRUN " -np 3 $MB a2a " FAST " --quiet --collective alltoall -b 1K -e 4K "
		    "-f 4 --out r.json");
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	ck_assert_int_eq(sh(PY "print([(r[\"size_bytes\"], r[\"count\"], r[\"wrong\"]) for r in "
			    "d[\"summary\"][\"a2a\"][\"rows\"]])'"), 0);
	/* 256 and 1024 floats over 3 ranks: 85 and 341 per peer, rounded down to whole
	 * 16-byte chunks (4 floats), 84 and 340 */
	ck_assert_str_eq(out, "[(1008, 84, 0), (4080, 340, 0)]\n");
}
END_TEST

START_TEST(blocking_by_default_nonblocking_on_request)
{
	ck_assert_int_eq(sh(MPIRUN " -np 2 $MB a2a " FAST " --quiet --collective allgather "
			    "-b 64 -e 64 --out r.json"), 0);
	ck_assert_int_eq(sh(PY "print(d[\"records\"][0][\"params\"][\"calls\"])'"), 0);
	ck_assert_str_eq(out, "blocking\n");
	ck_assert_int_eq(sh(MPIRUN " -np 2 $MB a2a " FAST " --quiet --collective allgather "
			    "-b 64 -e 64 --nonblocking --out r.json --force"), 0);
	ck_assert_int_eq(sh(PY "print(d[\"records\"][0][\"params\"][\"calls\"])'"), 0);
	ck_assert_str_eq(out, "nonblocking\n");
}
END_TEST

START_TEST(nccl_tests_flags_n_w_c)
{
	ck_assert_int_eq(sh(MPIRUN " -np 2 $MB a2a " FAST " --collective reducescatter -b 256 "
			    "-e 256 -n 7 -w 3 -c 0 --out r.json"), 0);
	ck_assert_msg(strstr(out, "-c 0: every size is still checked once"), "%s", out);
	ck_assert_int_eq(sh(PY "r=d[\"records\"][0]; print(r[\"metrics\"][\"time_s\"][\"n\"], "
			    "r[\"check\"][\"status\"])'"), 0);
	ck_assert_str_eq(out, "7 pass\n");
}
END_TEST

START_TEST(dispatch_combine_print_both_deepep_conventions)
{
	ck_assert_int_eq(sh(MPIRUN " -np 4 $MB a2a " FAST " --quiet " SMALL " --ranks-per-node 2 "
			    "--out r.json"), 0);
	ck_assert_int_eq(count("per_token_rank_copy_GBps"), 2);
	ck_assert_int_eq(count("(DeepEP RDMA bottleneck)"), 2);
	/* two nodes of two ranks: fewer (token, node) copies than (token, rank) copies */
	ck_assert_int_eq(sh(PY "m=[r[\"metrics\"] for r in d[\"records\"] if "
			    "r[\"name\"].startswith(\"moe/dispatch\")][0]; "
			    "print(0 < m[\"rdma_bottleneck_GBps\"] < m[\"logical_GBps\"])'"), 0);
	ck_assert_str_eq(out, "True\n");
}
END_TEST

static Suite *ranks_suite(void)
{
	Suite *s = suite_create("cli_ranks_mpi");
	TCase *ranks = tcase_create("ranks");
	TCase *coll = tcase_create("collective");

	tcase_add_checked_fixture(ranks, cli_setup, cli_teardown);
	tcase_add_checked_fixture(coll, cli_setup, cli_teardown);
	tcase_add_test(ranks, different_options_are_one_error_naming_the_rank);
	tcase_add_test(ranks, notes_come_from_rank_0_alone);
	tcase_add_test(ranks, a_silent_rank_is_named);
	tcase_add_test(ranks, a_hang_in_a_blocking_call_ends_with_the_watchdog);
	tcase_add_test(coll, three_ranks_run_a_plain_collective);
	tcase_add_test(coll, blocking_by_default_nonblocking_on_request);
	tcase_add_test(coll, nccl_tests_flags_n_w_c);
	tcase_add_test(coll, dispatch_combine_print_both_deepep_conventions);
	tcase_set_timeout(ranks, 120);
	tcase_set_timeout(coll, 120);
	suite_add_tcase(s, ranks);
	suite_add_tcase(s, coll);
	return s;
}

MB_CHECK_MAIN(ranks_suite)
