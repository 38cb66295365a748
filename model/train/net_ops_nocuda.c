/*
 * net_ops_nocuda.c - the CUDA op table (net_ops.h) in a build without CUDA: no device.
 */
#include <math.h>

#include "net_ops.h"
#include "status.h"

/* net_cuda_ops_open fails: this build has no CUDA. */
int net_cuda_ops_open(const struct net_cuda_sizes *z, const struct net_ops_f32 **out)
{
	*out = NULL;
	return MB_ERR_NODEV;
}

/* net_cuda_ops_close has nothing to free. */
void net_cuda_ops_close(void)
{
}

/* net_cuda_ops_status: no entry ran. */
int net_cuda_ops_status(void)
{
	return MB_ERR_NODEV;
}

/* net_cuda_ops_sync: no stream. */
int net_cuda_ops_sync(void)
{
	return MB_ERR_NODEV;
}

/* net_cuda_attn_bytes: no device scratch in this build. */
size_t net_cuda_attn_bytes(const struct mla_config *mla, const struct gqa_config *gqa,
			   int batch, int seq)
{
	return 0;
}

/* the device clock: no device */
int net_cuda_clock_open(void)
{
	return MB_ERR_NODEV;
}

double net_cuda_clock_now(void)
{
	return NAN;
}

double net_cuda_mem_peak(void)
{
	return NAN;
}

void net_cuda_clock_close(void)
{
}
