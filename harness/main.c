/*
 * main.c - the moebench program: dispatch to a subcommand of the one registry
 * (benchmarks/registry.c).
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

static void usage(void)
{
	printf("usage: moebench <command> [options]      moebench <command> --help\n\n"
	       "commands:\n");
	for (int i = 0; bench_registry[i]; i++)
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
	const struct bench_desc *d = bench_find(cmd);
	if (d)
		return d->command ? d->command(argc - 1, argv + 1) : session_bench(d, argc - 1, argv + 1);
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
