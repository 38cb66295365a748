/*
 * test_comm_mpi.c - the CPU communicators across real MPI ranks (built only with MPI):
 * tests/mpi/comm_driver.c checks every operation against MPI's own collectives under
 * mpirun -np 2 and -np 4, the driver's collective cases (`moebench a2a --collective`
 * sweeps, slowest rank's time, agreed checks), and that a rank which never joins an operation ends the run
 * within the timeout, with a line naming the waiting rank and the operation.
 *
 * Without mpirun the suite fails: CI installs it, and a skipped MPI test would read as
 * a pass.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "cli_harness.h"

#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " \
	"OPENBLAS_NUM_THREADS=1 " MOEBENCH_MPIEXEC " --oversubscribe"

/* tail is the end of the last command's output, short enough for a Check message. */
static const char *tail(void)
{
	size_t n = strlen(out);
	return n > 1500 ? out + n - 1500 : out;
}

/* need_mpirun fails the test, with the fix, when the MPI launcher is missing. */
static void need_mpirun(void)
{
	ck_assert_msg(MOEBENCH_MPIEXEC[0] && access(MOEBENCH_MPIEXEC, X_OK) == 0,
		      "mpirun not found ('%s'): install openmpi-bin (make deps does)",
		      MOEBENCH_MPIEXEC);
}

/* run_checks runs the driver's scenario (check, sweep) on np ranks and expects at
 * least min_checks checks per rank, all passing. */
static void run_checks(int np, const char *scenario, int min_checks)
{
	int n = -1, bad = -1, ranks = -1;
	need_mpirun();
	int st = sh(MPIRUN " -np %d %s %s", np, MOEBENCH_COMM_DRIVER, scenario);
	const char *line = strstr(out, "comm_driver: ");
	ck_assert_msg(line && sscanf(line, "comm_driver: %d checks, %d failed on %d ranks", &n,
				     &bad, &ranks) == 3, "no summary line: %s", tail());
	ck_assert_msg(st == 0 && bad == 0, "mpirun -np %d comm_driver %s: exit %d: %s", np,
		      scenario, st, tail());
	ck_assert_int_eq(ranks, np);
	ck_assert_msg(n >= min_checks, "only %d checks ran: %s", n, tail());
}

/* check: 6 types x 3 reductions x 2 + 6 x 3 + 8 alltoallv + 2 x 2 wait hook + 2 ring +
 * barrier + split (up to 3) + 4 helpers, per rank. */
#define OP_CHECKS 72
/* sweep: 4 collectives x 2 types + 4 driver checks + np (repetitions). */
#define SWEEP_CHECKS 12

START_TEST(every_op_on_2_ranks)
{
	run_checks(2, "check", OP_CHECKS);
}
END_TEST

START_TEST(every_op_on_4_ranks)
{
	run_checks(4, "check", OP_CHECKS);
}
END_TEST

/* The driver's collective cases: every size of every collective exact, the slowest
 * rank's time, the same repetitions everywhere, wrong elements summed. */
START_TEST(driver_sweeps_on_2_ranks)
{
	run_checks(2, "sweep", SWEEP_CHECKS + 2);
}
END_TEST

START_TEST(driver_sweeps_on_4_ranks)
{
	run_checks(4, "sweep", SWEEP_CHECKS + 4);
	ck_assert_msg(strstr(out, "size(B)        count      type  redop  root    time(us) "
			     "algbw(GB/s) busbw(GB/s)  #wrong"), "no nccl-tests header: %s", tail());
	ck_assert_msg(strstr(out, "avg busbw (GB/s): "), "no average: %s", tail());
}
END_TEST

/* expect_timeout runs `hang op` on np ranks with a 1 s timeout: the run must fail
 * within a few seconds, and rank 0 must name itself and the operation. */
static void expect_timeout(int np, const char *op)
{
	struct timespec t0, t1;
	char want[160];
	need_mpirun();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int st = sh(MPIRUN " -np %d %s hang %s 1", np, MOEBENCH_COMM_DRIVER, op);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	ck_assert_msg(st != 0, "a run that cannot finish exited 0: %s", tail());
	snprintf(want, sizeof(want), "moebench: error: rank 0: comm %s on world: rank 0 of %d: "
		 "not complete after 1 s", op, np);
	ck_assert_msg(strstr(out, want), "no line '%s': %s", want, tail());
	ck_assert_msg(!strstr(out, "returned though"), "an op returned: %s", tail());
	ck_assert_msg(s > 1.0 && s < 10.0, "ended after %.1f s (timeout 1 s)", s);
}

START_TEST(missing_rank_allreduce)
{
	expect_timeout(2, "allreduce");
}
END_TEST

START_TEST(missing_rank_alltoallv)
{
	expect_timeout(3, "alltoallv");
}
END_TEST

START_TEST(missing_rank_split)
{
	expect_timeout(2, "split");
}
END_TEST

/* the silent rank of a group in reverse order is named by its group rank and its world
 * rank, with its process (running: it sleeps outside the call) */
START_TEST(missing_rank_of_a_group_is_named_by_world_rank)
{
	need_mpirun();
	int st = sh(MPIRUN " -np 3 %s hang group-allreduce 1", MOEBENCH_COMM_DRIVER);
	ck_assert_msg(st != 0, "a run that cannot finish exited 0: %s", tail());
	/* reported by rank 1 or 2 of the group: both defer to the silent rank 0, which runs */
	ck_assert_msg(strstr(out, "comm allreduce on world.0: rank ") &&
		      strstr(out, " of 3: not complete after 1 s: rank 0 (world rank 2, pid "),
		      "%s", tail());
	ck_assert_msg(strstr(out, ", running) stopped answering"), "%s", tail());
}
END_TEST

static Suite *comm_mpi_suite(void)
{
	Suite *s = suite_create("comm_mpi");
	/* NOTE: cli_harness.h's expect_error is for moebench's own errors; not used here. */
	(void)expect_error;
	TCase *ops = tcase_create("ops");
	tcase_add_checked_fixture(ops, cli_setup, cli_teardown);
	tcase_set_timeout(ops, 120);
	tcase_add_test(ops, every_op_on_2_ranks);
	tcase_add_test(ops, every_op_on_4_ranks);
	tcase_add_test(ops, driver_sweeps_on_2_ranks);
	tcase_add_test(ops, driver_sweeps_on_4_ranks);
	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, cli_setup, cli_teardown);
	tcase_set_timeout(limits, 120);
	tcase_add_test(limits, missing_rank_allreduce);
	tcase_add_test(limits, missing_rank_alltoallv);
	tcase_add_test(limits, missing_rank_split);
	tcase_add_test(limits, missing_rank_of_a_group_is_named_by_world_rank);
	suite_add_tcase(s, ops);
	suite_add_tcase(s, limits);
	return s;
}

MB_CHECK_MAIN(comm_mpi_suite)
