/*
 * mpi_world_mpi.c - the world of ranks over MPI_COMM_WORLD (see mpi_world.h). Compiled
 * only when moebench is built with MPI; parallel_nompi.c stands in otherwise.
 */
#include "mpi_world.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static struct {
	bool active;   /* MPI is initialised and the world set up */
	bool owned;    /* we called MPI_Init, so we call MPI_Finalize */
	int rank;
	int size;
	int local_rank;  /* among the ranks sharing this node's memory */
	int local_size;
} world = { false, false, 0, 1, 0, 1 };

/* find_local sets the node-local rank and size from the shared-memory split of the
 * world (the ranks of one node), ordered by world rank. */
static int find_local(void)
{
	MPI_Comm node = MPI_COMM_NULL;
	int err = MB_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED,
						   world.rank, MPI_INFO_NULL, &node));
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_rank(node, &world.local_rank));
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_size(node, &world.local_size));
	if (node != MPI_COMM_NULL)
		MPI_Comm_free(&node);
	return err;
}

/* mpi_world_init initialises MPI only under a launcher. MPI_ERRORS_RETURN makes every
 * error on the world communicator (and on those derived from it) a return code that
 * MB_MPI_CHECK reports with the rank and the call, where MPI's default would end the
 * job from inside the library. */
int mpi_world_init(int *argc, char ***argv)
{
	int already = 0, err;
	if (!mpi_world_launched())
		return MB_OK;
	MPI_Initialized(&already);
	if (!already) {
		err = MB_MPI_CHECK(MPI_Init(argc, argv));
		if (err)
			return err;
		world.owned = true;
	}
	err = MB_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world.rank));
	if (!err)
		err = MB_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world.size));
	if (!err)
		err = find_local();
	world.active = !err;
	return err;
}

bool mpi_world_active(void)
{
	return world.active;
}

int mpi_world_rank(void)
{
	return world.rank;
}

int mpi_world_size(void)
{
	return world.size;
}

int mpi_world_local_rank(void)
{
	return world.local_rank;
}

int mpi_world_local_size(void)
{
	return world.local_size;
}

bool mpi_world_is_root(void)
{
	return world.rank == 0;
}

void mpi_world_finalize(void)
{
	if (world.owned)
		MPI_Finalize();
	world.active = false;
	world.owned = false;
}

void mpi_world_abort(int code, const char *why)
{
	fprintf(stderr, "moebench: error: rank %d: %s\n", world.rank, why);
	fflush(stderr);
	if (world.active)
		MPI_Abort(MPI_COMM_WORLD, code);
	/* NOTE: MPI_Abort is not declared noreturn, and need not end this process first. */
	exit(code);
}

int mb_mpi_check(int mpi_err, const char *call, const char *file, int line)
{
	char msg[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (mpi_err == MPI_SUCCESS)
		return MB_OK;
	if (MPI_Error_string(mpi_err, msg, &len) != MPI_SUCCESS)
		snprintf(msg, sizeof(msg), "MPI error %d", mpi_err);
	fprintf(stderr, "%s:%d: %s: rank %d: %s\n", file, line, call, world.rank, msg);
	return MB_ERR_MPI;
}
