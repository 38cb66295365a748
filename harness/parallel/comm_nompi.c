/*
 * comm_nompi.c - the CPU backend's world in builds without MPI: one rank, whose
 * collectives are copies (comm_self.c). A launcher's processes each run alone here,
 * as mpi_world_nompi.c says when it starts.
 */
#include "comm_impl.h"

int comm_cpu_world(double timeout_s, struct comm **out, char *why, size_t why_len)
{
	(void)why, (void)why_len;
	return comm_self_world(timeout_s, out);
}
