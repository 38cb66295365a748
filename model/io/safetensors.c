/*
 * safetensors.c - the safetensors reader: st_open validates the whole header against
 * the file before anything is used, st_read_f32 reads one tensor on demand. The rules
 * are listed in safetensors.h; the writer is safetensors_write.c.
 */
#define _GNU_SOURCE
#include "safetensors.h"
#include "safetensors_util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf16.h"
#include "status.h"

/* Elements read and converted per pread. */
#define ST_READ_CHUNK 65536

struct st_file {
	int fd;
	char *path;
	uint64_t data_start;            /* 8 + header length */
	int n;
	struct st_entry *entries;       /* header order */
	int *by_name;                   /* entry indices sorted by name */
	int n_meta;
	char **meta;                    /* key, value, key, value ... */
};

const char *st_dtype_name(enum st_dtype dtype)
{
	return dtype == ST_BF16 ? "BF16" : dtype == ST_F32 ? "F32" : "?";
}

size_t st_dtype_size(enum st_dtype dtype)
{
	return dtype == ST_BF16 ? 2 : 4;
}

/* pread_full reads exactly n bytes at off; MB_ERR_IO on an error or a short file. */
static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return MB_ERR_IO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return MB_OK;
}

/* get_uint reads a JSON number that must be an integer in [0, ST_MAX_BYTES]. */
static int get_uint(const cJSON *v, uint64_t *out)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
	    v->valuedouble > (double)ST_MAX_BYTES || v->valuedouble != floor(v->valuedouble))
		return MB_ERR_PARSE;
	*out = (uint64_t)v->valuedouble;
	return MB_OK;
}

/* parse_shape reads "shape": an array of at most ST_MAX_DIMS non-negative integers. */
static int parse_shape(const cJSON *v, struct st_entry *e, char *why, size_t len)
{
	int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
	if (n < 0 || n > ST_MAX_DIMS) {
		snprintf(why, len, "tensor '%s': shape must be an array of at most %d integers",
			 e->name, ST_MAX_DIMS);
		return MB_ERR_PARSE;
	}
	e->ndim = n;
	for (int d = 0; d < n; d++) {
		uint64_t s;
		if (get_uint(cJSON_GetArrayItem(v, d), &s) != MB_OK) {
			snprintf(why, len, "tensor '%s': shape[%d] is not a non-negative integer",
				 e->name, d);
			return MB_ERR_PARSE;
		}
		e->shape[d] = (int64_t)s;
	}
	if (st_shape_numel(e->shape, e->ndim, &e->numel) != MB_OK) {
		snprintf(why, len, "tensor '%s': shape too large", e->name);
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

/* parse_offsets reads "data_offsets": [begin, end] with begin <= end. */
static int parse_offsets(const cJSON *v, struct st_entry *e, char *why, size_t len)
{
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 ||
	    get_uint(cJSON_GetArrayItem(v, 0), &e->begin) != MB_OK ||
	    get_uint(cJSON_GetArrayItem(v, 1), &e->end) != MB_OK || e->begin > e->end) {
		snprintf(why, len, "tensor '%s': data_offsets must be [begin, end], integers, "
			 "begin <= end", e->name);
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

/* parse_dtype reads "dtype": one of the dtypes moebench reads. */
static int parse_dtype(const cJSON *v, struct st_entry *e, char *why, size_t len)
{
	if (cJSON_IsString(v) && strcmp(v->valuestring, "F32") == 0)
		e->dtype = ST_F32;
	else if (cJSON_IsString(v) && strcmp(v->valuestring, "BF16") == 0)
		e->dtype = ST_BF16;
	else {
		snprintf(why, len, "tensor '%s': dtype %s%.16s%s is not supported (F32, BF16)",
			 e->name, cJSON_IsString(v) ? "'" : "", cJSON_IsString(v) ? v->valuestring
			 : "(not a string)", cJSON_IsString(v) ? "'" : "");
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

/* parse_entry reads one tensor's object: exactly dtype, shape and data_offsets, and a
 * byte span that matches shape and dtype. */
static int parse_entry(const cJSON *obj, struct st_entry *e, char *why, size_t len)
{
	static const char *const keys[3] = { "dtype", "shape", "data_offsets" };
	const cJSON *seen[3] = { NULL, NULL, NULL };
	const cJSON *v;
	int err = MB_OK;
	if (!cJSON_IsObject(obj)) {
		snprintf(why, len, "tensor '%s': entry is not an object", e->name);
		return MB_ERR_PARSE;
	}
	cJSON_ArrayForEach(v, obj) {
		int k = 0;
		while (k < 3 && strcmp(v->string, keys[k]) != 0)
			k++;
		if (k == 3 || seen[k]) {
			snprintf(why, len, "tensor '%s': %s key '%.32s'", e->name,
				 k == 3 ? "unknown" : "repeated", v->string);
			return MB_ERR_PARSE;
		}
		seen[k] = v;
	}
	for (int k = 0; k < 3 && !err; k++) {
		if (!seen[k]) {
			snprintf(why, len, "tensor '%s': no '%s'", e->name, keys[k]);
			return MB_ERR_PARSE;
		}
	}
	err = parse_dtype(seen[0], e, why, len);
	if (!err)
		err = parse_shape(seen[1], e, why, len);
	if (!err)
		err = parse_offsets(seen[2], e, why, len);
	if (!err && (uint64_t)e->numel * st_dtype_size(e->dtype) != e->end - e->begin) {
		unsigned long long want = (unsigned long long)e->numel * st_dtype_size(e->dtype);
		snprintf(why, len, "tensor '%s': shape and dtype make %llu bytes, data_offsets "
			 "span %llu", e->name, want, (unsigned long long)(e->end - e->begin));
		err = MB_ERR_PARSE;
	}
	return err;
}

/* parse_meta reads "__metadata__": null or an object of string values. */
static int parse_meta(struct st_file *f, const cJSON *obj, char *why, size_t len)
{
	const cJSON *v;
	int n = 0;
	if (cJSON_IsNull(obj))
		return MB_OK;
	if (!cJSON_IsObject(obj)) {
		snprintf(why, len, "__metadata__ is not an object");
		return MB_ERR_PARSE;
	}
	cJSON_ArrayForEach(v, obj) n++;
	f->meta = calloc((size_t)n * 2 + 1, sizeof(*f->meta));
	if (!f->meta)
		return MB_ERR_NOMEM;
	cJSON_ArrayForEach(v, obj) {
		if (!cJSON_IsString(v)) {
			snprintf(why, len, "__metadata__ value of '%.64s' is not a string",
				 v->string);
			return MB_ERR_PARSE;
		}
		f->meta[2 * f->n_meta] = strdup(v->string);
		f->meta[2 * f->n_meta + 1] = strdup(v->valuestring);
		f->n_meta++;
		if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1])
			return MB_ERR_NOMEM;
	}
	return MB_OK;
}

/* parse_root walks the header object: metadata once, every other key a tensor. */
static int parse_root(struct st_file *f, const cJSON *root, char *why, size_t len)
{
	const cJSON *v;
	int n = 0, meta_seen = 0, err = MB_OK;
	cJSON_ArrayForEach(v, root) n++;
	if (n > ST_MAX_TENSORS + 1) {
		snprintf(why, len, "%d tensors, more than %d", n, ST_MAX_TENSORS);
		return MB_ERR_PARSE;
	}
	f->entries = calloc((size_t)n + 1, sizeof(*f->entries));
	if (!f->entries)
		return MB_ERR_NOMEM;
	cJSON_ArrayForEach(v, root) {
		if (strcmp(v->string, "__metadata__") == 0) {
			if (meta_seen++) {
				snprintf(why, len, "__metadata__ given twice");
				return MB_ERR_PARSE;
			}
			err = parse_meta(f, v, why, len);
		} else if (!v->string[0]) {
			snprintf(why, len, "a tensor has an empty name");
			err = MB_ERR_PARSE;
		} else {
			struct st_entry *e = &f->entries[f->n];
			e->name = strdup(v->string);
			err = e->name ? parse_entry(v, e, why, len) : MB_ERR_NOMEM;
			f->n++;
		}
		if (err)
			return err;
	}
	return MB_OK;
}

/* The entries being sorted by the two index comparisons below. */
static const struct st_entry *sort_base;

/* cmp_by_name / cmp_by_offset order entry indices by name / by byte span. */
static int cmp_by_name(const void *a, const void *b)
{
	return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}

static int cmp_by_offset(const void *a, const void *b)
{
	const struct st_entry *x = &sort_base[*(const int *)a], *y = &sort_base[*(const int *)b];
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* check_names refuses a name given twice (f->by_name sorted by name). */
static int check_names(const struct st_file *f, char *why, size_t len)
{
	for (int i = 1; i < f->n; i++) {
		const char *name = f->entries[f->by_name[i]].name;
		if (strcmp(f->entries[f->by_name[i - 1]].name, name) == 0) {
			snprintf(why, len, "tensor '%s' appears twice", name);
			return MB_ERR_PARSE;
		}
	}
	return MB_OK;
}

/* check_spans refuses spans (by_offset: sorted by span) that are not contiguous from
 * 0 to exactly data_len. */
static int check_spans(const struct st_file *f, const int *by_offset, uint64_t data_len,
		       char *why, size_t len)
{
	uint64_t at = 0;
	for (int i = 0; i < f->n; i++) {
		const struct st_entry *e = &f->entries[by_offset[i]];
		unsigned long long b = e->begin, end = e->end;
		if (e->end > data_len) {
			snprintf(why, len, "tensor '%s': data_offsets [%llu, %llu] run past the end "
				 "of the data (%llu bytes)", e->name, b, end,
				 (unsigned long long)data_len);
			return MB_ERR_PARSE;
		}
		if (e->begin != at) {
			snprintf(why, len, "tensor '%s': data_offsets [%llu, %llu] %s the previous "
				 "tensor's end %llu", e->name, b, end,
				 e->begin < at ? "overlap" : "leave a gap after", (unsigned long long)at);
			return MB_ERR_PARSE;
		}
		at = e->end;
	}
	if (at != data_len) {
		snprintf(why, len, "%llu trailing bytes after the last tensor",
			 (unsigned long long)(data_len - at));
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

/* check_layout sorts the entries by name (kept in f->by_name, for st_find) and by
 * span, and refuses duplicate names and spans that do not tile the data. */
static int check_layout(struct st_file *f, uint64_t data_len, char *why, size_t len)
{
	int *by_offset = malloc(((size_t)f->n + 1) * sizeof(int));
	int err;
	f->by_name = malloc(((size_t)f->n + 1) * sizeof(int));
	if (!by_offset || !f->by_name) {
		free(by_offset);
		return MB_ERR_NOMEM;
	}
	for (int i = 0; i < f->n; i++)
		f->by_name[i] = by_offset[i] = i;
	/* NOTE: qsort has no context argument in C11; the file-scope base is set right
	 * before each call (st_open is not meant to be called from two threads at once). */
	sort_base = f->entries;
	qsort(f->by_name, (size_t)f->n, sizeof(int), cmp_by_name);
	qsort(by_offset, (size_t)f->n, sizeof(int), cmp_by_offset);
	err = check_names(f, why, len);
	if (!err)
		err = check_spans(f, by_offset, data_len, why, len);
	free(by_offset);
	return err;
}

/* read_header reads and checks the header length, then the header text (NUL-ended). */
static int read_header(struct st_file *f, uint64_t size, char **text, uint64_t *hlen,
		       char *why, size_t len)
{
	unsigned char head[8];
	if (size < 8 || pread_full(f->fd, head, 8, 0) != MB_OK) {
		snprintf(why, len, "truncated: %llu bytes, no 8-byte header length",
			 (unsigned long long)size);
		return MB_ERR_PARSE;
	}
	*hlen = st_get_le64(head);
	if (*hlen < 2 || *hlen > ST_MAX_HEADER || *hlen > size - 8) {
		snprintf(why, len, "header length %llu is out of bounds (file of %llu bytes, "
			 "limit %llu)", (unsigned long long)*hlen, (unsigned long long)size,
			 ST_MAX_HEADER);
		return MB_ERR_PARSE;
	}
	*text = malloc(*hlen + 1);
	if (!*text)
		return MB_ERR_NOMEM;
	if (pread_full(f->fd, *text, *hlen, 8) != MB_OK) {
		snprintf(why, len, "cannot read the header: %s", strerror(errno));
		return MB_ERR_IO;
	}
	(*text)[*hlen] = '\0';
	if ((*text)[0] != '{' || memchr(*text, '\0', *hlen) ||
	    !st_utf8_valid((const unsigned char *)*text, *hlen)) {
		snprintf(why, len, "header is not a UTF-8 JSON object");
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

/* parse_file reads, parses and validates everything after the file was opened. */
static int parse_file(struct st_file *f, uint64_t size, char *why, size_t len)
{
	char *text = NULL;
	uint64_t hlen = 0;
	cJSON *root = NULL;
	int err = read_header(f, size, &text, &hlen, why, len);
	if (err)
		goto out;
	/* NOTE: require_null_terminated makes cJSON refuse anything but whitespace after
	 * the object (the writer's padding is spaces). */
	root = cJSON_ParseWithOpts(text, NULL, 1);
	if (!cJSON_IsObject(root)) {
		snprintf(why, len, "header is not well-formed JSON");
		err = MB_ERR_PARSE;
		goto out;
	}
	f->data_start = 8 + hlen;
	err = parse_root(f, root, why, len);
	if (!err)
		err = check_layout(f, size - f->data_start, why, len);
out:
	cJSON_Delete(root);
	free(text);
	return err;
}

int st_open(struct st_file **out, const char *path, char *why, size_t len)
{
	char inner[512] = "";
	struct stat st;
	struct st_file *f = calloc(1, sizeof(*f));
	int err = MB_OK;
	*out = NULL;
	if (!f || !(f->path = strdup(path))) {
		snprintf(why, len, "%s: out of memory", path);
		free(f);
		return MB_ERR_NOMEM;
	}
	/* NOTE: O_NONBLOCK so that opening a FIFO does not wait for a writer; the type is
	 * checked before the first read. */
	f->fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &st) != 0) {
		snprintf(why, len, "cannot open %s: %s", path, strerror(errno));
		err = MB_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "%s: not a regular file", path);
		err = MB_ERR_IO;
		goto out;
	}
	err = parse_file(f, (uint64_t)st.st_size, inner, sizeof(inner));
	if (err)
		snprintf(why, len, "%s: %s", path, err == MB_ERR_NOMEM ? "out of memory" : inner);
out:
	if (err)
		st_close(f);
	else
		*out = f;
	return err;
}

int st_count(const struct st_file *f)
{
	return f->n;
}

const struct st_entry *st_at(const struct st_file *f, int i)
{
	return i >= 0 && i < f->n ? &f->entries[i] : NULL;
}

const struct st_entry *st_find(const struct st_file *f, const char *name)
{
	int lo = 0, hi = f->n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(name, f->entries[f->by_name[mid]].name);
		if (c == 0)
			return &f->entries[f->by_name[mid]];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *st_meta(const struct st_file *f, const char *key)
{
	for (int i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta[2 * i], key) == 0)
			return f->meta[2 * i + 1];
	return NULL;
}

/* format_shape writes "[2, 3]" into buf. */
static const char *format_shape(const int64_t *shape, int ndim, char *buf, size_t cap)
{
	size_t at = (size_t)snprintf(buf, cap, "[");
	for (int d = 0; d < ndim && at < cap; d++)
		at += (size_t)snprintf(buf + at, cap - at, "%s%lld", d ? ", " : "",
				       (long long)shape[d]);
	if (at < cap)
		snprintf(buf + at, cap - at, "]");
	return buf;
}

/* check_shape refuses a tensor whose shape is not the expected one, naming both. */
static int check_shape(const struct st_file *f, const struct st_entry *e, const int64_t *shape,
		       int ndim, char *why, size_t len)
{
	char have[160], want[160];
	int same = ndim == e->ndim;
	for (int d = 0; same && d < ndim; d++)
		same = shape[d] == e->shape[d];
	if (same)
		return MB_OK;
	snprintf(why, len, "%s: tensor '%s' has shape %s, expected %s", f->path, e->name,
		 format_shape(e->shape, e->ndim, have, sizeof(have)),
		 format_shape(shape, ndim > ST_MAX_DIMS ? ST_MAX_DIMS : ndim < 0 ? 0 : ndim,
			      want, sizeof(want)));
	return MB_ERR_PARSE;
}

/* decode converts m little-endian elements of dtype from src to floats. */
static void decode(enum st_dtype dtype, const unsigned char *src, int64_t m, float *dst)
{
	for (int64_t j = 0; j < m; j++) {
		if (dtype == ST_BF16) {
			dst[j] = bf16_to_float((uint16_t)(src[2 * j] | (src[2 * j + 1] << 8)));
		} else {
			const unsigned char *p = src + 4 * j;
			uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24;
			memcpy(&dst[j], &u, 4);
		}
	}
}

int st_read_f32(const struct st_file *f, const char *name, float *dst,
		const int64_t *expect_shape, int expect_ndim, char *why, size_t len)
{
	const struct st_entry *e = st_find(f, name);
	size_t es;
	unsigned char *buf = NULL;
	int err = MB_OK;
	if (!e) {
		snprintf(why, len, "%s: no tensor '%s'", f->path, name);
		return MB_ERR_ARG;
	}
	if (expect_shape && (err = check_shape(f, e, expect_shape, expect_ndim, why, len)))
		return err;
	es = st_dtype_size(e->dtype);
	buf = malloc(ST_READ_CHUNK * es);
	if (!buf) {
		snprintf(why, len, "%s: out of memory", f->path);
		return MB_ERR_NOMEM;
	}
	for (int64_t i = 0; i < e->numel && !err; i += ST_READ_CHUNK) {
		int64_t m = e->numel - i < ST_READ_CHUNK ? e->numel - i : ST_READ_CHUNK;
		err = pread_full(f->fd, buf, (size_t)m * es, f->data_start + e->begin +
				 (uint64_t)i * es);
		if (err)
			snprintf(why, len, "%s: tensor '%s': short read (file changed?)", f->path,
				 e->name);
		else
			decode(e->dtype, buf, m, dst + i);
	}
	free(buf);
	return err;
}

void st_close(struct st_file *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	for (int i = 0; i < f->n; i++)
		free((char *)f->entries[i].name);
	for (int i = 0; i < 2 * f->n_meta; i++)
		free(f->meta[i]);
	free(f->meta);
	free(f->entries);
	free(f->by_name);
	free(f->path);
	free(f);
}
