/*
 * pipeline_dualpipe.c - the per-device operation order of DualPipe and DualPipeV
 * (pipeline.h), written from the schedule deepseek-ai/DualPipe runs (dualpipe.py and
 * dualpipev.py, method `step`), which both follow the same eight steps. Seen from one
 * device, with "phase 0" the chunk where it is the earlier stage and "phase 1" the one
 * where it is the later stage, R devices per half pipeline and `pos` this device's
 * place in it (DualPipe: R = PP/2, pos = min(d, PP-1-d), N = m/2 micro-batches per
 * direction; DualPipeV: R = PP, pos = d, N = m):
 *
 *   1  2(R-pos-1) x  F0
 *   2  (pos+1)    x  F0 F1
 *   3  (R-pos-1)  x  B1 W F1              (B split, its W right after)
 *   4  (N-2R+pos+1) x F0&B1 F1&B0         (overlapped pairs, full backwards; the
 *                                          device at the fold, pos = R-1, runs its
 *                                          first F0 and B1 one after the other)
 *   5  (R-pos-1)  x  B1 F1&B0
 *   6  (pos+1)    x  B1 B0                (the second half of these split B and W)
 *   7  (R-pos-1)  x  W B0                 (split)
 *   8  (pos+1)    x  W
 *
 * W's run first-in first-out over the split B's, as DualPipe's WeightGradStore does.
 * DualPipe: micro-batches 0 .. m/2-1 run direction 0 (enter at device 0), m/2 .. m-1
 * direction 1 (enter at device PP-1); on devices of the second half phase 0 is
 * direction 1. DualPipeV: every micro-batch runs stages 0 .. 2PP-1, device d holding
 * stage d (phase 0) and 2PP-1-d (phase 1).
 */
#include <stdbool.h>
#include <stdlib.h>

#include "pipeline_impl.h"
#include "status.h"

struct dual_gen {
	struct pipe_plan *p;
	int d;
	bool flip;          /* DualPipe, second half: phase 0 is direction 1 */
	int next_f[2], next_b[2];
	int *wq;            /* deferred W's, as op indices into p->ops (FIFO) */
	int wq_head, wq_tail;
};

/* unit maps the k-th micro-batch of a phase to its micro-batch and stage. */
static void unit(const struct dual_gen *g, int phase, int k, int *mb, int *stage)
{
	const struct pipe_plan *p = g->p;
	int dir = phase ^ g->flip;

	if (p->schedule == PIPE_DUALPIPE) {
		*mb = dir * (p->microbatches / 2) + k;
		*stage = dir == 0 ? g->d : p->pp - 1 - g->d;
	} else {
		*mb = k;
		*stage = phase == 0 ? g->d : 2 * p->pp - 1 - g->d;
	}
}

/* fwd appends the next forward of a phase. */
static void fwd(struct dual_gen *g, int phase)
{
	int mb, stage;

	unit(g, phase, g->next_f[phase]++, &mb, &stage);
	pipe_emit(g->p, PIPE_OP_F, 0, mb, stage, -1, -1);
}

/* bwd appends the next backward of a phase: full, or split with its W queued. */
static void bwd(struct dual_gen *g, int phase, bool split)
{
	int mb, stage;

	unit(g, phase, g->next_b[phase]++, &mb, &stage);
	if (split)
		g->wq[g->wq_tail++] = (int)g->p->n_ops;
	pipe_emit(g->p, PIPE_OP_B, !split, mb, stage, -1, -1);
}

/* wgt appends the W of the oldest split backward. */
static void wgt(struct dual_gen *g)
{
	const struct pipe_op *b = &g->p->ops[g->wq[g->wq_head++]];

	pipe_emit(g->p, PIPE_OP_W, 0, b->mb, b->stage, -1, -1);
}

/* pair appends an overlapped forward of phase pf and full backward of phase pb. */
static void pair(struct dual_gen *g, int pf, int pb)
{
	int mb, stage, mb2, stage2;

	unit(g, pf, g->next_f[pf]++, &mb, &stage);
	unit(g, pb, g->next_b[pb]++, &mb2, &stage2);
	pipe_emit(g->p, PIPE_OP_FB, 1, mb, stage, mb2, stage2);
}

/* steps_warmup appends steps 1 to 3. */
static void steps_warmup(struct dual_gen *g, int R, int pos)
{
	for (int i = 0; i < 2 * (R - pos - 1); i++)
		fwd(g, 0);
	for (int i = 0; i < pos + 1; i++) {
		fwd(g, 0);
		fwd(g, 1);
	}
	for (int i = 0; i < R - pos - 1; i++) {
		bwd(g, 1, true);
		wgt(g);
		fwd(g, 1);
	}
}

/* steps_main appends steps 4 and 5. NOTE: the reference does not overlap the fold
 * device's first F0 and B1, "to further reduce bubble size". */
static void steps_main(struct dual_gen *g, int R, int pos, int N)
{
	for (int i = 0; i < N - 2 * R + pos + 1; i++) {
		if (i == 0 && pos == R - 1) {
			fwd(g, 0);
			bwd(g, 1, false);
		} else {
			pair(g, 0, 1);
		}
		pair(g, 1, 0);
	}
	for (int i = 0; i < R - pos - 1; i++) {
		bwd(g, 1, false);
		pair(g, 1, 0);
	}
}

/* steps_cooldown appends steps 6 to 8: from the middle of step 6 on, backwards are
 * split and their W's fill the tail. */
static void steps_cooldown(struct dual_gen *g, int R, int pos)
{
	bool split = false;

	for (int i = 0; i < pos + 1; i++) {
		if (i == (pos + 1) / 2 && pos % 2 == 1)
			split = true;
		bwd(g, 1, split);
		if (i == (pos + 1) / 2 && pos % 2 == 0)
			split = true;
		bwd(g, 0, split);
	}
	for (int i = 0; i < R - pos - 1; i++) {
		wgt(g);
		bwd(g, 0, true);
	}
	for (int i = 0; i < pos + 1; i++)
		wgt(g);
}

int pipe_gen_dualpipe(struct pipe_plan *p, int d)
{
	struct dual_gen g = { .p = p, .d = d };
	bool dual = p->schedule == PIPE_DUALPIPE;
	int R = dual ? p->pp / 2 : p->pp;
	int pos = dual && d >= R ? p->pp - 1 - d : d;
	int N = dual ? p->microbatches / 2 : p->microbatches;

	g.flip = dual && d >= R;
	g.wq = malloc(2 * (size_t)N * sizeof(*g.wq));
	if (!g.wq)
		return MB_ERR_NOMEM;
	steps_warmup(&g, R, pos);
	steps_main(&g, R, pos, N);
	steps_cooldown(&g, R, pos);
	free(g.wq);
	return MB_OK;
}
