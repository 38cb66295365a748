/*
 * report_out.c - what `moebench report` prints (report.h): four tables (the measured
 * runs; the published runs under every FLOP convention; each measured run against each
 * published run, with the GPU-hours and cost of the token budget and the verdict; the
 * projections given) as aligned text or Markdown, the comparison table flat as CSV
 * with '#' provenance lines, or the whole as one JSON object (report_json.c).
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

#define TAB_COLS 16
#define CELL 128

/* A table built in memory, so text can align its columns. */
struct tab {
	int ncol;
	size_t nrow, cap;
	const char *head[TAB_COLS];
	char (*cell)[TAB_COLS][CELL];
};

/* tab_row appends an empty row and returns it (NULL when out of memory). */
static char (*tab_row(struct tab *t))[CELL]
{
	if (t->nrow == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		void *p = realloc(t->cell, cap * sizeof(*t->cell));
		if (!p)
			return NULL;
		t->cell = p;
		t->cap = cap;
	}
	memset(t->cell[t->nrow], 0, sizeof(*t->cell));
	return t->cell[t->nrow++];
}

/* fmt_g writes v with %.4g, "n/a" when NaN. */
static void fmt_g(char *buf, double v)
{
	if (isfinite(v))
		snprintf(buf, CELL, "%.4g", v);
	else
		snprintf(buf, CELL, "n/a");
}

/* fmt_pct writes a fraction as a percentage with two decimals, "n/a" when NaN. */
static void fmt_pct(char *buf, double v)
{
	if (isfinite(v))
		snprintf(buf, CELL, "%.2f", 100 * v);
	else
		snprintf(buf, CELL, "n/a");
}

/* tab_print prints the table aligned (text) or as a Markdown table, then frees it. */
static void tab_print(struct tab *t, enum report_format fmt, FILE *out)
{
	int w[TAB_COLS];
	for (int c = 0; c < t->ncol; c++) {
		w[c] = (int)strlen(t->head[c]);
		for (size_t r = 0; r < t->nrow; r++)
			if ((int)strlen(t->cell[r][c]) > w[c])
				w[c] = (int)strlen(t->cell[r][c]);
	}
	const char *sep = fmt == REPORT_MD ? " | " : "  ";
	fputs(fmt == REPORT_MD ? "| " : "  ", out);
	for (int c = 0; c < t->ncol; c++)
		fprintf(out, "%-*s%s", w[c], t->head[c], c + 1 < t->ncol ? sep : "");
	fputs(fmt == REPORT_MD ? " |\n" : "\n", out);
	if (fmt == REPORT_MD) {
		for (int c = 0; c < t->ncol; c++)
			fprintf(out, "|%s", c ? "---:" : "---");
		fputs("|\n", out);
	}
	for (size_t r = 0; r < t->nrow; r++) {
		fputs(fmt == REPORT_MD ? "| " : "  ", out);
		for (int c = 0; c < t->ncol; c++)
			fprintf(out, c ? "%*s%s" : "%-*s%s", w[c], t->cell[r][c],
				c + 1 < t->ncol ? sep : "");
		fputs(fmt == REPORT_MD ? " |\n" : "\n", out);
	}
	free(t->cell);
	t->cell = NULL;
}

/* heading prints a section title. */
static void heading(FILE *out, enum report_format fmt, const char *title)
{
	fprintf(out, fmt == REPORT_MD ? "\n### %s\n\n" : "\n== %s\n", title);
}

/* measured_table: one row per measured run. */
static void measured_table(const struct report *rep, enum report_format fmt, FILE *out)
{
	struct tab t = { .ncol = 13, .head = { "run", "gpus", "precision", "tokens_per_s",
		"tokens_per_gpu_s", "model_GFLOP_per_token", "6N_GFLOP_per_token", "tflops_per_gpu",
		"mfu_bf16_datasheet_pct", "mfu_fp8_datasheet_pct", "mfu_bf16_measured_pct",
		"mfu_fp8_measured_pct", "scaling_eff_pct" } };
	for (size_t i = 0; i < rep->in.n_meas; i++) {
		const struct report_meas *m = &rep->in.meas[i];
		const struct report_figs *f = &rep->figs[i];
		char (*row)[CELL] = tab_row(&t);
		if (!row)
			return;
		snprintf(row[0], CELL, "%s", m->label);
		snprintf(row[1], CELL, "%lld", (long long)m->gpus);
		snprintf(row[2], CELL, "%s", m->precision);
		fmt_g(row[3], m->tokens_per_s);
		fmt_g(row[4], f->tokens_per_gpu_s);
		fmt_g(row[5], (double)f->flops.total / 1e9);
		fmt_g(row[6], f->flops_6n / 1e9);
		fmt_g(row[7], f->tflops_per_gpu);
		fmt_pct(row[8], f->mfu_bf16_ds);
		fmt_pct(row[9], f->mfu_fp8_ds);
		fmt_pct(row[10], f->mfu_bf16_meas);
		fmt_pct(row[11], f->mfu_fp8_meas);
		if (isfinite(f->scaling_eff))
			snprintf(row[12], CELL, "%.2f (%s vs %lld)", 100 * f->scaling_eff, m->mode,
				 (long long)f->scaling_base_gpus);
		else
			snprintf(row[12], CELL, "-");
	}
	tab_print(&t, fmt, out);
}

/* measured_notes: per run, the FLOP terms, the recorded count and the peaks' sources. */
static void measured_notes(const struct report *rep, enum report_format fmt, FILE *out)
{
	const char *b = fmt == REPORT_MD ? "- " : "  ", *b2 = fmt == REPORT_MD ? "  - " : "    ";
	for (size_t i = 0; i < rep->in.n_meas; i++) {
		const struct report_meas *m = &rep->in.meas[i];
		const struct report_figs *f = &rep->figs[i];
		fprintf(out, "%s%s (%s, device %s): model FLOPs per token, model/accounting.c, "
			"training, causal, seq %lld, %lld MTP module(s): %.6g =", b, m->label,
			m->origin, m->device, (long long)f->flops.seq, (long long)f->flops.mtp_depth,
			(double)f->flops.total);
		for (int k = 0; k < MODEL_FLOP_TERMS; k++)
			if (f->flops.main[k] + f->flops.mtp[k])
				fprintf(out, " %s %.4g", model_flop_term_name(k),
					(double)(f->flops.main[k] + f->flops.mtp[k]));
		fprintf(out, "; 6N %.6g", f->flops_6n);
		if (isfinite(m->flops_recorded))
			fprintf(out, "; the record says %.6g (%s)", m->flops_recorded,
				m->flops_recorded == (double)f->flops.total ? "same" : "DIFFERS");
		char bd[CELL], bm[CELL], fd[CELL], fm[CELL];
		fmt_g(bd, f->bf16_ds.tflops), fmt_g(bm, f->bf16_meas.tflops);
		fmt_g(fd, f->fp8_ds.tflops), fmt_g(fm, f->fp8_meas.tflops);
		fprintf(out, "\n%sBF16 peak TFLOP/s: datasheet %s [%s]; measured %s [%s]\n", b2,
			bd, f->bf16_ds.source, bm, f->bf16_meas.source);
		if (f->fp8)
			fprintf(out, "%sFP8 peak TFLOP/s: datasheet %s [%s]; measured %s [%s]\n", b2,
				fd, f->fp8_ds.source, fm, f->fp8_meas.source);
	}
}

/* first_with returns the first published run citing c. */
static size_t first_with(const struct report *rep, const char *c)
{
	for (size_t k = 0; k < rep->n_pub; k++)
		if (rep->pubs[k].cite && !strcmp(rep->pubs[k].cite, c))
			return k;
	return 0;
}

/* cite_index numbers published run j's reference among the distinct references in the
 * order the runs are listed (1-based), 0 when it has none. */
static int cite_index(const struct report *rep, size_t j)
{
	int n = 0;
	if (!rep->pubs[j].cite)
		return 0;
	for (size_t k = 0; k <= first_with(rep, rep->pubs[j].cite); k++)
		n += rep->pubs[k].cite && first_with(rep, rep->pubs[k].cite) == k;
	return n;
}

/* references prints each distinct reference once, numbered as cite_index numbers it. */
static void references(const struct report *rep, enum report_format fmt, FILE *out)
{
	for (size_t j = 0; j < rep->n_pub; j++)
		if (rep->pubs[j].cite && first_with(rep, rep->pubs[j].cite) == j)
			fprintf(out, "%s[%d] %s\n", fmt == REPORT_MD ? "- " : "  ", cite_index(rep, j),
				rep->pubs[j].cite);
}

/* published_table: one row per published run, its MFU under each convention. */
static void published_table(const struct report *rep, enum report_format fmt, FILE *out)
{
	struct tab t = { .ncol = 13, .head = { "published_run", "hardware", "gpus",
		"tokens_per_gpu_s", "mfu_published_pct", "causal+mtp", "causal", "full+mtp",
		"full", "6n+mtp", "6n", "closest", "ref" } };
	for (size_t j = 0; j < rep->n_pub; j++) {
		const struct report_pub *p = &rep->pubs[j];
		char (*row)[CELL] = tab_row(&t);
		if (!row)
			return;
		snprintf(row[0], CELL, "%s/%s", p->eval->baseline->name, p->eval->run->name);
		snprintf(row[1], CELL, "%s", p->eval->run->hardware);
		fmt_g(row[2], p->gpus);
		fmt_g(row[3], p->tokens_per_gpu_s);
		fmt_pct(row[4], p->mfu_published);
		for (int c = 0; c < REPORT_CONV_COUNT; c++)
			fmt_pct(row[5 + c], p->mfu[c]);
		snprintf(row[11], CELL, "%s", p->closest >= 0 ? report_conv_name(p->closest) : "-");
		snprintf(row[12], CELL, "[%d] %s", cite_index(rep, j), p->where ? p->where : "-");
	}
	tab_print(&t, fmt, out);
	if (fmt == REPORT_MD)
		fputc('\n', out);
	references(rep, fmt, out);
	fprintf(out, "%sMFU in %% of the dense BF16 peak of the run's hardware, from its "
		"tokens per GPU-second (GPU-hours and tokens, or stated) and model FLOPs per "
		"token under each convention (model/accounting.c with the MTP and causal "
		"switches); causal+mtp is moebench's. mfu_published: the stated MFU, else the "
		"stated TFLOP/s over the peak, else causal+mtp; closest: the convention nearest "
		"it.\n", fmt == REPORT_MD ? "\n" : "  ");
}

/* compare_table: each measured run against each published run. */
static void compare_table(const struct report *rep, enum report_format fmt, FILE *out)
{
	struct tab t = { .ncol = 11, .head = { "measured_run", "published_run", "tokens",
		"gpu_hours", "cost_usd", "gpu_hours_published", "gpu_hours_at_our_mfu",
		"mfu_ours_pct", "mfu_published_pct", "verdict", "tokens_from" } };
	for (size_t i = 0; i < rep->in.n_meas; i++)
		for (size_t j = 0; j < rep->n_pub; j++) {
			const struct report_cmp *c = &rep->cmps[i * rep->n_pub + j];
			const struct report_pub *p = &rep->pubs[j];
			char (*row)[CELL] = tab_row(&t);
			if (!row)
				return;
			snprintf(row[0], CELL, "%s", rep->in.meas[i].label);
			snprintf(row[1], CELL, "%s/%s", p->eval->baseline->name, p->eval->run->name);
			fmt_g(row[2], c->tokens);
			fmt_g(row[3], c->gpu_hours);
			fmt_g(row[4], c->cost_usd);
			fmt_g(row[5], p->gpu_hours);
			fmt_g(row[6], c->gpu_hours_at_mfu);
			fmt_pct(row[7], c->mfu_ours);
			fmt_pct(row[8], p->mfu_published);
			snprintf(row[9], CELL, "%s", report_verdict_name(c->verdict));
			if (isfinite(rep->tokens))
				snprintf(row[10], CELL, "--tokens");
			else if (isfinite(p->budget_tokens))
				snprintf(row[10], CELL, "%s/%s", p->budget_baseline, p->budget_from);
			else
				snprintf(row[10], CELL, "none stated: give --tokens");
		}
	tab_print(&t, fmt, out);
	fprintf(out, "%sgpu_hours, cost_usd: the measured model on the measured device for the "
		"token budget (%s) at $%.2f/GPU-hour; gpu_hours_at_our_mfu: the published "
		"model on its hardware at our BF16 MFU.\n%s%s (tolerance %g%%)\n",
		fmt == REPORT_MD ? "\n" : "  ", isfinite(rep->tokens) ? "--tokens" :
		"each published run's tokens, else its baseline's", rep->usd,
		fmt == REPORT_MD ? "\n" : "  ", REPORT_VERDICT_RULE, 100 * rep->tolerance);
}

/* projections_table: the `project --json` documents given. */
static void projections_table(const struct report *rep, enum report_format fmt, FILE *out)
{
	struct tab t = { .ncol = 6, .head = { "projection", "tokens", "gpu_hours",
		"gpu_hours_claimed", "tokens_per_gpu_s", "mfu_bf16_pct" } };
	for (size_t k = 0; k < rep->in.n_proj; k++) {
		const struct report_project *p = &rep->in.proj[k];
		char (*row)[CELL] = tab_row(&t);
		if (!row)
			return;
		snprintf(row[0], CELL, "%s", p->label);
		fmt_g(row[1], p->tokens);
		fmt_g(row[2], p->gpu_hours);
		fmt_g(row[3], p->claimed_gpu_hours);
		fmt_g(row[4], p->tokens_per_gpu_s);
		fmt_pct(row[5], p->mfu_bf16);
	}
	tab_print(&t, fmt, out);
}

/* print_tables prints the text or Markdown report. */
static void print_tables(const struct report *rep, enum report_format fmt, FILE *out)
{
	fprintf(out, "%smoebench report: %zu measured run(s), %zu published run(s) from %s, "
		"$%.2f per GPU-hour\n", fmt == REPORT_MD ? "## " : "", rep->in.n_meas,
		rep->n_pub, rep->baselines_dir, rep->usd);
	if (rep->in.n_meas) {
		heading(out, fmt, "measured (per GPU; CPU runs: per process)");
		measured_table(rep, fmt, out);
		if (fmt == REPORT_MD)
			fputc('\n', out);
		measured_notes(rep, fmt, out);
	}
	heading(out, fmt, "published, MFU (%) under each FLOP convention");
	published_table(rep, fmt, out);
	if (rep->in.n_meas && rep->n_pub) {
		heading(out, fmt, "measured against published");
		compare_table(rep, fmt, out);
	}
	if (rep->in.n_proj) {
		heading(out, fmt, "projections (moebench project --json)");
		projections_table(rep, fmt, out);
	}
}

/* csv_field writes a number (empty when NaN) and the separator. */
static void csv_field(FILE *out, double v, bool last)
{
	if (isfinite(v))
		fprintf(out, "%.10g", v);
	fputc(last ? '\n' : ',', out);
}

/* print_csv: provenance lines, then one row per comparison. */
static void print_csv(const struct report *rep, FILE *out)
{
	fprintf(out, "# moebench report\n# argv");
	for (int i = 0; i < rep->argc; i++)
		fprintf(out, " %s", rep->argv[i]);
	fprintf(out, "\n# %s (tolerance %g)\nmeasured_run,gpus,precision,tokens_per_gpu_s,"
		"model_flops_per_token,flops_6n,mfu_bf16_datasheet,mfu_bf16_measured,"
		"published_run,published_gpus,published_mfu,tokens,gpu_hours,cost_usd,"
		"gpu_hours_published,gpu_hours_at_our_mfu,verdict\n", REPORT_VERDICT_RULE,
		rep->tolerance);
	for (size_t i = 0; i < rep->in.n_meas; i++)
		for (size_t j = 0; j < rep->n_pub; j++) {
			const struct report_figs *f = &rep->figs[i];
			const struct report_pub *p = &rep->pubs[j];
			const struct report_cmp *c = &rep->cmps[i * rep->n_pub + j];
			fprintf(out, "%s,%lld,%s,", rep->in.meas[i].label,
				(long long)rep->in.meas[i].gpus, rep->in.meas[i].precision);
			csv_field(out, f->tokens_per_gpu_s, false);
			csv_field(out, (double)f->flops.total, false);
			csv_field(out, f->flops_6n, false);
			csv_field(out, f->mfu_bf16_ds, false);
			csv_field(out, f->mfu_bf16_meas, false);
			fprintf(out, "%s/%s,", p->eval->baseline->name, p->eval->run->name);
			csv_field(out, p->gpus, false);
			csv_field(out, p->mfu_published, false);
			csv_field(out, c->tokens, false);
			csv_field(out, c->gpu_hours, false);
			csv_field(out, c->cost_usd, false);
			csv_field(out, p->gpu_hours, false);
			csv_field(out, c->gpu_hours_at_mfu, false);
			fprintf(out, "%s\n", report_verdict_name(c->verdict));
		}
}

int report_print(const struct report *rep, enum report_format fmt, FILE *out)
{
	if (fmt == REPORT_JSON) {
		cJSON *j = report_to_json(rep);
		char *text = j ? cJSON_Print(j) : NULL;
		if (text)
			fprintf(out, "%s\n", text);
		cJSON_free(text);
		cJSON_Delete(j);
		if (!text)
			return 1;
	} else if (fmt == REPORT_CSV) {
		print_csv(rep, out);
	} else {
		print_tables(rep, fmt, out);
	}
	return fflush(out) == 0 && !ferror(out) ? 0 : 1;
}
