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
	o->moments_lo = o->moments_hi = 0;
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

/* add appends a tensor named by the format and returns its index (-1 when out of
 * memory: the caller checks L->t once at the end through L->n < 0). */
static int add(struct net_layout *L, int64_t rows, int64_t cols, bool decay, bool trainable,
	       const char *fmt, ...)
{
	if (L->n < 0)
		return -1;
	struct net_tensor *t = realloc(L->t, (size_t)(L->n + 1) * sizeof(*t));
	if (!t) {
		L->n = -1;
		return -1;
	}
	L->t = t;
	t += L->n;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	t->rows = rows;
	t->cols = cols;
	t->off = L->total;
	t->decay = decay;
	t->trainable = trainable;
	L->total += (size_t)(rows * cols);
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
	for (int64_t e = 0; e < E; e++) {
		int g = MAT(im, d, "model.layers.%d.mlp.experts.%lld.gate_proj.weight", i, (long long)e);
		MAT(im, d, "model.layers.%d.mlp.experts.%lld.up_proj.weight", i, (long long)e);
		MAT(d, im, "model.layers.%d.mlp.experts.%lld.down_proj.weight", i, (long long)e);
		if (e == 0)
			b->experts = g;
	}
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

int net_layout_build(const struct model_config *cfg, struct net_layout *L, char *why,
		     size_t why_len)
{
	memset(L, 0, sizeof(*L));
	const char *msg = unsupported(cfg);
	if (msg || model_config_validate(cfg, why, why_len)) {
		if (msg && why && why_len)
			snprintf(why, why_len, "%s", msg);
		return MB_ERR_ARG;
	}
	L->cfg = *cfg;
	int layers = (int)cfg->layers, D = (int)cfg->mtp_depth;
	L->blocks = layers + D;
	L->blk = calloc((size_t)L->blocks, sizeof(*L->blk));
	if (!L->blk)
		return MB_ERR_NOMEM;
	L->embed = MAT(cfg->vocab, cfg->dim, "model.embed_tokens.weight");
	for (int i = 0; i < L->blocks; i++) {
		struct net_block *b = &L->blk[i];
		block_init(b);
		b->mla = cfg->attention == MODEL_ATTN_MLA;
		b->mtp = i >= layers;
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
		if (b->mtp)
			b->head_norm = VEC(cfg->dim, "model.layers.%d.shared_head.norm.weight", i);
	}
	L->final_norm = VEC(cfg->dim, "model.norm.weight");
	L->head = cfg->tied_embeddings ? L->embed : MAT(cfg->vocab, cfg->dim, "lm_head.weight");
	if (L->n < 0) {
		net_layout_free(L);
		return MB_ERR_NOMEM;
	}
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

void net_init_f32(const struct net_layout *L, float *w, double std, uint64_t seed)
{
	for (int i = 0; i < L->n; i++) {
		struct mb_rng rng;
		mb_rng_seed(&rng, seed, (uint64_t)i);
		size_t n = (size_t)(L->t[i].rows * L->t[i].cols);
		for (size_t j = 0; j < n; j++)
			w[L->t[i].off + j] = (float)init_value(&L->t[i], &rng, std);
	}
}

void net_init_f64(const struct net_layout *L, double *w, double std, uint64_t seed)
{
	for (int i = 0; i < L->n; i++) {
		struct mb_rng rng;
		mb_rng_seed(&rng, seed, (uint64_t)i);
		size_t n = (size_t)(L->t[i].rows * L->t[i].cols);
		for (size_t j = 0; j < n; j++)
			w[L->t[i].off + j] = init_value(&L->t[i], &rng, std);
	}
}
