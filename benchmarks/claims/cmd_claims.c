/*
 * cmd_claims.c - `moebench claims`: every published claim of results/baselines/ beside
 * its recomputation from first principles (the model's FLOPs per token, the tokens,
 * the hardware's dense peak), with a verdict and the reason per figure; then the
 * comparison claim of DeepSeek-V3 and Llama 3 405B: the GPU-hours ratio as the ratio
 * of total training FLOPs times the ratio of achieved FLOP/s per GPU.
 *
 *   moebench claims                           # every baseline, $2/GPU-hour, 5% tolerance
 *   moebench claims --baseline deepseek-v3 --usd-per-gpu-hour 2.5 --tolerance 10
 *   moebench claims --json
 *   moebench claims --plot figures            # figures/claims.{csv,png,pdf}
 *
 * Baselines are read from $MOEBENCH_BASELINES, else ./results/baselines, else the source
 * tree's. Exit 0 when every claim evaluates: an "inconsistent" verdict is a finding
 * about a published figure, not an error of the program. Exit 2 on bad input (unknown
 * baseline, malformed baseline file, gnuplot missing for --plot), 1 when gnuplot fails.
 */
#include "commands.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "claims_out.h"
#include "cli.h"
#include "status.h"

/* pick_runs evaluates the runs of the chosen baseline(s) into a new array. Returns 0
 * or the exit status after printing the error. */
static int pick_runs(const struct baselines *set, const char *which, double usd, double tol,
		     struct claims_out *co)
{
	char names[1024], hint[1100], why[1024];
	const struct model_baseline *only = NULL;

	if (strcmp(which, "all") != 0 && !(only = baselines_find(set, which))) {
		baselines_names(set, names, sizeof(names));
		snprintf(hint, sizeof(hint), "known baselines are all, %s", names);
		return cli_error(hint, "--baseline: unknown baseline '%s'", which);
	}
	co->evals = calloc(baselines_run_count(set), sizeof(*co->evals));
	if (!co->evals)
		return cli_error(NULL, "out of memory");
	for (size_t i = 0; i < set->n; i++) {
		if (only && set->items[i] != only)
			continue;
		for (size_t r = 0; r < set->items[i]->n_runs; r++) {
			const struct model_baseline_run *run = &set->items[i]->runs[r];
			if (baselines_evaluate(set->items[i], r, usd, co->usd_override, tol,
					       &co->evals[co->n_evals], why, sizeof(why)))
				return cli_error("fix the baseline file (results/baselines/README.md "
						 "describes the fields)", "%s", why);
			if (co->usd_override && isfinite(model_run_figure(run, MODEL_FIG_USD_PER_GPU_HOUR)))
				cli_note(false, "%s/%s: --usd-per-gpu-hour $%g replaces the source's "
					 "$%g/GPU-hour in the cost", set->items[i]->name, run->name, usd,
					 model_run_figure(run, MODEL_FIG_USD_PER_GPU_HOUR));
			co->n_evals++;
		}
	}
	return 0;
}

/* pick_comparison computes the comparison when both of its baselines are chosen and
 * present. Returns 0 or the exit status after printing the error. */
static int pick_comparison(const struct baselines *set, const char *which,
			   struct claims_out *co)
{
	char why[512];
	bool wanted = strcmp(which, "all") == 0 || strcmp(which, "deepseek-v3") == 0 ||
		      strcmp(which, "llama3-405b") == 0;

	if (!wanted || !baselines_find(set, "deepseek-v3") || !baselines_find(set, "llama3-405b"))
		return 0;
	if (baselines_compare(set, &co->cmp, why, sizeof(why)))
		return cli_error("the comparison reads llama3-405b.json and deepseek-v3.json",
				 "%s", why);
	co->has_cmp = true;
	return 0;
}

/* cmd_claims loads the baselines, evaluates the chosen runs and the comparison, and
 * prints them (and renders the figure with --plot). */
int cmd_claims(int argc, char **argv)
{
	struct baselines set = { .n = 0 };
	struct claims_out co = { .argc = argc, .argv = argv };
	char dir[1024], why[1024], *pos[1];
	const char *which, *plot;
	double usd, tol_pct;
	bool json, help;
	int npos;
	const struct cli_opt opts[] = {
		{ "baseline", CLI_STRING, &which, "all", "a baseline's name (results/baselines/NAME.json), or all", 0, -1, NULL },
		{ "usd-per-gpu-hour", CLI_DOUBLE, &usd, "2", "price of a GPU-hour: the default applies where a source states none; given, it wins over a source's price too (with a note)", 0.0001, 1e6, NULL },
		{ "tolerance", CLI_DOUBLE, &tol_pct, "5", "percent difference still called consistent", 0, 1000, NULL },
		{ "json", CLI_FLAG, &json, NULL, "print one JSON object", 0, -1, NULL },
		{ "plot", CLI_STRING, &plot, NULL, "write DIR/claims.csv and render DIR/claims.png and .pdf with gnuplot", 0, -1, NULL },
		{ "force", CLI_FLAG, &co.force, NULL, "--plot: replace existing regular files", 0, -1, NULL },
		CLI_END
	};
	int st = cli_parse("claims", argc, argv, NULL, opts, pos, 0, &npos, &help,
			   "moebench claims [--baseline NAME|all] [--usd-per-gpu-hour X] "
			   "[--tolerance PCT] [--format text|json] [--plot DIR [--force]]");
	if (st || help)
		return st;
	co.which = which;
	co.usd = usd;
	co.usd_override = cli_given(&usd);
	co.tolerance = tol_pct / 100.0;
	if ((st = cli_only_with(&co.force, "force", plot != NULL, "--plot")) ||
	    (plot && ((st = claims_plot_ready(&co)) || (st = claims_plot_check(&co, plot)))))
		return st;
	if (baselines_find_dir(dir, sizeof(dir), why, sizeof(why)))
		return cli_error("run from the source tree, or set MOEBENCH_BASELINES to the "
				 "directory of baseline files", "%s", why);
	if (baselines_load(dir, &set, why, sizeof(why)))
		return cli_error("fix the baseline file (results/baselines/README.md describes "
				 "the fields)", "%s", why);
	co.set = &set;
	if ((st = pick_runs(&set, which, co.usd, co.tolerance, &co)) ||
	    (st = pick_comparison(&set, which, &co)))
		goto out;
	st = json ? claims_print_json(&co, stdout) : claims_print_text(&co, stdout);
	if (!st && plot)
		st = claims_plot(&co, plot);
out:
	free(co.evals);
	baselines_free(&set);
	return st;
}
