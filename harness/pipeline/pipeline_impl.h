/*
 * pipeline_impl.h - what the pipeline files share and nobody else needs: appending an
 * operation to a plan while the generators build it, and the DualPipe generators.
 */
#ifndef MB_HARNESS_PIPELINE_IMPL_H
#define MB_HARNESS_PIPELINE_IMPL_H

#include "pipeline.h"

/* pipe_emit appends an operation to the device being built (the generators build
 * device 0 first, then 1, ...; pipe_plan_build sets first[]). The plan was allocated
 * for 3 x m x stages operations, an upper bound: one F, B and W per (micro-batch,
 * stage). */
static inline void pipe_emit(struct pipe_plan *p, int kind, int with_w, int mb, int stage,
			     int mb2, int stage2)
{
	struct pipe_op *op = &p->ops[p->n_ops++];

	op->kind = (unsigned char)kind;
	op->with_w = (unsigned char)with_w;
	op->mb = mb;
	op->stage = stage;
	op->mb2 = mb2;
	op->stage2 = stage2;
}

/* pipe_gen_dualpipe appends device d's operations for dualpipe or dualpipev (the plan
 * says which). Returns MB_OK or MB_ERR_NOMEM. */
int pipe_gen_dualpipe(struct pipe_plan *p, int d);

#endif
