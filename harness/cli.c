/* cli.c - declarative long options, help and user-facing errors (see cli.h). */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_world.h"
#include "status.h"

/* print_error writes the error line (with "rank R: " when ranked) and the hint. */
static int print_error(bool ranked, const char *hint, const char *msg)
{
	if (ranked)
		fprintf(stderr, "moebench: error: rank %d: %s\n", mpi_world_rank(), msg);
	else
		fprintf(stderr, "moebench: error: %s\n", msg);
	if (hint)
		fprintf(stderr, "hint: %s\n", hint);
	return 2;
}

int cli_error(const char *hint, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* NOTE: under mpirun an error names the rank that has it. */
	return print_error(mpi_world_size() > 1, hint, msg);
}

int cli_error_once(const char *hint, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];
	if (!mpi_world_is_root())
		return 2;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return print_error(false, hint, msg);
}

void cli_note(bool quiet, const char *fmt, ...)
{
	va_list ap;
	/* NOTE: notes and progress come from rank 0 alone: one voice under mpirun. */
	if (quiet || !mpi_world_is_root())
		return;
	fputs("moebench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_parse_size(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v))
		return MB_ERR_PARSE;
	double mul = 1;
	if (*end == 'K' || *end == 'k')
		mul = 1024.0, end++;
	else if (*end == 'M' || *end == 'm')
		mul = 1048576.0, end++;
	else if (*end == 'G' || *end == 'g')
		mul = 1073741824.0, end++;
	v *= mul;
	if (*end || v != floor(v) || fabs(v) > 9.0e18)
		return MB_ERR_PARSE;
	*out = (int64_t)v;
	return MB_OK;
}

static const char *kind_word(const struct cli_opt *o)
{
	switch (o->kind) {
	case CLI_FLAG: return "";
	case CLI_INT: return "N";
	case CLI_SIZE: return "SIZE";
	case CLI_DOUBLE: return "X";
	case CLI_STRING: return "STR";
	case CLI_CHOICE: return o->choices;
	case CLI_U64: return "N";
	}
	return "";
}

/* range_ok checks a number against the option's inclusive range. */
static bool range_ok(const struct cli_opt *o, double v)
{
	return o->min > o->max || (v >= o->min && v <= o->max);
}

bool cli_choice_ok(const char *choices, const char *val)
{
	size_t n = strlen(val);
	for (const char *p = choices; p && *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, val, n) == 0)
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

/* parse_number reads val for a numeric option into v (no range check). */
static int parse_number(const struct cli_opt *o, const char *val, double *v)
{
	char *end;
	int64_t sz;
	errno = 0;
	if (o->kind == CLI_SIZE) {
		if (cli_parse_size(val, &sz))
			return MB_ERR_PARSE;
		*v = (double)sz;
		return MB_OK;
	}
	if (o->kind == CLI_U64) {
		if (val[0] == '-')
			return MB_ERR_PARSE;
		unsigned long long u = strtoull(val, &end, 0);
		*(uint64_t *)o->target = (uint64_t)u;
		*v = (double)u;
	} else if (o->kind == CLI_INT) {
		long l = strtol(val, &end, 10);
		*v = (double)l;
	} else {
		*v = strtod(val, &end);
	}
	return (end == val || *end || errno || !isfinite(*v)) ? MB_ERR_PARSE : MB_OK;
}

/* set_value stores a textual value into an option's target, reporting bad values. */
static int set_value(const char *cmd, const struct cli_opt *o, const char *val)
{
	char hint[256];
	double v = 0;
	snprintf(hint, sizeof(hint), "moebench %s --help shows --%s and its default", cmd, o->name);
	if (o->kind == CLI_STRING) {
		*(const char **)o->target = val;
		return 0;
	}
	if (o->kind == CLI_CHOICE) {
		if (!cli_choice_ok(o->choices, val))
			return cli_error(hint, "--%s: '%s' is not one of %s", o->name, val, o->choices);
		*(const char **)o->target = val;
		return 0;
	}
	if (parse_number(o, val, &v))
		return cli_error(hint, "--%s: '%s' is not a valid %s", o->name, val,
				 o->kind == CLI_SIZE ? "size (e.g. 4096 or 4K)" :
				 o->kind == CLI_DOUBLE ? "number" : "integer");
	if (!range_ok(o, v))
		return cli_error(hint, "--%s: %s is out of range [%g, %g]", o->name, val, o->min,
				 o->max);
	if (o->kind == CLI_INT)
		*(int *)o->target = (int)v;
	else if (o->kind == CLI_SIZE)
		*(int64_t *)o->target = (int64_t)v;
	else if (o->kind == CLI_DOUBLE)
		*(double *)o->target = v;
	return 0;
}

static const struct cli_opt *find_opt(const struct cli_opt *t, const char *name, size_t len)
{
	for (; t && t->name; t++)
		if (strlen(t->name) == len && strncmp(t->name, name, len) == 0)
			return t;
	return NULL;
}

/* apply_defaults sets every target from its default text (flags to false). */
static int apply_defaults(const char *cmd, const struct cli_opt *t)
{
	for (; t && t->name; t++) {
		if (t->kind == CLI_FLAG)
			*(bool *)t->target = false;
		else if (!t->def && (t->kind == CLI_STRING || t->kind == CLI_CHOICE))
			*(const char **)t->target = NULL;
		else if (t->def && set_value(cmd, t, t->def))
			return 2;
	}
	return 0;
}

void cli_help(const char *cmd, const char *usage, const struct cli_opt *a,
	      const struct cli_opt *b)
{
	printf("usage: %s\n\noptions:\n", usage);
	const struct cli_opt *tabs[2] = { b, a };
	for (int k = 0; k < 2; k++) {
		for (const struct cli_opt *o = tabs[k]; o && o->name; o++) {
			char left[96];
			snprintf(left, sizeof(left), "-%s%s %s", o->name[1] ? "-" : "", o->name,
				 kind_word(o));
			printf("  %-30s %s", left, o->help);
			if (o->def)
				printf(" [default: %s]", o->def);
			putchar('\n');
		}
	}
	printf("  %-30s %s\n", "--help", "show this help and exit");
	(void)cmd;
}

int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *a,
	      const struct cli_opt *b, char **pos, int max_pos, int *n_pos, bool *help_shown,
	      const char *usage)
{
	char hint[256];
	*n_pos = 0;
	*help_shown = false;
	if (apply_defaults(cmd, a) || apply_defaults(cmd, b))
		return 2;
	snprintf(hint, sizeof(hint), "moebench %s --help lists the options", cmd);
	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			cli_help(cmd, usage, a, b);
			*help_shown = true;
			return 0;
		}
		/* NOTE: "-b 8" is a one-letter option (nccl-tests' -b -e -f), as "--b 8". */
		bool short_opt = arg[0] == '-' && isalpha((unsigned char)arg[1]) && arg[2] == '\0';
		if (!short_opt && (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')) {
			if (*n_pos >= max_pos)
				return cli_error(hint, "%s: unexpected argument '%s'", cmd, arg);
			pos[(*n_pos)++] = arg;
			continue;
		}
		const char *name = arg + (short_opt ? 1 : 2), *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_opt *o = find_opt(b, name, len);
		if (!o)
			o = find_opt(a, name, len);
		if (!o)
			return cli_error(hint, "%s: unknown option '--%.*s'", cmd, (int)len, name);
		if (o->kind == CLI_FLAG) {
			if (eq)
				return cli_error(hint, "--%s takes no value", o->name);
			*(bool *)o->target = true;
			continue;
		}
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!val)
			return cli_error(hint, "--%s needs a value", o->name);
		if (set_value(cmd, o, val))
			return 2;
	}
	return 0;
}

const struct cli_opt *cli_common_opts(struct cli_common *c, const char *warmup,
				      const char *iters, const char *min_time)
{
	static struct cli_opt t[] = {
		{ "backend", CLI_CHOICE, NULL, "auto", "where to run: auto picks CUDA when a device answers", 0, -1, "auto|cpu|cuda" },
		{ "device", CLI_INT, NULL, "0", "CUDA device index", 0, 1023, NULL },
		{ "warmup", CLI_INT, NULL, NULL, "untimed repetitions before timing", 0, 1e6, NULL },
		{ "iters", CLI_INT, NULL, NULL, "timed repetitions (at least)", 1, 1e7, NULL },
		{ "min-time", CLI_DOUBLE, NULL, NULL, "keep repeating until this many seconds are timed", 0, 3600, NULL },
		{ "out", CLI_STRING, NULL, NULL, "result file (default: a new results/runs/local/<date>-<host>-<command>.json)", 0, -1, NULL },
		{ "format", CLI_CHOICE, NULL, "text", "what stdout shows", 0, -1, "text|json|csv|gbench|bmf" },
		{ "seed", CLI_U64, NULL, "1", "seed of the random inputs", 0, -1, NULL },
		{ "quiet", CLI_FLAG, NULL, NULL, "no notes or progress on stderr", 0, -1, NULL },
		{ "force", CLI_FLAG, NULL, NULL, "overwrite an existing --out file", 0, -1, NULL },
		{ "cold", CLI_FLAG, NULL, NULL, "flush the GPU L2 cache between repetitions", 0, -1, NULL },
		{ "hardware", CLI_STRING, NULL, NULL, "JSON file of extra hardware datasheet entries", 0, -1, NULL },
		{ "counters", CLI_STRING, NULL, "default", "PAPI events, comma-separated; 'default' or 'none'", 0, -1, NULL },
		CLI_END
	};
	void *targets[] = { &c->backend, &c->device, &c->warmup, &c->iters, &c->min_time,
			    &c->out, &c->format, &c->seed, &c->quiet, &c->force, &c->cold,
			    &c->hardware, &c->counters };
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		t[i].target = targets[i];
	t[2].def = warmup;
	t[3].def = iters;
	t[4].def = min_time;
	return t;
}
