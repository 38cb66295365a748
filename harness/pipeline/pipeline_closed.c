/*
 * pipeline_closed.c - the published closed forms of the pipeline bubble (pipeline.h),
 * in the durations of struct pipe_times: f, b, w per micro-batch per device share, the
 * DualPipe table's B being b + w and its F&B the given fb (default f + b + w).
 *
 * Where the simulation (pipeline_sim.c, the worst device's step time minus busy time)
 * and the closed form differ, and why. With no message cost the two agree to rounding
 * (tests/test_pipeline.c holds them to 1e-9 over PP 2..16 and m = PP..8PP) when:
 * - gpipe, 1f1b, interleaved: always. The fill and the drain each cost (PP-1) forward
 *   and backward steps of a chunk, whatever the durations. (Megatron runs every forward
 *   first when m = PP; we keep its warm-up formula there, which is what the closed form
 *   describes.)
 * - zb-h1: w <= min(f, b). The form assumes each deferred W fits into the gap a B's
 *   dependency chain leaves; with a larger W the W's push the tail out (in our runs the
 *   bubble is then (PP-1) max(f, b), more than the form's (PP-1)(f + b - w)).
 * - dualpipe, dualpipev: f = b, w <= f and f + w <= fb <= f + b + w: the equal cells of
 *   the DualPipe figure, with the overlapped pair no slower than its parts in a row and
 *   no faster than a forward plus a W. Outside that the critical device changes: with
 *   f != b the fold devices' chains of F and B no longer interlock (the bubble is
 *   smaller or larger by a multiple of |f - b|); with fb < f + w the middle devices
 *   starve; with fb > f + b + w the pairs themselves become the bottleneck.
 * - Message cost (--latency, --bandwidth): the closed forms count none. Every hop on a
 *   critical chain adds it. gpipe pays it on the fill and the drain only, 2(PP-1)
 *   messages; 1f1b's steady state is itself a loop through the pipeline and back, so
 *   it pays per micro-batch too (PP=8, L=0.1: +4 at m=16, +12.4 at m=64). DualPipe is
 *   built to hide communication inside the overlapped pair, which this model credits
 *   only through the fb the user gives.
 */
#include "pipeline.h"

#include <math.h>

#define SRC_TABLE "DeepSeek-V3 report, Table 2 (deepseek-ai/DualPipe README)"

/* fb_of is the F&B duration the plan's F&B operations take (before op_scale). */
static double fb_of(const struct pipe_times *t)
{
	return isnan(t->fb) || t->fb < 0 ? t->f + t->b + t->w : t->fb;
}

/* dual_exact tells whether durations meet DualPipe's exactness condition. */
static bool dual_exact(const struct pipe_times *t)
{
	double fb = fb_of(t);

	return t->f == t->b && t->w <= t->f && t->f + t->w <= fb && fb <= t->f + t->b + t->w;
}

void pipe_closed_form(const struct pipe_plan *p, const struct pipe_times *t,
		      struct pipe_closed *out)
{
	double P = p->pp, B = t->b + t->w, work = p->microbatches * (t->f + t->b + t->w);
	bool free_comm = t->latency == 0 && !(t->bandwidth > 0 && t->msg_bytes > 0);

	*out = (struct pipe_closed){ .source = SRC_TABLE, .condition = "any durations",
				     .exact = true };
	switch (p->schedule) {
	case PIPE_GPIPE:
	case PIPE_1F1B:
		out->formula = "(PP-1)(F+B)";
		out->bubble = (P - 1) * (t->f + B);
		break;
	case PIPE_INTERLEAVED:
		out->formula = "(PP-1)(F+B)/v";
		out->source = "Narayanan et al. 2021 (arXiv 2104.04473): fraction (p-1)/(v m)";
		out->bubble = (P - 1) * (t->f + B) / p->chunks;
		break;
	case PIPE_ZBH1:
		out->formula = "(PP-1)(F+B-2W)";
		out->bubble = (P - 1) * (t->f + B - 2 * t->w);
		out->condition = "w <= min(f, b)";
		out->exact = t->w <= fmin(t->f, t->b);
		break;
	case PIPE_DUALPIPE:
		out->formula = "(PP/2-1)(F&B+B-3W)";
		out->bubble = (P / 2 - 1) * (fb_of(t) + B - 3 * t->w);
		out->condition = "f = b, w <= f, f + w <= fb <= f + b + w";
		out->exact = dual_exact(t);
		break;
	default:
		/* 2PP stages of half a device's share: (2PP/2-1)(F&B+B-3W) at half size. */
		out->formula = "(S/2-1)(F&B+B-3W), S = 2PP stages";
		out->bubble = (P - 1) * (fb_of(t) + B - 3 * t->w) * 0.5;
		out->condition = "f = b, w <= f, f + w <= fb <= f + b + w";
		out->exact = dual_exact(t);
	}
	out->exact = out->exact && free_comm;
	out->fraction = work > 0 ? out->bubble / work : NAN;
}
