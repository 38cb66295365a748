/*
 * pipeline_exec.c - what the pipeline executor does without MPI (see pipeline_exec.h):
 * checking a program, the GEMM chain an operation runs as its work, freeing programs
 * and results. pipeline_exec_mpi.c runs programs across ranks with these.
 */
#include "pipeline_exec_impl.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "status.h"

int pipe_work_init(struct pipe_work *w, int tokens, int hidden, uint64_t seed)
{
	struct mb_rng rng;
	size_t n_act = (size_t)tokens * (size_t)hidden, n_w = (size_t)hidden * (size_t)hidden;
	memset(w, 0, sizeof(*w));
	w->tokens = tokens;
	w->hidden = hidden;
	w->weight = malloc(n_w * sizeof(float));
	w->act[0] = malloc(n_act * sizeof(float));
	w->act[1] = malloc(n_act * sizeof(float));
	if (!w->weight || !w->act[0] || !w->act[1])
		return MB_ERR_NOMEM;
	/* Weights uniform in +-sqrt(3/hidden) have variance 1/hidden: a GEMM keeps the
	 * activations' scale on average. */
	float a = sqrtf(3.0f / (float)hidden);
	mb_rng_seed(&rng, seed, 0);
	mb_rng_fill_uniform_f32(&rng, w->weight, n_w, -a, a);
	mb_rng_fill_uniform_f32(&rng, w->act[0], n_act, -1.0f, 1.0f);
	mb_rng_fill_uniform_f32(&rng, w->act[1], n_act, -1.0f, 1.0f);
	return MB_OK;
}

void pipe_work_gemm(struct pipe_work *w, double fraction)
{
	int rows = w->tokens;
	if (fraction < 1.0)
		rows = (int)ceil(fraction * w->tokens);
	if (rows < 1)
		rows = 1;
	int next = 1 - w->cur;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, w->hidden, w->hidden,
		    1.0f, w->act[w->cur], w->hidden, w->weight, w->hidden, 0.0f, w->act[next],
		    w->hidden);
	/* NOTE: with one fixed weight matrix the chain multiplies by W^n, which grows or
	 * decays with W's spectral radius: scale the new rows to unit RMS, as the norm
	 * layer of a transformer block would (O(rows*hidden) beside the GEMM's
	 * O(rows*hidden^2)), so a long chain never reaches infinities or denormals. */
	size_t n = (size_t)rows * (size_t)w->hidden;
	float norm = cblas_snrm2((int)n, w->act[next], 1);
	if (norm > 0.0f && isfinite(norm))
		cblas_sscal((int)n, sqrtf((float)n) / norm, w->act[next], 1);
	/* A partial unit leaves the other rows as they were: copy them forward. */
	if (rows < w->tokens)
		memcpy(w->act[next] + (size_t)rows * w->hidden, w->act[w->cur] + (size_t)rows * w->hidden,
		       (size_t)(w->tokens - rows) * w->hidden * sizeof(float));
	w->cur = next;
}

void pipe_work_load(struct pipe_work *w, const float *msg, size_t n, bool add)
{
	size_t n_act = (size_t)w->tokens * (size_t)w->hidden;
	float *x = w->act[w->cur];
	if (n > n_act)
		n = n_act;
	if (!add) {
		memcpy(x, msg, n * sizeof(float));
		return;
	}
	for (size_t i = 0; i < n; i++)
		x[i] += msg[i];
}

void pipe_work_store(const struct pipe_work *w, float *msg, size_t n)
{
	size_t n_act = (size_t)w->tokens * (size_t)w->hidden;
	for (size_t done = 0; done < n;) {
		size_t k = n - done < n_act ? n - done : n_act;
		memcpy(msg + done, w->act[w->cur], k * sizeof(float));
		done += k;
	}
}

void pipe_work_free(struct pipe_work *w)
{
	free(w->weight);
	free(w->act[0]);
	free(w->act[1]);
	memset(w, 0, sizeof(*w));
}

int pipe_exec_kind_index(char kind)
{
	switch (kind) {
	case 'F': return 0;
	case 'B': return 1;
	case 'W': return 2;
	}
	return -1;
}

/* check_msgs verifies one direction's messages of op i: count, peers, tags. */
static int check_msgs(const struct pipe_msg *m, int n, const char *dir, int i, int size,
		      int tag_ub, char *why, size_t why_len)
{
	if (n < 0 || n > PIPE_EXEC_MAX_MSGS) {
		snprintf(why, why_len, "op %d has %d %ss (0 to %d)", i, n, dir, PIPE_EXEC_MAX_MSGS);
		return MB_ERR_ARG;
	}
	for (int k = 0; k < n; k++) {
		if (m[k].peer < 0 || m[k].peer >= size) {
			snprintf(why, why_len, "op %d: %s peer rank %d is not one of the %d ranks", i,
				 dir, m[k].peer, size);
			return MB_ERR_ARG;
		}
		if (m[k].tag < 0 || m[k].tag > tag_ub) {
			snprintf(why, why_len, "op %d: %s tag %d is outside 0..%d (MPI_TAG_UB)", i,
				 dir, m[k].tag, tag_ub);
			return MB_ERR_ARG;
		}
	}
	return MB_OK;
}

/* check_opts verifies the executor's options. */
static int check_opts(const struct pipe_exec_opts *o, char *why, size_t why_len)
{
	if (o->hidden < 1 || o->tokens < 1 || o->msg_floats < 1 || o->steps < 1) {
		snprintf(why, why_len, "hidden %d, tokens %d, msg_floats %d and steps %d must be >= 1",
			 o->hidden, o->tokens, o->msg_floats, o->steps);
		return MB_ERR_ARG;
	}
	if (!(o->timeout_s > 0)) {
		snprintf(why, why_len, "timeout %g s must be > 0", o->timeout_s);
		return MB_ERR_ARG;
	}
	return MB_OK;
}

int pipe_exec_check(const struct pipe_exec_program *p, const struct pipe_exec_opts *o,
		    int rank, int size, int tag_ub, char *why, size_t why_len)
{
	if (check_opts(o, why, why_len))
		return MB_ERR_ARG;
	/* NOTE: rank 0 gathers the events as bytes, counted in int. */
	if (p->n_ops > INT_MAX / (int)sizeof(struct pipe_exec_event)) {
		snprintf(why, why_len, "%d ops: too many to gather", p->n_ops);
		return MB_ERR_ARG;
	}
	if (p->rank != rank || p->n_ops < 0 || (p->n_ops > 0 && !p->ops)) {
		snprintf(why, why_len, "the program of rank %d (%d ops) was given to rank %d",
			 p->rank, p->n_ops, rank);
		return MB_ERR_ARG;
	}
	for (int i = 0; i < p->n_ops; i++) {
		const struct pipe_exec_op *op = &p->ops[i];
		if (op->kind != 'X' && pipe_exec_kind_index(op->kind) < 0) {
			snprintf(why, why_len, "op %d: kind '%c' is not F, B, W or X", i, op->kind);
			return MB_ERR_ARG;
		}
		/* NOTE: the upper bound catches garbage; a real schedule's op is a few units. */
		if (!(op->work >= 0.0 && op->work <= 1e6)) {
			snprintf(why, why_len, "op %d: work %g units is not in 0..1e6", i, op->work);
			return MB_ERR_ARG;
		}
		if (check_msgs(op->recv, op->n_recv, "receive", i, size, tag_ub, why, why_len) ||
		    check_msgs(op->send, op->n_send, "send", i, size, tag_ub, why, why_len))
			return MB_ERR_ARG;
	}
	return MB_OK;
}

/* pipe_exec_program_free frees the operations of a program (not the struct itself). */
void pipe_exec_program_free(struct pipe_exec_program *p)
{
	if (!p)
		return;
	free(p->ops);
	p->ops = NULL;
	p->n_ops = 0;
}

/* pipe_exec_result_free frees the gathered timeline (not the struct itself). */
void pipe_exec_result_free(struct pipe_exec_result *r)
{
	if (!r)
		return;
	free(r->events);
	r->events = NULL;
	r->n_events = 0;
	free(r->step_times);
	r->step_times = NULL;
	r->n_steps = 0;
}
