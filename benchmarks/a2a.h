/*
 * a2a.h - `moebench a2a`: expert-parallel dispatch and combine (a2a.c), and the plain
 * collective mode laid out like nccl-tests (a2a_collective.c).
 */
#ifndef MB_BENCH_A2A_H
#define MB_BENCH_A2A_H

#include <stddef.h>

#include "comm.h"
#include "driver.h"

struct a2a_coll_opts {
	const char *collective;   /* "alltoall", "allreduce", "allgather", "reducescatter" */
	size_t min_bytes, max_bytes;
	double factor;            /* -f: multiply the size by this each step (> 1) */
	enum comm_dtype dtype;
	enum comm_redop op;
};

/* a2a_collective_run measures one collective over c for every size from min_bytes to
 * max_bytes (nccl-tests' -b -e -f), checks each result exactly, appends one record per
 * size to ctx->doc and a summary with nccl-tests' columns (size, count, type, redop,
 * time_us, algbw, busbw, #wrong). Returns MB_OK (a wrong result is counted in
 * ctx->failures) or an error. */
int a2a_collective_run(struct run_ctx *ctx, struct comm *c, const struct a2a_coll_opts *o);

#endif
