/*
 * a2a.h - `moebench a2a`: expert-parallel dispatch and combine (a2a.c), and the plain
 * collective mode laid out like nccl-tests (a2a_collective.c).
 */
#ifndef MB_BENCH_A2A_H
#define MB_BENCH_A2A_H

#include <stdbool.h>
#include <stddef.h>

#include "comm.h"
#include "driver.h"

struct a2a_coll_opts {
	const char *collective;   /* "alltoall", "allreduce", "allgather", "reducescatter" */
	size_t min_bytes, max_bytes;
	double factor;            /* -f: multiply the size by this each step (> 1) */
	enum comm_dtype dtype;
	enum comm_redop op;
	bool nonblocking;         /* MPI's nonblocking calls polled (else blocking calls) */
};

/* a2a_collective_run measures one collective over c for every size from min_bytes to
 * max_bytes (nccl-tests' -b -e -f), checks each result exactly, appends one record per
 * size to ctx->doc and a summary with nccl-tests' columns (size, count, type, redop,
 * time_us, algbw, busbw, #wrong). Returns MB_OK (a wrong result is counted in
 * ctx->failures) or an error. */
int a2a_collective_run(struct run_ctx *ctx, struct comm *c, const struct a2a_coll_opts *o);

enum a2a_payload { A2A_BF16, A2A_FP8 };

struct a2a_moe_opts {
	long tokens;              /* per rank */
	int hidden;               /* 7168 */
	int experts, topk;        /* 256, 8 */
	int groups, topk_groups;  /* 8, 4: group-limited routing */
	int max_nodes;            /* 4: node-limited routing; 0 = no limit */
	int ranks_per_node;       /* ranks sharing a node (NVLink domain) */
	double route_scale;       /* 2.5 */
	double zipf;              /* 0: uniform random logits; > 0: Zipf skew exponent */
	enum a2a_payload payload; /* dispatch payload; combine is always BF16 */
	unsigned long long seed;
	double measured_copy_gbps; /* --measured-peak's copy bandwidth (GB/s); NaN: none */
};

/* a2a_moe_run measures layout, dispatch and combine of one MoE layer's tokens over the
 * expert-parallel communicator ep (every rank holds experts/size experts), checks every
 * received row and the combined output, appends the records and a summary (per phase:
 * slowest rank's time, algbw, busbw, logical bandwidth, tokens/s, imbalance, #wrong).
 * Returns MB_OK (wrong rows counted in ctx->failures) or an error. */
int a2a_moe_run(struct run_ctx *ctx, struct comm *ep, const struct a2a_moe_opts *o);

/* a2a_measured_copy reads the copy bandwidth (GB/s) of a `moebench peak` result file
 * on rank 0 of world and gives it to every rank: d2d_copy's for cuda, stream_copy's
 * otherwise; *gbps is NaN when path is NULL. Collective. Returns MB_OK, MB_ERR_ARG (an
 * unreadable file or one without that record, reported once) or an error. */
int a2a_measured_copy(struct comm *world, const char *path, bool cuda, double *gbps);

#endif
