/*
 * attention_cuda_nocuda.c - the CUDA functions of attention.h for builds without
 * CUDA. The build compiles this file or attention.cu, attention_bwd.cu and
 * attention_decode.cu, never both. Every call fails with MB_ERR_UNSUPPORTED; the
 * workspace is 0 bytes.
 */
#include "attention.h"

#include "status.h"

/* attn_fwd_cuda fails: this build has no CUDA. */
int attn_fwd_cuda(const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
		  const uint16_t *d_v, uint16_t *d_o, float *d_lse, void *stream)
{
	(void)s;
	(void)d_q;
	(void)d_k;
	(void)d_v;
	(void)d_o;
	(void)d_lse;
	(void)stream;
	return MB_ERR_UNSUPPORTED;
}

/* attn_bwd_cuda_workspace returns 0: there is no CUDA backward to need any. */
size_t attn_bwd_cuda_workspace(const struct attn_shape *s)
{
	(void)s;
	return 0;
}

/* attn_bwd_cuda fails: this build has no CUDA. */
int attn_bwd_cuda(const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
		  const uint16_t *d_v, const uint16_t *d_o, const uint16_t *d_dout,
		  const float *d_lse, uint16_t *d_dq, uint16_t *d_dk, uint16_t *d_dv,
		  void *d_work, void *stream)
{
	(void)s;
	(void)d_q;
	(void)d_k;
	(void)d_v;
	(void)d_o;
	(void)d_dout;
	(void)d_lse;
	(void)d_dq;
	(void)d_dk;
	(void)d_dv;
	(void)d_work;
	(void)stream;
	return MB_ERR_UNSUPPORTED;
}

/* attn_decode_cuda fails: this build has no CUDA. */
int attn_decode_cuda(const struct attn_decode_shape *s, const uint16_t *d_q,
		     const uint16_t *d_k, const uint16_t *d_v, uint16_t *d_o, float *d_lse,
		     void *stream)
{
	(void)s;
	(void)d_q;
	(void)d_k;
	(void)d_v;
	(void)d_o;
	(void)d_lse;
	(void)stream;
	return MB_ERR_UNSUPPORTED;
}
