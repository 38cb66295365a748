/*
 * hardware_json.c - user hardware files (`--hardware FILE`): JSON entries added to
 * the datasheet table of hardware.c. Every field is checked; an error names the file,
 * the entry and the field.
 */
#define _GNU_SOURCE
#include "hardware.h"
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

struct num_field {
	const char *key;
	size_t offset;
};

static const struct num_field num_fields[] = {
	{ "peak_bf16_tflops", offsetof(struct hardware_spec, peak_bf16_tflops) },
	{ "peak_fp8_tflops", offsetof(struct hardware_spec, peak_fp8_tflops) },
	{ "peak_fp32_tflops", offsetof(struct hardware_spec, peak_fp32_tflops) },
	{ "hbm_gb", offsetof(struct hardware_spec, hbm_gb) },
	{ "hbm_tbps", offsetof(struct hardware_spec, hbm_tbps) },
	{ "scaleup_gbps", offsetof(struct hardware_spec, scaleup_gbps) },
	{ "scaleout_gbps", offsetof(struct hardware_spec, scaleout_gbps) },
};
#define N_NUM (sizeof(num_fields) / sizeof(num_fields[0]))

/* copy_str copies a JSON string into a fixed buffer, refusing one that does not fit. */
static int copy_str(const cJSON *v, char *dst, size_t cap, const char *field, char *why,
		    size_t len)
{
	if (!cJSON_IsString(v) || !v->valuestring[0]) {
		snprintf(why, len, "field \"%s\" must be a non-empty string", field);
		return MB_ERR_PARSE;
	}
	if (strlen(v->valuestring) >= cap) {
		snprintf(why, len, "field \"%s\" is longer than %zu characters", field, cap - 1);
		return MB_ERR_PARSE;
	}
	strcpy(dst, v->valuestring);
	return MB_OK;
}

static int parse_names(const cJSON *v, struct hardware_spec *hw, char *why, size_t len)
{
	int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
	if (n < 1 || n > HARDWARE_MAX_NAMES) {
		snprintf(why, len, "field \"names\" must be an array of 1 to %d device names",
			 HARDWARE_MAX_NAMES);
		return MB_ERR_PARSE;
	}
	for (int i = 0; i < n; i++) {
		int err = copy_str(cJSON_GetArrayItem(v, i), hw->names[i], sizeof(hw->names[i]),
				   "names", why, len);
		if (err)
			return err;
	}
	return MB_OK;
}

static int parse_number(const cJSON *v, const char *key, double *dst, char *why, size_t len)
{
	if (cJSON_IsNull(v)) {
		*dst = NAN;
		return MB_OK;
	}
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0) {
		snprintf(why, len, "field \"%s\" must be a positive number or null", key);
		return MB_ERR_PARSE;
	}
	*dst = v->valuedouble;
	return MB_OK;
}

/* parse_field handles one member of an entry object. */
static int parse_field(const cJSON *v, struct hardware_spec *hw, char *why, size_t len)
{
	const char *k = v->string;
	if (strcmp(k, "key") == 0)
		return copy_str(v, hw->key, sizeof(hw->key), k, why, len);
	if (strcmp(k, "label") == 0)
		return copy_str(v, hw->label, sizeof(hw->label), k, why, len);
	if (strcmp(k, "source") == 0)
		return copy_str(v, hw->source, sizeof(hw->source), k, why, len);
	if (strcmp(k, "names") == 0)
		return parse_names(v, hw, why, len);
	for (size_t i = 0; i < N_NUM; i++)
		if (strcmp(k, num_fields[i].key) == 0)
			return parse_number(v, k, (double *)((char *)hw + num_fields[i].offset), why, len);
	snprintf(why, len, "unknown field \"%s\"", k);
	return MB_ERR_PARSE;
}

static int parse_entry(const cJSON *obj, struct hardware_spec *hw, char *why, size_t len)
{
	memset(hw, 0, sizeof(*hw));
	for (size_t i = 0; i < N_NUM; i++)
		*(double *)((char *)hw + num_fields[i].offset) = NAN;
	if (!cJSON_IsObject(obj)) {
		snprintf(why, len, "must be an object");
		return MB_ERR_PARSE;
	}
	const cJSON *v;
	cJSON_ArrayForEach(v, obj) {
		int err = parse_field(v, hw, why, len);
		if (err)
			return err;
	}
	const char *missing = !hw->key[0] ? "key" : !hw->names[0][0] ? "names" :
			      !hw->source[0] ? "source" : NULL;
	if (missing) {
		snprintf(why, len, "required field \"%s\" is missing", missing);
		return MB_ERR_PARSE;
	}
	if (!hw->label[0])
		snprintf(hw->label, sizeof(hw->label), "%s", hw->key);
	return MB_OK;
}

int hardware_load_json(const char *path, char *why, size_t why_len)
{
	char inner[256] = "";
	struct hardware_spec *entries = NULL;
	cJSON *doc = NULL;
	int err = MB_OK, i = 0;
	char *text = NULL;
	err = model_read_file(path, &text, why, why_len);
	if (err)
		return err;
	doc = cJSON_Parse(text);
	if (!doc) {
		snprintf(why, why_len, "%s: not valid JSON", path);
		err = MB_ERR_PARSE;
		goto out;
	}
	int n = cJSON_IsArray(doc) ? cJSON_GetArraySize(doc) : 1;
	entries = calloc((size_t)(n > 0 ? n : 1), sizeof(*entries));
	if (!entries) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const cJSON *e = cJSON_IsArray(doc) ? cJSON_GetArrayItem(doc, i) : doc;
		err = parse_entry(e, &entries[i], inner, sizeof(inner));
		if (err) {
			snprintf(why, why_len, "%s: entry %d: %s", path, i, inner);
			goto out;
		}
	}
	/* NOTE: entries are added only once the whole file parsed, so a bad file adds
	 * nothing. */
	err = hardware_add(entries, (size_t)n);
out:
	free(entries);
	cJSON_Delete(doc);
	free(text);
	return err;
}
