/*
 * config.c - validation of a model config (see model.h): every size in range, and the
 * sizes consistent with each other and with the attention and FFN kinds chosen. Each
 * message starts with the offending field's name.
 */
#include "model.h"
#include "status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Size limits (model.h lists them). They keep every exact count of accounting.c
 * inside 64 bits (training FLOPs per token, the largest, stay under 2^62) while
 * leaving room far beyond any published model. */
#define MAX_VOCAB (1LL << 22)
#define MAX_DIM (1LL << 17)
#define MAX_INTER (1LL << 18)
#define MAX_HEADS 1024
#define MAX_HEAD_DIM 4096
#define MAX_RANK 65536
#define MAX_LAYERS 1024
#define MAX_ROUTED 1024
#define MAX_SHARED 64
#define MAX_MTP 16
#define MAX_SEQ (1LL << 22)

/* check_range rejects value outside [lo, hi], naming the field. */
static int check_range(const char *key, int64_t value, int64_t lo, int64_t hi, char *why,
		       size_t why_len)
{
	if (value >= lo && value <= hi)
		return MB_OK;
	if (value < lo && lo > 0)
		return mb_fail(MB_ERR_ARG, why, why_len, "%s: must be at least %lld, got %lld", key,
			    (long long)lo, (long long)value);
	if (value < lo)
		return mb_fail(MB_ERR_ARG, why, why_len, "%s: must not be negative, got %lld", key,
			    (long long)value);
	return mb_fail(MB_ERR_ARG, why, why_len, "%s: %lld exceeds the limit %lld", key,
		    (long long)value, (long long)hi);
}

/* check_unused rejects a nonzero field that the chosen structure does not use, so a
 * config never carries a size that silently means nothing. */
static int check_unused(const char *key, int64_t value, const char *because, char *why,
			size_t why_len)
{
	if (value == 0)
		return MB_OK;
	return mb_fail(MB_ERR_ARG, why, why_len, "%s: is %lld but unused with %s (set 0 or omit)",
		    key, (long long)value, because);
}

/* validate_trunk checks the embedding, depth, dense FFN and sequence fields. */
static int validate_trunk(const struct model_config *c, char *why, size_t len)
{
	int err;

	if (c->name[0] == '\0')
		return mb_fail(MB_ERR_ARG, why, len, "name: must not be empty");
	if ((err = check_range("vocab", c->vocab, 1, MAX_VOCAB, why, len)) ||
	    (err = check_range("dim", c->dim, 1, MAX_DIM, why, len)) ||
	    (err = check_range("layers", c->layers, 1, MAX_LAYERS, why, len)) ||
	    (err = check_range("dense_layers", c->dense_layers, 0, c->layers, why, len)) ||
	    (err = check_range("inter_dim", c->inter_dim, c->dense_layers > 0, MAX_INTER,
			       why, len)) ||
	    (err = check_range("max_positions", c->max_positions, 0, MAX_SEQ, why, len)) ||
	    (err = check_range("seq_len", c->seq_len, 1, MAX_SEQ, why, len)) ||
	    (err = check_range("mtp_depth", c->mtp_depth, 0, MAX_MTP, why, len)))
		return err;
	if (c->max_positions > 0 && c->seq_len > c->max_positions)
		return mb_fail(MB_ERR_ARG, why, len, "seq_len: %lld exceeds max_positions %lld",
			    (long long)c->seq_len, (long long)c->max_positions);
	if (c->ffn != MODEL_FFN_SWIGLU && c->ffn != MODEL_FFN_GELU)
		return mb_fail(MB_ERR_ARG, why, len, "ffn: unknown kind %d", (int)c->ffn);
	if (c->norm != MODEL_NORM_RMSNORM && c->norm != MODEL_NORM_LAYERNORM)
		return mb_fail(MB_ERR_ARG, why, len, "norm: unknown kind %d", (int)c->norm);
	return MB_OK;
}

/* validate_gqa checks grouped-query attention: heads split dim evenly and every KV
 * head serves the same number of query heads. */
static int validate_gqa(const struct model_config *c, char *why, size_t len)
{
	int err;

	if ((err = check_range("kv_heads", c->kv_heads, 1, c->heads, why, len)) ||
	    (err = check_range("head_dim", c->head_dim, 1, MAX_HEAD_DIM, why, len)))
		return err;
	if (c->dim % c->heads != 0)
		return mb_fail(MB_ERR_ARG, why, len, "heads: %lld does not divide dim %lld",
			    (long long)c->heads, (long long)c->dim);
	if (c->heads % c->kv_heads != 0)
		return mb_fail(MB_ERR_ARG, why, len, "kv_heads: %lld does not divide heads %lld",
			    (long long)c->kv_heads, (long long)c->heads);
	if ((err = check_unused("q_lora_rank", c->q_lora_rank, "GQA", why, len)) ||
	    (err = check_unused("kv_lora_rank", c->kv_lora_rank, "GQA", why, len)) ||
	    (err = check_unused("qk_nope_head_dim", c->qk_nope_head_dim, "GQA", why, len)) ||
	    (err = check_unused("qk_rope_head_dim", c->qk_rope_head_dim, "GQA", why, len)) ||
	    (err = check_unused("v_head_dim", c->v_head_dim, "GQA", why, len)))
		return err;
	return MB_OK;
}

/* validate_mla checks multi-head latent attention: a KV latent and a RoPE key are
 * required, query compression is optional. */
static int validate_mla(const struct model_config *c, char *why, size_t len)
{
	int err;

	if ((err = check_range("q_lora_rank", c->q_lora_rank, 0, MAX_RANK, why, len)) ||
	    (err = check_range("kv_lora_rank", c->kv_lora_rank, 1, MAX_RANK, why, len)) ||
	    (err = check_range("qk_nope_head_dim", c->qk_nope_head_dim, 0, MAX_HEAD_DIM, why,
			       len)) ||
	    (err = check_range("qk_rope_head_dim", c->qk_rope_head_dim, 1, MAX_HEAD_DIM, why,
			       len)) ||
	    (err = check_range("v_head_dim", c->v_head_dim, 1, MAX_HEAD_DIM, why, len)) ||
	    (err = check_unused("kv_heads", c->kv_heads, "MLA", why, len)) ||
	    (err = check_unused("head_dim", c->head_dim, "MLA", why, len)))
		return err;
	if (c->qkv_bias || c->linear_bias)
		return mb_fail(MB_ERR_ARG, why, len, "%s: biases are not modelled for MLA",
			    c->qkv_bias ? "qkv_bias" : "linear_bias");
	return MB_OK;
}

/* validate_attention checks the attention kind and dispatches to its rules. */
static int validate_attention(const struct model_config *c, char *why, size_t len)
{
	int err = check_range("heads", c->heads, 1, MAX_HEADS, why, len);

	if (err)
		return err;
	if (c->attention == MODEL_ATTN_GQA)
		return validate_gqa(c, why, len);
	if (c->attention == MODEL_ATTN_MLA)
		return validate_mla(c, why, len);
	return mb_fail(MB_ERR_ARG, why, len, "attention: unknown kind %d", (int)c->attention);
}

/* validate_dense checks that a model without routed experts has no MoE sizes. */
static int validate_dense(const struct model_config *c, char *why, size_t len)
{
	int err;

	if (c->dense_layers != c->layers)
		return mb_fail(MB_ERR_ARG, why, len,
			    "dense_layers: %lld of %lld layers, but routed_experts is 0 so "
			    "every layer must be dense", (long long)c->dense_layers,
			    (long long)c->layers);
	if ((err = check_unused("shared_experts", c->shared_experts, "no routed experts",
				why, len)) ||
	    (err = check_unused("activated_experts", c->activated_experts,
				"no routed experts", why, len)) ||
	    (err = check_unused("moe_inter_dim", c->moe_inter_dim, "no routed experts", why,
				len)))
		return err;
	return MB_OK;
}

/* validate_moe checks routing: top-k within the experts, groups splitting the
 * experts evenly, and enough experts in the kept groups to pick top-k from. */
static int validate_moe(const struct model_config *c, char *why, size_t len)
{
	int err;

	if ((err = check_range("routed_experts", c->routed_experts, 0, MAX_ROUTED, why, len)) ||
	    (err = check_range("shared_experts", c->shared_experts, 0, MAX_SHARED, why, len)))
		return err;
	if (c->routed_experts == 0)
		return validate_dense(c, why, len);
	if (c->dense_layers == c->layers)
		return mb_fail(MB_ERR_ARG, why, len, "dense_layers: equals layers (%lld), so the "
			    "%lld routed experts are never used", (long long)c->layers,
			    (long long)c->routed_experts);
	if ((err = check_range("moe_inter_dim", c->moe_inter_dim, 1, MAX_INTER, why, len)) ||
	    (err = check_range("activated_experts", c->activated_experts, 1,
			       c->routed_experts, why, len)) ||
	    (err = check_range("n_groups", c->n_groups, 1, c->routed_experts, why, len)) ||
	    (err = check_range("topk_groups", c->topk_groups, 1, c->n_groups, why, len)))
		return err;
	if (c->routed_experts % c->n_groups != 0)
		return mb_fail(MB_ERR_ARG, why, len, "n_groups: %lld does not divide routed_experts "
			    "%lld", (long long)c->n_groups, (long long)c->routed_experts);
	if (c->activated_experts > c->topk_groups * (c->routed_experts / c->n_groups))
		return mb_fail(MB_ERR_ARG, why, len, "activated_experts: %lld exceeds the %lld "
			    "experts of the %lld kept groups", (long long)c->activated_experts,
			    (long long)(c->topk_groups * (c->routed_experts / c->n_groups)),
			    (long long)c->topk_groups);
	if (!isfinite(c->route_scale) || c->route_scale <= 0.0)
		return mb_fail(MB_ERR_ARG, why, len, "route_scale: must be positive, got %g",
			    c->route_scale);
	if (c->score_func != MODEL_SCORE_SOFTMAX && c->score_func != MODEL_SCORE_SIGMOID)
		return mb_fail(MB_ERR_ARG, why, len, "score_func: unknown kind %d",
			    (int)c->score_func);
	if (c->linear_bias)
		return mb_fail(MB_ERR_ARG, why, len, "linear_bias: not modelled for MoE models");
	return MB_OK;
}

int model_config_validate(const struct model_config *cfg, char *why, size_t why_len)
{
	int err;

	if (!cfg)
		return mb_fail(MB_ERR_ARG, why, why_len, "config: missing");
	if ((err = validate_trunk(cfg, why, why_len)) ||
	    (err = validate_attention(cfg, why, why_len)) ||
	    (err = validate_moe(cfg, why, why_len)))
		return err;
	return MB_OK;
}

void model_config_defaults(struct model_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "custom");
	cfg->ffn = MODEL_FFN_SWIGLU;
	cfg->norm = MODEL_NORM_RMSNORM;
	cfg->attention = MODEL_ATTN_GQA;
	cfg->score_func = MODEL_SCORE_SOFTMAX;
	cfg->n_groups = 1;
	cfg->topk_groups = 1;
	cfg->route_scale = 1.0;
	cfg->seq_len = 4096;
}
