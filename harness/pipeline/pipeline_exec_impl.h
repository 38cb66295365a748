/*
 * pipeline_exec_impl.h - the parts of the executor that need no MPI, shared by
 * pipeline_exec.c and pipeline_exec_mpi.c: checking a program and the real work an
 * operation does.
 */
#ifndef MB_HARNESS_PIPELINE_EXEC_IMPL_H
#define MB_HARNESS_PIPELINE_EXEC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline_exec.h"

/* The real work of the operations: a chain of GEMMs act[next] = act[cur] * weight,
 * tokens x hidden times hidden x hidden, ping-ponging two activation buffers. */
struct pipe_work {
	int tokens, hidden;
	float *weight;      /* hidden x hidden */
	float *act[2];      /* tokens x hidden each */
	int cur;            /* the buffer holding the current activation */
};

/* pipe_work_init allocates the buffers and fills them with random data from seed
 * (never zeros). Returns MB_OK or MB_ERR_NOMEM (w is then safe to free). */
int pipe_work_init(struct pipe_work *w, int tokens, int hidden, uint64_t seed);
/* pipe_work_gemm does one work unit, or the fraction (0, 1] of one (that share of the
 * token rows), and makes its output the current activation. */
void pipe_work_gemm(struct pipe_work *w, double fraction);
/* pipe_work_load takes a received message (n floats) into the current activation:
 * copied over its first n values, or added to them when add. */
void pipe_work_load(struct pipe_work *w, const float *msg, size_t n, bool add);
/* pipe_work_store writes the current activation into a message of n floats (repeated
 * when the message is longer than the activation). */
void pipe_work_store(const struct pipe_work *w, float *msg, size_t n);
void pipe_work_free(struct pipe_work *w);

/* pipe_exec_kind_index maps F, B, W to 0, 1, 2 (the unit_time slots); -1 otherwise. */
int pipe_exec_kind_index(char kind);

/* pipe_exec_check verifies a program and the options for the rank `rank` of `size`
 * ranks whose largest tag is tag_ub: kinds, message counts, peers, tags, work, sizes.
 * Returns MB_OK, or MB_ERR_ARG with the reason in why. */
int pipe_exec_check(const struct pipe_exec_program *p, const struct pipe_exec_opts *o,
		    int rank, int size, int tag_ub, char *why, size_t why_len);

#endif
