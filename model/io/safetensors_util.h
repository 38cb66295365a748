/*
 * safetensors_util.h - helpers the safetensors reader and writer share (not a public
 * API): a growable text buffer with JSON string escaping, UTF-8 validation, shape
 * products with overflow checks, little-endian 64-bit integers.
 */
#ifndef MB_MODEL_SAFETENSORS_UTIL_H
#define MB_MODEL_SAFETENSORS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The largest byte count a shape may span: 2^53, exact in a JSON (double) number. */
#define ST_MAX_BYTES (1ull << 53)

struct st_buf {
	char *p;
	size_t len, cap;
	int oom;        /* an allocation failed: the content is incomplete */
};

/* st_buf_put appends n bytes; st_buf_printf appends formatted text. */
void st_buf_put(struct st_buf *b, const char *s, size_t n);
void st_buf_printf(struct st_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* st_buf_json_string appends s as a JSON string: quotes, backslashes and control
 * characters escaped, other bytes (UTF-8) as they are. */
void st_buf_json_string(struct st_buf *b, const char *s);

/* st_utf8_valid is 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int st_utf8_valid(const unsigned char *s, size_t n);
/* st_shape_numel multiplies the dims into *numel; MB_ERR_ARG for a negative dim or a
 * product whose F32 bytes would exceed ST_MAX_BYTES. */
int st_shape_numel(const int64_t *shape, int ndim, int64_t *numel);
/* st_put_le64 / st_get_le64 store and load a little-endian 64-bit integer. */
void st_put_le64(unsigned char *p, uint64_t v);
uint64_t st_get_le64(const unsigned char *p);

#endif
