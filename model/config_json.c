/*
 * config_json.c - the JSON form of a model config (see model.h).
 *
 * The JSON keys are the struct's field names, listed once in the field table below;
 * reading, writing and comparing configs all walk that table, so a new field is one
 * line there (plus its check in config.c's validation).
 */
#include "model.h"
#include "status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const attention_names[] = { "gqa", "mla" };
static const char *const ffn_names[] = { "swiglu", "gelu" };
static const char *const norm_names[] = { "rmsnorm", "layernorm" };
static const char *const score_names[] = { "softmax", "sigmoid" };

const char *model_attention_name(enum model_attention a)
{
	return (unsigned)a < COUNT_OF(attention_names) ? attention_names[a] : "?";
}

const char *model_ffn_name(enum model_ffn f)
{
	return (unsigned)f < COUNT_OF(ffn_names) ? ffn_names[f] : "?";
}

const char *model_norm_name(enum model_norm n)
{
	return (unsigned)n < COUNT_OF(norm_names) ? norm_names[n] : "?";
}

const char *model_score_func_name(enum model_score_func s)
{
	return (unsigned)s < COUNT_OF(score_names) ? score_names[s] : "?";
}

/* ---- the field table ---- */

enum field_kind { FIELD_INT, FIELD_BOOL, FIELD_REAL, FIELD_TEXT, FIELD_ENUM };
enum field_enum { ENUM_NONE, ENUM_ATTENTION, ENUM_FFN, ENUM_NORM, ENUM_SCORE };

struct field {
	const char *key;
	enum field_kind kind;
	size_t offset;
	size_t size;           /* FIELD_TEXT: the buffer */
	enum field_enum which; /* FIELD_ENUM */
};

#define AT(f) offsetof(struct model_config, f)
#define INT(f) { #f, FIELD_INT, AT(f), 0, ENUM_NONE }
#define BOOL(f) { #f, FIELD_BOOL, AT(f), 0, ENUM_NONE }
#define TEXT(f) { #f, FIELD_TEXT, AT(f), sizeof(((struct model_config *)0)->f), ENUM_NONE }
#define ENUM(f, w) { #f, FIELD_ENUM, 0, 0, w }

static const struct field fields[] = {
	TEXT(name), TEXT(source),
	INT(vocab), INT(dim), INT(layers), INT(dense_layers), INT(inter_dim),
	ENUM(ffn, ENUM_FFN), ENUM(norm, ENUM_NORM), BOOL(tied_embeddings),
	INT(max_positions), BOOL(qkv_bias), BOOL(linear_bias),
	ENUM(attention, ENUM_ATTENTION), INT(heads), INT(kv_heads), INT(head_dim),
	INT(q_lora_rank), INT(kv_lora_rank), INT(qk_nope_head_dim), INT(qk_rope_head_dim),
	INT(v_head_dim),
	INT(routed_experts), INT(shared_experts), INT(activated_experts), INT(moe_inter_dim),
	INT(n_groups), INT(topk_groups), { "route_scale", FIELD_REAL, AT(route_scale), 0, ENUM_NONE },
	ENUM(score_func, ENUM_SCORE), BOOL(expert_bias),
	INT(mtp_depth), INT(seq_len),
};

#define FIELD_COUNT COUNT_OF(fields)

/* enum_names returns the JSON spellings of one enumeration and their count. */
static const char *const *enum_names(enum field_enum which, size_t *count)
{
	switch (which) {
	case ENUM_ATTENTION: *count = COUNT_OF(attention_names); return attention_names;
	case ENUM_FFN: *count = COUNT_OF(ffn_names); return ffn_names;
	case ENUM_NORM: *count = COUNT_OF(norm_names); return norm_names;
	case ENUM_SCORE: *count = COUNT_OF(score_names); return score_names;
	case ENUM_NONE: break;
	}
	*count = 0;
	return NULL;
}

/* enum_get reads an enumerated field as its index into enum_names. */
static int enum_get(const struct model_config *c, enum field_enum which)
{
	switch (which) {
	case ENUM_ATTENTION: return (int)c->attention;
	case ENUM_FFN: return (int)c->ffn;
	case ENUM_NORM: return (int)c->norm;
	case ENUM_SCORE: return (int)c->score_func;
	case ENUM_NONE: break;
	}
	return -1;
}

/* enum_set stores index v (already range-checked) into an enumerated field. */
static void enum_set(struct model_config *c, enum field_enum which, int v)
{
	switch (which) {
	case ENUM_ATTENTION: c->attention = (enum model_attention)v; break;
	case ENUM_FFN: c->ffn = (enum model_ffn)v; break;
	case ENUM_NORM: c->norm = (enum model_norm)v; break;
	case ENUM_SCORE: c->score_func = (enum model_score_func)v; break;
	case ENUM_NONE: break;
	}
}

/* field_find returns the table entry for a JSON key, or NULL. */
static const struct field *field_find(const char *key)
{
	for (size_t i = 0; i < FIELD_COUNT; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

/* read_int accepts a JSON number that is an exact integer within 2^53. */
static int read_int(const cJSON *item, int64_t *out)
{
	double v;

	if (!cJSON_IsNumber(item))
		return MB_ERR_PARSE;
	v = item->valuedouble;
	if (!isfinite(v) || v != floor(v) || fabs(v) > 9007199254740992.0)
		return MB_ERR_PARSE;
	*out = (int64_t)v;
	return MB_OK;
}

/* read_enum maps a JSON string onto an enumeration index. */
static int read_enum(const cJSON *item, enum field_enum which, int *out)
{
	size_t n;
	const char *const *names = enum_names(which, &n);

	if (!cJSON_IsString(item))
		return MB_ERR_PARSE;
	for (size_t i = 0; i < n; i++)
		if (strcmp(item->valuestring, names[i]) == 0) {
			*out = (int)i;
			return MB_OK;
		}
	return MB_ERR_PARSE;
}

/* field_expect describes what a field accepts, for error messages. */
static void field_expect(const struct field *f, char *buf, size_t len)
{
	size_t n, used;
	const char *const *names;

	switch (f->kind) {
	case FIELD_INT: snprintf(buf, len, "an integer"); return;
	case FIELD_BOOL: snprintf(buf, len, "true or false"); return;
	case FIELD_REAL: snprintf(buf, len, "a number"); return;
	case FIELD_TEXT: snprintf(buf, len, "a string of at most %zu bytes", f->size - 1);
		return;
	case FIELD_ENUM: break;
	}
	names = enum_names(f->which, &n);
	used = (size_t)snprintf(buf, len, "one of");
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s \"%s\"", i ? "," : "",
					 names[i]);
}

/* field_read stores one JSON value into the config field it names. */
static int field_read(const struct field *f, const cJSON *item, struct model_config *c)
{
	char *base = (char *)c + f->offset;
	int64_t i64;
	int e;

	switch (f->kind) {
	case FIELD_INT:
		if (read_int(item, &i64))
			return MB_ERR_PARSE;
		memcpy(base, &i64, sizeof(i64));
		return MB_OK;
	case FIELD_BOOL:
		if (!cJSON_IsBool(item))
			return MB_ERR_PARSE;
		*(bool *)(void *)base = cJSON_IsTrue(item);
		return MB_OK;
	case FIELD_REAL:
		if (!cJSON_IsNumber(item))
			return MB_ERR_PARSE;
		memcpy(base, &item->valuedouble, sizeof(double));
		return MB_OK;
	case FIELD_TEXT:
		if (!cJSON_IsString(item) || strlen(item->valuestring) >= f->size)
			return MB_ERR_PARSE;
		memcpy(base, item->valuestring, strlen(item->valuestring) + 1);
		return MB_OK;
	case FIELD_ENUM:
		if (read_enum(item, f->which, &e))
			return MB_ERR_PARSE;
		enum_set(c, f->which, e);
		return MB_OK;
	}
	return MB_ERR_PARSE;
}

/* start_config sets the starting point: the preset the object names, else the
 * defaults. Reports whether a preset was used. */
static int start_config(const cJSON *obj, const char *origin, struct model_config *c,
			bool *from_preset, char *why, size_t len)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "preset");
	const struct model_config *preset;
	char names[512];

	*from_preset = p != NULL;
	if (!p) {
		model_config_defaults(c);
		return MB_OK;
	}
	if (!cJSON_IsString(p))
		return mb_fail(MB_ERR_PARSE, why, len, "%s: preset: expected a string", origin);
	preset = model_preset_find(p->valuestring);
	if (!preset) {
		model_preset_names(names, sizeof(names));
		return mb_fail(MB_ERR_ARG, why, len, "%s: preset: unknown preset \"%s\" (known: %s)",
			    origin, p->valuestring, names);
	}
	*c = *preset;
	return MB_OK;
}

/* derive_absent fills the fields a config without a preset may leave out: MHA when
 * kv_heads is absent, head_dim = dim / heads, and an all-dense stack for a model
 * without routed experts. */
static void derive_absent(struct model_config *c, const bool *seen)
{
	if (!seen[field_find("kv_heads") - fields] && c->attention == MODEL_ATTN_GQA)
		c->kv_heads = c->heads;
	if (!seen[field_find("head_dim") - fields] && c->attention == MODEL_ATTN_GQA &&
	    c->heads > 0 && c->dim % c->heads == 0)
		c->head_dim = c->dim / c->heads;
	if (!seen[field_find("dense_layers") - fields] && c->routed_experts == 0)
		c->dense_layers = c->layers;
}

/* read_fields stores every key of obj but "preset", rejecting unknown, duplicate and
 * mistyped keys with the field named. */
static int read_fields(const cJSON *obj, const char *origin, struct model_config *c,
		       bool *seen, char *why, size_t len)
{
	const cJSON *item;
	const struct field *f;
	char expect[160];

	cJSON_ArrayForEach(item, obj) {
		if (!item->string)
			return mb_fail(MB_ERR_PARSE, why, len, "%s: member without a name", origin);
		if (strcmp(item->string, "preset") == 0)
			continue;
		f = field_find(item->string);
		if (!f)
			return mb_fail(MB_ERR_PARSE, why, len, "%s: %s: unknown field",
				    origin, item->string);
		if (seen[f - fields])
			return mb_fail(MB_ERR_PARSE, why, len, "%s: %s: given twice",
				    origin, item->string);
		seen[f - fields] = true;
		if (field_read(f, item, c)) {
			field_expect(f, expect, sizeof(expect));
			return mb_fail(MB_ERR_PARSE, why, len, "%s: %s: expected %s",
				    origin, f->key, expect);
		}
	}
	return MB_OK;
}

int model_config_from_json(const cJSON *obj, const char *origin, struct model_config *out,
			   char *why, size_t why_len)
{
	struct model_config c;
	bool seen[FIELD_COUNT] = { false };
	bool from_preset;
	char reason[384];
	int err;

	if (!origin)
		origin = "<json>";
	if (!out || !cJSON_IsObject(obj))
		return mb_fail(MB_ERR_PARSE, why, why_len, "%s: expected a JSON object", origin);
	err = start_config(obj, origin, &c, &from_preset, why, why_len);
	if (!err)
		err = read_fields(obj, origin, &c, seen, why, why_len);
	if (err)
		return err;
	if (!from_preset)
		derive_absent(&c, seen);
	err = model_config_validate(&c, reason, sizeof(reason));
	if (err)
		return mb_fail(err, why, why_len, "%s: %s", origin, reason);
	*out = c;
	return MB_OK;
}

int model_config_load(const char *path, struct model_config *out, char *why, size_t why_len)
{
	char *text = NULL;
	cJSON *doc = NULL;
	int err;

	if (!path)
		return mb_fail(MB_ERR_ARG, why, why_len, "model config: no path given");
	err = model_read_file(path, &text, why, why_len);
	if (err)
		goto out;
	doc = cJSON_Parse(text);
	if (!doc) {
		err = mb_fail(MB_ERR_PARSE, why, why_len, "%s: not valid JSON (near byte %ld)",
			   path, (long)(cJSON_GetErrorPtr() - text));
		goto out;
	}
	err = model_config_from_json(doc, path, out, why, why_len);
out:
	cJSON_Delete(doc);
	free(text);
	return err;
}

/* add_field adds one field of cfg to a JSON object. */
static bool add_field(cJSON *obj, const struct field *f, const struct model_config *c)
{
	const char *base = (const char *)c + f->offset;
	const char *const *names;
	size_t n;
	int64_t i64;
	double real;
	int e;

	switch (f->kind) {
	case FIELD_INT:
		memcpy(&i64, base, sizeof(i64));
		return cJSON_AddNumberToObject(obj, f->key, (double)i64) != NULL;
	case FIELD_BOOL:
		return cJSON_AddBoolToObject(obj, f->key, *(const bool *)(const void *)base) != NULL;
	case FIELD_REAL:
		memcpy(&real, base, sizeof(real));
		return cJSON_AddNumberToObject(obj, f->key, real) != NULL;
	case FIELD_TEXT:
		return cJSON_AddStringToObject(obj, f->key, base) != NULL;
	case FIELD_ENUM:
		names = enum_names(f->which, &n);
		e = enum_get(c, f->which);
		return cJSON_AddStringToObject(obj, f->key,
					       e >= 0 && (size_t)e < n ? names[e] : "?") != NULL;
	}
	return false;
}

cJSON *model_config_to_json(const struct model_config *cfg)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cfg)
		goto fail;
	for (size_t i = 0; i < FIELD_COUNT; i++)
		if (!add_field(obj, &fields[i], cfg))
			goto fail;
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

/* field_equal compares one field of two configs. */
static bool field_equal(const struct field *f, const struct model_config *a,
			const struct model_config *b)
{
	const char *pa = (const char *)a + f->offset;
	const char *pb = (const char *)b + f->offset;

	switch (f->kind) {
	case FIELD_INT: return memcmp(pa, pb, sizeof(int64_t)) == 0;
	case FIELD_BOOL: return *(const bool *)(const void *)pa == *(const bool *)(const void *)pb;
	case FIELD_REAL: return *(const double *)(const void *)pa ==
				*(const double *)(const void *)pb;
	case FIELD_TEXT: return strncmp(pa, pb, f->size) == 0;
	case FIELD_ENUM: return enum_get(a, f->which) == enum_get(b, f->which);
	}
	return false;
}

bool model_config_equal(const struct model_config *a, const struct model_config *b)
{
	for (size_t i = 0; i < FIELD_COUNT; i++)
		if (!field_equal(&fields[i], a, b))
			return false;
	return true;
}
