/*
 * report_plot.c - the figures of `moebench report --plot DIR` (report.h):
 *   DIR/report_mfu.csv -> plots/report_mfu.gp -> DIR/report_mfu.png
 *     label, kind (measured|published|projected), gpus, mfu_pct: MFU against GPUs,
 *     the published runs marked and named.
 *   DIR/report_gpu_hours.csv -> plots/report_gpu_hours.gp -> DIR/report_gpu_hours.png
 *     label, claimed, at_our_mfu, projected (GPU-hours; empty = none): for every
 *     published run stating GPU-hours, the claim beside the published model on its
 *     hardware at the best measured BF16 MFU and beside a projection of the same model
 *     and hardware when a `project --json` document was given.
 *   DIR/report_scaling.csv -> plots/report_scaling.gp -> DIR/report_scaling.png
 *     label, kind (measured|published), mode (weak|strong), gpus, eff_pct: weak and
 *     strong scaling efficiency of `scale` results against ranks, the ideal line, and
 *     the published efficiencies (Frontier's) marked.
 * Every CSV starts with '#' provenance lines. gnuplot renders into a fresh directory,
 * then each file is installed under the rule of every output (never replacing without
 * --force).
 */
#define _GNU_SOURCE
#include "report.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "result.h"
#include "session.h"
#include "status.h"

#ifndef MOEBENCH_SOURCE_DIR
#define MOEBENCH_SOURCE_DIR "."
#endif

extern char **environ;

#define N_PLOTS 3
static const char *const plot_names[N_PLOTS] = { "report_mfu", "report_gpu_hours",
						 "report_scaling" };

/* find_tools sets the gnuplot program (on PATH) and the scripts' directory. */
static int find_tools(char *gp, size_t gp_len, char *dir, size_t dir_len)
{
	const char *path = getenv("PATH");
	char *dirs = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;
	gp[0] = '\0';
	for (char *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d && !gp[0];
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(gp, gp_len, "%s/gnuplot", d);
		if (access(gp, X_OK) != 0)
			gp[0] = '\0';
	}
	free(dirs);
	if (!gp[0])
		return cli_error("install gnuplot (Debian: apt-get install gnuplot-nox; `make deps`)",
				 "--plot: gnuplot is not on PATH");
	snprintf(dir, dir_len, "plots");
	if (access("plots/report_mfu.gp", R_OK) != 0)
		snprintf(dir, dir_len, "%s/plots", MOEBENCH_SOURCE_DIR);
	return 0;
}

int report_plot_check(const char *dir, bool force)
{
	char p[2100], why[512], gp[1024], sdir[1024];
	int st = find_tools(gp, sizeof(gp), sdir, sizeof(sdir));
	if (st)
		return st;
	for (int i = 0; i < N_PLOTS; i++)
		for (int k = 0; k < 2; k++) {
			snprintf(p, sizeof(p), "%s/%s.%s", dir, plot_names[i], k ? "png" : "csv");
			int err = result_output_check(p, force, why, sizeof(why));
			if (err)
				return session_output_error(err, "--plot", why);
		}
	return 0;
}

/* provenance writes the '#' lines of a CSV. */
static void provenance(const struct report *rep, FILE *f, const char *what)
{
	fprintf(f, "# moebench report: %s\n# argv", what);
	for (int i = 0; i < rep->argc; i++)
		fprintf(f, " %s", rep->argv[i]);
	fputc('\n', f);
}

/* csv_num writes a number or nothing (NaN), then sep. */
static void csv_num(FILE *f, double v, char sep)
{
	if (isfinite(v))
		fprintf(f, "%.8g", v);
	fputc(sep, f);
}

/* mfu_csv: one row per measured, published and projected run with an MFU. */
static void mfu_csv(const struct report *rep, FILE *f)
{
	provenance(rep, f, "MFU (% of the dense BF16 peak; CPU runs: of the measured peak) "
		   "against GPUs");
	fprintf(f, "label,kind,gpus,mfu_pct\n");
	for (size_t i = 0; i < rep->in.n_meas; i++) {
		double m = isfinite(rep->figs[i].mfu_bf16_ds) ? rep->figs[i].mfu_bf16_ds :
			   rep->figs[i].mfu_bf16_meas;
		fprintf(f, "\"%s\",measured,%lld,", rep->in.meas[i].label,
			(long long)rep->in.meas[i].gpus);
		csv_num(f, 100 * m, '\n');
	}
	for (size_t j = 0; j < rep->n_pub; j++) {
		const struct report_pub *p = &rep->pubs[j];
		if (!isfinite(p->gpus) || !isfinite(p->mfu_published))
			continue;
		fprintf(f, "\"%s/%s\",published,%.0f,", p->eval->baseline->name,
			p->eval->run->name, p->gpus);
		csv_num(f, 100 * p->mfu_published, '\n');
	}
	for (size_t k = 0; k < rep->in.n_proj; k++) {
		fprintf(f, "\"%s\",projected,%.0f,", rep->in.proj[k].label, rep->in.proj[k].gpus);
		csv_num(f, 100 * rep->in.proj[k].mfu_bf16, '\n');
	}
}

/* projected_for returns the projected GPU-hours of pub's model and hardware, or NaN. */
static double projected_for(const struct report *rep, const struct report_pub *p)
{
	for (size_t k = 0; k < rep->in.n_proj; k++)
		if (!strcmp(rep->in.proj[k].model, p->eval->run->model) &&
		    !strcmp(rep->in.proj[k].hardware, p->eval->run->hardware))
			return rep->in.proj[k].gpu_hours;
	return NAN;
}

/* hours_csv: one row per published run that states GPU-hours. */
static void hours_csv(const struct report *rep, FILE *f)
{
	size_t best = 0;
	for (size_t i = 1; i < rep->in.n_meas; i++)
		if (rep->cmps[i * rep->n_pub].mfu_ours > rep->cmps[best * rep->n_pub].mfu_ours)
			best = i;
	provenance(rep, f, "GPU-hours claimed, at moebench's best measured MFU, projected");
	fprintf(f, "# at_our_mfu: %s\nlabel,claimed,at_our_mfu,projected\n",
		rep->in.n_meas ? rep->in.meas[best].label : "no measured run");
	for (size_t j = 0; j < rep->n_pub; j++) {
		const struct report_pub *p = &rep->pubs[j];
		if (!isfinite(p->gpu_hours))
			continue;
		fprintf(f, "\"%s/%s\",", p->eval->baseline->name, p->eval->run->name);
		csv_num(f, p->gpu_hours, ',');
		csv_num(f, rep->in.n_meas ? rep->cmps[best * rep->n_pub + j].gpu_hours_at_mfu : NAN,
			',');
		csv_num(f, projected_for(rep, p), '\n');
	}
}

/* scaling_csv: one row per scale result with an efficiency, and one per published
 * weak or strong scaling efficiency. */
static void scaling_csv(const struct report *rep, FILE *f)
{
	static const enum model_figure figs[2] = { MODEL_FIG_WEAK_SCALING_EFFICIENCY,
						   MODEL_FIG_STRONG_SCALING_EFFICIENCY };
	provenance(rep, f, "scaling efficiency (%) against GPUs (CPU runs: ranks); weak: "
		   "per-GPU throughput at N over N0; strong: T(N0)*N0 / (T(N)*N)");
	fprintf(f, "label,kind,mode,gpus,eff_pct\n");
	/* NOTE: weak rows first, then strong: the figure draws each mode's rows as one
	 * line, and a row of the other mode between them would break it. */
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < rep->in.n_meas; i++) {
			if (!isfinite(rep->figs[i].scaling_eff) ||
			    strcmp(rep->in.meas[i].mode, k ? "strong" : "weak"))
				continue;
			fprintf(f, "\"%s\",measured,%s,%lld,", rep->in.meas[i].label,
				rep->in.meas[i].mode, (long long)rep->in.meas[i].gpus);
			csv_num(f, 100 * rep->figs[i].scaling_eff, '\n');
		}
	for (size_t j = 0; j < rep->n_pub; j++) {
		const struct report_pub *p = &rep->pubs[j];
		for (int k = 0; k < 2 && isfinite(p->gpus); k++) {
			double e = model_run_figure(p->eval->run, figs[k]);
			if (!isfinite(e))
				continue;
			fprintf(f, "\"%s/%s\",published,%s,%.0f,", p->eval->baseline->name,
				p->eval->run->name, k ? "strong" : "weak", p->gpus);
			csv_num(f, 100 * e, '\n');
		}
	}
}

/* write_csv renders one CSV and writes it atomically. Returns an exit status. */
static int write_csv(const struct report *rep, int which, const char *path, bool force)
{
	char *text = NULL, why[512];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int st = 0, err;
	if (!f)
		return cli_error(NULL, "out of memory");
	if (which == 0)
		mfu_csv(rep, f);
	else if (which == 1)
		hours_csv(rep, f);
	else
		scaling_csv(rep, f);
	if (fclose(f) != 0 || !text)
		st = cli_error(NULL, "out of memory");
	else if ((err = result_write_atomic(path, text, force, why, sizeof(why))))
		st = session_output_error(err, "--plot", why);
	free(text);
	return st;
}

/* render runs gnuplot -c SCRIPT CSV TMP/NAME FLAGS..., then installs TMP/NAME.png at
 * png. */
static int render(const char *gp, const char *script, const char *csv, const char *dir,
		  const char *name, const char *png, bool force, const bool has[2])
{
	char tmp[2100], base[2300], from[2400], why[512];
	char *args[] = { (char *)gp, "-c", (char *)script, (char *)csv, base,
			 has[0] ? "1" : "0", has[1] ? "1" : "0", NULL };
	pid_t pid;
	int status, st = 0, err;

	snprintf(tmp, sizeof(tmp), "%s/.report-render-XXXXXX", dir);
	if (!mkdtemp(tmp))
		return cli_error("choose a --plot directory you can write", "--plot: cannot create "
				 "a directory in %s: %s", dir, strerror(errno));
	snprintf(base, sizeof(base), "%s/%s", tmp, name);
	snprintf(from, sizeof(from), "%s.png", base);
	if ((err = posix_spawn(&pid, gp, NULL, NULL, args, environ)))
		st = cli_error("install gnuplot-nox", "--plot: cannot run %s: %s", gp, strerror(err));
	else if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) ||
		 access(from, R_OK) != 0)
		st = (fprintf(stderr, "moebench: error: --plot: gnuplot %s failed\n", script), 1);
	else if ((err = result_install_file(from, png, force, why, sizeof(why))))
		st = session_output_error(err, "--plot", why);
	unlink(from);
	rmdir(tmp);
	return st;
}

int report_plot(const struct report *rep, const char *dir, bool force)
{
	char gp[1024], sdir[1024], csv[2100], png[2100], script[2100];
	int st = find_tools(gp, sizeof(gp), sdir, sizeof(sdir));
	bool has[2] = { false, false };   /* GPU-hours at our MFU, projected */

	for (size_t i = 0; i < rep->in.n_meas * rep->n_pub; i++)
		has[0] = has[0] || (isfinite(rep->cmps[i].gpu_hours_at_mfu) &&
				    isfinite(rep->pubs[i % rep->n_pub].gpu_hours));
	for (size_t j = 0; j < rep->n_pub; j++)
		has[1] = has[1] || (isfinite(projected_for(rep, &rep->pubs[j])) &&
				    isfinite(rep->pubs[j].gpu_hours));

	for (int i = 0; !st && i < N_PLOTS; i++) {
		snprintf(csv, sizeof(csv), "%s/%s.csv", dir, plot_names[i]);
		snprintf(png, sizeof(png), "%s/%s.png", dir, plot_names[i]);
		snprintf(script, sizeof(script), "%s/%s.gp", sdir, plot_names[i]);
		if (!(st = write_csv(rep, i, csv, force)))
			st = render(gp, script, csv, dir, plot_names[i], png, force, has);
		if (!st)
			cli_note(false, "figure: %s (data %s)", png, csv);
	}
	return st;
}
