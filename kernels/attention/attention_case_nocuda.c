/*
 * attention_case_nocuda.c - attention_case.h for builds without CUDA: nothing can be
 * created, so nothing else is ever called with a case.
 */
#include "attention_case.h"

#include "status.h"

/* attn_case_cuda_create fails: this build has no CUDA. */
int attn_case_cuda_create(struct attn_case_cuda **out, enum attn_case_op op,
			  const struct attn_shape *s, const struct attn_decode_shape *ds,
			  const float *const in[4], void *stream)
{
	(void)op, (void)s, (void)ds, (void)in, (void)stream;
	*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

int attn_case_cuda_poison(struct attn_case_cuda *c)
{
	(void)c;
	return MB_ERR_UNSUPPORTED;
}

int attn_case_cuda_run(struct attn_case_cuda *c)
{
	(void)c;
	return MB_ERR_UNSUPPORTED;
}

int attn_case_cuda_download(struct attn_case_cuda *c, float *out, float *lse)
{
	(void)c, (void)out, (void)lse;
	return MB_ERR_UNSUPPORTED;
}

void attn_case_cuda_destroy(struct attn_case_cuda *c)
{
	(void)c;
}
