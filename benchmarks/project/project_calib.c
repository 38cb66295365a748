/*
 * project_calib.c - reading GEMM efficiencies and memory bandwidth from moebench result
 * documents (see project_calib.h).
 */
#define _GNU_SOURCE
#include "project_calib.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "model.h"
#include "status.h"

#ifndef MOEBENCH_SOURCE_DIR
#define MOEBENCH_SOURCE_DIR "."
#endif

void proj_calib_default_dir(char *dir, size_t len)
{
	struct stat st;

	snprintf(dir, len, "results/runs/h100-sxm");
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return;
	snprintf(dir, len, "%s/results/runs/h100-sxm", MOEBENCH_SOURCE_DIR);
}

void proj_calib_free(struct proj_calib *c)
{
	for (int d = 0; d < PROJ_N_DTYPES; d++) {
		free(c->pts[d]);
		c->pts[d] = NULL;
		c->n[d] = 0;
	}
}

/* str_of returns obj[key] as a string, or "". */
static const char *str_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* num_of returns obj[key] as a number, or NaN. */
static double num_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* add_point appends a point to dtype d's list. */
static int add_point(struct proj_calib *c, int d, const cJSON *p, double eff)
{
	struct proj_gemm_point *g = realloc(c->pts[d], (c->n[d] + 1) * sizeof(*g));

	if (!g)
		return MB_ERR_NOMEM;
	c->pts[d] = g;
	g[c->n[d]++] = (struct proj_gemm_point){ (int64_t)num_of(p, "m"), (int64_t)num_of(p, "n"),
						 (int64_t)num_of(p, "k"), eff };
	return MB_OK;
}

/* record_dtype says which list a passing record feeds: PROJ_BF16, PROJ_FP8, or -1. */
static int record_dtype(const char *bench, const cJSON *p)
{
	const char *dt = str_of(p, "dtype");

	if (strcmp(bench, "gemm") == 0 && strcmp(str_of(p, "impl"), "cublaslt") == 0)
		return strcmp(dt, "bf16") == 0 ? PROJ_BF16 :
		       strcmp(dt, "fp8-block") == 0 ? PROJ_FP8 : -1;
	if (strcmp(bench, "peak") == 0)
		return strcmp(str_of(p, "op"), "bf16_gemm") == 0 ? PROJ_BF16 :
		       strcmp(str_of(p, "op"), "fp8_tensor_gemm") == 0 ? PROJ_FP8 : -1;
	return -1;
}

/* take_record adds one record's point or memory figure. */
static int take_record(struct proj_calib *c, const struct hardware_spec *hw, const cJSON *r)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "params");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "metrics");
	const cJSON *chk = cJSON_GetObjectItemCaseSensitive(r, "check");
	const char *bench = str_of(r, "benchmark");

	if (!p || !m || strcmp(str_of(chk, "status"), "pass") != 0)
		return MB_OK;
	if (strcmp(bench, "peak") == 0 && strcmp(str_of(p, "op"), "d2d_copy") == 0) {
		double gbps = num_of(m, "gbps");
		/* the best of the copies measured (warm and cold runs differ by ~0.2%) */
		if (gbps > 0 && hw->hbm_tbps > 0 && !(c->mem_efficiency >= gbps / (hw->hbm_tbps * 1e3)))
			c->mem_efficiency = gbps / (hw->hbm_tbps * 1000.0);
		return MB_OK;
	}
	int d = record_dtype(bench, p);
	double tf = num_of(m, "tflops");
	double peak = d == PROJ_BF16 ? hw->peak_bf16_tflops : hw->peak_fp8_tflops;
	if (d < 0 || !(tf > 0) || !(peak > 0) || !(num_of(p, "m") >= 1) ||
	    !(num_of(p, "n") >= 1) || !(num_of(p, "k") >= 1))
		return MB_OK;
	return add_point(c, d, p, tf / peak);
}

/* take_doc reads one result document. */
static int take_doc(struct proj_calib *c, const char *path, char *why, size_t len)
{
	char *text = NULL;
	cJSON *doc = NULL;
	int err = model_read_file(path, &text, why, len);

	if (err)
		return err;
	doc = cJSON_Parse(text);
	const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(doc, "context");
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(ctx, "devices");
	const cJSON *recs = cJSON_GetObjectItemCaseSensitive(doc, "records");
	const char *dev = str_of(cJSON_GetArrayItem(devs, 0), "name");
	const struct hardware_spec *hw = hardware_match(dev);
	if (!doc) {
		snprintf(why, len, "%s: malformed JSON", path);
		err = MB_ERR_PARSE;
		goto out;
	}
	/* NOTE: other documents (info --json) may share the directory: not results. */
	if (strcmp(str_of(doc, "schema"), "moebench.result/1") != 0 || !cJSON_IsArray(recs))
		goto out;
	if (!hw || (c->device[0] && strcmp(c->device, dev) != 0)) {
		snprintf(why, len, "%s: device '%s' %s", path, dev, hw ? "differs from the other "
			 "files' (one device per calibration directory)" : "is not in the hardware table");
		err = MB_ERR_PARSE;
		goto out;
	}
	snprintf(c->device, sizeof(c->device), "%s", dev);
	snprintf(c->hw_key, sizeof(c->hw_key), "%s", hw->key);
	const cJSON *r;
	cJSON_ArrayForEach(r, recs)
		if ((err = take_record(c, hw, r)))
			goto out;
	c->files++;
out:
	cJSON_Delete(doc);
	free(text);
	return err;
}

int proj_calib_load(const char *dir, struct proj_calib *c, char *why, size_t why_len)
{
	char path[2048];
	struct dirent *e;
	int err = MB_OK;
	DIR *d = opendir(dir);

	memset(c, 0, sizeof(*c));
	c->mem_efficiency = NAN;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	if (!d) {
		snprintf(why, why_len, "--calibration %s: cannot open the directory", dir);
		return MB_ERR_IO;
	}
	while (!err && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		err = take_doc(c, path, why, why_len);
	}
	closedir(d);
	if (!err && (c->n[PROJ_BF16] == 0 || c->n[PROJ_FP8] == 0)) {
		snprintf(why, why_len, "--calibration %s: no passing BF16 and FP8 GEMM records of "
			 "a GPU (moebench gemm/peak result files)", dir);
		err = MB_ERR_PARSE;
	}
	if (err)
		proj_calib_free(c);
	return err;
}

/* arch_of names the architecture family of the hardware keys that share one. */
static const char *arch_of(const char *key)
{
	static const char *const hopper[] = { "h100-sxm", "h800-sxm", "h200" };

	for (size_t i = 0; i < sizeof(hopper) / sizeof(hopper[0]); i++)
		if (strcasecmp(key, hopper[i]) == 0)
			return "hopper-132sm";
	return key;
}

bool proj_calib_applies(const struct proj_calib *c, const struct hardware_spec *hw)
{
	return c && c->files > 0 && hw && strcasecmp(arch_of(c->hw_key), arch_of(hw->key)) == 0;
}
