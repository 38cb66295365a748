/*
 * gemm_shapes.c - the weight GEMMs of one transformer layer for T tokens, in the
 * forward, data-gradient and weight-gradient passes (see accounting.h for the M, N, K
 * convention). The GEMM benchmark sweeps these shapes; the sum of 2*M*N*K*count over a
 * layer's forward entries, divided by T, equals that layer's forward FLOPs per token
 * without the attention core (tests/test_model.c checks it).
 */
#include "accounting.h"
#include "status.h"

#define MAX_TOKENS (1LL << 32)

static const char *const pass_names[] = { "fwd", "dgrad", "wgrad" };

const char *model_pass_name(enum model_pass pass)
{
	return (unsigned)pass < 3 ? pass_names[pass] : "?";
}

/* A list being filled: entries, room, and whether it overflowed. */
struct gemm_list {
	struct model_gemm *v;
	size_t n, cap;
	bool full;
};

/* add_linear appends the three passes of a linear map in -> out applied to rows
 * tokens, count times. */
static void add_linear(struct gemm_list *l, const char *name, int64_t rows, int64_t in,
		       int64_t out, int64_t count)
{
	const struct model_gemm g[3] = {
		{ name, MODEL_PASS_FWD, rows, out, in, count },
		{ name, MODEL_PASS_DGRAD, rows, in, out, count },
		{ name, MODEL_PASS_WGRAD, out, in, rows, count },
	};

	for (int i = 0; i < 3; i++) {
		if (l->n == l->cap) {
			l->full = true;
			return;
		}
		l->v[l->n++] = g[i];
	}
}

/* add_attention lists the attention projections: GQA's fused QKV and output, or
 * MLA's down/up projections (the kv down projection includes the RoPE key). */
static void add_attention(struct gemm_list *l, const struct model_config *c, int64_t t)
{
	int64_t h = c->heads;

	if (c->attention == MODEL_ATTN_GQA) {
		add_linear(l, "attn.wqkv", t, c->dim, (h + 2 * c->kv_heads) * c->head_dim, 1);
		add_linear(l, "attn.wo", t, h * c->head_dim, c->dim, 1);
		return;
	}
	int64_t qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
	if (c->q_lora_rank) {
		add_linear(l, "attn.wq_a", t, c->dim, c->q_lora_rank, 1);
		add_linear(l, "attn.wq_b", t, c->q_lora_rank, h * qk, 1);
	} else {
		add_linear(l, "attn.wq", t, c->dim, h * qk, 1);
	}
	add_linear(l, "attn.wkv_a", t, c->dim, c->kv_lora_rank + c->qk_rope_head_dim, 1);
	add_linear(l, "attn.wkv_b", t, c->kv_lora_rank,
		   h * (c->qk_nope_head_dim + c->v_head_dim), 1);
	add_linear(l, "attn.wo", t, h * c->v_head_dim, c->dim, 1);
}

/* add_ffn lists a dense FFN, or the router, routed experts and shared experts. */
static void add_ffn(struct gemm_list *l, const struct model_config *c, bool moe, int64_t t)
{
	/* SwiGLU's fc1 produces gate and up together. */
	int64_t up = c->ffn == MODEL_FFN_GELU ? 1 : 2;
	int64_t e = c->routed_experts, per_expert;

	if (!moe) {
		add_linear(l, "ffn.fc1", t, c->dim, up * c->inter_dim, 1);
		add_linear(l, "ffn.fc2", t, c->inter_dim, c->dim, 1);
		return;
	}
	/* NOTE: perfect balance; rounding up keeps every token-expert pair covered. */
	per_expert = (t * c->activated_experts + e - 1) / e;
	add_linear(l, "moe.router", t, c->dim, e, 1);
	add_linear(l, "moe.expert.fc1", per_expert, c->dim, up * c->moe_inter_dim, e);
	add_linear(l, "moe.expert.fc2", per_expert, c->moe_inter_dim, c->dim, e);
	if (c->shared_experts) {
		int64_t width = c->shared_experts * c->moe_inter_dim;
		add_linear(l, "moe.shared.fc1", t, c->dim, up * width, 1);
		add_linear(l, "moe.shared.fc2", t, width, c->dim, 1);
	}
}

int model_gemm_shapes(const struct model_config *cfg, bool moe, int64_t tokens,
		      struct model_gemm *out, size_t cap, size_t *count)
{
	struct gemm_list l = { out, 0, cap, false };

	if (!cfg || !out || !count || model_config_validate(cfg, NULL, 0) != MB_OK)
		return MB_ERR_ARG;
	if (tokens < 1 || tokens > MAX_TOKENS || (moe && cfg->routed_experts == 0) ||
	    (!moe && cfg->dense_layers == 0))
		return MB_ERR_ARG;
	add_attention(&l, cfg, tokens);
	add_ffn(&l, cfg, moe, tokens);
	*count = l.n;
	return l.full ? MB_ERR_ARG : MB_OK;
}
