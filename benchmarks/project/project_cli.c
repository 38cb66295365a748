/*
 * project_cli.c - options, loading, sweep and search of `moebench project`
 * (project_cli.h).
 */
#define _GNU_SOURCE
#include "project_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "status.h"

#define USAGE "moebench project --preset NAME|--model FILE --hardware KEY --gpus N " \
	      "--layout tp=,cp=,pp=,dp=,ep=,etp=,vp= --schedule NAME --precision bf16|fp8 " \
	      "[--seq N] [--global-batch N] [--micro-batch N] [--recompute none|selective|full] " \
	      "[--ep-dispatch auto|deepep|alltoall] [--stages even-layers|balanced] " \
	      "[--calibration DIR|none] [--tokens N] [--usd-per-gpu-hour X] [--json] " \
	      "[--sweep KEY=V1,V2,..] [--search [--top N]] | --validate"

/* Global batches (sequences) of the published runs, used when --global-batch is not
 * given: DeepSeek-V3's final 15360 (arXiv 2412.19437 sec. 4.2), Llama 3 405B's 16M
 * tokens at 8K = 16 sequences x 128 DP (arXiv 2407.21783 Table 4). */
static const struct { const char *model; int64_t batch; } default_batches[] = {
	{ "deepseek-v3", 15360 },
	{ "llama3-405b", 2048 },
};

const char *proj_layout_hint(void)
{
	return "tp*cp*pp*dp must equal --gpus (dp may be left out and is derived); ep*etp must "
	       "divide tp*cp*dp and the routed experts; --global-batch a multiple of dp x "
	       "--micro-batch; dualpipe needs an even pp and micro-batches >= 2 x pp; the "
	       "hardware entry needs its NVLink, network and HBM figures";
}

int proj_opts_parse(int argc, char **argv, struct proj_opts *o, bool *help)
{
	char *pos[1];
	int npos;
	const struct cli_opt opts[] = {
		{ "preset", CLI_STRING, &o->preset, NULL, "a built-in model (moebench model --list)", 0, -1, NULL },
		{ "model", CLI_STRING, &o->model_file, NULL, "a model config JSON file", 0, -1, NULL },
		{ "hardware", CLI_STRING, &o->hardware, "h100-sxm", "a hardware key (moebench info)", 0, -1, NULL },
		{ "gpus", CLI_SIZE, &o->gpus, "8", "GPUs of the run", 1, 1 << 22, NULL },
		{ "layout", CLI_STRING, &o->layout, "", "tp=,cp=,pp=,dp=,ep=,etp=,vp= (each 1 by default, dp derived)", 0, -1, NULL },
		{ "schedule", CLI_CHOICE, &o->schedule, "1f1b", "pipeline schedule", 0, -1, "gpipe|1f1b|interleaved|zb-h1|dualpipe|dualpipev" },
		{ "precision", CLI_CHOICE, &o->precision, "bf16", "GEMM precision", 0, -1, "bf16|fp8" },
		{ "seq", CLI_SIZE, &o->seq, "0", "sequence length (0: the model's)", 0, 1 << 22, NULL },
		{ "global-batch", CLI_SIZE, &o->global_batch, "0", "sequences per step (0: the published run's, else dp x micro-batch x 2 x pp)", 0, 1 << 30, NULL },
		{ "micro-batch", CLI_SIZE, &o->micro_batch, "1", "sequences per micro-batch", 1, 1 << 16, NULL },
		{ "recompute", CLI_CHOICE, &o->recompute, "none", "activation recomputation", 0, -1, "none|selective|full" },
		{ "ep-dispatch", CLI_CHOICE, &o->dispatch, "auto", "EP token transport (auto: deepep under dualpipe(v), else alltoall)", 0, -1, "auto|deepep|alltoall" },
		{ "stages", CLI_CHOICE, &o->stages, "even-layers", "layer placement over PP stages", 0, -1, "even-layers|balanced" },
		{ "mtp", CLI_INT, &o->mtp, "-1", "MTP modules (-1: the model's)", -1, 16, NULL },
		{ "calibration", CLI_STRING, &o->calibration, NULL, "directory of moebench result files (default results/runs/h100-sxm), or none", 0, -1, NULL },
		{ "tokens", CLI_DOUBLE, &o->tokens, "0", "token budget for GPU-hours (0: the published run's)", 0, 1e18, NULL },
		{ "usd-per-gpu-hour", CLI_DOUBLE, &o->usd, "2", "price of a GPU-hour", 0, 1e6, NULL },
		{ "json", CLI_FLAG, &o->json, NULL, "print JSON", 0, -1, NULL },
		{ "sweep", CLI_STRING, &o->sweep, NULL, "KEY=V1,V2,... over gpus, tp, cp, pp, dp, ep, vp", 0, -1, NULL },
		{ "search", CLI_FLAG, &o->search, NULL, "search layouts that fit memory", 0, -1, NULL },
		{ "top", CLI_INT, &o->top, "5", "layouts --search prints", 1, 100, NULL },
		{ "validate", CLI_FLAG, &o->validate, NULL, "project the published runs and print the error", 0, -1, NULL },
		CLI_END
	};

	memset(o, 0, sizeof(*o));
	return cli_parse("project", argc, argv, NULL, opts, pos, 0, &npos, help, USAGE);
}

/* load_model resolves --preset or --model into cfg. */
static int load_model(const struct proj_opts *o, struct model_config *cfg)
{
	char names[1024], hint[1100], why[512];
	const struct model_config *p;

	if (o->preset && o->model_file)
		return cli_error("give one of them", "--preset and --model both given");
	if (o->model_file) {
		if (model_config_load(o->model_file, cfg, why, sizeof(why)))
			return cli_error("the file holds a JSON model config (moebench model --help)",
					 "--model: %s", why);
		return 0;
	}
	if (!o->preset)
		return cli_error("moebench model --list shows the presets",
				 "--preset or --model is required");
	if (!(p = model_preset_find(o->preset))) {
		model_preset_names(names, sizeof(names));
		snprintf(hint, sizeof(hint), "known presets are %s", names);
		return cli_error(hint, "--preset: unknown model '%s'", o->preset);
	}
	*cfg = *p;
	return 0;
}

/* load_hardware resolves --hardware. */
static int load_hardware(const struct proj_opts *o, const struct hardware_spec **hw)
{
	char keys[512] = "";

	if ((*hw = hardware_find_key(o->hardware)))
		return 0;
	for (size_t i = 0; i < hardware_count(); i++) {
		size_t l = strlen(keys);
		snprintf(keys + l, sizeof(keys) - l, "%s%s", i ? ", " : "", hardware_at(i)->key);
	}
	char hint[600];
	snprintf(hint, sizeof(hint), "known hardware keys are %s", keys);
	return cli_error(hint, "--hardware: unknown key '%s'", o->hardware);
}

int proj_env_load(const struct proj_opts *o, struct proj_env *env)
{
	char dir[1024], why[1024];
	int st;

	memset(env, 0, sizeof(*env));
	if (!o->validate && ((st = load_model(o, &env->cfg)) || (st = load_hardware(o, &env->hw))))
		return st;
	if (!o->calibration || strcmp(o->calibration, "none") != 0) {
		if (o->calibration)
			snprintf(dir, sizeof(dir), "%s", o->calibration);
		else
			proj_calib_default_dir(dir, sizeof(dir));
		if (proj_calib_load(dir, &env->cal, why, sizeof(why)))
			return cli_error("--calibration takes a directory of moebench gemm/peak result "
					 "files, or none", "%s", why);
		env->cal_ok = true;
	}
	if (baselines_find_dir(dir, sizeof(dir), why, sizeof(why)) == MB_OK &&
	    baselines_load(dir, &env->baselines, why, sizeof(why)) == MB_OK)
		env->baselines_ok = true;
	else if (o->validate)
		return proj_env_free(env), cli_error("set MOEBENCH_BASELINES to the baseline "
						     "directory", "%s", why);
	return 0;
}

void proj_env_free(struct proj_env *env)
{
	if (env->cal_ok)
		proj_calib_free(&env->cal);
	if (env->baselines_ok)
		baselines_free(&env->baselines);
	env->cal_ok = env->baselines_ok = false;
}

/* layout_item stores one "key=value" of --layout. */
static int layout_item(struct proj_input *in, const char *item)
{
	const char *keys[] = { "tp", "cp", "pp", "dp", "ep", "etp", "vp" };
	int *dst[] = { &in->tp, &in->cp, &in->pp, &in->dp, &in->ep, &in->etp, &in->vp };
	const char *eq = strchr(item, '=');
	char *end;

	for (int i = 0; eq && i < 7; i++) {
		if (strlen(keys[i]) != (size_t)(eq - item) || strncmp(item, keys[i], (size_t)(eq - item)))
			continue;
		long v = strtol(eq + 1, &end, 10);
		if (*end || end == eq + 1 || v < 1 || v > (1L << 20))
			return cli_error(proj_layout_hint(), "--layout: %s: not a whole number >= 1",
					 item);
		*dst[i] = (int)v;
		return 0;
	}
	return cli_error("--layout takes tp=,cp=,pp=,dp=,ep=,etp=,vp=", "--layout: '%s' is not "
			 "a known key=value", item);
}

/* parse_layout reads --layout over the defaults (1, dp derived) and derives dp. */
static int parse_layout(const char *text, int64_t gpus, struct proj_input *in)
{
	char buf[256], *save = NULL;
	int st = 0;

	in->tp = in->cp = in->pp = in->ep = in->etp = in->vp = 1;
	in->dp = 0;
	if (strlen(text) >= sizeof(buf))
		return cli_error(NULL, "--layout: too long");
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *it = strtok_r(buf, ",", &save); it && !st; it = strtok_r(NULL, ",", &save))
		st = layout_item(in, it);
	int64_t model = (int64_t)in->tp * in->cp * in->pp;
	if (!st && in->dp == 0) {
		if (gpus % model)
			return cli_error(proj_layout_hint(), "--layout: tp*cp*pp = %lld does not "
					 "divide --gpus %lld", (long long)model, (long long)gpus);
		in->dp = (int)(gpus / model);
	}
	return st;
}

/* default_batch is the global batch when --global-batch is not given. */
static int64_t default_batch(const struct proj_input *in)
{
	for (size_t i = 0; i < sizeof(default_batches) / sizeof(default_batches[0]); i++)
		if (strcmp(in->cfg->name, default_batches[i].model) == 0)
			return default_batches[i].batch;
	return (int64_t)in->dp * in->micro_batch * 2 * in->pp;
}

int proj_input_from_opts(const struct proj_opts *o, const struct proj_env *env,
			 struct proj_input *in)
{
	enum pipe_schedule s;
	int st;

	memset(in, 0, sizeof(*in));
	in->cfg = &env->cfg;
	in->hw = env->hw;
	in->calib = env->cal_ok ? &env->cal : NULL;
	in->gpus = o->gpus;
	if ((st = parse_layout(o->layout, o->gpus, in)))
		return st;
	pipe_schedule_parse(o->schedule, &s);
	in->schedule = s;
	in->fp8 = strcmp(o->precision, "fp8") == 0;
	in->seq = o->seq ? o->seq : env->cfg.seq_len;
	in->micro_batch = o->micro_batch;
	in->global_batch = o->global_batch ? o->global_batch : default_batch(in);
	in->recompute = strcmp(o->recompute, "full") == 0 ? PROJ_RECOMPUTE_FULL :
			strcmp(o->recompute, "selective") == 0 ? PROJ_RECOMPUTE_SELECTIVE :
			PROJ_RECOMPUTE_NONE;
	in->mtp_depth = o->mtp >= 0 ? o->mtp : env->cfg.mtp_depth;
	bool dual = s == PIPE_DUALPIPE || s == PIPE_DUALPIPEV;
	in->dispatch = strcmp(o->dispatch, "deepep") == 0 ? PROJ_DISPATCH_DEEPEP :
		       strcmp(o->dispatch, "alltoall") == 0 ? PROJ_DISPATCH_ALLTOALL :
		       dual ? PROJ_DISPATCH_DEEPEP : PROJ_DISPATCH_ALLTOALL;
	in->stages = strcmp(o->stages, "balanced") == 0 ? PROJ_STAGES_BALANCED
							 : PROJ_STAGES_EVEN_LAYERS;
	if (in->fp8 && !(in->hw->peak_fp8_tflops > 0))
		return cli_error("use --precision bf16", "--precision fp8: %s has no FP8 peak in "
				 "the hardware table", in->hw->key);
	return 0;
}

/* sweep_set sets key to v in a copy of the input, deriving dp (or the GPUs for dp). */
static int sweep_set(struct proj_input *in, const char *key, int64_t v)
{
	const char *keys[] = { "tp", "cp", "pp", "dp", "ep", "etp", "vp" };
	int *dst[] = { &in->tp, &in->cp, &in->pp, &in->dp, &in->ep, &in->etp, &in->vp };
	int64_t model;

	if (strcmp(key, "gpus") == 0) {
		in->gpus = v;
	} else {
		int i = 0;
		while (i < 7 && strcmp(key, keys[i]) != 0)
			i++;
		if (i == 7)
			return -1;
		*dst[i] = (int)v;
	}
	model = (int64_t)in->tp * in->cp * in->pp;
	if (strcmp(key, "dp") == 0)
		in->gpus = model * in->dp;
	else
		in->dp = (int)(in->gpus / model);
	return 0;
}

int proj_sweep(const struct proj_opts *o, const struct proj_input *base,
	       const struct proj_budget *b)
{
	char buf[512], key[16], *save = NULL, why[512];
	const char *eq = strchr(o->sweep, '=');
	const char *hint = "--sweep takes KEY=V1,V2,... with KEY one of gpus, tp, cp, pp, dp, ep, "
			   "etp, vp";

	if (!eq || eq == o->sweep || (size_t)(eq - o->sweep) >= sizeof(key) ||
	    strlen(eq + 1) >= sizeof(buf) || !eq[1])
		return cli_error(hint, "--sweep: '%s' is not KEY=V1,V2,...", o->sweep);
	snprintf(key, sizeof(key), "%.*s", (int)(eq - o->sweep), o->sweep);
	snprintf(buf, sizeof(buf), "%s", eq + 1);
	proj_print_row_header(stdout);
	for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
		struct proj_input in = *base;
		struct proj_result r;
		int64_t v;
		if (cli_parse_size(it, &v) || v < 1 || sweep_set(&in, key, v))
			return cli_error(hint, "--sweep: '%s=%s' is not a valid value", key, it);
		if (proj_step(&in, &r, why, sizeof(why)))
			printf("%6lld %s=%lld: %s\n", (long long)in.gpus, key, (long long)v, why);
		else
			proj_print_row(stdout, &r, b);
	}
	return 0;
}

/* cmp_step orders results by step time. */
static int cmp_step(const void *a, const void *b)
{
	double x = ((const struct proj_result *)a)->step_s, y = ((const struct proj_result *)b)->step_s;
	return (x > y) - (x < y);
}

/* search_try projects one candidate and keeps it when it runs and fits. */
static void search_try(struct proj_input in, struct proj_result *keep, size_t *n, size_t cap)
{
	char why[512];

	if (*n < cap && proj_step(&in, &keep[*n], why, sizeof(why)) == MB_OK && keep[*n].fits)
		(*n)++;
}

int proj_search(const struct proj_opts *o, const struct proj_input *base,
		const struct proj_budget *b)
{
	enum { CAP = 4096 };
	struct proj_result *keep = malloc(CAP * sizeof(*keep));
	int vps[] = { 2, 4, 8 };
	size_t n = 0;
	bool inter = base->schedule == PIPE_INTERLEAVED;

	if (!keep)
		return cli_error(NULL, "out of memory");
	for (int tp = 1; tp <= 8; tp *= 2)
		for (int pp = 1; pp <= 64 && pp <= base->cfg->layers; pp *= 2)
			for (int ep = 1; ep <= (base->cfg->routed_experts ? 256 : 1); ep *= 2)
				for (int v = 0; v < (inter ? 3 : 1); v++) {
					struct proj_input in = *base;
					in.tp = tp;
					in.pp = pp;
					in.ep = ep;
					in.etp = 1;
					in.vp = inter ? vps[v] : 1;
					if (base->gpus % ((int64_t)tp * in.cp * pp))
						continue;
					in.dp = (int)(base->gpus / ((int64_t)tp * in.cp * pp));
					search_try(in, keep, &n, CAP);
				}
	qsort(keep, n, sizeof(*keep), cmp_step);
	printf("moebench project --search: %s on %lld x %s, %s, schedule %s: %zu layouts run "
	       "and fit; the best %d\n", base->cfg->name, (long long)base->gpus, base->hw->key,
	       base->fp8 ? "fp8" : "bf16", pipe_schedule_name(base->schedule), n,
	       (int)(n < (size_t)o->top ? n : (size_t)o->top));
	proj_print_row_header(stdout);
	for (size_t i = 0; i < n && i < (size_t)o->top; i++)
		proj_print_row(stdout, &keep[i], b);
	free(keep);
	return 0;
}
