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
	REAL *n2s;                                /* sp: this rank's rows of n2, kept */
	REAL *a, *b, *act;                        /* dense SwiGLU [T, I] */
	REAL *s, *wts, *fbal;                     /* MoE: scores [T,E], weights [T,K], f [B,E] */
	REAL *sa, *sb, *sact;                     /* shared experts [T, Is] */
	REAL *xp, *ea, *eb, *eact, *ey;           /* routed rows in expert order [rows_max, .] */
	long rows;                                /* EP: rows the last dispatch brought */
	int32_t *idx, *order, *eoff;              /* [T*K], [T*K], [E+1] */
	long *load;                               /* [E] */
};

/* A linear layer's weight gradient deferred to the W pass (zero-bubble pipelines): its
 * input (an activation kept until then) and a copy of its output gradient. */
struct SFX(net_wdef) {
	int chunk, tensor, t, in, out;
	bool low;
	const REAL *x;      /* NULL: x was in the scratch (sp's gathered n2), copied */
	size_t dy, xo;      /* offsets in the model's wdy buffer */
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
	REAL *dgn;                      /* a norm's weight gradient [d] (net_norm_bwd) */
	int32_t *ints, *tok;            /* host: tokens, the routed experts' offsets, hids */
	int32_t *dints;                 /* the backend's: ids, and per MoE block idx, order */
	int32_t *ids, *hids;            /* [(2 + D), T]: the tokens at offset k, row k
					 * (net_set_tokens), and its host copy */
	int op_err;                     /* the first op table error of this pass */
	long *longs;
	float *route_buf;               /* float logits, bias and weights for route_cpu */
	double ce_weight[1 + 16];
	const struct net_tp_comm *tp;   /* the TP group's collectives (part.tp > 1) */
	int tp_err;                     /* the first collective's error of this pass */
	bool kv_rep;                    /* GQA k/v whole here, kv heads [kv_row0 / hd, +1) used */
	int kv_row0;
	double *ce;                     /* [3 T]: the cross-entropy's max, sum, target logit */
	REAL *tp_buf;                   /* the tp_partial gradients, packed for their sum */
	bool *sp_partial;               /* [L->n] under sp: the gradients fed by a token shard */
	size_t tp_n;
	size_t bytes;                   /* every allocation above */
	struct net_memory mem;          /* bytes by term (net_alloc, from the allocations) */
	bool fixed_route;               /* keep the selection in A[].idx (net_fix_selection) */
	const struct net_comm *comm;    /* expert parallelism (part.ep > 1) */
	long rows_max;                  /* routed rows a block may hold: T*K, or EP's bound */
	bool borrowed;                  /* w, g, m1 are another model's (net_share_params) */
	bool own_grads;                 /* borrowed w and m1, but g is this model's own
					 * (net_share_weights; its allocation starts at g - P) */
	/* deferred weight gradients (net_stage_backward_input / net_stage_wgrad) */
	bool wdefer, werr;
	int wchunk;                     /* the chunk whose backward is deferring */
	struct SFX(net_wdef) *wq;
	int nwq, capwq;
	REAL *wdy;
	size_t wdy_used, wdy_cap;
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
	size_t tp = (size_t)m->L->part.tp;   /* a TP rank keeps its slice of the widths */
	size_t K = (size_t)cf->activated_experts, im = (size_t)cf->moe_inter_dim / tp;
	size_t is = im * (size_t)cf->shared_experts;
	size_t ws = b->mla ? mla_workspace_count(&m->mla, m->B, m->S)
			   : gqa_workspace_count(&m->gqa, m->B, m->S);
	/* the residual stream: this rank's token rows alone under sequence parallelism */
	size_t Tr = (size_t)(m->o.sp && tp > 1 ? m->T / (int)tp : m->T);
	/* NOTE: a pipeline part keeps the activations of the blocks it holds alone; the
	 * first block of each held range takes its input (the previous stage's output) into
	 * a buffer of its own */
	if (!b->held)
		return;
	a->in = (i == 0 || b->mtp || !m->L->blk[i - 1].held) ? SFX(take)(c, Tr * d)
							     : m->A[i - 1].out;
	/* under sp n1 keeps this rank's rows, gathered again for the backward (Megatron-LM
	 * keeps the gathered input of a column-parallel layer so) */
	a->n1 = SFX(take)(c, Tr * d);
	a->ain = m->o.precision == NET_FP32 ? a->n1 : SFX(take)(c, T * d);
	a->aws = SFX(take)(c, ws);
	a->h = SFX(take)(c, Tr * d);
	/* under sp n2 is gathered into the scratch (net_sp_n2) from the rows kept */
	if (Tr < T)
		a->n2s = SFX(take)(c, Tr * d);
	else
		a->n2 = SFX(take)(c, T * d);
	a->out = SFX(take)(c, Tr * d);
	if (!b->moe) {
		size_t ni = (size_t)cf->inter_dim / tp;
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
	size_t R = (size_t)m->rows_max;
	(void)K;
	a->xp = SFX(take)(c, R * d);
	a->ea = SFX(take)(c, R * im);
	a->eb = SFX(take)(c, R * im);
	a->eact = SFX(take)(c, R * im);
	a->ey = SFX(take)(c, R * d);
}

/* net_scratch_count returns the backward scratch a step needs (elements). */
static size_t SFX(net_scratch_count)(const struct SFX(net) *m)
{
	const struct model_config *cf = &m->L->cfg;
	size_t T = (size_t)m->T, d = (size_t)m->d, E = (size_t)cf->routed_experts;
	size_t tp = (size_t)m->L->part.tp;
	size_t K = (size_t)cf->activated_experts, im = (size_t)cf->moe_inter_dim / tp;
	size_t is = im * (size_t)cf->shared_experts, ni = (size_t)cf->inter_dim / tp;
	size_t dense = 3 * T * ni;
	size_t R = (size_t)m->rows_max;
	size_t moe = 2 * R * d + 2 * R * im + T * K * im + 3 * T * is + T * K + T * E + T * d;
	return 6 * T * d + (dense > moe ? dense : moe);
}

/* net_carve_all places every activation (base NULL: counts them). */
static size_t SFX(net_carve_all)(struct SFX(net) *m, REAL *base)
{
	struct SFX(carve) c = { base, 0 };
	size_t T = (size_t)m->T, d = (size_t)m->d;
	size_t V = (size_t)(m->L->cfg.vocab / m->L->part.tp);   /* this TP rank's logits */
	for (int i = 0; i < m->L->blocks; i++)
		SFX(net_block_acts)(m, i, &c);
	for (int k = 0; k < m->D && m->L->head >= 0; k++) {
		struct SFX(net_mtp) *p = &m->M[k];
		p->emb = SFX(take)(&c, T * d);
		p->en = SFX(take)(&c, T * d);
		p->hn = SFX(take)(&c, T * d);
		p->cat = SFX(take)(&c, 2 * T * d);
		p->proj = m->A[m->L->cfg.layers + k].in;
	}
	/* the head passes' norms and logits on the part holding the head alone */
	if (m->L->head >= 0) {
		m->fin = SFX(take)(&c, (size_t)(1 + m->D) * T * d);
		m->dlog = SFX(take)(&c, (size_t)(1 + m->D) * T * V);
	}
	m->pk = SFX(take)(&c, m->attn_total);
	m->gpk = SFX(take)(&c, m->attn_total);
	m->scratch = SFX(take)(&c, SFX(net_scratch_count)(m));
	/* sp: every block's gathered n2 is the scratch's third [T, d] (net_sp_n2) */
	for (int i = 0; i < m->L->blocks; i++)
		if (m->A[i].n2s)
			m->A[i].n2 = m->scratch + 2 * T * d;
	m->dgn = SFX(take)(&c, d);
	return c.used;
}

/* net_carve_ints places the integer arrays of the MoE blocks and the tokens. */
static int SFX(net_carve_ints)(struct SFX(net) *m)
{
	const struct model_config *cf = &m->L->cfg;
	size_t TK = (size_t)m->T * (size_t)cf->activated_experts, E = (size_t)cf->routed_experts;
	size_t ntok = (size_t)m->B * (size_t)(m->S + 1 + m->D), nl = 0;
	size_t nids = (size_t)(2 + m->D) * m->T, ni = ntok + nids, nd = nids;
	size_t nr = (size_t)m->T * (E + (size_t)cf->activated_experts) + E + 1;
	for (int i = 0; i < m->L->blocks; i++)
		if (m->L->blk[i].moe) {
			ni += E + 1;
			nd += 2 * TK;
			nl += E;
		}
	m->ints = malloc(ni * sizeof(int32_t));
	m->dints = m->ops->mem_alloc(nd * sizeof(int32_t));
	m->longs = calloc(nl ? nl : 1, sizeof(long));
	m->route_buf = m->ops->mem_alloc(nr * sizeof(float));
	if (!m->ints || !m->dints || !m->longs || !m->route_buf)
		return MB_ERR_NOMEM;
	m->mem.scratch += (ni + nd) * sizeof(int32_t) + (nl ? nl : 1) * sizeof(long) +
			  nr * sizeof(float);
	int32_t *p = m->ints, *dp = m->dints;
	long *q = m->longs;
	m->tok = p;
	m->hids = p + ntok;
	p += ntok + nids;
	m->ids = dp;
	dp += nids;
	for (int i = 0; i < m->L->blocks; i++)
		if (m->L->blk[i].moe) {
			struct SFX(net_act) *a = &m->A[i];
			a->idx = dp;
			a->order = dp + TK;
			dp += 2 * TK;
			a->eoff = p;   /* host: the experts' GEMMs take their rows from it */
			p += E + 1;
			a->load = q;
			q += E;
		}
	return MB_OK;
}

/* net_attn_configs fills the attention block configs of the layout. */
static void SFX(net_attn_configs)(struct SFX(net) *m)
{
	const struct model_config *c = &m->L->cfg;
	int tp = m->L->part.tp, G = (int)c->kv_heads;
	m->kv_rep = c->attention != MODEL_ATTN_MLA && tp > 1 && G % tp != 0;
	m->kv_row0 = m->kv_rep ? m->L->part.tp_rank * G / tp * (int)c->head_dim : 0;
	/* a TP rank's attention block is the block of its heads */
	m->mla = (struct mla_config){ (int)c->dim, (int)c->heads / tp, (int)c->q_lora_rank,
				      (int)c->kv_lora_rank, (int)c->qk_nope_head_dim,
				      (int)c->qk_rope_head_dim, (int)c->v_head_dim,
				      m->o.rope_theta, m->o.norm_eps, NULL };
	m->gqa = (struct gqa_config){ (int)c->dim, (int)c->heads / tp, m->kv_rep ? 1 : G / tp,
				      (int)c->head_dim, true, m->o.rope_theta, NULL };
	m->mla.round = m->gqa.round = ATTN_ROUND(m->o.precision);
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
	if (!m->borrowed) {
		m->ops->mem_free(m->w);
		m->ops->mem_free(m->m1);
	} else if (m->own_grads) {
		m->ops->mem_free(m->g - m->L->total);
	}
	free(m->wq);
	free(m->wdy);
	m->ops->mem_free(m->act_base);
	free(m->A);
	free(m->M);
	free(m->ints);
	m->ops->mem_free(m->dints);
	free(m->longs);
	m->ops->mem_free(m->route_buf);
	m->ops->mem_free(m->ce);
	free(m->tp_buf);
	free(m->sp_partial);
	free(m);
}

/* net_sp_mark lists the tensors whose gradient a rank computes from its token shard
 * alone under sequence parallelism: the residual stream's norms and the MTP projection
 * (replicated, run on the shard). */
static int SFX(net_sp_mark)(struct SFX(net) *m)
{
	const struct net_layout *L = m->L;
	m->sp_partial = calloc((size_t)L->n, sizeof(bool));
	if (!m->sp_partial)
		return MB_ERR_NOMEM;
	for (int i = 0; i < L->blocks; i++) {
		const struct net_block *b = &L->blk[i];
		int t[6] = { b->attn_norm, b->ffn_norm, b->enorm, b->hnorm, b->eh_proj,
			     b->head_norm };
		for (int j = 0; j < 6 && b->held; j++)
			if (t[j] >= 0)
				m->sp_partial[t[j]] = true;
	}
	if (L->final_norm >= 0)
		m->sp_partial[L->final_norm] = true;
	return MB_OK;
}

/* net_tp_summed: tensor i's gradient is summed over the TP group at the backward's end. */
static bool SFX(net_tp_summed)(const struct SFX(net) *m, int i)
{
	return m->L->t[i].tp_partial || (m->sp_partial && m->sp_partial[i]);
}

/* net_tp_alloc allocates the cross-entropy's per-token figures and the buffer the
 * tp_partial gradients are summed in (scratch). */
static int SFX(net_tp_alloc)(struct SFX(net) *m)
{
	if (m->o.sp && m->L->part.tp > 1 && SFX(net_sp_mark)(m))
		return MB_ERR_NOMEM;
	for (int i = 0; i < m->L->n; i++)
		if (SFX(net_tp_summed)(m, i))
			m->tp_n += (size_t)(m->L->t[i].rows * m->L->t[i].cols);
	m->ce = m->ops->mem_alloc(3 * (size_t)m->T * sizeof(double));
	m->tp_buf = malloc((m->tp_n ? m->tp_n : 1) * sizeof(REAL));
	m->mem.scratch += 3 * (size_t)m->T * sizeof(double) + (m->tp_n ? m->tp_n : 1) * sizeof(REAL);
	return m->ce && m->tp_buf ? MB_OK : MB_ERR_NOMEM;
}

/* net_alloc allocates the model's parameters, gradients, moments and activations. */
static int SFX(net_alloc)(struct SFX(net) *m, bool moments)
{
	size_t P = m->L->total;
	size_t Pm = m->o.moments ? m->o.moments : P;
	m->A = calloc((size_t)m->L->blocks, sizeof(*m->A));
	m->M = calloc((size_t)(m->D ? m->D : 1), sizeof(*m->M));
	/* NOTE: parameters and gradients share one allocation, moments another. */
	m->w = m->ops->mem_alloc(2 * P * sizeof(REAL));
	if (moments)
		m->m1 = m->ops->mem_alloc(2 * Pm * sizeof(float));
	if (!m->A || !m->M || !m->w || (moments && !m->m1))
		return MB_ERR_NOMEM;
	m->g = m->w + P;
	m->m2 = moments ? m->m1 + Pm : NULL;
	size_t n = SFX(net_carve_all)(m, NULL);
	m->act_base = m->ops->mem_alloc(n * sizeof(REAL));
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
	if (!err)
		err = SFX(net_tp_alloc)(m);
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
	if (o->sp && L->part.tp > 1 && m->T % L->part.tp)
		return MB_ERR_ARG;
	SFX(net_attn_configs)(m);
	/* NOTE: under EP a rank's experts may receive every EP rank's tokens: at most
	 * min(K, E / ep) rows per token of each of the ep ranks (equal batches) */
	int K = (int)L->cfg.activated_experts, ep = L->part.ep > 1 ? L->part.ep : 1;
	int El = L->cfg.routed_experts ? (int)L->cfg.routed_experts / ep : 0;
	m->rows_max = (long)ep * m->T * (K < El ? K : El);
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
	double share = seconds / (p->team > 1 ? p->team : 1);
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

/* net_op keeps the first error an op table entry returns (the CPU's return none). */
static void SFX(net_op)(struct SFX(net) *m, int err)
{
	if (err && !m->op_err)
		m->op_err = err;
}

#include "net_tp_impl.h"

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

/* net_set_tokens keeps the batch's tokens and lays out, row k of ids, the tokens at
 * offset k of every position: the embedding's (k <= D) and the targets' (k >= 1) ids. */
static void SFX(net_set_tokens)(struct SFX(net) *m, const int32_t *tokens)
{
	size_t nids = (size_t)(2 + m->D) * m->T;
	memcpy(m->tok, tokens, (size_t)m->B * (m->S + 1 + m->D) * sizeof(int32_t));
	for (int k = 0; k < 2 + m->D; k++)
		for (int b = 0; b < m->B; b++)
			for (int p = 0; p < m->S; p++)
				m->hids[(size_t)k * m->T + (size_t)b * m->S + p] = SFX(net_tok)(m, b, p + k);
	m->op_err = MB_OK;
	SFX(net_op)(m, m->ops->upload(m->ids, m->hids, nids * sizeof(int32_t)));
}

/* net_ids returns the row of ids at offset shift. */
static const int32_t *SFX(net_ids)(const struct SFX(net) *m, int shift)
{
	return m->ids + (size_t)shift * m->T;
}

/* net_embed gathers the embedding rows of the tokens at offset shift into x [T, d].
 * Vocabulary-parallel: a TP rank holds rows [row0, row0 + rows), writes zeros for the
 * other tokens, and the sum over the group completes x. */
static void SFX(net_embed)(struct SFX(net) *m, int shift, REAL *x, REAL *res)
{
	const struct net_tensor *t = &m->L->t[m->L->embed];
	SFX(net_op)(m, m->ops->embed_fwd(SFX(W)(m, m->L->embed), (long)t->row0, (long)t->rows,
					  SFX(net_ids)(m, shift), m->T, m->d, x));
	SFX(net_tp_out_to)(m, x, res);
}

#include "net_pack_impl.h"

/* net_attention: n1 = norm(in); h = in + attention(n1). */
static int SFX(net_attention)(struct SFX(net) *m, int i)
{
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	bool sp = SFX(net_sp)(m);
	size_t Td = (size_t)m->T * m->d, o = SFX(net_sp_r0)(m) * m->d;
	/* under sp the gathered norm and the partial sums fill the scratch, free in the
	 * forward; n1 keeps this rank's rows */
	REAL *g = sp ? m->scratch + Td : a->n1, *y = sp ? m->scratch : a->h;
	SFX(net_norm_fwd)(m, a->in, b->attn_norm, g);
	if (sp)
		SFX(net_op)(m, m->ops->copy(g + o, (size_t)SFX(net_sp_rows)(m) * m->d, a->n1));
	SFX(net_sp_gather)(m, g);
	SFX(net_mark)(m, NET_PH_ATTENTION);
	if (a->ain != a->n1)
		m->ops->quant_act(m->o.precision, m->T, m->d, g, a->ain);
	const REAL *x = a->ain == a->n1 ? g : a->ain;
	SFX(net_pack)(m, b);
	int err = b->mla ? m->ops->mla_fwd(&m->mla, m->B, m->S, m->pk, x, y, a->aws)
			 : m->ops->gqa_fwd(&m->gqa, m->B, m->S, m->pk, x, y, a->aws);
	SFX(net_mark)(m, NET_PH_OTHER);
	/* o_proj is row-parallel: each TP rank's heads give a partial sum */
	SFX(net_tp_out_to)(m, y, a->h);
	SFX(net_add_res)(m, a->h, a->in);
	return err;
}

/* net_swiglu_fwd: a = x Wg^T, b = x Wu^T, act = silu(a) * b, y = act Wd^T. */
static void SFX(net_swiglu_fwd)(struct SFX(net) *m, int t, int width, const REAL *x, int wg,
				int wu, int wd, REAL *a, REAL *b, REAL *act, REAL *y)
{
	if (t == 0)
		return;
	SFX(net_lin_fwd)(m, true, t, m->d, width, x, SFX(W)(m, wg), a);
	SFX(net_lin_fwd)(m, true, t, m->d, width, x, SFX(W)(m, wu), b);
	SFX(net_op)(m, m->ops->swiglu_fwd(a, b, t, width, act));
	SFX(net_lin_fwd)(m, true, t, width, m->d, act, SFX(W)(m, wd), y);
}

/* net_dense_ffn: out = h + SwiGLU(n2). */
static void SFX(net_dense_ffn)(struct SFX(net) *m, int i)
{
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	REAL *y = SFX(net_sp)(m) ? m->scratch : a->out;
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_swiglu_fwd)(m, m->T, (int)m->L->t[b->gate].rows, a->n2, b->gate, b->up, b->down,
			    a->a, a->b, a->act, y);
	SFX(net_mark)(m, NET_PH_OTHER);
	SFX(net_tp_out_to)(m, y, a->out);
	SFX(net_add_res)(m, a->out, a->h);
}

/* net_defer_w queues a linear layer's weight gradient for the W pass, copying dy. */
static void SFX(net_defer_w)(struct SFX(net) *m, bool low, int t, int in, int out,
			     const REAL *x, int tensor, const REAL *dy)
{
	size_t n = (size_t)t * out;
	/* sp's gathered n2 lives in the scratch until the next block: copied */
	bool xs = m->o.sp && x >= m->scratch && x < m->scratch + SFX(net_scratch_count)(m);
	size_t nx = xs ? (size_t)t * in : 0;
	if (m->nwq == m->capwq) {
		int cap = m->capwq ? 2 * m->capwq : 64;
		struct SFX(net_wdef) *q = realloc(m->wq, (size_t)cap * sizeof(*q));
		if (!q) {
			m->werr = true;
			return;
		}
		m->wq = q;
		m->capwq = cap;
	}
	if (m->wdy_used + n + nx > m->wdy_cap) {
		size_t cap = 2 * (m->wdy_used + n + nx);
		REAL *b = realloc(m->wdy, cap * sizeof(REAL));
		if (!b) {
			m->werr = true;
			return;
		}
		m->wdy = b;
		m->wdy_cap = cap;
	}
	memcpy(m->wdy + m->wdy_used, dy, n * sizeof(REAL));
	if (xs)
		memcpy(m->wdy + m->wdy_used + n, x, nx * sizeof(REAL));
	m->wq[m->nwq++] = (struct SFX(net_wdef)){ m->wchunk, tensor, t, in, out, low,
						  xs ? NULL : x, m->wdy_used, m->wdy_used + n };
	m->wdy_used += n + nx;
}

/* net_lin_bwd is the op table's linear_bwd for weight tensor wt, timed and counted
 * under the profile; under wdefer the weight gradient waits for the W pass
 * (net_stage_wgrad). */
static void SFX(net_lin_bwd)(struct SFX(net) *m, bool low, int t, int in, int out,
			     const REAL *x, int wt, const REAL *dy, REAL *dx, bool acc)
{
	enum net_precision p = m->o.precision;
	struct net_profile *pr = m->prof;
	double t0 = pr && pr->now ? pr->now() : 0;
	if (!m->wdefer) {
		m->ops->linear_bwd(p, low, t, in, out, x, SFX(W)(m, wt), dy, dx, acc, SFX(G)(m, wt));
		if (pr && pr->now)
			SFX(net_gemm_count)(pr, pr->now() - t0, 4.0 * t * in * out);
		return;
	}
	m->ops->linear_bwd_dx(p, low, t, in, out, SFX(W)(m, wt), dy, dx, acc);
	/* the deferred weight gradient's GEMM (the W pass) is not counted */
	if (pr && pr->now)
		SFX(net_gemm_count)(pr, pr->now() - t0, 2.0 * t * in * out);
	SFX(net_defer_w)(m, low, t, in, out, x, wt, dy);
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
	SFX(net_norm_fwd)(m, a->h, b->ffn_norm, a->n2);
	if (a->n2s)
		SFX(net_op)(m, m->ops->copy(a->n2 + SFX(net_sp_r0)(m) * m->d,
					    (size_t)SFX(net_sp_rows)(m) * m->d, a->n2s));
	SFX(net_sp_gather)(m, a->n2);
	if (b->moe)
		return SFX(net_moe_fwd)(m, i, st);
	SFX(net_dense_ffn)(m, i);
	return MB_OK;
}

/* net_ce_rows runs the cross-entropy over this rank's logits lg [T, V] (vocabulary
 * [v0, v0 + V) of the whole): per token the maximum, the sum of exponentials and the
 * target's logit, each reduced over the TP group; lg becomes (softmax - onehot) * wt.
 * Returns the summed loss. */
static double SFX(net_ce_rows)(struct SFX(net) *m, REAL *lg, size_t V, int64_t v0, int shift,
			       double wt)
{
	long T = m->T;
	double *mx = m->ce, *sum = mx + T, *ly = sum + T, loss = 0;
	const int32_t *tgt = SFX(net_ids)(m, shift + 1);
	SFX(net_op)(m, m->ops->ce_max(lg, T, (long)V, mx));
	SFX(net_tp_call)(m, mx, (size_t)T, 2);
	SFX(net_op)(m, m->ops->ce_sum(lg, T, (long)V, (long)v0, tgt, mx, sum, ly));
	SFX(net_tp_call)(m, sum, 2 * (size_t)T, 1);
	SFX(net_op)(m, m->ops->ce_grad(lg, T, (long)V, (long)v0, tgt, mx, sum, ly, wt, &loss));
	return loss;
}

/* net_head_fwd: fin = norm(x); logits = fin W_head^T; cross-entropy against the
 * tokens at offset shift + 1; dlog keeps (softmax - onehot) * weight / T for the
 * backward. Vocabulary-parallel: a TP rank's head holds rows [row0, row0 + rows) of the
 * vocabulary and its logits alone (net_ce_rows). Returns the mean loss. */
static double SFX(net_head_fwd)(struct SFX(net) *m, int k, const REAL *x, int norm,
				int shift)
{
	const struct net_tensor *h = &m->L->t[m->L->head];
	size_t V = (size_t)h->rows, T = (size_t)m->T;
	REAL *fin = m->fin + (size_t)k * T * m->d;
	REAL *lg = m->dlog + (size_t)k * T * V;
	SFX(net_norm_fwd)(m, x, norm, fin);
	SFX(net_sp_gather)(m, fin);
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_lin_fwd)(m, false, m->T, m->d, (int)V, fin,
			   SFX(W)(m, m->L->head), lg);
	SFX(net_mark)(m, NET_PH_LOSS);
	double loss = SFX(net_ce_rows)(m, lg, V, h->row0, shift, m->ce_weight[k] / (double)T);
	SFX(net_mark)(m, NET_PH_OTHER);
	return loss / (double)T;
}

/* net_mtp_input: depth k's block input = eh_proj [enorm(emb(t+k)) | hnorm(hprev)]. */
static void SFX(net_mtp_input)(struct SFX(net) *m, int k, const REAL *hprev)
{
	const struct net_block *b = &m->L->blk[m->L->cfg.layers + k - 1];
	struct SFX(net_mtp) *p = &m->M[k - 1];
	int d = m->d, t = SFX(net_sp_rows)(m);
	size_t r0 = SFX(net_sp_r0)(m);
	SFX(net_embed)(m, k, p->emb, p->emb + r0 * d);
	SFX(net_norm_fwd)(m, p->emb + r0 * d, b->enorm, p->en);
	SFX(net_norm_fwd)(m, hprev, b->hnorm, p->hn);
	/* the projection is replicated: under sp it runs on this rank's tokens */
	SFX(net_op)(m, m->ops->concat(t, d, p->en + r0 * d, p->hn + r0 * d, p->cat + 2 * r0 * d));
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_lin_fwd)(m, true, t, 2 * d, d, p->cat + 2 * r0 * d, SFX(W)(m, b->eh_proj),
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
			h = m->ops->hash_ints(m->A[i].idx, TK, h);
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
	if (m->L->part.tp > 1 && !m->tp)
		return MB_ERR_ARG;
	if (SFX(net_sp)(m) && (!m->tp->TP_RS || !m->tp->TP_AG))
		return MB_ERR_ARG;
	SFX(net_set_tokens)(m, tokens);
	memset(st, 0, sizeof(*st));
	m->tp_err = MB_OK;
	if (m->prof && m->prof->now) {
		m->prof->t0 = m->prof->now();
		m->prof->cur = NET_PH_OTHER;
	}
	SFX(net_embed)(m, 0, SFX(net_sp)(m) ? m->scratch : m->A[0].in, m->A[0].in);
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
	return err ? err : m->tp_err ? m->tp_err : m->op_err;
}
