/*
 * pipeline_exec_mpi.c - running a pipeline program for real across MPI ranks (see
 * pipeline_exec.h). Compiled only with MPI; pipeline_nompi.c stands in otherwise.
 *
 * One warm-up step, then opts->steps timed steps. In a step every rank meets the
 * others at a barrier, then runs its operations in order: receive the inputs (posted
 * with MPI_Irecv and polled against the step's deadline), do the work (a GEMM chain),
 * post the outputs (MPI_Isend); at the end it waits for its sends to complete. Every
 * wait has a deadline, so a peer that never answers ends the run with a line naming
 * the rank, the operation and the peer (mpi_world_abort), never a silent hang.
 *
 * Clocks: events are timed with CLOCK_MONOTONIC (timer_now), one clock for every rank
 * of a node. NOTE: not MPI_Wtime, whose origin Open MPI sets per process at MPI_Init.
 * For ranks on other nodes than rank 0's, rank 0 measures the clock offset once by
 * ping-pong, keeping the exchange with the shortest round trip (Cristian's method).
 * All event times are put on rank 0's clock relative to the step's start, so a
 * receiver's start can be compared with its sender's end, even when ranks leave the
 * barrier at different moments (oversubscribed cores).
 */
#include "pipeline_exec_impl.h"

#include <mpi.h>
#include <sched.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_world.h"
#include "stats.h"
#include "status.h"
#include "timer.h"

enum {
	SYNC_ROUNDS = 32,   /* ping-pongs per rank for its clock offset */
	SYNC_TAG = 0,       /* on the executor's own communicator, before any step */
};

/* One posted send: its request and the op and message it carries, for error lines. */
struct exec_send {
	MPI_Request req;
	int op, msg;
};

struct exec {
	const struct pipe_exec_program *prog;
	const struct pipe_exec_opts *o;
	MPI_Comm comm;                  /* a duplicate of the world: our tags stay ours */
	int rank, size;
	struct pipe_work work;
	float *recv_buf[PIPE_EXEC_MAX_MSGS];
	float *send_buf;                /* one slot of msg_floats per send of a step */
	struct exec_send *sends;
	int n_posted, n_done;           /* this step's sends: posted, completed prefix */
	double offset;                  /* this rank's clock minus rank 0's, seconds */
	double t0, deadline;            /* this step's start and deadline, own clock */
	double origin;                  /* this step's start on rank 0's clock */
	struct pipe_exec_event *ev;     /* this step's events, own clock */
	double *unit_samples[3];        /* seconds per work unit of every timed F, B, W */
	int n_unit[3];
	double *step_times;
};

/* wait_until polls n requests until all complete or the clock passes deadline (*late).
 * Returns MB_OK or MB_ERR_MPI. */
static int wait_until(MPI_Request *reqs, int n, double deadline, bool *late)
{
	*late = false;
	for (;;) {
		int done = 0;
		int err = MB_MPI_CHECK(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE));
		if (err || done)
			return err;
		if (timer_now() > deadline) {
			*late = true;
			return MB_OK;
		}
		/* NOTE: yield between polls: on oversubscribed cores (CI runs 4 ranks on 2)
		 * the ranks computing get the core; on a free core it returns at once. A
		 * short sleep instead delayed each receive by ~0.1 ms (timer slack). */
		sched_yield();
	}
}

/* abort_late ends every rank with a line saying what this rank waited for. */
__attribute__((format(printf, 2, 3)))
static _Noreturn void abort_late(const struct exec *x, const char *fmt, ...)
{
	char what[384], why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(why, sizeof(why), "pipeline executor: %s (timeout %g s)", what, x->o->timeout_s);
	mpi_world_abort(1, why);
}

/* describe_op writes "op I (K, micro-batch M, chunk C)" for error lines. */
static const char *describe_op(const struct exec *x, int i, char *buf, size_t len)
{
	const struct pipe_exec_op *op = &x->prog->ops[i];
	if (op->mb2 >= 0)
		snprintf(buf, len, "op %d (%c, micro-batches %d and %d, chunk %d)", i, op->kind,
			 op->mb, op->mb2, op->chunk);
	else
		snprintf(buf, len, "op %d (%c, micro-batch %d, chunk %d)", i, op->kind, op->mb,
			 op->chunk);
	return buf;
}

/* wait_collective waits for a collective (or the clock exchange) to complete. Its
 * deadline is twice the step timeout: a rank stuck inside a step reports first. */
static int wait_collective(const struct exec *x, MPI_Request *r, const char *what)
{
	bool late;
	double timeout = x->o->timeout_s > 0 ? x->o->timeout_s : 60.0;
	int err = wait_until(r, 1, timer_now() + 2.0 * timeout, &late);
	if (!err && late)
		abort_late(x, "no answer from the other ranks after %g s %s", 2.0 * timeout, what);
	return err;
}

/* agree makes every rank return an error when any rank's local status is one: the
 * worst status wins. Returns this rank's own status, else the world's. */
static int agree(const struct exec *x, int local)
{
	MPI_Request r;
	int worst = MB_OK;
	int err = MB_MPI_CHECK(MPI_Iallreduce(&local, &worst, 1, MPI_INT, MPI_MIN, x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "while checking the programs");
	if (err)
		return err;
	return local ? local : worst;
}

/* check_local checks this rank's program and options; prints why on failure. */
static int check_local(const struct exec *x)
{
	char why[256];
	int *tag_ub = NULL, flag = 0;
	int err = MB_MPI_CHECK(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag));
	if (err)
		return err;
	err = pipe_exec_check(x->prog, x->o, x->rank, x->size, flag ? *tag_ub : 32767, why,
			      sizeof(why));
	if (err)
		fprintf(stderr, "moebench: error: rank %d: pipeline executor: %s\n", x->rank, why);
	return err;
}

/* alloc_buffers allocates the work, message buffers, events and samples. */
static int alloc_buffers(struct exec *x)
{
	const struct pipe_exec_program *p = x->prog;
	size_t msg = (size_t)x->o->msg_floats, n_ops = p->n_ops > 0 ? (size_t)p->n_ops : 1;
	size_t n_sends = 1, samples = (size_t)x->o->steps * n_ops;
	for (int i = 0; i < p->n_ops; i++)
		n_sends += (size_t)p->ops[i].n_send;
	int err = x->o->stage ? MB_OK : pipe_work_init(&x->work, x->o->tokens, x->o->hidden,
						       1000u + (unsigned)x->rank);
	for (int k = 0; k < PIPE_EXEC_MAX_MSGS; k++)
		x->recv_buf[k] = malloc(msg * sizeof(float));
	x->send_buf = malloc(n_sends * msg * sizeof(float));
	x->sends = calloc(n_sends, sizeof(*x->sends));
	x->ev = calloc(n_ops, sizeof(*x->ev));
	for (int k = 0; k < 3; k++)
		x->unit_samples[k] = malloc(samples * sizeof(double));
	x->step_times = malloc((size_t)x->o->steps * sizeof(double));
	if (err || !x->recv_buf[0] || !x->recv_buf[1] || !x->send_buf || !x->sends || !x->ev ||
	    !x->unit_samples[0] || !x->unit_samples[1] || !x->unit_samples[2] || !x->step_times) {
		fprintf(stderr, "moebench: error: rank %d: pipeline executor: out of memory\n", x->rank);
		return MB_ERR_NOMEM;
	}
	for (int i = 0; i < p->n_ops; i++)
		x->ev[i] = (struct pipe_exec_event){ x->rank, p->ops[i].kind, p->ops[i].mb,
						     p->ops[i].mb2, p->ops[i].chunk, 0.0, 0.0 };
	return MB_OK;
}

/* setup makes the executor's communicator, checks every rank's program and allocates;
 * every rank returns the same success or failure. */
static int setup(struct exec *x, const struct pipe_exec_program *prog,
		 const struct pipe_exec_opts *o)
{
	MPI_Request r;
	x->prog = prog;
	x->o = o;
	x->comm = MPI_COMM_NULL;
	int err;
	if (o->stage) {
		/* NOTE: blocking split: every rank of the world is here, and the comm layer
		 * opened the same world just before without a hang */
		err = MB_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, o->stage->color, o->stage->key,
						  &x->comm));
	} else {
		err = MB_MPI_CHECK(MPI_Comm_idup(MPI_COMM_WORLD, &x->comm, &r));
		if (!err)
			err = wait_collective(x, &r, "while making the pipeline communicator");
	}
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_rank(x->comm, &x->rank));
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_size(x->comm, &x->size));
	if (err)
		return err;
	int local = check_local(x);
	if (!local)
		local = alloc_buffers(x);
	return agree(x, local);
}

/* release frees what setup made. */
static void release(struct exec *x)
{
	pipe_work_free(&x->work);
	for (int k = 0; k < PIPE_EXEC_MAX_MSGS; k++)
		free(x->recv_buf[k]);
	free(x->send_buf);
	free(x->sends);
	free(x->ev);
	for (int k = 0; k < 3; k++)
		free(x->unit_samples[k]);
	free(x->step_times);
	if (x->comm != MPI_COMM_NULL)
		MPI_Comm_free(&x->comm);
}

/* exchange sends (send) or receives one double with peer, waiting for it. */
static int exchange(const struct exec *x, int peer, double *v, bool send)
{
	MPI_Request r;
	int err = send ? MB_MPI_CHECK(MPI_Isend(v, 1, MPI_DOUBLE, peer, SYNC_TAG, x->comm, &r))
		       : MB_MPI_CHECK(MPI_Irecv(v, 1, MPI_DOUBLE, peer, SYNC_TAG, x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "while measuring the clock offsets");
	return err;
}

/* offset_of measures rank peer's clock offset from rank 0's (called on rank 0): of
 * SYNC_ROUNDS ping-pongs, the one with the shortest round trip bounds the error best. */
static int offset_of(const struct exec *x, int peer, double *offset)
{
	double best_rtt = 1e30;
	int err = MB_OK;
	for (int k = 0; !err && k < SYNC_ROUNDS; k++) {
		double a = timer_now(), b = 0.0;
		err = exchange(x, peer, &a, true);
		if (!err)
			err = exchange(x, peer, &b, false);
		double c = timer_now();
		if (!err && c - a < best_rtt) {
			best_rtt = c - a;
			*offset = b - 0.5 * (a + c);
		}
	}
	return err;
}

/* node_leaders sets leaders[q] to the lowest rank on rank q's node (every rank). */
static int node_leaders(const struct exec *x, int *leaders)
{
	MPI_Comm node = MPI_COMM_NULL;
	MPI_Request r;
	int leader = x->rank;
	int err = MB_MPI_CHECK(MPI_Comm_split_type(x->comm, MPI_COMM_TYPE_SHARED, 0,
						   MPI_INFO_NULL, &node));
	if (!err)
		err = MB_MPI_CHECK(MPI_Iallreduce(&x->rank, &leader, 1, MPI_INT, MPI_MIN, node, &r));
	if (!err)
		err = wait_collective(x, &r, "while finding the ranks of each node");
	if (!err)
		err = MB_MPI_CHECK(MPI_Iallgather(&leader, 1, MPI_INT, leaders, 1, MPI_INT, x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "while finding the ranks of each node");
	if (node != MPI_COMM_NULL)
		MPI_Comm_free(&node);
	return err;
}

/* answer_pings is the other side of offset_of, then receives this rank's offset. */
static int answer_pings(struct exec *x)
{
	int err = MB_OK;
	for (int k = 0; !err && k < SYNC_ROUNDS; k++) {
		double a = 0.0, b;
		err = exchange(x, 0, &a, false);
		b = timer_now();
		if (!err)
			err = exchange(x, 0, &b, true);
	}
	if (!err)
		err = exchange(x, 0, &x->offset, false);
	return err;
}

/* sync_clocks gives every rank its clock's offset from rank 0's (x->offset): 0 on rank
 * 0's node, measured elsewhere. */
static int sync_clocks(struct exec *x)
{
	int *leaders = malloc((size_t)x->size * sizeof(int));
	int err = leaders ? node_leaders(x, leaders) : MB_ERR_NOMEM;
	x->offset = 0.0;
	if (!err && x->rank == 0) {
		for (int peer = 1; !err && peer < x->size; peer++) {
			double off = 0.0;
			if (leaders[peer] == 0)
				continue;
			err = offset_of(x, peer, &off);
			if (!err)
				err = exchange(x, peer, &off, true);
		}
	} else if (!err && leaders[x->rank] != 0) {
		err = answer_pings(x);
	}
	free(leaders);
	return err;
}

/* progress tests the oldest pending sends, so that MPI moves them along (large
 * messages need the sender's library to act) while this rank computes. */
static int progress(struct exec *x)
{
	while (x->n_done < x->n_posted) {
		int flag = 0;
		int err = MB_MPI_CHECK(MPI_Test(&x->sends[x->n_done].req, &flag, MPI_STATUS_IGNORE));
		if (err || !flag)
			return err;
		x->n_done++;
	}
	return MB_OK;
}

/* receive posts op i's receives and waits for them until the step's deadline. */
static int receive(struct exec *x, int i)
{
	const struct pipe_exec_op *op = &x->prog->ops[i];
	MPI_Request req[PIPE_EXEC_MAX_MSGS];
	char desc[128];
	bool late;
	int err = MB_OK;
	for (int k = 0; !err && k < op->n_recv; k++)
		err = MB_MPI_CHECK(MPI_Irecv(x->recv_buf[k], x->o->msg_floats, MPI_FLOAT,
					     op->recv[k].peer, op->recv[k].tag, x->comm, &req[k]));
	for (int k = 0; !err && k < op->n_recv; k++) {
		err = wait_until(&req[k], 1, x->deadline, &late);
		if (!err && late)
			abort_late(x, "step exceeded the timeout: %s still waits for rank %d (tag %d)",
				   describe_op(x, i, desc, sizeof(desc)), op->recv[k].peer,
				   op->recv[k].tag);
	}
	return err;
}

/* post_sends posts op i's sends from its send slots (filled by run_op). */
static int post_sends(struct exec *x, int i)
{
	const struct pipe_exec_op *op = &x->prog->ops[i];
	int err = MB_OK;
	for (int k = 0; !err && k < op->n_send; k++) {
		struct exec_send *s = &x->sends[x->n_posted];
		float *buf = x->send_buf + (size_t)x->n_posted * (size_t)x->o->msg_floats;
		s->op = i;
		s->msg = k;
		err = MB_MPI_CHECK(MPI_Isend(buf, x->o->msg_floats, MPI_FLOAT, op->send[k].peer,
					     op->send[k].tag, x->comm, &s->req));
		x->n_posted += !err;
	}
	return err;
}

/* run_op runs op i: receive, work (timed: start, end), send. The copies of messages
 * into and out of the activations count as the op's work. */
static int run_op(struct exec *x, int i)
{
	const struct pipe_exec_op *op = &x->prog->ops[i];
	size_t msg = (size_t)x->o->msg_floats;
	int err = receive(x, i);
	if (err)
		return err;
	x->ev[i].start = timer_now();
	if (x->o->stage) {
		float *out[PIPE_EXEC_MAX_MSGS];
		for (int k = 0; k < op->n_send; k++)
			out[k] = x->send_buf + (size_t)(x->n_posted + k) * msg;
		err = x->o->stage->run(x->o->stage->ctx, op, x->recv_buf, out);
		x->ev[i].end = timer_now();
		if (err)
			fprintf(stderr, "moebench: error: rank %d: pipeline stage work failed in op "
				"%d (%c, micro-batch %d)\n", x->rank, i, op->kind, op->mb);
		return err ? err : post_sends(x, i);
	}
	for (int k = 0; k < op->n_recv; k++)
		pipe_work_load(&x->work, x->recv_buf[k], msg, k > 0);
	for (double left = op->work; !err && left > 0.0; left -= 1.0) {
		pipe_work_gemm(&x->work, left < 1.0 ? left : 1.0);
		err = progress(x);
	}
	for (int k = 0; k < op->n_send; k++)
		pipe_work_store(&x->work, x->send_buf + (size_t)(x->n_posted + k) * msg, msg);
	x->ev[i].end = timer_now();
	if (!err)
		err = post_sends(x, i);
	return err;
}

/* finish_sends waits for the step's sends to complete; a send still pending half a
 * timeout after the step's deadline has a receiver that never took it. */
static int finish_sends(struct exec *x)
{
	char desc[128];
	bool late;
	int err = MB_OK;
	for (; !err && x->n_done < x->n_posted; x->n_done++) {
		struct exec_send *s = &x->sends[x->n_done];
		err = wait_until(&s->req, 1, x->deadline + 0.5 * x->o->timeout_s, &late);
		if (!err && late) {
			const struct pipe_msg *m = &x->prog->ops[s->op].send[s->msg];
			abort_late(x, "step exceeded the timeout: %s sent to rank %d (tag %d), "
				   "which has not received it", describe_op(x, s->op, desc,
				   sizeof(desc)), m->peer, m->tag);
		}
	}
	return err;
}

/* step_span finds the step's start and end over all ranks on rank 0's clock: the
 * earliest barrier exit and the latest end of an operation. */
static int step_span(struct exec *x, double *span)
{
	MPI_Request r;
	int n = x->prog->n_ops;
	double last = n > 0 ? x->ev[n - 1].end : x->t0;
	double local[2] = { -(x->t0 - x->offset), last - x->offset }, world[2] = { 0.0, 0.0 };
	int err = MB_MPI_CHECK(MPI_Iallreduce(local, world, 2, MPI_DOUBLE, MPI_MAX, x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "at the end of a step");
	x->origin = -world[0];
	*span = world[1] - x->origin;
	return err;
}

/* record keeps a timed step's time and each F, B, W op's seconds per work unit. */
static void record(struct exec *x, int step, double span)
{
	x->step_times[step] = span;
	for (int i = 0; i < x->prog->n_ops; i++) {
		const struct pipe_exec_op *op = &x->prog->ops[i];
		int k = pipe_exec_kind_index(op->kind);
		if (k >= 0 && op->work > 0.0)
			x->unit_samples[k][x->n_unit[k]++] = (x->ev[i].end - x->ev[i].start) / op->work;
	}
}

/* run_step runs one step (step < 0: the warm-up, not recorded). */
static int run_step(struct exec *x, int step)
{
	MPI_Request r;
	double span = 0.0;
	int err = MB_MPI_CHECK(MPI_Ibarrier(x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "at the barrier that starts a step");
	if (err)
		return err;
	x->t0 = timer_now();
	x->deadline = x->t0 + x->o->timeout_s;
	x->n_posted = x->n_done = 0;
	for (int i = 0; !err && i < x->prog->n_ops; i++)
		err = run_op(x, i);
	if (!err)
		err = finish_sends(x);
	if (!err)
		err = step_span(x, &span);
	if (!err && step >= 0)
		record(x, step, span);
	return err;
}

/* median_or returns the median of n samples, or fallback when there are none. */
static double median_or(const double *s, int n, double fallback)
{
	struct stats st;
	if (n < 1 || stats_compute(s, (size_t)n, &st))
		return fallback;
	return st.median;
}

/* unit_times sets out->unit_time on every rank: per kind, the median over the ranks
 * that ran it of each rank's median seconds per work unit (0 when none did). */
static int unit_times(struct exec *x, struct pipe_exec_result *out)
{
	MPI_Request r;
	double local[3], *all = malloc((size_t)x->size * 3 * sizeof(double)), *ran = NULL;
	int err = all ? MB_OK : MB_ERR_NOMEM;
	for (int k = 0; k < 3; k++)
		local[k] = median_or(x->unit_samples[k], x->n_unit[k], -1.0);
	if (!err)
		err = MB_MPI_CHECK(MPI_Iallgather(local, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "while gathering the unit times");
	ran = err ? NULL : malloc((size_t)x->size * sizeof(double));
	for (int k = 0; ran && k < 3; k++) {
		int n = 0;
		for (int q = 0; q < x->size; q++)
			if (all[3 * q + k] >= 0.0)
				ran[n++] = all[3 * q + k];
		out->unit_time[k] = median_or(ran, n, 0.0);
	}
	if (!err && !ran)
		err = MB_ERR_NOMEM;
	free(ran);
	free(all);
	return err;
}

/* to_root_clock puts the last step's events on rank 0's clock, from the step's start. */
static void to_root_clock(struct exec *x)
{
	for (int i = 0; i < x->prog->n_ops; i++) {
		x->ev[i].start -= x->offset + x->origin;
		x->ev[i].end -= x->offset + x->origin;
	}
}

/* byte_layout turns rank 0's gathered event counts into byte counts and offsets for
 * MPI_Gatherv and allocates the timeline. */
static int byte_layout(struct pipe_exec_result *out, int *counts, int *displs, int size)
{
	const size_t rec = sizeof(struct pipe_exec_event);
	size_t total = 0;
	for (int q = 0; q < size; q++) {
		if (total + (size_t)counts[q] > (size_t)INT_MAX / rec)
			return MB_ERR_ARG;
		displs[q] = (int)(total * rec);
		counts[q] = (int)((size_t)counts[q] * rec);
		total += (size_t)counts[q] / rec;
	}
	out->events = calloc(total ? total : 1, rec);
	out->n_events = (int)total;
	return out->events ? MB_OK : MB_ERR_NOMEM;
}

/* gather_events gathers the last step's events on rank 0 (fixed-size records as
 * bytes: every rank runs the same build). */
static int gather_events(struct exec *x, struct pipe_exec_result *out)
{
	MPI_Request r;
	int n = x->prog->n_ops, *counts = NULL, *displs = NULL, err = MB_OK;
	bool root = x->rank == 0;
	if (root) {
		counts = calloc((size_t)x->size, sizeof(int));
		displs = calloc((size_t)x->size, sizeof(int));
		err = counts && displs ? MB_OK : MB_ERR_NOMEM;
	}
	if (!err)
		err = MB_MPI_CHECK(MPI_Igather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "while gathering the timeline");
	if (!err && root)
		err = byte_layout(out, counts, displs, x->size);
	to_root_clock(x);
	if (!err)
		err = MB_MPI_CHECK(MPI_Igatherv(x->ev, n * (int)sizeof(*x->ev), MPI_BYTE, out->events,
						counts, displs, MPI_BYTE, 0, x->comm, &r));
	if (!err)
		err = wait_collective(x, &r, "while gathering the timeline");
	free(counts);
	free(displs);
	return err;
}

int pipe_execute(const struct pipe_exec_program *prog, const struct pipe_exec_opts *o,
		 struct pipe_exec_result *out)
{
	struct exec x;
	int err;
	memset(&x, 0, sizeof(x));
	if (!prog || !o || !out)
		return MB_ERR_ARG;
	memset(out, 0, sizeof(*out));
	if (!mpi_world_active()) {
		fprintf(stderr, "moebench: error: the pipeline executor needs one MPI rank per "
			"stage\nhint: run it under mpirun -np P (or srun --mpi=pmix)\n");
		return MB_ERR_UNSUPPORTED;
	}
	err = setup(&x, prog, o);
	if (!err)
		err = sync_clocks(&x);
	for (int step = o->stage ? 0 : -1; !err && step < o->steps; step++)
		err = run_step(&x, step);
	if (!err)
		err = unit_times(&x, out);
	if (!err) {
		out->step_time = median_or(x.step_times, o->steps, 0.0);
		out->step_times = x.step_times;  /* handed over: release leaves it */
		out->n_steps = o->steps;
		x.step_times = NULL;
	}
	if (!err)
		err = gather_events(&x, out);
	release(&x);
	if (err)
		pipe_exec_result_free(out);
	return err;
}
