/*
 * attnblk.h - the glue of the attention blocks on the device (the CUDA op table's MLA
 * and GQA, model/train/net_ops_attn_cuda.c): RoPE forward and backward, the strided
 * copies that build the core's k and v out of the projections (and scatter the core's
 * gradients back), the head sum of MLA's shared RoPE key gradient, BF16 widening. The
 * projections are the table's cuBLASLt GEMMs, the norms rmsnorm.h's kernels and the
 * core kernels/attention's attn_fwd_cuda / attn_bwd_cuda.
 *
 * RoPE is block_real.h's rope_rows: DeepSeek's interleaved pairs (x[2i], x[2i+1]) of
 * each dr-wide vector rotated by pos * theta^(-2i/dr), pos = pos0 + (row mod seq);
 * inverse rotates back (the backward). Angles, cos, sin and the rotation in FP64 on
 * both sides, rounded to FP32 once, so device and host agree to the last bits of the
 * device's cos / sin / pow. The CPU twins (attnblk.c) are the references of
 * tests/train_emu.cpp; the CUDA versions (attnblk.cu) take device pointers and a
 * cudaStream_t; train_nocuda.c fails them with MB_ERR_UNSUPPORTED without CUDA.
 * Copies and the head sum are bit for bit (the sum runs over heads in order, in FP32,
 * as mla_impl.h's mla_scatter).
 */
#ifndef MB_ATTNBLK_H
#define MB_ATTNBLK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* rope: rotate in place `heads` vectors of dr floats per row of `rows` rows, vector h
 * of row r at x + r * row_stride + h * head_stride. dr even. */
int attnblk_rope_cpu(float *x, long rows, int seq, int pos0, int heads, long head_stride,
		     long row_stride, int dr, double theta, int inverse);
int attnblk_rope_cuda(float *d_x, long rows, int seq, int pos0, int heads, long head_stride,
		      long row_stride, int dr, double theta, int inverse, void *stream);
/* copy: y[r * ldy + h * hy + c] = x[r * ldx + h * hx + c] for rows x heads x cols
 * (hx 0: one x row broadcast to every head); with add, y += instead. */
int attnblk_copy_cpu(long rows, int heads, int cols, const float *x, long ldx, long hx,
		     float *y, long ldy, long hy, int add);
int attnblk_copy_cuda(long rows, int heads, int cols, const float *d_x, long ldx, long hx,
		      float *d_y, long ldy, long hy, int add, void *stream);
/* headsum: y[r * ldy + c] = sum over h = 0.. of x[r * ldx + h * hx + c], in FP32. */
int attnblk_headsum_cpu(long rows, int heads, int cols, const float *x, long ldx, long hx,
			float *y, long ldy);
int attnblk_headsum_cuda(long rows, int heads, int cols, const float *d_x, long ldx, long hx,
			 float *d_y, long ldy, void *stream);
/* widen: y[i] = the float of BF16 bits x[i] (exact). */
int attnblk_widen_cuda(const uint16_t *d_x, long n, float *d_y, void *stream);

#ifdef __cplusplus
}
#endif

#endif
