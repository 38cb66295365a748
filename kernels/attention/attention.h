/*
 * attention.h - the attention core: causal scaled-dot-product attention with separate
 * query/key and value head sizes (MLA: d_qk 192 = 128 nope + 64 rope, d_v 128) and
 * key/value heads shared by groups of query heads (GQA; MHA when kv_heads == heads).
 *
 * Shapes (row-major, B batch, S sequence, H query heads, G = kv_heads):
 *   q   [B, S, H, d_qk]      k [B, S, G, d_qk]      v [B, S, G, d_v]
 *   o   [B, S, H, d_v]       lse [B, H, S]  (natural log-sum-exp of the scaled scores)
 * Query head h reads key/value head h / (H / G). Scores are scale * q.k (scale usually
 * 1/sqrt(d_qk)); with causal, position i sees keys 0..i.
 *
 * Decode (one new token per sequence against a cache of ctx positions):
 *   q [B, H, d_qk]; k cache [B, ctx, G, k_stride] (first d_qk used);
 *   v cache [B, ctx, G, v_stride] (first d_v used); o [B, H, d_v]; lse [B, H].
 * MLA's absorbed decode is the case G = 1, d_qk = kv_lora + rope = 576, d_v = kv_lora =
 * 512, with v the same pointer as k (the latent is both key and value), so one cache
 * row of 576 values is read once per position.
 *
 * CPU reference (attention.c): float in and out, double accumulation.
 * CUDA (attention.cu, built with CUDA; attention_nocuda.c returns
 * MB_ERR_UNSUPPORTED otherwise): BF16 in and out (uint16_t bits), FP32 accumulation and
 * lse, on the given cudaStream_t.
 *   v1: flash-style tiles, online softmax, lse saved; backward recomputes the
 *       probabilities from lse (dq accumulated in FP32 workspace).
 */
#ifndef MB_ATTENTION_H
#define MB_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct attn_shape {
	int batch, seq, heads, kv_heads, d_qk, d_v;
	bool causal;
	float scale;
};

struct attn_decode_shape {
	int batch, ctx, heads, kv_heads, d_qk, d_v;
	int k_stride, v_stride;   /* elements between consecutive (position, head) rows */
	float scale;
};

/* attn_shape_check returns MB_OK, or MB_ERR_ARG with the problem in why (sizes < 1,
 * kv_heads not dividing heads). */
int attn_shape_check(const struct attn_shape *s, char *why, size_t why_len);

/* CPU reference. Returns MB_OK, MB_ERR_ARG or MB_ERR_NOMEM. */
int attn_fwd_cpu(const struct attn_shape *s, const float *q, const float *k, const float *v,
		 float *o, float *lse);
/* attn_bwd_cpu: given dout [B,S,H,d_v] and the forward's o and lse, writes dq, dk, dv
 * (same shapes as q, k, v). */
int attn_bwd_cpu(const struct attn_shape *s, const float *q, const float *k, const float *v,
		 const float *o, const float *dout, const float *lse, float *dq, float *dk,
		 float *dv);
int attn_decode_cpu(const struct attn_decode_shape *s, const float *q, const float *k,
		    const float *v, float *o, float *lse);
/* The same three in double in and out (the float versions convert and call these), for
 * finite-difference gradient checks of the core and of the blocks built on it. */
int attn_fwd_cpu_f64(const struct attn_shape *s, const double *q, const double *k,
		     const double *v, double *o, double *lse);
int attn_bwd_cpu_f64(const struct attn_shape *s, const double *q, const double *k,
		     const double *v, const double *o, const double *dout, const double *lse,
		     double *dq, double *dk, double *dv);
int attn_decode_cpu_f64(const struct attn_decode_shape *s, const double *q, const double *k,
			const double *v, double *o, double *lse);

/* The same core in FP32 on SGEMM (attention_blas.c): S x S scores per head, softmax
 * sums in double; the CPU training step's core. Returns MB_OK, MB_ERR_ARG, MB_ERR_NOMEM. */
int attn_fwd_blas(const struct attn_shape *s, const float *q, const float *k, const float *v,
		  float *o, float *lse);
int attn_bwd_blas(const struct attn_shape *s, const float *q, const float *k, const float *v,
		  const float *o, const float *dout, const float *lse, float *dq, float *dk,
		  float *dv);

/* CUDA v1 (device pointers; stream is a cudaStream_t). */
int attn_fwd_cuda(const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
		  const uint16_t *d_v, uint16_t *d_o, float *d_lse, void *stream);
/* attn_bwd_cuda_workspace returns the bytes of FP32 workspace attn_bwd_cuda needs. */
size_t attn_bwd_cuda_workspace(const struct attn_shape *s);
int attn_bwd_cuda(const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
		  const uint16_t *d_v, const uint16_t *d_o, const uint16_t *d_dout,
		  const float *d_lse, uint16_t *d_dq, uint16_t *d_dk, uint16_t *d_dv,
		  void *d_work, void *stream);
/* attn_decode_cuda_workspace returns the bytes of FP32 workspace attn_decode_cuda needs
 * for s on the current device (the split count follows its SM count); 0 for a shape
 * with a size below 1 or kv_heads not dividing heads, or when the device cannot be
 * asked. Call it at setup and allocate once: attn_decode_cuda allocates nothing. */
size_t attn_decode_cuda_workspace(const struct attn_decode_shape *s);
/* attn_decode_cuda: d_work (16-byte aligned) holds work_bytes, at least
 * attn_decode_cuda_workspace(s); less is MB_ERR_ARG. */
int attn_decode_cuda(const struct attn_decode_shape *s, const uint16_t *d_q,
		     const uint16_t *d_k, const uint16_t *d_v, uint16_t *d_o, float *d_lse,
		     void *d_work, size_t work_bytes, void *stream);

#ifdef __cplusplus
}
#endif

#endif
