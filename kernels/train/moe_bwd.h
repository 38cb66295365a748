/*
 * moe_bwd.h - the MoE layer's backward pieces that are not GEMMs, and the balancing step
 * on the device. CPU reference in moe_bwd.c; CUDA in moe_bwd.cu (train_nocuda.c returns
 * MB_ERR_UNSUPPORTED without CUDA). The forward is kernels/moe (route.h, permute.h).
 *
 * Shape letters: T tokens, K experts per token, E routed experts, H hidden, P rows of the
 * expert-major layout (permute.h: each expert's rows padded to 128).
 *
 * Router backward. DeepSeek-V3's gate (2.1.2, route.h): s = sigmoid(logits) over all E;
 * the top-K selection (by s + bias) is held fixed; for the selected j = 0..K-1,
 *   w_j = route_scale * s_j / Z,  Z = sum_k s_k
 * so from the gating weights' gradient dw (what the combine's backward gives):
 *   ds_j = route_scale / Z * (dw_j - sum_k dw_k s_k / Z);  dlogit_j = ds_j s_j (1 - s_j)
 * and dlogit = 0 for the experts not selected (the bias carries no gradient).
 *
 * Combine backward. The combine (permute_reduce with weights) is out[t] = sum_j w[t, j]
 * y[row(t, j)] over the token's rows of the expert outputs y[P, H]; its backward is
 *   dy[row(t, j)] = w[t, j] * dout[t]      (the gather of dout into expert-major order,
 *                                           weighted; padding rows 0)
 *   dw[t, j] = dot(y[row(t, j)], dout[t])  (the gating weights' gradient)
 * with rows and weights as permute_experts lays them out for one rank (copies = tokens:
 * copy_rows, copy_weights, row_copy). y and dy are BF16 (the grouped GEMM's output and
 * input), dout and dw FP32.
 */
#ifndef MB_MOE_BWD_H
#define MB_MOE_BWD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_BWD_MAX_TOPK 32   /* the router backward keeps one token's K in one warp */

/* moe_router_bwd_cpu writes dlogits[T, E] from logits[T, E], the selection
 * topk_idx[T, K] and dw[T, K] (FP64 inside). Returns MB_OK or MB_ERR_ARG. */
int moe_router_bwd_cpu(const float *logits, const int32_t *topk_idx, const float *dw,
		       long tokens, int experts, int topk, float route_scale, float *dlogits);
/* moe_combine_bwd_cpu writes dy[P, H] and dw[T, K] (dw 0 where rows is -1). rows and w
 * are [T, K] (a token's rows first, then -1); row_token[P] is -1 on padding rows.
 * Returns MB_OK or MB_ERR_ARG. */
int moe_combine_bwd_cpu(const uint16_t *y, const float *dout, const int32_t *rows,
			const float *w, long tokens, int topk, int hidden,
			const int32_t *row_token, long rows_padded, uint16_t *dy, float *dw);

/* CUDA versions (device pointers, stream a cudaStream_t, asynchronous). They return
 * MB_OK, MB_ERR_ARG (sizes; K > MOE_BWD_MAX_TOPK), MB_ERR_CUDA, or MB_ERR_UNSUPPORTED
 * without CUDA.
 * moe_router_bwd_cuda: one warp per token.
 * moe_combine_bwd_cuda: one block per token (dot products: block tree in FP32), then
 *   the padding rows zeroed.
 * moe_expert_load_cuda: load[E] = token copies per expert (integer atomics: exact), the
 *   counts route_count gives.
 * moe_bias_update_cuda: route_bias_update on the device (bias += gamma * sign(mean load -
 *   load)), bit for bit. */
int moe_router_bwd_cuda(const float *d_logits, const int32_t *d_topk_idx, const float *d_dw,
			long tokens, int experts, int topk, float route_scale, float *d_dlogits,
			void *stream);
int moe_combine_bwd_cuda(const uint16_t *d_y, const float *d_dout, const int32_t *d_rows,
			 const float *d_w, long tokens, int topk, int hidden,
			 const int32_t *d_row_token, long rows_padded, uint16_t *d_dy,
			 float *d_dw, void *stream);
int moe_expert_load_cuda(const int32_t *d_topk_idx, long tokens, int topk, int experts,
			 int32_t *d_load, void *stream);
int moe_bias_update_cuda(float *d_bias, const int32_t *d_load, int experts, float gamma,
			 void *stream);

#ifdef __cplusplus
}
#endif

#endif
