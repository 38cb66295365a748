/* mpi_world.c - recognising an MPI launcher from the environment, and the hash of a
 * rank's options and input files the ranks compare at start-up (see mpi_world.h). */
#include "mpi_world.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* fnv1a folds n bytes into the 64-bit FNV-1a hash h. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001B3ull;
	return h;
}

/* is_output_option names the options whose value is a file moebench writes (its
 * contents are not an input: it may exist on one node only). */
static bool is_output_option(const char *a)
{
	static const char *const outs[] = { "--out", "--timeline", "--plot", "--csv",
					    "--accum-csv", NULL };
	for (int i = 0; outs[i]; i++)
		if (strcmp(a, outs[i]) == 0)
			return true;
	return false;
}

/* hash_file folds the contents of path into h when it is a regular file of at most
 * 16 MiB (a model, hardware or baseline file the ranks read); else leaves h alone. */
static uint64_t hash_file(uint64_t h, const char *path)
{
	struct stat st;
	char buf[65536];
	size_t n;
	FILE *f;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20) ||
	    !(f = fopen(path, "rb")))
		return h;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		h = fnv1a(h, buf, n);
	fclose(f);
	return h;
}

uint64_t mpi_world_options_hash(int argc, char **argv)
{
	uint64_t h = 0xCBF29CE484222325ull;
	for (int i = 1; i < argc; i++) {
		h = fnv1a(h, argv[i], strlen(argv[i]) + 1);
		if (!is_output_option(argv[i - 1]))
			h = hash_file(h, argv[i]);
	}
	return h;
}
