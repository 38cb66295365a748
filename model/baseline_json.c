/*
 * baseline.c - loading the published baselines of results/baselines/ (see claims.h
 * and results/baselines/README.md). Strict: unknown keys, unknown figures, figures
 * without a reference, and runs naming an unknown model are errors that name the
 * file and the field's path.
 */
#include "claims.h"
#include "status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	const char *unit;
} figures[MODEL_FIG_COUNT] = {
	[MODEL_FIG_PARAMS_TOTAL] = { "params_total", "parameters" },
	[MODEL_FIG_PARAMS_ACTIVE] = { "params_active", "parameters" },
	[MODEL_FIG_KV_CACHE_BYTES_PER_TOKEN] = { "kv_cache_bytes_per_token", "bytes" },
	[MODEL_FIG_FLOPS_PER_TOKEN] = { "flops_per_token", "FLOP" },
	[MODEL_FIG_TOKENS] = { "tokens", "tokens" },
	[MODEL_FIG_SEQ_LEN] = { "seq_len", "tokens" },
	[MODEL_FIG_BATCH_TOKENS] = { "batch_tokens", "tokens" },
	[MODEL_FIG_TOTAL_FLOPS] = { "total_flops", "FLOP" },
	[MODEL_FIG_GPUS] = { "gpus", "GPUs" },
	[MODEL_FIG_TP] = { "tp", "ways" },
	[MODEL_FIG_CP] = { "cp", "ways" },
	[MODEL_FIG_PP] = { "pp", "ways" },
	[MODEL_FIG_EP] = { "ep", "ways" },
	[MODEL_FIG_DP] = { "dp", "ways" },
	[MODEL_FIG_GPU_HOURS] = { "gpu_hours", "GPU-hours" },
	[MODEL_FIG_GPU_HOURS_PER_TRILLION_TOKENS] = { "gpu_hours_per_trillion_tokens",
						      "GPU-hours" },
	[MODEL_FIG_DAYS_PER_TRILLION_TOKENS] = { "days_per_trillion_tokens", "days" },
	[MODEL_FIG_COST_USD] = { "cost_usd", "USD" },
	[MODEL_FIG_USD_PER_GPU_HOUR] = { "usd_per_gpu_hour", "USD/GPU-hour" },
	[MODEL_FIG_TFLOPS_PER_GPU] = { "tflops_per_gpu", "TFLOP/s" },
	[MODEL_FIG_TOKENS_PER_GPU_S] = { "tokens_per_gpu_s", "tokens/s" },
	[MODEL_FIG_MFU_BF16] = { "mfu_bf16", "fraction" },
	[MODEL_FIG_GOODPUT] = { "goodput", "fraction" },
	[MODEL_FIG_INTERRUPTIONS] = { "interruptions", "events" },
	[MODEL_FIG_UNEXPECTED_INTERRUPTIONS] = { "unexpected_interruptions", "events" },
	[MODEL_FIG_PERIOD_DAYS] = { "period_days", "days" },
	[MODEL_FIG_WEAK_SCALING_EFFICIENCY] = { "weak_scaling_efficiency", "fraction" },
	[MODEL_FIG_STRONG_SCALING_EFFICIENCY] = { "strong_scaling_efficiency", "fraction" },
};

static const char *const bound_names[] = { "about", "at_least", "at_most" };

const char *model_figure_name(enum model_figure fig)
{
	return (unsigned)fig < MODEL_FIG_COUNT ? figures[fig].name : "?";
}

const char *model_figure_unit(enum model_figure fig)
{
	return (unsigned)fig < MODEL_FIG_COUNT ? figures[fig].unit : "?";
}

const char *model_bound_name(enum model_bound bound)
{
	return (unsigned)bound < 3 ? bound_names[bound] : "?";
}

/* fail writes "origin: path: problem" into why and returns code. */
static int fail(int code, char *why, size_t len, const char *origin, const char *path,
		const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!why || !len)
		return code;
	n = snprintf(why, len, "%s: %s: ", origin, path);
	if (n >= 0 && (size_t)n < len) {
		va_start(ap, fmt);
		vsnprintf(why + n, len - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* check_keys rejects members of obj not listed in allowed (NULL-terminated). */
static int check_keys(const cJSON *obj, const char *const *allowed, const char *origin,
		      const char *path, char *why, size_t len)
{
	const cJSON *item;
	size_t i;

	cJSON_ArrayForEach(item, obj) {
		for (i = 0; allowed[i]; i++)
			if (item->string && strcmp(item->string, allowed[i]) == 0)
				break;
		if (!allowed[i])
			return fail(MB_ERR_PARSE, why, len, origin, path, "unknown key \"%s\"",
				    item->string ? item->string : "");
	}
	return MB_OK;
}

/* get_text reads an optional or required string member. */
static int get_text(const cJSON *obj, const char *key, bool required, const char **out,
		    const char *origin, const char *path, char *why, size_t len)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (!item && !required)
		return MB_OK;
	if (!item)
		return fail(MB_ERR_PARSE, why, len, origin, path, "missing \"%s\"", key);
	if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
		return fail(MB_ERR_PARSE, why, len, origin, path, "\"%s\": expected a non-empty "
			    "string", key);
	*out = item->valuestring;
	return MB_OK;
}

/* figure_find maps a JSON name onto a figure, or returns -1. */
static int figure_find(const char *name)
{
	for (int f = 0; f < MODEL_FIG_COUNT; f++)
		if (strcmp(figures[f].name, name) == 0)
			return f;
	return -1;
}

/* read_bound parses the optional "bound" of a figure. */
static int read_bound(const cJSON *obj, enum model_bound *out, const char *origin,
		      const char *path, char *why, size_t len)
{
	const char *text;
	int err = get_text(obj, "bound", false, &text, origin, path, why, len);

	*out = MODEL_BOUND_ABOUT;
	if (err || !text)
		return err;
	for (int b = 0; b < 3; b++)
		if (strcmp(text, bound_names[b]) == 0) {
			*out = (enum model_bound)b;
			return MB_OK;
		}
	return fail(MB_ERR_PARSE, why, len, origin, path, "\"bound\": expected \"about\", "
		    "\"at_least\" or \"at_most\", got \"%s\"", text);
}

/* read_figure reads {"value", "ref", "where", "bound"?, "note"?}; ref must name an
 * entry of the file's references. */
static int read_figure(const cJSON *item, const cJSON *refs, struct model_figure_value *fig,
		       const char *origin, const char *path, char *why, size_t len)
{
	static const char *const keys[] = { "value", "ref", "where", "bound", "note", NULL };
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, "value");
	const cJSON *ref;
	const char *key;
	int err;

	if (!cJSON_IsObject(item))
		return fail(MB_ERR_PARSE, why, len, origin, path, "expected an object");
	if ((err = check_keys(item, keys, origin, path, why, len)))
		return err;
	if (!cJSON_IsNumber(value) || !isfinite(value->valuedouble) || value->valuedouble < 0)
		return fail(MB_ERR_PARSE, why, len, origin, path, "\"value\": expected a "
			    "non-negative number");
	if ((err = get_text(item, "ref", true, &key, origin, path, why, len)) ||
	    (err = get_text(item, "where", true, &fig->where, origin, path, why, len)) ||
	    (err = get_text(item, "note", false, &fig->note, origin, path, why, len)) ||
	    (err = read_bound(item, &fig->bound, origin, path, why, len)))
		return err;
	ref = cJSON_GetObjectItemCaseSensitive(refs, key);
	if (!cJSON_IsString(ref))
		return fail(MB_ERR_PARSE, why, len, origin, path, "\"ref\": \"%s\" is not in "
			    "\"references\"", key);
	fig->ref = ref->valuestring;
	fig->value = value->valuedouble;
	fig->present = true;
	return MB_OK;
}

/* read_figures reads a run's "figures" object. */
static int read_figures(const cJSON *obj, const cJSON *refs, struct model_baseline_run *run,
			const char *origin, const char *run_path, char *why, size_t len)
{
	const cJSON *item;
	char path[192];
	int f, err;

	if (!cJSON_IsObject(obj) || !obj->child)
		return fail(MB_ERR_PARSE, why, len, origin, run_path, "\"figures\": expected a "
			    "non-empty object");
	cJSON_ArrayForEach(item, obj) {
		snprintf(path, sizeof(path), "%s.figures.%s", run_path, item->string);
		f = figure_find(item->string);
		if (f < 0)
			return fail(MB_ERR_PARSE, why, len, origin, path, "unknown figure (see "
				    "results/baselines/README.md)");
		if (run->fig[f].present)
			return fail(MB_ERR_PARSE, why, len, origin, path, "given twice");
		if ((err = read_figure(item, refs, &run->fig[f], origin, path, why, len)))
			return err;
	}
	return MB_OK;
}

/* read_mtp reads a run's optional "mtp_depth" (0..16; -1 when absent). */
static int read_mtp(const cJSON *obj, int64_t *out, const char *origin, const char *path,
		    char *why, size_t len)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "mtp_depth");

	*out = -1;
	if (!item)
		return MB_OK;
	if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
	    item->valuedouble < 0 || item->valuedouble > 16)
		return fail(MB_ERR_PARSE, why, len, origin, path, "\"mtp_depth\": expected an "
			    "integer 0..16");
	*out = (int64_t)item->valuedouble;
	return MB_OK;
}

/* read_run reads one element of "runs". */
static int read_run(const cJSON *obj, const cJSON *refs, size_t index,
		    struct model_baseline_run *run, const char *origin, char *why, size_t len)
{
	static const char *const keys[] = { "name", "model", "hardware", "precision", "note",
					     "mtp_depth", "figures", NULL };
	char path[64];
	int err;

	snprintf(path, sizeof(path), "runs[%zu]", index);
	if (!cJSON_IsObject(obj))
		return fail(MB_ERR_PARSE, why, len, origin, path, "expected an object");
	if ((err = check_keys(obj, keys, origin, path, why, len)) ||
	    (err = get_text(obj, "name", true, &run->name, origin, path, why, len)) ||
	    (err = get_text(obj, "model", true, &run->model, origin, path, why, len)) ||
	    (err = get_text(obj, "hardware", true, &run->hardware, origin, path, why, len)) ||
	    (err = get_text(obj, "precision", false, &run->precision, origin, path, why, len)) ||
	    (err = get_text(obj, "note", false, &run->note, origin, path, why, len)) ||
	    (err = read_mtp(obj, &run->mtp_depth, origin, path, why, len)))
		return err;
	if (!model_preset_find(run->model))
		return fail(MB_ERR_PARSE, why, len, origin, path, "\"model\": unknown preset "
			    "\"%s\"", run->model);
	return read_figures(cJSON_GetObjectItemCaseSensitive(obj, "figures"), refs, run, origin,
			    path, why, len);
}

/* read_top checks the document's top level and its references. */
static int read_top(const cJSON *doc, struct model_baseline *b, const char *origin,
		    char *why, size_t len)
{
	static const char *const keys[] = { "schema", "name", "title", "note", "references",
					    "runs", NULL };
	const cJSON *refs = cJSON_GetObjectItemCaseSensitive(doc, "references");
	const cJSON *runs = cJSON_GetObjectItemCaseSensitive(doc, "runs");
	const cJSON *item;
	const char *schema;
	int err;

	if (!cJSON_IsObject(doc))
		return fail(MB_ERR_PARSE, why, len, origin, "(top)", "expected an object");
	if ((err = check_keys(doc, keys, origin, "(top)", why, len)) ||
	    (err = get_text(doc, "schema", true, &schema, origin, "(top)", why, len)) ||
	    (err = get_text(doc, "name", true, &b->name, origin, "(top)", why, len)) ||
	    (err = get_text(doc, "title", true, &b->title, origin, "(top)", why, len)))
		return err;
	if (strcmp(schema, MODEL_BASELINE_SCHEMA) != 0)
		return fail(MB_ERR_PARSE, why, len, origin, "schema", "expected \"%s\", got "
			    "\"%s\"", MODEL_BASELINE_SCHEMA, schema);
	if (!cJSON_IsObject(refs) || !refs->child)
		return fail(MB_ERR_PARSE, why, len, origin, "references", "expected a non-empty "
			    "object of strings");
	cJSON_ArrayForEach(item, refs)
		if (!cJSON_IsString(item))
			return fail(MB_ERR_PARSE, why, len, origin, "references", "\"%s\": "
				    "expected a string", item->string);
	if (!cJSON_IsArray(runs) || cJSON_GetArraySize(runs) < 1)
		return fail(MB_ERR_PARSE, why, len, origin, "runs", "expected a non-empty array");
	return MB_OK;
}

/* check_unique rejects a run whose name an earlier run already took. */
static int check_unique(const struct model_baseline *b, size_t i, const char *origin,
			char *why, size_t len)
{
	char path[64];

	for (size_t j = 0; j < i; j++)
		if (strcmp(b->runs[j].name, b->runs[i].name) == 0) {
			snprintf(path, sizeof(path), "runs[%zu].name", i);
			return fail(MB_ERR_PARSE, why, len, origin, path, "\"%s\" given twice",
				    b->runs[i].name);
		}
	return MB_OK;
}

int model_baseline_from_json(cJSON *doc, const char *origin, struct model_baseline **out,
			     char *why, size_t why_len)
{
	struct model_baseline *b = calloc(1, sizeof(*b));
	const cJSON *refs, *item;
	size_t i = 0;
	int err = MB_ERR_NOMEM;

	if (!origin)
		origin = "<json>";
	if (!b || !(b->origin = malloc(strlen(origin) + 1)))
		goto out;
	strcpy(b->origin, origin);
	if ((err = read_top(doc, b, origin, why, why_len)))
		goto out;
	refs = cJSON_GetObjectItemCaseSensitive(doc, "references");
	b->n_runs = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "runs"));
	err = MB_ERR_NOMEM;
	if (!(b->runs = calloc(b->n_runs, sizeof(*b->runs))))
		goto out;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "runs")) {
		if ((err = read_run(item, refs, i, &b->runs[i], origin, why, why_len)))
			goto out;
		if ((err = check_unique(b, i, origin, why, why_len)))
			goto out;
		i++;
	}
	b->doc = doc;
	*out = b;
	b = NULL;
	err = MB_OK;
out:
	if (err == MB_ERR_NOMEM && why && why_len)
		snprintf(why, why_len, "%s: out of memory", origin);
	model_baseline_free(b);
	return err;
}

int model_baseline_load(const char *path, struct model_baseline **out, char *why,
			size_t why_len)
{
	char *text = NULL;
	cJSON *doc = NULL;
	int err;

	if (!path || !out)
		return MB_ERR_ARG;
	if ((err = model_read_file(path, &text, why, why_len)))
		goto out;
	doc = cJSON_Parse(text);
	if (!doc) {
		err = fail(MB_ERR_PARSE, why, why_len, path, "(top)", "not valid JSON (near byte "
			   "%ld)", (long)(cJSON_GetErrorPtr() - text));
		goto out;
	}
	err = model_baseline_from_json(doc, path, out, why, why_len);
	if (!err)
		doc = NULL;
out:
	cJSON_Delete(doc);
	free(text);
	return err;
}

void model_baseline_free(struct model_baseline *b)
{
	if (!b)
		return;
	cJSON_Delete(b->doc);
	free(b->runs);
	free(b->origin);
	free(b);
}

const struct model_baseline_run *model_baseline_run_find(const struct model_baseline *b,
							 const char *name)
{
	for (size_t i = 0; b && name && i < b->n_runs; i++)
		if (strcmp(b->runs[i].name, name) == 0)
			return &b->runs[i];
	return NULL;
}

double model_run_figure(const struct model_baseline_run *run, enum model_figure fig)
{
	if (!run || (unsigned)fig >= MODEL_FIG_COUNT || !run->fig[fig].present)
		return NAN;
	return run->fig[fig].value;
}
