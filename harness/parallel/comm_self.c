/*
 * comm_self.c - the one-rank communicator (see comm_impl.h): builds without MPI, and
 * runs of an MPI build that no launcher started. Every collective is a copy of the
 * send buffer into the receive buffer, which is what MPI computes on one rank; send and
 * receive have no peer to talk to. Host buffers only: a CUDA run without MPI is a
 * one-rank NCCL communicator (comm_nccl.c).
 */
#include "comm_impl.h"

#include <stdio.h>
#include <string.h>

#include "status.h"

/* copy moves bytes for a one-rank collective (send may equal recv). */
static int copy(void *dst, const void *src, size_t bytes)
{
	if (dst != src && bytes > 0)
		memmove(dst, src, bytes);
	return MB_OK;
}

/* self_allreduce: the reduction of one contribution is itself (reduce_scatter too). */
static int self_allreduce(struct comm *c, const void *send, void *recv, size_t count,
			  enum comm_dtype t, enum comm_redop op)
{
	(void)op;
	(void)c;
	return copy(recv, send, count * comm_dtype_size(t));
}

/* self_allgather: gathering or exchanging one block is copying it (alltoall too). */
static int self_allgather(struct comm *c, const void *send, void *recv, size_t count,
			  enum comm_dtype t)
{
	(void)c;
	return copy(recv, send, count * comm_dtype_size(t));
}

/* self_alltoallv copies the one block to oneself; its two counts must agree. */
static int self_alltoallv(struct comm *c, const void *send, const size_t *send_counts,
			  const size_t *send_displs, void *recv, const size_t *recv_counts,
			  const size_t *recv_displs, enum comm_dtype t)
{
	size_t w = comm_dtype_size(t);
	if (send_counts[0] != recv_counts[0])
		comm_fail(c, "alltoallv", "sends %zu elements to itself but expects %zu",
			  send_counts[0], recv_counts[0]);
	return copy((char *)recv + recv_displs[0] * w,
		    (const char *)send + send_displs[0] * w, send_counts[0] * w);
}

/* self_send: unreachable, comm.c lets no peer through on one rank. */
static int self_send(struct comm *c, const void *buf, size_t count, enum comm_dtype t,
		     int peer)
{
	(void)c, (void)buf, (void)count, (void)t, (void)peer;
	return MB_ERR_ARG;
}

/* self_recv: see self_send. */
static int self_recv(struct comm *c, void *buf, size_t count, enum comm_dtype t, int peer)
{
	(void)c, (void)buf, (void)count, (void)t, (void)peer;
	return MB_ERR_ARG;
}

/* self_barrier: nobody to wait for; nothing is ever outstanding (sync too). */
static int self_barrier(struct comm *c)
{
	(void)c;
	return MB_OK;
}

/* self_bcast: the root's bytes are already here. */
static int self_bcast(struct comm *c, void *buf, size_t bytes, int root)
{
	(void)c, (void)buf, (void)bytes, (void)root;
	return MB_OK;
}

/* self_library names the kind. */
static void self_library(const struct comm *c, char *buf, size_t len)
{
	(void)c;
	snprintf(buf, len, "single rank");
}

static int self_split(struct comm *parent, int color, int key, struct comm **out);

/* self_release: nothing beyond the struct. */
static void self_release(struct comm *c)
{
	(void)c;
}

static const struct comm_ops self_ops = {
	.kind = "single",
	.on_device = false,
	.split = self_split,
	.release = self_release,
	.library = self_library,
	.allreduce = self_allreduce,
	.reduce_scatter = self_allreduce,
	.allgather = self_allgather,
	.alltoall = self_allgather,
	.alltoallv = self_alltoallv,
	.send = self_send,
	.recv = self_recv,
	.barrier = self_barrier,
	.sync = self_barrier,
	.time_rep = comm_time_host,
	.mem_alloc = comm_host_mem_alloc,
	.mem_free = comm_host_mem_free,
	.mem_copy = comm_host_mem_copy,
	.bcast = self_bcast,
};

/* self_split: the one rank is its own group (or none, for a negative color). */
static int self_split(struct comm *parent, int color, int key, struct comm **out)
{
	char name[48];
	(void)key;
	if (color < 0)
		return MB_OK;
	snprintf(name, sizeof(name), "%.32s.%d", parent->name, color);
	*out = comm_new(parent->ops, parent->backend, 0, 1, parent->timeout_s, name);
	return *out ? MB_OK : MB_ERR_NOMEM;
}

int comm_self_world(double timeout_s, struct comm **out)
{
	*out = comm_new(&self_ops, NULL, 0, 1, timeout_s, "world");
	return *out ? MB_OK : MB_ERR_NOMEM;
}
