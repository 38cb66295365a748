/*
 * mla_cuda_nocuda.c - mla_cuda.h for builds without CUDA: nothing can be created, so
 * nothing else is ever called with an object; every call fails with
 * MB_ERR_UNSUPPORTED.
 */
#include "mla_cuda.h"

#include "status.h"

/* mla_cuda_create fails: this build has no CUDA. */
int mla_cuda_create(struct mla_cuda **out, const struct mla_config *c, int batch, int seq,
		    void *stream)
{
	(void)c, (void)batch, (void)seq, (void)stream;
	if (out)
		*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_upload(struct mla_cuda *m, const float *w, const float *x, const float *dy)
{
	(void)m, (void)w, (void)x, (void)dy;
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_fwd(struct mla_cuda *m)
{
	(void)m;
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_bwd(struct mla_cuda *m)
{
	(void)m;
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_poison(struct mla_cuda *m)
{
	(void)m;
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_download_y(struct mla_cuda *m, float *y)
{
	(void)m, (void)y;
	return MB_ERR_UNSUPPORTED;
}

int mla_cuda_download_grads(struct mla_cuda *m, float *dx, float *dw)
{
	(void)m, (void)dx, (void)dw;
	return MB_ERR_UNSUPPORTED;
}

void mla_cuda_destroy(struct mla_cuda *m)
{
	(void)m;
}
