/*
 * presets.c - the built-in model configurations (see model.h), each with the source
 * its shapes come from. The published sizes these shapes must reproduce (671B, 405B,
 * ...) are asserted in tests/test_model.c, not here.
 */
#include "model.h"

#include <stdio.h>
#include <string.h>

/* DeepSeek-style MoE fields shared by the presets below are spelled out in each entry
 * so that every preset reads as a complete config file. */
static const struct model_config presets[] = {
	{
		.name = "deepseek-v3",
		.source = "DeepSeek-V3 Technical Report, arXiv 2412.19437, Section 4.2; "
			  "deepseek-ai/DeepSeek-V3 inference/configs/config_671B.json",
		.vocab = 129280, .dim = 7168, .layers = 61, .dense_layers = 3,
		.inter_dim = 18432, .ffn = MODEL_FFN_SWIGLU, .norm = MODEL_NORM_RMSNORM,
		.attention = MODEL_ATTN_MLA, .heads = 128,
		.q_lora_rank = 1536, .kv_lora_rank = 512, .qk_nope_head_dim = 128,
		.qk_rope_head_dim = 64, .v_head_dim = 128,
		.routed_experts = 256, .shared_experts = 1, .activated_experts = 8,
		.moe_inter_dim = 2048, .n_groups = 8, .topk_groups = 4, .route_scale = 2.5,
		.score_func = MODEL_SCORE_SIGMOID, .expert_bias = true,
		.mtp_depth = 1, .seq_len = 4096,
	},
	{
		.name = "deepseek-v2",
		.source = "DeepSeek-V2, arXiv 2405.04434, Section 3.1.1; "
			  "deepseek-ai/DeepSeek-V2 config.json",
		.vocab = 102400, .dim = 5120, .layers = 60, .dense_layers = 1,
		.inter_dim = 12288, .ffn = MODEL_FFN_SWIGLU, .norm = MODEL_NORM_RMSNORM,
		.attention = MODEL_ATTN_MLA, .heads = 128,
		.q_lora_rank = 1536, .kv_lora_rank = 512, .qk_nope_head_dim = 128,
		.qk_rope_head_dim = 64, .v_head_dim = 128,
		.routed_experts = 160, .shared_experts = 2, .activated_experts = 6,
		.moe_inter_dim = 1536, .n_groups = 8, .topk_groups = 3, .route_scale = 16.0,
		.score_func = MODEL_SCORE_SOFTMAX,
		.seq_len = 4096,
	},
	{
		.name = "llama3-8b",
		.source = "The Llama 3 Herd of Models, arXiv 2407.21783, Table 3; "
			  "meta-llama/Llama-3.1-8B config.json",
		.vocab = 128256, .dim = 4096, .layers = 32, .dense_layers = 32,
		.inter_dim = 14336, .attention = MODEL_ATTN_GQA,
		.heads = 32, .kv_heads = 8, .head_dim = 128,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 8192,
	},
	{
		.name = "llama3-70b",
		.source = "The Llama 3 Herd of Models, arXiv 2407.21783, Table 3; "
			  "meta-llama/Llama-3.1-70B config.json",
		.vocab = 128256, .dim = 8192, .layers = 80, .dense_layers = 80,
		.inter_dim = 28672, .attention = MODEL_ATTN_GQA,
		.heads = 64, .kv_heads = 8, .head_dim = 128,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 8192,
	},
	{
		.name = "llama3-405b",
		.source = "The Llama 3 Herd of Models, arXiv 2407.21783, Table 3; "
			  "meta-llama/Llama-3.1-405B config.json",
		.vocab = 128256, .dim = 16384, .layers = 126, .dense_layers = 126,
		.inter_dim = 53248, .attention = MODEL_ATTN_GQA,
		.heads = 128, .kv_heads = 8, .head_dim = 128,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 8192,
	},
	{
		.name = "qwen2.5-72b",
		.source = "Qwen2.5 Technical Report, arXiv 2412.15115, Table 1; "
			  "Qwen/Qwen2.5-72B config.json (QKV bias counted)",
		.vocab = 152064, .dim = 8192, .layers = 80, .dense_layers = 80,
		.inter_dim = 29568, .qkv_bias = true, .attention = MODEL_ATTN_GQA,
		.heads = 64, .kv_heads = 8, .head_dim = 128,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 4096,
	},
	/* NOTE: the Frontier paper's GPT models (Megatron-DeepSpeed). Layers, hidden size
	 * and heads are those cited for its model table; they were not re-checked against
	 * the PDF here. FFN 4*hidden with GELU, LayerNorm, biases, learned positions and
	 * tied embeddings are Megatron GPT's defaults; the vocabulary is GPT-2's 50257
	 * padded to 51200 (Megatron pads to a multiple of 128 * TP). */
	{
		.name = "gpt-22b",
		.source = "Dash et al., Optimizing Distributed Training on Frontier for Large "
			  "Language Models, arXiv 2312.12705, model table (22B: 48 layers, hidden "
			  "6144, 48 heads); FFN, biases, vocab 51200: Megatron GPT defaults",
		.vocab = 51200, .dim = 6144, .layers = 48, .dense_layers = 48,
		.inter_dim = 24576, .ffn = MODEL_FFN_GELU, .norm = MODEL_NORM_LAYERNORM,
		.tied_embeddings = true, .max_positions = 2048, .linear_bias = true,
		.attention = MODEL_ATTN_GQA, .heads = 48, .kv_heads = 48, .head_dim = 128,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 2048,
	},
	{
		.name = "gpt-175b",
		.source = "Dash et al., arXiv 2312.12705, model table (175B: 96 layers, hidden "
			  "12288, 96 heads); FFN, biases, vocab 51200: Megatron GPT defaults",
		.vocab = 51200, .dim = 12288, .layers = 96, .dense_layers = 96,
		.inter_dim = 49152, .ffn = MODEL_FFN_GELU, .norm = MODEL_NORM_LAYERNORM,
		.tied_embeddings = true, .max_positions = 2048, .linear_bias = true,
		.attention = MODEL_ATTN_GQA, .heads = 96, .kv_heads = 96, .head_dim = 128,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 2048,
	},
	{
		.name = "gpt-1t",
		.source = "Dash et al., arXiv 2312.12705, model table (1T: 128 layers, hidden "
			  "25600, 160 heads); FFN, biases, vocab 51200: Megatron GPT defaults",
		.vocab = 51200, .dim = 25600, .layers = 128, .dense_layers = 128,
		.inter_dim = 102400, .ffn = MODEL_FFN_GELU, .norm = MODEL_NORM_LAYERNORM,
		.tied_embeddings = true, .max_positions = 2048, .linear_bias = true,
		.attention = MODEL_ATTN_GQA, .heads = 160, .kv_heads = 160, .head_dim = 160,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 2048,
	},
	/* NOTE: the proxies keep every structural feature of DeepSeek-V3 (MLA with both
	 * LoRA ranks, dense-first layers, shared + group-limited routed experts with
	 * sigmoid scores and balancing bias, one MTP module) at sizes chosen for real runs:
	 * v3-tiny ~6M parameters, a training step on two CPU cores in seconds; v3-small
	 * ~1.3B parameters, weights, gradients and Adam states ~21 GB, one H100. */
	{
		.name = "v3-tiny",
		.source = "moebench proxy of DeepSeek-V3's structure (model/presets.c)",
		.vocab = 4096, .dim = 256, .layers = 4, .dense_layers = 1,
		.inter_dim = 768, .ffn = MODEL_FFN_SWIGLU, .norm = MODEL_NORM_RMSNORM,
		.attention = MODEL_ATTN_MLA, .heads = 4,
		.q_lora_rank = 128, .kv_lora_rank = 64, .qk_nope_head_dim = 32,
		.qk_rope_head_dim = 16, .v_head_dim = 32,
		.routed_experts = 8, .shared_experts = 1, .activated_experts = 2,
		.moe_inter_dim = 128, .n_groups = 4, .topk_groups = 2, .route_scale = 2.5,
		.score_func = MODEL_SCORE_SIGMOID, .expert_bias = true,
		.mtp_depth = 1, .seq_len = 256,
	},
	/* NOTE: the dense comparison point of v3-tiny: Llama 3's proportions (GQA with 4
	 * query heads per KV head, head_dim 64, SwiGLU FFN 3.5 x dim, RoPE, untied head)
	 * at v3-tiny's width, depth and vocabulary. Training FLOPs per token at seq 256
	 * (`moebench model`): 28.3M here, 29.1M for v3-tiny with its MTP module; activated
	 * parameters without embedding and head 3.4M here, 2.0M for v3-tiny (2.5M with
	 * MTP): its MLA projections and top-2 of 8 experts cost fewer weights per FLOP. */
	{
		.name = "llama3-tiny",
		.source = "moebench dense proxy with Llama 3's proportions (model/presets.c)",
		.vocab = 4096, .dim = 256, .layers = 4, .dense_layers = 4,
		.inter_dim = 896, .attention = MODEL_ATTN_GQA,
		.heads = 4, .kv_heads = 1, .head_dim = 64,
		.n_groups = 1, .topk_groups = 1, .route_scale = 1.0, .seq_len = 256,
	},
	{
		.name = "v3-small",
		.source = "moebench proxy of DeepSeek-V3's structure (model/presets.c)",
		.vocab = 32768, .dim = 1024, .layers = 12, .dense_layers = 1,
		.inter_dim = 2816, .ffn = MODEL_FFN_SWIGLU, .norm = MODEL_NORM_RMSNORM,
		.attention = MODEL_ATTN_MLA, .heads = 16,
		.q_lora_rank = 512, .kv_lora_rank = 256, .qk_nope_head_dim = 64,
		.qk_rope_head_dim = 32, .v_head_dim = 64,
		.routed_experts = 64, .shared_experts = 1, .activated_experts = 6,
		.moe_inter_dim = 512, .n_groups = 8, .topk_groups = 4, .route_scale = 2.5,
		.score_func = MODEL_SCORE_SIGMOID, .expert_bias = true,
		.mtp_depth = 1, .seq_len = 4096,
	},
};

#define PRESET_COUNT (sizeof(presets) / sizeof(presets[0]))

size_t model_preset_count(void)
{
	return PRESET_COUNT;
}

const struct model_config *model_preset_at(size_t i)
{
	return i < PRESET_COUNT ? &presets[i] : NULL;
}

const struct model_config *model_preset_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < PRESET_COUNT; i++)
		if (strcmp(presets[i].name, name) == 0)
			return &presets[i];
	return NULL;
}

void model_preset_names(char *buf, size_t len)
{
	size_t used = 0;

	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < PRESET_COUNT && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
				 presets[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
