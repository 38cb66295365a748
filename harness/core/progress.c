/* progress.c - a progress line with an ETA for long phases (see progress.h). */
#include "progress.h"

#include <stdio.h>

#include "timer.h"

void progress_start(struct progress *p, const char *benchmark, const char *name, bool quiet)
{
	p->benchmark = benchmark;
	p->name = name;
	p->quiet = quiet;
	p->t0 = p->last = timer_now();
	p->lines = 0;
}

double progress_eta_s(long left, double per_rep)
{
	return left > 0 && per_rep > 0 ? (double)left * per_rep : 0.0;
}

void progress_tick(struct progress *p, const char *phase, long done, long total,
		   double per_rep, long left)
{
	double now = timer_now();
	if (p->quiet || now - p->t0 < PROGRESS_QUIET_S ||
	    (p->lines > 0 && now - p->last < PROGRESS_EVERY_S))
		return;
	fprintf(stderr, "moebench: %s: %s: %s %ld of %ld repetitions, %.0f s so far, ETA %.0f s\n",
		p->benchmark, p->name, phase, done, total, now - p->t0,
		progress_eta_s(left, per_rep));
	p->last = now;
	p->lines++;
}
