/*
 * net_impl.h - the trainable model's state and forward (net.h), once per precision:
 * net.c defines REAL, SFX(name), GEMM (for block_real.h's norms) and OPS (the op table
 * type) and includes this file, then net_bwd_impl.h, twice. Shapes: T = B * S tokens,
 * d = dim, E routed experts, K = top-k, I / Im / Is the dense, expert and shared widths.
 */
#include "block_real.h"

/* What one block's forward keeps for the backward (pointers into one allocation). */
struct SFX(net_act) {
	REAL *in, *n1, *ain, *aws, *h, *n2, *out;  /* ain: n1 itself under fp32 */
	REAL *a, *b, *act;                        /* dense SwiGLU [T, I] */
	REAL *s, *wts, *fbal;                     /* MoE: scores [T,E], weights [T,K], f [B,E] */
	REAL *sa, *sb, *sact;                     /* shared experts [T, Is] */
	REAL *xp, *ea, *eb, *eact, *ey;           /* routed rows in expert order [T*K, .] */
	int32_t *idx, *order, *eoff;              /* [T*K], [T*K], [E+1] */
	long *load;                               /* [E] */
};

/* The MTP module of one depth: inputs of its projection. */
struct SFX(net_mtp) {
	REAL *emb, *en, *hn, *cat, *proj;
};

struct SFX(net) {
	const struct net_layout *L;
	struct net_options o;
	const struct OPS *ops;
	struct net_profile *prof;
	int B, S, T, D, d;
	struct mla_config mla;
	struct gqa_config gqa;
	size_t attn_total;
	REAL *w, *g;
	float *m1, *m2;                  /* AdamW moments (f32 model only) */
	REAL *act_base, *fin, *dlog;   /* fin, dlog: [(1+D), T, d] and [(1+D), T, V] */
	struct SFX(net_act) *A;
	struct SFX(net_mtp) *M;
	REAL *scratch, *pk, *gpk;       /* backward scratch; packed attention weights/grads */
	int32_t *ints, *tok;
	long *longs;
	float *route_buf;               /* float logits, bias and weights for route_cpu */
	double ce_weight[1 + 16];
	size_t bytes;                   /* every allocation above */
	struct net_memory mem;          /* bytes by term (net_alloc, from the allocations) */
	bool fixed_route;               /* keep the selection in A[].idx (net_fix_selection) */
};

/* A bump allocator: counts when base is NULL, hands out slices otherwise. */
struct SFX(carve) {
	REAL *base;
	size_t used;
};

static REAL *SFX(take)(struct SFX(carve) *c, size_t n)
{
	REAL *p = c->base ? c->base + c->used : NULL;
	c->used += n;
	return p;
}

/* net_block_acts carves block i's activations (REAL part) out of c. */
static void SFX(net_block_acts)(struct SFX(net) *m, int i, struct SFX(carve) *c)
{
	const struct model_config *cf = &m->L->cfg;
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	size_t T = (size_t)m->T, d = (size_t)m->d, E = (size_t)cf->routed_experts;
	size_t K = (size_t)cf->activated_experts, im = (size_t)cf->moe_inter_dim;
	size_t is = im * (size_t)cf->shared_experts;
	size_t ws = b->mla ? mla_workspace_count(&m->mla, m->B, m->S)
			   : gqa_workspace_count(&m->gqa, m->B, m->S);
	a->in = (i == 0 || b->mtp) ? SFX(take)(c, T * d) : m->A[i - 1].out;
	a->n1 = SFX(take)(c, T * d);
	a->ain = m->o.precision == NET_FP32 ? a->n1 : SFX(take)(c, T * d);
	a->aws = SFX(take)(c, ws);
	a->h = SFX(take)(c, T * d);
	a->n2 = SFX(take)(c, T * d);
	a->out = SFX(take)(c, T * d);
	if (!b->moe) {
		size_t ni = (size_t)cf->inter_dim;
		a->a = SFX(take)(c, T * ni);
		a->b = SFX(take)(c, T * ni);
		a->act = SFX(take)(c, T * ni);
		return;
	}
	a->s = SFX(take)(c, T * E);
	a->wts = SFX(take)(c, T * K);
	a->fbal = SFX(take)(c, (size_t)m->B * E);
	a->sa = SFX(take)(c, T * is);
	a->sb = SFX(take)(c, T * is);
	a->sact = SFX(take)(c, T * is);
	a->xp = SFX(take)(c, T * K * d);
	a->ea = SFX(take)(c, T * K * im);
	a->eb = SFX(take)(c, T * K * im);
	a->eact = SFX(take)(c, T * K * im);
	a->ey = SFX(take)(c, T * K * d);
}

/* net_scratch_count returns the backward scratch a step needs (elements). */
static size_t SFX(net_scratch_count)(const struct SFX(net) *m)
{
	const struct model_config *cf = &m->L->cfg;
	size_t T = (size_t)m->T, d = (size_t)m->d, E = (size_t)cf->routed_experts;
	size_t K = (size_t)cf->activated_experts, im = (size_t)cf->moe_inter_dim;
	size_t is = im * (size_t)cf->shared_experts, ni = (size_t)cf->inter_dim;
	size_t dense = 3 * T * ni;
	size_t moe = 2 * T * K * d + 3 * T * K * im + 3 * T * is + T * K + T * E;
	return 6 * T * d + (dense > moe ? dense : moe);
}

/* net_carve_all places every activation (base NULL: counts them). */
static size_t SFX(net_carve_all)(struct SFX(net) *m, REAL *base)
{
	struct SFX(carve) c = { base, 0 };
	size_t T = (size_t)m->T, d = (size_t)m->d, V = (size_t)m->L->cfg.vocab;
	for (int i = 0; i < m->L->blocks; i++)
		SFX(net_block_acts)(m, i, &c);
	for (int k = 0; k < m->D; k++) {
		struct SFX(net_mtp) *p = &m->M[k];
		p->emb = SFX(take)(&c, T * d);
		p->en = SFX(take)(&c, T * d);
		p->hn = SFX(take)(&c, T * d);
		p->cat = SFX(take)(&c, 2 * T * d);
		p->proj = m->A[m->L->cfg.layers + k].in;
	}
	m->fin = SFX(take)(&c, (size_t)(1 + m->D) * T * d);
	m->dlog = SFX(take)(&c, (size_t)(1 + m->D) * T * V);
	m->pk = SFX(take)(&c, m->attn_total);
	m->gpk = SFX(take)(&c, m->attn_total);
	m->scratch = SFX(take)(&c, SFX(net_scratch_count)(m));
	return c.used;
}

/* net_carve_ints places the integer arrays of the MoE blocks and the tokens. */
static int SFX(net_carve_ints)(struct SFX(net) *m)
{
	const struct model_config *cf = &m->L->cfg;
	size_t TK = (size_t)m->T * (size_t)cf->activated_experts, E = (size_t)cf->routed_experts;
	size_t ntok = (size_t)m->B * (size_t)(m->S + 1 + m->D), ni = ntok, nl = 0;
	for (int i = 0; i < m->L->blocks; i++)
		if (m->L->blk[i].moe) {
			ni += 2 * TK + E + 1;
			nl += E;
		}
	m->ints = malloc(ni * sizeof(int32_t));
	m->longs = calloc(nl ? nl : 1, sizeof(long));
	m->route_buf = malloc(((size_t)m->T * (E + (size_t)cf->activated_experts) + E + 1) *
			      sizeof(float));
	if (!m->ints || !m->longs || !m->route_buf)
		return MB_ERR_NOMEM;
	m->mem.scratch += ni * sizeof(int32_t) + (nl ? nl : 1) * sizeof(long) +
			  ((size_t)m->T * (E + (size_t)cf->activated_experts) + E + 1) * sizeof(float);
	int32_t *p = m->ints;
	long *q = m->longs;
	m->tok = p;
	p += ntok;
	for (int i = 0; i < m->L->blocks; i++)
		if (m->L->blk[i].moe) {
			struct SFX(net_act) *a = &m->A[i];
			a->idx = p;
			a->order = p + TK;
			a->eoff = p + 2 * TK;
			p += 2 * TK + E + 1;
			a->load = q;
			q += E;
		}
	return MB_OK;
}

/* net_attn_configs fills the attention block configs of the layout. */
static void SFX(net_attn_configs)(struct SFX(net) *m)
{
	const struct model_config *c = &m->L->cfg;
	m->mla = (struct mla_config){ (int)c->dim, (int)c->heads, (int)c->q_lora_rank,
				      (int)c->kv_lora_rank, (int)c->qk_nope_head_dim,
				      (int)c->qk_rope_head_dim, (int)c->v_head_dim,
				      m->o.rope_theta, m->o.norm_eps };
	m->gqa = (struct gqa_config){ (int)c->dim, (int)c->heads, (int)c->kv_heads,
				      (int)c->head_dim, true, m->o.rope_theta };
	if (c->attention == MODEL_ATTN_MLA) {
		struct mla_layout l;
		mla_layout_of(&m->mla, &l);
		m->attn_total = l.total;
	} else {
		struct gqa_layout l;
		gqa_layout_of(&m->gqa, &l);
		m->attn_total = l.total;
	}
}

void SFX(net_destroy)(struct SFX(net) *m)
{
	if (!m)
		return;
	free(m->w);
	free(m->m1);
	free(m->act_base);
	free(m->A);
	free(m->M);
	free(m->ints);
	free(m->longs);
	free(m->route_buf);
	free(m);
}

/* net_alloc allocates the model's parameters, gradients, moments and activations. */
static int SFX(net_alloc)(struct SFX(net) *m, bool moments)
{
	size_t P = m->L->total;
	size_t Pm = m->o.moments_hi > m->o.moments_lo ? m->o.moments_hi - m->o.moments_lo : P;
	m->A = calloc((size_t)m->L->blocks, sizeof(*m->A));
	m->M = calloc((size_t)(m->D ? m->D : 1), sizeof(*m->M));
	/* NOTE: parameters and gradients share one allocation, moments another. */
	m->w = calloc(2 * P, sizeof(REAL));
	if (moments)
		m->m1 = calloc(2 * Pm, sizeof(float));
	if (!m->A || !m->M || !m->w || (moments && !m->m1))
		return MB_ERR_NOMEM;
	m->g = m->w + P;
	m->m2 = moments ? m->m1 + Pm : NULL;
	size_t n = SFX(net_carve_all)(m, NULL);
	m->act_base = malloc(n * sizeof(REAL));
	if (!m->act_base)
		return MB_ERR_NOMEM;
	SFX(net_carve_all)(m, m->act_base);
	/* the terms from the allocations: activations are everything carved before the
	 * packed attention weights (what the forward keeps, logits included), scratch the
	 * rest (packed weights and gradients, backward scratch, integer and routing arrays) */
	size_t kept = (size_t)(m->pk - m->act_base);
	m->mem.weights = (size_t)((char *)m->g - (char *)m->w);
	m->mem.grads = (size_t)((char *)(m->w + 2 * P) - (char *)m->g);
	m->mem.optimizer = moments ? 2 * Pm * sizeof(float) : 0;
	m->mem.activations = kept * sizeof(REAL);
	m->mem.scratch = (n - kept) * sizeof(REAL);
	int err = SFX(net_carve_ints)(m);
	m->mem.total = m->mem.weights + m->mem.grads + m->mem.optimizer + m->mem.activations +
		       m->mem.scratch;
	m->bytes = m->mem.total;
	return err;
}

/* net_setup fills a new model's sizes; the caller allocates. */
static int SFX(net_setup)(struct SFX(net) *m, const struct net_layout *L,
			  const struct net_options *o, int batch, int seq)
{
	m->L = L;
	m->o = *o;
	m->B = batch;
	m->S = seq;
	m->T = batch * seq;
	m->D = (int)L->cfg.mtp_depth;
	m->d = (int)L->cfg.dim;
	if (batch < 1 || seq < 2 || batch > (1 << 20) / seq || m->D > 16)
		return MB_ERR_ARG;
	SFX(net_attn_configs)(m);
	m->ce_weight[0] = 1.0;
	for (int k = 1; k <= m->D; k++)
		m->ce_weight[k] = o->mtp_weight / m->D;
	return MB_OK;
}

/* ---- profiling ---- */

/* net_mark closes the running phase (adding its time) and opens phase ph. */
static void SFX(net_mark)(struct SFX(net) *m, int ph)
{
	struct net_profile *p = m->prof;
	if (!p || !p->now)
		return;
	double t = p->now();
	p->seconds[p->cur] += t - p->t0;
	p->t0 = t;
	p->cur = ph;
}

/* net_gemm_count adds one GEMM's seconds and FLOPs to the running phase. Inside the
 * experts' parallel loop (net_experts_each) a GEMM's seconds count 1/threads: the
 * threads run GEMMs side by side, so the sum over the team divided by its size is the
 * wall time they took if none waits (its idle tail is not counted). */
static void SFX(net_gemm_count)(struct net_profile *p, double seconds, double flops)
{
	double share = seconds / omp_get_num_threads();
#pragma omp atomic
	p->gemm_seconds[p->cur] += share;
#pragma omp atomic
	p->gemm_flops[p->cur] += flops;
}

/* net_lin_fwd is the op table's linear_fwd, timed and counted under the profile. */
static void SFX(net_lin_fwd)(struct SFX(net) *m, bool low, int t, int in, int out,
			     const REAL *x, const REAL *w, REAL *y)
{
	struct net_profile *p = m->prof;
	double t0 = p && p->now ? p->now() : 0;
	m->ops->linear_fwd(m->o.precision, low, t, in, out, x, w, y);
	if (p && p->now)
		SFX(net_gemm_count)(p, p->now() - t0, 2.0 * t * in * out);
}

/* net_lin_bwd is the op table's linear_bwd (dgrad and wgrad), timed and counted. */
static void SFX(net_lin_bwd)(struct SFX(net) *m, bool low, int t, int in, int out,
			     const REAL *x, const REAL *w, const REAL *dy, REAL *dx, bool acc,
			     REAL *dw)
{
	struct net_profile *p = m->prof;
	double t0 = p && p->now ? p->now() : 0;
	m->ops->linear_bwd(m->o.precision, low, t, in, out, x, w, dy, dx, acc, dw);
	if (p && p->now)
		SFX(net_gemm_count)(p, p->now() - t0, 4.0 * t * in * out);
}

/* ---- pieces of the forward ---- */

static const REAL *SFX(W)(const struct SFX(net) *m, int tensor)
{
	return m->w + m->L->t[tensor].off;
}

static REAL *SFX(G)(const struct SFX(net) *m, int tensor)
{
	return m->g + m->L->t[tensor].off;
}

/* net_tok returns token (b, p) of the batch. */
static int32_t SFX(net_tok)(const struct SFX(net) *m, int b, int p)
{
	return m->tok[(size_t)b * (m->S + 1 + m->D) + p];
}

/* net_embed gathers the embedding rows of the tokens at offset shift into x [T, d]. */
static void SFX(net_embed)(struct SFX(net) *m, int shift, REAL *x)
{
	const REAL *E = SFX(W)(m, m->L->embed);
	for (int b = 0; b < m->B; b++)
		for (int p = 0; p < m->S; p++)
			memcpy(x + ((size_t)b * m->S + p) * m->d,
			       E + (size_t)SFX(net_tok)(m, b, p + shift) * m->d,
			       (size_t)m->d * sizeof(REAL));
}

/* net_attn_items lists the attention tensors of block b with their offset in the
 * packed (kernels/attention) vector; returns how many. */
static int SFX(net_attn_items)(const struct SFX(net) *m, const struct net_block *b,
			       int tensor[8], size_t off[8])
{
	int n = 0;
	if (b->mla) {
		struct mla_layout l;
		mla_layout_of(&m->mla, &l);
		int t[7] = { b->q_a, b->q_a_norm, b->q_b, b->kv_a, b->kv_a_norm, b->kv_b, b->o };
		size_t o[7] = { l.wq_a, l.q_norm, l.wq_b, l.wkv_a, l.kv_norm, l.wkv_b, l.wo };
		for (int i = 0; i < 7; i++)
			if (t[i] >= 0)
				tensor[n] = t[i], off[n++] = o[i];
		return n;
	}
	struct gqa_layout l;
	gqa_layout_of(&m->gqa, &l);
	int t[4] = { b->q, b->k, b->v, b->o };
	size_t o[4] = { l.wq, l.wk, l.wv, l.wo };
	for (int i = 0; i < 4; i++)
		tensor[n] = t[i], off[n++] = o[i];
	return n;
}

/* net_pack writes block b's attention weights, [out, in] here, into the block's
 * [in, out] vector m->pk, rounded to the run's precision (norm vectors copied). */
static void SFX(net_pack)(struct SFX(net) *m, const struct net_block *b)
{
	int tensor[8];
	size_t off[8];
	int n = SFX(net_attn_items)(m, b, tensor, off);
	for (int i = 0; i < n; i++) {
		const struct net_tensor *t = &m->L->t[tensor[i]];
		const REAL *src = SFX(W)(m, tensor[i]);
		REAL *dst = m->pk + off[i];
		int rows = (int)t->rows, cols = (int)t->cols;
		if (cols == 1) {
			memcpy(dst, src, (size_t)rows * sizeof(REAL));
			continue;
		}
		/* gpk is free during the forward: it holds the rounded copy */
		m->ops->quant_weight(m->o.precision, rows, cols, src, m->gpk);
		for (int r = 0; r < rows; r++)
			for (int c = 0; c < cols; c++)
				dst[(size_t)c * rows + r] = m->gpk[(size_t)r * cols + c];
	}
}

/* net_unpack_grads adds the packed attention gradients m->gpk to the [out, in]
 * gradients of block b. */
static void SFX(net_unpack_grads)(struct SFX(net) *m, const struct net_block *b)
{
	int tensor[8];
	size_t off[8];
	int n = SFX(net_attn_items)(m, b, tensor, off);
	for (int i = 0; i < n; i++) {
		const struct net_tensor *t = &m->L->t[tensor[i]];
		const REAL *src = m->gpk + off[i];
		REAL *dst = SFX(G)(m, tensor[i]);
		int rows = (int)t->rows, cols = (int)t->cols;
		for (int r = 0; r < rows; r++)
			for (int c = 0; c < cols; c++)
				dst[(size_t)r * cols + c] += src[(size_t)c * rows + r];
	}
}

/* net_attention: n1 = norm(in); h = in + attention(n1). */
static int SFX(net_attention)(struct SFX(net) *m, int i)
{
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	size_t n = (size_t)m->T * m->d;
	SFX(rmsnorm_fwd)(m->T, m->d, a->in, m->d, SFX(W)(m, b->attn_norm), m->o.norm_eps, a->n1);
	SFX(net_mark)(m, NET_PH_ATTENTION);
	if (a->ain != a->n1)
		m->ops->quant_act(m->o.precision, m->T, m->d, a->n1, a->ain);
	SFX(net_pack)(m, b);
	int err = b->mla ? m->ops->mla_fwd(&m->mla, m->B, m->S, m->pk, a->ain, a->h, a->aws)
			 : m->ops->gqa_fwd(&m->gqa, m->B, m->S, m->pk, a->ain, a->h, a->aws);
	SFX(net_mark)(m, NET_PH_OTHER);
	for (size_t j = 0; j < n; j++)
		a->h[j] += a->in[j];
	return err;
}

/* net_silu returns x * sigmoid(x). */
static REAL SFX(net_silu)(REAL x)
{
	return x / (1 + EXP(-x));
}

/* net_swiglu_fwd: a = x Wg^T, b = x Wu^T, act = silu(a) * b, y = act Wd^T. */
static void SFX(net_swiglu_fwd)(struct SFX(net) *m, int t, int width, const REAL *x, int wg,
				int wu, int wd, REAL *a, REAL *b, REAL *act, REAL *y)
{
	size_t n = (size_t)t * width;
	if (t == 0)
		return;
	SFX(net_lin_fwd)(m, true, t, m->d, width, x, SFX(W)(m, wg), a);
	SFX(net_lin_fwd)(m, true, t, m->d, width, x, SFX(W)(m, wu), b);
	for (size_t j = 0; j < n; j++)
		act[j] = SFX(net_silu)(a[j]) * b[j];
	SFX(net_lin_fwd)(m, true, t, width, m->d, act, SFX(W)(m, wd), y);
}

/* net_dense_ffn: out = h + SwiGLU(n2). */
static void SFX(net_dense_ffn)(struct SFX(net) *m, int i)
{
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	size_t n = (size_t)m->T * m->d;
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_swiglu_fwd)(m, m->T, (int)m->L->cfg.inter_dim, a->n2, b->gate, b->up, b->down,
			    a->a, a->b, a->act, a->out);
	SFX(net_mark)(m, NET_PH_OTHER);
	for (size_t j = 0; j < n; j++)
		a->out[j] += a->h[j];
}

#include "net_moe_impl.h"

/* net_block_fwd runs block i from a->in to a->out. */
static int SFX(net_block_fwd)(struct SFX(net) *m, int i, struct net_stats *st)
{
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	int err = SFX(net_attention)(m, i);
	if (err)
		return err;
	SFX(rmsnorm_fwd)(m->T, m->d, a->h, m->d, SFX(W)(m, b->ffn_norm), m->o.norm_eps, a->n2);
	if (b->moe)
		return SFX(net_moe_fwd)(m, i, st);
	SFX(net_dense_ffn)(m, i);
	return MB_OK;
}

/* net_head_fwd: fin = norm(x); logits = fin W_head^T; cross-entropy against the
 * tokens at offset shift + 1; dlog keeps (softmax - onehot) * weight / T for the
 * backward. Returns the mean loss. */
static double SFX(net_head_fwd)(struct SFX(net) *m, int k, const REAL *x, int norm,
				int shift)
{
	size_t V = (size_t)m->L->cfg.vocab, T = (size_t)m->T;
	REAL *fin = m->fin + (size_t)k * T * m->d, *lg = m->dlog + (size_t)k * T * V;
	SFX(rmsnorm_fwd)(m->T, m->d, x, m->d, SFX(W)(m, norm), m->o.norm_eps, fin);
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_lin_fwd)(m, false, m->T, m->d, (int)V, fin,
			   SFX(W)(m, m->L->head), lg);
	SFX(net_mark)(m, NET_PH_LOSS);
	double loss = 0, wt = m->ce_weight[k] / (double)T;
	for (int b = 0; b < m->B; b++)
		for (int p = 0; p < m->S; p++) {
			REAL *r = lg + ((size_t)b * m->S + p) * V;
			int32_t y = SFX(net_tok)(m, b, p + shift + 1);
			double mx = r[0], sum = 0, ly = r[y];
			for (size_t v = 1; v < V; v++)
				mx = r[v] > mx ? r[v] : mx;
			for (size_t v = 0; v < V; v++)
				sum += (r[v] = EXP(r[v] - (REAL)mx));
			loss += log(sum) + mx - ly;
			for (size_t v = 0; v < V; v++)
				r[v] = (REAL)(r[v] / sum * wt);
			r[y] -= (REAL)wt;
		}
	SFX(net_mark)(m, NET_PH_OTHER);
	return loss / (double)T;
}

/* net_mtp_input: depth k's block input = eh_proj [enorm(emb(t+k)) | hnorm(hprev)]. */
static void SFX(net_mtp_input)(struct SFX(net) *m, int k, const REAL *hprev)
{
	const struct net_block *b = &m->L->blk[m->L->cfg.layers + k - 1];
	struct SFX(net_mtp) *p = &m->M[k - 1];
	int d = m->d;
	SFX(net_embed)(m, k, p->emb);
	SFX(rmsnorm_fwd)(m->T, d, p->emb, d, SFX(W)(m, b->enorm), m->o.norm_eps, p->en);
	SFX(rmsnorm_fwd)(m->T, d, hprev, d, SFX(W)(m, b->hnorm), m->o.norm_eps, p->hn);
	for (int r = 0; r < m->T; r++) {
		memcpy(p->cat + (size_t)r * 2 * d, p->en + (size_t)r * d, (size_t)d * sizeof(REAL));
		memcpy(p->cat + (size_t)r * 2 * d + d, p->hn + (size_t)r * d, (size_t)d * sizeof(REAL));
	}
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_lin_fwd)(m, true, m->T, 2 * d, d, p->cat, SFX(W)(m, b->eh_proj),
			   p->proj);
	SFX(net_mark)(m, NET_PH_OTHER);
}

/* net_route_hash folds every block's selection into one number (FNV-1a). */
static uint64_t SFX(net_route_hash)(const struct SFX(net) *m)
{
	uint64_t h = 1469598103934665603ull;
	size_t TK = (size_t)m->T * (size_t)m->L->cfg.activated_experts;
	for (int i = 0; i < m->L->blocks; i++)
		if (m->L->blk[i].moe)
			for (size_t j = 0; j < TK; j++)
				h = (h ^ (uint64_t)(uint32_t)m->A[i].idx[j]) * 1099511628211ull;
	return h;
}

int SFX(net_forward)(struct SFX(net) *m, const int32_t *tokens, struct net_stats *st)
{
	const struct model_config *c = &m->L->cfg;
	int layers = (int)c->layers, err = MB_OK;
	size_t ntok = (size_t)m->B * (m->S + 1 + m->D);
	for (size_t j = 0; j < ntok; j++)
		if (tokens[j] < 0 || tokens[j] >= c->vocab)
			return MB_ERR_ARG;
	memcpy(m->tok, tokens, ntok * sizeof(int32_t));
	memset(st, 0, sizeof(*st));
	if (m->prof && m->prof->now) {
		m->prof->t0 = m->prof->now();
		m->prof->cur = NET_PH_OTHER;
	}
	SFX(net_embed)(m, 0, m->A[0].in);
	for (int i = 0; i < layers && !err; i++)
		err = SFX(net_block_fwd)(m, i, st);
	if (err)
		return err;
	st->main_loss = SFX(net_head_fwd)(m, 0, m->A[layers - 1].out, m->L->final_norm, 0);
	const REAL *hprev = m->A[layers - 1].out;
	for (int k = 1; k <= m->D && !err; k++) {
		const struct net_block *b = &m->L->blk[layers + k - 1];
		SFX(net_mtp_input)(m, k, hprev);
		err = SFX(net_block_fwd)(m, layers + k - 1, st);
		hprev = m->A[layers + k - 1].out;
		st->mtp_loss += SFX(net_head_fwd)(m, k, hprev, b->head_norm, k) / m->D;
	}
	st->loss = st->main_loss + m->o.mtp_weight * st->mtp_loss + st->balance_loss;
	st->route_hash = SFX(net_route_hash)(m);
	SFX(net_mark)(m, NET_PH_OTHER);
	return err;
}
