/*
 * main.c - the moebench program: dispatch to a subcommand.
 *
 *   moebench <command> [options]      moebench <command> --help
 *
 * Exit status: 0 ok; 1 a check failed, a run error, or a regression (compare);
 * 2 bad input (unknown command or option, bad value, unreadable file).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "context.h"
#include "mpi_world.h"
#include "session.h"

struct command {
	const char *name;
	const char *summary;
	int (*fn)(int argc, char **argv);
};

static int cmd_run(int argc, char **argv)
{
	return session_suite(argc, argv);
}

static const struct command commands[] = {
	{ "info", "machine, devices, libraries, counters, datasheet peaks", cmd_info },
	{ "run", "the default suite: every benchmark at small sizes", cmd_run },
	{ "model", "parameters, FLOPs/token, KV cache, memory of a model preset", cmd_model },
	{ "claims", "recompute published claims (GPU-hours, MFU, cost) from first principles", cmd_claims },
	{ "pipeline", "pipeline schedules: simulated bubble vs closed forms, timeline, --execute", cmd_pipeline },
	{ "compare", "two result files -> regressions (exit 1 on one)", cmd_compare },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* find_command returns the non-benchmark command of that name, or NULL. */
static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

static void usage(void)
{
	printf("usage: moebench <command> [options]      moebench <command> --help\n\n"
	       "commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	/* NOTE: a benchmark whose name a command takes (claims) runs only in the suite. */
	for (int i = 0; bench_registry[i]; i++)
		if (!find_command(bench_registry[i]->name))
			printf("  %-10s %s\n", bench_registry[i]->name, bench_registry[i]->summary);
	printf("\nmoebench --version shows the commit and library versions.\n"
	       "Exit status: 0 ok, 1 failed check / run error / regression, 2 bad input.\n");
}

/* dispatch runs the command argv[1] names; returns the exit status. */
static int dispatch(int argc, char **argv)
{
	if (argc < 2)
		return usage(), cli_error("moebench --help lists the commands", "no command given");
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage();
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		context_print_version();
		return 0;
	}
	const struct command *c = find_command(cmd);
	if (c)
		return c->fn(argc - 1, argv + 1);
	for (int i = 0; bench_registry[i]; i++)
		if (strcmp(cmd, bench_registry[i]->name) == 0)
			return session_bench(bench_registry[i], argc - 1, argv + 1);
	return cli_error("moebench --help lists the commands", "unknown command '%s'", cmd);
}

/* NOTE: under mpirun every rank runs main; MPI starts before argv is read (MPI_Init may
 * take its own arguments out) and ends after the command, on every path. */
int main(int argc, char **argv)
{
	if (mpi_world_init(&argc, &argv))
		return 1;
	int status = mpi_world_agree(argc, argv);
	status = status ? status : dispatch(argc, argv);
	mpi_world_finalize();
	return status;
}
