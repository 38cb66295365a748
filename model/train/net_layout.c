/*
 * net_layout.c - the tensors of the trainable model (net.h): their Hugging Face names,
 * [out, in] shapes and offsets in the one parameter allocation; initialisation; the
 * options' defaults and names.
 */
#include "net.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "status.h"

void net_options_default(struct net_options *o)
{
	o->precision = NET_FP32;
	o->init_std = 0.006;
	o->mtp_weight = 0.3;
	o->balance_alpha = 1e-4;
	o->norm_eps = 1e-6;
	o->rope_theta = 10000.0;
	o->experts_serial = false;
	o->moments = 0;
	o->sp = false;
}

const char *net_precision_name(enum net_precision p)
{
	return p == NET_FP32 ? "fp32" : p == NET_BF16 ? "bf16" : p == NET_FP8 ? "fp8" : "?";
}

int net_precision_parse(const char *s, enum net_precision *p)
{
	for (int i = NET_FP32; i <= NET_FP8; i++)
		if (s && strcmp(s, net_precision_name((enum net_precision)i)) == 0) {
			*p = (enum net_precision)i;
			return MB_OK;
		}
	return MB_ERR_ARG;
}

/* add names the next tensor of the whole model and, when the part holds it (L->skip
 * unset), appends it and returns its index; -1 when absent, or when out of memory (the
 * caller checks L->t once at the end through L->n < 0). Offsets are placed later
 * (place_tensors). */
static int add(struct net_layout *L, int64_t rows, int64_t cols, bool decay, bool trainable,
	       const char *fmt, ...)
{
	int gid = L->gids++;
	if (L->n < 0 || L->skip)
		return -1;
	struct net_tensor *t = realloc(L->t, (size_t)(L->n + 1) * sizeof(*t));
	if (!t) {
		L->n = -1;
		return -1;
	}
	L->t = t;
	t += L->n;
	memset(t, 0, sizeof(*t));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	t->rows = t->full_rows = rows;
	t->cols = t->full_cols = cols;
	t->decay = decay;
	t->trainable = trainable;
	t->gid = gid;
	return L->n++;
}

#define MAT(r, c, ...) add(L, (r), (c), true, true, __VA_ARGS__)
#define VEC(r, ...) add(L, (r), 1, false, true, __VA_ARGS__)

/* add_attention names the attention tensors of block i. */
static void add_attention(struct net_layout *L, struct net_block *b, int i)
{
	const struct model_config *c = &L->cfg;
	int64_t d = c->dim, H = c->heads;
	b->attn_norm = VEC(d, "model.layers.%d.input_layernorm.weight", i);
	if (c->attention == MODEL_ATTN_MLA) {
		int64_t dqk = c->qk_nope_head_dim + c->qk_rope_head_dim;
		if (c->q_lora_rank > 0) {
			b->q_a = MAT(c->q_lora_rank, d, "model.layers.%d.self_attn.q_a_proj.weight", i);
			b->q_a_norm = VEC(c->q_lora_rank,
					  "model.layers.%d.self_attn.q_a_layernorm.weight", i);
			b->q_b = MAT(H * dqk, c->q_lora_rank,
				     "model.layers.%d.self_attn.q_b_proj.weight", i);
		} else {
			b->q_b = MAT(H * dqk, d, "model.layers.%d.self_attn.q_proj.weight", i);
		}
		b->kv_a = MAT(c->kv_lora_rank + c->qk_rope_head_dim, d,
			      "model.layers.%d.self_attn.kv_a_proj_with_mqa.weight", i);
		b->kv_a_norm = VEC(c->kv_lora_rank, "model.layers.%d.self_attn.kv_a_layernorm.weight", i);
		b->kv_b = MAT(H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank,
			      "model.layers.%d.self_attn.kv_b_proj.weight", i);
		b->o = MAT(d, H * c->v_head_dim, "model.layers.%d.self_attn.o_proj.weight", i);
	} else {
		int64_t hd = c->head_dim, G = c->kv_heads;
		b->q = MAT(H * hd, d, "model.layers.%d.self_attn.q_proj.weight", i);
		b->k = MAT(G * hd, d, "model.layers.%d.self_attn.k_proj.weight", i);
		b->v = MAT(G * hd, d, "model.layers.%d.self_attn.v_proj.weight", i);
		b->o = MAT(d, H * hd, "model.layers.%d.self_attn.o_proj.weight", i);
	}
}

/* add_ffn names the FFN tensors of block i (dense SwiGLU or MoE). */
static void add_ffn(struct net_layout *L, struct net_block *b, int i)
{
	const struct model_config *c = &L->cfg;
	int64_t d = c->dim;
	b->ffn_norm = VEC(d, "model.layers.%d.post_attention_layernorm.weight", i);
	if (!b->moe) {
		b->gate = MAT(c->inter_dim, d, "model.layers.%d.mlp.gate_proj.weight", i);
		b->up = MAT(c->inter_dim, d, "model.layers.%d.mlp.up_proj.weight", i);
		b->down = MAT(d, c->inter_dim, "model.layers.%d.mlp.down_proj.weight", i);
		return;
	}
	int64_t E = c->routed_experts, im = c->moe_inter_dim;
	/* NOTE: the gate is a matrix but kept out of weight decay like the norms: it is one
	 * of the components DeepSeek-V3 3.3 keeps in high precision, and a small one. */
	b->router = add(L, E, d, false, true, "model.layers.%d.mlp.gate.weight", i);
	b->router_bias = add(L, E, 1, false, false,
			     "model.layers.%d.mlp.gate.e_score_correction_bias", i);
	if (c->shared_experts > 0) {
		int64_t is = im * c->shared_experts;
		b->sh_gate = MAT(is, d, "model.layers.%d.mlp.shared_experts.gate_proj.weight", i);
		b->sh_up = MAT(is, d, "model.layers.%d.mlp.shared_experts.up_proj.weight", i);
		b->sh_down = MAT(d, is, "model.layers.%d.mlp.shared_experts.down_proj.weight", i);
	}
	bool skip = L->skip;
	for (int64_t e = 0; e < E; e++) {
		L->skip = skip || e < L->expert_lo || e >= L->expert_hi;
		int at = L->n;
		int g = MAT(im, d, "model.layers.%d.mlp.experts.%lld.gate_proj.weight", i, (long long)e);
		MAT(im, d, "model.layers.%d.mlp.experts.%lld.up_proj.weight", i, (long long)e);
		MAT(d, im, "model.layers.%d.mlp.experts.%lld.down_proj.weight", i, (long long)e);
		for (int j = at; j >= 0 && j < L->n; j++)
			L->t[j].expert = true;
		if (e == L->expert_lo)
			b->experts = g;
	}
	L->skip = skip;
}

/* supported says why the trainable model cannot build cfg, or NULL. */
static const char *unsupported(const struct model_config *c)
{
	if (c->ffn != MODEL_FFN_SWIGLU)
		return "ffn: the trainable model has SwiGLU FFNs only";
	if (c->norm != MODEL_NORM_RMSNORM)
		return "norm: the trainable model has RMSNorm only";
	if (c->max_positions > 0 || c->qkv_bias || c->linear_bias)
		return "the trainable model has no biases and no learned positions";
	if (c->routed_experts > 0 && c->score_func != MODEL_SCORE_SIGMOID)
		return "score_func: the trainable model routes with sigmoid scores (DeepSeek-V3)";
	if (c->vocab > (1 << 22) || c->dim > 65536)
		return "sizes too large for the trainable model";
	return NULL;
}

/* block_init marks a block's tensors absent (every index -1; the flags are set next). */
static void block_init(struct net_block *b)
{
	memset(b, 0xff, sizeof(*b));
	b->mla = b->moe = b->mtp = false;
}

void net_part_whole(struct net_part *p)
{
	memset(p, 0, sizeof(*p));
	p->tp = p->ep = 1;
	p->embed = p->head = true;
}

const char *net_tp_check(const struct model_config *c, int tp)
{
	if (tp == 1)
		return NULL;
	if (c->heads % tp)
		return "the TP size does not divide the attention heads";
	if (c->attention != MODEL_ATTN_MLA && c->kv_heads % tp && tp % c->kv_heads)
		return "the TP size neither divides the kv heads nor is a multiple of them";
	if (c->inter_dim % tp || c->moe_inter_dim % tp)
		return "the TP size does not divide the FFN widths";
	if (c->vocab % tp)
		return "the TP size does not divide the vocabulary";
	return NULL;
}

/* split_rows (split_cols) makes tensor i this TP rank's share of its rows (columns). */
static void split_rows(struct net_layout *L, int i)
{
	if (i < 0)
		return;
	struct net_tensor *t = &L->t[i];
	t->rows = t->full_rows / L->part.tp;
	t->row0 = t->rows * L->part.tp_rank;
}

static void split_cols(struct net_layout *L, int i)
{
	if (i < 0)
		return;
	struct net_tensor *t = &L->t[i];
	t->cols = t->full_cols / L->part.tp;
	t->col0 = t->cols * L->part.tp_rank;
}

static void tp_partial(struct net_layout *L, int i)
{
	if (i >= 0)
		L->t[i].tp_partial = true;
}

/* tp_slice_block slices block b's tensors (Megatron): column-parallel by head q_b / q,
 * kv_b, k, v, gate, up (the shared and routed experts' too: ETP = TP), row-parallel o and
 * down; the rest replicated. */
static void tp_slice_block(struct net_layout *L, const struct net_block *b)
{
	const struct model_config *c = &L->cfg;
	if (L->part.tp == 1 || !b->held)
		return;
	int q[] = { b->q_b, b->kv_b, b->q, b->gate, b->up, b->sh_gate, b->sh_up };
	for (size_t j = 0; j < sizeof(q) / sizeof(q[0]); j++)
		split_rows(L, q[j]);
	split_cols(L, b->o);
	split_cols(L, b->down);
	split_cols(L, b->sh_down);
	if (b->mla) {
		int r[] = { b->q_a, b->q_a_norm, b->kv_a, b->kv_a_norm };
		for (size_t j = 0; j < sizeof(r) / sizeof(r[0]); j++)
			tp_partial(L, r[j]);
	} else if (c->kv_heads % L->part.tp == 0) {
		split_rows(L, b->k);
		split_rows(L, b->v);
	} else {
		tp_partial(L, b->k);
		tp_partial(L, b->v);
	}
	for (int e = L->expert_lo; b->moe && e < L->expert_hi; e++) {
		int x = b->experts + 3 * (e - L->expert_lo);
		split_rows(L, x);
		split_rows(L, x + 1);
		split_cols(L, x + 2);
	}
}

/* part_check says why part p cannot be built for cfg, or NULL; sets the expert range. */
static const char *part_check(const struct model_config *c, const struct net_part *p,
			      struct net_layout *L)
{
	const char *msg;
	if (p->tp < 1 || p->tp_rank < 0 || p->tp_rank >= p->tp || p->ep < 1 || p->ep_rank < 0 ||
	    p->ep_rank >= p->ep || p->n_ranges < 0 || p->n_ranges > NET_PART_RANGES)
		return "a part with ranks outside its groups";
	if ((msg = net_tp_check(c, p->tp)))
		return msg;
	int E = (int)c->routed_experts;
	if (E % p->ep)
		return "the expert-parallel size does not divide the routed experts";
	L->expert_lo = E / p->ep * p->ep_rank;
	L->expert_hi = L->expert_lo + E / p->ep;
	for (int r = 0; r < p->n_ranges; r++)
		if (p->lo[r] < 0 || p->hi[r] > c->layers || p->lo[r] >= p->hi[r])
			return "a pipeline stage's layers lie outside the model's";
	if (c->tied_embeddings && p->head && !p->embed)
		return "a part with the tied output head must hold the embedding";
	return NULL;
}

/* held says whether the part holds main layer i. */
static bool held(const struct net_part *p, int i)
{
	if (p->n_ranges == 0)
		return true;
	for (int r = 0; r < p->n_ranges; r++)
		if (i >= p->lo[r] && i < p->hi[r])
			return true;
	return false;
}

/* place_tensors gives every tensor its offset: the non-expert ones in order, then the
 * routed experts' matrices (one region, reduced over its own group). */
static void place_tensors(struct net_layout *L)
{
	L->total = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < L->n; i++)
			if (L->t[i].expert == (pass == 1)) {
				L->t[i].off = L->total;
				L->total += (size_t)(L->t[i].rows * L->t[i].cols);
			}
		if (pass == 0)
			L->dense_total = L->total;
	}
}

int net_layout_build(const struct model_config *cfg, struct net_layout *L, char *why,
		     size_t why_len)
{
	struct net_part p;
	net_part_whole(&p);
	return net_layout_build_part(cfg, &p, L, why, why_len);
}

int net_layout_build_part(const struct model_config *cfg, const struct net_part *p,
			  struct net_layout *L, char *why, size_t why_len)
{
	memset(L, 0, sizeof(*L));
	const char *msg = unsupported(cfg);
	if (msg || model_config_validate(cfg, why, why_len) || (msg = part_check(cfg, p, L))) {
		if (msg && why && why_len)
			snprintf(why, why_len, "%s", msg);
		return MB_ERR_ARG;
	}
	L->cfg = *cfg;
	L->part = *p;
	L->whole = p->tp == 1 && p->ep == 1 && p->n_ranges == 0 && p->embed && p->head;
	int layers = (int)cfg->layers, D = (int)cfg->mtp_depth;
	L->blocks = layers + D;
	L->blk = calloc((size_t)L->blocks, sizeof(*L->blk));
	if (!L->blk)
		return MB_ERR_NOMEM;
	L->skip = !p->embed;
	L->embed = MAT(cfg->vocab, cfg->dim, "model.embed_tokens.weight");
	for (int i = 0; i < L->blocks; i++) {
		struct net_block *b = &L->blk[i];
		block_init(b);
		b->mla = cfg->attention == MODEL_ATTN_MLA;
		b->mtp = i >= layers;
		b->held = b->mtp ? p->head : held(p, i);
		L->skip = !b->held;
		/* an MTP block is shaped like the last main layer */
		int shape = b->mtp ? layers - 1 : i;
		b->moe = cfg->routed_experts > 0 && shape >= cfg->dense_layers;
		if (b->mtp) {
			b->enorm = VEC(cfg->dim, "model.layers.%d.enorm.weight", i);
			b->hnorm = VEC(cfg->dim, "model.layers.%d.hnorm.weight", i);
			b->eh_proj = MAT(cfg->dim, 2 * cfg->dim, "model.layers.%d.eh_proj.weight", i);
		}
		add_attention(L, b, i);
		add_ffn(L, b, i);
		if (L->n >= 0)
			tp_slice_block(L, b);
		if (b->mtp)
			b->head_norm = VEC(cfg->dim, "model.layers.%d.shared_head.norm.weight", i);
	}
	L->skip = !p->head;
	L->final_norm = VEC(cfg->dim, "model.norm.weight");
	L->head = cfg->tied_embeddings ? (p->head ? L->embed : -1)
				       : MAT(cfg->vocab, cfg->dim, "lm_head.weight");
	L->skip = false;
	if (L->n < 0) {
		net_layout_free(L);
		return MB_ERR_NOMEM;
	}
	/* vocabulary-parallel embedding and head: rows by vocabulary */
	split_rows(L, L->embed);
	if (L->head != L->embed)
		split_rows(L, L->head);
	place_tensors(L);
	return MB_OK;
}

void net_layout_free(struct net_layout *L)
{
	if (!L)
		return;
	free(L->t);
	free(L->blk);
	memset(L, 0, sizeof(*L));
}

int net_find(const struct net_layout *L, const char *name)
{
	for (int i = 0; i < L->n; i++)
		if (strcmp(L->t[i].name, name) == 0)
			return i;
	return -1;
}

/* init_value returns tensor t's initial element: 1 for norms, 0 for the routing bias,
 * N(0, std) otherwise. */
static double init_value(const struct net_tensor *t, struct mb_rng *rng, double std)
{
	if (!t->trainable)
		return 0.0;
	if (t->cols == 1)
		return 1.0;
	return std * mb_rng_normal(rng);
}

/* init_tensor draws tensor t of the whole model (its stream gid) and keeps its slice. */
#define INIT_TENSOR(REAL_T)                                                                 \
	do {                                                                                \
		struct mb_rng rng;                                                          \
		mb_rng_seed(&rng, seed, (uint64_t)t->gid);                                  \
		REAL_T *dst = w + t->off;                                                   \
		for (int64_t r = 0; r < t->full_rows; r++)                                  \
			for (int64_t c = 0; c < t->full_cols; c++) {                        \
				double x = init_value(t, &rng, std);                        \
				int64_t rr = r - t->row0, cc = c - t->col0;                 \
				if (rr >= 0 && rr < t->rows && cc >= 0 && cc < t->cols)     \
					dst[rr * t->cols + cc] = (REAL_T)x;                 \
			}                                                                   \
	} while (0)

void net_init_f32(const struct net_layout *L, float *w, double std, uint64_t seed)
{
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		INIT_TENSOR(float);
	}
}

void net_init_f64(const struct net_layout *L, double *w, double std, uint64_t seed)
{
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		INIT_TENSOR(double);
	}
}
