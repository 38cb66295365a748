/*
 * report_in.c - the documents `moebench report` reads (report.h): result documents
 * (schema moebench.result/1) of step, train, scale and peak records, and the JSON
 * object of `moebench project --json`. Anything else is refused with what it is.
 * Records whose check did not pass are skipped with a note: a failed check is never
 * reported as a performance figure (DESIGN.md).
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "result.h"
#include "status.h"

/* num returns obj[key] when it is a number, else NaN. */
static double num(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* str returns obj[key] when it is a string, else NULL. */
static const char *str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* passed tells whether a record's check passed. */
static bool passed(const cJSON *rec)
{
	const char *s = str(cJSON_GetObjectItemCaseSensitive(rec, "check"), "status");
	return s && strcmp(s, "pass") == 0;
}

/* run_device names the run's device (the first GPU, else the CPU) and finds its
 * datasheet entry: the one recorded with the device, else by name. */
static void run_device(const cJSON *ctx, struct report_meas *m)
{
	const cJSON *dev = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ctx, "devices"), 0);
	const char *backend = str(ctx, "backend");
	const char *name = dev && backend && strcmp(backend, "cuda") == 0 ? str(dev, "name") : NULL;
	const char *key = str(cJSON_GetObjectItemCaseSensitive(dev, "hardware"), "key");
	const char *cpu = str(cJSON_GetObjectItemCaseSensitive(ctx, "cpu"), "model");

	snprintf(m->device, sizeof(m->device), "%s", name ? name : cpu ? cpu : "unknown CPU");
	m->hw = NULL;
	if (name)
		m->hw = key ? hardware_find_key(key) : hardware_match(name);
}

/* read_meas reads a step, train or scale record. */
static int read_meas(const cJSON *ctx, const cJSON *rec, const char *bench, const char *origin,
		     struct report_meas *m, char *why, size_t why_len)
{
	const cJSON *pm = cJSON_GetObjectItemCaseSensitive(rec, "params");
	const cJSON *mt = cJSON_GetObjectItemCaseSensitive(rec, "metrics");
	const char *preset = str(pm, "preset"), *prec = str(pm, "precision");
	const char *name = str(rec, "name"), *mode = str(pm, "mode");
	/* a scale record's series (mode, layout, what grows) is the sweep it belongs to */
	if (str(pm, "series"))
		mode = str(pm, "series");
	const struct model_config *cfg = preset ? model_preset_find(preset) : NULL;
	double vocab = num(pm, "vocab"), seq = num(pm, "seq"), gpus = num(pm, "gpus");
	/* NOTE: the record's whole config when it has one (model_config: step --model, a
	 * scale sweep's grown model): the preset it names would count another model's FLOPs */
	const cJSON *whole = cJSON_GetObjectItemCaseSensitive(rec, "model_config");
	struct model_config own;
	char cwhy[256];

	memset(m, 0, sizeof(*m));
	if (cJSON_IsObject(whole)) {
		if (model_config_from_json(whole, NULL, &own, cwhy, sizeof(cwhy))) {
			snprintf(why, why_len, "%s: %s record '%s': model_config: %s", origin, bench,
				 name ? name : "?", cwhy);
			return MB_ERR_PARSE;
		}
		cfg = &own;
	}
	if (!cfg || !(seq >= 1)) {
		snprintf(why, why_len, "%s: %s record '%s': params.%s missing or unknown", origin,
			 bench, name ? name : "?", !cfg ? "preset" : "seq");
		return MB_ERR_PARSE;
	}
	m->cfg = *cfg;
	m->cfg.seq_len = (int64_t)seq;
	if (vocab >= 1)
		m->cfg.vocab = (int64_t)vocab;
	if (!isfinite(gpus))
		gpus = num(ctx, "world_size");
	m->gpus = gpus >= 1 ? (int64_t)gpus : 1;
	m->tokens_per_s = num(mt, "tokens_per_s");
	m->flops_recorded = num(mt, "model_flops_per_token");
	if (!(m->tokens_per_s > 0)) {
		snprintf(why, why_len, "%s: %s record '%s': no metrics.tokens_per_s", origin, bench,
			 name ? name : "?");
		return MB_ERR_PARSE;
	}
	snprintf(m->kind, sizeof(m->kind), "%s", bench);
	snprintf(m->label, sizeof(m->label), "%s %s", bench, name ? name : "?");
	snprintf(m->origin, sizeof(m->origin), "%s", origin);
	snprintf(m->precision, sizeof(m->precision), "%s", prec ? prec : "fp32");
	snprintf(m->mode, sizeof(m->mode), "%s", mode ? mode : "");
	run_device(ctx, m);
	return MB_OK;
}

/* device_peaks returns the peaks entry of device, new (NaN rates) if none; NULL when
 * the table is full. */
static struct report_device_peaks *device_peaks(struct report_inputs *in, const char *device)
{
	for (size_t i = 0; i < in->n_peaks; i++)
		if (strcmp(in->peaks[i].device, device) == 0)
			return &in->peaks[i];
	if (in->n_peaks == REPORT_PEAK_MAX)
		return NULL;
	struct report_device_peaks *d = &in->peaks[in->n_peaks++];
	memset(d, 0, sizeof(*d));
	snprintf(d->device, sizeof(d->device), "%s", device);
	d->bf16.tflops = d->fp8.tflops = NAN;
	return d;
}

/* read_peak takes a peak record's GEMM rate as a measured denominator of its device:
 * cuBLASLt's BF16 and FP8 GEMMs on a GPU; on a CPU, SGEMM stands for BF16 (step and
 * train compute their GEMMs in FP32 there, BF16 and FP8 emulated by rounding). */
static int read_peak(const cJSON *ctx, const cJSON *rec, const char *origin,
		     struct report_inputs *in, char *why, size_t why_len)
{
	const char *op = str(cJSON_GetObjectItemCaseSensitive(rec, "params"), "op");
	double tf = num(cJSON_GetObjectItemCaseSensitive(rec, "metrics"), "tflops");
	struct report_meas dev;
	struct report_peak *p = NULL;
	const char *what = "";

	if (!op || !(tf > 0))
		return MB_OK;
	run_device(ctx, &dev);
	struct report_device_peaks *d = device_peaks(in, dev.device);
	if (!d) {
		snprintf(why, why_len, "%s: peaks of more than %d devices", origin, REPORT_PEAK_MAX);
		return MB_ERR_ARG;
	}
	if (strcmp(op, "bf16_gemm") == 0)
		p = &d->bf16, what = "cuBLASLt BF16 GEMM";
	else if (strcmp(op, "fp8_tensor_gemm") == 0)
		p = &d->fp8, what = "cuBLASLt FP8 GEMM";
	else if (strcmp(op, "sgemm") == 0 && !strstr(d->bf16.source, "BF16"))
		p = &d->bf16, what = "SGEMM: the CPU's GEMMs run in FP32";
	if (p) {
		p->tflops = tf;
		snprintf(p->source, sizeof(p->source), "measured: %s, %s (%s)", origin,
			 str(rec, "name") ? str(rec, "name") : "?", what);
	}
	return MB_OK;
}

/* report_peaks_of returns the measured peaks of device, or NULL. */
const struct report_device_peaks *report_peaks_of(const struct report_inputs *in,
						  const char *device)
{
	for (size_t i = 0; i < in->n_peaks; i++)
		if (strcmp(in->peaks[i].device, device) == 0)
			return &in->peaks[i];
	return NULL;
}

/* read_records takes every usable record of a result document. */
static int read_records(const cJSON *doc, const char *origin, struct report_inputs *in,
			char *why, size_t why_len)
{
	const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(doc, "context"), *rec;
	const char *other = NULL;
	size_t used = 0;
	int err;

	cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(doc, "records")) {
		const char *b = str(rec, "benchmark");
		bool meas = b && (!strcmp(b, "step") || !strcmp(b, "train") || !strcmp(b, "scale"));
		if (!meas && !(b && !strcmp(b, "peak"))) {
			other = b ? b : "?";
			continue;
		}
		if (!passed(rec)) {
			cli_note(false, "%s: %s record '%s' skipped: its check did not pass", origin,
				 b, str(rec, "name") ? str(rec, "name") : "?");
			continue;
		}
		used++;
		if (!meas) {
			if ((err = read_peak(ctx, rec, origin, in, why, why_len)))
				return err;
			continue;
		}
		if (in->n_meas == REPORT_MEAS_MAX) {
			snprintf(why, why_len, "%s: more than %d measured records", origin,
				 REPORT_MEAS_MAX);
			return MB_ERR_ARG;
		}
		if ((err = read_meas(ctx, rec, b, origin, &in->meas[in->n_meas], why, why_len)))
			return err;
		in->n_meas++;
	}
	if (used == 0) {
		snprintf(why, why_len, "%s: a result of '%s', not of step, train, scale or peak "
			 "(or no record passed its check)", origin, other ? other : "nothing");
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

/* read_project takes the figures of a `project --json` object. */
static int read_project(const cJSON *doc, const char *origin, struct report_inputs *in,
			char *why, size_t why_len)
{
	struct report_project *p = &in->proj[in->n_proj];
	const char *model = str(doc, "model"), *hw = str(doc, "hardware");

	if (in->n_proj == REPORT_PROJ_MAX || !model || !hw) {
		snprintf(why, why_len, "%s: %s", origin, !model || !hw ? "a projection without "
			 "\"model\" or \"hardware\"" : "too many projections");
		return MB_ERR_PARSE;
	}
	memset(p, 0, sizeof(*p));
	snprintf(p->model, sizeof(p->model), "%s", model);
	snprintf(p->hardware, sizeof(p->hardware), "%s", hw);
	p->gpus = num(doc, "gpus");
	p->tokens = num(doc, "tokens");
	p->gpu_hours = num(doc, "gpu_hours");
	p->claimed_gpu_hours = num(doc, "claimed_gpu_hours");
	p->mfu_bf16 = num(doc, "mfu_bf16");
	p->tokens_per_gpu_s = num(doc, "tokens_per_gpu_s");
	snprintf(p->label, sizeof(p->label), "project %s %s %.0f GPUs", model, hw, p->gpus);
	in->n_proj++;
	return MB_OK;
}

int report_read_doc(const cJSON *doc, const char *origin, struct report_inputs *in,
		    char *why, size_t why_len)
{
	const char *schema = str(doc, "schema");

	if (cJSON_IsObject(doc) && !schema && cJSON_IsNumber(cJSON_GetObjectItem(doc, "step_s")) &&
	    cJSON_IsObject(cJSON_GetObjectItem(doc, "split_s")))
		return read_project(doc, origin, in, why, why_len);
	if (!schema || strcmp(schema, RESULT_SCHEMA) != 0) {
		snprintf(why, why_len, "%s: not a result document (schema %s%s%s, want %s) nor "
			 "a `moebench project --json` object", origin, schema ? "\"" : "",
			 schema ? schema : "missing", schema ? "\"" : "", RESULT_SCHEMA);
		return MB_ERR_PARSE;
	}
	/* NOTE: not result_validate: a train record has no time_s (it times steps, not
	 * repetitions), which that check requires of every record */
	if (!cJSON_IsObject(cJSON_GetObjectItem(doc, "context")) ||
	    !cJSON_IsArray(cJSON_GetObjectItem(doc, "records"))) {
		snprintf(why, why_len, "%s: a result document without \"context\" or \"records\"",
			 origin);
		return MB_ERR_PARSE;
	}
	return read_records(doc, origin, in, why, why_len);
}

int report_read_file(const char *path, struct report_inputs *in, char *why, size_t why_len)
{
	char *text = NULL;
	int err = model_read_file(path, &text, why, why_len);
	if (err)
		return err;
	cJSON *doc = cJSON_Parse(text);
	free(text);
	if (!doc) {
		snprintf(why, why_len, "%s: not JSON", path);
		return MB_ERR_PARSE;
	}
	err = report_read_doc(doc, path, in, why, why_len);
	cJSON_Delete(doc);
	return err;
}
