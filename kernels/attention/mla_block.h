/*
 * mla_block.h - internal interface between mla_cuda.c and the MLA block's small
 * kernels (mla_block.cu). Not for callers outside kernels/: they use mla_cuda.h.
 *
 * Every tensor is BF16 on the device (uint16_t bits) unless typed float; row-major,
 * rows `ld` elements apart where an ld is given. Each launcher only enqueues on
 * `stream` (a cudaStream_t) and returns MB_OK or MB_ERR_CUDA (launch failed).
 * T = batch * seq tokens, H heads, dn nope, dr rope, dv value, kvl kv_lora_rank.
 */
#ifndef MB_MLA_BLOCK_H
#define MB_MLA_BLOCK_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* mla_rmsnorm_fwd_cuda: y[r] = x[r] / rms(x[r]) * g, rows of n (x rows ldx apart,
 * y dense [rows, n]). */
int mla_rmsnorm_fwd_cuda(int rows, int n, const uint16_t *x, int ldx, const uint16_t *g,
			 float eps, uint16_t *y, void *stream);
/* mla_rmsnorm_bwd_cuda: from dy [rows, n], dx (rows lddx apart) = inv g dy -
 * x inv^3 sum(g dy x) / n, and dg [n] (FP32, overwritten) = sum_r dy x inv; rstd
 * [rows] FP32 scratch (receives inv per row). */
int mla_rmsnorm_bwd_cuda(int rows, int n, const uint16_t *x, int ldx, const uint16_t *g,
			 float eps, const uint16_t *dy, uint16_t *dx, int lddx, float *rstd,
			 float *dg, void *stream);
/* mla_rope_cuda rotates the first dr elements of `rows` rows of src (lds apart) into
 * dst (ldd apart; dst == src in place is fine), pairs (2i, 2i+1) by pos *
 * theta^(-2i/dr), pos = (row / per_pos) mod seq; inverse rotates back (the backward). */
int mla_rope_cuda(int rows, int per_pos, int seq, int dr, double theta, bool inverse,
		  const uint16_t *src, int lds, uint16_t *dst, int ldd, void *stream);
/* mla_assemble_cuda builds the core's k [T, H, dn+dr] = [kv[.., :dn] | krr of the
 * token, every head] and v [T, H, dv] = kv[.., dn:], from kv [T, H, dn+dv] and the
 * rotated shared key krr [T, dr]. */
int mla_assemble_cuda(int t, int heads, int dn, int dr, int dv, const uint16_t *kv,
		      const uint16_t *krr, uint16_t *k, uint16_t *v, void *stream);
/* mla_scatter_cuda is assemble's backward for the per-head part: dkv [T, H, dn+dv] =
 * [dk[.., :dn] | d_v]. */
int mla_scatter_cuda(int t, int heads, int dn, int dr, int dv, const uint16_t *dk,
		     const uint16_t *d_v, uint16_t *dkv, void *stream);
/* mla_rope_key_grad_cuda writes dkva[r, kvl:kvl+dr] (rows kvl+dr apart) = the inverse
 * rotation of sum over heads of dk[r, h, dn:] (FP32 sum), position r mod seq. */
int mla_rope_key_grad_cuda(int t, int heads, int seq, int dn, int dr, int kvl, double theta,
			   const uint16_t *dk, uint16_t *dkva, void *stream);

#ifdef __cplusplus
}
#endif

#endif
