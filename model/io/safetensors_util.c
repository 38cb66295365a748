/*
 * safetensors_util.c - the shared helpers of safetensors_util.h.
 */
#include "safetensors_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* grow makes room for n more bytes plus a terminating NUL. */
static int grow(struct st_buf *b, size_t n)
{
	if (b->oom)
		return 0;
	if (b->len + n + 1 <= b->cap)
		return 1;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return 0;
	}
	b->p = p;
	b->cap = cap;
	return 1;
}

void st_buf_put(struct st_buf *b, const char *s, size_t n)
{
	if (!grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void st_buf_printf(struct st_buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* NOTE: callers format numbers and short keys only; longer text is a bug. */
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->oom = 1;
		return;
	}
	st_buf_put(b, tmp, (size_t)n);
}

void st_buf_json_string(struct st_buf *b, const char *s)
{
	st_buf_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			st_buf_put(b, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			st_buf_put(b, esc, 6);
		} else {
			st_buf_put(b, (const char *)p, 1);
		}
	}
	st_buf_put(b, "\"", 1);
}

/* utf8_seq returns the length of the well-formed UTF-8 sequence at s (n bytes left),
 * or 0 when it is malformed. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need;
	unsigned lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	/* Second-byte ranges that exclude overlongs, surrogates and code points > U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

int st_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t k = utf8_seq(s + i, n - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

int st_shape_numel(const int64_t *shape, int ndim, int64_t *numel)
{
	uint64_t p = 1;
	int zero = 0;
	for (int d = 0; d < ndim; d++) {
		if (shape[d] < 0)
			return MB_ERR_ARG;
		if (shape[d] == 0)
			zero = 1;
	}
	/* NOTE: a zero dim makes the product 0 whatever the others are, but the others
	 * are still bounded so that no later product overflows. */
	for (int d = 0; d < ndim; d++) {
		uint64_t s = shape[d] ? (uint64_t)shape[d] : 1;
		if (s > ST_MAX_BYTES / 4 || p > ST_MAX_BYTES / 4 / s)
			return MB_ERR_ARG;
		p *= s;
	}
	*numel = zero ? 0 : (int64_t)p;
	return MB_OK;
}

void st_put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t st_get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}
