/*
 * netops.h - the FP32 device kernels the CUDA op table of the training step
 * (model/train/net_ops_cuda.c) needs beside kernels/train's and kernels/moe's: the
 * layout copies, the residual add, permutation and its backward, the cross-entropy's
 * three passes, the gate's backward, the balance loss, the expert order, RMSNorm's
 * 1/rms, BF16 rounding. Each is the device twin of one CPU entry of NET_OPS_MODEL
 * (model/train/net_ops_model_impl.h, net_ops.h says what it computes), checked against
 * it on the host by tests/train_emu.cpp. Device pointers, stream a cudaStream_t,
 * asynchronous; each returns MB_OK, MB_ERR_ARG, MB_ERR_CUDA, or MB_ERR_UNSUPPORTED
 * without CUDA (train_nocuda.c).
 *
 * Where the CPU sums in a fixed sequential order the device sums in another fixed order
 * (a block tree; per token over its K rows rather than in expert order), so results agree
 * to FP32 rounding, not bit for bit, except where a line says so.
 */
#ifndef MB_NETOPS_H
#define MB_NETOPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y += x (n elements). */
int netop_add_cuda(float *d_y, const float *d_x, long n, void *stream);
/* y *= s (n elements). Bit for bit. */
int netop_scale_cuda(float *d_y, float s, long n, void *stream);
/* add 0: y [cols, rows] = x [rows, cols]^T; add 1: y [rows, cols] += x [cols, rows]^T.
 * Bit for bit. */
int netop_transpose_cuda(int rows, int cols, const float *d_x, float *d_y, int add,
			 void *stream);
/* back 0: y [rows, 2n] = [a | b]; back 1: a, b = the halves of y. Bit for bit. */
int netop_concat_cuda(long rows, int n, float *d_a, float *d_b, float *d_y, int back,
		      void *stream);
/* y[r] = x[order[r] / topk] (rows [rows, dim]). Bit for bit. */
int netop_permute_rows_cuda(const float *d_x, const int32_t *d_order, long rows, int topk,
			    int dim, float *d_y, void *stream);
/* out[t] += sum over the token's K rows r of w[order[r]] y[r] (w NULL: 1), rows = T K,
 * the token's rows in k order; d_pos: [rows] int32 workspace. */
int netop_unpermute_add_cuda(const float *d_y, const float *d_w, const int32_t *d_order,
			     long rows, int topk, int dim, float *d_out, int32_t *d_pos,
			     void *stream);
/* dy[r] = w[order[r]] dout[order[r] / K]; dw[order[r]] = dout . y[r] (block tree). */
int netop_combine_bwd_cuda(const float *d_dout, const float *d_y, const float *d_w,
			   const int32_t *d_order, long rows, int topk, int dim, float *d_dy,
			   float *d_dw, void *stream);
/* SwiGLU's backward on separate [rows, cols] gate and up; dh may alias dup. */
int netop_swiglu_bwd_cuda(const float *d_dh, const float *d_gate, const float *d_up, long rows,
			  int cols, float *d_dgate, float *d_dup, void *stream);
/* The cross-entropy's passes (net_ops.h ce_max, ce_sum, ce_grad), one block per row;
 * ce_grad writes each row's loss into d_loss [rows] (the caller sums them). */
int netop_ce_max_cuda(const float *d_lg, long rows, long vocab, double *d_mx, void *stream);
int netop_ce_sum_cuda(float *d_lg, long rows, long vocab, long v0, const int32_t *d_tgt,
		      const double *d_mx, double *d_sum, double *d_ly, void *stream);
int netop_ce_grad_cuda(float *d_lg, long rows, long vocab, long v0, const int32_t *d_tgt,
		       const double *d_mx, const double *d_sum, const double *d_ly, double wt,
		       double *d_loss, void *stream);
/* gate_bwd (net_ops.h), one thread per token, sums in FP64 in the CPU's order: bit for
 * bit up to the device's division and the sigmoid's rounding. */
int netop_gate_bwd_cuda(const float *d_s, const float *d_fbal, const int32_t *d_idx,
			const float *d_wts, const float *d_dw, long tokens, int seq, int experts,
			int topk, double route_scale, double alpha, float *d_ds, void *stream);
/* balance_fwd: f [B, E] (adds in the CPU's order: bit for bit) and each position's
 * f . s / sum(s) / S into d_rows [B S] (the caller sums them in order). */
int netop_balance_cuda(const int32_t *d_idx, const float *d_s, int batch, int seq, int experts,
		       int topk, float *d_fbal, double *d_rows, void *stream);
/* The gate after the selection: s = sigmoid(s) in place; wts [T, K] = route_scale s_idx /
 * sum; order [T K] and eoff [E + 1] of the rows in expert order (bit for bit). */
int netop_route_post_cuda(float *d_s, const int32_t *d_idx, long tokens, int experts, int topk,
			  double route_scale, float *d_wts, int32_t *d_order, int32_t *d_eoff,
			  void *stream);
/* rstd[r] = 1 / sqrt(mean(x[r]^2) + eps) (rmsnorm_bwd_cuda's input). */
int netop_rstd_cuda(const float *d_x, long rows, int dim, float eps, float *d_rstd,
		    void *stream);
/* y = BF16(x) as float (nearest even), or bf16 bits into d_bits when not NULL. */
int netop_round_bf16_cuda(const float *d_x, long n, float *d_y, uint16_t *d_bits,
			  void *stream);

#ifdef __cplusplus
}
#endif

#endif
