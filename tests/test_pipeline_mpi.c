/*
 * test_pipeline_mpi.c - real multi-rank runs under mpirun (built only with MPI): the
 * pipeline executor on hand-written 1F1B programs for 2 and 4 ranks (driver:
 * tests/mpi/pipe_exec_driver.c), its timeout on a program that waits for a message
 * nobody sends, and moebench itself under mpirun (one result file, from rank 0).
 *
 * The ranks oversubscribe the cores (CI has two), one BLAS thread each. Without
 * mpirun the suite fails: CI installs it, and a skipped MPI test would read as a pass.
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
#define MAX_EVENTS 512

struct event {
	int rank, mb, mb2, chunk;
	char kind;
	double start, end;
};

static struct event ev[MAX_EVENTS];
static int n_ev;
static double step_time, unit_s[3];

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

/* parse_timeline reads the driver's output in out into ev, step_time and unit_s. */
static void parse_timeline(void)
{
	char *save = NULL;
	n_ev = 0;
	step_time = -1.0;
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		struct event *e = &ev[n_ev];
		if (sscanf(l, "step_time_s %lf", &step_time) == 1)
			continue;
		if (sscanf(l, "unit_s %lf %lf %lf", &unit_s[0], &unit_s[1], &unit_s[2]) == 3)
			continue;
		if (n_ev < MAX_EVENTS && sscanf(l, "ev %d %c %d %d %d %lf %lf", &e->rank, &e->kind,
						&e->mb, &e->mb2, &e->chunk, &e->start, &e->end) == 7)
			n_ev++;
	}
}

/* find returns the one event of (rank, kind, mb), failing when there are 0 or 2+. */
static const struct event *find(int rank, char kind, int mb)
{
	const struct event *hit = NULL;
	for (int i = 0; i < n_ev; i++) {
		if (ev[i].rank != rank || ev[i].kind != kind || ev[i].mb != mb)
			continue;
		ck_assert_msg(!hit, "rank %d: %c of micro-batch %d ran twice", rank, kind, mb);
		hit = &ev[i];
	}
	ck_assert_msg(hit, "rank %d: no %c of micro-batch %d", rank, kind, mb);
	return hit;
}

/* after asserts that the receiver b started after the sender a ended. NOTE: exact,
 * no slack: the ranks of one node share one clock (CLOCK_MONOTONIC), the sender takes
 * its end time before it posts the send, the receiver its start after the receive. */
static void after(const struct event *a, const struct event *b)
{
	ck_assert_msg(b->start >= a->end,
		      "%c of micro-batch %d: rank %d started at %.6f s, before rank %d ended it "
		      "at %.6f s", b->kind, b->mb, b->rank, b->start, a->rank, a->end);
}

/* run_chain runs the 1F1B chain on np ranks and checks the timeline: every op once,
 * F moving up the stages and B down in measured time, each W after its B. */
static void run_chain(int np)
{
	int m = 2 * np;
	need_mpirun();
	int st = sh(MPIRUN " -np %d %s chain", np, MOEBENCH_PIPE_DRIVER);
	ck_assert_msg(st == 0, "mpirun -np %d pipe_exec_driver chain exited %d: %s", np, st, tail());
	parse_timeline();
	ck_assert_int_eq(n_ev, 3 * m * np);
	for (int r = 0; r < np; r++)
		for (int mb = 0; mb < m; mb++) {
			const struct event *f = find(r, 'F', mb), *b = find(r, 'B', mb);
			const struct event *w = find(r, 'W', mb);
			ck_assert(f->start >= 0 && f->end > f->start && w->start >= b->end);
			if (r > 0)
				after(find(r - 1, 'F', mb), f);
			if (r < np - 1)
				after(find(r + 1, 'B', mb), b);
		}
	for (int k = 0; k < 3; k++)
		ck_assert_msg(unit_s[k] > 0 && unit_s[k] < step_time, "unit time %d: %g s", k, unit_s[k]);
	printf("pipe_exec chain -np %d: step %.3f ms, F %.3f B %.3f W %.3f ms per unit\n", np,
	       1e3 * step_time, 1e3 * unit_s[0], 1e3 * unit_s[1], 1e3 * unit_s[2]);
}

START_TEST(chain_on_2_ranks)
{
	run_chain(2);
}
END_TEST

START_TEST(chain_on_4_ranks)
{
	run_chain(4);
}
END_TEST

/* A receive that is never sent ends every rank within the timeout, and the error names
 * the rank, the operation and the peer it waited for. */
START_TEST(missing_message_times_out)
{
	struct timespec t0, t1;
	need_mpirun();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int st = sh(MPIRUN " -np 2 %s broken 2", MOEBENCH_PIPE_DRIVER);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	ck_assert_msg(st != 0, "a run that cannot finish exited 0: %s", tail());
	ck_assert_msg(strstr(out, "moebench: error: rank 1: pipeline executor: step exceeded the "
				  "timeout: op 0 (F, micro-batch 0, chunk 0) still waits for rank 0 "
				  "(tag 999)"), "no timeout line naming rank 1 and rank 0: %s", tail());
	ck_assert_msg(s > 2.0 && s < 12.0, "ended after %.1f s (timeout 2 s)", s);
}
END_TEST

/* moebench under mpirun: every rank runs, rank 0 alone writes the result (with the
 * world size) and prints the table. */
START_TEST(moebench_writes_one_result)
{
	need_mpirun();
	int st = sh(MPIRUN " -np 2 $MB peak --backend cpu --size 96 --stream 64K --iters 2 "
		    "--warmup 0 --min-time 0 --out r.json");
	ck_assert_msg(st == 0, "mpirun -np 2 moebench peak exited %d: %s", st, tail());
	const char *table = strstr(out, "benchmark/name");
	ck_assert_msg(table && !strstr(table + 1, "benchmark/name"), "not one table: %s", tail());
	ck_assert_int_eq(sh("ls | wc -l"), 0);
	ck_assert_str_eq(out, "1\n");
	ck_assert_int_eq(sh("grep -o '\"world_size\":[^,]*' r.json | tr -d ' \\t'"), 0);
	ck_assert_str_eq(out, "\"world_size\":2\n");
	ck_assert_int_eq(sh("$MB peak --backend cpu --size 96 --stream 64K --iters 2 --warmup 0 "
			    "--min-time 0 --quiet --out s.json >/dev/null && grep -o '\"world_size\":[^,]*' "
			    "s.json | tr -d ' \\t'"), 0);
	ck_assert_str_eq(out, "\"world_size\":1\n");
}
END_TEST

/* Bad input under a launcher keeps the contract: exit 2 (through mpirun), one error
 * line with a hint, no result file. */
START_TEST(bad_input_under_mpirun)
{
	need_mpirun();
	expect_error(MPIRUN " -np 1 $MB peak --backend cpu --size abc --out r.json", "--size");
	ck_assert_int_eq(sh("ls | wc -l"), 0);
	ck_assert_str_eq(out, "0\n");
}
END_TEST

static Suite *pipeline_mpi_suite(void)
{
	Suite *s = suite_create("pipeline_mpi");
	TCase *exec = tcase_create("executor");
	tcase_add_checked_fixture(exec, cli_setup, cli_teardown);
	tcase_set_timeout(exec, 120);
	tcase_add_test(exec, chain_on_2_ranks);
	tcase_add_test(exec, chain_on_4_ranks);
	tcase_add_test(exec, missing_message_times_out);
	TCase *world = tcase_create("world");
	tcase_add_checked_fixture(world, cli_setup, cli_teardown);
	tcase_set_timeout(world, 120);
	tcase_add_test(world, moebench_writes_one_result);
	tcase_add_test(world, bad_input_under_mpirun);
	suite_add_tcase(s, exec);
	suite_add_tcase(s, world);
	return s;
}

MB_CHECK_MAIN(pipeline_mpi_suite)
