/*
 * comm_nccl.c - communicators of the CUDA backend over NCCL, on device buffers, every
 * call enqueued on the backend's stream (see comm.h). Compiled only with NCCL;
 * parallel_nonccl.c refuses otherwise.
 *
 * Bootstrap over MPI: each NCCL communicator has a host twin of the same ranks (the
 * CPU world, or its split), which carries the unique id (rank 0's ncclGetUniqueId,
 * broadcast), the barriers and the host helpers. Without MPI (or without a launcher)
 * the twin is one rank, and so is the NCCL communicator.
 *
 * Timeouts: communicators are nonblocking (ncclConfig_t.blocking = 0), so no NCCL call
 * blocks the host: a call answering ncclInProgress is polled with
 * ncclCommGetAsyncError, and comm_sync polls cudaStreamQuery and the asynchronous error
 * together, both until the deadline; then ncclCommAbort and one line naming the rank
 * and the operation (comm_fail) end every rank.
 *
 * NOTE: only compile-checked on the machines this was written on (no GPU there).
 */
#include "comm_impl.h"

#include <cuda_runtime_api.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_check.h"
#include "mpi_world.h"
#include "nccl_check.h"
#include "status.h"
#include "timer.h"

struct nccl_impl {
	ncclComm_t nc;
	cudaStream_t stream;     /* the backend's */
	cudaEvent_t ev[2];       /* time_rep's start and end */
	const char *last_op;     /* the last operation enqueued, for comm_sync's errors */
};

const char *mb_nccl_name(ncclResult_t r)
{
	static const char *const names[] = { "ncclSuccess", "ncclUnhandledCudaError",
		"ncclSystemError", "ncclInternalError", "ncclInvalidArgument",
		"ncclInvalidUsage", "ncclRemoteError", "ncclInProgress" };
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "ncclUnknownError";
}

int mb_nccl_check(ncclResult_t r, const char *call, const char *file, int line)
{
	if (r == ncclSuccess || r == ncclInProgress)
		return MB_OK;
	fprintf(stderr, "%s:%d: %s: %s: %s\n", file, line, call, mb_nccl_name(r),
		ncclGetErrorString(r));
	return MB_ERR_NCCL;
}

/* impl_of is c's NCCL state. */
static struct nccl_impl *impl_of(const struct comm *c)
{
	return c->impl;
}

/* nccl_type and nccl_op map the element type and reduction to NCCL's. */
static ncclDataType_t nccl_type(enum comm_dtype t)
{
	switch (t) {
	case COMM_U8: return ncclUint8;
	case COMM_BF16: return ncclBfloat16;
	case COMM_F32: return ncclFloat32;
	case COMM_F64: return ncclFloat64;
	case COMM_I32: return ncclInt32;
	case COMM_I64: return ncclInt64;
	}
	return ncclUint8;
}

static ncclRedOp_t nccl_op(enum comm_redop op)
{
	return op == COMM_SUM ? ncclSum : op == COMM_MAX ? ncclMax : ncclMin;
}

/* fail_nccl aborts nc (c's own, or the child a split is making: its kernels stop) and
 * ends every rank. */
static _Noreturn void fail_nccl(const struct comm *c, ncclComm_t nc, const char *op,
				ncclResult_t r)
{
	const char *last = nc ? ncclGetLastError(nc) : "";
	if (nc)
		ncclCommAbort(nc);
	comm_fail(c, op, "%s: %s%s%s", mb_nccl_name(r), ncclGetErrorString(r),
		  last && last[0] ? ": " : "", last ? last : "");
}

/* settle_call waits, under the deadline, until nc has finished the call that answered
 * r (ncclInProgress: a nonblocking communicator still completing it), and ends the run
 * on any error, aborting nc. */
static void settle_call(const struct comm *c, ncclComm_t nc, const char *op, ncclResult_t r)
{
	double deadline = comm_deadline(c);
	while (r == ncclInProgress) {
		ncclResult_t q = ncclCommGetAsyncError(nc, &r);
		if (q != ncclSuccess)
			r = q;   /* NOTE: else r would stay ncclInProgress in the message */
		if (r == ncclInProgress && timer_now() > deadline) {
			ncclCommAbort(nc);
			comm_fail(c, op, "NCCL call still in progress after %g s: a peer never "
				  "joined it", c->timeout_s);
		}
		sched_yield();
	}
	if (r != ncclSuccess)
		fail_nccl(c, nc, op, r);
}

/* enqueued settles the call that enqueued op and remembers op for comm_sync. */
static void enqueued(struct comm *c, const char *op, ncclResult_t r)
{
	settle_call(c, impl_of(c)->nc, op, r);
	impl_of(c)->last_op = op;
}

/* nccl_sync polls the stream and NCCL's asynchronous error until the stream is idle,
 * an error shows, or the deadline passes (then the communicator is aborted). */
static int nccl_sync(struct comm *c)
{
	struct nccl_impl *m = impl_of(c);
	double deadline = comm_deadline(c);
	const char *op = m->last_op ? m->last_op : "sync";
	for (;;) {
		cudaError_t e = cudaStreamQuery(m->stream);
		ncclResult_t async = ncclSuccess;
		if (e == cudaSuccess)
			return MB_OK;
		if (e != cudaErrorNotReady)
			comm_fail(c, op, "%s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
		ncclCommGetAsyncError(m->nc, &async);
		if (async != ncclSuccess && async != ncclInProgress)
			fail_nccl(c, m->nc, op, async);
		if (timer_now() > deadline) {
			ncclCommAbort(m->nc);
			comm_fail(c, op, "not complete on the device after %g s: a peer never "
				  "joined it, or is stuck", c->timeout_s);
		}
		sched_yield();
	}
}

/* nccl_allreduce: ncclAllReduce (in place when send is recv). */
static int nccl_allreduce(struct comm *c, const void *send, void *recv, size_t count,
			  enum comm_dtype t, enum comm_redop op)
{
	struct nccl_impl *m = impl_of(c);
	enqueued(c, "allreduce", ncclAllReduce(send, recv, count, nccl_type(t), nccl_op(op),
					       m->nc, m->stream));
	return MB_OK;
}

/* nccl_reduce_scatter: ncclReduceScatter, count = elements each rank receives. */
static int nccl_reduce_scatter(struct comm *c, const void *send, void *recv, size_t count,
			       enum comm_dtype t, enum comm_redop op)
{
	struct nccl_impl *m = impl_of(c);
	enqueued(c, "reduce_scatter", ncclReduceScatter(send, recv, count, nccl_type(t),
							nccl_op(op), m->nc, m->stream));
	return MB_OK;
}

/* nccl_allgather: ncclAllGather, count = elements each rank sends. */
static int nccl_allgather(struct comm *c, const void *send, void *recv, size_t count,
			  enum comm_dtype t)
{
	struct nccl_impl *m = impl_of(c);
	enqueued(c, "allgather", ncclAllGather(send, recv, count, nccl_type(t), m->nc, m->stream));
	return MB_OK;
}

/* exchange enqueues one send and one receive per peer as one NCCL group (all-to-all
 * has no NCCL collective: point-to-point calls fused by ncclGroupStart/End progress
 * together). A pair with zero elements is left out on both sides. */
static int exchange(struct comm *c, const char *op, const char *send, const size_t *sc,
		    const size_t *sd, char *recv, const size_t *rc, const size_t *rd,
		    enum comm_dtype t)
{
	struct nccl_impl *m = impl_of(c);
	size_t w = comm_dtype_size(t);
	ncclResult_t r = ncclGroupStart();
	for (int p = 0; p < c->size && r == ncclSuccess; p++) {
		if (sc[p] > 0)
			r = ncclSend(send + sd[p] * w, sc[p], nccl_type(t), p, m->nc, m->stream);
		if (r == ncclSuccess && rc[p] > 0)
			r = ncclRecv(recv + rd[p] * w, rc[p], nccl_type(t), p, m->nc, m->stream);
	}
	ncclResult_t end = ncclGroupEnd();
	enqueued(c, op, r != ncclSuccess ? r : end);
	return MB_OK;
}

/* nccl_alltoallv: the grouped exchange with the caller's counts. */
static int nccl_alltoallv(struct comm *c, const void *send, const size_t *send_counts,
			  const size_t *send_displs, void *recv, const size_t *recv_counts,
			  const size_t *recv_displs, enum comm_dtype t)
{
	return exchange(c, "alltoallv", send, send_counts, send_displs, recv, recv_counts,
			recv_displs, t);
}

/* nccl_alltoall is the all-to-all-v of equal blocks, block p at p x count. */
static int nccl_alltoall(struct comm *c, const void *send, void *recv, size_t count,
			 enum comm_dtype t)
{
	size_t *counts = malloc(2 * (size_t)c->size * sizeof(size_t));
	if (!counts)
		return MB_ERR_NOMEM;
	for (int p = 0; p < c->size; p++) {
		counts[p] = count;
		counts[c->size + p] = (size_t)p * count;
	}
	int err = exchange(c, "alltoall", send, counts, counts + c->size, recv, counts,
			   counts + c->size, t);
	free(counts);
	return err;
}

/* nccl_send: ncclSend, enqueued (comm_sync waits). */
static int nccl_send(struct comm *c, const void *buf, size_t count, enum comm_dtype t,
		     int peer)
{
	struct nccl_impl *m = impl_of(c);
	enqueued(c, "send", ncclSend(buf, count, nccl_type(t), peer, m->nc, m->stream));
	return MB_OK;
}

/* nccl_recv: ncclRecv, enqueued (comm_sync waits). */
static int nccl_recv(struct comm *c, void *buf, size_t count, enum comm_dtype t, int peer)
{
	struct nccl_impl *m = impl_of(c);
	enqueued(c, "recv", ncclRecv(buf, count, nccl_type(t), peer, m->nc, m->stream));
	return MB_OK;
}

/* nccl_barrier: the stream drained, then the host twin's barrier, so every rank
 * enqueues its next operation at about the same moment. */
static int nccl_barrier(struct comm *c)
{
	int err = nccl_sync(c);
	return err ? err : comm_barrier(c->host);
}

/* nccl_time_rep brackets one repetition with events on the stream (the L2 flushed
 * before, outside them) and waits for it under the deadline. */
static int nccl_time_rep(struct comm *c, int (*run)(void *), void *state, bool cold,
			 double *seconds)
{
	struct nccl_impl *m = impl_of(c);
	float ms = 0;
	int err = cold ? backend_cuda_flush_l2(c->backend) : MB_OK;
	if (!err)
		err = MB_CUDA_CHECK(cudaEventRecord(m->ev[0], m->stream));
	if (!err)
		err = run(state);
	if (!err)
		err = MB_CUDA_CHECK(cudaEventRecord(m->ev[1], m->stream));
	if (!err)
		err = nccl_sync(c);
	if (!err)
		err = MB_CUDA_CHECK(cudaEventElapsedTime(&ms, m->ev[0], m->ev[1]));
	*seconds = 1e-3 * (double)ms;
	return err;
}

/* nccl_bcast: host bytes travel over the twin. */
static int nccl_bcast(struct comm *c, void *buf, size_t bytes, int root)
{
	return c->host->ops->bcast(c->host, buf, bytes, root);
}

/* nccl_mem_alloc: cudaMalloc on the current device (the backend's). */
static int nccl_mem_alloc(struct comm *c, size_t bytes, void **out)
{
	(void)c;
	return MB_CUDA_CHECK(cudaMalloc(out, bytes > 0 ? bytes : 1));
}

/* nccl_mem_free: cudaFree (synchronous with the device). */
static void nccl_mem_free(struct comm *c, void *p)
{
	(void)c;
	cudaFree(p);
}

/* nccl_mem_copy copies on the stream and waits. NOTE: the stream is drained first
 * (bounded): a copy to pageable host memory blocks the host until the work queued
 * before it is done, with no deadline. */
static int nccl_mem_copy(struct comm *c, void *dst, const void *src, size_t bytes,
			 bool to_host)
{
	enum cudaMemcpyKind kind = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
	int err = nccl_sync(c);
	if (!err && bytes)
		err = MB_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, impl_of(c)->stream));
	return err ? err : nccl_sync(c);
}

/* nccl_library writes "NCCL 2.28.9" (the library loaded, not the header's). */
static void nccl_library(const struct comm *c, char *buf, size_t len)
{
	int v = 0;
	(void)c;
	ncclGetVersion(&v);
	snprintf(buf, len, "NCCL %d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

/* nccl_release finalizes (flushing what is queued, bounded) and destroys the NCCL
 * communicator, then frees the events and the host twin. */
static void nccl_release(struct comm *c)
{
	struct nccl_impl *m = impl_of(c);
	if (!m)
		return;
	if (m->nc) {
		settle_call(c, m->nc, "free", ncclCommFinalize(m->nc));
		ncclCommDestroy(m->nc);
	}
	for (int k = 0; k < 2; k++)
		if (m->ev[k])
			cudaEventDestroy(m->ev[k]);
	if (c->host != c)
		comm_free(c->host);
	free(m);
	c->impl = NULL;
}

static int nccl_split(struct comm *parent, int color, int key, struct comm **out);

static const struct comm_ops nccl_ops = {
	.kind = "nccl",
	.on_device = true,
	.split = nccl_split,
	.release = nccl_release,
	.library = nccl_library,
	.allreduce = nccl_allreduce,
	.reduce_scatter = nccl_reduce_scatter,
	.allgather = nccl_allgather,
	.alltoall = nccl_alltoall,
	.alltoallv = nccl_alltoallv,
	.send = nccl_send,
	.recv = nccl_recv,
	.barrier = nccl_barrier,
	.sync = nccl_sync,
	.time_rep = nccl_time_rep,
	.mem_alloc = nccl_mem_alloc,
	.mem_free = nccl_mem_free,
	.mem_copy = nccl_mem_copy,
	.bcast = nccl_bcast,
};

/* wrap makes the communicator around host (whose ranks it has; owned from here on),
 * with events and no NCCL handle yet. On failure frees host. */
static int wrap(struct backend *b, struct comm *host, const char *name, struct comm **out)
{
	struct nccl_impl *m = calloc(1, sizeof(*m));
	struct comm *c = m ? comm_new(&nccl_ops, b, host->rank, host->size, host->timeout_s,
				      name) : NULL;
	int err = c ? MB_OK : MB_ERR_NOMEM;
	if (c) {
		c->host = host;
		c->impl = m;
		m->stream = (cudaStream_t)b->stream;
	}
	for (int k = 0; k < 2 && !err; k++)
		err = MB_CUDA_CHECK(cudaEventCreate(&m->ev[k]));
	if (err && c) {
		comm_free(c);
		c = NULL;
	} else if (err) {
		free(m);
		comm_free(host);
	}
	*out = c;
	return err;
}

/* nonblocking is the configuration of every communicator: calls never block the host,
 * so every wait stays under the deadline. */
static ncclConfig_t nonblocking(void)
{
	ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
	config.blocking = 0;
	return config;
}

/* nccl_split splits the host twin and the NCCL communicator alike (ncclCommSplit keeps
 * MPI_Comm_split's color and key rules, so the ranks agree). */
static int nccl_split(struct comm *parent, int color, int key, struct comm **out)
{
	struct comm *host = NULL;
	ncclComm_t nc = NULL;
	ncclConfig_t config = nonblocking();
	int err = comm_split(parent->host, color, key, &host);
	if (err)
		return err;
	ncclResult_t r = ncclCommSplit(impl_of(parent)->nc, color < 0 ? NCCL_SPLIT_NOCOLOR : color,
				       key, &nc, &config);
	settle_call(parent, impl_of(parent)->nc, "split", r);
	if (!host)
		return MB_OK;
	settle_call(parent, nc, "split", ncclInProgress);
	err = wrap(parent->backend, host, host->name, out);
	if (err) {
		ncclCommDestroy(nc);
		return err;
	}
	impl_of(*out)->nc = nc;
	return MB_OK;
}

/* pick_device gives each rank of a node its own device: local rank i takes device i,
 * moving the backend there (device and stream) when it opened another. A lone rank on
 * its node keeps the backend's device. */
static int pick_device(struct backend *b, char *why, size_t why_len)
{
	struct device_info devs[64];
	int n = 0, local = mpi_world_local_rank(), ranks = mpi_world_local_size();
	if (ranks <= 1)
		return MB_OK;
	int err = backend_cuda_devices(devs, 64, &n, why, why_len);
	if (!err && ranks > n) {
		snprintf(why, why_len, "%d ranks share this node's %d CUDA devices: NCCL needs "
			 "a device of its own for every rank (start at most %d per node)", ranks, n, n);
		err = MB_ERR_UNSUPPORTED;
	}
	if (err || devs[local].index == b->dev.index)
		return err;
	backend_close(b);
	b->dev = devs[local];
	return backend_cuda_open_stream(b, why, why_len);
}

/* agreed makes a rank's setup error every rank's (an all-reduce over the host twin),
 * so no rank leaves while the others wait in the bootstrap's broadcast. */
static int agreed(struct comm *host, int err, char *why, size_t why_len)
{
	double worst = (double)err;
	int e = comm_host_allreduce_f64(host, &worst, 1, COMM_MIN);
	if (e)
		return e;
	if (!err && worst < 0)
		snprintf(why, why_len, "another rank could not pick its CUDA device");
	return err ? err : (int)worst;
}

/* Rank 0's unique id and its status, broadcast together: a failure on rank 0 fails
 * every rank instead of leaving them waiting. */
struct bootstrap {
	int err;
	ncclUniqueId id;
};

int comm_nccl_world(struct backend *b, double timeout_s, struct comm **out, char *why,
		    size_t why_len)
{
	struct comm *host = NULL, *c = NULL;
	struct bootstrap boot = { MB_OK, { { 0 } } };
	ncclConfig_t config = nonblocking();
	*out = NULL;
	int err = comm_cpu_world(timeout_s, &host, why, why_len);
	if (!err)
		err = agreed(host, pick_device(b, why, why_len), why, why_len);
	if (!err && host->rank == 0)
		boot.err = MB_NCCL_CHECK(ncclGetUniqueId(&boot.id));
	if (!err)
		err = host->ops->bcast(host, &boot, sizeof(boot), 0);
	if (!err && boot.err)
		snprintf(why, why_len, "rank 0 could not make NCCL's unique id");
	err = err ? err : boot.err;
	if (!err)
		err = wrap(b, host, "world", &c);
	else
		comm_free(host);
	if (err)
		return err;
	ncclResult_t r = ncclCommInitRankConfig(&impl_of(c)->nc, c->size, boot.id, c->rank,
						&config);
	settle_call(c, impl_of(c)->nc, "init", r);
	*out = c;
	return MB_OK;
}
