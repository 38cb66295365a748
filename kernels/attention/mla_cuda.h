/*
 * mla_cuda.h - the MLA block (mla.h) forward and backward on CUDA: the same structure,
 * parameter layout (struct mla_layout, every matrix row-major [in, out]), RoPE
 * convention (interleaved pairs, position = index in the sequence) and RMSNorm as the
 * CPU reference mla_fwd_f32 / mla_bwd_f32, in BF16 with FP32 math.
 *
 *   projections  cuBLASLt, BF16 operands, FP32 compute; activations and activation
 *                gradients BF16, weight gradients FP32 (the five matrices as GEMM
 *                outputs, the two RMSNorm gains reduced with FP32 atomics)
 *   RMSNorm      one CTA per row, FP32 sums (mla_block.cu); RoPE, the split of
 *                [k_nope | v] and the broadcast of the shared RoPE key, and their
 *                backward (dk_rope summed over heads in FP32): mla_block.cu
 *   core         attention.h's attn_fwd_cuda / attn_bwd_cuda (d_qk, d_v multiples of
 *                16 up to 256)
 *
 * One object holds the cuBLASLt handle, one plan per GEMM (15 at most) and every device
 * buffer for one config and batch x seq. Life cycle:
 *   mla_cuda_create        plans and buffers on `stream` (a cudaStream_t)
 *   mla_cuda_upload        host floats -> device BF16: weights w (mla_layout), x and,
 *                          when given, dy [B*S, dim]
 *   mla_cuda_fwd           enqueue the forward: y, and the activations the backward uses
 *   mla_cuda_bwd           enqueue the backward (after a forward on the same inputs):
 *                          dx and dw (every weight, both gains included)
 *   mla_cuda_poison        y, dx, dw := NaN bytes, so an unwritten element fails checks
 *   mla_cuda_download_y    wait, y as float [B*S, dim]
 *   mla_cuda_download_grads wait, dx as float [B*S, dim], dw as float (mla_layout)
 *   mla_cuda_destroy       free everything; NULL is fine
 * fwd and bwd only enqueue (no synchronization), and each can be repeated: the
 * backward leaves the forward's activations as they were.
 *
 * Every function returns MB_OK, MB_ERR_ARG (invalid config, sizes or arguments),
 * MB_ERR_UNSUPPORTED (head dims the core does not compile, or built without CUDA:
 * attention_nocuda.c), MB_ERR_NOMEM, MB_ERR_CUDA or MB_ERR_CUBLAS (no cuBLASLt
 * algorithm for a projection is MB_ERR_UNSUPPORTED, with a line on stderr).
 */
#ifndef MB_MLA_CUDA_H
#define MB_MLA_CUDA_H

#include "mla.h"

struct mla_cuda;

int mla_cuda_create(struct mla_cuda **out, const struct mla_config *c, int batch, int seq,
		    void *stream);
int mla_cuda_upload(struct mla_cuda *m, const float *w, const float *x, const float *dy);
int mla_cuda_fwd(struct mla_cuda *m);
int mla_cuda_bwd(struct mla_cuda *m);
int mla_cuda_poison(struct mla_cuda *m);
int mla_cuda_download_y(struct mla_cuda *m, float *y);
int mla_cuda_download_grads(struct mla_cuda *m, float *dx, float *dw);
void mla_cuda_destroy(struct mla_cuda *m);

#endif
