/*
 * cmd_scale.c - `moebench scale`: weak and strong scaling of the training step (`moebench
 * step` with --dp N) over a list of rank counts, each size launched through a launcher
 * template and its result file kept; efficiencies (DESIGN: weak E = tokens/s per rank at
 * N over N0; strong E = T(N0) N0 / (T(N) N), both against the sweep's fewest ranks), a
 * table with the cores each rank had, Frontier's published efficiencies beside, a result
 * document (benchmark "scale": params gpus, mode, preset, precision, seq, vocab;
 * metrics tokens_per_s, as `moebench report` reads them) and --csv for plots/scaling.gp.
 *
 *   moebench scale --ranks 1,2,4                          # weak and strong, v3-tiny
 *   moebench scale --mode strong --batch 8 --launcher "srun -n {n}"
 *
 * Weak: --batch sequences per rank (global batch N * batch). Strong: --batch sequences in
 * all (each N must divide it). Exit 0; 1 when a step's own check failed; 2 on bad input
 * (a size that does not divide, a kept result file without --force, no launcher).
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

static struct {
	const char *preset, *precision, *ranks, *mode, *launcher, *dir, *csv;
	int64_t batch, seq, iters, warmup;
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

/* plan fills the points of the sweep and refuses, before any launch, what cannot run:
 * a strong batch a size does not divide, a kept result file without --force. Returns
 * the number of points, or -2 after the error line. */
static int plan(const struct scale_spec *sp, struct scale_point *pts, bool force)
{
	int r[SCALE_MAX_SIZES], nr = parse_ranks(so.ranks, r), n = 0;
	if (!nr)
		return cli_error("pass increasing counts such as 1,2,4", "--ranks %s: not a list of "
				 "increasing rank counts", so.ranks), -2;
	for (int m = 0; m < 2; m++) {
		if ((m == SCALE_WEAK && !strcmp(so.mode, "strong")) ||
		    (m == SCALE_STRONG && !strcmp(so.mode, "weak")))
			continue;
		for (int i = 0; i < nr; i++, n++) {
			struct scale_point *p = &pts[n];
			memset(p, 0, sizeof(*p));
			p->mode = (enum scale_mode)m;
			p->ranks = r[i];
			p->batch = m == SCALE_WEAK ? so.batch * r[i] : so.batch;
			if (m == SCALE_STRONG && so.batch % r[i])
				return cli_error("pass a --batch every rank count divides", "strong "
						 "scaling: %d ranks do not divide --batch %lld", r[i],
						 (long long)so.batch), -2;
			snprintf(p->file, sizeof(p->file), "%s/step_%s_n%d.json", sp->dir,
				 m == SCALE_WEAK ? "weak" : "strong", r[i]);
			if (!force && access(p->file, F_OK) == 0)
				return cli_error("pass --force, or another --dir", "%s exists (each "
						 "size's result is kept)", p->file), -2;
		}
	}
	return n;
}

/* add_record adds the scale record of one point. */
static int add_record(cJSON *doc, const struct scale_point *p)
{
	char name[160];
	const char *mode = p->mode == SCALE_WEAK ? "weak" : "strong";
	snprintf(name, sizeof(name), "%s/%s/%s/n%d", mode, so.preset, so.precision, p->ranks);
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
	cJSON_AddStringToObject(pm, "preset", so.preset);
	cJSON_AddStringToObject(pm, "precision", so.precision);
	cJSON_AddNumberToObject(pm, "seq", (double)so.seq);
	cJSON_AddNumberToObject(pm, "vocab", 256);
	cJSON_AddNumberToObject(pm, "batch", (double)p->batch);
	cJSON_AddNumberToObject(pm, "cores_per_rank", p->cores_per_rank);
	cJSON_AddStringToObject(pm, "step_result", p->file);
	result_set_metric(r, "tokens_per_s", p->tokens_per_s);
	result_set_metric(r, "tokens_per_s_per_rank", p->tokens_per_s / p->ranks);
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
	snprintf(line, sizeof(line), "scale: step %s %s seq %lld on %ld cores%s", so.preset,
		 so.precision, (long long)so.seq, cores, pts[n - 1].cores_per_rank < 1 ?
		 " (ranks beyond the core count share cores: cores/rank < 1)" : "");
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	cJSON_AddItemToArray(lines, cJSON_CreateString("mode    ranks  cores/rank  batch    step_ms"
						       "    tokens/s  tok/s/rank  efficiency  check"));
	for (int i = 0; i < n; i++) {
		const struct scale_point *p = &pts[i];
		snprintf(line, sizeof(line), "%-6s  %5d  %10.2f  %5ld  %9.1f  %10.0f  %10.0f  %10.3f  %s",
			 p->mode == SCALE_WEAK ? "weak" : "strong", p->ranks, p->cores_per_rank,
			 p->batch, 1e3 * p->median_s, p->tokens_per_s, p->tokens_per_s / p->ranks,
			 p->eff, p->pass ? "pass" : "FAIL");
		cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	}
	frontier_line(line, sizeof(line));
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	return MB_OK;
}

/* write_csv writes mode,ranks,cores_per_rank,tokens_per_s,tokens_per_s_per_rank,efficiency
 * for plots/scaling.gp. Returns 0 or exit status 2. */
static int write_csv(const struct scale_point *pts, int n, bool force)
{
	if (!force && access(so.csv, F_OK) == 0)
		return cli_error("pass --force, or another --csv", "--csv: %s exists", so.csv);
	FILE *f = fopen(so.csv, "w");
	if (!f)
		return cli_error(NULL, "--csv: cannot write %s", so.csv);
	fprintf(f, "mode,ranks,cores_per_rank,tokens_per_s,tokens_per_s_per_rank,efficiency\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "%s,%d,%.3f,%.1f,%.1f,%.4f\n", pts[i].mode == SCALE_WEAK ? "weak" : "strong",
			pts[i].ranks, pts[i].cores_per_rank, pts[i].tokens_per_s,
			pts[i].tokens_per_s / pts[i].ranks, pts[i].eff);
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
				   .iters = so.iters, .warmup = so.warmup,
				   .force = ctx->opts->force, .quiet = ctx->opts->quiet };
	if (!sp->launcher)
		return cli_error("pass --launcher \"mpirun -np {n}\" or the like",
				 "no launcher: mpirun is not on the PATH and this is not Slurm");
	if (!strstr(sp->launcher, "{n}"))
		return cli_error("put {n} where the rank count goes", "--launcher \"%s\": no {n}",
				 sp->launcher);
	return 0;
}

/* scale_run is the descriptor's run: plan, launch each size, records, table, CSV. */
static int scale_run(struct run_ctx *ctx)
{
	struct scale_point pts[2 * SCALE_MAX_SIZES];
	struct scale_spec sp;
	char exe[1024], why[1200];
	int n;
	if (scale_spec_of(ctx, &sp, exe, sizeof(exe)) || (n = plan(&sp, pts, sp.force)) < 0)
		return MB_ERR_ARG;
	if (mkdir(so.dir, 0777) && access(so.dir, W_OK))
		return cli_error("pass a writable --dir", "--dir %s: cannot create it", so.dir),
		       MB_ERR_ARG;
	for (int i = 0; i < n; i++) {
		int err = scale_run_point(&sp, &pts[i], why, sizeof(why));
		if (err)
			return cli_error("run the line above by hand to see why", "scale: %s", why),
			       MB_ERR_ARG;
		ctx->failures += !pts[i].pass;
	}
	scale_efficiency(pts, n);
	for (int i = 0; i < n; i++)
		if (add_record(ctx->doc, &pts[i]))
			return MB_ERR_NOMEM;
	if (so.csv && write_csv(pts, n, sp.force))
		return MB_ERR_ARG;
	return summary(ctx->doc, pts, n);
}

static const struct bench_desc bench_scale_run = {
	.name = "scale",
	.summary = "weak and strong scaling of the training step over rank counts (launcher per size)",
	.usage = "moebench scale [--ranks 1,2,4] [--mode weak|strong|both] [--preset v3-tiny] "
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
