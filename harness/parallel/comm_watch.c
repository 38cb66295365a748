/*
 * comm_watch.c - the watchdog of blocking MPI calls (see comm_impl.h). A blocking
 * MPI_Alltoall cannot poll a deadline, so a peer that stops answering would hang the
 * rank forever. A detached thread checks twice a second whether the call marked by
 * comm_watch_enter has lasted past the communicator's timeout; if so it prints one
 * line and ends the process (_exit: no MPI call from this thread: MPI is initialised
 * for one thread), and the launcher ends the others. Without MPI it cannot ask the
 * peers for a word as the nonblocking mode does (comm_mpi.c's name_silent); what it can
 * see is the processes of the peers on this host (/proc, comm_peer.c), so it names
 * those that are stopped or gone, and says when none is (a peer on another node, or
 * one running elsewhere in the program: --nonblocking names those).
 */
#define _GNU_SOURCE
#include "comm_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpi_world.h"
#include "timer.h"

static struct {
	_Atomic(const struct comm *) comm;  /* the communicator in a blocking call, or NULL */
	_Atomic(const char *) op;
	_Atomic double since;               /* timer_now() at entry */
} watch;

static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

/* not_running lists in buf the peers of c on this host whose process is stopped or
 * gone (at most three named), and returns how many there are. */
static int not_running(const struct comm *c, char *buf, size_t len)
{
	char who[200];
	int n = 0;
	buf[0] = '\0';
	for (int r = 0; r < c->size; r++) {
		enum comm_peer_state st = r == c->rank ? COMM_PEER_RUNNING : comm_peer_state(c, r);
		if (st != COMM_PEER_STOPPED && st != COMM_PEER_GONE)
			continue;
		if (n++ < 3)
			comm_peer_name(c, r, who, sizeof(who));
		else
			snprintf(who, sizeof(who), "rank %d", r);
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", n > 1 ? ", " : "", who);
	}
	return n;
}

/* watch_fail prints the line of a blocking call on c that passed its timeout: the
 * peers listed (n of them, not_running's) or, with none, that it cannot tell. */
static void watch_fail(const struct comm *c, const char *op, const char *list, int n)
{
	if (n)
		fprintf(stderr, "moebench: error: rank %d: comm %s on %s: rank %d of %d: blocked "
			"for more than %g s in a blocking call: %s %s not running\n",
			mpi_world_rank(), op, c->name, c->rank, c->size, c->timeout_s, list,
			n > 1 ? "are" : "is");
	else if (!comm_peer_known())
		fprintf(stderr, "moebench: error: rank %d: comm %s on %s: rank %d of %d: blocked "
			"for more than %g s in a blocking call: a peer stopped answering (which one "
			"cannot be told before the ranks have exchanged their pids)\n",
			mpi_world_rank(), op, c->name, c->rank, c->size, c->timeout_s);
	else
		fprintf(stderr, "moebench: error: rank %d: comm %s on %s: rank %d of %d: blocked "
			"for more than %g s in a blocking call: a peer stopped answering, none of "
			"those on this host is stopped or gone (run with --nonblocking to have it "
			"named)\n", mpi_world_rank(), op, c->name, c->rank, c->size, c->timeout_s);
}

/* first_live is the lowest rank of c whose process is not known to be stopped or gone
 * (this rank when all before it are); *lower_gone says whether one before it is gone. */
static int first_live(const struct comm *c, bool *lower_gone)
{
	*lower_gone = false;
	for (int r = 0; r < c->rank; r++) {
		enum comm_peer_state st = comm_peer_state(c, r);
		*lower_gone = *lower_gone || st == COMM_PEER_GONE;
		if (st != COMM_PEER_STOPPED && st != COMM_PEER_GONE)
			return r;
	}
	return c->rank;
}

/* watch_expired ends the process after a blocking call on c passed its timeout. Every
 * live rank blocked on the stopped one gets here within about a tick of the others:
 * the lowest live rank prints and ends; the others give the launcher DEFER_S to end
 * them, and then print what they saw when their own wait expired, or nothing when the
 * lowest live rank has gone meanwhile: it printed the line. NOTE: a lower rank already
 * gone may be the one that printed (its exit races with this wait's expiry), so a rank
 * prints at once only when every rank before it is stopped. */
static _Noreturn void watch_expired(const struct comm *c, const char *op)
{
	enum { DEFER_S = 3 };
	char list[640];
	bool lower_gone;
	int n = not_running(c, list, sizeof(list)), first = first_live(c, &lower_gone);
	if (first != c->rank || lower_gone) {
		sleep(DEFER_S);
		if (first != c->rank && comm_peer_state(c, first) == COMM_PEER_GONE)
			_exit(1);
	}
	watch_fail(c, op, list, n);
	fflush(stderr);
	_exit(1);
}

/* watch_loop is the watchdog thread (watch_expired ends the process). NOTE: a tick
 * that took far longer than asked means this process was itself stopped (or starved):
 * the wait counts again from then, so that a stopped rank that the launcher continues
 * in order to end it does not blame its peers. */
static void *watch_loop(void *arg)
{
	const struct timespec half = { 0, 500000000L };
	double tick = timer_now(), resumed = tick;
	(void)arg;
	for (;;) {
		nanosleep(&half, NULL);
		double now = timer_now();
		resumed = now - tick > 2.0 ? now : resumed;
		tick = now;
		const struct comm *c = atomic_load(&watch.comm);
		double since = atomic_load(&watch.since);
		since = since > resumed ? since : resumed;
		if (!c || !(c->timeout_s > 0) || now - since <= c->timeout_s)
			continue;
		watch_expired(c, atomic_load(&watch.op));
	}
	return NULL;
}

/* watch_start starts the detached watchdog thread (once). */
static void watch_start(void)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, watch_loop, NULL) != 0)
		fprintf(stderr, "moebench: note: no watchdog thread: a blocking call that hangs "
			"will not time out\n");
	pthread_attr_destroy(&a);
}

void comm_watch_enter(const struct comm *c, const char *op)
{
	pthread_once(&watch_once, watch_start);
	atomic_store(&watch.op, op);
	atomic_store(&watch.since, timer_now());
	atomic_store(&watch.comm, c);
}

void comm_watch_world(const char *op, double timeout_s)
{
	/* NOTE: static: the watchdog reads it until the process ends */
	static struct comm world;
	world = (struct comm){ .rank = mpi_world_rank(), .size = mpi_world_size(),
			       .timeout_s = timeout_s, .name = "world" };
	comm_watch_enter(&world, op);
}

void comm_watch_leave(void)
{
	atomic_store(&watch.comm, NULL);
}
