/*
 * comm.c - what every kind of communicator shares (see comm.h, comm_impl.h): element
 * types and reduction names, argument checks, dispatch through the kind's operations,
 * the host helpers and the one-line failure of an operation.
 */
#include "comm_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_world.h"
#include "status.h"
#include "timer.h"

size_t comm_dtype_size(enum comm_dtype t)
{
	switch (t) {
	case COMM_U8: return 1;
	case COMM_BF16: return 2;
	case COMM_F32: return 4;
	case COMM_F64: return 8;
	case COMM_I32: return 4;
	case COMM_I64: return 8;
	}
	return 0;
}

const char *comm_dtype_name(enum comm_dtype t)
{
	switch (t) {
	case COMM_U8: return "uint8";
	case COMM_BF16: return "bfloat16";
	case COMM_F32: return "float";
	case COMM_F64: return "double";
	case COMM_I32: return "int32";
	case COMM_I64: return "int64";
	}
	return "?";
}

const char *comm_redop_name(enum comm_redop op)
{
	switch (op) {
	case COMM_SUM: return "sum";
	case COMM_MAX: return "max";
	case COMM_MIN: return "min";
	}
	return "?";
}

static double longest_timeout;

double comm_longest_timeout(void)
{
	return longest_timeout > 0 ? longest_timeout : 60.0;
}

struct comm *comm_new(const struct comm_ops *ops, struct backend *b, int rank, int size,
		      double timeout_s, const char *name)
{
	struct comm *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ops = ops;
	c->host = c;
	c->backend = b;
	c->rank = rank;
	c->size = size;
	c->timeout_s = timeout_s;
	longest_timeout = timeout_s > longest_timeout ? timeout_s : longest_timeout;
	snprintf(c->name, sizeof(c->name), "%s", name);
	return c;
}

double comm_deadline(const struct comm *c)
{
	return c->timeout_s > 0 ? timer_now() + c->timeout_s : INFINITY;
}

void comm_fail(const struct comm *c, const char *op, const char *fmt, ...)
{
	char what[800], why[1000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(why, sizeof(why), "comm %s on %s: rank %d of %d: %s", op, c->name, c->rank,
		 c->size, what);
	mpi_world_abort(1, why);
}

/* bad_arg prints one line for an argument error found before anything was posted. */
static int bad_arg(const struct comm *c, const char *op, const char *what)
{
	fprintf(stderr, "moebench: error: rank %d: comm %s on %s: %s\n", mpi_world_rank(), op,
		c ? c->name : "(null)", what);
	return MB_ERR_ARG;
}

/* valid_type says whether t and op are members of their enums. */
static bool valid_type(enum comm_dtype t)
{
	return comm_dtype_size(t) > 0;
}

/* valid_op says whether op is a member of its enum. */
static bool valid_op(enum comm_redop op)
{
	return op == COMM_SUM || op == COMM_MAX || op == COMM_MIN;
}

int comm_world(struct backend *b, double timeout_s, struct comm **out, char *why,
	       size_t why_len)
{
	*out = NULL;
	if (!b || b->kind == BACKEND_CPU)
		return comm_cpu_world(timeout_s, out, why, why_len);
	return comm_nccl_world(b, timeout_s, out, why, why_len);
}

int comm_split(struct comm *parent, int color, int key, struct comm **out)
{
	*out = NULL;
	if (!parent)
		return bad_arg(parent, "split", "no parent communicator");
	return parent->ops->split(parent, color, key, out);
}

void comm_free(struct comm *c)
{
	if (!c)
		return;
	c->ops->release(c);
	free(c->world_ranks);
	free(c);
}

int comm_rank(const struct comm *c)
{
	return c->rank;
}

int comm_size(const struct comm *c)
{
	return c->size;
}

bool comm_on_device(const struct comm *c)
{
	return c->ops->on_device;
}

void comm_library(const struct comm *c, char *buf, size_t len)
{
	c->ops->library(c, buf, len);
}

void comm_set_blocking(struct comm *c, bool blocking)
{
	c->blocking = blocking;
}

bool comm_req_test(struct comm_req *r)
{
	return r->test(r);
}

void comm_set_wait_hook(struct comm *c, void (*hook)(void *ctx, struct comm_req *r),
			void *ctx)
{
	c->wait_hook = hook;
	c->wait_ctx = ctx;
}

void comm_set_name(struct comm *c, const char *name)
{
	snprintf(c->name, sizeof(c->name), "%s", name);
}

int comm_allreduce(struct comm *c, const void *send, void *recv, size_t count,
		   enum comm_dtype t, enum comm_redop op)
{
	if (!valid_type(t) || !valid_op(op))
		return bad_arg(c, "allreduce", "unknown element type or reduction");
	return c->ops->allreduce(c, send, recv, count, t, op);
}

int comm_reduce_scatter(struct comm *c, const void *send, void *recv, size_t count,
			enum comm_dtype t, enum comm_redop op)
{
	if (!valid_type(t) || !valid_op(op))
		return bad_arg(c, "reduce_scatter", "unknown element type or reduction");
	return c->ops->reduce_scatter(c, send, recv, count, t, op);
}

int comm_allgather(struct comm *c, const void *send, void *recv, size_t count,
		   enum comm_dtype t)
{
	if (!valid_type(t))
		return bad_arg(c, "allgather", "unknown element type");
	return c->ops->allgather(c, send, recv, count, t);
}

int comm_alltoall(struct comm *c, const void *send, void *recv, size_t count,
		  enum comm_dtype t)
{
	if (!valid_type(t))
		return bad_arg(c, "alltoall", "unknown element type");
	return c->ops->alltoall(c, send, recv, count, t);
}

int comm_alltoallv(struct comm *c, const void *send, const size_t *send_counts,
		   const size_t *send_displs, void *recv, const size_t *recv_counts,
		   const size_t *recv_displs, enum comm_dtype t)
{
	if (!valid_type(t))
		return bad_arg(c, "alltoallv", "unknown element type");
	return c->ops->alltoallv(c, send, send_counts, send_displs, recv, recv_counts,
				 recv_displs, t);
}

/* check_peer accepts another rank of c. NOTE: a message to oneself is refused rather
 * than buffered: a blocking send to self could never complete. */
static int check_peer(const struct comm *c, const char *op, int peer, enum comm_dtype t)
{
	char what[96];
	if (!valid_type(t))
		return bad_arg(c, op, "unknown element type");
	if (peer >= 0 && peer < c->size && peer != c->rank)
		return MB_OK;
	snprintf(what, sizeof(what), "peer %d is not another rank of %d", peer, c->size);
	return bad_arg(c, op, what);
}

int comm_send(struct comm *c, const void *buf, size_t count, enum comm_dtype t, int peer)
{
	int err = check_peer(c, "send", peer, t);
	return err ? err : c->ops->send(c, buf, count, t, peer);
}

int comm_recv(struct comm *c, void *buf, size_t count, enum comm_dtype t, int peer)
{
	int err = check_peer(c, "recv", peer, t);
	return err ? err : c->ops->recv(c, buf, count, t, peer);
}

int comm_barrier(struct comm *c)
{
	return c->ops->barrier(c);
}

int comm_sync(struct comm *c)
{
	return c->ops->sync(c);
}

int comm_time_rep(struct comm *c, int (*run)(void *), void *state, bool cold,
		  double *seconds)
{
	return c->ops->time_rep(c, run, state, cold, seconds);
}

int comm_time_host(struct comm *c, int (*run)(void *), void *state, bool cold,
		   double *seconds)
{
	(void)c, (void)cold;
	double t0 = timer_now();
	int err = run(state);
	*seconds = timer_now() - t0;
	return err;
}

int comm_host_mem_alloc(struct comm *c, size_t bytes, void **out)
{
	(void)c;
	*out = malloc(bytes > 0 ? bytes : 1);
	return *out ? MB_OK : MB_ERR_NOMEM;
}

void comm_host_mem_free(struct comm *c, void *p)
{
	(void)c;
	free(p);
}

int comm_host_mem_copy(struct comm *c, void *dst, const void *src, size_t bytes, bool to_host)
{
	(void)c, (void)to_host;
	if (bytes > 0)
		memcpy(dst, src, bytes);
	return MB_OK;
}

int comm_mem_alloc(struct comm *c, size_t bytes, void **out)
{
	*out = NULL;
	return c->ops->mem_alloc(c, bytes, out);
}

void comm_mem_free(struct comm *c, void *p)
{
	if (p)
		c->ops->mem_free(c, p);
}

int comm_mem_put(struct comm *c, void *dst, const void *host_src, size_t bytes)
{
	return c->ops->mem_copy(c, dst, host_src, bytes, false);
}

int comm_mem_get(struct comm *c, void *host_dst, const void *src, size_t bytes)
{
	return c->ops->mem_copy(c, host_dst, src, bytes, true);
}

/* The host helpers run on the host twin (c itself for MPI and one rank). */
int comm_host_allreduce_f64(struct comm *c, double *v, size_t count, enum comm_redop op)
{
	return comm_allreduce(c->host, v, v, count, COMM_F64, op);
}

int comm_host_allgather_i64(struct comm *c, const long long *send, long long *recv,
			    size_t count)
{
	return comm_allgather(c->host, send, recv, count, COMM_I64);
}
