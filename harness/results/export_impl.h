/*
 * export_impl.h - helpers shared by export.c (text, CSV) and export_ci.c (Google
 * Benchmark JSON, Bencher Metric Format): NULL-safe reads of the result document.
 */
#ifndef MB_HARNESS_EXPORT_IMPL_H
#define MB_HARNESS_EXPORT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* An ordered set of names borrowed from the document (column names, families). */
struct export_names {
	const char **v;
	size_t n, cap;
};

/* export_names_add adds name unless present and returns its index, or MB_ERR_NOMEM. */
long export_names_add(struct export_names *s, const char *name);
/* export_get / export_str_or read an object's member (NULL-safe), with a default. */
const cJSON *export_get(const cJSON *obj, const char *key);
const char *export_str_or(const cJSON *obj, const char *key, const char *dflt);
/* export_num_of returns a number item's value, NAN for null or anything else. */
double export_num_of(const cJSON *item);
/* export_time_stat returns metrics.time_s.<stat> of a record, NAN when absent. */
double export_time_stat(const cJSON *rec, const char *stat);
/* export_passed tells whether a record's check says "pass". */
bool export_passed(const cJSON *rec);
/* export_records_of returns the document's records array, or NULL. */
const cJSON *export_records_of(const cJSON *doc);
/* export_record_label writes "<benchmark>/<name>", with "#N" for repeated labels. */
void export_record_label(const cJSON *recs, const cJSON *rec, char *buf, size_t len);
/* export_joined joins field (or the strings themselves) of an array with sep; free(). */
char *export_joined(const cJSON *arr, const char *field, const char *sep);

#endif
