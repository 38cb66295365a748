/*
 * parallel_nonccl.c - the CUDA backend's world in builds without NCCL: refused, with
 * the way out. NOTE: no silent fall back to MPI on host memory: the caller's buffers
 * are device memory, and a collective measured through the host would not be NCCL's.
 */
#include "comm_impl.h"
#include "status.h"

#include <stdio.h>

int comm_nccl_world(struct backend *b, double timeout_s, struct comm **out, char *why,
		    size_t why_len)
{
	*out = NULL;
	snprintf(why, why_len, "collectives on the CUDA backend need NCCL, and moebench was "
		 "built without it (rebuild with NCCL_ROOT set, or use --backend cpu)");
	return MB_ERR_UNSUPPORTED;
}
