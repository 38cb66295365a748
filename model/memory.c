/*
 * memory.c - memory per GPU of a training run under a TP/PP/EP/DP layout.
 *
 * Model of the placement (Megatron-LM's, with expert TP = 1):
 *   - Stage s of pp holds layers [s*L/pp, (s+1)*L/pp); stage 0 also the embedding; the
 *     last stage the final norm, the head and the MTP modules, and under pp > 1 a copy
 *     of the embedding's table when tied or with MTP (whose modules embed tokens t+k:
 *     Megatron-LM keeps the copy, as `moebench train --pp` does).
 *     model_memory_part takes any part instead: layer ranges (interleaved schedules),
 *     embedding, head, the micro-batches in flight under its schedule.
 *   - Non-expert parameters are split over tp (norm weights and the router, replicated
 *     in practice, are < 0.1% and treated as split; tp_replicated keeps them, MLA's
 *     LoRA down-projections, GQA's K and V when tp does not divide the KV heads and an
 *     MTP module's projection whole); routed experts are split over ep,
 *     whole experts per GPU (ep must divide routed_experts).
 *   - Bytes per parameter: the GEMM working copy (weight_bytes), the gradient
 *     (grad_bytes, not sharded: ZeRO-1 shards only optimizer states), and the master
 *     weights plus two Adam moments, sharded over DP for non-expert parameters and over
 *     EDP = tp*dp/ep for expert parameters when zero1 (Rajbhandari et al., ZeRO,
 *     arXiv 1910.02054, stage 1).
 *   - Activations kept for the backward pass, no recomputation, attention without a
 *     stored seq x seq matrix (FlashAttention), per token and layer in act_bytes:
 *       attention: its norm input and the attention input (2*dim), MLA's two latents
 *       before and after their RMSNorms (2*q_lora_rank + kv_lora_rank +
 *       qk_rope_head_dim + kv_lora_rank), Q, K, V, the attention output and the core's
 *       log-sum-exp (heads); FFN: norm and FFN input (2*dim) and the hidden activations
 *       (3*inter for SwiGLU: gate, up, product; 2*inter for GELU); MoE: norm and router
 *       input (2*dim), router scores (routed_experts), each routed copy's input, hidden
 *       and output, and its gating weight (activated_experts * (2*dim + 3*moe_inter + 1):
 *       the combine's backward needs the outputs for the gating weights' gradient),
 *       shared hidden; each head pass (main and MTP) its final norm's input and output
 *       (2*dim) and FP32 logits (vocab * 4 bytes); an MTP module the embedding its enorm
 *       takes (dim) and its projection's input (2*dim) besides its block. All of it split
 *       over tp (tensor + sequence parallelism, Korthikanti et al., arXiv 2205.05198);
 *       no_seq_parallel splits only the sliced widths (heads, FFN hidden, vocabulary).
 *       With EP each GPU still processes its own micro-batch's token copies on average;
 *       a part's routed_rows sizes the routed buffers otherwise (an EP receive buffer
 *       sized for the worst case).
 *       Checked against the CPU training step's own saved activations (`moebench step`,
 *       tests/test_train_memory.c): equal for llama3-tiny, within 8% for v3-tiny, whose
 *       MLA keeps two extra copies (the roped key share and kv_b's output beside K and V)
 *       and whose MTP module keeps its two normed halves beside their concatenation.
 *       A stage's last layer's output, the message to the next stage, is freed once
 *       sent (Megatron-LM deallocates it); a part with keeps_output keeps it (dim per
 *       token), as the CPU step does.
 *   - 1F1B: stage s holds pp - s micro-batches in flight (Narayanan et al., arXiv
 *     2104.04473). Not modelled: temporary buffers, communication buffers, allocator
 *     fragmentation, CUDA context: expect a real run to need 10-30% more.
 */
#include "accounting.h"
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_TOKENS (1LL << 24)
#define MAX_WAYS (1LL << 20)

void model_layout_default(struct model_layout *lay, const struct model_config *cfg)
{
	memset(lay, 0, sizeof(*lay));
	lay->tp = lay->pp = lay->ep = lay->dp = 1;
	lay->micro_batch = 1;
	lay->seq = cfg ? cfg->seq_len : 4096;
	lay->mtp_depth = cfg ? cfg->mtp_depth : 0;
	lay->weight_bytes = 2;
	lay->grad_bytes = 4;
	lay->master_bytes = 4;
	lay->moment_bytes = 4;
	lay->act_bytes = 2;
	lay->zero1 = true;
}

/* check_ways checks the parallel degrees against the model. */
static int check_ways(const struct model_config *c, const struct model_layout *l, char *why,
		      size_t len)
{
	const struct { const char *key; int64_t v; } ways[] = {
		{ "tp", l->tp }, { "pp", l->pp }, { "ep", l->ep }, { "dp", l->dp },
	};

	for (int i = 0; i < 4; i++)
		if (ways[i].v < 1 || ways[i].v > MAX_WAYS)
			return mb_fail(MB_ERR_ARG, why, len, "%s: must be between 1 and %lld, got %lld",
				    ways[i].key, (long long)MAX_WAYS, (long long)ways[i].v);
	if (l->pp > c->layers)
		return mb_fail(MB_ERR_ARG, why, len, "pp: %lld stages for %lld layers", (long long)l->pp,
			    (long long)c->layers);
	if (c->heads % l->tp != 0)
		return mb_fail(MB_ERR_ARG, why, len, "tp: %lld does not divide heads %lld", (long long)l->tp,
			    (long long)c->heads);
	if (c->routed_experts == 0 && l->ep != 1)
		return mb_fail(MB_ERR_ARG, why, len, "ep: %lld but the model has no routed experts",
			    (long long)l->ep);
	if (c->routed_experts && c->routed_experts % l->ep != 0)
		return mb_fail(MB_ERR_ARG, why, len, "ep: %lld does not divide routed_experts %lld",
			    (long long)l->ep, (long long)c->routed_experts);
	if ((l->tp * l->dp) % l->ep != 0)
		return mb_fail(MB_ERR_ARG, why, len, "ep: %lld does not divide tp*dp = %lld", (long long)l->ep,
			    (long long)(l->tp * l->dp));
	return MB_OK;
}

/* check_layout checks the layout's sizes and byte widths. */
static int check_layout(const struct model_config *c, const struct model_layout *l, char *why,
			size_t len)
{
	const struct { const char *key; int64_t v; int lo; } widths[] = {
		{ "weight_bytes", l->weight_bytes, 1 }, { "grad_bytes", l->grad_bytes, 0 },
		{ "master_bytes", l->master_bytes, 0 }, { "moment_bytes", l->moment_bytes, 0 },
		{ "act_bytes", l->act_bytes, 1 },
	};
	int err = check_ways(c, l, why, len);

	if (err)
		return err;
	if (l->micro_batch < 1 || l->seq < 1 || l->micro_batch * l->seq > MAX_TOKENS)
		return mb_fail(MB_ERR_ARG, why, len, "micro_batch: %lld sequences of %lld tokens (at most %lld "
			    "tokens)", (long long)l->micro_batch, (long long)l->seq,
			    (long long)MAX_TOKENS);
	if (l->mtp_depth < 0 || l->mtp_depth > 16)
		return mb_fail(MB_ERR_ARG, why, len, "mtp_depth: must be between 0 and 16, got %lld",
			    (long long)l->mtp_depth);
	for (int i = 0; i < 5; i++)
		if (widths[i].v < widths[i].lo || widths[i].v > 8)
			return mb_fail(MB_ERR_ARG, why, len, "%s: must be between %d and 8, got %lld",
				    widths[i].key, widths[i].lo, (long long)widths[i].v);
	return MB_OK;
}

/* Activation elements saved per token: those kept whole on every TP rank without
 * sequence parallelism (residual stream, norms, MLA latents, router, routed rows' inputs
 * and outputs) and those sliced over TP (heads, FFN hidden widths). With sequence
 * parallelism both are split. */
struct acts {
	double whole, split;
};

/* act_attention adds one attention block's saved activations. */
static void act_attention(const struct model_config *c, struct acts *a)
{
	double h = (double)c->heads, dim = (double)c->dim;

	if (c->attention == MODEL_ATTN_GQA) {
		a->whole += 2 * dim;
		a->split += (h + 2.0 * c->kv_heads) * c->head_dim + h * c->head_dim + h;
		return;
	}
	double qk = (double)(c->qk_nope_head_dim + c->qk_rope_head_dim);
	double latents = 2.0 * c->q_lora_rank + 2.0 * c->kv_lora_rank + c->qk_rope_head_dim;
	a->whole += 2 * dim + latents;
	a->split += 2 * h * qk + 2 * h * c->v_head_dim + h;
}

/* act_ffn adds a dense FFN's or an MoE block's saved activations, the routed experts'
 * buffers sized for `rows` routed rows per token. */
static void act_ffn(const struct model_config *c, bool moe, double rows, struct acts *a)
{
	double mats = c->ffn == MODEL_FFN_GELU ? 2 : 3, dim = (double)c->dim;

	if (!moe) {
		a->whole += 2 * dim;
		a->split += mats * c->inter_dim;
		return;
	}
	a->whole += 2 * dim + (double)c->routed_experts + (double)c->activated_experts +
		    rows * 2 * dim;
	a->split += rows * mats * c->moe_inter_dim +
		    (double)c->shared_experts * mats * c->moe_inter_dim;
}

/* Parameters of one layer by kind, before splitting over tp / ep. */
struct layer_params {
	uint64_t common;      /* attention and the layer's two norms */
	uint64_t dense_ffn;   /* a dense layer's FFN */
	uint64_t moe_dense;   /* an MoE layer's shared experts and router */
	uint64_t moe_expert;  /* an MoE layer's routed experts */
	uint64_t final_norm;
	/* kept whole on every TP rank under tp_replicated: of common (norms, MLA's LoRA
	 * down-projections and their norms), of moe_dense (the router), of an MTP
	 * module besides its block (its norms and projection) */
	uint64_t common_repl, router, mtp_repl;
};

/* norm_n: parameters of a norm over n features. */
static uint64_t norm_n(const struct model_config *c, int64_t n)
{
	return (uint64_t)n * (c->norm == MODEL_NORM_LAYERNORM ? 2 : 1);
}

/* layer_params splits the model's totals back into per-layer counts (all layers of a
 * kind are identical, so the divisions are exact). */
static void layer_params(const struct model_config *c, const struct model_layout *l,
			 const struct model_params *p, struct layer_params *lp)
{
	uint64_t n_moe = (uint64_t)(c->layers - c->dense_layers), dim = (uint64_t)c->dim;

	memset(lp, 0, sizeof(*lp));
	lp->final_norm = norm_n(c, c->dim);
	lp->common = (p->total[MODEL_PARAM_ATTENTION] + p->total[MODEL_PARAM_NORMS] -
		      lp->final_norm) / (uint64_t)c->layers;
	if (c->dense_layers)
		lp->dense_ffn = p->total[MODEL_PARAM_DENSE_FFN] / (uint64_t)c->dense_layers;
	if (n_moe) {
		lp->moe_dense = (p->total[MODEL_PARAM_SHARED_EXPERTS] +
				 p->total[MODEL_PARAM_ROUTER]) / n_moe;
		lp->moe_expert = p->total[MODEL_PARAM_ROUTED_EXPERTS] / n_moe;
		lp->router = p->total[MODEL_PARAM_ROUTER] / n_moe;
	}
	lp->common_repl = 2 * norm_n(c, c->dim);
	if (c->attention == MODEL_ATTN_MLA && c->q_lora_rank)
		lp->common_repl += dim * (uint64_t)c->q_lora_rank + norm_n(c, c->q_lora_rank);
	if (c->attention == MODEL_ATTN_MLA)
		lp->common_repl += dim * (uint64_t)(c->kv_lora_rank + c->qk_rope_head_dim) +
				   norm_n(c, c->kv_lora_rank);
	/* GQA's K and V when tp does not divide the KV heads */
	if (c->attention == MODEL_ATTN_GQA && c->kv_heads % l->tp != 0)
		lp->common_repl += 2 * (dim + (c->qkv_bias || c->linear_bias ? 1 : 0)) *
				   (uint64_t)(c->kv_heads * c->head_dim);
	lp->mtp_repl = 3 * norm_n(c, c->dim) + 2 * dim * dim;
}

/* What one GPU holds before splitting over tp / ep. */
struct stage {
	int64_t layers;
	uint64_t dense_params, expert_params;
	uint64_t repl_params;  /* of dense_params: kept whole on every TP rank */
	struct acts act;       /* elements per token, all layers held */
	double logit_bytes_per_token;
};

/* stage_head adds what the part holding the head holds: final norm, head and MTP
 * modules, and the head passes' activations and logits. */
static void stage_head(const struct model_config *c, const struct model_layout *l,
		       const struct model_params *p, const struct layer_params *lp,
		       double rows, struct stage *st)
{
	uint64_t mtp_experts = p->mtp_total[MODEL_PARAM_ROUTED_EXPERTS];
	bool moe_tail = c->dense_layers < c->layers;

	st->dense_params += lp->final_norm + p->total[MODEL_PARAM_HEAD] +
			    (p->sum_mtp_total - mtp_experts);
	st->repl_params += lp->final_norm;
	st->expert_params += mtp_experts;
	for (int64_t k = 0; k < l->mtp_depth; k++) {
		st->repl_params += lp->mtp_repl + lp->common_repl + (moe_tail ? lp->router : 0);
		st->act.whole += 3.0 * c->dim;
		act_attention(c, &st->act);
		act_ffn(c, moe_tail, rows, &st->act);
	}
	st->act.whole += 2.0 * (double)c->dim * (double)(1 + l->mtp_depth);
	st->logit_bytes_per_token = 4.0 * (double)c->vocab * (double)(1 + l->mtp_depth);
}

/* part_contents collects the parameters and activations of a part. */
static void part_contents(const struct model_config *c, const struct model_layout *l,
			  const struct model_params *p, const struct model_part *pt,
			  struct stage *st)
{
	struct layer_params lp;
	double rows = pt->routed_rows > 0 ? pt->routed_rows : (double)c->activated_experts;
	bool first = false;

	layer_params(c, l, p, &lp);
	memset(st, 0, sizeof(*st));
	for (int r = 0; r < pt->n_ranges; r++) {
		int64_t lo = pt->lo[r], hi = pt->hi[r];
		int64_t dense_hi = hi < c->dense_layers ? hi : c->dense_layers;
		int64_t nd = dense_hi > lo ? dense_hi - lo : 0, nm = hi - lo - nd;

		first = first || lo == 0;
		st->layers += hi - lo;
		st->dense_params += lp.common * (uint64_t)(hi - lo) + lp.dense_ffn * (uint64_t)nd +
				    lp.moe_dense * (uint64_t)nm;
		st->repl_params += lp.common_repl * (uint64_t)(hi - lo) + lp.router * (uint64_t)nm;
		st->expert_params += lp.moe_expert * (uint64_t)nm;
		for (int64_t i = 0; i < hi - lo; i++)
			act_attention(c, &st->act);
		for (int64_t i = 0; i < nd; i++)
			act_ffn(c, false, rows, &st->act);
		for (int64_t i = 0; i < nm; i++)
			act_ffn(c, true, rows, &st->act);
		/* a range ending before the head may keep its output, the message to the
		 * next stage (the head's range counts it as the final norm's input) */
		if (hi < c->layers && pt->keeps_output)
			st->act.whole += (double)c->dim;
	}
	/* the embedding, or on a later stage its copy for the tied head or MTP (the table
	 * alone) */
	if (pt->embed)
		st->dense_params += first ? p->total[MODEL_PARAM_EMBEDDING]
					  : (uint64_t)c->vocab * (uint64_t)c->dim;
	if (pt->head)
		stage_head(c, l, p, &lp, rows, st);
}

/* stage_memory turns a part's contents into bytes per GPU. */
static void stage_memory(const struct model_layout *l, const struct stage *st,
			 int64_t in_flight, struct model_memory *m)
{
	double tokens = (double)(l->micro_batch * l->seq);
	double state = (double)(l->master_bytes + 2 * l->moment_bytes);
	double edp = (double)(l->tp * l->dp / l->ep);
	uint64_t repl = l->tp_replicated ? st->repl_params : 0;
	double tp = (double)l->tp;

	memset(m, 0, sizeof(*m));
	m->stage_layers = st->layers;
	m->params_dense = (st->dense_params - repl + (uint64_t)l->tp - 1) / (uint64_t)l->tp + repl;
	m->params_expert = st->expert_params / (uint64_t)l->ep;
	double params = (double)(m->params_dense + m->params_expert);
	m->weight_bytes = params * (double)l->weight_bytes;
	m->grad_bytes = params * (double)l->grad_bytes;
	m->optimizer_bytes = state * ((double)m->params_dense / (l->zero1 ? (double)l->dp : 1.0) +
				      (double)m->params_expert / (l->zero1 ? edp : 1.0));
	if (l->no_seq_parallel)
		m->activation_bytes_per_microbatch =
			tokens * ((st->act.whole + st->act.split / tp) * (double)l->act_bytes +
				  st->logit_bytes_per_token / tp);
	else
		m->activation_bytes_per_microbatch =
			tokens * ((st->act.whole + st->act.split) * (double)l->act_bytes +
				  st->logit_bytes_per_token) / tp;
	m->microbatches_in_flight = in_flight;
	m->activation_bytes = m->activation_bytes_per_microbatch * (double)m->microbatches_in_flight;
	m->total_bytes = m->weight_bytes + m->grad_bytes + m->optimizer_bytes + m->activation_bytes;
}

/* check_all validates the config, the layout and counts the parameters. */
static int check_all(const struct model_config *cfg, const struct model_layout *lay,
		     struct model_params *p, char *why, size_t why_len)
{
	int err;

	if ((err = model_config_validate(cfg, why, why_len)) ||
	    (err = check_layout(cfg, lay, why, why_len)))
		return err;
	return model_params_count(cfg, lay->mtp_depth, p);
}

int model_memory_per_gpu(const struct model_config *cfg, const struct model_layout *lay,
			 struct model_memory *out, char *why, size_t why_len)
{
	struct model_params p;
	struct model_memory m;
	struct stage st;
	int err;

	if (!cfg || !lay || !out)
		return mb_fail(MB_ERR_ARG, why, why_len, "memory: missing argument");
	if ((err = check_all(cfg, lay, &p, why, why_len)))
		return err;
	for (int64_t s = 0; s < lay->pp; s++) {
		/* stage s: its layers, the embedding on the first, the head and MTP on the
		 * last with a copy of the embedding's table under PP when tied or with MTP */
		struct model_part pt = { .n_ranges = 1 };
		bool last = s == lay->pp - 1;

		pt.lo[0] = s * cfg->layers / lay->pp;
		pt.hi[0] = (s + 1) * cfg->layers / lay->pp;
		pt.head = last;
		pt.embed = s == 0 || (last && (cfg->tied_embeddings || lay->mtp_depth > 0));
		part_contents(cfg, lay, &p, &pt, &st);
		stage_memory(lay, &st, lay->pp - s, &m);
		m.stage = s;
		if (s == 0 || m.total_bytes > out->total_bytes)
			*out = m;
	}
	return MB_OK;
}

int model_memory_part(const struct model_config *cfg, const struct model_layout *lay,
		      const struct model_part *part, struct model_memory *out, char *why,
		      size_t why_len)
{
	struct model_params p;
	struct stage st;
	int err;

	if (!cfg || !lay || !part || !out)
		return mb_fail(MB_ERR_ARG, why, why_len, "memory: missing argument");
	if ((err = check_all(cfg, lay, &p, why, why_len)))
		return err;
	if (part->n_ranges < 0 || part->n_ranges > MODEL_PART_RANGES || part->in_flight < 1 ||
	    !(part->routed_rows >= 0))
		return mb_fail(MB_ERR_ARG, why, why_len, "memory: a part with %d ranges, %lld "
			    "micro-batches in flight", part->n_ranges, (long long)part->in_flight);
	for (int r = 0; r < part->n_ranges; r++)
		if (part->lo[r] < 0 || part->hi[r] > cfg->layers || part->lo[r] >= part->hi[r])
			return mb_fail(MB_ERR_ARG, why, why_len, "memory: layers [%lld, %lld) outside "
				    "the model's %lld", (long long)part->lo[r],
				    (long long)part->hi[r], (long long)cfg->layers);
	part_contents(cfg, lay, &p, part, &st);
	stage_memory(lay, &st, part->in_flight, out);
	out->stage = -1;
	return MB_OK;
}
