/*
 * test_ep_mpi.c - expert-parallel dispatch/combine under mpirun -np 1, 2 and 4 (built
 * only with MPI; driver: tests/mpi/ep_driver.c): BF16 and FP8 payloads, uniform and
 * Zipf-skewed routing, the single-hop and the node-limited two-hop path, each asserting
 * zero wrong rows and tokens, the conservation of expert rows, and that a corrupted
 * row is caught (so the checks can fail); and the training step's FP64 rows (ep_rows.c)
 * over one and two hops. `moebench a2a` itself, which runs
 * a2a_moe_run through the generic driver, is test_cli_a2a.c's.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
/* NOTE: this suite runs a driver, never moebench's error path: expect_error unused. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "cli_harness.h"
#pragma GCC diagnostic pop

#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " \
	"OPENBLAS_NUM_THREADS=1 " MOEBENCH_MPIEXEC " --oversubscribe"
#define TOKENS 96
#define TOPK 4

struct ep_run {
	int status;
	double wrong_layout, wrong_rows, wrong_tokens, rows, copies, remote, two_hop;
};

/* run_ep runs the driver on np ranks and parses rank 0's line. */
static struct ep_run run_ep(int np, int rpn, const char *payload, double zipf, const char *extra)
{
	struct ep_run r = { 0 };
	ck_assert_msg(MOEBENCH_MPIEXEC[0] && access(MOEBENCH_MPIEXEC, X_OK) == 0,
		      "mpirun not found ('%s'): install openmpi-bin", MOEBENCH_MPIEXEC);
	r.status = sh(MPIRUN " -np %d %s %d 256 16 %d %d %s %g %s", np, MOEBENCH_EP_DRIVER, TOKENS,
		      TOPK, rpn, payload, zipf, extra);
	const char *line = strstr(out, "ep wrong_layout");
	ck_assert_msg(line, "no result line (exit %d): %s", r.status, out);
	ck_assert_int_eq(sscanf(line, "ep wrong_layout %lf wrong_rows %lf wrong_tokens %lf rows %lf "
				"copies %lf remote %lf two_hop %lf", &r.wrong_layout, &r.wrong_rows,
				&r.wrong_tokens, &r.rows, &r.copies, &r.remote, &r.two_hop), 7);
	return r;
}

/* expect_clean runs a round trip and asserts nothing wrong, every (token, expert) pair
 * in one expert row, remote copies when there are peers, and the path taken. */
static void expect_clean(int np, int rpn, const char *payload, double zipf, int two_hop)
{
	struct ep_run r = run_ep(np, rpn, payload, zipf, "");
	double pairs = 0;
	for (int k = 0; k < np; k++)
		pairs += (double)(TOKENS + 7 * k) * TOPK;
	ck_assert_msg(r.status == 0 && r.wrong_layout == 0 && r.wrong_rows == 0 && r.wrong_tokens == 0,
		      "-np %d rpn %d %s zipf %g: exit %d: %s", np, rpn, payload, zipf, r.status, out);
	ck_assert_double_eq(r.rows, pairs);
	ck_assert(r.copies >= pairs / TOPK && r.copies <= pairs);
	ck_assert(np == 1 ? r.remote == 0 : r.remote > 0);
	ck_assert_double_eq(r.two_hop, two_hop);
}

START_TEST(one_rank_bf16_and_fp8)
{
	expect_clean(1, 1, "bf16", 0, 0);
	expect_clean(1, 1, "fp8", 1.2, 0);
}
END_TEST

START_TEST(two_ranks)
{
	expect_clean(2, 1, "bf16", 0, 0);
	expect_clean(2, 1, "fp8", 1.2, 0);
	/* NOTE: one node of two ranks: nothing to cross, so one hop. */
	expect_clean(2, 2, "bf16", 0, 0);
}
END_TEST

START_TEST(four_ranks)
{
	expect_clean(4, 1, "bf16", 1.2, 0);
	expect_clean(4, 1, "fp8", 0, 0);
}
END_TEST

START_TEST(four_ranks_two_hop)
{
	expect_clean(4, 2, "bf16", 0, 1);
	expect_clean(4, 2, "fp8", 1.2, 1);
}
END_TEST

/* The training step's FP64 rows (ep_rows.c) over one and two hops: identity experts
 * combine to x * sum(weights), the weights come back through the row tables exactly,
 * every (token, expert) pair in one row; a changed row is caught. */
START_TEST(training_rows_round_trip)
{
	struct ep_run r = run_ep(2, 1, "f64", 1.2, "");
	ck_assert_msg(r.status == 0 && r.wrong_rows == 0 && r.wrong_tokens == 0 &&
		      r.rows == (2 * TOKENS + 7) * TOPK && r.two_hop == 0, "%s", out);
	r = run_ep(4, 2, "f64", 0, "");
	ck_assert_msg(r.status == 0 && r.wrong_rows == 0 && r.wrong_tokens == 0 &&
		      r.rows == (4 * TOKENS + 42) * TOPK && r.two_hop == 1, "%s", out);
	r = run_ep(4, 2, "f64", 0, "corrupt");
	ck_assert_msg(r.status == 1 && r.wrong_tokens >= 1, "%s", out);
}
END_TEST

/* A flipped bit in one received row is counted, and the run exits 1. */
START_TEST(corrupted_row_is_caught)
{
	struct ep_run r = run_ep(2, 1, "bf16", 0, "corrupt");
	ck_assert_msg(r.status == 1 && r.wrong_rows == 1 && r.wrong_tokens >= 1, "%s", out);
	r = run_ep(4, 2, "fp8", 1.2, "corrupt");
	ck_assert_msg(r.status == 1 && r.wrong_rows == 1 && r.wrong_tokens >= 1, "%s", out);
}
END_TEST

/* A rank whose layout fails (an expert that does not exist) makes every rank fail at
 * once: the others name it, none waits for it until the communicator's timeout. */
START_TEST(failed_layout_is_shared)
{
	int st = sh(MPIRUN " -np 4 %s %d 256 16 %d 2 bf16 0 badexpert", MOEBENCH_EP_DRIVER, TOKENS,
		    TOPK);
	ck_assert_msg(st != 0, "%s", out);
	ck_assert_msg(strstr(out, "rank 3: ep layout: planning the dispatch failed"), "%s", out);
	ck_assert_msg(strstr(out, "rank 0: ep layout: rank 3 of the EP group failed"), "%s", out);
	ck_assert_msg(!strstr(out, "not complete after"), "waited for the timeout: %s", out);
}
END_TEST

static Suite *ep_mpi_suite(void)
{
	Suite *s = suite_create("ep_mpi");
	TCase *rt = tcase_create("round_trip");
	tcase_add_checked_fixture(rt, cli_setup, cli_teardown);
	tcase_set_timeout(rt, 120);
	tcase_add_test(rt, one_rank_bf16_and_fp8);
	tcase_add_test(rt, two_ranks);
	tcase_add_test(rt, four_ranks);
	tcase_add_test(rt, four_ranks_two_hop);
	tcase_add_test(rt, training_rows_round_trip);
	TCase *neg = tcase_create("detection");
	tcase_add_checked_fixture(neg, cli_setup, cli_teardown);
	tcase_set_timeout(neg, 120);
	tcase_add_test(neg, corrupted_row_is_caught);
	tcase_add_test(neg, failed_layout_is_shared);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, neg);
	return s;
}

MB_CHECK_MAIN(ep_mpi_suite)
