/*
 * cli.h - declarative long options for moebench's subcommands.
 *
 * A command lists its options in a table; cli_parse fills the targets from argv,
 * checks every value (type, range, choice), collects positional arguments, and
 * cli_help prints the table with each default. Options are `--name value` or
 * `--name=value`, and an option with a one-letter name is also `-n value` (nccl-tests'
 * -b -e -f); sizes accept K, M, G suffixes (powers of 1024).
 *
 * Validation is this layer's, not each command's: every number goes through one parser
 * (cli_parse_int) that checks it against the option's range and its target type (an
 * int never wraps: --mtp 4294967297 is refused), K/M/G on every integer option; an empty
 * value is refused for every option (an empty path or list means nothing); an option
 * given twice is refused (not "last wins"); --format is the one output-format option
 * and --json its alias (--json is --format json; a command with only text and JSON
 * takes --format text|json too); cli_only_with refuses an option given outside the
 * mode it belongs to.
 *
 * User errors are one line `moebench: error: ...` plus, when the user can fix it, a
 * line `hint: ...`, both on stderr; the command then exits with status 2.
 */
#ifndef MB_HARNESS_CLI_H
#define MB_HARNESS_CLI_H

#include <stdbool.h>
#include <stdint.h>

enum cli_kind {
	CLI_FLAG,   /* bool, no value */
	CLI_INT,    /* int */
	CLI_SIZE,   /* int64_t, K/M/G suffixes */
	CLI_DOUBLE, /* double */
	CLI_STRING, /* const char * (points into argv or the default) */
	CLI_CHOICE, /* const char *, one of `choices` ("auto|cpu|cuda") */
	CLI_U64,    /* uint64_t (seeds) */
};

struct cli_opt {
	const char *name;    /* without the leading "--" */
	enum cli_kind kind;
	void *target;
	const char *def;     /* default as text (applied before parsing; shown in help) */
	const char *help;
	double min, max;     /* inclusive range for numbers; min > max means unchecked */
	const char *choices; /* for CLI_CHOICE */
};

#define CLI_END { NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0, NULL }

/* The options every measuring command shares. */
struct cli_common {
	const char *backend;   /* auto|cpu|cuda */
	int device;
	int warmup;
	int iters;
	double min_time;
	const char *out;
	const char *format;    /* text|json|csv|gbench|bmf */
	uint64_t seed;
	bool quiet;
	bool force;
	bool cold;
	const char *hardware;
	const char *counters;
};

/* cli_common_opts returns the shared option entries bound to c, with the given
 * defaults for warmup, iters and min_time (commands differ there). The returned array
 * is static and ends with CLI_END; cli_parse takes it beside the command's own. */
const struct cli_opt *cli_common_opts(struct cli_common *c, const char *warmup,
				      const char *iters, const char *min_time);

/* cli_parse parses argv[1..argc) (argv[0] is the command name) against two option
 * tables (either may be NULL). Positional arguments are stored in pos (at most
 * max_pos; *n_pos receives the count). --help prints help and sets *help_shown.
 * Returns 0 on success, 2 after printing an error. */
int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *a,
	      const struct cli_opt *b, char **pos, int max_pos, int *n_pos, bool *help_shown,
	      const char *usage);

/* cli_help prints "usage" and both tables with defaults to stdout. */
void cli_help(const char *cmd, const char *usage, const struct cli_opt *a,
	      const struct cli_opt *b);

/* cli_error prints "moebench: error: <msg>" ("moebench: error: rank R: <msg>" under
 * mpirun with more than one rank) and, if hint is not NULL, "hint: <hint>".
 * Returns 2, the exit status for bad input. */
int cli_error(const char *hint, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cli_error_once is cli_error from rank 0 alone (every rank returns 2): for bad input
 * that every rank of an MPI run finds alike, so it is reported once, not once per rank. */
int cli_error_once(const char *hint, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cli_note prints "moebench: <msg>" to stderr unless quiet, from rank 0 only. */
void cli_note(bool quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_choice_ok tells whether val is one of the '|'-separated choices ("a|b|c"). */
bool cli_choice_ok(const char *choices, const char *val);

/* cli_parse_size parses "4096", "4K", "1.5M" into *out (powers of 1024). */
int cli_parse_size(const char *s, int64_t *out);

/* cli_parse_integer reads an integer: optional sign, decimal or 0x digits, an optional
 * fraction that must come out whole with the suffix ("1.5K"), an optional K/M/G, and
 * nothing else (no blanks). *mag is the magnitude, *neg the sign. MB_ERR_PARSE when it
 * is not such a number or its magnitude exceeds UINT64_MAX. */
int cli_parse_integer(const char *s, bool *neg, uint64_t *mag);
/* cli_parse_int parses with cli_parse_integer into [lo, hi]: MB_OK, MB_ERR_PARSE (not a
 * number) or MB_ERR_ARG (out of range); the one numeric parser for lists inside an
 * option's value too (--layout tp=8, --sweep 8,16). */
int cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* cli_given tells whether the last cli_parse set the option with that target from argv
 * (not from its default). */
bool cli_given(const void *target);
/* cli_only_with refuses an option that belongs to a mode the command is not in: when
 * the option (its target) was given and mode_on is false, prints "--name applies only
 * with MODE" and its hint, and returns 2; else 0. */
int cli_only_with(const void *target, const char *name, bool mode_on, const char *mode);

#endif
