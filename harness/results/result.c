/*
 * result.c - building, validating, reading and atomically writing the result document
 * (schema "moebench.result/1", described in result.h).
 */
#define _GNU_SOURCE
#include "result.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"
#include "status.h"

cJSON *result_new(void)
{
	cJSON *doc = cJSON_CreateObject();
	if (!doc)
		return NULL;
	if (!cJSON_AddStringToObject(doc, "schema", RESULT_SCHEMA) ||
	    !cJSON_AddObjectToObject(doc, "context") ||
	    !cJSON_AddArrayToObject(doc, "records")) {
		cJSON_Delete(doc);
		return NULL;
	}
	return doc;
}

cJSON *result_context(cJSON *doc)
{
	return cJSON_GetObjectItemCaseSensitive(doc, "context");
}

cJSON *result_add_record(cJSON *doc, const char *benchmark, const char *name,
			 const char *backend)
{
	cJSON *records = cJSON_GetObjectItemCaseSensitive(doc, "records");
	cJSON *rec = cJSON_CreateObject();
	if (!records || !rec)
		goto fail;
	if (!cJSON_AddStringToObject(rec, "benchmark", benchmark) ||
	    !cJSON_AddStringToObject(rec, "name", name) ||
	    !cJSON_AddStringToObject(rec, "backend", backend) ||
	    !cJSON_AddObjectToObject(rec, "params") || !cJSON_AddObjectToObject(rec, "metrics"))
		goto fail;
	if (!cJSON_AddItemToArray(records, rec))
		goto fail;
	return rec;
fail:
	cJSON_Delete(rec);
	return NULL;
}

/* add_number stores value, or null when it is not finite (n/a). */
static cJSON *add_number(cJSON *obj, const char *key, double value)
{
	if (!isfinite(value))
		return cJSON_AddNullToObject(obj, key);
	return cJSON_AddNumberToObject(obj, key, value);
}

int result_set_time(cJSON *record, const struct stats *st)
{
	cJSON *metrics = cJSON_GetObjectItemCaseSensitive(record, "metrics");
	if (!metrics)
		return MB_ERR_ARG;
	cJSON_DeleteItemFromObjectCaseSensitive(metrics, "time_s");
	cJSON *t = cJSON_AddObjectToObject(metrics, "time_s");
	if (!t || !add_number(t, "median", st->median) || !add_number(t, "min", st->min) ||
	    !add_number(t, "max", st->max) || !add_number(t, "mean", st->mean) ||
	    !add_number(t, "stddev", st->stddev) || !add_number(t, "cv", st->cv) ||
	    !add_number(t, "mad", st->mad) ||
	    !cJSON_AddNumberToObject(t, "n", (double)st->n))
		return MB_ERR_NOMEM;
	return MB_OK;
}

int result_set_metric(cJSON *record, const char *metric, double value)
{
	cJSON *metrics = cJSON_GetObjectItemCaseSensitive(record, "metrics");
	if (!metrics)
		return MB_ERR_ARG;
	cJSON_DeleteItemFromObjectCaseSensitive(metrics, metric);
	return add_number(metrics, metric, value) ? MB_OK : MB_ERR_NOMEM;
}

int result_set_check(cJSON *record, bool passed, double max_err, double tolerance,
		     const char *metric, long samples, long mismatches)
{
	cJSON_DeleteItemFromObjectCaseSensitive(record, "check");
	cJSON *c = cJSON_AddObjectToObject(record, "check");
	if (!c || !cJSON_AddStringToObject(c, "status", passed ? "pass" : "fail") ||
	    !add_number(c, "max_err", max_err) || !add_number(c, "tolerance", tolerance) ||
	    !cJSON_AddStringToObject(c, "metric", metric) ||
	    !cJSON_AddNumberToObject(c, "samples", (double)samples) ||
	    !cJSON_AddNumberToObject(c, "mismatches", (double)mismatches))
		return MB_ERR_NOMEM;
	return MB_OK;
}

bool result_metric_lower_is_better(const char *metric)
{
	size_t n = strlen(metric);
	return (n >= 2 && strcmp(metric + n - 2, "_s") == 0) ||
	       (n >= 4 && strcmp(metric + n - 4, "_err") == 0);
}

/* ---- validation ---- */

enum jtype { J_STR, J_NUM, J_NUM_OR_NULL, J_OBJ, J_ARR, J_BOOL };

static bool has_type(const cJSON *v, enum jtype t)
{
	switch (t) {
	case J_STR: return cJSON_IsString(v);
	case J_NUM: return cJSON_IsNumber(v);
	case J_NUM_OR_NULL: return cJSON_IsNumber(v) || cJSON_IsNull(v);
	case J_OBJ: return cJSON_IsObject(v);
	case J_ARR: return cJSON_IsArray(v);
	case J_BOOL: return cJSON_IsBool(v);
	}
	return false;
}

static const char *type_name(enum jtype t)
{
	static const char *names[] = { "a string", "a number", "a number or null",
				       "an object", "an array", "a boolean" };
	return names[t];
}

/* need checks that obj[key] exists with type t, writing "<path>.<key>: ..." to why
 * otherwise. Returns the item or NULL. */
static const cJSON *need(const cJSON *obj, const char *path, const char *key, enum jtype t,
			 char *why, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v)
		snprintf(why, len, "%s%s%s: missing", path, *path ? "." : "", key);
	else if (!has_type(v, t))
		snprintf(why, len, "%s%s%s: must be %s", path, *path ? "." : "", key, type_name(t));
	else
		return v;
	return NULL;
}

static int validate_record(const cJSON *rec, int i, char *why, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "records[%d]", i);
	if (!cJSON_IsObject(rec)) {
		snprintf(why, len, "%s: must be an object", path);
		return MB_ERR_PARSE;
	}
	if (!need(rec, path, "benchmark", J_STR, why, len) ||
	    !need(rec, path, "name", J_STR, why, len) ||
	    !need(rec, path, "backend", J_STR, why, len) ||
	    !need(rec, path, "params", J_OBJ, why, len))
		return MB_ERR_PARSE;
	const cJSON *m = need(rec, path, "metrics", J_OBJ, why, len);
	const cJSON *c = m ? need(rec, path, "check", J_OBJ, why, len) : NULL;
	if (!c)
		return MB_ERR_PARSE;
	char mpath[96], tpath[112], cpath[96];
	snprintf(mpath, sizeof(mpath), "%s.metrics", path);
	snprintf(tpath, sizeof(tpath), "%s.time_s", mpath);
	snprintf(cpath, sizeof(cpath), "%s.check", path);
	const cJSON *t = need(m, mpath, "time_s", J_OBJ, why, len);
	if (!t)
		return MB_ERR_PARSE;
	static const char *tkeys[] = { "median", "min", "max", "mean", "stddev", "cv", "n" };
	for (size_t k = 0; k < sizeof(tkeys) / sizeof(tkeys[0]); k++)
		if (!need(t, tpath, tkeys[k], k == 6 ? J_NUM : J_NUM_OR_NULL, why, len))
			return MB_ERR_PARSE;
	const cJSON *st = need(c, cpath, "status", J_STR, why, len);
	if (!st)
		return MB_ERR_PARSE;
	if (strcmp(st->valuestring, "pass") && strcmp(st->valuestring, "fail")) {
		snprintf(why, len, "%s.status: must be \"pass\" or \"fail\"", cpath);
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

int result_validate(const cJSON *doc, char *why, size_t why_len)
{
	if (!cJSON_IsObject(doc)) {
		snprintf(why, why_len, "top level: must be an object");
		return MB_ERR_PARSE;
	}
	const cJSON *schema = need(doc, "", "schema", J_STR, why, why_len);
	if (!schema)
		return MB_ERR_PARSE;
	if (strcmp(schema->valuestring, RESULT_SCHEMA) != 0) {
		snprintf(why, why_len, "schema: \"%s\", expected \"%s\"", schema->valuestring,
			 RESULT_SCHEMA);
		return MB_ERR_PARSE;
	}
	if (!need(doc, "", "context", J_OBJ, why, why_len))
		return MB_ERR_PARSE;
	const cJSON *records = need(doc, "", "records", J_ARR, why, why_len);
	if (!records)
		return MB_ERR_PARSE;
	int i = 0;
	const cJSON *rec;
	cJSON_ArrayForEach(rec, records) {
		int err = validate_record(rec, i++, why, why_len);
		if (err)
			return err;
	}
	return MB_OK;
}

/* ---- files ---- */

/* read_all reads a whole file into a NUL-terminated buffer. */
static char *read_all(const char *path, char *why, size_t len)
{
	char *buf = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, len, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		char *nb = realloc(buf, cap *= 2);
		if (!nb) {
			free(buf);
			buf = NULL;
		}
		buf = nb;
	}
	if (!buf)
		snprintf(why, len, "%s: out of memory", path);
	else if (ferror(f)) {
		snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else
		buf[n] = '\0';
	fclose(f);
	return buf;
}

int result_read(const char *path, cJSON **out, char *why, size_t why_len)
{
	*out = NULL;
	char *text = read_all(path, why, why_len);
	if (!text)
		return MB_ERR_IO;
	/* NOTE: require_null_terminated: anything but whitespace after the document
	 * (a second document, trailing garbage) makes the file invalid. */
	cJSON *doc = cJSON_ParseWithOpts(text, NULL, true);
	int err = MB_OK;
	if (!doc) {
		const char *at = cJSON_GetErrorPtr();
		long off = at ? (long)(at - text) : -1;
		snprintf(why, why_len, "%s: not valid JSON (near byte %ld)", path, off);
		err = MB_ERR_PARSE;
		goto out;
	}
	char inner[256];
	err = result_validate(doc, inner, sizeof(inner));
	if (err) {
		snprintf(why, why_len, "%s: not a %s document: %s", path, RESULT_SCHEMA, inner);
		goto out;
	}
	*out = doc;
	doc = NULL;
out:
	cJSON_Delete(doc);
	free(text);
	return err;
}

/* make_parents creates every missing directory above path (mkdir -p of dirname). */
static int make_parents(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return MB_ERR_ARG;
	char *dir = dirname(buf);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0777) != 0 && errno != EEXIST)
			return MB_ERR_IO;
		*p = '/';
	}
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return MB_ERR_IO;
	return MB_OK;
}

/* chmod_umask gives path the mode a plain fopen would have (0666 less the umask):
 * mkstemp creates 0600 files, too strict for a result others read. */
static int chmod_umask(const char *path)
{
	mode_t mask = umask(0);
	umask(mask);
	return chmod(path, 0666 & ~mask);
}

/* write_fd writes all of text to fd and flushes it to the disk. */
static int write_fd(int fd, const char *text)
{
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MB_ERR_IO;
		off += (size_t)w;
	}
	return fsync(fd) == 0 ? MB_OK : MB_ERR_IO;
}

int result_write_atomic(const char *path, const char *text, bool force, char *why,
			size_t why_len)
{
	char tmp[4200];
	int fd = -1, err = MB_OK;
	if (!force && access(path, F_OK) == 0) {
		snprintf(why, why_len, "%s exists (use --force to overwrite)", path);
		return MB_ERR_EXISTS;
	}
	if (make_parents(path) != MB_OK) {
		snprintf(why, why_len, "cannot create the directory of %s: %s", path, strerror(errno));
		return MB_ERR_IO;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(why, why_len, "cannot create a temporary file beside %s: %s", path,
			 strerror(errno));
		return MB_ERR_IO;
	}
	err = write_fd(fd, text);
	if (close(fd) != 0 && !err)
		err = MB_ERR_IO;
	/* NOTE: rename is atomic within one file system, and the temporary file lives in
	 * the destination's directory, so readers see the old file or the whole new one. */
	if (!err && chmod_umask(tmp) != 0)
		err = MB_ERR_IO;
	if (!err && rename(tmp, path) != 0)
		err = MB_ERR_IO;
	if (err) {
		snprintf(why, why_len, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return err;
}
