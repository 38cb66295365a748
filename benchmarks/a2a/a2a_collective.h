/*
 * a2a_collective.h - the sizes and bandwidths of `moebench a2a --collective`, in
 * nccl-tests' conventions (a2a_collective.c runs them; test_comm.c checks them).
 */
#ifndef MB_BENCH_A2A_COLLECTIVE_H
#define MB_BENCH_A2A_COLLECTIVE_H

#include <stddef.h>

#include "comm.h"

enum a2a_coll { A2A_ALLTOALL, A2A_ALLREDUCE, A2A_ALLGATHER, A2A_REDUCESCATTER };

/* One step of the -b/-e/-f sweep on n ranks, per rank. */
struct a2a_coll_shape {
	size_t size_bytes;   /* nccl-tests' size(B): the bytes algbw divides by the time */
	size_t count;        /* nccl-tests' count: the count argument of the operation */
	size_t send_elems;   /* elements of this rank's send buffer */
	size_t recv_elems;   /* elements of this rank's receive buffer */
};

/* a2a_coll_parse finds a collective by its name ("alltoall", "allreduce", "allgather",
 * "reducescatter"). Returns MB_OK or MB_ERR_ARG. */
int a2a_coll_parse(const char *name, enum a2a_coll *out);
const char *a2a_coll_name(enum a2a_coll k);

/* a2a_coll_shape: the shape of the sweep step `bytes` for elements of type t. */
void a2a_coll_shape(enum a2a_coll k, size_t bytes, enum comm_dtype t, int n,
		    struct a2a_coll_shape *out);

/* a2a_coll_busbw_factor is busbw / algbw on n ranks: 2(n-1)/n for allreduce, (n-1)/n
 * for the others (nccl-tests doc/PERFORMANCE.md). */
double a2a_coll_busbw_factor(enum a2a_coll k, int n);

#endif
