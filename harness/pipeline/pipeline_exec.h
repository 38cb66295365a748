/*
 * pipeline_exec.h - running a pipeline schedule for real across MPI ranks (one rank per
 * pipeline device), the seam between the schedule generator (pipeline.h lowers a
 * schedule into one program per rank) and the executor (pipeline_exec.c runs it).
 *
 * A program is the ordered list of a rank's operations. Each operation first receives
 * its inputs (activations for a forward, gradients for a backward) from the peers
 * listed, then does real work (a chain of GEMMs whose size is set by the executor's
 * options, `work` units of it; or the caller's stage work, struct pipe_exec_stage: the
 * training step's model stages under `train --pp`), then posts its outputs to the peers
 * listed, without waiting for them to be received. Time a rank spends waiting for a receive is idle
 * (bubble) time. Messages match by tag, which the lowering makes unique per
 * (micro-batch, virtual stage, direction).
 */
#ifndef MB_HARNESS_PIPELINE_EXEC_H
#define MB_HARNESS_PIPELINE_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#define PIPE_EXEC_MAX_MSGS 2

struct pipe_msg {
	int peer;   /* MPI rank in the pipeline communicator */
	int tag;    /* unique per (micro-batch, virtual stage, direction); >= 0 */
};

struct pipe_exec_op {
	char kind;      /* 'F' forward, 'B' backward for inputs, 'W' backward for weights,
			 * 'X' an overlapped F&B pair (DualPipe) */
	int mb;         /* micro-batch (for 'X': the forward's) */
	int mb2;        /* 'X': the backward's micro-batch; else -1 */
	int chunk;      /* the device's model chunk (interleaved, DualPipe direction) */
	int n_recv;
	struct pipe_msg recv[PIPE_EXEC_MAX_MSGS];
	int n_send;
	struct pipe_msg send[PIPE_EXEC_MAX_MSGS];
	double work;    /* work units: F, B and W are 1 each, 'X' is 2 */
};

struct pipe_exec_program {
	int rank;
	int n_ops;
	struct pipe_exec_op *ops;   /* owned; free with pipe_exec_program_free */
};

void pipe_exec_program_free(struct pipe_exec_program *p);

/* Real stage work in place of the GEMM chain (the training step under --pp): run does
 * op's work taking its received messages in[0 .. n_recv) and filling its messages
 * out[0 .. n_send), msg_floats each; a non-zero status ends the step on this rank. The
 * ranks of one pipeline are those passing the same color (MPI_Comm_split of the world,
 * key ordering them as the program's peers): every rank of the world calls pipe_execute
 * together, each pipeline of a data-parallel grid on its own communicator. */
struct pipe_exec_stage {
	void *ctx;
	int (*run)(void *ctx, const struct pipe_exec_op *op, float *const *in,
		   float *const *out);
	int color, key;
};

struct pipe_exec_opts {
	int hidden;        /* GEMM size: each work unit is tokens x hidden x hidden */
	int tokens;        /* tokens per micro-batch */
	int msg_floats;    /* floats per activation/gradient message (tokens * hidden) */
	int steps;         /* timed steps (after one warm-up step) */
	double timeout_s;  /* abort all ranks when a step exceeds this */
	/* stage work (NULL: the GEMM chain above); with it there is no warm-up step (the
	 * work changes state) and hidden, tokens only have to be positive */
	const struct pipe_exec_stage *stage;
};

/* One executed operation, as rank 0 gathers them. Times in seconds since the step
 * began (a barrier), on one clock per rank. */
struct pipe_exec_event {
	int rank;
	char kind;
	int mb, mb2, chunk;
	double start, end;       /* compute only; the wait before start is idle */
};

struct pipe_exec_result {
	double step_time;             /* slowest rank's last end, median over steps */
	double unit_time[3];          /* measured median seconds per F, B, W work unit */
	struct pipe_exec_event *events; /* rank 0: every event of the last step; else NULL */
	int n_events;
	double *step_times;           /* each timed step's span (slowest rank), owned */
	int n_steps;
};

/* pipe_execute runs prog on this rank (collective over the pipeline communicator: every
 * rank calls it with its own program). Returns MB_OK; MB_ERR_MPI (a message names the
 * rank and operation); MB_ERR_UNSUPPORTED when built without MPI. On rank 0 *out holds
 * the gathered timeline; free with pipe_exec_result_free. */
int pipe_execute(const struct pipe_exec_program *prog, const struct pipe_exec_opts *o,
		 struct pipe_exec_result *out);
void pipe_exec_result_free(struct pipe_exec_result *r);

#endif
