/*
 * comm.h - communicators of the parallel runtime: the world and its groups (TP, PP, DP,
 * EP ...), and the collectives moebench measures and the training step uses.
 *
 *   CPU backend   collectives through MPI (host buffers), or a single rank without MPI
 *   CUDA backend  collectives through NCCL (device buffers, on the backend's stream),
 *                 bootstrapped over MPI: ncclGetUniqueId on rank 0, MPI_Bcast,
 *                 ncclCommInitRank; groups by ncclCommSplit
 *
 * Every operation is bounded by the communicator's timeout: a peer that never answers,
 * an MPI error or an NCCL asynchronous error ends every rank with one line naming the
 * rank, the operation and the cause (mpi_world_abort), never a silent hang.
 *
 * Counts are in elements of the given type. For NCCL the calls are enqueued on the
 * stream; comm_sync waits for them (and is where a timeout or async error is seen).
 */
#ifndef MB_HARNESS_COMM_H
#define MB_HARNESS_COMM_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

enum comm_dtype { COMM_U8, COMM_BF16, COMM_F32, COMM_F64, COMM_I32, COMM_I64 };
enum comm_redop { COMM_SUM, COMM_MAX, COMM_MIN };

struct comm;  /* opaque */

/* comm_dtype_size returns the bytes of one element; comm_dtype_name "uint8", "bfloat16",
 * "float", "double", "int32", "int64" (nccl-tests' type names); comm_redop_name "sum",
 * "max", "min". */
size_t comm_dtype_size(enum comm_dtype t);
const char *comm_dtype_name(enum comm_dtype t);
const char *comm_redop_name(enum comm_redop op);

/* comm_world opens the world communicator for the backend: MPI_COMM_WORLD (or one rank
 * without MPI) for the CPU, NCCL over all ranks for CUDA (one device per rank, the
 * backend's; with several ranks on a node, node-local rank i uses device i, and
 * comm_world moves the backend's device and stream there when it opened another). b may
 * be NULL for the CPU. timeout_s > 0 bounds every operation. Returns MB_OK, or MB_ERR_*
 * with why (MB_ERR_UNSUPPORTED: CUDA without NCCL, or more ranks than devices on a
 * node). */
int comm_world(struct backend *b, double timeout_s, struct comm **out, char *why,
	       size_t why_len);
/* comm_split makes the group of the ranks of parent with the same color, ordered by
 * key (MPI_Comm_split / ncclCommSplit semantics). Collective over parent. */
int comm_split(struct comm *parent, int color, int key, struct comm **out);
/* comm_free releases a communicator (NULL is fine). Collective for NCCL. */
void comm_free(struct comm *c);

int comm_rank(const struct comm *c);
int comm_size(const struct comm *c);
/* comm_on_device says whether buffers are device memory (NCCL) or host memory (MPI). */
bool comm_on_device(const struct comm *c);
/* comm_library writes "MPI <version>", "NCCL 2.28.9" or "single rank" into buf. */
void comm_library(const struct comm *c, char *buf, size_t len);
/* comm_set_blocking chooses how c's MPI collectives (allreduce, reduce_scatter,
 * allgather, alltoall) run: blocking calls (MPI_Allreduce ..., as nccl-tests' MPI peers
 * and Intel MPI Benchmarks time them; a watchdog thread ends the rank after the
 * timeout) or, by default, nonblocking calls polled against the deadline (a rank that
 * stops answering is named). No effect on NCCL communicators, whose calls are always
 * enqueued, nor on alltoallv, point-to-point and barriers. */
void comm_set_blocking(struct comm *c, bool blocking);

/* An operation posted on an MPI communicator and not yet waited for (comm_set_wait_hook). */
struct comm_req;
/* comm_req_test drives MPI's progress on r and says whether it has completed; it never
 * waits. Call it only where MPI may be called (the hook's owner serializes the threads). */
bool comm_req_test(struct comm_req *r);
/* comm_set_wait_hook makes c's MPI backend call hook(ctx, r) once per operation, between
 * posting it and waiting for it: the training step's overlap (train_overlap.h) hands the
 * CPU to another chunk of work there, so the transfer runs under that chunk's compute.
 * The operation's timeout counts from the hook's return. NULL removes it; no effect on
 * single-rank and NCCL communicators, nor on the blocking collectives of
 * comm_set_blocking. */
void comm_set_wait_hook(struct comm *c, void (*hook)(void *ctx, struct comm_req *r),
			void *ctx);

/* comm_set_name names c in error lines ("comm alltoallv on ep: ..."); the world is
 * "world", a group "<parent>.<color>" until named. */
void comm_set_name(struct comm *c, const char *name);

/* Buffers in the communicator's memory (device memory for NCCL, host otherwise):
 * comm_mem_alloc allocates bytes (MB_ERR_NOMEM / MB_ERR_CUDA), comm_mem_free releases
 * (NULL is fine); comm_mem_put copies host bytes in, comm_mem_get copies them out to the
 * host, each complete on return (on the backend's stream for NCCL). */
int comm_mem_alloc(struct comm *c, size_t bytes, void **out);
void comm_mem_free(struct comm *c, void *p);
int comm_mem_put(struct comm *c, void *dst, const void *host_src, size_t bytes);
int comm_mem_get(struct comm *c, void *host_dst, const void *src, size_t bytes);

/* Collectives. send may equal recv for all-reduce (in place). */
int comm_allreduce(struct comm *c, const void *send, void *recv, size_t count,
		   enum comm_dtype t, enum comm_redop op);
/* comm_reduce_scatter: send holds size*count elements; recv gets this rank's count. */
int comm_reduce_scatter(struct comm *c, const void *send, void *recv, size_t count,
			enum comm_dtype t, enum comm_redop op);
/* comm_allgather: send holds count elements; recv gets size*count, rank-major. */
int comm_allgather(struct comm *c, const void *send, void *recv, size_t count,
		   enum comm_dtype t);
/* comm_alltoall: count elements to and from every peer (size*count each side). */
int comm_alltoall(struct comm *c, const void *send, void *recv, size_t count,
		  enum comm_dtype t);
/* comm_alltoallv: per-peer counts and displacements (elements), as MPI_Alltoallv. */
int comm_alltoallv(struct comm *c, const void *send, const size_t *send_counts,
		   const size_t *send_displs, void *recv, const size_t *recv_counts,
		   const size_t *recv_displs, enum comm_dtype t);
int comm_send(struct comm *c, const void *buf, size_t count, enum comm_dtype t, int peer);
int comm_recv(struct comm *c, void *buf, size_t count, enum comm_dtype t, int peer);
int comm_barrier(struct comm *c);
/* comm_sync waits until every operation issued on c has completed (NCCL: the stream;
 * MPI: nothing outstanding). */
int comm_sync(struct comm *c);

/* comm_time_rep times one repetition of run(state) on c's clock: CUDA events on the
 * backend's stream for NCCL (waited for under the timeout, like comm_sync), CLOCK_MONOTONIC
 * otherwise; with cold the L2 is flushed first, outside the timed span. For the driver's
 * collective cases (bench_case.comm). */
int comm_time_rep(struct comm *c, int (*run)(void *), void *state, bool cold,
		  double *seconds);

/* comm_host_allreduce_f64 reduces host doubles over c whatever its kind (for statistics
 * such as the slowest rank's time or the #wrong sum); NCCL communicators use their MPI
 * twin. */
int comm_host_allreduce_f64(struct comm *c, double *v, size_t count, enum comm_redop op);
/* comm_host_allgather_i64 gathers host int64 values over c whatever its kind (counts). */
int comm_host_allgather_i64(struct comm *c, const long long *send, long long *recv,
			    size_t count);

#endif
