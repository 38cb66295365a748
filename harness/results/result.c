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
#include <time.h>
#include <unistd.h>

#include "model.h"
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

int result_read(const char *path, cJSON **out, char *why, size_t why_len)
{
	*out = NULL;
	char *text = NULL;
	int rerr = model_read_file(path, &text, why, why_len);
	if (rerr)
		return rerr == MB_ERR_NOMEM ? rerr : MB_ERR_IO;
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

/* write_fd writes len bytes of data to fd and flushes them to the disk. */
static int write_fd(int fd, const char *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MB_ERR_IO;
		off += (size_t)w;
	}
	return fsync(fd) == 0 ? MB_OK : MB_ERR_IO;
}

/* kind_of names what a non-regular file is, for the error. */
static const char *kind_of(mode_t m)
{
	return S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" :
	       S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symbolic link" :
	       S_ISDIR(m) ? "a directory" : "not a regular file";
}

/* writable_dir checks that the nearest existing directory above path can take a new
 * file (the directories below it are created at write time). */
static int writable_dir(const char *path, char *why, size_t why_len)
{
	char buf[4096];
	struct stat st;
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		snprintf(why, why_len, "%.64s...: path too long", path);
		return MB_ERR_ARG;
	}
	char *dir = dirname(buf);
	while (stat(dir, &st) != 0 && errno == ENOENT && strcmp(dir, "/") && strcmp(dir, "."))
		dir = dirname(dir);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
		int e = stat(dir, &st) == 0 && !S_ISDIR(st.st_mode) ? ENOTDIR : errno;
		snprintf(why, why_len, "cannot write %s: %s: %s", path, dir, strerror(e));
		return MB_ERR_IO;
	}
	return MB_OK;
}

int result_output_check(const char *path, bool force, char *why, size_t why_len)
{
	struct stat st;
	if (!path[0]) {
		snprintf(why, why_len, "empty output path");
		return MB_ERR_ARG;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			snprintf(why, why_len, "%s is %s: moebench replaces only regular files, "
				 "--force or not", path, kind_of(st.st_mode));
			return MB_ERR_ARG;
		}
		if (!force) {
			snprintf(why, why_len, "%s exists (--force replaces a regular file)", path);
			return MB_ERR_EXISTS;
		}
	} else if (errno != ENOENT) {
		snprintf(why, why_len, "cannot write %s: %s", path, strerror(errno));
		return MB_ERR_IO;
	}
	return writable_dir(path, why, why_len);
}

/* install_exclusive gives the finished temporary file tmp the name path only if no
 * file has it: link(2) fails with EEXIST like O_CREAT|O_EXCL, and is atomic. Where
 * the file system has no hard links, the text is written to path opened with O_EXCL. */
static int install_exclusive(const char *tmp, const char *path, const char *data,
			     size_t len)
{
	if (link(tmp, path) == 0)
		return MB_OK;
	if (errno == EEXIST)
		return MB_ERR_EXISTS;
	if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK)
		return MB_ERR_IO;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
	if (fd < 0)
		return errno == EEXIST ? MB_ERR_EXISTS : MB_ERR_IO;
	int err = write_fd(fd, data, len);
	if (close(fd) != 0 && !err)
		err = MB_ERR_IO;
	if (err)
		unlink(path);
	return err;
}

/* install puts the temporary file at path: replacing only a regular file, and only
 * when force; otherwise exclusively. */
static int install(const char *tmp, const char *path, const char *data, size_t len,
		   bool force)
{
	struct stat st;
	if (!force)
		return install_exclusive(tmp, path, data, len);
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return MB_ERR_ARG;
	/* NOTE: rename is atomic within one file system, and the temporary file lives in
	 * the destination's directory, so readers see the old file or the whole new one. */
	return rename(tmp, path) == 0 ? MB_OK : MB_ERR_IO;
}

int result_write_atomic(const char *path, const char *text, bool force, char *why,
			size_t why_len)
{
	return result_write_bytes(path, text, strlen(text), force, why, why_len);
}

int result_write_bytes(const char *path, const char *data, size_t len, bool force,
		       char *why, size_t why_len)
{
	char tmp[4200];
	int fd = -1, err = result_output_check(path, force, why, why_len);
	if (err == MB_ERR_IO)
		err = MB_OK; /* the directories may be missing: make_parents says */
	if (err)
		return err;
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
	err = write_fd(fd, data, len);
	if (close(fd) != 0 && !err)
		err = MB_ERR_IO;
	if (!err && chmod_umask(tmp) != 0)
		err = MB_ERR_IO;
	if (!err)
		err = install(tmp, path, data, len, force);
	if (err == MB_ERR_EXISTS)
		snprintf(why, why_len, "%s exists (--force replaces a regular file)", path);
	else if (err == MB_ERR_ARG)
		snprintf(why, why_len, "%s is no longer a regular file: not replaced", path);
	else if (err)
		snprintf(why, why_len, "cannot write %s: %s", path, strerror(errno));
	if (err || !force)  /* renamed over path, tmp's name is gone; else it goes now */
		unlink(tmp);
	return err;
}

void result_default_path(const char *command, char *buf, size_t len)
{
	char stamp[32], host[64] = "host";
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, "./ ")] = '\0';
	snprintf(buf, len, "results/runs/local/%s.%06ldZ-%s-%ld-%s.json", stamp,
		 now.tv_nsec / 1000, host, (long)getpid(), command);
}

int result_install_file(const char *from, const char *path, bool force, char *why,
			size_t why_len)
{
	char *data = NULL;
	size_t len = 0;
	int err = model_read_bytes(from, 1L << 30, &data, &len, why, why_len);
	if (!err)
		err = result_write_bytes(path, data, len, force, why, why_len);
	free(data);
	return err;
}
