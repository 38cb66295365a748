/*
 * attention_case_cuda.c - attention_case.h with CUDA: BF16 device copies of the
 * inputs, the core's v1 kernels (attention.cu) on them, outputs back as float.
 */
#include "attention_case.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cuda_check.h"
#include "status.h"

struct attn_case_cuda {
	enum attn_case_op op;
	struct attn_shape s;
	struct attn_decode_shape ds;
	cudaStream_t stream;
	uint16_t *in[4], *out[3], *o;
	size_t n_in[4], n_out[3];
	float *lse;
	size_t n_lse;
	void *work;          /* BWD and DECODE: the kernels' workspace, made at create */
	size_t work_bytes;
};

/* counts fills the element counts of the inputs, outputs and lse; returns the lse's. */
static size_t counts(struct attn_case_cuda *c)
{
	const struct attn_shape *s = &c->s;
	const struct attn_decode_shape *d = &c->ds;
	if (c->op == ATTN_CASE_DECODE) {
		size_t rows = (size_t)d->batch * d->ctx * d->kv_heads, bh = (size_t)d->batch * d->heads;
		c->n_in[0] = bh * d->d_qk, c->n_in[1] = rows * d->k_stride;
		c->n_in[2] = c->n_in[2] ? rows * d->v_stride : 0;
		c->n_out[0] = bh * d->d_v;
		return bh;
	}
	size_t t = (size_t)s->batch * s->seq;
	size_t nq = t * s->heads * s->d_qk, nk = t * s->kv_heads * s->d_qk;
	size_t nv = t * s->kv_heads * s->d_v, no = t * s->heads * s->d_v;
	c->n_in[0] = nq, c->n_in[1] = nk, c->n_in[2] = nv;
	c->n_in[3] = c->op == ATTN_CASE_BWD ? no : 0;
	if (c->op == ATTN_CASE_FWD)
		c->n_out[0] = no;
	else
		c->n_out[0] = nq, c->n_out[1] = nk, c->n_out[2] = nv;
	return t * s->heads;
}

/* upload rounds n floats to BF16 and copies them into a new device buffer, on the
 * case's stream. NOTE: the backend's stream is non-blocking; a plain cudaMemcpy from
 * pageable memory may return before its DMA lands, with nothing ordering it before a
 * kernel on that stream. */
static int upload(const float *x, size_t n, uint16_t **d, cudaStream_t st)
{
	uint16_t *h = malloc(n * sizeof(*h));
	int err = h ? MB_CUDA_CHECK(cudaMalloc((void **)d, n * sizeof(**d))) : MB_ERR_NOMEM;
	for (size_t i = 0; !err && i < n; i++)
		h[i] = bf16_from_float(x[i]);
	if (!err)
		err = MB_CUDA_CHECK(cudaMemcpyAsync(*d, h, n * sizeof(*h), cudaMemcpyHostToDevice, st));
	if (!err)
		err = MB_CUDA_CHECK(cudaStreamSynchronize(st));   /* before h is freed */
	free(h);
	return err;
}

/* alloc_outputs makes the output, o, lse and workspace buffers.
 * NOTE: decode's workspace is made here, once, so that run (the timed region)
 * allocates nothing; a shape decode refuses asks for 0 bytes, none is made, and run
 * reports the shape. */
static int alloc_outputs(struct attn_case_cuda *c, size_t nl)
{
	int err = MB_CUDA_CHECK(cudaMalloc((void **)&c->lse, nl * sizeof(float)));
	for (int i = 0; i < 3 && !err; i++)
		if (c->n_out[i])
			err = MB_CUDA_CHECK(cudaMalloc((void **)&c->out[i], c->n_out[i] * 2));
	if (!err && c->op == ATTN_CASE_BWD) {
		size_t no = (size_t)c->s.batch * c->s.seq * c->s.heads * c->s.d_v;
		err = MB_CUDA_CHECK(cudaMalloc((void **)&c->o, no * 2));
		if (!err)
			err = MB_CUDA_CHECK(cudaMalloc(&c->work, attn_bwd_cuda_workspace(&c->s) + 16));
	}
	if (!err && c->op == ATTN_CASE_DECODE) {
		c->work_bytes = attn_decode_cuda_workspace(&c->ds);
		if (c->work_bytes)
			err = MB_CUDA_CHECK(cudaMalloc(&c->work, c->work_bytes));
	}
	return err;
}

int attn_case_cuda_create(struct attn_case_cuda **out, enum attn_case_op op,
			  const struct attn_shape *s, const struct attn_decode_shape *ds,
			  const float *const in[4], void *stream)
{
	struct attn_case_cuda *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return MB_ERR_NOMEM;
	c->op = op;
	c->stream = stream;
	if (s)
		c->s = *s;
	if (ds)
		c->ds = *ds;
	c->n_in[2] = in[2] != NULL;  /* decode: no v cache means v == k */
	size_t nl = counts(c);
	c->n_lse = nl;
	int err = MB_OK;
	for (int i = 0; i < 4 && !err; i++)
		if (c->n_in[i])
			err = upload(in[i], c->n_in[i], &c->in[i], c->stream);
	if (!err)
		err = alloc_outputs(c, nl);
	if (!err && op == ATTN_CASE_BWD)
		err = attn_fwd_cuda(&c->s, c->in[0], c->in[1], c->in[2], c->o, c->lse, stream);
	if (err) {
		attn_case_cuda_destroy(c);
		return err;
	}
	*out = c;
	return MB_OK;
}

int attn_case_cuda_poison(struct attn_case_cuda *c)
{
	int err = MB_OK;
	for (int i = 0; i < 3 && !err; i++)
		if (c->out[i])
			err = MB_CUDA_CHECK(cudaMemsetAsync(c->out[i], 0xff, c->n_out[i] * 2, c->stream));
	/* NOTE: the backward's lse is its input (from create's forward), not an output. */
	if (!err && c->op != ATTN_CASE_BWD)
		err = MB_CUDA_CHECK(cudaMemsetAsync(c->lse, 0xff, c->n_lse * sizeof(float), c->stream));
	return err;
}

int attn_case_cuda_run(struct attn_case_cuda *c)
{
	uint16_t **in = c->in, **o = c->out;
	switch (c->op) {
	case ATTN_CASE_FWD:
		return attn_fwd_cuda(&c->s, in[0], in[1], in[2], o[0], c->lse, c->stream);
	case ATTN_CASE_BWD:
		return attn_bwd_cuda(&c->s, in[0], in[1], in[2], c->o, in[3], c->lse, o[0], o[1], o[2],
				     c->work, c->stream);
	default:
		return attn_decode_cuda(&c->ds, in[0], in[1], in[2] ? in[2] : in[1], o[0], c->lse,
					c->work, c->work_bytes, c->stream);
	}
}

int attn_case_cuda_download(struct attn_case_cuda *c, float *out, float *lse)
{
	int err = MB_CUDA_CHECK(cudaStreamSynchronize(c->stream));
	if (!err && lse && c->op != ATTN_CASE_BWD)
		err = MB_CUDA_CHECK(cudaMemcpy(lse, c->lse, c->n_lse * sizeof(float),
					       cudaMemcpyDeviceToHost));
	for (int i = 0; i < 3 && !err && c->n_out[i]; i++) {
		uint16_t *h = malloc(c->n_out[i] * sizeof(*h));
		err = h ? MB_CUDA_CHECK(cudaMemcpy(h, c->out[i], c->n_out[i] * 2, cudaMemcpyDeviceToHost))
			: MB_ERR_NOMEM;
		for (size_t e = 0; !err && e < c->n_out[i]; e++)
			out[e] = bf16_to_float(h[e]);
		out += c->n_out[i];
		free(h);
	}
	return err;
}

void attn_case_cuda_destroy(struct attn_case_cuda *c)
{
	if (!c)
		return;
	for (int i = 0; i < 4; i++)
		cudaFree(c->in[i]);
	for (int i = 0; i < 3; i++)
		cudaFree(c->out[i]);
	cudaFree(c->o);
	cudaFree(c->lse);
	cudaFree(c->work);
	free(c);
}
