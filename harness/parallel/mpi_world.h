/*
 * mpi_world.h - the world of ranks moebench runs in: MPI's when a launcher (mpirun,
 * mpiexec, srun) started the program, a single rank otherwise.
 *
 *   mpirun -np 4 moebench pipeline --execute ...    four ranks, MPI initialised
 *   moebench pipeline --execute ...                  one rank, MPI never touched
 *
 * The launcher is recognised from the environment it sets for its processes (see
 * mpi_world_launched), so a plain run never initialises MPI, even in an MPI build.
 * mpi_world_mpi.c implements it over MPI_COMM_WORLD with MPI_ERRORS_RETURN, so every
 * MPI error comes back to a check instead of killing the job without a word;
 * parallel_nompi.c is the single-rank version of builds without MPI.
 *
 * The communicators of the parallel runtime (TP/PP/DP/EP groups) grow from here.
 */
#ifndef MB_HARNESS_MPI_WORLD_H
#define MB_HARNESS_MPI_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

/* mpi_world_launched says whether the environment is that of a process started by an
 * MPI launcher: Open MPI's mpirun, PMI/PMIx (MPICH's hydra, srun --mpi=pmi2|pmix),
 * MVAPICH, or a Slurm job step (srun). Pure: it reads the environment only. */
bool mpi_world_launched(void);

/* mpi_world_init initialises MPI when launched by an MPI launcher (else does nothing:
 * one rank). Call it first in main, before argv is read. Returns MB_OK, or MB_ERR_MPI
 * after printing why. */
int mpi_world_init(int *argc, char ***argv);

/* mpi_world_active says whether MPI was initialised (and not yet finalised). */
bool mpi_world_active(void);
/* mpi_world_serialized says whether MPI runs with MPI_THREAD_SERIALIZED or more (calls
 * from several threads, one at a time): what the training step's overlap needs. */
bool mpi_world_serialized(void);

/* mpi_world_rank and mpi_world_size are this process's rank and the number of ranks
 * (0 and 1 when MPI is not active). */
int mpi_world_rank(void);
int mpi_world_size(void);

/* mpi_world_local_rank and mpi_world_local_size are this process's rank among the
 * ranks of its node, and their number (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED;
 * 0 and 1 when MPI is not active): the rank picks its GPU with them. */
int mpi_world_local_rank(void);
int mpi_world_local_size(void);

/* mpi_world_is_root says whether this is rank 0, the rank that prints tables and writes
 * result files. */
bool mpi_world_is_root(void);

/* mpi_world_options_hash hashes (FNV-1a) a rank's argv[1..] and the contents of every
 * argument that is a regular input file (a model, hardware or baseline JSON; not the
 * value of --out, --timeline, --plot, --csv or --accum-csv). */
uint64_t mpi_world_options_hash(int argc, char **argv);

/* mpi_world_agree compares every rank's mpi_world_options_hash at start-up (one
 * allgather, which also hands every rank's pid and host to comm_peer_set; bounded by
 * the watchdog at 300 s). Equal everywhere: returns 0. Else rank 0 prints one error naming the
 * ranks that differ from it, with a hint, and every rank returns 2 (nothing has run:
 * ranks with different options would deadlock or corrupt each other's messages).
 * Returns 0 at once for a single rank. */
int mpi_world_agree(int argc, char **argv);

/* mpi_world_finalize finalises MPI if mpi_world_init initialised it; with several
 * ranks, under the watchdog of comm_watch.c (the longest timeout of the run's
 * communicators): a rank that stopped after the last collective cannot hang the others
 * there. */
void mpi_world_finalize(void);

/* mpi_world_abort prints "moebench: error: rank R: why" and ends every rank with exit
 * status code (MPI_Abort; exit when MPI is not active). For the failures a rank cannot
 * report collectively, such as a peer that never answers. */
_Noreturn void mpi_world_abort(int code, const char *why);

/* mb_mpi_check turns an MPI return code into a status: MB_OK for MPI_SUCCESS; else it
 * prints "file:line: call: rank R: MPI's error string" and returns MB_ERR_MPI. */
int mb_mpi_check(int mpi_err, const char *call, const char *file, int line);

#define MB_MPI_CHECK(call) mb_mpi_check((call), #call, __FILE__, __LINE__)

#endif
