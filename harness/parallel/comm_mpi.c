/*
 * comm_mpi.c - communicators of the CPU backend over MPI, on host buffers (see
 * comm.h). Compiled only with MPI; parallel_nompi.c stands in otherwise. A run that no
 * launcher started (MPI not active) gets the one-rank communicator of comm_self.c.
 *
 * Every operation is posted as its nonblocking form (MPI_Iallreduce, MPI_Ialltoallv,
 * MPI_Isend ...) and completed by polling MPI_Test against the communicator's deadline,
 * as pipeline_exec_mpi.c does: any MPI error ends every rank with one line naming the
 * rank, the operation and the cause (comm_fail); a wait past the deadline first asks
 * every rank for a word (name_silent), so the line names the rank that stopped
 * answering, not only the ones that waited. comm_set_blocking makes the collectives
 * blocking calls instead (timed like nccl-tests' MPI peers and IMB), under the
 * watchdog of comm_watch.c.
 *
 * BF16 has no MPI type: it travels as MPI_UINT16_T, and its reductions are user
 * operations that widen to float, combine, and round back (kernels/common/bf16.h).
 */
#include "comm_impl.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf16.h"
#include "mpi_world.h"
#include "status.h"
#include "timer.h"

enum { P2P_TAG = 7, DIAG_TAG = 8 };

struct mpi_impl {
	MPI_Comm comm;        /* our own duplicate or split: our messages stay ours */
	MPI_Op bf16_op[3];    /* COMM_SUM, COMM_MAX, COMM_MIN on BF16 */
	int *counts;          /* 4 x size ints: alltoallv's counts and displacements */
};

/* bf16_sum, bf16_max, bf16_min combine BF16 vectors (MPI_User_function): inout[i] =
 * in[i] op inout[i], computed in float and rounded to BF16. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *dt)
{
	const uint16_t *a = in;
	uint16_t *b = inout;
	(void)dt;
	for (int i = 0; i < *len; i++)
		b[i] = bf16_from_float(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

/* bf16_max: see bf16_sum. */
static void bf16_max(void *in, void *inout, int *len, MPI_Datatype *dt)
{
	const uint16_t *a = in;
	uint16_t *b = inout;
	(void)dt;
	for (int i = 0; i < *len; i++)
		b[i] = bf16_from_float(fmaxf(bf16_to_float(a[i]), bf16_to_float(b[i])));
}

/* bf16_min: see bf16_sum. */
static void bf16_min(void *in, void *inout, int *len, MPI_Datatype *dt)
{
	const uint16_t *a = in;
	uint16_t *b = inout;
	(void)dt;
	for (int i = 0; i < *len; i++)
		b[i] = bf16_from_float(fminf(bf16_to_float(a[i]), bf16_to_float(b[i])));
}

/* mpi_type maps an element type to MPI's. */
static MPI_Datatype mpi_type(enum comm_dtype t)
{
	switch (t) {
	case COMM_U8: return MPI_UINT8_T;
	case COMM_BF16: return MPI_UINT16_T;
	case COMM_F32: return MPI_FLOAT;
	case COMM_F64: return MPI_DOUBLE;
	case COMM_I32: return MPI_INT32_T;
	case COMM_I64: return MPI_INT64_T;
	}
	return MPI_DATATYPE_NULL;
}

/* mpi_op maps a reduction on t to MPI's, or to our BF16 operation. */
static MPI_Op mpi_op(const struct mpi_impl *m, enum comm_dtype t, enum comm_redop op)
{
	if (t == COMM_BF16)
		return m->bf16_op[op];
	return op == COMM_SUM ? MPI_SUM : op == COMM_MAX ? MPI_MAX : MPI_MIN;
}

/* posted ends the run with MPI's error string when posting op failed. */
static void posted(const struct comm *c, const char *op, int mpi_err)
{
	char msg[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (mpi_err == MPI_SUCCESS)
		return;
	if (MPI_Error_string(mpi_err, msg, &len) != MPI_SUCCESS)
		snprintf(msg, sizeof(msg), "MPI error %d", mpi_err);
	comm_fail(c, op, "%s", msg);
}

/* impl_of is c's MPI state. */
static struct mpi_impl *impl_of(const struct comm *c)
{
	return c->impl;
}

/* diag_grace is how long a rank whose wait timed out listens for the others' word:
 * every live rank waiting on the same operation times out within about that much. */
static double diag_grace(const struct comm *c)
{
	double g = 0.5 * c->timeout_s;
	return g < 1.0 ? 1.0 : g > 10.0 ? 10.0 : g;
}

/* list_silent appends the k-th silent rank p to list: the first three with their
 * world rank, pid, host and state (comm_peer_name), up to the eighth as numbers, then
 * "...". */
static void list_silent(const struct comm *c, int p, int k, char *list, size_t len)
{
	char who[200];
	size_t used = strlen(list);
	if (k > 9)
		return;
	if (k <= 3)
		comm_peer_name(c, p, who, sizeof(who));
	else
		snprintf(who, sizeof(who), k <= 8 ? "rank %d" : "...", p);
	snprintf(list + used, len - used, "%s%s", k > 1 ? ", " : "", who);
}

/* report_silent ends the run naming the ranks whose word did not come (rr[p] still
 * pending; rr NULL: none could be asked). Those whose process this host sees stopped
 * or gone are the cause; any other that kept silent is then only blocked elsewhere (in
 * a blocking call, say, waiting for the same dead rank), and is listed apart. */
static _Noreturn void report_silent(const struct comm *c, const char *op,
				    const MPI_Request *rr)
{
	char dead[640] = "", quiet[640] = "";
	int ndead = 0, nquiet = 0;
	for (int p = 0; rr && p < c->size; p++) {
		if (rr[p] == MPI_REQUEST_NULL)
			continue;
		enum comm_peer_state st = comm_peer_state(c, p);
		if (st == COMM_PEER_STOPPED || st == COMM_PEER_GONE)
			list_silent(c, p, ++ndead, dead, sizeof(dead));
		else
			list_silent(c, p, ++nquiet, quiet, sizeof(quiet));
	}
	if (ndead)
		comm_fail(c, op, "not complete after %g s: %s stopped answering (no word from %s "
			  "within %g s%s%s)", c->timeout_s, dead, ndead > 1 ? "them" : "it",
			  diag_grace(c), nquiet ? "; silent too, its process running: " : "", quiet);
	if (nquiet)
		comm_fail(c, op, "not complete after %g s: %s stopped answering (no word from %s "
			  "within %g s)", c->timeout_s, quiet, nquiet > 1 ? "them" : "it",
			  diag_grace(c));
	comm_fail(c, op, "not complete after %g s, yet every rank answered: one is busy "
		  "elsewhere (a longer --timeout?)", c->timeout_s);
}

/* name_silent runs after this rank's wait on op passed its deadline: it sends every
 * other rank a word (DIAG_TAG) and listens for theirs for diag_grace seconds. The ranks
 * that said nothing are the ones that stopped answering; the lowest live rank reports
 * them and ends the run (the others wait to be ended, so one line is printed). Live: it
 * answered, or its process is not stopped or gone (it may wait on another communicator,
 * deaf to this one's words). NOTE: as in comm_watch.c, a lower rank already gone may be
 * the one that reported, so a rank reports at once only when every rank before it is
 * stopped; a waiting rank whose lowest live rank has gone meanwhile ends without a
 * line: that rank printed it. */
static _Noreturn void name_silent(const struct comm *c, const char *op)
{
	struct mpi_impl *m = impl_of(c);
	int n = c->size, me = c->rank, word = me, first_live = -1;
	bool lower_gone = false;
	int *got = calloc((size_t)n, sizeof(int));
	MPI_Request *rr = calloc((size_t)n, sizeof(MPI_Request));
	MPI_Request *sr = calloc((size_t)n, sizeof(MPI_Request));
	double end = timer_now() + diag_grace(c);
	bool asked = got && rr && sr;

	for (int p = 0; asked && p < n; p++) {
		rr[p] = sr[p] = MPI_REQUEST_NULL;
		if (p == me)
			continue;
		MPI_Irecv(&got[p], 1, MPI_INT, p, DIAG_TAG, m->comm, &rr[p]);
		MPI_Isend(&word, 1, MPI_INT, p, DIAG_TAG, m->comm, &sr[p]);
	}
	/* NOTE: MPI_Test one by one: MPI_Testall completes none until all are done. */
	for (int left = n - 1; asked && left > 0 && timer_now() < end; sched_yield())
		for (int p = 0, done = 0; p < n; p++, done = 0)
			if (rr[p] != MPI_REQUEST_NULL && MPI_Test(&rr[p], &done, MPI_STATUS_IGNORE) ==
			    MPI_SUCCESS && done)
				left--;
	for (int p = 0; asked && p < me && first_live < 0; p++) {
		enum comm_peer_state st = comm_peer_state(c, p);
		lower_gone = lower_gone || st == COMM_PEER_GONE;
		if (rr[p] == MPI_REQUEST_NULL || (st != COMM_PEER_STOPPED && st != COMM_PEER_GONE))
			first_live = p;
	}
	if (first_live >= 0 || lower_gone) {
		sleep(2 * (unsigned)diag_grace(c) + 2);
		if (first_live >= 0 && comm_peer_state(c, first_live) == COMM_PEER_GONE) {
			MPI_Abort(MPI_COMM_WORLD, 1);
			_exit(1);
		}
	}
	report_silent(c, op, asked ? rr : NULL);
}

/* wait_req polls r until it completes; on an error it ends the run (comm_fail), past
 * the deadline it names the silent ranks first (name_silent). NOTE: sched_yield between polls, as pipeline_exec_mpi.c: on
 * oversubscribed cores the ranks doing work get the core. */
/* req_test is comm_req_test on MPI: one MPI_Test (a completed request reads as null). */
static bool req_test(struct comm_req *q)
{
	int done = 0;
	posted(q->c, q->op, MPI_Test(q->req, &done, MPI_STATUS_IGNORE));
	return done != 0;
}

static void wait_req(const struct comm *c, const char *op, MPI_Request *r)
{
	/* the overlap's hook runs other work while the operation is in flight */
	if (c->wait_hook) {
		struct comm_req q = { req_test, c, op, r };
		c->wait_hook(c->wait_ctx, &q);
	}
	double deadline = comm_deadline(c);
	for (;;) {
		int done = 0;
		posted(c, op, MPI_Test(r, &done, MPI_STATUS_IGNORE));
		if (done)
			return;
		if (timer_now() > deadline)
			name_silent(c, op);
		sched_yield();
	}
}

/* to_int narrows a count or displacement to MPI's int, or ends the run saying so. */
static int to_int(const struct comm *c, const char *op, size_t n)
{
	if (n > INT_MAX)
		comm_fail(c, op, "%zu elements exceed MPI's int counts", n);
	return (int)n;
}

/* mpi_allreduce: MPI_Iallreduce (MPI_Allreduce when blocking), MPI_IN_PLACE when send
 * is recv. */
static int mpi_allreduce(struct comm *c, const void *send, void *recv, size_t count,
			 enum comm_dtype t, enum comm_redop op)
{
	struct mpi_impl *m = impl_of(c);
	MPI_Request r;
	const void *s = send == recv ? MPI_IN_PLACE : send;
	int n = to_int(c, "allreduce", count);
	if (c->blocking) {
		comm_watch_enter(c, "allreduce");
		posted(c, "allreduce", MPI_Allreduce(s, recv, n, mpi_type(t), mpi_op(m, t, op),
						     m->comm));
		comm_watch_leave();
		return MB_OK;
	}
	posted(c, "allreduce", MPI_Iallreduce(s, recv, n, mpi_type(t), mpi_op(m, t, op),
					      m->comm, &r));
	wait_req(c, "allreduce", &r);
	return MB_OK;
}

/* mpi_reduce_scatter: MPI_Ireduce_scatter_block (count elements per rank; the blocking
 * call when blocking). */
static int mpi_reduce_scatter(struct comm *c, const void *send, void *recv, size_t count,
			      enum comm_dtype t, enum comm_redop op)
{
	struct mpi_impl *m = impl_of(c);
	MPI_Request r;
	int n = to_int(c, "reduce_scatter", count);
	if (c->blocking) {
		comm_watch_enter(c, "reduce_scatter");
		posted(c, "reduce_scatter", MPI_Reduce_scatter_block(send, recv, n, mpi_type(t),
								     mpi_op(m, t, op), m->comm));
		comm_watch_leave();
		return MB_OK;
	}
	posted(c, "reduce_scatter", MPI_Ireduce_scatter_block(send, recv, n, mpi_type(t),
							      mpi_op(m, t, op), m->comm, &r));
	wait_req(c, "reduce_scatter", &r);
	return MB_OK;
}

/* mpi_allgather: MPI_Iallgather (MPI_Allgather when blocking). */
static int mpi_allgather(struct comm *c, const void *send, void *recv, size_t count,
			 enum comm_dtype t)
{
	MPI_Request r;
	int n = to_int(c, "allgather", count);
	if (c->blocking) {
		comm_watch_enter(c, "allgather");
		posted(c, "allgather", MPI_Allgather(send, n, mpi_type(t), recv, n, mpi_type(t),
						     impl_of(c)->comm));
		comm_watch_leave();
		return MB_OK;
	}
	posted(c, "allgather", MPI_Iallgather(send, n, mpi_type(t), recv, n, mpi_type(t),
					      impl_of(c)->comm, &r));
	wait_req(c, "allgather", &r);
	return MB_OK;
}

/* mpi_alltoall: MPI_Ialltoall (MPI_Alltoall when blocking). */
static int mpi_alltoall(struct comm *c, const void *send, void *recv, size_t count,
			enum comm_dtype t)
{
	MPI_Request r;
	int n = to_int(c, "alltoall", count);
	if (c->blocking) {
		comm_watch_enter(c, "alltoall");
		posted(c, "alltoall", MPI_Alltoall(send, n, mpi_type(t), recv, n, mpi_type(t),
						   impl_of(c)->comm));
		comm_watch_leave();
		return MB_OK;
	}
	posted(c, "alltoall", MPI_Ialltoall(send, n, mpi_type(t), recv, n, mpi_type(t),
					    impl_of(c)->comm, &r));
	wait_req(c, "alltoall", &r);
	return MB_OK;
}

/* mpi_alltoallv narrows the four per-peer arrays into the communicator's int arrays. */
static int mpi_alltoallv(struct comm *c, const void *send, const size_t *send_counts,
			 const size_t *send_displs, void *recv, const size_t *recv_counts,
			 const size_t *recv_displs, enum comm_dtype t)
{
	struct mpi_impl *m = impl_of(c);
	int n = c->size, *sc = m->counts, *sd = sc + n, *rc = sd + n, *rd = rc + n;
	MPI_Request r;
	for (int p = 0; p < n; p++) {
		sc[p] = to_int(c, "alltoallv", send_counts[p]);
		sd[p] = to_int(c, "alltoallv", send_displs[p]);
		rc[p] = to_int(c, "alltoallv", recv_counts[p]);
		rd[p] = to_int(c, "alltoallv", recv_displs[p]);
	}
	posted(c, "alltoallv", MPI_Ialltoallv(send, sc, sd, mpi_type(t), recv, rc, rd,
					      mpi_type(t), m->comm, &r));
	wait_req(c, "alltoallv", &r);
	return MB_OK;
}

/* mpi_send: MPI_Isend on the communicator's own tag. */
static int mpi_send(struct comm *c, const void *buf, size_t count, enum comm_dtype t,
		    int peer)
{
	MPI_Request r;
	posted(c, "send", MPI_Isend(buf, to_int(c, "send", count), mpi_type(t), peer, P2P_TAG,
				    impl_of(c)->comm, &r));
	wait_req(c, "send", &r);
	return MB_OK;
}

/* mpi_recv: MPI_Irecv; a longer message than count is an error (truncation). */
static int mpi_recv(struct comm *c, void *buf, size_t count, enum comm_dtype t, int peer)
{
	MPI_Request r;
	posted(c, "recv", MPI_Irecv(buf, to_int(c, "recv", count), mpi_type(t), peer, P2P_TAG,
				    impl_of(c)->comm, &r));
	wait_req(c, "recv", &r);
	return MB_OK;
}

/* barrier_as waits until every rank of c has arrived; op names it in error lines. */
static void barrier_as(struct comm *c, const char *op)
{
	MPI_Request r;
	posted(c, op, MPI_Ibarrier(impl_of(c)->comm, &r));
	wait_req(c, op, &r);
}

/* mpi_barrier: MPI_Ibarrier. */
static int mpi_barrier(struct comm *c)
{
	barrier_as(c, "barrier");
	return MB_OK;
}

/* mpi_sync: every operation completed before it returned. */
static int mpi_sync(struct comm *c)
{
	(void)c;
	return MB_OK;
}

/* mpi_bcast: MPI_Ibcast of bytes (the NCCL bootstrap's unique id). */
static int mpi_bcast(struct comm *c, void *buf, size_t bytes, int root)
{
	MPI_Request r;
	posted(c, "bcast", MPI_Ibcast(buf, to_int(c, "bcast", bytes), MPI_BYTE, root,
				      impl_of(c)->comm, &r));
	wait_req(c, "bcast", &r);
	return MB_OK;
}

/* mpi_library writes "MPI 3.1 (Open MPI v4.1.4)": the standard, then the first clause
 * of the library's own version string. */
static void mpi_library(const struct comm *c, char *buf, size_t len)
{
	char lib[MPI_MAX_LIBRARY_VERSION_STRING];
	int major = 0, minor = 0, n = 0;
	(void)c;
	MPI_Get_version(&major, &minor);
	if (MPI_Get_library_version(lib, &n) != MPI_SUCCESS)
		lib[0] = '\0';
	lib[strcspn(lib, ",\n")] = '\0';
	snprintf(buf, len, "MPI %d.%d%s%s%s", major, minor, lib[0] ? " (" : "", lib,
		 lib[0] ? ")" : "");
}

/* mpi_release frees the MPI objects of c (MPI_Comm_free is local: no wait). */
static void mpi_release(struct comm *c)
{
	struct mpi_impl *m = impl_of(c);
	if (!m)
		return;
	for (int k = 0; k < 3; k++)
		if (m->bf16_op[k] != MPI_OP_NULL)
			MPI_Op_free(&m->bf16_op[k]);
	if (m->comm != MPI_COMM_NULL)
		MPI_Comm_free(&m->comm);
	free(m->counts);
	free(m);
	c->impl = NULL;
}

static int mpi_split(struct comm *parent, int color, int key, struct comm **out);

static const struct comm_ops mpi_ops = {
	.kind = "mpi",
	.on_device = false,
	.split = mpi_split,
	.release = mpi_release,
	.library = mpi_library,
	.allreduce = mpi_allreduce,
	.reduce_scatter = mpi_reduce_scatter,
	.allgather = mpi_allgather,
	.alltoall = mpi_alltoall,
	.alltoallv = mpi_alltoallv,
	.send = mpi_send,
	.recv = mpi_recv,
	.barrier = mpi_barrier,
	.sync = mpi_sync,
	.time_rep = comm_time_host,
	.mem_alloc = comm_host_mem_alloc,
	.mem_free = comm_host_mem_free,
	.mem_copy = comm_host_mem_copy,
	.bcast = mpi_bcast,
};

/* map_world sets c's world rank of each of its ranks, for the lines that name one
 * (comm_peer_name). Without it (no memory, an MPI error) the ranks are named as c's. */
static void map_world(struct comm *c)
{
	MPI_Group g = MPI_GROUP_NULL, wg = MPI_GROUP_NULL;
	int *mine = malloc(sizeof(int) * (size_t)c->size);
	int *world = malloc(sizeof(int) * (size_t)c->size);
	for (int r = 0; mine && r < c->size; r++)
		mine[r] = r;
	if (mine && world && MPI_Comm_group(impl_of(c)->comm, &g) == MPI_SUCCESS &&
	    MPI_Comm_group(MPI_COMM_WORLD, &wg) == MPI_SUCCESS &&
	    MPI_Group_translate_ranks(g, c->size, mine, wg, world) == MPI_SUCCESS) {
		c->world_ranks = world;
		world = NULL;
	}
	if (g != MPI_GROUP_NULL)
		MPI_Group_free(&g);
	if (wg != MPI_GROUP_NULL)
		MPI_Group_free(&wg);
	free(mine);
	free(world);
}

/* make_comm wraps an MPI communicator of ours (freed with it, also on failure). */
static int make_comm(MPI_Comm mc, double timeout_s, const char *name, struct comm **out)
{
	static MPI_User_function *const fns[3] = { bf16_sum, bf16_max, bf16_min };
	struct mpi_impl *m = calloc(1, sizeof(*m));
	int rank = 0, size = 1, err = m ? MB_OK : MB_ERR_NOMEM;
	if (m) {
		m->comm = mc;
		for (int k = 0; k < 3; k++)
			m->bf16_op[k] = MPI_OP_NULL;
	} else {
		MPI_Comm_free(&mc);
	}
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_rank(mc, &rank));
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_size(mc, &size));
	for (int k = 0; k < 3 && !err; k++)
		err = MB_MPI_CHECK(MPI_Op_create(fns[k], 1, &m->bf16_op[k]));
	if (!err)
		m->counts = malloc(4 * (size_t)size * sizeof(int));
	*out = err ? NULL : comm_new(&mpi_ops, NULL, rank, size, timeout_s, name);
	if (!err && (!m->counts || !*out))
		err = MB_ERR_NOMEM;
	if (!err) {
		(*out)->impl = m;
		map_world(*out);
		return MB_OK;
	}
	free(*out);
	*out = NULL;
	struct comm tmp = { .impl = m };
	mpi_release(&tmp);
	return err;
}

/* mpi_split waits (bounded) until every rank of parent has arrived, so the blocking
 * MPI_Comm_split after it cannot hang on a missing peer, then splits. */
static int mpi_split(struct comm *parent, int color, int key, struct comm **out)
{
	MPI_Comm mc = MPI_COMM_NULL;
	char name[48];
	barrier_as(parent, "split");
	posted(parent, "split", MPI_Comm_split(impl_of(parent)->comm,
					       color < 0 ? MPI_UNDEFINED : color, key, &mc));
	if (mc == MPI_COMM_NULL)
		return MB_OK;
	snprintf(name, sizeof(name), "%.32s.%d", parent->name, color);
	return make_comm(mc, parent->timeout_s, name, out);
}

/* gather_peers tells every rank of the world c every rank's pid and host
 * (comm_peer_set), so that a line naming a silent rank can name its process; nothing
 * when start-up did (mpi_world_agree: programs such as tests/mpi's drivers skip it). */
static int gather_peers(struct comm *c)
{
	struct comm_peer me, *all;
	MPI_Request r;
	if (comm_peer_known())
		return MB_OK;
	if (!(all = calloc((size_t)c->size, sizeof(*all))))
		return MB_ERR_NOMEM;
	comm_peer_self(&me);
	posted(c, "init", MPI_Iallgather(&me, (int)sizeof(me), MPI_BYTE, all, (int)sizeof(me),
					 MPI_BYTE, impl_of(c)->comm, &r));
	wait_req(c, "init", &r);
	int err = comm_peer_set(all, c->size);
	free(all);
	return err;
}

int comm_cpu_world(double timeout_s, struct comm **out, char *why, size_t why_len)
{
	MPI_Comm mc = MPI_COMM_NULL;
	MPI_Request r;
	if (!mpi_world_active())
		return comm_self_world(timeout_s, out);
	struct comm probe = { .name = "world", .rank = mpi_world_rank(),
			      .size = mpi_world_size(), .timeout_s = timeout_s };
	posted(&probe, "init", MPI_Comm_idup(MPI_COMM_WORLD, &mc, &r));
	wait_req(&probe, "init", &r);
	int err = make_comm(mc, timeout_s, "world", out);
	if (!err && (err = gather_peers(*out))) {
		comm_free(*out);
		*out = NULL;
	}
	if (err)
		snprintf(why, why_len, "cannot set up the MPI world communicator: %s",
			 mb_status_str(err));
	return err;
}
