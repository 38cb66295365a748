/*
 * cmd_report.c - `moebench report`: measured runs turned into the figures the cost
 * claims are stated in (tokens/s per GPU, model FLOPs per token, MFU against datasheet
 * and measured peaks, GPU-hours and cost for a token budget), beside the published runs
 * of results/baselines/ under every FLOP convention, with a verdict whose rule is
 * printed; projections of `moebench project --json` beside the claimed GPU-hours.
 *
 *   moebench report step.json train.json                 # against every baseline
 *   moebench report step.json peak.json --baseline deepseek-v3,llama3-405b
 *   moebench report step.json --tokens 1e12 --usd-per-gpu-hour 2.5 --format md
 *   moebench report step.json proj.json --plot figures   # figures/report_*.{csv,png}
 *
 * Documents: results of step, train (and scale, once it exists) records; a peak result
 * for the measured denominators; `project --json` objects. Exit 0; 2 on bad input
 * (not such a document, a result of another benchmark, an unknown baseline), 1 when a
 * write or gnuplot fails.
 */
#include "commands.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"
#include "status.h"

#define REPORT_FILES_MAX 64

/* pick_names splits --baseline into names (NULL-terminated; all: NULL list) and checks
 * each is known. Returns 0 or the exit status. */
static int pick_names(const struct baselines *set, char *list, const char **names,
		      size_t cap, const char *const **out)
{
	char known[1024], hint[1100], *save = NULL;
	size_t n = 0;

	*out = NULL;
	if (strcmp(list, "all") == 0)
		return 0;
	for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (!baselines_find(set, s)) {
			baselines_names(set, known, sizeof(known));
			snprintf(hint, sizeof(hint), "known baselines are all, %s", known);
			return cli_error(hint, "--baseline: unknown baseline '%s'", s);
		}
		if (n + 1 < cap)
			names[n++] = s;
	}
	if (n == 0)
		return cli_error("--baseline deepseek-v3,llama3-405b", "--baseline: no name given");
	names[n] = NULL;
	*out = names;
	return 0;
}

/* read_inputs reads every document given. Returns 0 or the exit status. */
static int read_inputs(char **files, int n, struct report_inputs *in)
{
	char why[1024];

	for (int i = 0; i < n; i++) {
		int err = report_read_file(files[i], in, why, sizeof(why));
		if (err == MB_ERR_IO)
			return cli_error("check the path", "%s", why);
		if (err)
			return cli_error("pass results of moebench step, train, scale or peak, or "
					 "the output of moebench project --json", "%s", why);
	}
	if (in->n_meas + in->n_proj == 0)
		return cli_error("add a result of moebench step or train (a peak result only "
				 "gives the denominators)", "no measured run among the documents");
	return 0;
}

/* parse_format maps --format. */
static enum report_format parse_format(const char *f)
{
	return !strcmp(f, "json") ? REPORT_JSON : !strcmp(f, "csv") ? REPORT_CSV :
	       !strcmp(f, "md") ? REPORT_MD : REPORT_TEXT;
}

/* report_main loads the baselines, reads, builds, prints and plots. */
static int report_main(struct report *rep, char **files, int nfiles, char *which,
		       enum report_format fmt, const char *plot, bool force)
{
	struct baselines set = { .n = 0 };
	const char *names[BASELINES_MAX + 1];
	const char *const *chosen;
	char dir[1024], why[1024];
	int st;

	if (baselines_find_dir(dir, sizeof(dir), why, sizeof(why)))
		return cli_error("run from the source tree, or set MOEBENCH_BASELINES", "%s", why);
	if (baselines_load(dir, &set, why, sizeof(why)))
		return cli_error("fix the baseline file (results/baselines/README.md)", "%s", why);
	rep->baselines_dir = dir;
	if ((st = pick_names(&set, which, names, BASELINES_MAX + 1, &chosen)) ||
	    (st = read_inputs(files, nfiles, &rep->in)))
		goto out;
	if (report_build(rep, &set, chosen, why, sizeof(why))) {
		st = cli_error("report the document to the project", "%s", why);
		goto out;
	}
	st = report_print(rep, fmt, stdout);
	if (!st && plot)
		st = report_plot(rep, plot, force);
out:
	report_free(rep);
	baselines_free(&set);
	return st;
}

int cmd_report(int argc, char **argv)
{
	struct report rep = { .argc = argc, .argv = argv, .tokens = NAN };
	char *files[REPORT_FILES_MAX];
	const char *which, *format, *plot;
	double tol_pct;
	bool help, force;
	int nfiles, st;
	const struct cli_opt opts[] = {
		{ "baseline", CLI_STRING, &which, "all", "published baselines, comma separated (results/baselines/NAME.json), or all", 0, -1, NULL },
		{ "tokens", CLI_DOUBLE, &rep.tokens, NULL, "token budget for GPU-hours and cost (default: each published run's, e.g. 14.8e12 for DeepSeek-V3)", 1, 1e18, NULL },
		{ "usd-per-gpu-hour", CLI_DOUBLE, &rep.usd, "2", "price of a GPU-hour", 0.0001, 1e6, NULL },
		{ "tolerance", CLI_DOUBLE, &tol_pct, "5", "percent below the published MFU still called at_or_above", 0, 100, NULL },
		{ "format", CLI_CHOICE, &format, "text", "what stdout shows", 0, -1, "text|json|csv|md" },
		{ "plot", CLI_STRING, &plot, NULL, "write DIR/report_mfu.{csv,png} and DIR/report_gpu_hours.{csv,png} with gnuplot", 0, -1, NULL },
		{ "force", CLI_FLAG, &force, NULL, "--plot: replace existing regular files", 0, -1, NULL },
		CLI_END
	};
	st = cli_parse("report", argc, argv, NULL, opts, files, REPORT_FILES_MAX, &nfiles, &help,
		       "moebench report RESULT... [--baseline NAME,...] [--tokens N] "
		       "[--usd-per-gpu-hour X] [--format text|json|csv|md] [--plot DIR [--force]]");
	if (st || help)
		return st;
	if (nfiles == 0)
		return cli_error("moebench report step.json [train.json peak.json ...]",
				 "no result document given");
	rep.tolerance = tol_pct / 100.0;
	if ((st = cli_only_with(&force, "force", plot != NULL, "--plot")) ||
	    (plot && (st = report_plot_check(plot, force))))
		return st;
	char *list = strdup(which);
	if (!list)
		return cli_error(NULL, "out of memory");
	st = report_main(&rep, files, nfiles, list, parse_format(format), plot, force);
	free(list);
	return st;
}
