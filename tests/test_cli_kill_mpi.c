/*
 * test_cli_kill_mpi.c - a rank stopped (SIGSTOP) or killed (SIGKILL) in the middle of
 * `moebench train` or `step` under mpirun --oversubscribe ends the run, and the output
 * names that rank, not only the one that noticed. tests/mpi/signal_rank.sh starts the
 * run, waits for a line of its output, signals the process of one world rank and
 * reports the time from the signal to the launcher's exit.
 *
 * stop: every rank ends non-zero within --timeout (4 s) + the listening grace (2 s) + a
 * few seconds, with exactly one error line naming the stopped rank's world rank, pid,
 * host and state; the stopped process is not left behind. The same holds for the
 * blocking calls of `a2a --collective` (comm_watch.c's watchdog), and for a rank that
 * stops after the last collective, before MPI_Finalize (mpi_world_finalize's test
 * hook MOEBENCH_TEST_STOP_RANK: the watchdog bounds the finalize).
 * kill: Open MPI's mpirun ends the job itself when a rank dies, naming it ("process
 * rank N ... signal 9"); run with orte_abort_on_non_zero_status off, it leaves the
 * survivors to our timeout, whose line names the rank as gone. The mca option and
 * --oversubscribe are Open MPI's, as in the other *_mpi suites. Built only with MPI.
 */
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"

#define MPI_ENV "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " \
	"OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "
#define MPIRUN MPI_ENV "$SRC/tests/mpi/signal_rank.sh"
#define TRAIN "$MB train --preset v3-tiny --data synthetic --steps 500 --seq 32 " \
	"--batch 6 --timeout 4 --out r.json"
#define STEP "$MB step --preset v3-tiny --seq 32 --batch 2 --iters 5000 --timeout 4 " \
	"--out r.json"
/* the train progress line of step 10 (stderr, unbuffered): the ranks are in the loop */
#define A2A "$MB a2a --backend cpu --collective allreduce -b 64K -e 64K -n 100000 -w 0 " \
	"--timeout 4 --out r.json"
#define IN_TRAIN "'moebench: train 10/'"
/* step's note before its case; 2 s later the ranks are past its FP64 check (a small
 * step: a stop during the check would add the check's time to the wait) */
#define IN_STEP "'b2_s32 \\.\\.\\.'"
/* --timeout 4, the 2 s grace of name_silent (half the timeout), and slack for a loaded
 * machine running three ranks on two cores (the survivors may finish a step first) */
#define END_WITHIN 15.0

/* One signalled run, as signal_rank.sh reports it. */
struct signalled {
	int pid, rank, exit;
	double seconds;
	bool left_behind;
};

/* count returns how many times text occurs in the last output. */
static int count(const char *text)
{
	int n = 0;
	for (const char *p = strstr(out, text); p; p = strstr(p + 1, text))
		n++;
	return n;
}

/* signal_run runs signal_rank.sh with its arguments and reads its report line. */
static struct signalled signal_run(const char *sig, int rank, const char *pattern,
				   const char *mpi_args, int np, const char *cmd)
{
	struct signalled s = { 0 };
	char name[16];
	int st = sh(MPIRUN " %s %d %s mpirun --oversubscribe %s -np %d %s", sig, rank, pattern,
		    mpi_args, np, cmd);
	const char *line = strstr(out, "signal_rank: ");
	ck_assert_msg(st == 0 && line, "signal_rank.sh exited %d: %s", st, out);
	ck_assert_msg(sscanf(line, "signal_rank: %15s pid %d (world rank %d), exit %d after %lf",
			     name, &s.pid, &s.rank, &s.exit, &s.seconds) == 5, "%s", line);
	s.left_behind = strstr(line, "left behind") != NULL;
	return s;
}

/* expect_named expects the run to have ended non-zero within END_WITHIN seconds of the
 * signal, with one error line, which names s's rank and process in state. */
static void expect_named(const struct signalled *s, const char *state)
{
	char want[128];
	ck_assert_msg(s->exit != 0 && s->exit != 124, "exit %d: %s", s->exit, out);
	ck_assert_msg(s->seconds < END_WITHIN, "ended %.2f s after the signal: %s", s->seconds,
		      out);
	ck_assert_msg(!s->left_behind, "the signalled rank outlived the launcher: %s", out);
	ck_assert_msg(count("moebench: error:") == 1, "not one error line: %s", out);
	const char *line = strstr(out, "moebench: error:");
	snprintf(want, sizeof(want), "rank %d (world rank %d, pid %d on ", s->rank, s->rank,
		 s->pid);
	const char *named = strstr(line, want), *eol = strchr(line, '\n');
	ck_assert_msg(named && named < eol, "no '%s' in the error line: %s", want, out);
	snprintf(want, sizeof(want), ", %s)", state);
	ck_assert_msg(strstr(named, want) && strstr(named, want) < eol, "not named %s: %s",
		      state, out);
}

START_TEST(train_a_stopped_rank_is_named)
{
	struct signalled s = signal_run("STOP", 2, IN_TRAIN, "", 3, TRAIN);
	expect_named(&s, "stopped");
	/* a rank waiting on another group at that moment may be listed apart, as running */
	ck_assert_msg(strstr(out, ", stopped) stopped answering (no word from it within 2 s"),
		      "%s", out);
	/* on dp or edp (gradients) or world (the slowest step time), as the stop fell */
	ck_assert_msg(strstr(out, "moebench: error: rank 0: comm allreduce on ") &&
		      strstr(out, ": rank 0 of 3: not complete after 4 s: rank 2 (world rank 2"),
		      "%s", out);
}
END_TEST

START_TEST(step_a_stopped_rank_is_named)
{
	setenv("SIGNAL_RANK_DELAY", "2", 1);
	struct signalled s = signal_run("STOP", 1, IN_STEP, "", 2, STEP);
	unsetenv("SIGNAL_RANK_DELAY");
	expect_named(&s, "stopped");
}
END_TEST

/* a2a's collectives are blocking calls by default: the watchdog thread names the rank
 * (or, when the noticing rank waited in the driver's nonblocking barrier, name_silent) */
START_TEST(blocking_calls_a_stopped_rank_is_named)
{
	struct signalled s = signal_run("STOP", 1, "'allreduce/float'", "", 3, A2A);
	expect_named(&s, "stopped");
}
END_TEST

/* FOR_TAGGED is a shell loop over the processes whose environment holds
 * KILL_TEST_TAG=<the test's directory>: the run's launcher and ranks, stopped or not. */
#define FOR_TAGGED "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' 2>/dev/null <$f | " \
	"grep -qx KILL_TEST_TAG=%s || continue; p=${f#/proc/}; p=${p%%/environ}; "

/* kill_tagged kills what is left of the run tagged with the test's directory and
 * returns how many processes there were. */
static int kill_tagged(void)
{
	int n = -1;
	sh(FOR_TAGGED "echo tagged $p; kill -KILL $p 2>/dev/null; done; echo end", dir);
	const char *p = out;
	for (n = 0; (p = strstr(p, "tagged ")); p++)
		n++;
	return n;
}

/* a rank that stops after the last collective (the test hook of mpi_world_finalize)
 * must not hang the others in MPI_Finalize: the watchdog bounds it */
START_TEST(a_rank_stopped_before_finalize_is_named)
{
	char line[2048] = "";
	int st = sh("KILL_TEST_TAG=%s MOEBENCH_TEST_STOP_RANK=2 " MPI_ENV "timeout -k 5 60 "
		    "mpirun --oversubscribe -np 3 $MB train --preset v3-tiny --data synthetic "
		    "--steps 2 --seq 32 --batch 6 --timeout 3 --out r.json", dir);
	const char *err = strstr(out, "moebench: error:");
	if (err)
		snprintf(line, sizeof(line), "%s", err);
	int errors = count("moebench: error:"), left = kill_tagged();
	ck_assert_msg(st != 0 && st != 124, "exit %d: %s", st, line);
	ck_assert_msg(strstr(line, "moebench: error: rank 0: comm finalize on world: rank 0 of "
			     "3: blocked for more than 3 s in a blocking call: rank 2 (world "
			     "rank 2, pid ") && strstr(line, ", stopped) is not running"), "%s",
		      line);
	ck_assert_msg(errors == 1, "not one error line: %s", line);
	ck_assert_msg(left == 0, "%d processes of the run left behind", left);
}
END_TEST

START_TEST(train_a_killed_rank_ends_the_run_named_by_mpirun)
{
	char want[64];
	struct signalled s = signal_run("KILL", 1, IN_TRAIN, "", 3, TRAIN);
	ck_assert_msg(s.exit != 0 && s.exit != 124, "exit %d: %s", s.exit, out);
	ck_assert_msg(s.seconds < END_WITHIN, "ended %.2f s after the kill: %s", s.seconds, out);
	snprintf(want, sizeof(want), "process rank %d with PID", s.rank);
	ck_assert_msg(strstr(out, want) && strstr(out, "exited on signal 9"), "%s", out);
}
END_TEST

START_TEST(train_a_killed_rank_is_named_when_the_launcher_waits)
{
	struct signalled s = signal_run("KILL", 1, IN_TRAIN,
					"--mca orte_abort_on_non_zero_status 0", 3, TRAIN);
	expect_named(&s, "gone");
}
END_TEST

static Suite *kill_suite(void)
{
	Suite *s = suite_create("cli_kill_mpi");
	/* NOTE: cli_harness.h's expect_error is for exit-2 errors; not used here. */
	(void)expect_error;
	TCase *stop = tcase_create("stop");
	TCase *kill = tcase_create("kill");

	tcase_add_checked_fixture(stop, cli_setup, cli_teardown);
	tcase_add_checked_fixture(kill, cli_setup, cli_teardown);
	tcase_set_timeout(stop, 120);
	tcase_set_timeout(kill, 120);
	tcase_add_test(stop, train_a_stopped_rank_is_named);
	tcase_add_test(stop, step_a_stopped_rank_is_named);
	tcase_add_test(stop, blocking_calls_a_stopped_rank_is_named);
	tcase_add_test(stop, a_rank_stopped_before_finalize_is_named);
	tcase_add_test(kill, train_a_killed_rank_ends_the_run_named_by_mpirun);
	tcase_add_test(kill, train_a_killed_rank_is_named_when_the_launcher_waits);
	suite_add_tcase(s, stop);
	suite_add_tcase(s, kill);
	return s;
}

MB_CHECK_MAIN(kill_suite)
