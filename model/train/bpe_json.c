/*
 * bpe_json.c - the tokenizer's JSON file (bpe_save, bpe_load; the layout is in bpe.h).
 * Loading is strict: a file that is not exactly what bpe_save writes is refused with
 * the file and the broken rule named.
 */
#define _GNU_SOURCE
#include "bpe.h"
#include "bpe_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "safetensors_util.h"
#include "status.h"

#define BPE_FORMAT "moebench-bpe"
#define BPE_VERSION 1
#define BPE_MAX_FILE (64u << 20)

int bpe_save(const struct bpe *b, const char *path, const char *source, char *why,
	     size_t why_len)
{
	struct st_buf text = { 0 };
	struct atomic_file af = { .fd = -1 };
	int err;
	st_buf_printf(&text, "{\"format\":\"%s\",\"version\":%d,\"vocab_size\":%d", BPE_FORMAT,
		      BPE_VERSION, bpe_vocab_size(b));
	if (source) {
		st_buf_put(&text, ",\"source\":", 10);
		st_buf_json_string(&text, source);
	}
	st_buf_put(&text, ",\"merges\":[", 11);
	/* Sixteen merges a line keeps the file small and still readable in a diff. */
	for (int r = 0; r < b->n_merges; r++)
		st_buf_printf(&text, "%s[%d,%d]", r == 0 ? "\n" : r % 16 ? "," : ",\n",
			      (int)b->merges[2 * r], (int)b->merges[2 * r + 1]);
	st_buf_put(&text, "]}\n", 3);
	if (text.oom) {
		snprintf(why, why_len, "%s: out of memory", path);
		free(text.p);
		return MB_ERR_NOMEM;
	}
	err = atomic_file_open(&af, path, why, why_len);
	if (!err) {
		atomic_file_write(&af, text.p, text.len);
		err = atomic_file_commit(&af, why, why_len);
	}
	atomic_file_abort(&af);
	free(text.p);
	return err;
}

/* read_file reads a regular file of at most BPE_MAX_FILE bytes, NUL-terminated. */
static int read_file(const char *path, char **out, char *why, size_t why_len)
{
	struct stat st;
	int err = MB_OK;
	ssize_t got = 0;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	*out = NULL;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
		err = MB_ERR_IO;
	} else if (!S_ISREG(st.st_mode) || st.st_size > BPE_MAX_FILE) {
		snprintf(why, why_len, "%s: not a regular file of at most %u bytes", path,
			 BPE_MAX_FILE);
		err = MB_ERR_IO;
	} else if (!(*out = malloc((size_t)st.st_size + 1))) {
		err = MB_ERR_NOMEM;
	} else {
		for (ssize_t r = 1; r > 0 && got < st.st_size; got += r > 0 ? r : 0)
			r = read(fd, *out + got, (size_t)(st.st_size - got));
		if (got != st.st_size) {
			snprintf(why, why_len, "cannot read %s", path);
			err = MB_ERR_IO;
		} else if (((*out)[got] = '\0', strlen(*out)) != (size_t)got) {
			snprintf(why, why_len, "%s: holds a NUL byte", path);
			err = MB_ERR_PARSE;
		}
	}
	if (fd >= 0)
		close(fd);
	return err;
}

/* get_int reads an integral JSON number in [lo, hi]. */
static int get_int(const cJSON *v, long lo, long hi, long *out)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
	    v->valuedouble > (double)hi)
		return MB_ERR_PARSE;
	*out = (long)v->valuedouble;
	return MB_OK;
}

/* parse_merges reads n merges [[a, b], ...] into merges (token ranges are checked by
 * bpe_from_merges). */
static int parse_merges(const cJSON *v, int n, int32_t *merges, char *why, size_t why_len)
{
	int i = 0;
	const cJSON *m;
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n) {
		snprintf(why, why_len, "\"merges\" must be an array of vocab_size - 256 = %d pairs",
			 n);
		return MB_ERR_PARSE;
	}
	cJSON_ArrayForEach(m, v) {
		long a, b;
		if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 ||
		    get_int(cJSON_GetArrayItem(m, 0), 0, BPE_MAX_VOCAB, &a) ||
		    get_int(cJSON_GetArrayItem(m, 1), 0, BPE_MAX_VOCAB, &b)) {
			snprintf(why, why_len, "merge %d is not a pair of token ids", i);
			return MB_ERR_PARSE;
		}
		merges[2 * i] = (int32_t)a;
		merges[2 * i + 1] = (int32_t)b;
		i++;
	}
	return MB_OK;
}

/* check_keys refuses unknown or missing keys and a wrong format or version; it
 * returns the vocabulary size in *vocab. */
static int check_keys(const cJSON *root, long *vocab, char *why, size_t why_len)
{
	static const char *const known[] = { "format", "version", "vocab_size", "source",
					     "merges" };
	const cJSON *v, *f = cJSON_GetObjectItemCaseSensitive(root, "format");
	long version;
	cJSON_ArrayForEach(v, root) {
		size_t k = 0;
		while (k < 5 && strcmp(v->string, known[k]) != 0)
			k++;
		if (k == 5 || cJSON_GetObjectItemCaseSensitive(root, v->string) != v) {
			snprintf(why, why_len, "%s key \"%.32s\"", k == 5 ? "unknown" : "repeated",
				 v->string);
			return MB_ERR_PARSE;
		}
	}
	if (!cJSON_IsString(f) || strcmp(f->valuestring, BPE_FORMAT) != 0) {
		snprintf(why, why_len, "not a moebench BPE file (\"format\" is not \"%s\")",
			 BPE_FORMAT);
		return MB_ERR_PARSE;
	}
	if (get_int(cJSON_GetObjectItemCaseSensitive(root, "version"), BPE_VERSION, BPE_VERSION,
		    &version)) {
		snprintf(why, why_len, "\"version\" must be %d", BPE_VERSION);
		return MB_ERR_PARSE;
	}
	if (get_int(cJSON_GetObjectItemCaseSensitive(root, "vocab_size"), BPE_BYTE_TOKENS,
		    BPE_MAX_VOCAB, vocab)) {
		snprintf(why, why_len, "\"vocab_size\" must be an integer in %d..%d",
			 BPE_BYTE_TOKENS, BPE_MAX_VOCAB);
		return MB_ERR_PARSE;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "source");
	if (v && !cJSON_IsString(v)) {
		snprintf(why, why_len, "\"source\" must be a string");
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

int bpe_load(struct bpe **out, const char *path, char *why, size_t why_len)
{
	char inner[256] = "", *text = NULL;
	int32_t *merges = NULL;
	cJSON *root = NULL;
	long vocab = 0;
	int err = read_file(path, &text, why, why_len);
	*out = NULL;
	if (err) {
		free(text);     /* NOTE: read_file may fail after allocating (a NUL byte) */
		return err;
	}
	root = cJSON_ParseWithOpts(text, NULL, 1);
	if (!cJSON_IsObject(root)) {
		snprintf(inner, sizeof(inner), "not a JSON object");
		err = MB_ERR_PARSE;
		goto out;
	}
	err = check_keys(root, &vocab, inner, sizeof(inner));
	if (err)
		goto out;
	merges = malloc(((size_t)vocab - BPE_BYTE_TOKENS + 1) * 2 * sizeof(int32_t));
	err = merges ? parse_merges(cJSON_GetObjectItemCaseSensitive(root, "merges"),
				    (int)vocab - BPE_BYTE_TOKENS, merges, inner, sizeof(inner))
		     : MB_ERR_NOMEM;
	if (!err)
		err = bpe_from_merges(out, merges, (int)vocab - BPE_BYTE_TOKENS, inner,
				      sizeof(inner));
out:
	if (err)
		snprintf(why, why_len, "%s: %s", path,
			 err == MB_ERR_NOMEM ? "out of memory" : inner);
	cJSON_Delete(root);
	free(merges);
	free(text);
	return err;
}
