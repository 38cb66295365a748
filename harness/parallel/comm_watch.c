/*
 * comm_watch.c - the watchdog of blocking MPI calls (see comm_impl.h). A blocking
 * MPI_Alltoall cannot poll a deadline, so a peer that stops answering would hang the
 * rank forever. A detached thread checks twice a second whether the call marked by
 * comm_watch_enter has lasted past the communicator's timeout; if so it prints one
 * line and ends the process (_exit: no MPI call from this thread), and the launcher
 * ends the others. The nonblocking mode names the silent rank; this one cannot.
 */
#define _GNU_SOURCE
#include "comm_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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

/* watch_loop is the watchdog thread. */
static void *watch_loop(void *arg)
{
	const struct timespec half = { 0, 500000000L };
	(void)arg;
	for (;;) {
		nanosleep(&half, NULL);
		const struct comm *c = atomic_load(&watch.comm);
		double since = atomic_load(&watch.since);
		if (!c || !(c->timeout_s > 0) || timer_now() - since <= c->timeout_s)
			continue;
		fprintf(stderr, "moebench: error: rank %d: comm %s on %s: rank %d of %d: blocked "
			"for more than %g s in a blocking call: a peer stopped answering (run with "
			"--nonblocking to have it named)\n", mpi_world_rank(), atomic_load(&watch.op),
			c->name, c->rank, c->size, c->timeout_s);
		fflush(stderr);
		_exit(1);
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

void comm_watch_leave(void)
{
	atomic_store(&watch.comm, NULL);
}
