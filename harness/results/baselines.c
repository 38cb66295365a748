/*
 * baselines.c - the published baselines as a set (see baselines.h): finding their
 * directory, loading every file, evaluating runs against the hardware table, and the
 * DeepSeek-V3 / Llama 3 405B comparison.
 */
#define _GNU_SOURCE
#include "baselines.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "status.h"

#ifndef MOEBENCH_SOURCE_DIR
#define MOEBENCH_SOURCE_DIR "."
#endif

/* is_dir tells whether path names a directory. */
static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int baselines_find_dir(char *dir, size_t len, char *why, size_t why_len)
{
	const char *env = getenv("MOEBENCH_BASELINES");
	const char *src = MOEBENCH_SOURCE_DIR "/results/baselines";

	if (env && env[0]) {
		snprintf(dir, len, "%s", env);
		if (is_dir(dir))
			return MB_OK;
		snprintf(why, why_len, "MOEBENCH_BASELINES=%s: not a directory", env);
		return MB_ERR_IO;
	}
	snprintf(dir, len, "results/baselines");
	if (is_dir(dir))
		return MB_OK;
	snprintf(dir, len, "%s", src);
	if (is_dir(dir))
		return MB_OK;
	snprintf(why, why_len, "no baseline directory: tried $MOEBENCH_BASELINES (unset), "
		 "./results/baselines and %s", src);
	return MB_ERR_IO;
}

/* cmp_names orders file names for qsort. */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list_json collects the names of dir's *.json files, sorted; *names is allocated
 * (free each name and the array). */
static int list_json(const char *dir, char ***names, size_t *n, char *why, size_t why_len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t k = 0;
	int err = MB_OK;

	if (!d) {
		snprintf(why, why_len, "%s: cannot open the baseline directory", dir);
		return MB_ERR_IO;
	}
	while (!err && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		if (k == BASELINES_MAX) {
			snprintf(why, why_len, "%s: more than %d baseline files", dir, BASELINES_MAX);
			err = MB_ERR_ARG;
			continue;
		}
		char **grown = realloc(v, (k + 1) * sizeof(*v));
		if (grown)
			v = grown;
		if (!grown || !(v[k] = strdup(e->d_name))) {
			snprintf(why, why_len, "out of memory");
			err = MB_ERR_NOMEM;
		} else {
			k++;
		}
	}
	closedir(d);
	if (v)
		qsort(v, k, sizeof(*v), cmp_names);
	*names = v;
	*n = k;
	return err;
}

int baselines_load(const char *dir, struct baselines *set, char *why, size_t why_len)
{
	char **names = NULL, path[2048];
	size_t n = 0;
	int err = list_json(dir, &names, &n, why, why_len);

	memset(set, 0, sizeof(*set));
	snprintf(set->dir, sizeof(set->dir), "%s", dir);
	if (!err && n == 0) {
		snprintf(why, why_len, "%s: no baseline files (*.json)", dir);
		err = MB_ERR_IO;
	}
	for (size_t i = 0; !err && i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		err = model_baseline_load(path, &set->items[set->n], why, why_len);
		if (!err && baselines_find(set, set->items[set->n]->name)) {
			snprintf(why, why_len, "%s: name: \"%s\" is also the name of another file",
				 path, set->items[set->n]->name);
			model_baseline_free(set->items[set->n]);
			err = MB_ERR_PARSE;
		}
		if (!err)
			set->n++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (err)
		baselines_free(set);
	return err;
}

void baselines_free(struct baselines *set)
{
	for (size_t i = 0; i < set->n; i++)
		model_baseline_free(set->items[i]);
	set->n = 0;
}

const struct model_baseline *baselines_find(const struct baselines *set, const char *name)
{
	for (size_t i = 0; name && i < set->n; i++)
		if (strcmp(set->items[i]->name, name) == 0)
			return set->items[i];
	return NULL;
}

void baselines_names(const struct baselines *set, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < set->n && used < len; i++) {
		int k = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", set->items[i]->name);
		if (k < 0)
			break;
		used += (size_t)k;
	}
}

size_t baselines_run_count(const struct baselines *set)
{
	size_t n = 0;

	for (size_t i = 0; i < set->n; i++)
		n += set->items[i]->n_runs;
	return n;
}

double baselines_peak(const struct hardware_spec *hw, const char *precision)
{
	if (!hw)
		return NAN;
	if (precision && strcmp(precision, "fp8") == 0)
		return hw->peak_fp8_tflops;
	return hw->peak_bf16_tflops;
}

int baselines_evaluate(const struct model_baseline *b, size_t i, double usd_per_gpu_hour,
		       bool usd_override, double tolerance, struct baselines_eval *out, char *why, size_t why_len)
{
	const struct model_baseline_run *run = &b->runs[i];
	struct model_claim_inputs in;

	out->baseline = b;
	out->run = run;
	out->cfg = model_preset_find(run->model);
	out->hw = hardware_find_key(run->hardware);
	if (!out->hw) {
		snprintf(why, why_len, "%s: runs[%zu].hardware: unknown hardware key \"%s\" "
			 "(moebench info lists the keys)", b->origin, i, run->hardware);
		return MB_ERR_PARSE;
	}
	in.peak_bf16_tflops = out->hw->peak_bf16_tflops;
	in.peak_fp8_tflops = out->hw->peak_fp8_tflops;
	in.usd_per_gpu_hour = usd_per_gpu_hour;
	in.usd_override = usd_override;
	in.tolerance = tolerance;
	if (model_claims_evaluate(run, out->cfg, &in, &out->report)) {
		snprintf(why, why_len, "%s: runs[%zu]: the claims could not be evaluated "
			 "(model %s)", b->origin, i, run->model);
		return MB_ERR_ARG;
	}
	return MB_OK;
}

/* find_run resolves "baseline/run" in the set, with its hardware; NULL when absent. */
static const struct model_baseline_run *find_run(const struct baselines *set,
						 const char *path,
						 const struct hardware_spec **hw)
{
	char name[128];
	const char *slash = strchr(path, '/');
	const struct model_baseline_run *run;

	snprintf(name, sizeof(name), "%.*s", (int)(slash - path), path);
	run = model_baseline_run_find(baselines_find(set, name), slash + 1);
	*hw = run ? hardware_find_key(run->hardware) : NULL;
	return *hw ? run : NULL;
}

/* side fills one side of the comparison against peak. */
static int side(const struct model_baseline_run *run, double peak, struct model_claim_side *s)
{
	return model_claims_side(run, model_preset_find(run->model), peak, s);
}

int baselines_compare(const struct baselines *set, struct baselines_comparison *out,
		      char *why, size_t why_len)
{
	struct model_claim_side a, b;
	const struct hardware_spec *hw_total;
	int err;

	memset(out, 0, sizeof(*out));
	out->a = find_run(set, BASELINES_CMP_A, &out->hw_a);
	out->b = find_run(set, BASELINES_CMP_B, &out->hw_b);
	out->b_total = find_run(set, BASELINES_CMP_B_TOTAL, &hw_total);
	if (!out->a || !out->b || !out->b_total) {
		snprintf(why, why_len, "the comparison needs the runs %s, %s and %s",
			 BASELINES_CMP_A, BASELINES_CMP_B, BASELINES_CMP_B_TOTAL);
		return MB_ERR_ARG;
	}
	out->headline = model_run_figure(out->a, MODEL_FIG_GPU_HOURS) /
			model_run_figure(out->b_total, MODEL_FIG_GPU_HOURS);
	if ((err = side(out->a, out->hw_a->peak_bf16_tflops, &a)) ||
	    (err = side(out->b, out->hw_b->peak_bf16_tflops, &b)) ||
	    (err = model_claim_compare(&a, &b, &out->bf16)))
		goto out;
	a.peak_tflops = baselines_peak(out->hw_a, out->a->precision);
	b.peak_tflops = baselines_peak(out->hw_b, out->b->precision);
	if ((err = model_claim_compare(&a, &b, &out->stated)))
		goto out;
	out->size_share = log(out->bf16.total_flops) / log(out->bf16.gpu_hours);
out:
	if (err)
		snprintf(why, why_len, "the comparison needs GPU-hours and tokens in %s and %s",
			 BASELINES_CMP_A, BASELINES_CMP_B);
	return err;
}
