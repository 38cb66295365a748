/*
 * cmd_scale.c - `moebench scale`: weak and strong scaling of the training step (`moebench
 * step`) over a list of rank counts and parallel layouts, each size launched through a
 * launcher template and its result file kept; efficiencies (DESIGN: weak E = throughput
 * per rank at N over N0; strong E = T(N0) N0 / (T(N) N), both against the fewest ranks
 * of the same series), a table with the cores each rank had and the grid and model of
 * each size, Frontier's published efficiencies beside, a result document (benchmark
 * "scale": params gpus, mode, series, layout, grow, grid, preset, precision, seq, vocab;
 * metrics tokens_per_s, as `moebench report` reads them) and --csv for plots/scaling.gp.
 *
 *   moebench scale --ranks 1,2,4                          # weak and strong, v3-tiny, DP
 *   moebench scale --mode strong --batch 8 --launcher "srun -n {n}"
 *   moebench scale --ranks 1,2,4 --layout dp,ep           # one series per mode and layout
 *   moebench scale --ranks 1,2,4 --mode weak --grow experts --experts-per-rank 4
 *   moebench scale --ranks 2,4 --layout dp --pp 2 --zero1  # fixed PP 2, DP takes the rest
 *
 * --layout names the dimension that takes the ranks of each size: dp (default), ep (EP
 * over the ranks of a stage), tp (the experts sliced alike, ETP = TP), pp (stages); the
 * fixed --tp/--pp/--ep/--etp/--schedule/--zero1 are passed to every size. Weak: --batch
 * sequences per rank (global batch N * batch); --grow experts makes the routed experts
 * --experts-per-rank x EP (layout ep; one expert group), --grow layers the layers
 * --layers-per-rank x PP (layout pp; --batch per pipeline), each through `step --model`
 * with a kept model JSON; strong points run the preset. Strong: --batch sequences in all.
 * Every size is checked as `step` would check it before anything is launched. Exit 0;
 * 1 when a step's own check failed; 2 on bad input (a size a layout does not divide, a
 * layout the step refuses, a kept result file without --force, no launcher).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baselines.h"
#include "cli.h"
#include "commands.h"
#include "driver.h"
#include "result.h"
#include "scale.h"
#include "session.h"
#include "stats.h"
#include "status.h"
#include "step_io.h"

static struct {
	const char *preset, *precision, *ranks, *mode, *launcher, *dir, *csv, *layout, *grow;
	const char *schedule;
	int64_t batch, seq, iters, warmup, tp, pp, ep, etp, epr, lpr;
	bool zero1;
} so;

static const struct cli_opt scale_options[] = {
	{ "ranks", CLI_STRING, &so.ranks, "1,2,4", "rank counts, comma separated, increasing", 0, -1, NULL },
	{ "mode", CLI_CHOICE, &so.mode, "both", "weak (per-rank batch fixed), strong (global batch fixed)", 0, -1, "weak|strong|both" },
	{ "preset", CLI_STRING, &so.preset, "v3-tiny", "model preset (moebench model --list)", 0, -1, NULL },
	{ "precision", CLI_CHOICE, &so.precision, "fp32", "GEMM precision", 0, -1, "fp32|bf16|fp8" },
	{ "batch", CLI_SIZE, &so.batch, "4", "sequences: per rank (weak), in all (strong)", 1, 65536, NULL },
	{ "seq", CLI_SIZE, &so.seq, "64", "tokens per sequence", 2, 65536, NULL },
	{ "step-iters", CLI_SIZE, &so.iters, "5", "timed steps of each size", 1, 1e6, NULL },
	{ "step-warmup", CLI_SIZE, &so.warmup, "1", "warm-up steps of each size", 0, 1e6, NULL },
	{ "launcher", CLI_STRING, &so.launcher, NULL, "launch template, {n} the ranks (default: srun -n {n} under Slurm, else mpirun --oversubscribe -np {n})", 0, -1, NULL },
	{ "dir", CLI_STRING, &so.dir, "scale_results", "folder of each size's step result (kept)", 0, -1, NULL },
	{ "csv", CLI_STRING, &so.csv, NULL, "also write mode,ranks,... for plots/scaling.gp", 0, -1, NULL },
	{ "layout", CLI_STRING, &so.layout, NULL, "dimensions taking each size's ranks, comma separated, one series each: dp|ep|tp|pp (default dp; ep under --grow experts, pp under --grow layers)", 0, -1, NULL },
	{ "tp", CLI_SIZE, &so.tp, "0", "tensor-parallel size fixed at every size (0: 1, or the layout's)", 0, 1024, NULL },
	{ "pp", CLI_SIZE, &so.pp, "0", "pipeline stages fixed at every size (0: 1, or the layout's)", 0, 1024, NULL },
	{ "ep", CLI_SIZE, &so.ep, "0", "expert-parallel size fixed at every size (0: 1, or the layout's)", 0, 1e6, NULL },
	{ "etp", CLI_SIZE, &so.etp, "0", "tensor-parallel ranks of each expert, fixed (0: 1; TP under --layout tp)", 0, 1024, NULL },
	{ "schedule", CLI_STRING, &so.schedule, "1f1b", "pipeline schedule of sizes with PP > 1 (step's one micro-batch)", 0, -1, NULL },
	{ "zero1", CLI_FLAG, &so.zero1, NULL, "ZeRO-1 in every size's step", 0, -1, NULL },
	{ "grow", CLI_CHOICE, &so.grow, "none", "weak: also grow the model: routed experts (x EP) or layers (x PP), through step --model", 0, -1, "none|experts|layers" },
	{ "experts-per-rank", CLI_SIZE, &so.epr, "0", "--grow experts: routed experts per EP rank (0: the preset's at the first size)", 0, 1024, NULL },
	{ "layers-per-rank", CLI_SIZE, &so.lpr, "0", "--grow layers: layers per stage (0: the preset's at the first size)", 0, 1024, NULL },
	CLI_END
};

static const struct cli_opt *scale_opts_table(void)
{
	return scale_options;
}

/* parse_ranks reads --ranks into r (increasing, each >= 1); returns the count or 0. */
static int parse_ranks(const char *s, int *r)
{
	int n = 0;
	char *end;
	while (*s && n < SCALE_MAX_SIZES) {
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > 65536 || (n && v <= r[n - 1]) || (*end && *end != ','))
			return 0;
		r[n++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return *s ? 0 : n;
}

/* plan_layouts reads --layout and --grow into the layouts of the sweep (count n, the
 * grown one's by default) and *grow, refusing a layout list that is not one, a grown
 * dimension not swept, a layout's own size also fixed. Returns n, or -2 after the error. */
static int plan_layouts(enum scale_layout *lay, enum scale_grow *grow)
{
	*grow = !strcmp(so.grow, "experts") ? SCALE_GROW_EXPERTS :
		!strcmp(so.grow, "layers") ? SCALE_GROW_LAYERS : SCALE_GROW_NONE;
	enum scale_layout gl = *grow == SCALE_GROW_EXPERTS ? SCALE_EP : SCALE_PP;
	const char *l = so.layout ? so.layout : *grow ? scale_layout_names[gl] : "dp";
	int n = scale_parse_layouts(l, lay), has = 0;
	if (!n)
		return cli_error("pass names of dp, ep, tp, pp, comma separated, each once",
				 "--layout %s: not a list of layouts", l), -2;
	for (int i = 0; i < n; i++) {
		int64_t own[SCALE_LAYOUTS] = { 0, so.ep, so.tp + so.etp, so.pp };
		has |= lay[i] == gl;
		if (own[lay[i]])
			return cli_error("leave the layout's own size out: it is the ranks of each "
					 "size", "--layout %s with a fixed --%s", scale_layout_names[lay[i]],
					 lay[i] == SCALE_TP && !so.tp ? "etp" : scale_layout_names[lay[i]]), -2;
	}
	if (*grow && !has)
		return cli_error("put it in --layout, or leave --layout out", "--grow %s grows with "
				 "the %s size: --layout %s has no %s", so.grow, scale_layout_names[gl],
				 l, scale_layout_names[gl]), -2;
	if (*grow && !strcmp(so.mode, "strong"))
		return cli_error("pass --mode weak (or both: the strong points run the preset)",
				 "--grow %s with --mode strong: growing the model is weak scaling's",
				 so.grow), -2;
	return n;
}

/* grow_defaults sets the experts or layers per rank left at 0: the preset's at the first
 * size (at least one). */
static void grow_defaults(struct scale_spec *sp, const struct model_config *base, int n0)
{
	int ep0 = n0 / ((int)(so.pp ? so.pp : 1) * (int)(so.etp ? so.etp : 1));
	int pp0 = n0 / (int)(so.tp ? so.tp : 1);
	if (!sp->experts_per_rank)
		sp->experts_per_rank = ep0 > 0 && base->routed_experts / ep0 > 0 ?
				       (long)base->routed_experts / ep0 : 1;
	if (!sp->layers_per_rank)
		sp->layers_per_rank = pp0 > 0 && base->layers / pp0 > 0 ? (long)base->layers / pp0 : 1;
}

/* kept refuses an existing file of the sweep without --force (-2 after the error). */
static int kept(const char *path, bool force)
{
	if (!force && access(path, F_OK) == 0)
		return cli_error("pass --force, or another --dir", "%s exists (each size's result "
				 "is kept)", path), -2;
	return 0;
}

/* plan fills the points of the sweep (mode, layout, size) and refuses, before any
 * launch, what cannot run: a size a layout or the strong batch does not divide, a
 * layout or model the step would refuse there, a kept file without --force. Returns
 * the number of points, or -2 after the error line. */
static int plan(struct scale_spec *sp, struct scale_point *pts, bool force)
{
	int r[SCALE_MAX_SIZES], nr = parse_ranks(so.ranks, r), n = 0, nl;
	enum scale_layout lay[SCALE_LAYOUTS];
	enum scale_grow grow;
	struct model_config base, cfg;
	if (!nr)
		return cli_error("pass increasing counts such as 1,2,4", "--ranks %s: not a list of "
				 "increasing rank counts", so.ranks), -2;
	if ((nl = plan_layouts(lay, &grow)) < 0 || step_resolve_config(NULL, so.preset, &base))
		return -2;
	grow_defaults(sp, &base, r[0]);
	for (int m = 0; m < 2; m++) {
		if ((m == SCALE_WEAK && !strcmp(so.mode, "strong")) ||
		    (m == SCALE_STRONG && !strcmp(so.mode, "weak")))
			continue;
		for (int k = 0; k < nl * nr; k++, n++) {
			struct scale_point *p = &pts[n];
			memset(p, 0, sizeof(*p));
			p->mode = (enum scale_mode)m;
			p->layout = lay[k / nr];
			p->ranks = r[k % nr];
			p->grow = m == SCALE_WEAK && p->layout == (grow == SCALE_GROW_EXPERTS ?
				  SCALE_EP : SCALE_PP) ? grow : SCALE_GROW_NONE;
			if (m == SCALE_STRONG && so.batch % p->ranks)
				return cli_error("pass a --batch every rank count divides", "strong "
						 "scaling: %d ranks do not divide --batch %lld", p->ranks,
						 (long long)so.batch), -2;
			if (scale_plan_point(sp, &base, p, &cfg))
				return -2;
			snprintf(p->file, sizeof(p->file), "%s/step_%s_n%d.json", sp->dir, p->series,
				 p->ranks);
			if (p->grow)
				snprintf(p->model, sizeof(p->model), "%s/model_%s_n%d.json", sp->dir,
					 p->series, p->ranks);
			if (kept(p->file, force) || (p->grow && kept(p->model, force)))
				return -2;
		}
	}
	return n;
}

/* add_record adds the scale record of one point. */
static int add_record(cJSON *doc, const struct scale_point *p)
{
	char name[160];
	const char *mode = p->mode == SCALE_WEAK ? "weak" : "strong";
	snprintf(name, sizeof(name), "%s/%s/%s/n%d", p->series, so.preset, so.precision, p->ranks);
	cJSON *r = result_add_record(doc, "scale", name, "cpu");
	if (!r)
		return MB_ERR_NOMEM;
	/* the step's median (its full statistics stay in step_result) */
	struct stats st = { .median = p->median_s, .min = NAN, .max = NAN, .mean = NAN,
			    .stddev = NAN, .cv = NAN, .mad = NAN, .n = 1 };
	result_set_time(r, &st);
	cJSON *pm = cJSON_GetObjectItem(r, "params");
	cJSON_AddNumberToObject(pm, "gpus", p->ranks);
	cJSON_AddStringToObject(pm, "mode", mode);
	/* the series the efficiency is taken in (`moebench report` groups by it) */
	cJSON_AddStringToObject(pm, "series", p->series);
	cJSON_AddStringToObject(pm, "layout", scale_layout_names[p->layout]);
	cJSON_AddStringToObject(pm, "grow", p->grow == SCALE_GROW_EXPERTS ? "experts" :
				p->grow == SCALE_GROW_LAYERS ? "layers" : "none");
	cJSON_AddNumberToObject(pm, "tp", p->tp);
	cJSON_AddNumberToObject(pm, "pp", p->pp);
	cJSON_AddNumberToObject(pm, "ep", p->ep);
	cJSON_AddNumberToObject(pm, "etp", p->etp);
	cJSON_AddNumberToObject(pm, "dp", p->dp);
	cJSON_AddNumberToObject(pm, "routed_experts", (double)p->experts);
	cJSON_AddNumberToObject(pm, "layers", (double)p->layers);
	if (p->model[0])
		cJSON_AddStringToObject(pm, "model", p->model);
	cJSON_AddStringToObject(pm, "preset", so.preset);
	cJSON_AddStringToObject(pm, "precision", so.precision);
	cJSON_AddNumberToObject(pm, "seq", (double)so.seq);
	cJSON_AddNumberToObject(pm, "vocab", 256);
	cJSON_AddNumberToObject(pm, "batch", (double)p->batch);
	cJSON_AddNumberToObject(pm, "cores_per_rank", p->cores_per_rank);
	cJSON_AddStringToObject(pm, "step_result", p->file);
	/* the model the step measured (a grown one's layers or experts): `report` counts it */
	if (p->config)
		cJSON_AddItemToObject(r, "model_config", cJSON_Duplicate(p->config, 1));
	result_set_metric(r, "tokens_per_s", p->tokens_per_s);
	result_set_metric(r, "tokens_per_s_per_rank", p->tokens_per_s / p->ranks);
	result_set_metric(r, "model_flops_per_token", p->flops_per_token);
	result_set_metric(r, "scaling_efficiency", p->eff);
	return result_set_check(r, p->pass, p->pass ? 0 : 1, 0, "the step's own check (step_result)",
				1, p->pass ? 0 : 1);
}

/* frontier_line writes Frontier's published efficiencies (results/baselines/frontier.json)
 * into buf, or says why they are not at hand. */
static void frontier_line(char *buf, size_t len)
{
	char dir[1024], why[256];
	struct baselines set;
	size_t o = (size_t)snprintf(buf, len, "baseline Frontier (MI250X, arXiv 2312.12705):");
	if (baselines_find_dir(dir, sizeof(dir), why, sizeof(why)) ||
	    baselines_load(dir, &set, why, sizeof(why))) {
		snprintf(buf + o, len - o, " not loaded (%s)", why);
		return;
	}
	const struct model_baseline *b = baselines_find(&set, "frontier");
	for (size_t i = 0; b && i < b->n_runs && o < len; i++) {
		const struct model_baseline_run *r = &b->runs[i];
		double w = model_run_figure(r, MODEL_FIG_WEAK_SCALING_EFFICIENCY);
		double st = model_run_figure(r, MODEL_FIG_STRONG_SCALING_EFFICIENCY);
		double g = model_run_figure(r, MODEL_FIG_GPUS);
		if (isfinite(w) || isfinite(st))
			o += (size_t)snprintf(buf + o, len - o, " %s weak %.0f%% strong %.0f%% (%.0f "
					      "GPUs);", r->name, 100 * w, 100 * st, g);
	}
	baselines_free(&set);
}

/* summary adds the table (doc["summary"]["scale"]["lines"]) the text output prints. */
static int summary(cJSON *doc, const struct scale_point *pts, int n)
{
	char line[512];
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	cJSON *sum = cJSON_GetObjectItem(doc, "summary"), *lines = cJSON_CreateArray(), *o;
	if (!sum)
		sum = cJSON_AddObjectToObject(doc, "summary");
	if (!sum || !lines || !(o = cJSON_AddObjectToObject(sum, "scale")))
		return cJSON_Delete(lines), MB_ERR_NOMEM;
	cJSON_AddItemToObject(o, "lines", lines);
	double least = pts[0].cores_per_rank;
	for (int i = 1; i < n; i++)
		least = pts[i].cores_per_rank < least ? pts[i].cores_per_rank : least;
	snprintf(line, sizeof(line), "scale: step %s %s seq %lld on %ld cores, threads per rank "
		 "its cores (at least 1)%s", so.preset, so.precision, (long long)so.seq, cores,
		 least < 1 ? "; ranks beyond the core count share cores: cores/rank < 1" : "");
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	cJSON_AddItemToArray(lines, cJSON_CreateString("series           ranks  cores/rank  grid "
						       "tp.pp.ep.dp  layers  experts  batch    step_ms"
						       "    tokens/s  tok/s/rank  efficiency  check"));
	for (int i = 0; i < n; i++) {
		const struct scale_point *p = &pts[i];
		char grid[48];
		snprintf(grid, sizeof(grid), "%d.%d.%d.%d", p->tp, p->pp, p->ep, p->dp);
		snprintf(line, sizeof(line), "%-15s  %5d  %10.2f  %16s  %6ld  %7ld  %5ld  %9.1f  "
			 "%10.0f  %10.0f  %10.3f  %s", p->series, p->ranks, p->cores_per_rank, grid,
			 p->layers, p->experts, p->batch, 1e3 * p->median_s, p->tokens_per_s,
			 p->tokens_per_s / p->ranks, p->eff, p->pass ? "pass" : "FAIL");
		cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	}
	cJSON_AddItemToArray(lines, cJSON_CreateString("efficiency vs the fewest ranks of the "
						       "series: weak (model FLOP/s per rank at N) / "
						       "(at N0); strong T(N0) N0 / (T(N) N)"));
	frontier_line(line, sizeof(line));
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	return MB_OK;
}

/* write_csv writes mode,ranks,cores_per_rank,tokens_per_s,tokens_per_s_per_rank,efficiency
 * and the layout, grid, model and series of each point for plots/scaling.gp. Returns 0 or exit status 2. */
static int write_csv(const struct scale_point *pts, int n, bool force)
{
	if (!force && access(so.csv, F_OK) == 0)
		return cli_error("pass --force, or another --csv", "--csv: %s exists", so.csv);
	FILE *f = fopen(so.csv, "w");
	if (!f)
		return cli_error(NULL, "--csv: cannot write %s", so.csv);
	fprintf(f, "mode,ranks,cores_per_rank,tokens_per_s,tokens_per_s_per_rank,efficiency,"
		"layout,grow,tp,pp,ep,dp,layers,experts,series\n");
	for (int i = 0; i < n; i++) {
		const struct scale_point *p = &pts[i];
		fprintf(f, "%s,%d,%.3f,%.1f,%.1f,%.4f,%s,%s,%d,%d,%d,%d,%ld,%ld,%s\n",
			p->mode == SCALE_WEAK ? "weak" : "strong", p->ranks, p->cores_per_rank,
			p->tokens_per_s, p->tokens_per_s / p->ranks, p->eff,
			scale_layout_names[p->layout], p->grow == SCALE_GROW_EXPERTS ? "experts" :
			p->grow == SCALE_GROW_LAYERS ? "layers" : "none", p->tp, p->pp, p->ep, p->dp,
			p->layers, p->experts, p->series);
	}
	return fclose(f) ? cli_error(NULL, "--csv: cannot write %s", so.csv) : 0;
}

/* scale_spec_of fills the sweep's settings; returns 0 or exit status 2. */
static int scale_spec_of(struct run_ctx *ctx, struct scale_spec *sp, char *exe, size_t len)
{
	ssize_t k = readlink("/proc/self/exe", exe, len - 1);
	if (k <= 0)
		return cli_error(NULL, "cannot find moebench's own path (/proc/self/exe)");
	exe[k] = '\0';
	*sp = (struct scale_spec){ .preset = so.preset, .precision = so.precision,
				   .launcher = so.launcher ? so.launcher : scale_default_launcher(),
				   .dir = so.dir, .exe = exe, .batch = so.batch, .seq = so.seq,
				   .iters = so.iters, .warmup = so.warmup, .schedule = so.schedule,
				   .tp = (int)so.tp, .pp = (int)so.pp, .ep = (int)so.ep,
				   .etp = (int)so.etp, .experts_per_rank = (long)so.epr,
				   .layers_per_rank = (long)so.lpr, .zero1 = so.zero1,
				   .force = ctx->opts->force, .quiet = ctx->opts->quiet };
	if (!sp->launcher)
		return cli_error("pass --launcher \"mpirun -np {n}\" or the like",
				 "no launcher: mpirun is not on the PATH and this is not Slurm");
	if (!strstr(sp->launcher, "{n}"))
		return cli_error("put {n} where the rank count goes", "--launcher \"%s\": no {n}",
				 sp->launcher);
	return 0;
}

/* write_models writes the grown models' configs (kept beside the step results). */
static int write_models(const struct scale_spec *sp, const struct scale_point *pts, int n)
{
	for (int i = 0; i < n; i++)
		if (pts[i].grow && scale_write_model(sp, &pts[i]))
			return cli_error("pass a writable --dir", "cannot write %s", pts[i].model);
	return 0;
}

/* scale_run is the descriptor's run: plan, launch each size, records, table, CSV. */
static int scale_run(struct run_ctx *ctx)
{
	struct scale_point *pts = calloc(2 * SCALE_LAYOUTS * SCALE_MAX_SIZES, sizeof(*pts));
	struct scale_spec sp;
	char exe[1024], why[1200];
	int n, err = MB_ERR_ARG;
	if (!pts)
		return MB_ERR_NOMEM;
	if (scale_spec_of(ctx, &sp, exe, sizeof(exe)) || (n = plan(&sp, pts, sp.force)) < 0)
		goto out;
	if (mkdir(so.dir, 0777) && access(so.dir, W_OK)) {
		cli_error("pass a writable --dir", "--dir %s: cannot create it", so.dir);
		goto out;
	}
	if (write_models(&sp, pts, n))
		goto out;
	for (int i = 0; i < n; i++) {
		if (scale_run_point(&sp, &pts[i], why, sizeof(why))) {
			cli_error("run the line above by hand to see why", "scale: %s", why);
			goto out;
		}
		ctx->failures += !pts[i].pass;
	}
	scale_efficiency(pts, n);
	err = MB_ERR_NOMEM;
	for (int i = 0; i < n; i++)
		if (add_record(ctx->doc, &pts[i]))
			goto out;
	err = MB_ERR_ARG;
	if (so.csv && write_csv(pts, n, sp.force))
		goto out;
	err = summary(ctx->doc, pts, n);
out:
	for (int i = 0; i < 2 * SCALE_LAYOUTS * SCALE_MAX_SIZES; i++)
		cJSON_Delete(pts[i].config);
	free(pts);
	return err;
}

static const struct bench_desc bench_scale_run = {
	.name = "scale",
	.summary = "weak and strong scaling of the training step over rank counts and layouts "
		   "(launcher per size)",
	.usage = "moebench scale [--ranks 1,2,4] [--mode weak|strong|both] [--preset v3-tiny] "
		 "[--layout dp|ep|tp|pp,...] [--grow experts|layers] [--tp/--pp/--ep/--etp N] "
		 "[--launcher \"mpirun --oversubscribe -np {n}\"] [options]",
	.warmup = "0",
	.iters = "1",
	.min_time = "0",
	.options = scale_opts_table,
	.run = scale_run,
};

int cmd_scale(int argc, char **argv)
{
	return session_bench(&bench_scale_run, argc, argv);
}
