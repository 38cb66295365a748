/*
 * stderr_catch.h - catch what a call writes to stderr (a refusal's error line and hint)
 * into a buffer, for suites that assert the text: stderr_catch_begin before the call,
 * stderr_catch_end after it.
 */
#ifndef MB_TEST_STDERR_CATCH_H
#define MB_TEST_STDERR_CATCH_H

#include <check.h>
#include <stdio.h>
#include <unistd.h>

struct stderr_catch {
	FILE *f;
	int saved;
};

/* stderr_catch_begin sends file descriptor 2 to a temporary file. */
static inline void stderr_catch_begin(struct stderr_catch *c)
{
	c->f = tmpfile();
	ck_assert_ptr_nonnull(c->f);
	fflush(stderr);
	c->saved = dup(2);
	dup2(fileno(c->f), 2);
}

/* stderr_catch_end restores stderr and copies what was written into buf [len]. */
static inline void stderr_catch_end(struct stderr_catch *c, char *buf, size_t len)
{
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	rewind(c->f);
	size_t n = fread(buf, 1, len - 1, c->f);
	buf[n] = '\0';
	fclose(c->f);
}

#endif
