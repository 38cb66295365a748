/*
 * claims_plot.c - the figure of `moebench claims --plot DIR` (see claims_out.h):
 * DIR/claims.csv, one row per run that states GPU-hours and tokens or a throughput,
 * then gnuplot renders plots/claims.gp into DIR/claims.png and DIR/claims.pdf.
 *
 * CSV columns (empty = not derivable):
 *   label, baseline, run, model, hardware, precision,
 *   gpu_hours_claimed          as the source reports them
 *   gpu_hours_at_stated_rate   tokens x FLOPs/token / the stated TFLOP/s per GPU
 *   gpu_hours_at_bf16_peak     tokens x FLOPs/token / the dense BF16 peak (MFU 100%)
 *   mfu_bf16_from_gpu_hours    implied by GPU-hours, tokens and FLOPs/token
 *   mfu_fp8_from_gpu_hours     the same against the FP8 peak (FP8 runs only)
 *   mfu_bf16_stated            the stated rate against the BF16 peak, or the stated MFU
 * Rows with GPU-hours come first: the script plots those in its first panel.
 */
#define _GNU_SOURCE
#include "claims_out.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "context.h"
#include "result.h"
#include "session.h"
#include "status.h"

#ifndef MOEBENCH_SOURCE_DIR
#define MOEBENCH_SOURCE_DIR "."
#endif

extern char **environ;

int claims_plot_ready(struct claims_out *co)
{
	const char *path = getenv("PATH");
	char *dirs = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;

	co->gnuplot[0] = '\0';
	for (char *d = strtok_r(dirs, ":", &save); d && !co->gnuplot[0];
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(co->gnuplot, sizeof(co->gnuplot), "%s/gnuplot", d);
		if (access(co->gnuplot, X_OK) != 0)
			co->gnuplot[0] = '\0';
	}
	free(dirs);
	if (!co->gnuplot[0])
		return cli_error("install gnuplot (Debian: apt-get install gnuplot-nox; `make "
				 "deps` does it)", "--plot: gnuplot is not on PATH");
	snprintf(co->script, sizeof(co->script), "plots/claims.gp");
	if (access(co->script, R_OK) != 0)
		snprintf(co->script, sizeof(co->script), "%s/plots/claims.gp", MOEBENCH_SOURCE_DIR);
	if (access(co->script, R_OK) != 0)
		return cli_error("run from the source tree", "--plot: plots/claims.gp not found "
				 "(tried ./plots and %s/plots)", MOEBENCH_SOURCE_DIR);
	return 0;
}

/* find_row returns the report's row of that figure label, or NULL. */
static const struct model_claim_row *find_row(const struct model_claim_report *rep,
					      const char *figure)
{
	for (size_t i = 0; i < rep->n_rows; i++)
		if (strcmp(rep->rows[i].figure, figure) == 0)
			return &rep->rows[i];
	return NULL;
}

/* recomputed reads a row's recomputed value (NaN when absent). */
static double recomputed(const struct model_claim_report *rep, const char *figure)
{
	const struct model_claim_row *r = find_row(rep, figure);

	return r ? r->recomputed : NAN;
}

/* The figures of one CSV row. */
struct plot_row {
	double hours, hours_rate, hours_peak, mfu_bf16, mfu_fp8, mfu_stated;
};

/* plot_values derives a run's plotted figures; false when it has none. */
static bool plot_values(const struct baselines_eval *e, struct plot_row *p)
{
	const struct model_claim_report *rep = &e->report;
	const struct model_claim_row *mfu = find_row(rep, "mfu_bf16");
	double tokens = model_run_figure(e->run, MODEL_FIG_TOKENS);
	bool fp8 = e->run->precision && strcmp(e->run->precision, "fp8") == 0;

	p->mfu_bf16 = recomputed(rep, "mfu_bf16_from_gpu_hours");
	p->hours = isnan(p->mfu_bf16) ? NAN : model_run_figure(e->run, MODEL_FIG_GPU_HOURS);
	p->hours_rate = recomputed(rep, "gpu_hours_at_stated_rate");
	p->hours_peak = tokens * rep->flops_per_token / (e->hw->peak_bf16_tflops * 1e12) / 3600;
	if (isnan(p->hours))
		p->hours_peak = NAN;
	p->mfu_fp8 = fp8 ? recomputed(rep, "mfu_fp8_from_gpu_hours") : NAN;
	p->mfu_stated = !mfu ? NAN : isfinite(mfu->recomputed) ? mfu->recomputed : mfu->claimed;
	return isfinite(p->hours) || isfinite(p->mfu_stated);
}

/* csv_num writes ",value", or "," alone for NaN. */
static void csv_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, ",%.6g", v);
	else
		fputc(',', f);
}

/* csv_provenance writes the '#' lines: what, commit, date, argv, inputs. */
static void csv_provenance(const struct claims_out *co, FILE *f)
{
	char date[32];
	time_t now = time(NULL);

	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "# moebench claims: claimed vs recomputed GPU-hours and implied MFU "
		"(plots/claims.gp)\n# git_commit: %s\n# date: %s\n# argv: moebench", moebench_git_commit,
		date);
	for (int i = 0; i < co->argc; i++)
		fprintf(f, " %s", co->argv[i]);
	fprintf(f, "\n# baselines: %s\n# usd_per_gpu_hour: %g\n# tolerance: %g\n"
		"# peaks: dense per GPU from the hardware table (moebench info --json)\n",
		co->set->dir, co->usd, co->tolerance);
	fprintf(f, "label,baseline,run,model,hardware,precision,gpu_hours_claimed,"
		"gpu_hours_at_stated_rate,gpu_hours_at_bf16_peak,mfu_bf16_from_gpu_hours,"
		"mfu_fp8_from_gpu_hours,mfu_bf16_stated\n");
}

/* csv_rows writes the runs with GPU-hours (pass 0), then those with a rate only. */
static void csv_rows(const struct claims_out *co, FILE *f)
{
	struct plot_row p;

	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < co->n_evals; i++) {
			const struct baselines_eval *e = &co->evals[i];
			if (!plot_values(e, &p) || isfinite(p.hours) != (pass == 0))
				continue;
			fprintf(f, "%s/%s,%s,%s,%s,%s,%s", e->baseline->name, e->run->name,
				e->baseline->name, e->run->name, e->run->model, e->run->hardware,
				e->run->precision ? e->run->precision : "");
			csv_num(f, p.hours);
			csv_num(f, p.hours_rate);
			csv_num(f, p.hours_peak);
			csv_num(f, p.mfu_bf16);
			csv_num(f, p.mfu_fp8);
			csv_num(f, p.mfu_stated);
			fputc('\n', f);
		}
}

/* write_csv writes the CSV atomically to path. Returns an exit status. */
static int write_csv(const struct claims_out *co, const char *path)
{
	char *text = NULL, why[512];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int st = 0, err;

	if (!f)
		return cli_error(NULL, "out of memory");
	csv_provenance(co, f);
	csv_rows(co, f);
	if (fclose(f) != 0 || !text)
		st = cli_error(NULL, "out of memory");
	else if ((err = result_write_atomic(path, text, co->force, why, sizeof(why))))
		st = session_output_error(err, "--plot", why);
	free(text);
	return st;
}

/* run_gnuplot runs gnuplot -c script csv outbase and waits for it. */
static int run_gnuplot(const struct claims_out *co, const char *csv, const char *base)
{
	char *args[] = { (char *)co->gnuplot, "-c", (char *)co->script, (char *)csv,
			 (char *)base, NULL };
	pid_t pid;
	int status, err = posix_spawn(&pid, co->gnuplot, NULL, NULL, args, environ);

	if (err)
		return cli_error("install gnuplot-nox", "--plot: cannot run %s: %s", co->gnuplot,
				 strerror(err));
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "moebench: error: --plot: gnuplot %s failed\n", co->script);
		return 1;
	}
	return 0;
}

/* nonempty tells whether path is a file with content. */
static bool nonempty(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* plot_paths writes DIR/claims.csv, .png, .pdf into p[0..2]. */
static void plot_paths(const char *dir, char p[3][2100])
{
	snprintf(p[0], 2100, "%s/claims.csv", dir);
	snprintf(p[1], 2100, "%s/claims.png", dir);
	snprintf(p[2], 2100, "%s/claims.pdf", dir);
}

int claims_plot_check(const struct claims_out *co, const char *dir)
{
	char p[3][2100], why[512];

	plot_paths(dir, p);
	for (int i = 0; i < 3; i++) {
		int err = result_output_check(p[i], co->force, why, sizeof(why));
		if (err)
			return session_output_error(err, "--plot", why);
	}
	return 0;
}

/* render runs gnuplot into a fresh directory inside dir, then installs the figures
 * under the rule of every output (result_write_atomic): gnuplot itself would
 * replace whatever claims.png is. Sets *pdf when the PDF came out too. */
static int render(const struct claims_out *co, const char *dir, char p[3][2100], bool *pdf)
{
	char tmp[2100], base[2200], from[2300], why[512];
	int st, err = 0;

	snprintf(tmp, sizeof(tmp), "%s/.claims-render-XXXXXX", dir);
	if (!mkdtemp(tmp))
		return cli_error("choose a --plot directory you can write", "--plot: cannot create "
				 "a directory in %s: %s", dir, strerror(errno));
	snprintf(base, sizeof(base), "%s/claims", tmp);
	st = run_gnuplot(co, p[0], base);
	for (int i = 1; i < 3 && !st; i++) {
		snprintf(from, sizeof(from), "%s.%s", base, i == 1 ? "png" : "pdf");
		if (i == 2 && !(*pdf = nonempty(from)))
			break;
		if (i == 1 && !nonempty(from)) {
			fprintf(stderr, "moebench: error: --plot: gnuplot wrote no %s\n", p[1]);
			st = 1;
		} else if ((err = result_install_file(from, p[i], co->force, why, sizeof(why)))) {
			st = session_output_error(err, "--plot", why);
		}
	}
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s.%s", base, i == 0 ? "png" : "pdf");
		unlink(from);
	}
	rmdir(tmp);
	return st;
}

int claims_plot(const struct claims_out *co, const char *dir)
{
	char p[3][2100];
	bool pdf = false;
	int st;

	plot_paths(dir, p);
	if ((st = write_csv(co, p[0])) || (st = render(co, dir, p, &pdf)))
		return st;
	if (pdf)
		cli_note(false, "figure: %s, %s (data %s)", p[1], p[2], p[0]);
	else
		cli_note(false, "figure: %s (data %s); no PDF: this gnuplot has no pdfcairo "
			 "terminal", p[1], p[0]);
	return 0;
}
