/* cli.c - declarative long options, help and user-facing errors (see cli.h). */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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
	char line[2048];
	int n = snprintf(line, sizeof(line), "moebench: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* NOTE: the whole line in one write: unbuffered stderr would otherwise write it in
	 * three pieces, which a launcher merging several ranks' streams may split apart. */
	strcat(line, "\n");
	fputs(line, stderr);
}

/* digits_u64 reads decimal (or 0x hexadecimal) digits at *p into *v, refusing a value
 * over UINT64_MAX. Returns the number of digits read (0: none, -1: overflow). */
static int digits_u64(const char **p, uint64_t *v)
{
	unsigned base = 10;
	int n = 0;
	if ((*p)[0] == '0' && ((*p)[1] == 'x' || (*p)[1] == 'X') && isxdigit((unsigned char)(*p)[2]))
		base = 16, *p += 2;
	for (*v = 0; isxdigit((unsigned char)**p); (*p)++, n++) {
		unsigned d = isdigit((unsigned char)**p) ? (unsigned)(**p - '0') :
			     (unsigned)(tolower((unsigned char)**p) - 'a' + 10);
		if (d >= base)
			break;
		if (__builtin_mul_overflow(*v, base, v) || __builtin_add_overflow(*v, d, v))
			return -1;
	}
	return n;
}

/* suffix_mul reads an optional K, M or G (powers of 1024) at *p. */
static uint64_t suffix_mul(const char **p)
{
	static const char letters[] = "kmg";
	const char *at = **p ? strchr(letters, tolower((unsigned char)**p)) : NULL;
	if (!at)
		return 1;
	(*p)++;
	return (uint64_t)1 << (10 * (at - letters + 1));
}

/* fraction_part reads ".ddd" (at most 9 digits) scaled by mul; it must come out whole. */
static int fraction_part(const char **p, uint64_t *add)
{
	uint64_t num = 0, den = 1;
	const char *q = *p + 1;
	int n = 0;
	*add = 0;
	if (**p != '.')
		return MB_OK;
	for (; isdigit((unsigned char)*q) && n < 9; q++, n++)
		num = num * 10 + (uint64_t)(*q - '0'), den *= 10;
	if (n == 0 || isdigit((unsigned char)*q))
		return MB_ERR_PARSE;
	*p = q;
	const char *s = q;
	uint64_t mul = suffix_mul(&s);
	if (num * mul % den)
		return MB_ERR_PARSE; /* 1.3K is not a whole number */
	*add = num * mul / den;
	return MB_OK;
}

int cli_parse_integer(const char *s, bool *neg, uint64_t *mag)
{
	const char *p = s;
	uint64_t v, add, mul;
	*neg = *p == '-';
	if (*p == '-' || *p == '+')
		p++;
	int n = digits_u64(&p, &v);
	if (n <= 0 || fraction_part(&p, &add))
		return MB_ERR_PARSE;
	mul = suffix_mul(&p);
	if (*p || __builtin_mul_overflow(v, mul, &v) || __builtin_add_overflow(v, add, &v))
		return MB_ERR_PARSE;
	*mag = v;
	return MB_OK;
}

int cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	bool neg;
	uint64_t mag;
	if (cli_parse_integer(s, &neg, &mag))
		return MB_ERR_PARSE;
	if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
		return MB_ERR_ARG;
	int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	if (v < lo || v > hi)
		return MB_ERR_ARG;
	*out = v;
	return MB_OK;
}

int cli_parse_size(const char *s, int64_t *out)
{
	int err = cli_parse_int(s, INT64_MIN, INT64_MAX, out);
	return err ? MB_ERR_PARSE : MB_OK;
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

/* int_bounds intersects an option's range with its target type's: [*lo, *hi]. */
static void int_bounds(const struct cli_opt *o, int64_t *lo, int64_t *hi)
{
	*lo = o->kind == CLI_INT ? INT_MIN : INT64_MIN;
	*hi = o->kind == CLI_INT ? INT_MAX : INT64_MAX;
	if (o->min > o->max)
		return;
	if (o->min > (double)*lo)
		*lo = (int64_t)ceil(o->min);
	if (o->max < (double)*hi)
		*hi = (int64_t)floor(o->max);
}

/* set_integer parses an integer option (CLI_INT, CLI_SIZE, CLI_U64) into its target,
 * range-checked against the option and the target type: nothing wraps around. */
static int set_integer(const struct cli_opt *o, const char *val, const char *hint)
{
	const char *what = o->kind == CLI_SIZE ? "size (e.g. 4096 or 4K)" : "whole number";
	int64_t lo, hi, v;
	bool neg;
	uint64_t mag;
	if (cli_parse_integer(val, &neg, &mag))
		return cli_error(hint, "--%s: '%s' is not a valid %s", o->name, val, what);
	if (o->kind == CLI_U64) {
		if (neg && mag)
			return cli_error(hint, "--%s: '%s' is negative; it takes 0 .. %" PRIu64,
					 o->name, val, UINT64_MAX);
		*(uint64_t *)o->target = mag;
		return 0;
	}
	int_bounds(o, &lo, &hi);
	if (cli_parse_int(val, lo, hi, &v))
		return cli_error(hint, "--%s: %s is out of range [%" PRId64 ", %" PRId64 "]",
				 o->name, val, lo, hi);
	if (o->kind == CLI_INT)
		*(int *)o->target = (int)v;
	else
		*(int64_t *)o->target = v;
	return 0;
}

/* set_double parses a CLI_DOUBLE option: finite, in range, nothing after the number. */
static int set_double(const struct cli_opt *o, const char *val, const char *hint)
{
	char *end;
	errno = 0;
	double v = strtod(val, &end);
	if (end == val || *end || errno || !isfinite(v) || isspace((unsigned char)val[0]))
		return cli_error(hint, "--%s: '%s' is not a valid number", o->name, val);
	if (o->min <= o->max && !(v >= o->min && v <= o->max))
		return cli_error(hint, "--%s: %s is out of range [%g, %g]", o->name, val, o->min,
				 o->max);
	*(double *)o->target = v;
	return 0;
}

/* set_value stores a textual value into an option's target, reporting bad values. An
 * empty value is refused for every kind: an empty path or list means nothing. */
static int set_value(const char *cmd, const struct cli_opt *o, const char *val)
{
	char hint[256];
	snprintf(hint, sizeof(hint), "moebench %s --help shows --%s and its default", cmd, o->name);
	if (!val[0])
		return cli_error(hint, "--%s: empty value", o->name);
	switch (o->kind) {
	case CLI_STRING:
		*(const char **)o->target = val;
		return 0;
	case CLI_CHOICE:
		if (!cli_choice_ok(o->choices, val))
			return cli_error(hint, "--%s: '%s' is not one of %s", o->name, val, o->choices);
		*(const char **)o->target = val;
		return 0;
	case CLI_DOUBLE:
		return set_double(o, val, hint);
	case CLI_INT: case CLI_SIZE: case CLI_U64:
		return set_integer(o, val, hint);
	case CLI_FLAG:
		break;
	}
	return cli_error(hint, "--%s takes no value", o->name);
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
		/* NOTE: an empty default ("none given") is the command's, not a user's
		 * empty value, which set_value refuses. */
		else if (t->def && !t->def[0] && t->kind == CLI_STRING)
			*(const char **)t->target = t->def;
		else if (t->def && set_value(cmd, t, t->def))
			return 2;
	}
	return 0;
}

/* The options the last cli_parse was given (their targets: one target per option). */
#define CLI_MAX_GIVEN 128
static const void *given[CLI_MAX_GIVEN];
static int n_given;

bool cli_given(const void *target)
{
	for (int i = 0; i < n_given; i++)
		if (given[i] == target)
			return true;
	return false;
}

/* note_given records an option as given; false when it already was (a duplicate). */
static bool note_given(const struct cli_opt *o)
{
	if (cli_given(o->target))
		return false;
	if (n_given < CLI_MAX_GIVEN)
		given[n_given++] = o->target;
	return true;
}

/* help_left writes an option's left column ("--iters N"); a command's --json flag is
 * shown as the canonical --format text|json it is an alias of. */
static void help_left(const struct cli_opt *o, char *left, size_t len)
{
	if (o->kind == CLI_FLAG && strcmp(o->name, "json") == 0)
		snprintf(left, len, "--format text|json");
	else
		snprintf(left, len, "-%s%s %s", o->name[1] ? "-" : "", o->name, kind_word(o));
}

void cli_help(const char *cmd, const char *usage, const struct cli_opt *a,
	      const struct cli_opt *b)
{
	printf("usage: %s\n\noptions:\n", usage);
	const struct cli_opt *tabs[2] = { b, a };
	bool has_format = false;
	for (int k = 0; k < 2; k++) {
		for (const struct cli_opt *o = tabs[k]; o && o->name; o++) {
			char left[96];
			help_left(o, left, sizeof(left));
			bool json = o->kind == CLI_FLAG && strcmp(o->name, "json") == 0;
			has_format = has_format || json || strcmp(o->name, "format") == 0;
			printf("  %-30s %s", left, json ? "what stdout shows: text or one JSON object"
					  : o->help);
			if (o->def)
				printf(" [default: %s]", o->def);
			putchar('\n');
		}
	}
	if (has_format)
		printf("  %-30s %s\n", "--json", "alias of --format json");
	printf("  %-30s %s\n", "--help", "show this help and exit");
	printf("\nEach option at most once (a repeated option is an error, not 'last wins'); "
	       "sizes and counts take K, M, G (powers of 1024).\n");
	(void)cmd;
}

/* lookup finds the option argv names: the command's table first, then the shared one.
 * NOTE: --format and --json are one option everywhere: --json is --format json, and
 * where a command has only a --json flag, --format text|json sets that flag. */
static const struct cli_opt *lookup(const struct cli_opt *a, const struct cli_opt *b,
				    const char *name, size_t len, const char **alias_val)
{
	const struct cli_opt *o = find_opt(b, name, len);
	*alias_val = NULL;
	if (!o)
		o = find_opt(a, name, len);
	if (o)
		return o;
	if (len == 4 && strncmp(name, "json", 4) == 0) {
		*alias_val = "json";
		return (o = find_opt(b, "format", 6)) ? o : find_opt(a, "format", 6);
	}
	if (len == 6 && strncmp(name, "format", 6) == 0) {
		*alias_val = "";  /* the flag takes --format's value */
		return (o = find_opt(b, "json", 4)) ? o : find_opt(a, "json", 4);
	}
	return NULL;
}

/* set_flag_format sets a --json flag from "--format text|json". */
static int set_flag_format(const char *cmd, const struct cli_opt *o, const char *val)
{
	char hint[160];
	snprintf(hint, sizeof(hint), "moebench %s --help shows --format", cmd);
	if (strcmp(val, "json") && strcmp(val, "text"))
		return cli_error(hint, "--format: '%s' is not one of text|json", val);
	*(bool *)o->target = strcmp(val, "json") == 0;
	return 0;
}

/* parse_option handles argv[*i], an option, advancing *i past its value. Returns 0
 * or 2 after printing the error. */
static int parse_option(const char *cmd, int argc, char **argv, int *i, bool short_opt,
			const struct cli_opt *a, const struct cli_opt *b, const char *hint)
{
	const char *name = argv[*i] + (short_opt ? 1 : 2), *eq = strchr(name, '='), *alias;
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct cli_opt *o = lookup(a, b, name, len, &alias);
	if (!o)
		return cli_error(hint, "%s: unknown option '--%.*s'", cmd, (int)len, name);
	if (!note_given(o))
		return cli_error("give each option once", "--%.*s: given twice%s", (int)len, name,
				 alias ? " (--json is --format json)" : "");
	if (alias && alias[0]) {  /* --json for --format json */
		if (eq)
			return cli_error(hint, "--json takes no value");
		return set_value(cmd, o, alias);
	}
	if (o->kind == CLI_FLAG && !alias) {
		if (eq)
			return cli_error(hint, "--%s takes no value", o->name);
		*(bool *)o->target = true;
		return 0;
	}
	const char *val = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
	if (!val)
		return cli_error(hint, "--%.*s needs a value", (int)len, name);
	return alias ? set_flag_format(cmd, o, val) : set_value(cmd, o, val);
}

int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *a,
	      const struct cli_opt *b, char **pos, int max_pos, int *n_pos, bool *help_shown,
	      const char *usage)
{
	char hint[256];
	*n_pos = 0;
	*help_shown = false;
	n_given = 0;
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
		if (parse_option(cmd, argc, argv, &i, short_opt, a, b, hint))
			return 2;
	}
	return 0;
}

int cli_only_with(const void *target, const char *name, bool mode_on, const char *mode)
{
	char hint[160];
	if (!cli_given(target) || mode_on)
		return 0;
	snprintf(hint, sizeof(hint), "add %s, or drop --%s", mode, name);
	return cli_error(hint, "--%s applies only with %s", name, mode);
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
		{ "out", CLI_STRING, NULL, NULL, "result file, a new one or (with --force) a regular file to replace (default: results/runs/local/<UTC time to the us>-<host>-<pid>-<command>.json)", 0, -1, NULL },
		{ "format", CLI_CHOICE, NULL, "text", "what stdout shows", 0, -1, "text|json|csv|gbench|bmf" },
		{ "seed", CLI_U64, NULL, "1", "seed of the random inputs", 0, -1, NULL },
		{ "quiet", CLI_FLAG, NULL, NULL, "no notes or progress on stderr", 0, -1, NULL },
		{ "force", CLI_FLAG, NULL, NULL, "replace an existing regular --out file (never a device, FIFO, link or directory)", 0, -1, NULL },
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
