/*
 * claims_out.h - what `moebench claims` writes: the text table, the JSON document
 * (schema "moebench.claims/1"), and the figure (a CSV with '#' provenance lines,
 * rendered by gnuplot through plots/claims.gp to PNG and PDF).
 *
 * The print and plot functions return an exit status: 0, 1 (a write or gnuplot
 * failed) or 2 (bad input, e.g. gnuplot is not installed), after printing any error.
 */
#ifndef MB_HARNESS_CLAIMS_OUT_H
#define MB_HARNESS_CLAIMS_OUT_H

#include <stdbool.h>
#include <stdio.h>

#include "baselines.h"

#define CLAIMS_SCHEMA "moebench.claims/1"

struct claims_out {
	int argc;
	char **argv;
	const char *which;   /* --baseline: a name, or "all" */
	double usd;          /* $/GPU-hour where a source states none */
	bool usd_override;   /* --usd-per-gpu-hour given: it wins over stated prices too */
	bool force;          /* --force: --plot replaces existing regular files */
	double tolerance;    /* relative */
	const struct baselines *set;
	struct baselines_eval *evals;
	size_t n_evals;
	bool has_cmp;
	struct baselines_comparison cmp;
	char gnuplot[1024];  /* claims_plot_ready: the program and the script */
	char script[1024];
};

/* claims_print_text prints each baseline's runs, row by row, the comparison and a
 * count of the verdicts. */
int claims_print_text(const struct claims_out *co, FILE *out);
/* claims_print_json prints the same as one JSON object (NaN as null). */
int claims_print_json(const struct claims_out *co, FILE *out);

/* claims_plot_check checks before any work that DIR/claims.csv, .png and .pdf can
 * be written (new, or regular files to replace with --force). 0 or an exit status. */
int claims_plot_check(const struct claims_out *co, const char *dir);
/* claims_plot_ready finds gnuplot on PATH and plots/claims.gp (./plots, else the
 * source tree's), before anything is computed or written. */
int claims_plot_ready(struct claims_out *co);
/* claims_plot writes dir/claims.csv and renders dir/claims.png and dir/claims.pdf. */
int claims_plot(const struct claims_out *co, const char *dir);

#endif
