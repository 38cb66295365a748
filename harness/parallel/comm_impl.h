/*
 * comm_impl.h - the inside of a communicator (see comm.h), shared by its backends:
 *
 *   comm.c        names and sizes, dispatch through struct comm_ops, host helpers
 *   comm_peer.c   the pid and host of every world rank, for the lines naming a rank
 *   comm_self.c   one rank alone: collectives are copies (no MPI, or MPI not launched)
 *   comm_mpi.c    MPI on host buffers, every wait polled against the deadline
 *   parallel_nompi.c  the CPU world of builds without MPI: one rank
 *   comm_nccl.c   NCCL on device buffers, on the backend's stream, with an MPI twin
 *   parallel_nonccl.c the CUDA world of builds without NCCL: a clear refusal
 */
#ifndef MB_HARNESS_COMM_IMPL_H
#define MB_HARNESS_COMM_IMPL_H

#include "comm.h"

/* One backend's operations; the arguments are comm.h's, already checked by comm.c
 * (a known dtype and redop, a peer in range and not this rank). */
struct comm_ops {
	const char *kind;       /* "single", "mpi", "nccl" */
	bool on_device;
	int (*split)(struct comm *parent, int color, int key, struct comm **out);
	void (*release)(struct comm *c);   /* frees c->impl (collective for NCCL) */
	void (*library)(const struct comm *c, char *buf, size_t len);
	int (*allreduce)(struct comm *c, const void *send, void *recv, size_t count,
			 enum comm_dtype t, enum comm_redop op);
	int (*reduce_scatter)(struct comm *c, const void *send, void *recv, size_t count,
			      enum comm_dtype t, enum comm_redop op);
	int (*allgather)(struct comm *c, const void *send, void *recv, size_t count,
			 enum comm_dtype t);
	int (*alltoall)(struct comm *c, const void *send, void *recv, size_t count,
			enum comm_dtype t);
	int (*alltoallv)(struct comm *c, const void *send, const size_t *send_counts,
			 const size_t *send_displs, void *recv, const size_t *recv_counts,
			 const size_t *recv_displs, enum comm_dtype t);
	int (*send)(struct comm *c, const void *buf, size_t count, enum comm_dtype t, int peer);
	int (*recv)(struct comm *c, void *buf, size_t count, enum comm_dtype t, int peer);
	int (*barrier)(struct comm *c);
	int (*sync)(struct comm *c);
	/* time_rep times one repetition of run (comm_time_rep). */
	int (*time_rep)(struct comm *c, int (*run)(void *), void *state, bool cold,
			double *seconds);
	/* the memory of comm_mem_*: host allocations are comm_host_mem_* (comm.c) */
	int (*mem_alloc)(struct comm *c, size_t bytes, void **out);
	void (*mem_free)(struct comm *c, void *p);
	int (*mem_copy)(struct comm *c, void *dst, const void *src, size_t bytes, bool to_host);
	/* bcast copies bytes from root to every rank (host memory; the NCCL bootstrap). */
	int (*bcast)(struct comm *c, void *buf, size_t bytes, int root);
};

struct comm {
	const struct comm_ops *ops;
	struct comm *host;        /* host-memory twin for the host helpers: c itself, or
				   * the MPI communicator of the same ranks for NCCL */
	struct backend *backend;  /* NULL for host-only communicators */
	int rank, size;
	double timeout_s;         /* <= 0: unbounded */
	bool blocking;            /* MPI collectives as blocking calls (comm_set_blocking) */
	char name[48];            /* "world", "world.3", or comm_set_name's */
	int *world_ranks;         /* the world rank of each rank of c; NULL: the identity
				   * (freed by comm_free) */
	void *impl;
	/* comm_set_wait_hook's: called between posting an MPI operation and waiting */
	void (*wait_hook)(void *ctx, struct comm_req *r);
	void *wait_ctx;
};

/* A posted MPI operation handed to the wait hook: test drives progress on it. */
struct comm_req {
	bool (*test)(struct comm_req *r);
	const struct comm *c;
	const char *op;
	void *req;     /* the backend's request (MPI_Request *) */
};

/* comm_new allocates a communicator with its fields set and host = itself. */
struct comm *comm_new(const struct comm_ops *ops, struct backend *b, int rank, int size,
		      double timeout_s, const char *name);

/* comm_deadline returns the moment an operation started now must end by (infinity
 * when the communicator has no timeout). */
double comm_deadline(const struct comm *c);

/* comm_fail ends every rank with "comm <op> on <name>: rank R of N: <what>"
 * (mpi_world_abort): the one line of every error path inside an operation. */
__attribute__((format(printf, 3, 4)))
_Noreturn void comm_fail(const struct comm *c, const char *op, const char *fmt, ...);

/* comm_watch_enter marks the start of a blocking call op on c that cannot poll its
 * own deadline: a watchdog thread (started on first use) ends the process with one
 * line naming the rank, the operation and the wait when it lasts past c's timeout.
 * comm_watch_leave marks its end. Two atomic stores and a clock read each. */
void comm_watch_enter(const struct comm *c, const char *op);
void comm_watch_leave(void);
/* comm_watch_world is comm_watch_enter for a blocking call of the whole world outside
 * any communicator (MPI_Finalize), bounded by timeout_s. */
void comm_watch_world(const char *op, double timeout_s);
/* comm_longest_timeout is the longest timeout of the communicators made so far (60 s
 * when none had one): what bounds MPI_Finalize. */
double comm_longest_timeout(void);

/* Who the ranks are (comm_peer.c, no MPI: the watchdog thread reads it too). */
struct comm_peer {
	int pid;
	char host[60];
};
enum comm_peer_state { COMM_PEER_UNKNOWN, COMM_PEER_RUNNING, COMM_PEER_STOPPED,
		       COMM_PEER_GONE };

/* comm_peer_self fills this process's entry; comm_peer_set keeps a copy of every world
 * rank's (n entries, by world rank) the first time, before any operation, and ignores
 * later calls (MB_OK or MB_ERR_NOMEM). */
void comm_peer_self(struct comm_peer *me);
int comm_peer_set(const struct comm_peer *all, int n);
/* comm_peer_known says whether comm_peer_set ran. */
bool comm_peer_known(void);
/* comm_peer_world_rank is the world rank of rank r of c. */
int comm_peer_world_rank(const struct comm *c, int r);
/* comm_peer_state says whether the process of rank r of c is running, stopped or gone,
 * read from /proc when it runs on this host; COMM_PEER_UNKNOWN elsewhere. */
enum comm_peer_state comm_peer_state(const struct comm *c, int r);
/* comm_peer_name writes "rank R (world rank W, pid P on HOST, stopped)" for rank r of
 * c: the state as comm_peer_state says it, left out when unknown. */
void comm_peer_name(const struct comm *c, int r, char *buf, size_t len);

/* comm_time_host times one repetition of run on CLOCK_MONOTONIC (host communicators'
 * time_rep; cold has no meaning on the host). */
int comm_time_host(struct comm *c, int (*run)(void *), void *state, bool cold,
		   double *seconds);

/* comm_host_mem_alloc, _free and _copy are host memory's (malloc, free, memcpy). */
int comm_host_mem_alloc(struct comm *c, size_t bytes, void **out);
void comm_host_mem_free(struct comm *c, void *p);
int comm_host_mem_copy(struct comm *c, void *dst, const void *src, size_t bytes, bool to_host);

/* comm_self_world makes a one-rank communicator on host buffers. */
int comm_self_world(double timeout_s, struct comm **out);

/* comm_cpu_world is the CPU backend's world: MPI's when MPI is active (comm_mpi.c),
 * else one rank (parallel_nompi.c, or comm_mpi.c without a launcher). */
int comm_cpu_world(double timeout_s, struct comm **out, char *why, size_t why_len);

/* comm_nccl_world is the CUDA backend's world (comm_nccl.c; parallel_nonccl.c refuses). */
int comm_nccl_world(struct backend *b, double timeout_s, struct comm **out, char *why,
		    size_t why_len);

#endif
