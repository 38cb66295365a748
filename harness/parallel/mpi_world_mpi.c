/*
 * mpi_world_mpi.c - the world of ranks over MPI_COMM_WORLD (see mpi_world.h). Compiled
 * only when moebench is built with MPI; parallel_nompi.c stands in otherwise.
 */
#include "mpi_world.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_impl.h"

static struct {
	bool active;   /* MPI is initialised and the world set up */
	bool owned;    /* we called MPI_Init, so we call MPI_Finalize */
	int rank;
	int size;
	int local_rank;  /* among the ranks sharing this node's memory */
	int local_size;
	int thread_level;  /* MPI_Init_thread's provided level */
} world = { false, false, 0, 1, 0, 1, 0 };

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
		/* NOTE: SERIALIZED for the training step's overlap (two threads of work that
		 * hand the CPU to each other, never calling MPI at the same time) */
		err = MB_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED,
						   &world.thread_level));
		if (err)
			return err;
		world.owned = true;
	} else {
		MPI_Query_thread(&world.thread_level);
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

/* What each rank tells the others at start-up (mpi_world_agree). */
struct hello {
	uint64_t options;       /* mpi_world_options_hash */
	struct comm_peer peer;  /* its pid and host, for the lines naming a silent rank */
};

/* keep_peers hands every rank's pid and host to comm_peer_set. */
static void keep_peers(const struct hello *all)
{
	struct comm_peer *p = malloc(sizeof(*p) * (size_t)world.size);
	for (int r = 0; p && r < world.size; r++)
		p[r] = all[r].peer;
	if (p)
		comm_peer_set(p, world.size);
	free(p);
}

/* mpi_world_agree: NOTE: the allgather is a blocking call under the watchdog, with a
 * fixed bound (the options and their --timeout are not read yet): a rank stopped while
 * starting would hang the others here for ever. */
int mpi_world_agree(int argc, char **argv)
{
	enum { AGREE_TIMEOUT_S = 300 };
	struct hello mine = { .options = mpi_world_options_hash(argc, argv) }, *all;
	char list[256] = "";
	int n = 0, bytes = (int)sizeof(mine);
	if (!world.active || world.size < 2)
		return 0;
	comm_peer_self(&mine.peer);
	all = malloc(sizeof(*all) * (size_t)world.size);
	if (all)
		comm_watch_world("start-up", AGREE_TIMEOUT_S);
	if (!all || MB_MPI_CHECK(MPI_Allgather(&mine, bytes, MPI_BYTE, all, bytes, MPI_BYTE,
					       MPI_COMM_WORLD))) {
		comm_watch_leave();
		free(all);
		return 1;
	}
	comm_watch_leave();
	keep_peers(all);
	for (int r = 1; r < world.size; r++)
		if (all[r].options != all[0].options && n++ < 16)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d",
				 n > 1 ? "," : "", r);
	free(all);
	if (n && world.rank == 0)
		fprintf(stderr, "moebench: error: the ranks were started with different options "
			"or input files: rank%s %s%s differ%s from rank 0\nhint: start every rank "
			"with the same command line and the same input files on every node\n",
			n > 1 ? "s" : "", list, n > 16 ? ",..." : "", n > 1 ? "" : "s");
	return n ? 2 : 0;
}

bool mpi_world_serialized(void)
{
	return world.active && world.thread_level >= MPI_THREAD_SERIALIZED;
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

/* test_stop is a test-only hook (tests/test_cli_kill_mpi.c): MOEBENCH_TEST_STOP_RANK=R
 * makes world rank R stop itself (SIGSTOP) before MPI_Finalize, after the last
 * collective, where no signal from outside can be timed. Unset in real runs. */
static void test_stop(void)
{
	const char *r = getenv("MOEBENCH_TEST_STOP_RANK");
	if (r && atoi(r) == world.rank)
		raise(SIGSTOP);
}

/* mpi_world_finalize: NOTE: MPI_Finalize waits for every rank (Open MPI's fence), so a
 * rank stopped after the last collective would hang the others there: the watchdog
 * bounds it by the longest --timeout the run used and names a stopped peer. */
void mpi_world_finalize(void)
{
	if (world.owned && world.size > 1) {
		test_stop();
		comm_watch_world("finalize", comm_longest_timeout());
		MPI_Finalize();
		comm_watch_leave();
	} else if (world.owned) {
		MPI_Finalize();
	}
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
