/*
 * net.h - the trainable language model of one rank: DeepSeek-V3's structure (MLA, shared
 * plus group-limited routed experts, dense-first layers, multi-token prediction) and the
 * dense GQA/SwiGLU one of Llama 3, built from any validated struct model_config.
 *
 * Layout (net_layout.c). Every tensor has the name and [out, in] shape of the Hugging
 * Face checkpoints (model.embed_tokens.weight, model.layers.3.self_attn.q_a_proj.weight,
 * model.layers.5.mlp.experts.12.down_proj.weight, model.layers.5.mlp.gate.weight and
 * .e_score_correction_bias, lm_head.weight; Llama's q_proj/k_proj/v_proj/o_proj; the MTP
 * module of depth k as layer index layers + k - 1 with enorm, hnorm, eh_proj, its block
 * and shared_head.norm; the output head is lm_head, shared). Parameters, gradients and
 * the two AdamW moments are each one allocation; tensors are offsets into it.
 *
 * Step (net_impl.h, once in float and once in double): embedding; per layer RMSNorm ->
 * attention (kernels/attention mla.c or gqa.c) -> residual -> RMSNorm -> FFN (SwiGLU for
 * the first dense_layers; MoE after: sigmoid gate, bias for selection only through
 * kernels/moe route.c, weights normalised over the selected experts times route_scale,
 * shared experts, no dropping) -> residual; final RMSNorm; head; cross-entropy. MTP
 * (DeepSeek-V3 2.2): depth k projects [enorm(emb(t_{i+k})) | hnorm(h^{k-1}_i)] (the
 * order of the reference implementations' eh_proj) to dim, one block, shared_head.norm,
 * the shared head, loss on t_{i+k+1}; total loss = main + lambda / D * sum_k L_k +
 * alpha * complementary sequence-wise balance loss (DeepSeek-V3 eq. 17-20, per sequence,
 * summed over MoE blocks, averaged over sequences). The backward holds the top-k
 * selection fixed; the gating weights are differentiable.
 *
 * A batch is B sequences of S + 1 + mtp_depth tokens: inputs t_0..t_{S-1}, main
 * targets t_1..t_S, MTP depth k embeds t_k..t_{S-1+k} and predicts t_{k+1}..t_{S+k}.
 *
 * Operations go through an op table (struct net_ops_f32 / net_ops_f64) so a CUDA table
 * can be filled later; net_cpu_ops_f32/_f64 are the CPU ones. The float table emulates
 * --precision bf16|fp8 exactly on the CPU (quantise, dequantise, FP32 GEMM) on every
 * linear layer outside the kept-high components (embedding, head, gate, norms,
 * attention core); see net_ops.c for what the attention blocks get.
 *
 * Tensor parallelism (a part with tp > 1; Megatron-LM's column/row parallel linears):
 * a TP rank holds its heads' rows of q_b / q_proj, kv_b, k and v (column-parallel) and
 * their columns of o_proj (row-parallel), its slice of the SwiGLU width of the dense FFN,
 * the shared experts and every held routed expert (gate/up by rows, down by columns:
 * ETP = TP), and its rows of the vocabulary of the embedding and the head. The attention
 * kernels run unchanged on a block of heads / tp heads. The rest is replicated: norms,
 * the MLA LoRA down-projections (q_a, kv_a_proj_with_mqa) and their norms, the router
 * and its bias, the MTP projection; GQA's k and v too when tp exceeds the kv heads (each
 * rank then uses the kv head of its query heads). The forward sums the partial outputs
 * of the row-parallel layers (attention, FFN, MoE) and the embedding (zeros outside a
 * rank's rows) over the TP group; the cross-entropy reduces each token's maximum, sum of
 * exponentials and target logit over the group and keeps the logits' gradient local.
 * The backward sums the partial input gradients of the column-parallel layers and of
 * the head, and the gating weights' gradient (dot products with partial expert outputs)
 * before the router's; the replicated tensors fed by a rank's heads alone (tp_partial:
 * the LoRA down-projections, their norms, replicated k/v) get the sum of the ranks'
 * partial gradients once at the end of the backward, so every replicated tensor ends
 * with the same gradient on every TP rank. The collectives are the harness's
 * (struct net_tp_comm). Under FP8 the 128x128 weight blocks of a slice are not the whole
 * tensor's, so a TP run rounds otherwise than one rank: equality is an FP32 property.
 *
 * Functions return MB_OK, MB_ERR_ARG or MB_ERR_NOMEM.
 */
#ifndef MB_NET_H
#define MB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define NET_NAME_MAX 96

struct net_tensor {
	char name[NET_NAME_MAX];
	int64_t rows, cols;   /* [out, in] for matrices; cols == 1 for vectors */
	size_t off;           /* elements from the start of the allocation */
	bool decay;           /* weight decay applies (matrices) */
	bool trainable;       /* false: the routing bias (updated by the balancing rule) */
	bool expert;          /* a routed expert's matrix (reduced over the expert-DP group) */
	int gid;              /* index in the whole model's layout: the initialisation stream */
	/* the whole tensor this one is a slice of (tensor parallelism): rows x cols at
	 * (row0, col0) of full_rows x full_cols; the whole tensor itself otherwise */
	int64_t full_rows, full_cols, row0, col0;
	/* replicated over the TP group but fed by this rank's heads alone (MLA's LoRA
	 * down-projections and their norms, GQA's k/v when the TP size exceeds the kv
	 * heads): the backward sums its gradient over the TP group */
	bool tp_partial;
};

/* Tensor indices of one block (a main layer, or the MTP module's block), -1 if absent. */
struct net_block {
	bool held;            /* this rank's part holds the block (pipeline stage) */
	bool mla, moe, mtp;
	int attn_norm, ffn_norm;
	int q_a, q_a_norm, q_b, kv_a, kv_a_norm, kv_b, o;  /* MLA (q_b is q_proj w/o q_lora) */
	int q, k, v;                                      /* GQA (o shared with MLA) */
	int gate, up, down;                               /* dense SwiGLU */
	int router, router_bias;                          /* MoE gate */
	int sh_gate, sh_up, sh_down;                      /* shared experts (one MLP) */
	int experts;          /* held expert e (global index): experts + 3 (e - expert_lo) + {g,u,d} */
	int enorm, hnorm, eh_proj, head_norm;             /* MTP */
};

/* The part of the model one rank holds under a parallel layout. Absent parts have no
 * tensors in its layout (index -1): the allocation holds the part alone. */
#define NET_PART_RANGES 8
struct net_part {
	int tp, tp_rank;      /* tensor parallelism: slices of heads, FFN widths, vocabulary */
	int ep, ep_rank;      /* routed experts [ep_rank * E / ep, (ep_rank + 1) * E / ep) */
	int n_ranges;         /* pipeline: main layers [lo[r], hi[r]) held; 0: every layer */
	int lo[NET_PART_RANGES], hi[NET_PART_RANGES];
	bool embed;           /* model.embed_tokens (first stage; also the last with MTP or tied) */
	bool head;            /* model.norm, lm_head and the MTP modules (the last stage) */
};

struct net_layout {
	struct model_config cfg;
	struct net_part part;
	bool whole;             /* the part is the whole model */
	int n;                  /* tensors */
	struct net_tensor *t;
	size_t total;           /* elements */
	/* the routed experts' matrices are placed last: [dense_total, total) */
	size_t dense_total;
	int expert_lo, expert_hi;  /* routed experts held, [lo, hi) */
	int embed, final_norm, head;  /* -1 when the part lacks them */
	int blocks;             /* layers + mtp_depth */
	struct net_block *blk;
	int gids;               /* build state: tensors of the whole model named so far */
	bool skip;              /* build state: the tensors being named are not held */
};

enum net_precision { NET_FP32, NET_BF16, NET_FP8 };

/* The collectives a model on a TP part (part.tp > 1) calls over its TP group, in place
 * (sums, maxima); the harness fills them: the model does not call harness/. Each
 * returns MB_OK or an error, which the forward or backward returns. */
struct net_tp_comm {
	void *ctx;
	int (*sum_f32)(void *ctx, float *x, size_t n);
	int (*sum_f64)(void *ctx, double *x, size_t n);
	int (*max_f64)(void *ctx, double *x, size_t n);
	/* sequence parallelism (net_options.sp), in place over x [n] (n divides by the
	 * group's size; rank r's chunk is [r n / tp, (r + 1) n / tp)): reduce-scatter sums
	 * the group's x into this rank's chunk (the rest of x is left undefined);
	 * all-gather fills x with every rank's chunk */
	int (*rs_f32)(void *ctx, float *x, size_t n);
	int (*rs_f64)(void *ctx, double *x, size_t n);
	int (*ag_f32)(void *ctx, float *x, size_t n);
	int (*ag_f64)(void *ctx, double *x, size_t n);
};

struct net_options {
	enum net_precision precision;
	double init_std;        /* 0.006 (DeepSeek-V3 4.2) */
	double mtp_weight;      /* lambda, 0.3 */
	double balance_alpha;   /* complementary sequence-wise balance loss, 1e-4 */
	double norm_eps;        /* 1e-6 */
	double rope_theta;      /* 10000 */
	bool experts_serial;    /* routed experts one after another, each GEMM on every BLAS
				 * thread (default: side by side, one BLAS thread each) */
	/* elements of AdamW moments the f32 model keeps: a ZeRO-1 shard's (the harness
	 * indexes them); 0: every element of the allocation */
	size_t moments;
	/* sequence parallelism on a TP part (Korthikanti et al. 2022): outside the TP
	 * regions the residual stream, the norms and the residual adds take this rank's
	 * T / tp of the tokens; all-gather before the column-parallel layers, reduce-scatter
	 * after the row-parallel ones (the backward mirrors it); the norms' (and the MTP
	 * projection's) gradients are then partial and summed over TP with the tp_partial
	 * ones. The model keeps its rows of in, h, out, n2 and (FP32) n1, gathering n1
	 * and n2 again in the backward; the other activations stay whole. Needs
	 * T % tp == 0 and the rs/ag collectives. Pipeline stages pass the
	 * whole [T, d] buffers between them (only this rank's rows are defined); EP
	 * dispatches the gathered tokens, as under TP without sp. */
	bool sp;
};

/* Phases a step's time is split into (net_profile). */
enum net_phase {
	NET_PH_ATTENTION, NET_PH_ROUTING, NET_PH_EXPERTS, NET_PH_DENSE, NET_PH_LOSS,
	NET_PH_OPTIMIZER, NET_PH_OTHER, NET_PH_EP, NET_PH_COUNT
};

/* A clock the harness may hand in: the model only adds differences of now(). Besides
 * each phase's time, the time inside the linear layers' GEMMs (the op table's
 * linear_fwd / linear_bwd, quantisation included under bf16/fp8) and their FLOPs
 * (2 t in out forward, twice that backward) by the phase they ran in: the GEMM rate of
 * the expert and dense phases without their element-wise work. */
struct net_profile {
	double (*now)(void);
	double seconds[NET_PH_COUNT];
	double gemm_seconds[NET_PH_COUNT], gemm_flops[NET_PH_COUNT];
	double t0;
	int cur;
	int team;   /* threads of the experts' loop running now (0: none): GEMM seconds count 1/team */
};

/* Expert parallelism (net_part.ep > 1): the communication of the MoE blocks, handed in
 * by the harness (the model calls no communicator). Each rank routes its own tokens over
 * all E experts; the callbacks move rows between the EP ranks, which hold experts
 * [ep_rank * E / ep, ...). Rows are REAL (es = sizeof(REAL): 4 or 8 bytes); block names
 * the MoE block, whose layout the forward's dispatch plans and its backward reuses.
 *   dispatch      x [T, d] of this rank's tokens to the owners of idx [T, K] (weights w,
 *                 float); the owner's rows arrive expert-major in xe [*rows, d]
 *                 (at most rows_max, else MB_ERR_ARG), counts[e] rows per local expert
 *   combine       y [rows, d] back to the tokens: out [T, d] = sum over the token's
 *                 experts of w * y (overwritten)
 *   combine_bwd   from dout [T, d]: dy [rows, d] = w * dout of the row's token (a
 *                 dispatch of dout) and dw [T, K] = dout . y of the token's k-th expert
 *   dispatch_bwd  dx [rows, d] back to the tokens, summed: out [T, d] (overwritten)
 * Each returns MB_OK or an error. */
struct net_comm {
	void *ctx;
	int (*ep_dispatch)(void *ctx, int block, size_t es, const int32_t *idx, const float *w,
			   int T, const void *x, void *xe, long rows_max, long *rows, long *counts);
	int (*ep_combine)(void *ctx, int block, size_t es, const void *y, void *out);
	int (*ep_combine_bwd)(void *ctx, int block, size_t es, const void *dout, const void *y,
			      void *dy, void *dw);
	int (*ep_dispatch_bwd)(void *ctx, int block, size_t es, const void *dx, void *out);
};

/* Figures of one forward. */
struct net_stats {
	double loss;          /* total: main + MTP + balance */
	double main_loss, mtp_loss, balance_loss;
	double load_max_mean; /* max over MoE blocks of (max expert load / mean load) */
	uint64_t route_hash;  /* a hash of every selected expert (same selection, same hash) */
};

/* ---- layout (net_layout.c) ---- */
void net_options_default(struct net_options *o);
const char *net_precision_name(enum net_precision p);
int net_precision_parse(const char *s, enum net_precision *p);
/* net_layout_build names and places every tensor of a validated config; MLA or GQA
 * attention, SwiGLU FFN, RMSNorm, no biases, no learned positions (else MB_ERR_ARG with
 * why). */
int net_layout_build(const struct model_config *cfg, struct net_layout *L, char *why,
		     size_t why_len);
/* net_part_whole fills p with the whole model (one rank). */
void net_part_whole(struct net_part *p);
/* net_layout_build_part is net_layout_build of the tensors part p holds, under the same
 * names, each initialised (net_init) to the values the whole model's would have; MB_ERR_ARG
 * with why when the part does not fit the config (experts the EP size does not divide,
 * ranges outside the layers, a tied head without the embedding). */
int net_layout_build_part(const struct model_config *cfg, const struct net_part *p,
			  struct net_layout *L, char *why, size_t why_len);
void net_layout_free(struct net_layout *L);
/* net_tp_check says why cfg cannot be sliced over tp ranks, or NULL: the heads, the FFN
 * widths and the vocabulary split evenly; GQA's kv heads split, or (tp a multiple of
 * them) each TP rank keeps k and v whole and uses its query heads' kv head. */
const char *net_tp_check(const struct model_config *c, int tp);
/* net_find returns the index of the tensor of that name, or -1. */
int net_find(const struct net_layout *L, const char *name);
/* net_init_f32/_f64 draw matrices and the embedding N(0, std) from seed, norms 1,
 * routing bias 0. */
void net_init_f32(const struct net_layout *L, float *w, double std, uint64_t seed);
void net_init_f64(const struct net_layout *L, double *w, double std, uint64_t seed);

/* ---- the model in one precision (net.c instantiates net_impl.h) ---- */
struct net_f32;
struct net_f64;
/* net_create: parameters, gradients (and, for f32, AdamW moments) each one allocation,
 * initialised from seed; activations for batch x seq. */
int net_create_f32(const struct net_layout *L, const struct net_options *o, int batch,
		   int seq, uint64_t seed, struct net_f32 **out);
int net_create_f64(const struct net_layout *L, const struct net_options *o, int batch,
		   int seq, uint64_t seed, struct net_f64 **out);
/* net_create_f32_cuda: the same model in device memory, run by the CUDA op table
 * (net_ops.h; opened here for this model's sizes, one per process): MB_ERR_NODEV without
 * a device or CUDA, MB_ERR_UNSUPPORTED for a part (TP, EP, a pipeline stage). Its
 * parameters and gradients are device pointers (net_download_f32 copies them out).
 * Destroy it, then net_cuda_ops_close. */
int net_create_f32_cuda(const struct net_layout *L, const struct net_options *o, int batch,
			int seq, uint64_t seed, struct net_f32 **out);
/* net_download_f32 copies the parameters (grads false) or the gradients to host [total]. */
int net_download_f32(const struct net_f32 *m, bool grads, float *host);
/* net_sync_f32 waits for the model's table (a device's stream) and returns the first
 * error its entries kept; MB_OK at once on the CPU. */
int net_sync_f32(struct net_f32 *m);
/* Gradient accumulation in the model's table memory (a device's on the CUDA table):
 * net_acc_alloc_f32 allocates room for the gradients (NULL: out of memory; free it with
 * net_acc_free_f32); net_acc_add_f32 sets acc to the gradients (first) or adds them;
 * net_acc_mean_f32 sets the gradients to acc / n. MB_OK or the table's error. */
float *net_acc_alloc_f32(struct net_f32 *m);
void net_acc_free_f32(struct net_f32 *m, float *acc);
int net_acc_add_f32(struct net_f32 *m, float *acc, bool first);
int net_acc_mean_f32(struct net_f32 *m, const float *acc, int n);
/* net_upload_f32 copies host [total] into the parameters (the moments are left). */
int net_upload_f32(struct net_f32 *m, const float *host);
void net_destroy_f32(struct net_f32 *m);
void net_destroy_f64(struct net_f64 *m);
float *net_params_f32(struct net_f32 *m);
float *net_grads_f32(struct net_f32 *m);
double *net_params_f64(struct net_f64 *m);
double *net_grads_f64(struct net_f64 *m);
/* net_forward: the loss of tokens [batch, seq + 1 + mtp_depth]; keeps what the backward
 * needs. net_backward: gradients of that loss (overwritten). */
int net_forward_f32(struct net_f32 *m, const int32_t *tokens, struct net_stats *st);
int net_forward_f64(struct net_f64 *m, const int32_t *tokens, struct net_stats *st);
int net_backward_f32(struct net_f32 *m);
int net_backward_f64(struct net_f64 *m);
/* Pipeline stages (net_stage_impl.h). net_stage_forward runs chunk `chunk` of the part
 * (its layer range part.lo/hi[chunk]; the whole model when the part has no ranges) on
 * tokens [batch, seq + 1 + mtp_depth]: from `in` [batch * seq, dim] (the previous
 * stage's output; the embedding of the tokens on the model's first layer) to `out` (the
 * next stage's input), or, on the model's last layer, through the head and MTP to the
 * losses in st (st holds this chunk's balance loss on other stages). net_stage_backward
 * takes `dout` (the gradient of out; the losses' on the last) to `din` (the gradient of
 * in; into the embedding on the first), ADDING to the gradients: a step's micro-batches
 * accumulate (zero them first). MB_ERR_ARG for a chunk the part lacks or a missing in,
 * out, dout or din. */
int net_stage_forward_f32(struct net_f32 *m, int chunk, const int32_t *tokens, const float *in,
			  float *out, struct net_stats *st);
int net_stage_forward_f64(struct net_f64 *m, int chunk, const int32_t *tokens, const double *in,
			  double *out, struct net_stats *st);
int net_stage_backward_f32(struct net_f32 *m, int chunk, const float *dout, float *din);
int net_stage_backward_f64(struct net_f64 *m, int chunk, const double *dout, double *din);
/* The zero-bubble split of a stage's backward: net_stage_backward_input is
 * net_stage_backward with the weight gradients of the linear layers (FFN, experts,
 * router, head, MTP projection) deferred, their inputs kept and output gradients copied;
 * net_stage_wgrad then adds them (the W pass). What stays in the input pass: the
 * attention blocks' weight gradients (their kernels compute them with the input
 * gradient), the norms' and the embedding's. One deferred backward per chunk of a model
 * at a time (MB_ERR_ARG while that chunk's W is pending; MB_ERR_NOMEM when the queue
 * cannot grow); net_stage_wgrad(chunk) runs that chunk's. */
int net_stage_backward_input_f32(struct net_f32 *m, int chunk, const float *dout, float *din);
int net_stage_backward_input_f64(struct net_f64 *m, int chunk, const double *dout,
				 double *din);
int net_stage_wgrad_f32(struct net_f32 *m, int chunk);
int net_stage_wgrad_f64(struct net_f64 *m, int chunk);
/* net_stage_tp_reduce sums over the TP group the gradients of the tensors whose TP ranks
 * each hold a partial one (the replicated inputs of column-parallel layers): net_backward
 * does it at its end; a pipeline's stage backwards leave it to the caller, once the step's
 * micro-batches (and their W passes) have all added in. MB_OK or the collective's error. */
int net_stage_tp_reduce_f32(struct net_f32 *m);
int net_stage_tp_reduce_f64(struct net_f64 *m);
/* net_share_params_f32 makes m (a model of the same layout, created for another
 * micro-batch in flight) use owner's parameters, gradients and moments: its own
 * activations, one set of weights, the gradients accumulating in one place. */
int net_share_params_f32(struct net_f32 *m, struct net_f32 *owner);
/* net_share_weights_f32 is net_share_params_f32 but m keeps its own gradients: models
 * running side by side on threads (step --replicas) each write their own, summed after. */
int net_share_weights_f32(struct net_f32 *m, struct net_f32 *owner);
/* net_options_of_f32 returns the options the model was made with. */
const struct net_options *net_options_of_f32(const struct net_f32 *m);
/* net_fix_selection_f64 makes d's forwards keep the experts s's last forward selected
 * (same layout, same batch x seq): the FP64 reference of a low-precision step then
 * differs from it by rounding only, not by tokens routed elsewhere near a tie. */
int net_fix_selection_f64(struct net_f64 *d, const struct net_f32 *s);
/* net_tp_set gives a model on a TP part its collectives (kept by pointer; required
 * before a forward when part.tp > 1, else MB_ERR_ARG). Their time is left out of the
 * profile's phases: the harness times them. */
void net_tp_set_f32(struct net_f32 *m, const struct net_tp_comm *c);
void net_tp_set_f64(struct net_f64 *m, const struct net_tp_comm *c);
/* net_comm_set attaches the expert-parallel callbacks (kept by pointer; NULL detaches);
 * a model whose part has ep > 1 needs them before its first forward. */
void net_comm_set_f32(struct net_f32 *m, const struct net_comm *c);
void net_comm_set_f64(struct net_f64 *m, const struct net_comm *c);
/* net_profile_set attaches a clock to the f32 model (NULL detaches). */
void net_profile_set_f32(struct net_f32 *m, struct net_profile *p);
/* net_expert_load_f32 returns the last forward's tokens per expert of MoE block i
 * (routed_experts counts), or NULL. */
const long *net_expert_load_f32(const struct net_f32 *m, int block);

/* ---- checkpoints (net_ckpt.c) ---- */
/* net_save writes every tensor of w under its Hugging Face name and shape, F32, to a
 * safetensors file (atomically). net_load reads one back into w, refusing a file with a
 * tensor the model lacks, without one this layout has, or of another shape (why names
 * the tensor: MB_ERR_PARSE, MB_ERR_ARG), besides safetensors.h's own errors; a part's
 * layout takes its tensors (its slices of them) from a whole model's file. */
int net_save(const struct net_layout *L, const float *w, const char *path, char *why,
	     size_t why_len);
int net_load(const struct net_layout *L, float *w, const char *path, char *why,
	     size_t why_len);
/* net_place copies the tensors of part P's weights p into the whole layout W's weights
 * w, each at its slice (by name); MB_ERR_ARG when a tensor is not in W. */
int net_place(const struct net_layout *W, float *w, const struct net_layout *P, const float *p);

/* ---- optimizer (net_optim.c) ---- */
struct net_adamw {
	double lr, beta1, beta2, eps, weight_decay, clip;   /* clip <= 0: none */
};
void net_adamw_default(struct net_adamw *a);
/* net_grad_norm returns the global L2 norm of the trainable gradients. */
double net_grad_norm(const struct net_layout *L, const float *g);
/* net_adamw_step clips the gradients to global norm clip (scaling them in place),
 * then applies AdamW step t (1-based) with FP32 master weights w and moments m, v.
 * Returns the norm before clipping. */
double net_adamw_step(const struct net_layout *L, const struct net_adamw *a, long t,
		      float *w, float *g, float *m, float *v);
/* net_grad_sumsq_range returns the sum of squares of the trainable gradients among
 * elements [lo, hi) of the allocation (a ZeRO-1 shard; the global norm is the square root
 * of the sum over shards). On a TP part, tensors replicated over the TP group (not
 * sliced) count on tp_rank 0 alone, so a sum over the group counts them once. */
double net_grad_sumsq_range(const struct net_layout *L, const float *g, size_t lo, size_t hi);
/* net_vec_pass runs one element-wise pass over n floats on the step's threads (as many
 * as OpenBLAS has): y = x, y += x or y = x * s (y and x apart). The same bits on any
 * number of threads. */
enum net_vec_op { NET_VEC_COPY, NET_VEC_ADD, NET_VEC_SCALE };
void net_vec_pass(enum net_vec_op op, float *y, const float *x, float s, size_t n);
/* net_clip_scale is the factor clipping to a->clip makes of gradients of global norm. */
double net_clip_scale(const struct net_adamw *a, double norm);
/* net_adamw_range scales the trainable gradients among elements [lo, hi) by scale and
 * applies AdamW step t to those elements alone (each tensor's own decay rule): the update
 * of one ZeRO-1 shard, element for element the one net_adamw_step makes. w and g are
 * the whole allocation; m and v hold elements [lo, hi) only (m[0] is element lo). */
void net_adamw_range(const struct net_layout *L, const struct net_adamw *a, long t,
		     double scale, size_t lo, size_t hi, float *w, float *g, float *m, float *v);
/* net_lr_at: linear warm-up over warmup steps, then cosine from lr to min_lr at steps. */
double net_lr_at(long step, long warmup, long steps, double lr, double min_lr);
/* net_bias_update applies DeepSeek-V3's auxiliary-loss-free rule to every MoE block's
 * e_score_correction_bias from that block's loads (load[block] = E counts, NULL to
 * skip); nothing when the config has no expert_bias. */
void net_bias_update(const struct net_layout *L, float *w, const long *const *load,
		     double gamma);
/* net_adam_state_f32 returns the model's first and second moments (one allocation). */
float *net_moment1_f32(struct net_f32 *m);
float *net_moment2_f32(struct net_f32 *m);
const struct net_layout *net_layout_of_f32(const struct net_f32 *m);
/* The model's memory by term, in bytes, from the sizes of its allocations: parameters,
 * gradients, the two AdamW moments, the activations the forward keeps for the backward
 * (logits included) and scratch (packed attention weights and gradients, the
 * backward's scratch, index and routing arrays). total is their sum. */
struct net_memory {
	size_t weights, grads, optimizer, activations, scratch, total;
};
/* net_bytes_f32 returns the bytes of all the model's allocations (net_memory's total). */
size_t net_bytes_f32(const struct net_f32 *m);
/* net_memory_f32 fills the model's memory by term. */
void net_memory_f32(const struct net_f32 *m, struct net_memory *out);
/* net_memory_predict is model/memory.c's estimate for this step on one rank of dp
 * data-parallel ranks (FP32 weights, gradients, moments and activations; batch x seq
 * tokens on this rank; the moments sharded when zero1); MB_ERR_ARG when the config does
 * not validate. */
struct model_memory;
int net_memory_predict(const struct model_config *cfg, int batch, int seq, int dp, bool zero1,
		       struct model_memory *out);
/* net_memory_predict_tp is net_memory_predict for one rank of tp TP ranks (its slices;
 * memory.c splits the activations over TP as sequence parallelism would, which this
 * step does not: the activations' ratio exceeds 1 under TP). */
int net_memory_predict_tp(const struct model_config *cfg, int batch, int seq, int dp, int tp,
			  bool zero1, struct model_memory *out);
/* net_memory_predict_ep is net_memory_predict with the routed experts sharded over ep of
 * the dp ranks (a rank holds E / ep of them). */
int net_memory_predict_ep(const struct model_config *cfg, int batch, int seq, int dp, int ep,
			  bool zero1, struct model_memory *out);
/* net_memory_predict_par: both (tp TP ranks, ep EP ranks). */
int net_memory_predict_par(const struct model_config *cfg, int batch, int seq, int dp, int tp,
			   int ep, bool zero1, struct model_memory *out);
/* net_memory_predict_part is memory.c's estimate for the part this rank holds (its
 * pipeline layers, embedding and head, TP slices without sequence parallelism, its EP
 * shard of the experts), batch x seq tokens a micro-batch, in_flight micro-batches'
 * activations kept at once (the schedule's), the routed buffers as net_setup sizes
 * them (EP: for the worst case), the moments sharded when zero1. */
int net_memory_predict_part(const struct model_config *cfg, const struct net_part *part,
			    int batch, int seq, int dp, bool zero1, int in_flight,
			    struct model_memory *out);
/* net_memory_in_flight: the micro-batches of n_micro whose activations pipeline stage
 * `stage` of pp keeps at once under schedule: GPipe all of them, 1F1B up to pp - stage
 * (Narayanan et al.); the others are taken as 1F1B (interleaved and DualPipe keep more
 * on their first devices: not modelled). Note train_pp allocates a model per
 * micro-batch (n_micro of them) whatever the schedule. */
int net_memory_in_flight(const char *schedule, int pp, int stage, int n_micro);
/* net_memory_ratios: measured over predicted for weights, grads, optimizer,
 * activations (NaN for scratch, which memory.c does not model). */
#define NET_MEM_TERMS 5
void net_memory_ratios(const struct net_memory *got, const struct model_memory *want,
		       double ratio[NET_MEM_TERMS]);
/* net_adam_step_f32 is net_adamw_step on the model's own weights, gradients, moments
 * (which must be the whole allocation's: moments 0). */
double net_adam_step_f32(struct net_f32 *m, const struct net_adamw *a, long t);
/* net_bias_update_f32 is net_bias_update on the model's own weights through its table
 * (device memory included): loads per block as net_expert_load_f32 gives them. */
int net_bias_update_f32(struct net_f32 *m, const long *const *load, double gamma);

#endif
