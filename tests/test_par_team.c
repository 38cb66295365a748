/*
 * test_par_team.c - Check suite for kernels/common/par_team.c: every task runs exactly
 * once, on one thread, two, more threads than tasks and none; each thread's scratch is
 * its own (a task that writes its scratch and reads it back sees its own values).
 */
#include <check.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "par_team.h"
#include "status.h"

struct count_ctx {
	atomic_int *runs;
	atomic_int clobbered;
};

/* count_task marks task t run, and fills its thread's scratch with t then checks it
 * (another thread writing the same scratch would show). */
static void count_task(void *ctx, long t, void *scratch)
{
	struct count_ctx *c = ctx;
	atomic_fetch_add(&c->runs[t], 1);
	if (!scratch)
		return;
	long *s = scratch;
	for (int i = 0; i < 256; i++)
		s[i] = t;
	for (volatile int spin = 0; spin < 1000; spin++)
		;
	for (int i = 0; i < 256; i++)
		if (s[i] != t)
			atomic_fetch_add(&c->clobbered, 1);
}

START_TEST(every_task_once)
{
	const int threads[] = { 1, 2, 7, 0 };
	const long tasks[] = { 1, 3, 100, 0 };
	for (int a = 0; a < 4; a++)
		for (int b = 0; b < 4; b++)
			for (int sc = 0; sc < 2; sc++) {
				long n = tasks[b];
				struct count_ctx c = { calloc((size_t)(n ? n : 1), sizeof(atomic_int)), 0 };
				ck_assert_int_eq(par_for(threads[a], n, count_task, &c,
							 sc ? 256 * sizeof(long) : 0), MB_OK);
				for (long t = 0; t < n; t++)
					ck_assert_msg(atomic_load(&c.runs[t]) == 1,
						      "threads %d tasks %ld: task %ld ran %d times",
						      threads[a], n, t, atomic_load(&c.runs[t]));
				ck_assert_int_eq(atomic_load(&c.clobbered), 0);
				free(c.runs);
			}
}
END_TEST

static Suite *par_team_suite(void)
{
	Suite *s = suite_create("par_team");
	TCase *tc = tcase_create("loop");
	tcase_add_test(tc, every_task_once);
	suite_add_tcase(s, tc);
	return s;
}

MB_CHECK_MAIN(par_team_suite)
