/*
 * cli_harness.h - running the real moebench program from a Check suite, as a user
 * would: a shell line in a fresh temporary directory with $MB (the program) and $SRC
 * (the source tree) set, its stdout and stderr captured in `out`. Shared by the CLI
 * suites (test_cli.c, test_cli_model.c); include it once per suite.
 */
#ifndef MB_TESTS_CLI_HARNESS_H
#define MB_TESTS_CLI_HARNESS_H

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];       /* the temporary directory of the running test */
static char out[262144];   /* what the last sh() printed (its first 256 KiB) */

/* sh runs a shell line in dir, capturing stdout+stderr into out; returns the exit
 * status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096], line[4096];
	va_list ap;
	int n = snprintf(cmd, sizeof(cmd), "cd %s && MB=%s; SRC=%s; ", dir, MOEBENCH_BIN,
			 MOEBENCH_SOURCE_DIR);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	out[0] = '\0';
	size_t used = 0;
	/* NOTE: read to the end even past the buffer: closing the pipe early would end
	 * the command by SIGPIPE (exit 141) instead of its own status */
	while (fgets(line, sizeof(line), p)) {
		size_t k = strlen(line);
		if (used + k < sizeof(out)) {
			memcpy(out + used, line, k + 1);
			used += k;
		}
	}
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* cli_setup makes a fresh temporary directory for one test. */
static void cli_setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mb_cli_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* cli_teardown removes it. */
static void cli_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* expect_error runs a shell line and expects exit 2 with exactly one
 * "moebench: error:" line that names what, and a hint. */
static void expect_error(const char *line, const char *what)
{
	int st = sh("%s", line);
	ck_assert_msg(st == 2, "'%s' exited %d: %s", line, st, out);
	char *first = strstr(out, "moebench: error: ");
	ck_assert_msg(first, "'%s': no error line: %s", line, out);
	ck_assert_msg(strstr(out, what), "'%s': error does not name '%s': %s", line, what, out);
	ck_assert_msg(strstr(out, "hint: "), "'%s': no hint: %s", line, out);
	ck_assert_msg(!strstr(first + 1, "moebench: error: "), "'%s': more than one error line", line);
}

#endif
