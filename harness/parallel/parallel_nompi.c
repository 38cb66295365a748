/*
 * parallel_nompi.c - harness/parallel for builds without MPI: the single-rank world
 * (mpi_world.h; a launcher's processes each run alone, and it says so once, on stderr)
 * and the CPU backend's communicator, one rank whose collectives are copies
 * (comm_self.c).
 */
#include "comm_impl.h"
#include "mpi_world.h"

#include <stdio.h>
#include <stdlib.h>

int mpi_world_init(int *argc, char ***argv)
{
	if (mpi_world_launched())
		fprintf(stderr, "moebench: started by an MPI launcher, but built without MPI: "
			"every process runs as a single rank\n");
	return MB_OK;
}

int mpi_world_agree(int argc, char **argv)
{
	(void)argc, (void)argv;
	return 0;
}

bool mpi_world_serialized(void)
{
	return false;
}

bool mpi_world_active(void)
{
	return false;
}

int mpi_world_rank(void)
{
	return 0;
}

int mpi_world_size(void)
{
	return 1;
}

int mpi_world_local_rank(void)
{
	return 0;
}

int mpi_world_local_size(void)
{
	return 1;
}

bool mpi_world_is_root(void)
{
	return true;
}

void mpi_world_finalize(void)
{
}

void mpi_world_abort(int code, const char *why)
{
	fprintf(stderr, "moebench: error: rank 0: %s\n", why);
	exit(code);
}

int mb_mpi_check(int mpi_err, const char *call, const char *file, int line)
{
	if (mpi_err == 0)
		return MB_OK;
	fprintf(stderr, "%s:%d: %s: rank 0: MPI error %d\n", file, line, call, mpi_err);
	return MB_ERR_MPI;
}

int comm_cpu_world(double timeout_s, struct comm **out, char *why, size_t why_len)
{
	return comm_self_world(timeout_s, out);
}
