/*
 * attention_case.h - the attention core's CUDA calls (attention.h) on device copies of
 * host tensors, for benchmarks that hold their inputs as float on the host: upload
 * (rounded to BF16), run, poison, download (widened to float). Built from
 * attention_case_cuda.c with CUDA; attention_nocuda.c returns MB_ERR_UNSUPPORTED.
 *
 * Inputs per operation (host float, read once at create):
 *   ATTN_CASE_FWD     q, k, v                  outputs: o, lse
 *   ATTN_CASE_BWD     q, k, v, dout            outputs: dq | dk | dv (concatenated); the
 *                                              forward runs once at create for o and lse
 *   ATTN_CASE_DECODE  q, k cache, v cache      outputs: o, lse; v cache NULL means v == k
 */
#ifndef MB_ATTENTION_CASE_H
#define MB_ATTENTION_CASE_H

#include <stddef.h>

#include "attention.h"

enum attn_case_op { ATTN_CASE_FWD, ATTN_CASE_BWD, ATTN_CASE_DECODE };

struct attn_case_cuda;

/* attn_case_cuda_create uploads the inputs of op (s for FWD/BWD, ds for DECODE) on the
 * stream (a cudaStream_t). Returns MB_OK, MB_ERR_ARG, MB_ERR_NOMEM, MB_ERR_CUDA, or
 * MB_ERR_UNSUPPORTED (no CUDA, or a shape the kernels do not take). */
int attn_case_cuda_create(struct attn_case_cuda **out, enum attn_case_op op,
			  const struct attn_shape *s, const struct attn_decode_shape *ds,
			  const float *const in[4], void *stream);
/* attn_case_cuda_poison fills the outputs (lse too, where it is one) with NaN bytes. */
int attn_case_cuda_poison(struct attn_case_cuda *c);
/* attn_case_cuda_run enqueues one repetition. */
int attn_case_cuda_run(struct attn_case_cuda *c);
/* attn_case_cuda_download waits and writes the outputs, as float, into out, and for
 * FWD and DECODE the lse into lse (when not NULL). */
int attn_case_cuda_download(struct attn_case_cuda *c, float *out, float *lse);
void attn_case_cuda_destroy(struct attn_case_cuda *c);

#endif
