/*
 * par_team.c - one parallel loop on a team of joined threads (see par_team.h).
 */
#include "par_team.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "status.h"

/* What every thread of one loop shares, and its own scratch. */
struct par_loop {
	par_task_fn fn;
	void *ctx;
	long tasks;
	atomic_long next;
};

struct par_worker {
	struct par_loop *loop;
	void *scratch;
};

/* par_work takes tasks from the shared counter until none is left. */
static void *par_work(void *p)
{
	struct par_worker *w = p;
	for (;;) {
		long t = atomic_fetch_add(&w->loop->next, 1);
		if (t >= w->loop->tasks)
			return NULL;
		w->loop->fn(w->loop->ctx, t, w->scratch);
	}
}

int par_for(int threads, long tasks, par_task_fn fn, void *ctx, size_t scratch_bytes)
{
	enum { MAX_TEAM = 64 };
	int n = threads < 1 ? 1 : threads > MAX_TEAM ? MAX_TEAM : threads;
	n = tasks < n ? (int)(tasks > 0 ? tasks : 1) : n;
	struct par_loop loop = { fn, ctx, tasks, 0 };
	struct par_worker w[MAX_TEAM];
	pthread_t tid[MAX_TEAM];
	bool started[MAX_TEAM] = { false };
	char *scratch = scratch_bytes ? malloc(scratch_bytes * (size_t)n) : NULL;
	if (scratch_bytes && !scratch)
		return MB_ERR_NOMEM;
	for (int i = 0; i < n; i++)
		w[i] = (struct par_worker){ &loop, scratch ? scratch + scratch_bytes * i : NULL };
	for (int i = 1; i < n; i++)
		started[i] = pthread_create(&tid[i], NULL, par_work, &w[i]) == 0;
	par_work(&w[0]);
	for (int i = 1; i < n; i++)
		if (started[i])
			pthread_join(tid[i], NULL);
	free(scratch);
	return MB_OK;
}
