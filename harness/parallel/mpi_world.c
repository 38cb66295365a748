/* mpi_world.c - recognising an MPI launcher from the environment (see mpi_world.h). */
#include "mpi_world.h"

#include <stdlib.h>

/* The variables launchers set in every process they start: Open MPI's mpirun, PMIx
 * (Open MPI 5, srun --mpi=pmix), PMI-1/2 (MPICH's hydra, Intel MPI, srun --mpi=pmi2),
 * hydra's own, MVAPICH's. */
static const char *const launcher_vars[] = {
	"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS",
	"MV2_COMM_WORLD_SIZE",
};

/* env_set says whether name is set to a non-empty value. */
static bool env_set(const char *name)
{
	const char *v = getenv(name);
	return v && v[0];
}

bool mpi_world_launched(void)
{
	for (size_t i = 0; i < sizeof(launcher_vars) / sizeof(launcher_vars[0]); i++)
		if (env_set(launcher_vars[i]))
			return true;
	/* NOTE: a Slurm job step (srun) counts when it has more than one task: those tasks
	 * must form one world (MPI_Init then fails loudly if Open MPI lacks Slurm's PMI,
	 * rather than N single-rank runs each writing a result). `srun -n 1 moebench`
	 * stays a plain single-rank run. */
	const char *tasks = getenv("SLURM_STEP_NUM_TASKS");
	return env_set("SLURM_STEP_ID") && tasks && atoi(tasks) > 1;
}
