/*
 * train_nocuda.c - the CUDA functions of kernels/train (embedding.h, rmsnorm.h, swiglu.h,
 * xent.h, optim.h, moe_bwd.h, netops.h, attnblk.h) for builds without CUDA: each fails
 * with MB_ERR_UNSUPPORTED (the build compiles this file or the .cu files, never both).
 */
#include "fp8_layout.h"
#include "embedding.h"
#include "rmsnorm.h"
#include "swiglu.h"
#include "xent.h"
#include "optim.h"
#include "moe_bwd.h"
#include "netops.h"
#include "attnblk.h"
#include "status.h"

/* embedding_fwd_cuda fails: this build has no CUDA. */
int embedding_fwd_cuda(const float *d_table, int vocab, const int32_t *d_ids, long tokens,
		       int dim, float *d_out, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* embedding_bwd_cuda fails: this build has no CUDA. */
int embedding_bwd_cuda(const float *d_dout, const int32_t *d_ids, long tokens, int dim,
		       int vocab, float *d_dtable, void *d_work, size_t work_bytes, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* rmsnorm_fwd_cuda fails: this build has no CUDA. */
int rmsnorm_fwd_cuda(const float *d_x, const float *d_gain, long rows, int dim, float eps,
		     float *d_y, float *d_rstd, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* rmsnorm_bwd_cuda fails: this build has no CUDA. */
int rmsnorm_bwd_cuda(const float *d_dy, const float *d_x, const float *d_gain,
		     const float *d_rstd, long rows, int dim, float *d_dx, float *d_dgain,
		     void *d_work, size_t work_bytes, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* swiglu_fwd_cuda fails: this build has no CUDA. */
int swiglu_fwd_cuda(const float *d_gate, const float *d_up, long rows, int cols, long ld,
		    float *d_h, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* swiglu_bwd_cuda fails: this build has no CUDA. */
int swiglu_bwd_cuda(const float *d_dh, const float *d_gate, const float *d_up, long rows,
		    int cols, long ld, float *d_dgate, float *d_dup, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* xent_cuda fails: this build has no CUDA. */
int xent_cuda(const void *d_logits, enum xent_dtype dtype, const int32_t *d_targets, long rows,
	      int vocab, float dscale, float *d_losses, void *d_dlogits, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* adamw_cuda fails: this build has no CUDA. */
int adamw_cuda(const struct adamw_config *c, const struct adamw_segment *d_segs, int nsegs,
	       long n, float *d_param, const float *d_grad, float *d_m, float *d_v,
	       const float *d_grad_scale, uint16_t *d_param_bf16, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* grad_norm_cuda fails: this build has no CUDA. */
int grad_norm_cuda(const float *d_g, long n, float max_norm, float *d_norm, float *d_scale,
		   void *d_work, size_t work_bytes, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* moe_router_bwd_cuda fails: this build has no CUDA. */
int moe_router_bwd_cuda(const float *d_logits, const int32_t *d_topk_idx, const float *d_dw,
			long tokens, int experts, int topk, float route_scale, float *d_dlogits,
			void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* moe_combine_bwd_cuda fails: this build has no CUDA. */
int moe_combine_bwd_cuda(const uint16_t *d_y, const float *d_dout, const int32_t *d_rows,
			 const float *d_w, long tokens, int topk, int hidden,
			 const int32_t *d_row_token, long rows_padded, uint16_t *d_dy,
			 float *d_dw, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* moe_expert_load_cuda fails: this build has no CUDA. */
int moe_expert_load_cuda(const int32_t *d_topk_idx, long tokens, int topk, int experts,
			 int32_t *d_load, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* moe_bias_update_cuda fails: this build has no CUDA. */
int moe_bias_update_cuda(float *d_bias, const int32_t *d_load, int experts, float gamma,
			 void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* The op table's device kernels (netops.h): each fails, this build has no CUDA. */

int netop_add_cuda(float *d_y, const float *d_x, long n, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_scale_cuda(float *d_y, float s, long n, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_transpose_cuda(int rows, int cols, const float *d_x, float *d_y, int add,
			 void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_concat_cuda(long rows, int n, float *d_a, float *d_b, float *d_y, int back,
		      void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_permute_rows_cuda(const float *d_x, const int32_t *d_order, long rows, int topk,
			    int dim, float *d_y, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_unpermute_add_cuda(const float *d_y, const float *d_w, const int32_t *d_order,
			     long rows, int topk, int dim, float *d_out, int32_t *d_pos,
			     void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_combine_bwd_cuda(const float *d_dout, const float *d_y, const float *d_w,
			   const int32_t *d_order, long rows, int topk, int dim, float *d_dy,
			   float *d_dw, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_swiglu_bwd_cuda(const float *d_dh, const float *d_gate, const float *d_up, long rows,
			  int cols, float *d_dgate, float *d_dup, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_ce_max_cuda(const float *d_lg, long rows, long vocab, double *d_mx, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_ce_sum_cuda(float *d_lg, long rows, long vocab, long v0, const int32_t *d_tgt,
		      const double *d_mx, double *d_sum, double *d_ly, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_ce_grad_cuda(float *d_lg, long rows, long vocab, long v0, const int32_t *d_tgt,
		       const double *d_mx, const double *d_sum, const double *d_ly, double wt,
		       double *d_loss, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_gate_bwd_cuda(const float *d_s, const float *d_fbal, const int32_t *d_idx,
			const float *d_wts, const float *d_dw, long tokens, int seq, int experts,
			int topk, double route_scale, double alpha, float *d_ds, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_balance_cuda(const int32_t *d_idx, const float *d_s, int batch, int seq, int experts,
		       int topk, float *d_fbal, double *d_rows, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_route_post_cuda(float *d_s, const int32_t *d_idx, long tokens, int experts, int topk,
			  double route_scale, float *d_wts, int32_t *d_order, int32_t *d_eoff,
			  void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_rstd_cuda(const float *d_x, long rows, int dim, float eps, float *d_rstd,
		    void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int netop_round_bf16_cuda(const float *d_x, long n, float *d_y, uint16_t *d_bits,
			  void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int attnblk_rope_cuda(float *d_x, long rows, int seq, int pos0, int heads, long head_stride,
		      long row_stride, int dr, double theta, int inverse, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int attnblk_copy_cuda(long rows, int heads, int cols, const float *d_x, long ldx, long hx,
		      float *d_y, long ldy, long hy, int add, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int attnblk_headsum_cuda(long rows, int heads, int cols, const float *d_x, long ldx, long hx,
			 float *d_y, long ldy, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int attnblk_widen_cuda(const uint16_t *d_x, long n, float *d_y, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int fp8lay_pad_cuda(int rows, int cols, const float *d_x, int trans, int yrows, int ld,
		    float *d_y, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int fp8lay_scales_cuda(int sr, int sc, const float *d_in, int vec, float *d_out, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

int fp8lay_dequant_cuda(int rows, int cols, const uint8_t *d_q, const float *d_scale,
			int tile_rows, float *d_y, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}
