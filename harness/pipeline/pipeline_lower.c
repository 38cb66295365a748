/*
 * pipeline_lower.c - one device's operations of a pipeline plan as a program for the
 * MPI executor (pipeline_exec.h): each operation with the messages it waits for, the
 * messages it posts, and its work units (pipeline.h, pipe_lower). The program is freed
 * with pipe_exec_program_free (pipeline_exec.c).
 *
 * A message's tag names the stage that consumes it: ((mb * stages + stage) * 2 +
 * is_grad), the activation entering forward (mb, stage) or the gradient entering
 * backward (mb, stage). Every (micro-batch, stage, direction) is produced once and
 * consumed once, so every send has exactly one receive with its tag, on its peer.
 * NOTE: tags reach 2 x m x stages; MPI promises only 32767 (MPI_TAG_UB is 2^31-1 or
 * near it in Open MPI and MPICH), which the executor checks.
 */
#include "pipeline.h"

#include <stdlib.h>

#include "status.h"

/* msg_tag is the tag of the message consumed by stage `stage` of micro-batch mb. */
static int msg_tag(const struct pipe_plan *p, int mb, int stage, int is_grad)
{
	return (int)(((long)mb * p->stages + stage) * 2 + is_grad);
}

/* add_msg appends (peer, tag) to a message list. */
static void add_msg(struct pipe_msg *list, int *n, int peer, int tag)
{
	list[*n].peer = peer;
	list[*n].tag = tag;
	(*n)++;
}

/* lower_forward adds the messages of forward (mb, stage) run on device `rank`: the
 * activation from the previous stage's device, to the next stage's device. */
static void lower_forward(const struct pipe_plan *p, int rank, int mb, int stage,
			  struct pipe_exec_op *e)
{
	int from = stage > 0 ? pipe_stage_device(p, mb, stage - 1) : rank;
	int to = stage < p->stages - 1 ? pipe_stage_device(p, mb, stage + 1) : rank;

	if (from != rank)
		add_msg(e->recv, &e->n_recv, from, msg_tag(p, mb, stage, 0));
	if (to != rank)
		add_msg(e->send, &e->n_send, to, msg_tag(p, mb, stage + 1, 0));
}

/* lower_backward adds the messages of backward (mb, stage): the gradient from the next
 * stage's device, to the previous stage's device. */
static void lower_backward(const struct pipe_plan *p, int rank, int mb, int stage,
			   struct pipe_exec_op *e)
{
	int from = stage < p->stages - 1 ? pipe_stage_device(p, mb, stage + 1) : rank;
	int to = stage > 0 ? pipe_stage_device(p, mb, stage - 1) : rank;

	if (from != rank)
		add_msg(e->recv, &e->n_recv, from, msg_tag(p, mb, stage, 1));
	if (to != rank)
		add_msg(e->send, &e->n_send, to, msg_tag(p, mb, stage - 1, 1));
}

/* lower_op turns one plan operation into an executor operation. */
static void lower_op(const struct pipe_plan *p, int rank, const struct pipe_op *op,
		     struct pipe_exec_op *e)
{
	static const char kinds[] = "FBWX";

	*e = (struct pipe_exec_op){ .kind = kinds[op->kind], .mb = op->mb, .mb2 = -1,
				    .chunk = pipe_stage_chunk(p, op->mb, op->stage) };
	switch (op->kind) {
	case PIPE_OP_F:
		lower_forward(p, rank, op->mb, op->stage, e);
		e->work = 1;
		break;
	case PIPE_OP_B:
		lower_backward(p, rank, op->mb, op->stage, e);
		e->work = op->with_w ? 2 : 1;
		break;
	case PIPE_OP_W:
		e->work = 1;
		break;
	default:
		e->mb2 = op->mb2;
		lower_forward(p, rank, op->mb, op->stage, e);
		lower_backward(p, rank, op->mb2, op->stage2, e);
		e->work = op->with_w ? 3 : 2;
	}
}

int pipe_lower(const struct pipe_plan *plan, int rank, struct pipe_exec_program *out)
{
	long first, n;

	*out = (struct pipe_exec_program){ .rank = rank };
	if (!plan || rank < 0 || rank >= plan->pp)
		return MB_ERR_ARG;
	first = plan->first[rank];
	n = plan->first[rank + 1] - first;
	out->ops = calloc((size_t)n + 1, sizeof(*out->ops));
	if (!out->ops)
		return MB_ERR_NOMEM;
	for (long i = 0; i < n; i++)
		lower_op(plan, rank, &plan->ops[first + i], &out->ops[i]);
	out->n_ops = (int)n;
	return MB_OK;
}
