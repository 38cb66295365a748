/*
 * safetensors_write.c - the safetensors writer (st_write): validate the tensor list,
 * build the JSON header, pad it with spaces to 8 bytes, stream the tensors as
 * little-endian bytes through atomic_file. The reader is safetensors.c.
 */
#define _GNU_SOURCE
#include "safetensors.h"
#include "safetensors_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "bf16.h"
#include "status.h"

/* Elements converted per write: 64 Ki floats, 256 KiB of bytes. */
#define ST_CHUNK 65536

/* cmp_name orders tensor pointers by name (duplicate check). */
static int cmp_name(const void *a, const void *b)
{
	const struct st_tensor *x = *(const struct st_tensor *const *)a;
	const struct st_tensor *y = *(const struct st_tensor *const *)b;
	return strcmp(x->name, y->name);
}

/* check_tensor validates one tensor to write and returns its element count in *numel. */
static int check_tensor(const struct st_tensor *t, int i, int64_t *numel, char *why,
			size_t len)
{
	if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0 ||
	    !st_utf8_valid((const unsigned char *)t->name, strlen(t->name))) {
		snprintf(why, len, "tensor %d: name must be non-empty UTF-8, not __metadata__",
			 i);
		return MB_ERR_ARG;
	}
	if ((t->dtype != ST_F32 && t->dtype != ST_BF16) || t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
		snprintf(why, len, "tensor '%s': bad dtype or ndim %d", t->name, t->ndim);
		return MB_ERR_ARG;
	}
	if (st_shape_numel(t->shape, t->ndim, numel) != MB_OK) {
		snprintf(why, len, "tensor '%s': shape has a negative or too large dimension",
			 t->name);
		return MB_ERR_ARG;
	}
	if (*numel > 0 && !t->data) {
		snprintf(why, len, "tensor '%s': no data", t->name);
		return MB_ERR_ARG;
	}
	return MB_OK;
}

/* check_list validates every tensor and the metadata, and refuses duplicate names. */
static int check_list(const struct st_tensor *t, int n, const char *const *meta_kv,
		      int64_t *numel, char *why, size_t len)
{
	const struct st_tensor **by_name = NULL;
	int err = MB_OK;
	if (n < 0 || n > ST_MAX_TENSORS || (n > 0 && !t)) {
		snprintf(why, len, "bad tensor count %d", n);
		return MB_ERR_ARG;
	}
	for (int i = 0; i < n && !err; i++)
		err = check_tensor(&t[i], i, &numel[i], why, len);
	for (int i = 0; meta_kv && meta_kv[i] && !err; i += 2) {
		const char *k = meta_kv[i], *v = meta_kv[i + 1];
		if (!v || !st_utf8_valid((const unsigned char *)k, strlen(k)) ||
		    !st_utf8_valid((const unsigned char *)v, strlen(v))) {
			snprintf(why, len, "metadata entry %d: needs a UTF-8 key and value", i / 2);
			err = MB_ERR_ARG;
		}
	}
	if (err || n < 2)
		return err;
	by_name = malloc((size_t)n * sizeof(*by_name));
	if (!by_name)
		return MB_ERR_NOMEM;
	for (int i = 0; i < n; i++)
		by_name[i] = &t[i];
	qsort(by_name, (size_t)n, sizeof(*by_name), cmp_name);
	for (int i = 1; i < n && !err; i++) {
		if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
			snprintf(why, len, "tensor '%s' given twice", by_name[i]->name);
			err = MB_ERR_ARG;
		}
	}
	free(by_name);
	return err;
}

/* put_entry appends one tensor's header entry, its span starting at *offset. */
static void put_entry(struct st_buf *b, const struct st_tensor *t, int64_t numel,
		      uint64_t *offset)
{
	uint64_t end = *offset + (uint64_t)numel * st_dtype_size(t->dtype);
	st_buf_json_string(b, t->name);
	st_buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
	for (int d = 0; d < t->ndim; d++)
		st_buf_printf(b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
	st_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)*offset,
		      (unsigned long long)end);
	*offset = end;
}

/* build_header writes the JSON header, padded with spaces to a multiple of 8 bytes,
 * preceded by its 8-byte little-endian length. */
static int build_header(struct st_buf *b, const struct st_tensor *t, int n,
			const char *const *meta_kv, const int64_t *numel)
{
	uint64_t offset = 0;
	int first = 1;
	st_buf_put(b, "\0\0\0\0\0\0\0\0", 8);
	st_buf_put(b, "{", 1);
	if (meta_kv && meta_kv[0]) {
		st_buf_put(b, "\"__metadata__\":{", 16);
		for (int i = 0; meta_kv[i]; i += 2) {
			st_buf_put(b, i ? "," : "", i ? 1 : 0);
			st_buf_json_string(b, meta_kv[i]);
			st_buf_put(b, ":", 1);
			st_buf_json_string(b, meta_kv[i + 1]);
		}
		st_buf_put(b, "}", 1);
		first = 0;
	}
	for (int i = 0; i < n; i++) {
		st_buf_put(b, ",", first ? 0 : 1);
		put_entry(b, &t[i], numel[i], &offset);
		first = 0;
	}
	st_buf_put(b, "}", 1);
	while (b->len % 8)
		st_buf_put(b, " ", 1);
	if (b->oom)
		return MB_ERR_NOMEM;
	st_put_le64((unsigned char *)b->p, (uint64_t)b->len - 8);
	return MB_OK;
}

/* write_data streams one tensor's values as little-endian bytes of its dtype. */
static void write_data(struct atomic_file *af, const struct st_tensor *t, int64_t numel,
		       unsigned char *chunk)
{
	for (int64_t i = 0; i < numel; i += ST_CHUNK) {
		int64_t m = numel - i < ST_CHUNK ? numel - i : ST_CHUNK;
		size_t bytes = 0;
		for (int64_t j = 0; j < m; j++) {
			float x = t->data[i + j];
			if (t->dtype == ST_BF16) {
				uint16_t h = bf16_from_float(x);
				chunk[bytes++] = (unsigned char)(h & 0xff);
				chunk[bytes++] = (unsigned char)(h >> 8);
			} else {
				uint32_t u;
				memcpy(&u, &x, 4);
				for (int k = 0; k < 4; k++)
					chunk[bytes++] = (unsigned char)(u >> (8 * k));
			}
		}
		atomic_file_write(af, chunk, bytes);
	}
}

int st_write(const char *path, const struct st_tensor *t, int n, const char *const *meta_kv,
	     char *why, size_t len)
{
	char inner[512] = "";
	struct st_buf header = { 0 };
	struct atomic_file af = { .fd = -1 };
	unsigned char *chunk = malloc(ST_CHUNK * 4);
	int64_t *numel = calloc(n > 0 ? (size_t)n : 1, sizeof(*numel));
	int err = chunk && numel ? MB_OK : MB_ERR_NOMEM;
	if (!err)
		err = check_list(t, n, meta_kv, numel, inner, sizeof(inner));
	if (!err)
		err = build_header(&header, t, n, meta_kv, numel);
	if (err) {
		snprintf(why, len, "%s: %s", path ? path : "(null)",
			 err == MB_ERR_NOMEM ? "out of memory" : inner);
		goto out;
	}
	err = atomic_file_open(&af, path, why, len);
	if (err)
		goto out;
	atomic_file_write(&af, header.p, header.len);
	for (int i = 0; i < n; i++)
		write_data(&af, &t[i], numel[i], chunk);
	err = atomic_file_commit(&af, why, len);
out:
	atomic_file_abort(&af);
	free(header.p);
	free(numel);
	free(chunk);
	return err;
}
