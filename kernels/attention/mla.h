/*
 * mla.h - attention blocks on the CPU, forward and backward, around the attention core
 * (attention.h): DeepSeek-V3's Multi-head Latent Attention (MLA), its absorbed decode,
 * and the MHA/GQA block of the same width it is compared with.
 *
 * MLA (DeepSeek-V2, arXiv 2405.04434, Section 2.1; DeepSeek-V3 inference/model.py),
 * T = batch * seq tokens, H heads, dn nope, dr rope, dv value head sizes:
 *   q path   c_q = x W_qa [T, q_lora]; q = rmsnorm(c_q) * g_q W_qb    (q_lora_rank > 0)
 *            q = x W_qb                                               (q_lora_rank == 0)
 *            q [T, H, dn + dr]
 *   kv path  [c_kv | k_r] = x W_kva [T, kv_lora + dr]; l = rmsnorm(c_kv) * g_kv
 *            [k_nope | v] = l W_kvb [T, H, dn + dv]
 *   RoPE     on q[.., dn:] and on k_r (one key shared by all heads), position = index in
 *            the sequence; k = [k_nope | rope(k_r) for every head]
 *   core     causal, d_qk = dn + dr, d_v = dv, scale 1/sqrt(dn + dr)
 *   out      y = o W_o, o [T, H * dv], y [T, dim]
 * RoPE convention: DeepSeek's inference/model.py one, interleaved pairs: (r[2i],
 * r[2i+1]) rotated by pos * theta^(-2i/dr). No YaRN scaling (training at the base length).
 *
 * Absorbed decode (DeepSeek-V2, Section 2.1.3): per head, W_kvb = [W_uk | W_uv];
 * q_nope . (l W_uk) = (q_nope W_uk^T) . l, so the query becomes [q_nope W_uk^T | q_rope]
 * (kv_lora + dr wide) against cache rows [l | rope(k_r)]; the output l-weighted sum goes
 * through W_uv afterwards. The core runs with kv_heads 1, d_qk = kv_lora + dr,
 * d_v = kv_lora and v == k (one cache read per position), scale still 1/sqrt(dn + dr).
 *
 * MHA/GQA block (the comparison point): q = x W_q [T, H, hd], k = x W_k, v = x W_v
 * [T, G, hd], RoPE (same convention) on the whole head of q and k when rope is set,
 * core with d_qk = d_v = hd, scale 1/sqrt(hd), y = o W_o. No biases.
 *
 * Weights are one vector per block (offsets from mla_layout / gqa_layout); every matrix
 * is row-major [in, out] (y = x W). Gradients come in the same layout. The forward
 * saves what the backward needs in a workspace (mla_workspace_count elements).
 * Two precisions: _f32 (OpenBLAS SGEMM projections, the core and norms accumulate in
 * double) and _f64 (plain-loop FP64 projections, ref_dgemm.h, never the BLAS: the
 * reference that judges _f32 and the CUDA kernels, and finite-difference checks).
 *
 * Every function returns MB_OK, MB_ERR_ARG (invalid config or sizes) or MB_ERR_NOMEM.
 */
#ifndef MB_MLA_H
#define MB_MLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An attention block's linear layers under a training recipe's rounding (BF16, or FP8
 * with 1x128 tiles): the projections' inputs (Fprop), their output gradients (Dgrad) and
 * both operands of Wgrad (tiled along the tokens) go through act, dequant(quant(x)) of
 * x [rows, cols] into y [rows, cols], or of x^T into y [cols, rows] when transposed;
 * FP32 GEMMs on the rounded operands. The weights arrive rounded by the caller. Used by
 * the float blocks only (the FP64 ones are the reference); NULL: no rounding. */
struct attn_round {
	void *ctx;
	void (*act)(void *ctx, const float *x, int rows, int cols, bool transposed, float *y);
};

/* attn_round_linear_fwd / _bwd are block_real.h's linear_fwd / linear_bwd with r's
 * rounding of the operands (w [in, out]; dw overwritten, dx added when accumulate). */
void attn_round_linear_fwd(const struct attn_round *r, int t, int in, int out, const float *x,
			   const float *w, float *y);
void attn_round_linear_bwd(const struct attn_round *r, int t, int in, int out, const float *x,
			   const float *w, const float *dy, float *dx, bool accumulate, float *dw);

struct mla_config {
	int dim, heads;
	int q_lora_rank;      /* 0: queries not compressed (DeepSeek-V2-Lite) */
	int kv_lora_rank;
	int nope, rope, v_dim;
	double rope_theta;    /* 10000 in DeepSeek-V3 */
	double eps;           /* RMSNorm epsilon, 1e-6 */
	const struct attn_round *round;   /* the projections' rounding, NULL: none */
};

/* Offsets (elements) of each weight in the parameter vector. With q_lora_rank == 0,
 * wq_a and q_norm are empty and wq_b is [dim, H*(nope+rope)]. */
struct mla_layout {
	size_t wq_a, q_norm, wq_b, wkv_a, kv_norm, wkv_b, wo, total;
};

/* mla_check validates a config (sizes >= 1, q_lora_rank >= 0, rope even, theta > 0,
 * eps > 0, sizes small enough for int indexing); why says what is wrong. */
int mla_check(const struct mla_config *c, char *why, size_t why_len);
/* mla_layout_of fills the parameter layout of a (checked) config. */
void mla_layout_of(const struct mla_config *c, struct mla_layout *l);
/* Offsets (elements) of the activations a forward saves in its workspace, T tokens:
 * cq, cqn [T, q_lora] (q latent before / after its norm; empty without q_lora);
 * q [T, H, dn+dr] (rotated); kva [T, kv_lora + dr] (latent before its norm | k_r before
 * RoPE); latn [T, kv_lora]; krr [T, dr] (rotated); kv [T, H, dn + dv]; the core's
 * k [T, H, dn+dr], v [T, H, dv], o [T, H, dv], lse [B, H, S]. */
struct mla_ws {
	size_t cq, cqn, q, kva, latn, krr, kv, k, v, o, lse, total;
};
/* mla_ws_layout fills the workspace offsets of a forward of batch x seq. */
int mla_ws_layout(const struct mla_config *c, int batch, int seq, struct mla_ws *w);
/* mla_workspace_count returns the workspace elements a forward of batch x seq saves,
 * 0 when the config or sizes are invalid. */
size_t mla_workspace_count(const struct mla_config *c, int batch, int seq);

/* mla_fwd: y [B*S, dim] from x [B*S, dim] and weights w; ws receives the activations. */
int mla_fwd_f32(const struct mla_config *c, int batch, int seq, const float *w,
		const float *x, float *y, float *ws);
int mla_fwd_f64(const struct mla_config *c, int batch, int seq, const double *w,
		const double *x, double *y, double *ws);
/* mla_bwd: from dy and the forward's ws, dx [B*S, dim] and dw (the layout of w). */
int mla_bwd_f32(const struct mla_config *c, int batch, int seq, const float *w,
		const float *x, const float *ws, const float *dy, float *dx, float *dw);
int mla_bwd_f64(const struct mla_config *c, int batch, int seq, const double *w,
		const double *x, const double *ws, const double *dy, double *dx, double *dw);

/* The float block on the SGEMM attention core (attention_blas.c), for training. */
int mla_fwd_f32_blas(const struct mla_config *c, int batch, int seq, const float *w,
		     const float *x, float *y, float *ws);
int mla_bwd_f32_blas(const struct mla_config *c, int batch, int seq, const float *w,
		     const float *x, const float *ws, const float *dy, float *dx, float *dw);

/* mla_cache_width is kv_lora_rank + rope: the elements one position caches per layer. */
int mla_cache_width(const struct mla_config *c);
/* mla_cache_from_ws copies the latent and the rotated RoPE key of a forward's ws into
 * cache [batch, cache_ctx, width] (positions 0..min(seq, cache_ctx)-1). */
int mla_cache_from_ws_f32(const struct mla_config *c, int batch, int seq, const float *ws,
			  int cache_ctx, float *cache);
int mla_cache_from_ws_f64(const struct mla_config *c, int batch, int seq, const double *ws,
			  int cache_ctx, double *cache);
/* mla_decode: one new token per sequence, x [batch, dim], at position ctx - 1; its
 * cache row (ctx - 1) is written, then it attends to rows 0..ctx-1 with absorbed
 * weights; y [batch, dim]. */
int mla_decode_f32(const struct mla_config *c, int batch, int ctx, const float *w,
		   const float *x, float *cache, float *y);
int mla_decode_f64(const struct mla_config *c, int batch, int ctx, const double *w,
		   const double *x, double *cache, double *y);

/* ---- the MHA/GQA block (gqa.c) ---- */

struct gqa_config {
	int dim, heads, kv_heads, head_dim;  /* MHA: kv_heads == heads */
	bool rope;                           /* RoPE on the whole head of q and k */
	double rope_theta;
	const struct attn_round *round;      /* the projections' rounding, NULL: none */
};

struct gqa_layout {
	size_t wq, wk, wv, wo, total;
};

int gqa_check(const struct gqa_config *c, char *why, size_t why_len);
void gqa_layout_of(const struct gqa_config *c, struct gqa_layout *l);
size_t gqa_workspace_count(const struct gqa_config *c, int batch, int seq);
int gqa_fwd_f32(const struct gqa_config *c, int batch, int seq, const float *w,
		const float *x, float *y, float *ws);
int gqa_fwd_f64(const struct gqa_config *c, int batch, int seq, const double *w,
		const double *x, double *y, double *ws);
int gqa_bwd_f32(const struct gqa_config *c, int batch, int seq, const float *w,
		const float *x, const float *ws, const float *dy, float *dx, float *dw);
int gqa_bwd_f64(const struct gqa_config *c, int batch, int seq, const double *w,
		const double *x, const double *ws, const double *dy, double *dx, double *dw);

int gqa_fwd_f32_blas(const struct gqa_config *c, int batch, int seq, const float *w,
		     const float *x, float *y, float *ws);
int gqa_bwd_f32_blas(const struct gqa_config *c, int batch, int seq, const float *w,
		     const float *x, const float *ws, const float *dy, float *dx, float *dw);

/* ---- decode traffic ---- */

/* Bytes one cached position costs per layer at dtype_bytes per element: MLA
 * (kv_lora + rope), MHA/GQA 2 * kv_heads * head_dim. A decode step of one sequence at
 * context ctx reads ctx times this per layer. */
uint64_t mla_kv_bytes_per_pos(const struct mla_config *c, int dtype_bytes);
uint64_t gqa_kv_bytes_per_pos(const struct gqa_config *c, int dtype_bytes);

#endif
