/*
 * accounting.h - what a model config costs: parameters, FLOPs per token, KV cache, the
 * GEMMs of one layer, and memory per GPU under a TP/PP/EP/DP layout. Pure arithmetic
 * on a validated struct model_config (model.h); counts are exact 64-bit integers.
 *
 * Conventions
 *   - A multiply-add is 2 FLOPs. Training = forward + data gradient + weight gradient
 *     = 3x the forward FLOPs (Megatron-LM's term structure; Narayanan et al., arXiv
 *     2104.04473, Section 5.1, extended to MLA, MoE and MTP as in Megatron-LM's
 *     num_floating_point_operations).
 *   - Counted: every weight GEMM (Q/K/V/O; MLA's LoRA down/up projections and the
 *     decoupled RoPE key; dense FFN; router; the top-k routed and all shared experts;
 *     MTP's projection and block; logits) and the attention core QK^T and PV.
 *     Not counted: element-wise work (norms, activations, softmax, RoPE, biases) and
 *     the embedding lookup; recomputation is never counted (model FLOPs, not hardware
 *     FLOPs).
 *   - Causal attention core per token: each query attends to seq/2 keys on average,
 *     so the core is half the non-causal one (seq/2, as Megatron-LM counts it).
 *   - "Activated" parameters count the whole embedding and head (DeepSeek-V3's 37B
 *     convention), the router, the shared experts and activated_experts routed experts.
 *   - 6N uses N = activated parameters of the main model plus those of the MTP modules.
 *
 * Every function returns MB_OK or MB_ERR_ARG (invalid config or argument, with the
 * reason in why where the function takes one).
 */
#ifndef MB_MODEL_ACCOUNTING_H
#define MB_MODEL_ACCOUNTING_H

#include "model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- parameters ---- */

enum model_param_part {
	MODEL_PARAM_EMBEDDING,       /* input embedding, plus learned positions */
	MODEL_PARAM_HEAD,            /* output head; 0 when tied to the embedding */
	MODEL_PARAM_ATTENTION,       /* projections, MLA's latent norms, attention biases */
	MODEL_PARAM_DENSE_FFN,       /* the dense-first layers' FFNs (all layers if dense) */
	MODEL_PARAM_ROUTED_EXPERTS,
	MODEL_PARAM_SHARED_EXPERTS,
	MODEL_PARAM_ROUTER,          /* gate matrix and per-expert balancing bias */
	MODEL_PARAM_NORMS,           /* the two norms of each layer and the final norm */
	MODEL_PARAM_MTP_PROJ,        /* an MTP module's two input norms and [2d -> d] map */
	MODEL_PARAM_PARTS
};

struct model_params {
	int64_t mtp_depth;
	uint64_t total[MODEL_PARAM_PARTS];       /* the main model */
	uint64_t active[MODEL_PARAM_PARTS];      /* the main model, used by one token */
	uint64_t mtp_total[MODEL_PARAM_PARTS];   /* the MTP modules' own weights (they */
	uint64_t mtp_active[MODEL_PARAM_PARTS];  /* share embedding and head)          */
	uint64_t sum_total, sum_active, sum_mtp_total, sum_mtp_active;
};

/* model_params_count counts parameters per part, for the main model and for
 * mtp_depth MTP modules (0..16). */
int model_params_count(const struct model_config *cfg, int64_t mtp_depth,
		       struct model_params *out);
/* model_param_part_name: "embedding", "head", "attention", "dense_ffn",
 * "routed_experts", "shared_experts", "router", "norms", "mtp_proj". */
const char *model_param_part_name(enum model_param_part part);

/* ---- FLOPs per token ---- */

enum model_flop_term {
	MODEL_FLOP_ATTN_QKV,        /* Q, K, V projections; MLA: LoRA down/up, RoPE key */
	MODEL_FLOP_ATTN_CORE,       /* QK^T and PV (depends on seq; halved when causal) */
	MODEL_FLOP_ATTN_OUT,        /* output projection */
	MODEL_FLOP_DENSE_FFN,
	MODEL_FLOP_ROUTER,
	MODEL_FLOP_ROUTED_EXPERTS,  /* activated_experts routed experts */
	MODEL_FLOP_SHARED_EXPERTS,
	MODEL_FLOP_MTP_PROJ,        /* MTP's [2d -> d] projection */
	MODEL_FLOP_LOGITS,          /* output head */
	MODEL_FLOP_TERMS
};

#define MODEL_FLOPS_NONCAUSAL 1u  /* full attention core instead of the causal half */
#define MODEL_FLOPS_FORWARD 2u    /* forward only (1x) instead of training (3x) */

struct model_flops {
	int64_t seq, mtp_depth;
	unsigned flags;
	uint64_t main[MODEL_FLOP_TERMS];  /* FLOPs per token of the main model, per term */
	uint64_t mtp[MODEL_FLOP_TERMS];   /* of the MTP modules (their block, projection,
					     and logits) */
	uint64_t sum_main, sum_mtp, total;
};

/* model_flops_per_token counts FLOPs per token at sequence length seq
 * (1..2^22, and at most max_positions when the model has learned positions) with
 * mtp_depth MTP modules (0..16); flags as above. */
int model_flops_per_token(const struct model_config *cfg, int64_t seq, int64_t mtp_depth,
			  unsigned flags, struct model_flops *out);
/* model_flop_term_name: "attn_qkv", "attn_core", "attn_out", "dense_ffn", "router",
 * "routed_experts", "shared_experts", "mtp_proj", "logits". */
const char *model_flop_term_name(enum model_flop_term term);

/* ---- KV cache ---- */

/* model_kv_cache_bytes_per_token: bytes one token adds to the inference KV cache of
 * the main model's layers, at dtype_bytes (1..8) per element. MLA caches the latent
 * and the shared RoPE key, (kv_lora_rank + qk_rope_head_dim) per layer; GQA caches
 * keys and values, 2 * kv_heads * head_dim per layer. */
int model_kv_cache_bytes_per_token(const struct model_config *cfg, int64_t dtype_bytes,
				   uint64_t *out);

/* ---- summary: the figures `moebench model` prints ---- */

struct model_summary {
	int64_t seq, mtp_depth;
	uint64_t params_total;        /* main model (DeepSeek-V3: 671B; MTP separate) */
	uint64_t params_active;
	uint64_t params_embedding;
	uint64_t params_head;
	uint64_t params_mtp;          /* MTP modules' own weights at mtp_depth */
	uint64_t params_mtp_active;
	uint64_t flops_per_token_train;            /* causal, main + MTP */
	uint64_t flops_per_token_train_noncausal;
	uint64_t flops_per_token_6n;               /* 6 * (params_active + params_mtp_active) */
	uint64_t flops_per_token_fwd;              /* causal, forward only, main + MTP */
	uint64_t kv_cache_bytes_per_token;         /* BF16 */
};

/* model_summarize fills the summary at sequence length seq with mtp_depth modules. */
int model_summarize(const struct model_config *cfg, int64_t seq, int64_t mtp_depth,
		    struct model_summary *out);
/* model_summary_to_json returns the summary as a new JSON object whose keys are the
 * struct's field names, or NULL when out of memory. */
cJSON *model_summary_to_json(const struct model_summary *s);

/* ---- GEMMs of one layer (gemm_shapes.c) ---- */

enum model_pass {
	MODEL_PASS_FWD,    /* Y[T, out] = X[T, in] W^T:   M = T,   N = out, K = in  */
	MODEL_PASS_DGRAD,  /* dX[T, in] = dY[T, out] W:   M = T,   N = in,  K = out */
	MODEL_PASS_WGRAD,  /* dW[out, in] = dY^T X:        M = out, N = in,  K = T   */
};

struct model_gemm {
	const char *name;   /* "attn.wq_a", "moe.expert.fc1", ... */
	enum model_pass pass;
	int64_t m, n, k;
	int64_t count;      /* independent GEMMs of this shape (routed experts), else 1 */
};

#define MODEL_GEMM_MAX 48

/* model_gemm_shapes lists the weight GEMMs of one layer (an MoE layer when moe, else a
 * dense-FFN layer) for tokens tokens (1..2^32), each in the three passes, into out
 * (room for cap entries; MODEL_GEMM_MAX always suffices), and sets *count. The
 * attention core (batched per head, not a weight GEMM) is not listed. Routed experts
 * see tokens * activated_experts / routed_experts tokens each, the average under
 * perfect balance, rounded up; shared experts are one fused GEMM of width
 * shared_experts * moe_inter_dim; SwiGLU's gate and up matrices are one fused fc1. */
int model_gemm_shapes(const struct model_config *cfg, bool moe, int64_t tokens,
		      struct model_gemm *out, size_t cap, size_t *count);
/* model_pass_name: "fwd", "dgrad", "wgrad". */
const char *model_pass_name(enum model_pass pass);

/* ---- memory per GPU (memory.c) ---- */

struct model_layout {
	int64_t tp, pp, ep, dp;   /* world = tp * pp * dp; EP is carved out of the tp * dp
				     ranks of a stage (expert TP = 1), EDP = tp * dp / ep */
	int64_t micro_batch;      /* sequences per micro-batch */
	int64_t seq;
	int64_t mtp_depth;
	int64_t weight_bytes;     /* GEMM working copy per parameter: 2 BF16, 1 FP8 */
	int64_t grad_bytes;       /* gradient accumulation per parameter: 4 FP32 */
	int64_t master_bytes;     /* master weights: 4 FP32 (0: none beyond the copy) */
	int64_t moment_bytes;     /* per Adam moment: 4 FP32, 2 BF16 (DeepSeek-V3) */
	int64_t act_bytes;        /* per saved activation element: 2 BF16 */
	bool zero1;               /* shard master weights and moments over DP (EDP) */
	/* How an implementation departs from the defaults (false: as stated in memory.c).
	 * no_seq_parallel: TP without sequence parallelism, the activations of the residual
	 * stream, norms, MLA latents, router and the routed rows' inputs and outputs kept
	 * whole on every TP rank, only the sliced widths (heads, FFN hidden, vocabulary)
	 * split. tp_replicated: MLA's LoRA down-projections (Megatron-LM's MLA), the norms,
	 * the router, GQA's K and V when tp does not divide the KV heads and an MTP module's
	 * projection kept whole on every TP rank, not split. */
	bool no_seq_parallel, tp_replicated;
};

/* model_layout_default: one GPU, one sequence of cfg's seq_len and its MTP depth,
 * BF16 weights and activations, FP32 gradients, master weights and moments, ZeRO-1. */
void model_layout_default(struct model_layout *lay, const struct model_config *cfg);

struct model_memory {
	int64_t stage;                   /* the pipeline stage whose GPUs need the most */
	int64_t stage_layers;            /* its transformer layers */
	uint64_t params_dense;           /* non-expert parameters on one GPU of that stage */
	uint64_t params_expert;          /* routed-expert parameters on that GPU */
	double weight_bytes;
	double grad_bytes;
	double optimizer_bytes;          /* master weights + two Adam moments */
	double activation_bytes_per_microbatch;
	int64_t microbatches_in_flight;  /* 1F1B: pp - stage */
	double activation_bytes;         /* per micro-batch x in flight */
	double total_bytes;
};

/* model_memory_per_gpu estimates the memory of the fullest GPU; the assumptions are
 * stated in memory.c. Returns MB_ERR_ARG with the reason (the layout field named)
 * when the layout does not fit the model. */
int model_memory_per_gpu(const struct model_config *cfg, const struct model_layout *lay,
			 struct model_memory *out, char *why, size_t why_len);

/* The part of the model one GPU holds, for model_memory_part: its main layers as
 * ranges [lo, hi) (interleaved schedules hold several), whether it holds the embedding
 * (the first stage; under PP the last one keeps a copy when tied or with MTP) and the
 * head (final norm, head, MTP modules), the micro-batches whose activations it keeps
 * at once, and the routed rows per token each MoE block's expert buffers are sized
 * for (0: activated_experts, the mean of a balanced EP group; an EP receive buffer
 * sized for the worst case holds ep * min(activated_experts, routed_experts / ep)). */
#define MODEL_PART_RANGES 8
struct model_part {
	int n_ranges;
	int64_t lo[MODEL_PART_RANGES], hi[MODEL_PART_RANGES];
	bool embed, head;
	int64_t in_flight;
	double routed_rows;
	bool keeps_output;   /* a range ending before the head keeps its output besides
			      * sending it (Megatron-LM frees it once sent) */
};

/* model_memory_part estimates the memory of one GPU holding `part` under lay (its
 * pp only places the tied embedding's copy; stage is -1 in out). MB_ERR_ARG as
 * model_memory_per_gpu, or for ranges outside the model. */
int model_memory_part(const struct model_config *cfg, const struct model_layout *lay,
		      const struct model_part *part, struct model_memory *out, char *why,
		      size_t why_len);

#endif
