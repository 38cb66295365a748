/*
 * par_team.h - one parallel loop on a team of plain threads, created for the loop and
 * joined at its end, for the CPU training step's own loops (the attention core, AdamW).
 *
 * NOTE: why not OpenMP: libgomp's idle workers spin (several ms after each region by
 * default) and the step runs OpenBLAS's own threads between the regions: on two cores
 * the spinning worker takes the core a BLAS thread needs. With OMP_WAIT_POLICY=passive
 * the CPU step ran 2.7-4x faster on a loaded machine (REPRODUCE.md); a team that is
 * joined waits for nothing. Creating a thread costs tens of microseconds: for loops of
 * milliseconds only.
 *
 * Tasks are handed out one at a time from a shared counter (dynamic schedule): which
 * thread runs a task varies, so a task must write only its own outputs for the results
 * to be the same on any number of threads.
 */
#ifndef MB_PAR_TEAM_H
#define MB_PAR_TEAM_H

#include <stddef.h>

/* A task: ctx as given, the task index, and the running thread's scratch
 * (scratch_bytes, NULL when 0). */
typedef void (*par_task_fn)(void *ctx, long task, void *scratch);

/* par_for runs fn for tasks 0..tasks-1 on up to `threads` threads (the caller is one of
 * them; fewer when a thread cannot be created: the others take its tasks). Returns
 * MB_OK, or MB_ERR_NOMEM (no scratch: no task ran). */
int par_for(int threads, long tasks, par_task_fn fn, void *ctx, size_t scratch_bytes);

#endif
