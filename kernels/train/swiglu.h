/*
 * swiglu.h - the SwiGLU activation of a feed-forward block, forward and backward, each
 * one fused elementwise kernel on the GPU. CPU reference in swiglu.c; CUDA in swiglu.cu
 * (train_nocuda.c returns MB_ERR_UNSUPPORTED without CUDA).
 *
 * Shape letters: R rows (tokens), F columns (FFN width). FP32.
 *   forward:  h = silu(a) * b, silu(a) = a * sigmoid(a)   (a: gate, w1; b: up, w3)
 *   backward: da = dh * b * s * (1 + a * (1 - s)), s = sigmoid(a);  db = dh * silu(a)
 * The gate and up inputs (and their gradients) are read and written with a row stride
 * ld >= F, so either two separate [R, F] tensors (ld = F) or one fused [R, 2F] GEMM
 * output (up = gate + F, ld = 2F) serve; h and dh are [R, F] contiguous.
 */
#ifndef MB_SWIGLU_H
#define MB_SWIGLU_H

#ifdef __cplusplus
extern "C" {
#endif

/* swiglu_fwd_cpu writes h[R, F]. Returns MB_OK or MB_ERR_ARG (sizes, ld < F). */
int swiglu_fwd_cpu(const float *gate, const float *up, long rows, int cols, long ld, float *h);
/* swiglu_bwd_cpu writes dgate and dup (stride ld) from dh[R, F]. Returns MB_OK or
 * MB_ERR_ARG. */
int swiglu_bwd_cpu(const float *dh, const float *gate, const float *up, long rows, int cols,
		   long ld, float *dgate, float *dup);

/* CUDA versions (device pointers, stream a cudaStream_t, asynchronous): one thread per
 * element. Return MB_OK, MB_ERR_ARG, MB_ERR_CUDA, or MB_ERR_UNSUPPORTED without CUDA. */
int swiglu_fwd_cuda(const float *d_gate, const float *d_up, long rows, int cols, long ld,
		    float *d_h, void *stream);
int swiglu_bwd_cuda(const float *d_dh, const float *d_gate, const float *d_up, long rows,
		    int cols, long ld, float *d_dgate, float *d_dup, void *stream);

#ifdef __cplusplus
}
#endif

#endif
