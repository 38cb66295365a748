/*
 * attention_nocuda.c - the CUDA functions of kernels/attention for builds without CUDA
 * (attention.h's kernels, attention_case.h's cases, mla_cuda.h's block). The build
 * compiles this file or the area's *_cuda.c and *.cu files, never both. Every call
 * fails with MB_ERR_UNSUPPORTED; a create leaves *out NULL, so nothing else is ever
 * called with an object; the workspace is 0 bytes.
 */
#include "attention.h"
#include "attention_case.h"
#include "mla_cuda.h"
#include "status.h"

/* attn_fwd_cuda fails: this build has no CUDA. */
int attn_fwd_cuda(const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
		  const uint16_t *d_v, uint16_t *d_o, float *d_lse, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* attn_bwd_cuda_workspace returns 0: there is no CUDA backward to need any. */
size_t attn_bwd_cuda_workspace(const struct attn_shape *s)
{
	return 0;
}

/* attn_bwd_cuda fails: this build has no CUDA. */
int attn_bwd_cuda(const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
		  const uint16_t *d_v, const uint16_t *d_o, const uint16_t *d_dout,
		  const float *d_lse, uint16_t *d_dq, uint16_t *d_dk, uint16_t *d_dv,
		  void *d_work, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* attn_decode_cuda_workspace returns 0: there is no CUDA decode to need any. */
size_t attn_decode_cuda_workspace(const struct attn_decode_shape *s)
{
	return 0;
}

/* attn_decode_cuda fails: this build has no CUDA. */
int attn_decode_cuda(const struct attn_decode_shape *s, const uint16_t *d_q,
		     const uint16_t *d_k, const uint16_t *d_v, uint16_t *d_o, float *d_lse,
		     void *d_work, size_t work_bytes, void *stream)
{
	return MB_ERR_UNSUPPORTED;
}

/* mla_cuda_create fails: this build has no CUDA. */
int mla_cuda_create(struct mla_cuda **out, const struct mla_config *c, int batch, int seq,
		    void *stream)
{
	if (out)
		*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_upload(struct mla_cuda *m, const float *w, const float *x, const float *dy)
{
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_fwd(struct mla_cuda *m)
{
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_bwd(struct mla_cuda *m)
{
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_poison(struct mla_cuda *m)
{
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_download_y(struct mla_cuda *m, float *y)
{
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_download_grads(struct mla_cuda *m, float *dx, float *dw)
{
	return MB_ERR_UNSUPPORTED;
}

void mla_cuda_destroy(struct mla_cuda *m)
{
}

/* attn_case_cuda_create fails: this build has no CUDA. */
int attn_case_cuda_create(struct attn_case_cuda **out, enum attn_case_op op,
			  const struct attn_shape *s, const struct attn_decode_shape *ds,
			  const float *const in[4], void *stream)
{
	*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

int attn_case_cuda_poison(struct attn_case_cuda *c)
{
	return MB_ERR_UNSUPPORTED;
}

int attn_case_cuda_run(struct attn_case_cuda *c)
{
	return MB_ERR_UNSUPPORTED;
}

int attn_case_cuda_download(struct attn_case_cuda *c, float *out, float *lse)
{
	return MB_ERR_UNSUPPORTED;
}

void attn_case_cuda_destroy(struct attn_case_cuda *c)
{
}
