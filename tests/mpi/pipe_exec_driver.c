/*
 * pipe_exec_driver.c - runs a hand-written pipeline program on each MPI rank through
 * pipe_execute and prints rank 0's gathered timeline, for test_pipeline_mpi.c:
 *
 *   mpirun -np P --oversubscribe pipe_exec_driver chain [timeout_s]
 *   mpirun -np 2 --oversubscribe pipe_exec_driver broken [timeout_s]
 *
 * chain: 1F1B over P stages with 2P micro-batches, each B followed by its W (the
 * schedule written out by hand, independent of the schedule generator). broken: rank
 * 1 waits for a message rank 0 never sends, so the run must end with the timeout.
 * Output (rank 0): "step_time_s T", "unit_s F B W", one "ev RANK KIND MB MB2 CHUNK
 * START END" line per operation. Exit status 0, or 1 when pipe_execute failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_world.h"
#include "pipeline_exec.h"
#include "status.h"

/* add_op appends an op with at most one receive and one send (peer -1: none). */
static void add_op(struct pipe_exec_program *p, char kind, int mb, int recv_peer,
		   int recv_tag, int send_peer, int send_tag)
{
	struct pipe_exec_op *op = &p->ops[p->n_ops++];
	*op = (struct pipe_exec_op){ .kind = kind, .mb = mb, .mb2 = -1, .work = 1.0 };
	if (recv_peer >= 0)
		op->recv[op->n_recv++] = (struct pipe_msg){ recv_peer, recv_tag };
	if (send_peer >= 0)
		op->send[op->n_send++] = (struct pipe_msg){ send_peer, send_tag };
}

/* add_fwd and add_bwd append stage s's F, or B and W, of micro-batch mb: F moves
 * activations up the stages (tag 2 mb), B gradients down (tag 2 mb + 1). */
static void add_fwd(struct pipe_exec_program *p, int s, int stages, int mb)
{
	add_op(p, 'F', mb, s > 0 ? s - 1 : -1, 2 * mb, s < stages - 1 ? s + 1 : -1, 2 * mb);
}

static void add_bwd(struct pipe_exec_program *p, int s, int stages, int mb)
{
	add_op(p, 'B', mb, s < stages - 1 ? s + 1 : -1, 2 * mb + 1, s > 0 ? s - 1 : -1,
	       2 * mb + 1);
	add_op(p, 'W', mb, -1, 0, -1, 0);
}

/* build_chain writes stage s's 1F1B order: warm-up forwards, one-forward-one-backward,
 * cool-down backwards. */
static void build_chain(struct pipe_exec_program *p, int s, int stages, int m)
{
	int warm = stages - s - 1 < m ? stages - s - 1 : m;
	for (int i = 0; i < warm; i++)
		add_fwd(p, s, stages, i);
	for (int i = 0; i + warm < m; i++) {
		add_fwd(p, s, stages, i + warm);
		add_bwd(p, s, stages, i);
	}
	for (int i = m - warm; i < m; i++)
		add_bwd(p, s, stages, i);
}

/* build_broken: rank 0 sends tag 0 to rank 1, which waits for tag 999 instead. */
static void build_broken(struct pipe_exec_program *p, int rank)
{
	if (rank == 0)
		add_op(p, 'F', 0, -1, 0, 1, 0);
	else if (rank == 1)
		add_op(p, 'F', 0, 0, 999, -1, 0);
}

/* print_timeline prints rank 0's result. */
static void print_timeline(const struct pipe_exec_result *r)
{
	printf("step_time_s %.9f\nunit_s %.9f %.9f %.9f\n", r->step_time, r->unit_time[0],
	       r->unit_time[1], r->unit_time[2]);
	for (int i = 0; i < r->n_events; i++) {
		const struct pipe_exec_event *e = &r->events[i];
		printf("ev %d %c %d %d %d %.9f %.9f\n", e->rank, e->kind, e->mb, e->mb2, e->chunk,
		       e->start, e->end);
	}
}

/* run builds this rank's program for the scenario and executes it. */
static int run(const char *scenario, double timeout)
{
	int rank = mpi_world_rank(), stages = mpi_world_size(), m = 2 * stages;
	struct pipe_exec_program p = { rank, 0, calloc((size_t)(3 * m), sizeof(*p.ops)) };
	struct pipe_exec_opts o = { .hidden = 384, .tokens = 192, .msg_floats = 192 * 384,
				    .steps = 3, .timeout_s = timeout };
	struct pipe_exec_result r;
	int err = p.ops ? MB_OK : MB_ERR_NOMEM;
	if (!err && strcmp(scenario, "chain") == 0)
		build_chain(&p, rank, stages, m);
	else if (!err)
		build_broken(&p, rank);
	if (!err)
		err = pipe_execute(&p, &o, &r);
	if (!err && mpi_world_is_root())
		print_timeline(&r);
	if (!err)
		pipe_exec_result_free(&r);
	pipe_exec_program_free(&p);
	return err;
}

int main(int argc, char **argv)
{
	if (mpi_world_init(&argc, &argv))
		return 1;
	if (argc < 2 || (strcmp(argv[1], "chain") && strcmp(argv[1], "broken"))) {
		fprintf(stderr, "usage: pipe_exec_driver chain|broken [timeout_s]\n");
		mpi_world_finalize();
		return 2;
	}
	int err = run(argv[1], argc > 2 ? atof(argv[2]) : 30.0);
	if (err)
		fprintf(stderr, "pipe_exec_driver: rank %d: %s\n", mpi_world_rank(), mb_status_str(err));
	mpi_world_finalize();
	return err ? 1 : 0;
}
