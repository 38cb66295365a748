/*
 * accounting.c - parameters, FLOPs per token and KV cache of a model config (see
 * accounting.h for the conventions). Everything is built from one layer at a time:
 * count_layer gives a layer's parameters and forward FLOPs per token, and the model
 * is embedding + dense layers + MoE layers + final norm + head, with MTP modules
 * counted apart.
 */
#include "accounting.h"
#include "status.h"

#include <stdio.h>
#include <string.h>

#define MAX_MTP 16
#define MAX_SEQ (1LL << 22)

static const char *const part_names[MODEL_PARAM_PARTS] = {
	"embedding", "head", "attention", "dense_ffn", "routed_experts", "shared_experts",
	"router", "norms", "mtp_proj",
};

static const char *const term_names[MODEL_FLOP_TERMS] = {
	"attn_qkv", "attn_core", "attn_out", "dense_ffn", "router", "routed_experts",
	"shared_experts", "mtp_proj", "logits",
};

const char *model_param_part_name(enum model_param_part part)
{
	return (unsigned)part < MODEL_PARAM_PARTS ? part_names[part] : "?";
}

const char *model_flop_term_name(enum model_flop_term term)
{
	return (unsigned)term < MODEL_FLOP_TERMS ? term_names[term] : "?";
}

/* One layer (or MTP module): parameters, activated parameters, and forward FLOPs per
 * token by term. */
struct layer_counts {
	uint64_t params[MODEL_PARAM_PARTS];
	uint64_t active[MODEL_PARAM_PARTS];
	uint64_t flops[MODEL_FLOP_TERMS];
};

/* norm_params: the weights of one norm over n features. */
static uint64_t norm_params(const struct model_config *c, int64_t n)
{
	return (uint64_t)n * (c->norm == MODEL_NORM_LAYERNORM ? 2u : 1u);
}

/* ffn_matrices: SwiGLU has gate, up and down; GELU up and down. */
static uint64_t ffn_matrices(const struct model_config *c)
{
	return c->ffn == MODEL_FFN_GELU ? 2u : 3u;
}

/* attn_proj_macs splits one token's attention projections into the part feeding the
 * core (*in) and the output projection (*out), in multiply-adds (= weights). */
static void attn_proj_macs(const struct model_config *c, uint64_t *in, uint64_t *out)
{
	uint64_t dim = (uint64_t)c->dim, h = (uint64_t)c->heads;

	if (c->attention == MODEL_ATTN_GQA) {
		uint64_t q = h * (uint64_t)c->head_dim;
		uint64_t kv = (uint64_t)c->kv_heads * (uint64_t)c->head_dim;
		*in = dim * (q + 2 * kv);
		*out = q * dim;
		return;
	}
	/* MLA: queries through the q latent (or directly), keys/values through the kv
	 * latent; dim -> (kv_lora + rope) includes the decoupled RoPE key. */
	uint64_t qk = (uint64_t)(c->qk_nope_head_dim + c->qk_rope_head_dim);
	uint64_t ql = (uint64_t)c->q_lora_rank, kvl = (uint64_t)c->kv_lora_rank;
	*in = ql ? dim * ql + ql * h * qk : dim * h * qk;
	*in += dim * (kvl + (uint64_t)c->qk_rope_head_dim);
	*in += kvl * h * (uint64_t)(c->qk_nope_head_dim + c->v_head_dim);
	*out = h * (uint64_t)c->v_head_dim * dim;
}

/* attn_core_flops: forward FLOPs of QK^T and PV for one token at sequence seq. The
 * non-causal count is 2 FLOPs x seq keys x heads x (qk + v); causal attends to seq/2
 * keys on average. */
static uint64_t attn_core_flops(const struct model_config *c, int64_t seq, bool causal)
{
	uint64_t qk, v;

	if (c->attention == MODEL_ATTN_GQA) {
		qk = v = (uint64_t)c->head_dim;
	} else {
		qk = (uint64_t)(c->qk_nope_head_dim + c->qk_rope_head_dim);
		v = (uint64_t)c->v_head_dim;
	}
	return (causal ? 1u : 2u) * (uint64_t)seq * (uint64_t)c->heads * (qk + v);
}

/* attn_params: attention weights of one layer, with MLA's latent norms and biases. */
static uint64_t attn_params(const struct model_config *c)
{
	uint64_t in, out, p;

	attn_proj_macs(c, &in, &out);
	p = in + out;
	if (c->attention == MODEL_ATTN_MLA) {
		if (c->q_lora_rank)
			p += norm_params(c, c->q_lora_rank);
		return p + norm_params(c, c->kv_lora_rank);
	}
	if (c->qkv_bias || c->linear_bias)
		p += (uint64_t)((c->heads + 2 * c->kv_heads) * c->head_dim);
	if (c->linear_bias)
		p += (uint64_t)c->dim;
	return p;
}

/* count_ffn adds a dense FFN (moe false) or an MoE block to one layer's counts. */
static void count_ffn(const struct model_config *c, bool moe, struct layer_counts *lc)
{
	uint64_t dim = (uint64_t)c->dim, mats = ffn_matrices(c);
	uint64_t expert = mats * dim * (uint64_t)c->moe_inter_dim;
	uint64_t router = dim * (uint64_t)c->routed_experts;

	if (!moe) {
		uint64_t w = mats * dim * (uint64_t)c->inter_dim;
		uint64_t b = c->linear_bias ? (mats - 1) * (uint64_t)c->inter_dim + dim : 0;
		lc->params[MODEL_PARAM_DENSE_FFN] = lc->active[MODEL_PARAM_DENSE_FFN] = w + b;
		lc->flops[MODEL_FLOP_DENSE_FFN] = 2 * w;
		return;
	}
	lc->params[MODEL_PARAM_ROUTED_EXPERTS] = (uint64_t)c->routed_experts * expert;
	lc->active[MODEL_PARAM_ROUTED_EXPERTS] = (uint64_t)c->activated_experts * expert;
	lc->params[MODEL_PARAM_SHARED_EXPERTS] = (uint64_t)c->shared_experts * expert;
	lc->active[MODEL_PARAM_SHARED_EXPERTS] = lc->params[MODEL_PARAM_SHARED_EXPERTS];
	lc->params[MODEL_PARAM_ROUTER] = router + (c->expert_bias ? (uint64_t)c->routed_experts : 0);
	lc->active[MODEL_PARAM_ROUTER] = lc->params[MODEL_PARAM_ROUTER];
	lc->flops[MODEL_FLOP_ROUTER] = 2 * router;
	lc->flops[MODEL_FLOP_ROUTED_EXPERTS] = 2 * lc->active[MODEL_PARAM_ROUTED_EXPERTS];
	lc->flops[MODEL_FLOP_SHARED_EXPERTS] = 2 * lc->active[MODEL_PARAM_SHARED_EXPERTS];
}

/* count_layer: one transformer layer (attention + dense FFN or MoE + its two norms). */
static void count_layer(const struct model_config *c, bool moe, int64_t seq, bool causal,
			struct layer_counts *lc)
{
	uint64_t in, out;

	memset(lc, 0, sizeof(*lc));
	attn_proj_macs(c, &in, &out);
	lc->params[MODEL_PARAM_ATTENTION] = lc->active[MODEL_PARAM_ATTENTION] = attn_params(c);
	lc->params[MODEL_PARAM_NORMS] = lc->active[MODEL_PARAM_NORMS] = 2 * norm_params(c, c->dim);
	lc->flops[MODEL_FLOP_ATTN_QKV] = 2 * in;
	lc->flops[MODEL_FLOP_ATTN_CORE] = attn_core_flops(c, seq, causal);
	lc->flops[MODEL_FLOP_ATTN_OUT] = 2 * out;
	count_ffn(c, moe, lc);
}

/* count_mtp: one MTP module. Its block is shaped like the last main layer; it adds
 * the embedding and hidden-state norms, the [2d -> d] projection, a final norm and
 * one more pass through the shared output head. */
static void count_mtp(const struct model_config *c, int64_t seq, bool causal,
		      struct layer_counts *lc)
{
	uint64_t dim = (uint64_t)c->dim;
	uint64_t proj = 2 * dim * dim;

	count_layer(c, c->dense_layers < c->layers, seq, causal, lc);
	lc->params[MODEL_PARAM_MTP_PROJ] = lc->active[MODEL_PARAM_MTP_PROJ] =
		2 * norm_params(c, c->dim) + proj;
	lc->params[MODEL_PARAM_NORMS] += norm_params(c, c->dim);
	lc->active[MODEL_PARAM_NORMS] += norm_params(c, c->dim);
	lc->flops[MODEL_FLOP_MTP_PROJ] = 2 * proj;
	lc->flops[MODEL_FLOP_LOGITS] = 2 * dim * (uint64_t)c->vocab;
}

/* add_scaled accumulates n copies of a layer's counts into the running totals. */
static void add_scaled(const struct layer_counts *lc, uint64_t n, uint64_t *params,
		       uint64_t *active, uint64_t *flops)
{
	for (int p = 0; p < MODEL_PARAM_PARTS; p++) {
		params[p] += n * lc->params[p];
		active[p] += n * lc->active[p];
	}
	for (int t = 0; t < MODEL_FLOP_TERMS; t++)
		flops[t] += n * lc->flops[t];
}

/* The whole model: main part and MTP part, parameters and forward FLOPs per token. */
struct model_counts {
	uint64_t params[MODEL_PARAM_PARTS], active[MODEL_PARAM_PARTS];
	uint64_t mtp_params[MODEL_PARAM_PARTS], mtp_active[MODEL_PARAM_PARTS];
	uint64_t flops[MODEL_FLOP_TERMS], mtp_flops[MODEL_FLOP_TERMS];
};

/* count_model assembles embedding, layers, final norm, head and MTP modules. */
static void count_model(const struct model_config *c, int64_t seq, int64_t mtp, bool causal,
			struct model_counts *m)
{
	struct layer_counts lc;
	uint64_t dim = (uint64_t)c->dim, table = (uint64_t)c->vocab * dim;

	memset(m, 0, sizeof(*m));
	m->params[MODEL_PARAM_EMBEDDING] = table + (uint64_t)c->max_positions * dim;
	m->params[MODEL_PARAM_HEAD] = c->tied_embeddings ? 0 : table;
	m->params[MODEL_PARAM_NORMS] = norm_params(c, c->dim);
	memcpy(m->active, m->params, sizeof(m->params));
	m->flops[MODEL_FLOP_LOGITS] = 2 * table;

	count_layer(c, false, seq, causal, &lc);
	add_scaled(&lc, (uint64_t)c->dense_layers, m->params, m->active, m->flops);
	count_layer(c, true, seq, causal, &lc);
	add_scaled(&lc, (uint64_t)(c->layers - c->dense_layers), m->params, m->active, m->flops);
	count_mtp(c, seq, causal, &lc);
	add_scaled(&lc, (uint64_t)mtp, m->mtp_params, m->mtp_active, m->mtp_flops);
}

/* check_args validates the config and the shared arguments (a model with learned
 * positions has none beyond max_positions). */
static int check_args(const struct model_config *cfg, int64_t seq, int64_t mtp, const void *out)
{
	if (!cfg || !out || model_config_validate(cfg, NULL, 0) != MB_OK)
		return MB_ERR_ARG;
	if (seq < 1 || seq > MAX_SEQ || mtp < 0 || mtp > MAX_MTP)
		return MB_ERR_ARG;
	if (cfg->max_positions > 0 && seq > cfg->max_positions)
		return MB_ERR_ARG;
	return MB_OK;
}

/* sum_parts adds up n counters. */
static uint64_t sum_parts(const uint64_t *v, int n)
{
	uint64_t s = 0;

	for (int i = 0; i < n; i++)
		s += v[i];
	return s;
}

int model_params_count(const struct model_config *cfg, int64_t mtp_depth,
		       struct model_params *out)
{
	struct model_counts m;

	if (check_args(cfg, 1, mtp_depth, out))
		return MB_ERR_ARG;
	count_model(cfg, 1, mtp_depth, true, &m);
	memset(out, 0, sizeof(*out));
	out->mtp_depth = mtp_depth;
	memcpy(out->total, m.params, sizeof(m.params));
	memcpy(out->active, m.active, sizeof(m.active));
	memcpy(out->mtp_total, m.mtp_params, sizeof(m.mtp_params));
	memcpy(out->mtp_active, m.mtp_active, sizeof(m.mtp_active));
	out->sum_total = sum_parts(out->total, MODEL_PARAM_PARTS);
	out->sum_active = sum_parts(out->active, MODEL_PARAM_PARTS);
	out->sum_mtp_total = sum_parts(out->mtp_total, MODEL_PARAM_PARTS);
	out->sum_mtp_active = sum_parts(out->mtp_active, MODEL_PARAM_PARTS);
	return MB_OK;
}

int model_flops_per_token(const struct model_config *cfg, int64_t seq, int64_t mtp_depth,
			  unsigned flags, struct model_flops *out)
{
	struct model_counts m;
	uint64_t passes = (flags & MODEL_FLOPS_FORWARD) ? 1u : 3u;

	if (check_args(cfg, seq, mtp_depth, out) ||
	    (flags & ~(MODEL_FLOPS_NONCAUSAL | MODEL_FLOPS_FORWARD)))
		return MB_ERR_ARG;
	count_model(cfg, seq, mtp_depth, !(flags & MODEL_FLOPS_NONCAUSAL), &m);
	memset(out, 0, sizeof(*out));
	out->seq = seq;
	out->mtp_depth = mtp_depth;
	out->flags = flags;
	for (int t = 0; t < MODEL_FLOP_TERMS; t++) {
		out->main[t] = passes * m.flops[t];
		out->mtp[t] = passes * m.mtp_flops[t];
	}
	out->sum_main = sum_parts(out->main, MODEL_FLOP_TERMS);
	out->sum_mtp = sum_parts(out->mtp, MODEL_FLOP_TERMS);
	out->total = out->sum_main + out->sum_mtp;
	return MB_OK;
}

int model_kv_cache_bytes_per_token(const struct model_config *cfg, int64_t dtype_bytes,
				   uint64_t *out)
{
	uint64_t per_layer;

	if (check_args(cfg, 1, 0, out) || dtype_bytes < 1 || dtype_bytes > 8)
		return MB_ERR_ARG;
	if (cfg->attention == MODEL_ATTN_MLA)
		per_layer = (uint64_t)(cfg->kv_lora_rank + cfg->qk_rope_head_dim);
	else
		per_layer = 2 * (uint64_t)(cfg->kv_heads * cfg->head_dim);
	*out = per_layer * (uint64_t)dtype_bytes * (uint64_t)cfg->layers;
	return MB_OK;
}

int model_summarize(const struct model_config *cfg, int64_t seq, int64_t mtp_depth,
		    struct model_summary *out)
{
	struct model_params p;
	struct model_flops train, noncausal, fwd;
	int err;

	if ((err = check_args(cfg, seq, mtp_depth, out)) ||
	    (err = model_params_count(cfg, mtp_depth, &p)) ||
	    (err = model_flops_per_token(cfg, seq, mtp_depth, 0, &train)) ||
	    (err = model_flops_per_token(cfg, seq, mtp_depth, MODEL_FLOPS_NONCAUSAL,
					 &noncausal)) ||
	    (err = model_flops_per_token(cfg, seq, mtp_depth, MODEL_FLOPS_FORWARD, &fwd)))
		return err;
	memset(out, 0, sizeof(*out));
	out->seq = seq;
	out->mtp_depth = mtp_depth;
	out->params_total = p.sum_total;
	out->params_active = p.sum_active;
	out->params_embedding = p.total[MODEL_PARAM_EMBEDDING];
	out->params_head = p.total[MODEL_PARAM_HEAD];
	out->params_mtp = p.sum_mtp_total;
	out->params_mtp_active = p.sum_mtp_active;
	out->flops_per_token_train = train.total;
	out->flops_per_token_train_noncausal = noncausal.total;
	out->flops_per_token_6n = 6 * (p.sum_active + p.sum_mtp_active);
	out->flops_per_token_fwd = fwd.total;
	return model_kv_cache_bytes_per_token(cfg, 2, &out->kv_cache_bytes_per_token);
}

cJSON *model_summary_to_json(const struct model_summary *s)
{
	/* NOTE: a JSON number (a double) is exact below 2^53; the counts of real models
	 * are far below it (DeepSeek-V3's parameters: 2^39). */
	const struct { const char *key; double v; } rows[] = {
		{ "seq", (double)s->seq },
		{ "mtp_depth", (double)s->mtp_depth },
		{ "params_total", (double)s->params_total },
		{ "params_active", (double)s->params_active },
		{ "params_embedding", (double)s->params_embedding },
		{ "params_head", (double)s->params_head },
		{ "params_mtp", (double)s->params_mtp },
		{ "params_mtp_active", (double)s->params_mtp_active },
		{ "flops_per_token_train", (double)s->flops_per_token_train },
		{ "flops_per_token_train_noncausal", (double)s->flops_per_token_train_noncausal },
		{ "flops_per_token_6n", (double)s->flops_per_token_6n },
		{ "flops_per_token_fwd", (double)s->flops_per_token_fwd },
		{ "kv_cache_bytes_per_token", (double)s->kv_cache_bytes_per_token },
	};
	cJSON *obj = cJSON_CreateObject();

	for (size_t i = 0; obj && i < sizeof(rows) / sizeof(rows[0]); i++)
		if (!cJSON_AddNumberToObject(obj, rows[i].key, rows[i].v)) {
			cJSON_Delete(obj);
			obj = NULL;
		}
	return obj;
}
