/*
 * mla_cuda.c - the MLA block forward and backward on CUDA (mla_cuda.h): the five
 * projections and their gradients through cuBLASLt (BF16 operands, FP32 compute), the
 * small kernels of mla_block.cu, the attention core of attention.cu/attention_bwd.cu.
 * The order of operations is mla_impl.h's, step for step.
 *
 * Every projection is a row-major y[T, out] = x[T, in] W[in, out] and its backward
 * dW[in, out] = x^T dy, dx[T, in] = dy W^T (+ dx when accumulating): three GEMMs of
 * the form C[M, N] = op(A) op(B), A and B row-major, planned by one helper (lt_plan).
 * Plain C11 against the CUDA runtime and cuBLASLt C APIs; fwd and bwd only enqueue.
 */
#include "mla_cuda.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_tiles.h"
#include "bf16.h"
#include "cuda_check.h"
#include "lt_plan.h"
#include "mla_block.h"
#include "status.h"

/* NOTE: 32 MiB is the cuBLASLt workspace NVIDIA recommends on Hopper (gemm_cuda.c);
 * the GEMMs run one after another on one stream, so they share it. */
#define MLA_LT_WORKSPACE_BYTES ((size_t)32 << 20)

/* The weights in mla_layout order; the gains (QNORM, KVNORM) are no projection. */
enum { W_QA, W_QNORM, W_QB, W_KVA, W_KVNORM, W_KVB, W_O, W_COUNT };
/* The three GEMMs of a projection. */
enum { G_FWD, G_DW, G_DX, G_COUNT };

/* One planned GEMM: C[M, N] = op(A) op(B) (+ beta C), see lt_plan. */
struct lt_gemm {
	struct mb_lt_plan plan;
	float beta;
};

struct mla_cuda {
	struct mla_config c;
	struct mla_layout L;
	int batch, seq, t;
	cudaStream_t stream;
	cublasLtHandle_t lt;
	void *d_lt_ws;
	struct lt_gemm g[W_COUNT][G_COUNT];  /* projections only */
	size_t nw[W_COUNT];                  /* elements of each weight (0: absent) */
	uint16_t *d_w[W_COUNT];              /* BF16 weights */
	float *d_dw[W_COUNT];                /* FP32 weight gradients */
	/* activations (BF16; lse FP32), as struct mla_ws, plus the core's saved inputs */
	uint16_t *x, *cq, *cqn, *q, *kva, *latn, *krr, *kv, *k, *v, *o, *y;
	float *lse;
	/* gradients (BF16) and the backward's scratch */
	uint16_t *dy, *dout, *dq, *dk, *dv, *dkv, *dkva, *dlatn, *dcqn, *dcq, *dx;
	float *rstd;
	void *d_attn_ws;
	size_t attn_ws_bytes;
};

/* ---- cuBLASLt plans ---- */

/*
 * lt_plan plans C[M, N] = op(A) op(B) + beta C for row-major operands: A stored [M, K]
 * (ta false) or [K, M] (ta true, op(A) = A^T), B stored [K, N] or [N, K] (tb), C [M, N]
 * of type c_type, BF16 A and B, FP32 compute and scale.
 * NOTE: cuBLASLt is column-major, and a row-major [R, C] matrix is the column-major
 * C x R matrix (ld C), its transpose. So C^T = op(B)^T op(A)^T: cuBLASLt's A is our B
 * and its B is our A, each with its own op flag unchanged, m = N, n = M, k = K, and
 * every layout is (rows = stored columns, cols = stored rows, ld = stored columns).
 *   forward  y = x W     : ta 0, tb 0, M T,  N out, K in
 *   dW       dW = x^T dy : ta 1, tb 0, M in, N out, K T   (FP32 C)
 *   dx       dx = dy W^T : ta 0, tb 1, M T,  N in,  K out
 */
static int lt_plan(struct mla_cuda *m, struct lt_gemm *g, bool ta, bool tb, int M, int N,
		   int K, cudaDataType_t c_type, float beta)
{
	cublasOperation_t op_a = tb ? CUBLAS_OP_T : CUBLAS_OP_N;  /* cuBLASLt's A: our B */
	cublasOperation_t op_b = ta ? CUBLAS_OP_T : CUBLAS_OP_N;  /* cuBLASLt's B: our A */
	uint64_t b_rows = (uint64_t)(tb ? N : K), b_cols = (uint64_t)(tb ? K : N);
	uint64_t a_rows = (uint64_t)(ta ? K : M), a_cols = (uint64_t)(ta ? M : K);
	struct mb_lt_spec s = {
		.a = { CUDA_R_16BF, b_cols, b_rows, (int64_t)b_cols, op_a, NULL, 0 },
		.b = { CUDA_R_16BF, a_cols, a_rows, (int64_t)a_cols, op_b, NULL, 0 },
		.c = { c_type, (uint64_t)N, (uint64_t)M, N, CUBLAS_OP_N, NULL, 0 },
		.accum = MB_LT_ACCUM_DEFAULT,
		.workspace_bytes = MLA_LT_WORKSPACE_BYTES,
		.what = "the BF16", .m = M, .n = N, .k = K,
	};
	g->beta = beta;
	return mb_lt_plan_make(&g->plan, m->lt, &s);
}

/* lt_run enqueues a planned GEMM with our A, B and C (see lt_plan: the operands swap). */
static int lt_run(struct mla_cuda *m, const struct lt_gemm *g, const void *a, const void *b,
		  void *c)
{
	const float alpha = 1.0f;
	return mb_lt_plan_run(m->lt, &g->plan, &alpha, b, a, &g->beta, c, m->d_lt_ws, m->stream);
}

/* lt_free destroys what lt_plan made; safe on a zeroed or half-made plan. */
static void lt_free(struct lt_gemm *g)
{
	mb_lt_plan_free(&g->plan);
}

/* proj_dims gives the in and out widths of projection w (mla.h). */
static void proj_dims(const struct mla_config *c, int w, int *in, int *out)
{
	int H = c->heads, ql = c->q_lora_rank;
	int dims[W_COUNT][2] = {
		[W_QA] = { c->dim, ql },
		[W_QB] = { ql ? ql : c->dim, H * (c->nope + c->rope) },
		[W_KVA] = { c->dim, c->kv_lora_rank + c->rope },
		[W_KVB] = { c->kv_lora_rank, H * (c->nope + c->v_dim) },
		[W_O] = { H * c->v_dim, c->dim },
	};
	*in = dims[w][0];
	*out = dims[w][1];
}

/* plan_all plans the forward, dW and dx GEMMs of every projection present. The dx of
 * the q path's first projection adds to the kv path's dx (mla_impl.h's order). */
static int plan_all(struct mla_cuda *m)
{
	static const int projs[] = { W_QA, W_QB, W_KVA, W_KVB, W_O };
	int err = MB_OK, t = m->t;
	for (int i = 0; i < 5 && !err; i++) {
		int w = projs[i], in, out;
		if (m->nw[w] == 0)
			continue;
		proj_dims(&m->c, w, &in, &out);
		float dx_beta = w == W_QA || (w == W_QB && m->c.q_lora_rank == 0) ? 1.0f : 0.0f;
		struct lt_gemm *g = m->g[w];
		err = lt_plan(m, &g[G_FWD], false, false, t, out, in, CUDA_R_16BF, 0.0f);
		if (!err)
			err = lt_plan(m, &g[G_DW], true, false, in, out, t, CUDA_R_32F, 0.0f);
		if (!err)
			err = lt_plan(m, &g[G_DX], false, true, t, in, out, CUDA_R_16BF, dx_beta);
	}
	return err;
}

/* ---- buffers ---- */

/* One device buffer: where its pointer lives and its size. */
struct dev_buf {
	void **p;
	size_t bytes;
};

/* buffer_table lists every device buffer of m with its size; returns the count. */
static int buffer_table(struct mla_cuda *m, struct dev_buf *tab)
{
	const struct mla_config *c = &m->c;
	size_t t = (size_t)m->t, th = t * (size_t)c->heads, ql = (size_t)c->q_lora_rank;
	size_t dqk = (size_t)(c->nope + c->rope), dv = (size_t)c->v_dim, dn = (size_t)c->nope;
	size_t kvl = (size_t)c->kv_lora_rank, wd = kvl + (size_t)c->rope, dim = (size_t)c->dim;
	struct dev_buf b[] = {
		{ (void **)&m->x, t * dim * 2 }, { (void **)&m->cq, t * ql * 2 },
		{ (void **)&m->cqn, t * ql * 2 }, { (void **)&m->q, th * dqk * 2 },
		{ (void **)&m->kva, t * wd * 2 }, { (void **)&m->latn, t * kvl * 2 },
		{ (void **)&m->krr, t * (size_t)c->rope * 2 }, { (void **)&m->kv, th * (dn + dv) * 2 },
		{ (void **)&m->k, th * dqk * 2 }, { (void **)&m->v, th * dv * 2 },
		{ (void **)&m->o, th * dv * 2 }, { (void **)&m->y, t * dim * 2 },
		{ (void **)&m->lse, th * 4 }, { (void **)&m->dy, t * dim * 2 },
		{ (void **)&m->dout, th * dv * 2 }, { (void **)&m->dq, th * dqk * 2 },
		{ (void **)&m->dk, th * dqk * 2 }, { (void **)&m->dv, th * dv * 2 },
		{ (void **)&m->dkv, th * (dn + dv) * 2 }, { (void **)&m->dkva, t * wd * 2 },
		{ (void **)&m->dlatn, t * kvl * 2 }, { (void **)&m->dcqn, t * ql * 2 },
		{ (void **)&m->dcq, t * ql * 2 }, { (void **)&m->dx, t * dim * 2 },
		{ (void **)&m->rstd, t * 4 }, { &m->d_attn_ws, m->attn_ws_bytes },
		{ &m->d_lt_ws, MLA_LT_WORKSPACE_BYTES },
	};
	int n = (int)(sizeof(b) / sizeof(b[0]));
	memcpy(tab, b, sizeof(b));
	for (int w = 0; w < W_COUNT; w++) {
		tab[n++] = (struct dev_buf){ (void **)&m->d_w[w], m->nw[w] * 2 };
		tab[n++] = (struct dev_buf){ (void **)&m->d_dw[w], m->nw[w] * 4 };
	}
	return n;
}

#define MAX_BUFS 48

/* alloc_all allocates every buffer of nonzero size. */
static int alloc_all(struct mla_cuda *m)
{
	struct dev_buf tab[MAX_BUFS];
	int n = buffer_table(m, tab), err = MB_OK;
	for (int i = 0; i < n && !err; i++)
		if (tab[i].bytes)
			err = MB_CUDA_CHECK(cudaMalloc(tab[i].p, tab[i].bytes));
	return err;
}

/* weight_offsets fills the offset of each weight in the parameter vector, and the
 * vector's size at [W_COUNT]. */
static void weight_offsets(const struct mla_layout *L, size_t off[W_COUNT + 1])
{
	size_t o[W_COUNT + 1] = { L->wq_a, L->q_norm, L->wq_b, L->wkv_a, L->kv_norm, L->wkv_b,
				  L->wo, L->total };
	memcpy(off, o, sizeof(o));
}

/* ---- create, upload, download ---- */

/* core_shape is the attention core's shape, as mla_impl.h builds it. */
static struct attn_shape core_shape(const struct mla_cuda *m)
{
	int dqk = m->c.nope + m->c.rope;
	return (struct attn_shape){ m->batch, m->seq, m->c.heads, m->c.heads, dqk, m->c.v_dim,
				    true, (float)(1.0 / sqrt(dqk)) };
}

/* core_rule returns NULL when the CUDA core takes the config, else the rule it breaks.
 * NOTE: the head-dim rule is the one attention.cu and attention_bwd.cu dispatch on. */
static const char *core_rule(const struct mla_config *c, int batch)
{
	if (!att_train_dims_ok(c->nope + c->rope, c->v_dim))
		return "core head dims nope+rope / v_dim must be multiples of 16 up to 256";
	if ((long)batch * c->heads > 65535)
		return "batch * heads above 65535";
	return NULL;
}

int mla_cuda_create(struct mla_cuda **out, const struct mla_config *c, int batch, int seq,
		    void *stream)
{
	struct mla_cuda *m = NULL;
	size_t off[W_COUNT + 1];
	int err = MB_ERR_ARG;
	if (!out || !c || mla_workspace_count(c, batch, seq) == 0)
		goto out;
	const char *rule = core_rule(c, batch);
	if (rule) {
		fprintf(stderr, "mla_cuda_create: %s\n", rule);
		err = MB_ERR_UNSUPPORTED;
		goto out;
	}
	err = MB_ERR_NOMEM;
	if (!(m = calloc(1, sizeof(*m))))
		goto out;
	m->c = *c;
	m->batch = batch, m->seq = seq, m->t = batch * seq;
	m->stream = (cudaStream_t)stream;
	mla_layout_of(c, &m->L);
	weight_offsets(&m->L, off);
	for (int w = 0; w < W_COUNT; w++)
		m->nw[w] = off[w + 1] - off[w];
	struct attn_shape s = core_shape(m);
	m->attn_ws_bytes = attn_bwd_cuda_workspace(&s);
	err = alloc_all(m);
	if (!err)
		err = MB_CUBLAS_CHECK(cublasLtCreate(&m->lt));
	if (!err)
		err = plan_all(m);
out:
	if (err) {
		mla_cuda_destroy(m);
		m = NULL;
	}
	if (out)
		*out = m;
	return err;
}

/* upload_bf16 rounds n host floats to BF16 into the device buffer d. */
static int upload_bf16(const float *h, size_t n, uint16_t *d)
{
	uint16_t *b = malloc((n ? n : 1) * sizeof(*b));
	if (!b)
		return MB_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		b[i] = bf16_from_float(h[i]);
	int err = mb_cuda_upload(d, b, n * sizeof(*b));
	free(b);
	return err;
}

int mla_cuda_upload(struct mla_cuda *m, const float *w, const float *x, const float *dy)
{
	size_t off[W_COUNT + 1], nx;
	int err = MB_OK;
	if (!m || !w || !x)
		return MB_ERR_ARG;
	weight_offsets(&m->L, off);
	nx = (size_t)m->t * (size_t)m->c.dim;
	for (int i = 0; i < W_COUNT && !err; i++)
		if (m->nw[i])
			err = upload_bf16(w + off[i], m->nw[i], m->d_w[i]);
	if (!err)
		err = upload_bf16(x, nx, m->x);
	if (!err && dy)
		err = upload_bf16(dy, nx, m->dy);
	return err;
}

/* download_bf16 waits for the stream and widens n device BF16 values into h. */
static int download_bf16(struct mla_cuda *m, const uint16_t *d, size_t n, float *h)
{
	uint16_t *b = malloc((n ? n : 1) * sizeof(*b));
	int err = b ? MB_CUDA_CHECK(cudaStreamSynchronize(m->stream)) : MB_ERR_NOMEM;
	if (!err)
		err = MB_CUDA_CHECK(cudaMemcpy(b, d, n * sizeof(*b), cudaMemcpyDeviceToHost));
	for (size_t i = 0; !err && i < n; i++)
		h[i] = bf16_to_float(b[i]);
	free(b);
	return err;
}

int mla_cuda_download_y(struct mla_cuda *m, float *y)
{
	if (!m || !y)
		return MB_ERR_ARG;
	return download_bf16(m, m->y, (size_t)m->t * (size_t)m->c.dim, y);
}

int mla_cuda_download_grads(struct mla_cuda *m, float *dx, float *dw)
{
	size_t off[W_COUNT + 1];
	if (!m || !dx || !dw)
		return MB_ERR_ARG;
	int err = download_bf16(m, m->dx, (size_t)m->t * (size_t)m->c.dim, dx);
	weight_offsets(&m->L, off);
	for (int i = 0; i < W_COUNT && !err; i++)
		if (m->nw[i])
			err = MB_CUDA_CHECK(cudaMemcpy(dw + off[i], m->d_dw[i], m->nw[i] * sizeof(float),
						       cudaMemcpyDeviceToHost));
	return err;
}

/* mla_cuda_poison fills y, dx and every dw with 0xFF bytes (NaN in BF16 and FP32). */
int mla_cuda_poison(struct mla_cuda *m)
{
	if (!m)
		return MB_ERR_ARG;
	size_t n = (size_t)m->t * (size_t)m->c.dim * 2;
	int err = MB_CUDA_CHECK(cudaMemsetAsync(m->y, 0xff, n, m->stream));
	if (!err)
		err = MB_CUDA_CHECK(cudaMemsetAsync(m->dx, 0xff, n, m->stream));
	for (int i = 0; i < W_COUNT && !err; i++)
		if (m->nw[i])
			err = MB_CUDA_CHECK(cudaMemsetAsync(m->d_dw[i], 0xff, m->nw[i] * 4, m->stream));
	return err;
}

void mla_cuda_destroy(struct mla_cuda *m)
{
	struct dev_buf tab[MAX_BUFS];
	if (!m)
		return;
	for (int w = 0; w < W_COUNT; w++)
		for (int k = 0; k < G_COUNT; k++)
			lt_free(&m->g[w][k]);
	if (m->lt)
		cublasLtDestroy(m->lt);
	int n = buffer_table(m, tab);
	for (int i = 0; i < n; i++)
		cudaFree(*tab[i].p);
	free(m);
}

/* ---- forward and backward ---- */

/* fwd_q computes q [T, H, dn+dr] (before RoPE): through the q latent and its norm, or
 * straight from x without q_lora_rank. */
static int fwd_q(struct mla_cuda *m)
{
	const struct mla_config *c = &m->c;
	int ql = c->q_lora_rank;
	if (ql == 0)
		return lt_run(m, &m->g[W_QB][G_FWD], m->x, m->d_w[W_QB], m->q);
	int err = lt_run(m, &m->g[W_QA][G_FWD], m->x, m->d_w[W_QA], m->cq);
	if (!err)
		err = mla_rmsnorm_fwd_cuda(m->t, ql, m->cq, ql, m->d_w[W_QNORM], (float)c->eps,
					   m->cqn, m->stream);
	return err ? err : lt_run(m, &m->g[W_QB][G_FWD], m->cqn, m->d_w[W_QB], m->q);
}

/* fwd_kv computes the latent and shared key (kva), the latent's norm (latn), the
 * per-head [k_nope | v] (kv) and the rotated shared key (krr). */
static int fwd_kv(struct mla_cuda *m)
{
	const struct mla_config *c = &m->c;
	int kvl = c->kv_lora_rank, wd = kvl + c->rope;
	int err = lt_run(m, &m->g[W_KVA][G_FWD], m->x, m->d_w[W_KVA], m->kva);
	if (!err)
		err = mla_rmsnorm_fwd_cuda(m->t, kvl, m->kva, wd, m->d_w[W_KVNORM], (float)c->eps,
					   m->latn, m->stream);
	if (!err)
		err = lt_run(m, &m->g[W_KVB][G_FWD], m->latn, m->d_w[W_KVB], m->kv);
	if (!err)
		err = mla_rope_cuda(m->t, 1, m->seq, c->rope, c->rope_theta, false, m->kva + kvl, wd,
				    m->krr, c->rope, m->stream);
	return err;
}

int mla_cuda_fwd(struct mla_cuda *m)
{
	if (!m)
		return MB_ERR_ARG;
	const struct mla_config *c = &m->c;
	int H = c->heads, dn = c->nope, dqk = dn + c->rope;
	struct attn_shape s = core_shape(m);
	int err = fwd_q(m);
	if (!err)
		err = fwd_kv(m);
	if (!err)
		err = mla_rope_cuda(m->t * H, H, m->seq, c->rope, c->rope_theta, false, m->q + dn, dqk,
				    m->q + dn, dqk, m->stream);
	if (!err)
		err = mla_assemble_cuda(m->t, H, dn, c->rope, c->v_dim, m->kv, m->krr, m->k, m->v,
					m->stream);
	if (!err)
		err = attn_fwd_cuda(&s, m->q, m->k, m->v, m->o, m->lse, m->stream);
	return err ? err : lt_run(m, &m->g[W_O][G_FWD], m->o, m->d_w[W_O], m->y);
}

/* bwd_linear runs projection w's dW = a^T dy and dx (= or +=) dy W^T. */
static int bwd_linear(struct mla_cuda *m, int w, const uint16_t *a, const uint16_t *dy,
		      uint16_t *dx)
{
	int err = lt_run(m, &m->g[w][G_DW], a, dy, m->d_dw[w]);
	return err ? err : lt_run(m, &m->g[w][G_DX], dy, m->d_w[w], dx);
}

/* bwd_core takes dy back through W_o and the core, then turns dq, dk, dv into the
 * gradients of the projections' outputs (mla_impl.h's mla_scatter): dq's rope part
 * rotated back in place, dkv, and the shared key's gradient into dkva[:, kvl:]. */
static int bwd_core(struct mla_cuda *m)
{
	const struct mla_config *c = &m->c;
	int H = c->heads, dn = c->nope, dr = c->rope, dqk = dn + dr;
	struct attn_shape s = core_shape(m);
	int err = bwd_linear(m, W_O, m->o, m->dy, m->dout);
	if (!err)
		err = attn_bwd_cuda(&s, m->q, m->k, m->v, m->o, m->dout, m->lse, m->dq, m->dk, m->dv,
				    m->d_attn_ws, m->stream);
	if (!err)
		err = mla_scatter_cuda(m->t, H, dn, dr, c->v_dim, m->dk, m->dv, m->dkv, m->stream);
	if (!err)
		err = mla_rope_key_grad_cuda(m->t, H, m->seq, dn, dr, c->kv_lora_rank, c->rope_theta,
					     m->dk, m->dkva, m->stream);
	if (!err)
		err = mla_rope_cuda(m->t * H, H, m->seq, dr, c->rope_theta, true, m->dq + dn, dqk,
				    m->dq + dn, dqk, m->stream);
	return err;
}

/* bwd_kv takes dkv and dkva's rope part back through W_kvb, the latent norm and
 * W_kva: their gradients, and dx (overwritten). */
static int bwd_kv(struct mla_cuda *m)
{
	const struct mla_config *c = &m->c;
	int kvl = c->kv_lora_rank, wd = kvl + c->rope;
	int err = bwd_linear(m, W_KVB, m->latn, m->dkv, m->dlatn);
	if (!err)
		err = mla_rmsnorm_bwd_cuda(m->t, kvl, m->kva, wd, m->d_w[W_KVNORM], (float)c->eps,
					   m->dlatn, m->dkva, wd, m->rstd, m->d_dw[W_KVNORM],
					   m->stream);
	return err ? err : bwd_linear(m, W_KVA, m->x, m->dkva, m->dx);
}

/* bwd_q takes dq (before RoPE) back through the q path, adding to dx. */
static int bwd_q(struct mla_cuda *m)
{
	const struct mla_config *c = &m->c;
	int ql = c->q_lora_rank;
	if (ql == 0)
		return bwd_linear(m, W_QB, m->x, m->dq, m->dx);
	int err = bwd_linear(m, W_QB, m->cqn, m->dq, m->dcqn);
	if (!err)
		err = mla_rmsnorm_bwd_cuda(m->t, ql, m->cq, ql, m->d_w[W_QNORM], (float)c->eps,
					   m->dcqn, m->dcq, ql, m->rstd, m->d_dw[W_QNORM], m->stream);
	return err ? err : bwd_linear(m, W_QA, m->x, m->dcq, m->dx);
}

int mla_cuda_bwd(struct mla_cuda *m)
{
	if (!m)
		return MB_ERR_ARG;
	int err = bwd_core(m);
	if (!err)
		err = bwd_kv(m);
	return err ? err : bwd_q(m);
}
