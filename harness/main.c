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
	{ "compare", "two result files -> regressions (exit 1 on one)", cmd_compare },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(void)
{
	printf("usage: moebench <command> [options]      moebench <command> --help\n\n"
	       "commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	for (int i = 0; bench_registry[i]; i++)
		printf("  %-10s %s\n", bench_registry[i]->name, bench_registry[i]->summary);
	printf("\nmoebench --version shows the commit and library versions.\n"
	       "Exit status: 0 ok, 1 failed check / run error / regression, 2 bad input.\n");
}

int main(int argc, char **argv)
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
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	for (int i = 0; bench_registry[i]; i++)
		if (strcmp(cmd, bench_registry[i]->name) == 0)
			return session_bench(bench_registry[i], argc - 1, argv + 1);
	return cli_error("moebench --help lists the commands", "unknown command '%s'", cmd);
}
