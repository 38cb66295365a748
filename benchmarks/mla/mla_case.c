/*
 * mla_case.c - one measured case of `moebench mla`: the inputs of an attention core,
 * block or decode step (random, never zeros), the float CPU implementation behind the
 * driver's callbacks, and its check against the FP64 path on the same inputs
 * (max |d - ref| / rms(ref) over every output element).
 *
 * Buffers per operation (b[i], float):
 *   core_fwd   q k v | o lse                   core_bwd  q k v o dout lse | dq.dk.dv
 *   block_fwd  w x | y ws                      block_bwd w x ws dy | dx dw
 *   decode     q kcache vcache | o lse         (MLA: vcache unused, v == k)
 * CUDA block cases (MLA only, mla_cuda.h) keep no host ws (the device holds the
 * activations) and are checked against the CPU f32 block (block_check_cuda).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention_case.h"
#include "bf16.h"
#include "hardware.h"
#include "mla_bench.h"
#include "mla_cuda.h"
#include "rng.h"
#include "status.h"

#define NBUF 7

struct mla_state {
	struct mla_case_spec spec;
	struct attn_shape as;
	struct attn_decode_shape ds;
	size_t n[NBUF];
	float *b[NBUF];
	int out;           /* index of the first output buffer compared */
	int outs;          /* how many output buffers are compared */
	double err;
	struct attn_case_cuda *dev;  /* CUDA core and decode cases */
	struct mla_cuda *blk;        /* CUDA block cases */
	void *stream;
};

const char *mla_op_name(enum mla_op op)
{
	static const char *names[] = { "core_fwd", "core_bwd", "block_fwd", "block_bwd", "decode" };
	return op <= MLA_OP_DECODE ? names[op] : "?";
}

/* core_shape returns the training-form core shape of a variant. */
static struct attn_shape core_shape(const struct mla_variant *v, int batch, int seq)
{
	if (v->is_mla) {
		int dqk = v->mla.nope + v->mla.rope;
		return (struct attn_shape){ batch, seq, v->mla.heads, v->mla.heads, dqk, v->mla.v_dim,
					    true, (float)(1.0 / sqrt(dqk)) };
	}
	int hd = v->gqa.head_dim;
	return (struct attn_shape){ batch, seq, v->gqa.heads, v->gqa.kv_heads, hd, hd, true,
				    (float)(1.0 / sqrt(hd)) };
}

struct attn_decode_shape mla_decode_shape(const struct mla_variant *v, int batch, int ctx)
{
	if (v->is_mla) {
		int w = v->mla.kv_lora_rank + v->mla.rope;
		return (struct attn_decode_shape){ batch, ctx, v->mla.heads, 1, w, v->mla.kv_lora_rank,
						   w, w, (float)(1.0 / sqrt(v->mla.nope + v->mla.rope)) };
	}
	int hd = v->gqa.head_dim;
	return (struct attn_decode_shape){ batch, ctx, v->gqa.heads, v->gqa.kv_heads, hd, hd, hd,
					   hd, (float)(1.0 / sqrt(hd)) };
}

/* weight_macs returns the multiply-adds per token of a block's projections. */
static double weight_macs(const struct mla_variant *v)
{
	if (v->is_mla) {
		struct mla_layout l;
		mla_layout_of(&v->mla, &l);
		return (double)(l.total - (l.wq_b - l.q_norm) - (l.wkv_b - l.kv_norm));
	}
	struct gqa_layout l;
	gqa_layout_of(&v->gqa, &l);
	return (double)l.total;
}

double mla_case_flops(const struct mla_case_spec *s)
{
	if (s->op == MLA_OP_DECODE) {
		struct attn_decode_shape d = mla_decode_shape(s->v, s->batch, s->ctx);
		return 2.0 * d.batch * d.heads * (double)d.ctx * (d.d_qk + d.d_v);
	}
	struct attn_shape a = core_shape(s->v, s->batch, s->seq);
	double nnz = (double)a.seq * (a.seq + 1) / 2.0;
	double fwd = 2.0 * a.batch * a.heads * nnz * (a.d_qk + a.d_v);
	double proj = 2.0 * (double)s->batch * s->seq * weight_macs(s->v);
	switch (s->op) {
	case MLA_OP_CORE_FWD: return fwd;
	case MLA_OP_CORE_BWD: return 2.5 * fwd;
	case MLA_OP_BLOCK_FWD: return fwd + proj;
	default: return 2.5 * fwd + 2.0 * proj;
	}
}

/* sizes fills the element counts of every buffer of the case. */
static void sizes(struct mla_state *st)
{
	const struct mla_case_spec *s = &st->spec;
	const struct attn_shape *a = &st->as;
	const struct attn_decode_shape *d = &st->ds;
	size_t t = (size_t)s->batch * s->seq, nq = t * a->heads * a->d_qk;
	size_t nk = t * a->kv_heads * a->d_qk, nv = t * a->kv_heads * a->d_v, no = t * a->heads * a->d_v;
	size_t nw = 0, nws = 0, dim = 0;
	if (s->op == MLA_OP_BLOCK_FWD || s->op == MLA_OP_BLOCK_BWD) {
		struct mla_layout ml;
		struct gqa_layout gl;
		if (s->v->is_mla)
			mla_layout_of(&s->v->mla, &ml);
		else
			gqa_layout_of(&s->v->gqa, &gl);
		nw = s->v->is_mla ? ml.total : gl.total;
		nws = s->v->is_mla ? mla_workspace_count(&s->v->mla, s->batch, s->seq)
				   : gqa_workspace_count(&s->v->gqa, s->batch, s->seq);
		if (s->cuda)
			nws = 0;  /* the device keeps the activations */
		dim = (size_t)(s->v->is_mla ? s->v->mla.dim : s->v->gqa.dim);
	}
	size_t rows = (size_t)d->batch * d->ctx * d->kv_heads, bh = (size_t)d->batch * d->heads;
	size_t tab[5][NBUF] = {
		{ nq, nk, nv, no, t * a->heads },
		{ nq, nk, nv, no, no, t * a->heads, nq + nk + nv },
		{ nw, t * dim, t * dim, nws },
		{ nw, t * dim, nws, t * dim, t * dim, nw, s->cuda ? 0 : t * dim },
		{ bh * d->d_qk, rows * d->k_stride, s->v->is_mla ? 0 : rows * d->v_stride, bh * d->d_v, bh },
	};
	memcpy(st->n, tab[s->op], sizeof(st->n));
	/* outputs checked: o and lse (forward, decode), dq.dk.dv, y, dx and dw, o and lse */
	static const int out[5][2] = { { 3, 2 }, { 6, 1 }, { 2, 1 }, { 4, 2 }, { 3, 2 } };
	st->out = out[s->op][0];
	st->outs = out[s->op][1];
}

double mla_case_bytes(const struct mla_case_spec *s)
{
	struct mla_state st = { .spec = *s };
	st.as = core_shape(s->v, s->batch, s->seq);
	st.ds = mla_decode_shape(s->v, s->batch, s->ctx);
	sizes(&st);
	double total = 0;
	for (int i = 0; i < NBUF; i++)
		total += (double)st.n[i];
	/* float buffers, their FP64 copies for the reference, the core's FP64 working set */
	return total * (4.0 + 8.0 + 8.0);
}

/* fill draws buffer i uniform in [lo, hi) \ {0} from its own stream of the seed. */
static void fill(struct mla_state *st, int i, uint64_t seed, float lo, float hi)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, 500 + (uint64_t)i);
	for (size_t e = 0; e < st->n[i]; e++)
		do
			st->b[i][e] = (float)mb_rng_uniform(&rng, lo, hi);
		while (st->b[i][e] == 0.0f);
}

/* fill_weights draws the weights: projections uniform with scale 1/sqrt(dim), norm
 * weights around 1. */
static void fill_weights(struct mla_state *st, uint64_t seed)
{
	const struct mla_variant *v = st->spec.v;
	float a = (float)(1.0 / sqrt(v->is_mla ? v->mla.dim : v->gqa.dim));
	fill(st, 0, seed, -a, a);
	if (!v->is_mla)
		return;
	struct mla_layout l;
	mla_layout_of(&v->mla, &l);
	for (size_t e = l.q_norm; e < l.wq_b; e++)
		st->b[0][e] = 1.0f + st->b[0][e];
	for (size_t e = l.kv_norm; e < l.wkv_b; e++)
		st->b[0][e] = 1.0f + st->b[0][e];
}

/* run_block runs a block's float forward (into y, ws) or backward. */
static int run_block(struct mla_state *st, bool fwd)
{
	const struct mla_case_spec *s = &st->spec;
	float **b = st->b;
	if (fwd)
		return s->v->is_mla ? mla_fwd_f32(&s->v->mla, s->batch, s->seq, b[0], b[1], b[2], b[3])
				    : gqa_fwd_f32(&s->v->gqa, s->batch, s->seq, b[0], b[1], b[2], b[3]);
	return s->v->is_mla ? mla_bwd_f32(&s->v->mla, s->batch, s->seq, b[0], b[1], b[2], b[3], b[4], b[5])
			    : gqa_bwd_f32(&s->v->gqa, s->batch, s->seq, b[0], b[1], b[2], b[3], b[4], b[5]);
}

static int case_run(void *state)
{
	struct mla_state *st = state;
	float **b = st->b;
	size_t nq = st->n[0], nk = st->n[1];
	if (st->dev)
		return attn_case_cuda_run(st->dev);
	if (st->blk)
		return st->spec.op == MLA_OP_BLOCK_FWD ? mla_cuda_fwd(st->blk) : mla_cuda_bwd(st->blk);
	switch (st->spec.op) {
	case MLA_OP_CORE_FWD: return attn_fwd_cpu(&st->as, b[0], b[1], b[2], b[3], b[4]);
	case MLA_OP_CORE_BWD:
		return attn_bwd_cpu(&st->as, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[6] + nq,
				    b[6] + nq + nk);
	case MLA_OP_BLOCK_FWD: return run_block(st, true);
	case MLA_OP_BLOCK_BWD: return run_block(st, false);
	default:
		return attn_decode_cpu(&st->ds, b[0], b[1], st->spec.v->is_mla ? b[1] : b[2], b[3], b[4]);
	}
}

static int case_poison(void *state)
{
	struct mla_state *st = state;
	for (int i = st->out; i < st->out + st->outs; i++)
		memset(st->b[i], 0xff, st->n[i] * sizeof(float));
	if (st->blk)
		return mla_cuda_poison(st->blk);
	return st->dev ? attn_case_cuda_poison(st->dev) : MB_OK;
}

static void case_destroy(void *state)
{
	struct mla_state *st = state;
	if (!st)
		return;
	attn_case_cuda_destroy(st->dev);
	mla_cuda_destroy(st->blk);
	for (int i = 0; i < NBUF; i++)
		free(st->b[i]);
	free(st);
}

/* setup draws the inputs and, for a backward, runs the forward it needs. */
static int setup(struct mla_state *st, uint64_t seed)
{
	enum mla_op op = st->spec.op;
	for (int i = 0; i < NBUF; i++)
		if (i < st->out || i >= st->out + st->outs) {
			fill(st, i, seed, -1.0f, 1.0f);
			/* NOTE: a CUDA case's reference sees the BF16 inputs the kernel sees. */
			for (size_t e = 0; st->spec.cuda && e < st->n[i]; e++)
				st->b[i][e] = bf16_round(st->b[i][e]);
		}
	if (op == MLA_OP_CORE_BWD)
		return attn_fwd_cpu(&st->as, st->b[0], st->b[1], st->b[2], st->b[3], st->b[5]);
	bool block = op == MLA_OP_BLOCK_FWD || op == MLA_OP_BLOCK_BWD;
	if (block)
		fill_weights(st, seed);
	for (size_t e = 0; block && st->spec.cuda && e < st->n[0]; e++)
		st->b[0][e] = bf16_round(st->b[0][e]);
	if (op != MLA_OP_BLOCK_BWD || st->spec.cuda)
		return MB_OK;
	/* the forward saves ws (b[2]); its y goes to the scratch b[6] */
	const struct mla_case_spec *s = &st->spec;
	float **b = st->b;
	return s->v->is_mla ? mla_fwd_f32(&s->v->mla, s->batch, s->seq, b[0], b[1], b[6], b[2])
			    : gqa_fwd_f32(&s->v->gqa, s->batch, s->seq, b[0], b[1], b[6], b[2]);
}

/* alloc_state makes the state with its buffers. */
static int alloc_state(const struct mla_case_spec *s, struct mla_state **out)
{
	struct mla_state *st = calloc(1, sizeof(*st));
	if (!st)
		return MB_ERR_NOMEM;
	st->spec = *s;
	st->as = core_shape(s->v, s->batch, s->seq);
	st->ds = mla_decode_shape(s->v, s->batch, s->ctx);
	sizes(st);
	for (int i = 0; i < NBUF; i++)
		if (st->n[i] && !(st->b[i] = malloc(st->n[i] * sizeof(float)))) {
			case_destroy(st);
			return MB_ERR_NOMEM;
		}
	*out = st;
	return MB_OK;
}

/* widen_buf returns a double copy of buffer i (never NULL unless out of memory). */
static double *widen_buf(const struct mla_state *st, int i)
{
	double *d = malloc((st->n[i] ? st->n[i] : 1) * sizeof(*d));
	for (size_t e = 0; d && e < st->n[i]; e++)
		d[e] = st->b[i][e];
	return d;
}

/* reference_run computes the FP64 outputs into ref (outputs concatenated) from the
 * widened inputs w; scratch has room for the largest buffer. */
static int reference_run(struct mla_state *st, double **w, double *ref, double *scratch)
{
	const struct mla_case_spec *s = &st->spec;
	const struct mla_config *m = &s->v->mla;
	const struct gqa_config *g = &s->v->gqa;
	size_t *n = st->n;
	int err;
	switch (s->op) {
	case MLA_OP_CORE_FWD: return attn_fwd_cpu_f64(&st->as, w[0], w[1], w[2], ref, ref + n[3]);
	case MLA_OP_CORE_BWD:
		return attn_bwd_cpu_f64(&st->as, w[0], w[1], w[2], w[3], w[4], w[5], ref, ref + n[0],
					ref + n[0] + n[1]);
	case MLA_OP_BLOCK_FWD:
		return s->v->is_mla ? mla_fwd_f64(m, s->batch, s->seq, w[0], w[1], ref, scratch)
				    : gqa_fwd_f64(g, s->batch, s->seq, w[0], w[1], ref, scratch);
	case MLA_OP_BLOCK_BWD:
		/* the forward again in FP64, its y into dx's place (overwritten next) */
		err = s->v->is_mla ? mla_fwd_f64(m, s->batch, s->seq, w[0], w[1], ref, scratch)
				   : gqa_fwd_f64(g, s->batch, s->seq, w[0], w[1], ref, scratch);
		if (err)
			return err;
		return s->v->is_mla ? mla_bwd_f64(m, s->batch, s->seq, w[0], w[1], scratch, w[3], ref, ref + n[4])
				    : gqa_bwd_f64(g, s->batch, s->seq, w[0], w[1], scratch, w[3], ref, ref + n[4]);
	default:
		return attn_decode_cpu_f64(&st->ds, w[0], w[1], s->v->is_mla ? w[1] : w[2], ref,
					   ref + n[3]);
	}
}

/* rel_err returns max |d - ref| / rms(ref) over n (+inf on a non-finite d). */
static double rel_err(const float *d, const double *ref, size_t n)
{
	double ss = 0, m = 0;
	for (size_t i = 0; i < n; i++)
		ss += ref[i] * ref[i];
	double rms = n ? sqrt(ss / (double)n) : 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(d[i]))
			return INFINITY;
		m = fmax(m, fabs(d[i] - ref[i]));
	}
	return m / (rms > 0 ? rms : 1);
}

static int block_check_cuda(struct mla_state *st, struct bench_check *chk);

static int case_check(void *state, struct bench_check *chk)
{
	struct mla_state *st = state;
	if (st->blk)
		return block_check_cuda(st, chk);
	double *w[NBUF] = { 0 }, *ref = NULL, *scratch = NULL;
	size_t nout = 0, most = 0;
	int err = st->dev ? attn_case_cuda_download(st->dev, st->b[st->out],
						    st->outs > 1 ? st->b[st->out + 1] : NULL) : MB_OK;
	for (int i = 0; i < NBUF; i++) {
		most = st->n[i] > most ? st->n[i] : most;
		if (i >= st->out && i < st->out + st->outs)
			nout += st->n[i];
		else if (!(w[i] = widen_buf(st, i)))
			err = MB_ERR_NOMEM;
	}
	ref = malloc((nout + 1) * sizeof(double));
	scratch = malloc((most + 1) * sizeof(double));
	if (!err && (!ref || !scratch))
		err = MB_ERR_NOMEM;
	if (!err)
		err = reference_run(st, w, ref, scratch);
	/* NOTE: test-only (tests/test_cli_check.c): one output element made wrong. */
	if (!err && getenv("MOEBENCH_TEST_CORRUPT") && st->n[st->out] > 0)
		st->b[st->out][st->n[st->out] / 2] += 1.0f + 8.0f * fabsf(st->b[st->out][0]);
	st->err = 0;
	size_t off = 0;
	for (int i = st->out; !err && i < st->out + st->outs; i++) {
		st->err = fmax(st->err, rel_err(st->b[i], ref + off, st->n[i]));
		off += st->n[i];
	}
	bool block = st->spec.op == MLA_OP_BLOCK_FWD || st->spec.op == MLA_OP_BLOCK_BWD;
	double tol = st->dev ? MLA_TOL_BF16 : block ? MLA_TOL_BLOCK : MLA_TOL_CORE;
	*chk = (struct bench_check){ st->err, tol, (long)nout,
				     0, "max|d-ref|/rms(ref), ref: the FP64 path (plain loops, no BLAS) on the same inputs" };
	chk->mismatches = !(st->err <= chk->tolerance);
	for (int i = 0; i < NBUF; i++)
		free(w[i]);
	free(ref);
	free(scratch);
	return err;
}

/* ---- CUDA block cases ---- */

/* block_check_seq returns the sequence length a CUDA block case is checked at: its
 * own when the CPU f32 block (forward and backward, 6 FLOPs per weight per token) over
 * batch x seq costs at most MLA_CUDA_CHECK_FLOPS (*full set), else the prefix of one
 * sequence that does. */
static int block_check_seq(const struct mla_case_spec *s, bool *full)
{
	double per_token = 6.0 * weight_macs(s->v);
	double fit = floor(MLA_CUDA_CHECK_FLOPS / per_token);
	*full = (double)s->batch * s->seq <= fit;
	return *full ? s->seq : fit < 1 ? 1 : fit < s->seq ? (int)fit : s->seq;
}

/* block_scope says in the record what a CUDA block case's check covers. */
static void block_scope(const struct mla_case_spec *s, char *buf, size_t len)
{
	bool full;
	int seq = block_check_seq(s, &full);
	if (full)
		snprintf(buf, len, "every output of the timed run");
	else if (s->op == MLA_OP_BLOCK_FWD)
		snprintf(buf, len, "y of positions 0..%d of sequence 0 of the timed run (causal: "
			 "they depend on that prefix only); the full-size CPU reference is too slow",
			 seq - 1);
	else
		snprintf(buf, len, "dx and dw of a second GPU run at batch 1, seq %d (the prefix "
			 "of sequence 0); the timed run's dx and dw checked finite only; the "
			 "full-size CPU reference is too slow", seq);
}

/* rel_err_f32 is rel_err against a float reference. */
static double rel_err_f32(const float *d, const float *ref, size_t n)
{
	double ss = 0, m = 0;
	for (size_t i = 0; i < n; i++)
		ss += (double)ref[i] * ref[i];
	double rms = n ? sqrt(ss / (double)n) : 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(d[i]))
			return INFINITY;
		m = fmax(m, fabs((double)d[i] - ref[i]));
	}
	return m / (rms > 0 ? rms : 1);
}

/* block_grads_small runs the block forward and backward on the device at batch 1 x
 * seq on the prefix of sequence 0, into dx and dw. */
static int block_grads_small(struct mla_state *st, int seq, float *dx, float *dw)
{
	struct mla_cuda *m = NULL;
	int err = mla_cuda_create(&m, &st->spec.v->mla, 1, seq, st->stream);
	if (!err)
		err = mla_cuda_upload(m, st->b[0], st->b[1], st->b[3]);
	if (!err)
		err = mla_cuda_poison(m);
	if (!err)
		err = mla_cuda_fwd(m);
	if (!err)
		err = mla_cuda_bwd(m);
	if (!err)
		err = mla_cuda_download_grads(m, dx, dw);
	mla_cuda_destroy(m);
	return err;
}

/* block_check_cuda compares a CUDA block case with mla_fwd_f32 / mla_bwd_f32 on the
 * same BF16-rounded inputs, at the size block_check_seq picks (block_scope). */
static int block_check_cuda(struct mla_state *st, struct bench_check *chk)
{
	const struct mla_case_spec *s = &st->spec;
	const struct mla_config *c = &s->v->mla;
	bool fwd = s->op == MLA_OP_BLOCK_FWD, full;
	int seq = block_check_seq(s, &full), batch = full ? s->batch : 1;
	size_t n = (size_t)batch * seq * c->dim, nw = st->n[0];
	size_t nws = mla_workspace_count(c, batch, seq);
	float *ws = malloc(nws * sizeof(float)), *ry = malloc(n * sizeof(float));
	float *rdx = NULL, *rdw = NULL, *dx = NULL, *dw = NULL, **b = st->b;
	if (!fwd) {
		rdx = malloc(n * sizeof(float)), rdw = malloc(nw * sizeof(float));
		dx = full ? b[4] : malloc(n * sizeof(float));
		dw = full ? b[5] : malloc(nw * sizeof(float));
	}
	int err = ws && ry && (fwd || (rdx && rdw && dx && dw)) ? MB_OK : MB_ERR_NOMEM;
	if (!err)
		err = fwd ? mla_cuda_download_y(st->blk, b[2]) : mla_cuda_download_grads(st->blk, b[4], b[5]);
	if (!err)
		err = mla_fwd_f32(c, batch, seq, b[0], b[1], ry, ws);
	if (!err && !fwd)
		err = mla_bwd_f32(c, batch, seq, b[0], b[1], ws, b[3], rdx, rdw);
	if (!err && !fwd && !full)
		err = block_grads_small(st, seq, dx, dw);
	if (!err && fwd)
		st->err = rel_err_f32(b[2], ry, n);
	else if (!err)
		st->err = fmax(rel_err_f32(dx, rdx, n), rel_err_f32(dw, rdw, nw));
	/* NOTE: a second run checked at reduced size says nothing of the timed run's own
	 * values beyond this: every one of them was written (the poison is NaN). */
	for (size_t e = 0; !err && !fwd && !full && e < st->n[4] + nw; e++)
		if (!isfinite(e < st->n[4] ? b[4][e] : b[5][e - st->n[4]]))
			st->err = INFINITY;
	*chk = (struct bench_check){ st->err, MLA_TOL_BF16_BLOCK, (long)(fwd ? n : n + nw), 0,
				     "max|d-ref|/rms(ref) per output, ref: the CPU f32 block on the "
				     "same BF16-rounded inputs" };
	chk->mismatches = !(st->err <= chk->tolerance);
	if (!full)
		free(dx), free(dw);
	free(ws), free(ry), free(rdx), free(rdw);
	return err;
}

/* make_block uploads a CUDA block case's inputs and, for the backward, runs the
 * forward once for the activations it reads. The MHA/GQA block has no CUDA version. */
static int make_block(struct run_ctx *ctx, struct mla_state *st)
{
	const struct mla_case_spec *s = &st->spec;
	float **b = st->b;
	bool bwd = s->op == MLA_OP_BLOCK_BWD;
	if (!s->v->is_mla)
		return MB_ERR_UNSUPPORTED;
	int err = mla_cuda_create(&st->blk, &s->v->mla, s->batch, s->seq, ctx->backend->stream);
	if (!err)
		err = mla_cuda_upload(st->blk, b[0], b[1], bwd ? b[3] : NULL);
	if (!err && bwd)
		err = mla_cuda_fwd(st->blk);
	return err;
}

/* decode_bytes returns the bytes a decode step reads and writes at elem bytes per
 * element: every cache row once (MLA: key and value are one row), queries, outputs. */
static double decode_bytes(const struct attn_decode_shape *d, bool is_mla, int elem)
{
	double rows = (double)d->batch * d->ctx * d->kv_heads;
	double row = is_mla ? d->d_qk : d->d_qk + d->d_v;
	return elem * (rows * row + (double)d->batch * d->heads * (d->d_qk + d->d_v));
}

/* case_params describes the case in its record. */
static cJSON *case_params(const struct mla_state *st)
{
	const struct mla_case_spec *s = &st->spec;
	bool dec = s->op == MLA_OP_DECODE;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "preset", s->preset);
	cJSON_AddStringToObject(p, "variant", s->v->name);
	cJSON_AddStringToObject(p, "op", mla_op_name(s->op));
	cJSON_AddStringToObject(p, "impl", s->cuda ? "cuda" : "cpu");
	cJSON_AddNumberToObject(p, "batch", s->batch);
	cJSON_AddNumberToObject(p, dec ? "ctx" : "seq", dec ? s->ctx : s->seq);
	cJSON_AddNumberToObject(p, "heads", dec ? st->ds.heads : st->as.heads);
	cJSON_AddNumberToObject(p, "kv_heads", dec ? st->ds.kv_heads : st->as.kv_heads);
	cJSON_AddNumberToObject(p, "d_qk", dec ? st->ds.d_qk : st->as.d_qk);
	cJSON_AddNumberToObject(p, "d_v", dec ? st->ds.d_v : st->as.d_v);
	bool block = s->op == MLA_OP_BLOCK_FWD || s->op == MLA_OP_BLOCK_BWD;
	cJSON_AddStringToObject(p, "math", !s->cuda ? "float in/out; core in FP64, projections SGEMM" :
		block ? "BF16 activations, FP32 accumulation and weight gradients (cuBLASLt "
			"projections, mla_block.cu, attention.cu v1)" :
		"BF16 in/out, FP32 accumulation (attention.cu v1)");
	if (s->cuda && block) {
		char scope[320];
		block_scope(s, scope, sizeof(scope));
		cJSON_AddStringToObject(p, "check_scope", scope);
	}
	cJSON_AddStringToObject(p, "flop_convention", dec ?
		"2*B*H*ctx*(d_qk+d_v) (MLA absorbed: d_qk = kv_lora+rope, d_v = kv_lora)" :
		"core fwd 2*B*H*nnz*(d_qk+d_v), nnz = S(S+1)/2 causal; bwd 2.5x fwd; "
		"block adds 2*T*weights fwd, 4*T*weights bwd");
	if (dec) {
		uint64_t per = s->v->is_mla ? mla_kv_bytes_per_pos(&s->v->mla, 2)
					    : gqa_kv_bytes_per_pos(&s->v->gqa, 2);
		cJSON_AddNumberToObject(p, "kv_bytes_per_pos_bf16", (double)per);
		cJSON_AddNumberToObject(p, "bytes_per_step_bf16", decode_bytes(&st->ds, s->v->is_mla, 2));
		cJSON_AddNumberToObject(p, "bytes_per_step_measured",
					decode_bytes(&st->ds, s->v->is_mla, s->cuda ? 2 : 4));
	}
	return p;
}

static int case_annotate(void *state, cJSON *rec)
{
	struct mla_state *st = state;
	if (st->spec.op != MLA_OP_DECODE)
		return MB_OK;
	/* NOTE: a decode step is judged by bandwidth; its FLOPs are stated beside it. */
	cJSON_AddNumberToObject(rec, "flops_per_step", mla_case_flops(&st->spec));
	return MB_OK;
}

/* make_dev uploads a CUDA case's inputs (after setup drew them). */
static int make_dev(struct run_ctx *ctx, struct mla_state *st)
{
	float **b = st->b;
	enum mla_op op = st->spec.op;
	const float *in[4] = { b[0], b[1], b[2], op == MLA_OP_CORE_BWD ? b[4] : NULL };
	if (op == MLA_OP_DECODE && st->spec.v->is_mla)
		in[2] = NULL;  /* v == k: the latent cache */
	enum attn_case_op aop = op == MLA_OP_CORE_FWD ? ATTN_CASE_FWD :
				op == MLA_OP_CORE_BWD ? ATTN_CASE_BWD : ATTN_CASE_DECODE;
	st->stream = ctx->backend->stream;
	if (op == MLA_OP_BLOCK_FWD || op == MLA_OP_BLOCK_BWD)
		return make_block(ctx, st);
	return attn_case_cuda_create(&st->dev, aop, &st->as, &st->ds, in, ctx->backend->stream);
}

/* case_peak returns the datasheet peak of a CUDA case (BF16 TFLOP/s, or HBM GB/s for
 * decode), NaN on the CPU or an unknown device. */
static double case_peak(const struct run_ctx *ctx, const struct mla_case_spec *s, const char **src)
{
	const struct hardware_spec *hw = s->cuda ? hardware_match(ctx->backend->dev.name) : NULL;
	*src = hw ? hw->source : NULL;
	if (!hw)
		return NAN;
	return s->op == MLA_OP_DECODE ? 1e3 * hw->hbm_tbps : hw->peak_bf16_tflops;
}

int mla_run_case(struct run_ctx *ctx, const struct mla_case_spec *s)
{
	struct bench_case c = { .peak = NAN, .measured_peak = s->measured_peak };
	struct mla_state *st = NULL;
	int err = alloc_state(s, &st);
	if (!err)
		err = setup(st, ctx->opts->seed);
	if (!err && s->cuda)
		err = make_dev(ctx, st);
	/* NOTE: only a shape the kernels were not built for is skipped; MB_ERR_ARG from the
	 * device path (a misaligned buffer, an invalid shape) is a failure of the run. */
	if (s->cuda && err == MB_ERR_UNSUPPORTED) {
		cli_note(ctx->opts->quiet, "mla: %s %s %s on cuda: not taken by the kernels (%s), skipped",
			 s->preset, s->v->name, mla_op_name(s->op), mb_status_str(err));
		case_destroy(st);
		return MB_OK;
	}
	if (err) {
		case_destroy(st);
		return err;
	}
	bool dec = s->op == MLA_OP_DECODE;
	snprintf(c.name, sizeof(c.name), "%s/%s/%s/b%d_%s%d/%s", s->preset, s->v->name,
		 mla_op_name(s->op), s->batch, dec ? "ctx" : "s", dec ? s->ctx : s->seq,
		 s->cuda ? "cuda" : "cpu");
	c.params = case_params(st);
	c.flops = dec ? 0 : mla_case_flops(s);
	c.bytes = dec ? decode_bytes(&st->ds, s->v->is_mla, s->cuda ? 2 : 4) : 0;
	c.peak = case_peak(ctx, s, &c.peak_source);
	c.state = st;
	c.poison = case_poison;
	c.run = case_run;
	c.check = case_check;
	c.annotate = case_annotate;
	c.destroy = case_destroy;
	return s->cuda ? driver_run_case(ctx, &c) : driver_run_case_on_host(ctx, &c);
}
