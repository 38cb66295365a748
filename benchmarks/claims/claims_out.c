/*
 * claims_out.c - the text table and the JSON document of `moebench claims` (see
 * claims_out.h). A row shows the figure as the source states it, as moebench
 * recomputes it, the difference and the verdict; under it, where the claim is stated
 * and how the recomputation was made.
 */
#include "claims_out.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* fmt_value prints a figure compactly: a fraction as a percentage, large numbers with
 * an SI suffix (14.8T tokens, 2.664M GPU-hours), "-" for NaN. */
static const char *fmt_value(char *buf, size_t len, double v, const char *unit)
{
	static const struct { double scale; const char *suffix; } si[] = {
		{ 1e12, "T" }, { 1e9, "G" }, { 1e6, "M" },
	};
	double a = fabs(v);

	if (isnan(v))
		snprintf(buf, len, "-");
	else if (strcmp(unit, "fraction") == 0)
		snprintf(buf, len, "%.2f%%", 100.0 * v);
	else if (a >= 1e15)
		snprintf(buf, len, "%.4g", v);
	else {
		for (size_t i = 0; i < sizeof(si) / sizeof(si[0]); i++)
			if (a >= si[i].scale) {
				snprintf(buf, len, "%.4g%s", v / si[i].scale, si[i].suffix);
				return buf;
			}
		snprintf(buf, len, v == floor(v) ? "%.0f" : "%.5g", v);
	}
	return buf;
}

/* fmt_claimed prints the claimed side with its bound (">=90.00%"). */
static const char *fmt_claimed(char *buf, size_t len, const struct model_claim_row *r)
{
	char v[32];
	const char *pre = isnan(r->claimed) ? "" : r->bound == MODEL_BOUND_AT_LEAST ? ">=" :
			  r->bound == MODEL_BOUND_AT_MOST ? "<=" : "";

	snprintf(buf, len, "%s%s", pre, fmt_value(v, sizeof(v), r->claimed, r->unit));
	return buf;
}

/* ref_key finds the short key under which the baseline lists a reference's text. */
static const char *ref_key(const struct model_baseline *b, const char *text)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(b->doc, "references"))
		if (cJSON_IsString(it) && strcmp(it->valuestring, text) == 0)
			return it->string;
	return "?";
}

/* verdict_label names a row's verdict: the library's for a claim beside its
 * recomputation; "stated" for a figure shown as published only, "derived" for a
 * recomputation the source states no figure for, "n/a" when neither side exists. */
static const char *verdict_label(const struct model_claim_row *r)
{
	if (strcmp(r->how, "stated") == 0)
		return "stated";
	if (r->verdict == MODEL_VERDICT_NA && isnan(r->claimed) && !isnan(r->recomputed))
		return "derived";
	return model_verdict_name(r->verdict);
}

/* print_row prints one figure and, under it, its reference and the recomputation. */
static void print_row(FILE *f, const struct model_baseline *b, const struct model_claim_row *r)
{
	char c[40], x[40], d[24];
	bool stated_only = strcmp(r->how, "stated") == 0;

	if (isnan(r->rel_diff))
		snprintf(d, sizeof(d), "-");
	else
		snprintf(d, sizeof(d), "%+.2f", 100.0 * r->rel_diff);
	fprintf(f, "  %-34s %-12s %11s %11s %9s  %s\n", r->figure,
		strcmp(r->unit, "fraction") == 0 ? "%" : r->unit, fmt_claimed(c, sizeof(c), r),
		fmt_value(x, sizeof(x), r->recomputed, r->unit), d,
		verdict_label(r));
	if (r->ref)
		fprintf(f, "      claimed: [%s] %s\n", ref_key(b, r->ref), r->where);
	if (!stated_only)
		fprintf(f, "      recomputed: %s\n", r->how);
}

/* fmt_peak prints a datasheet peak, or "n/a" where the datasheet gives none. */
static const char *fmt_peak(char *buf, size_t len, double v)
{
	snprintf(buf, len, isfinite(v) ? "%g" : "n/a", v);
	return buf;
}

/* print_run prints a run's header, its FLOP counts and peaks, then its rows. */
static void print_run(FILE *f, const struct baselines_eval *e)
{
	const struct model_claim_report *rep = &e->report;
	char b16[24], f8[24];

	fprintf(f, "\n-- %s/%s: %s on %s%s%s%s\n", e->baseline->name, e->run->name, e->run->model,
		e->run->hardware, e->run->precision ? " (" : "",
		e->run->precision ? e->run->precision : "", e->run->precision ? ")" : "");
	fprintf(f, "   FLOPs per token at seq %" PRId64 " with %" PRId64 " MTP module%s: %.2f GFLOP "
		"training (causal), %.2f non-causal, 6N %.2f\n", rep->seq, rep->mtp_depth,
		rep->mtp_depth == 1 ? "" : "s", 1e-9 * rep->flops_per_token,
		1e-9 * rep->flops_per_token_noncausal, 1e-9 * rep->flops_per_token_6n);
	fprintf(f, "   dense peaks of %s: BF16 %s, FP8 %s TFLOP/s\n", e->hw->key,
		fmt_peak(b16, sizeof(b16), e->hw->peak_bf16_tflops),
		fmt_peak(f8, sizeof(f8), e->hw->peak_fp8_tflops));
	if (e->run->note)
		fprintf(f, "   note: %s\n", e->run->note);
	fprintf(f, "  %-34s %-12s %11s %11s %9s  %s\n", "figure", "unit", "claimed", "recomputed",
		"diff_pct", "verdict");
	for (size_t i = 0; i < rep->n_rows; i++)
		print_row(f, e->baseline, &rep->rows[i]);
}

/* print_baseline prints a baseline's title, file and references. */
static void print_baseline(FILE *f, const struct model_baseline *b)
{
	const cJSON *it;

	fprintf(f, "\n== %s: %s\n   file: %s\n", b->name, b->title, b->origin);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(b->doc, "references"))
		fprintf(f, "   [%s] %s\n", it->string, it->valuestring);
}

/* print_comparison prints the decomposition of the GPU-hours ratio. */
static void print_comparison(FILE *f, const struct baselines_comparison *c)
{
	const struct model_claim_ratio *r = &c->bf16, *s = &c->stated;
	double gh_a = model_run_figure(c->a, MODEL_FIG_GPU_HOURS);
	double gh_b = model_run_figure(c->b, MODEL_FIG_GPU_HOURS);
	double gh_t = model_run_figure(c->b_total, MODEL_FIG_GPU_HOURS);
	const char *na = c->a->model, *nb = c->b->model;

	fprintf(f, "\n== comparison: %s (a) vs %s (b): GPU-hours a/b = total training FLOPs a/b "
		"x achieved FLOP/s per GPU b/a\n", na, nb);
	fprintf(f, "   headline: %s %.4gM GPU-hours / %s %.4gM GPU-hours = %.2fx\n",
		BASELINES_CMP_A, gh_a / 1e6, BASELINES_CMP_B_TOTAL, gh_t / 1e6, c->headline);
	fprintf(f, "   pre-training: %.4gM %s GPU-hours / %.4gM %s GPU-hours = %.2fx\n",
		gh_a / 1e6, c->hw_a->key, gh_b / 1e6, c->hw_b->key, r->gpu_hours);
	fprintf(f, "     = total training FLOPs      %6.3fx  (tokens %.3fx, FLOPs per token %.3fx)\n",
		r->total_flops, r->tokens, r->flops_per_token);
	fprintf(f, "     x achieved FLOP/s per GPU   %6.3fx  (%s %.1f / %s %.1f TFLOP/s)\n",
		r->rate, nb, r->tflops_b, na, r->tflops_a);
	fprintf(f, "   achieved rate = MFU x peak: BF16 MFU %s %.2f%% vs %s %.2f%% (%.3fx), peaks "
		"%.4g vs %.4g TFLOP/s (%.3fx)\n", nb, 100 * r->mfu_b, na, 100 * r->mfu_a, r->mfu, 
		c->hw_b->peak_bf16_tflops, c->hw_a->peak_bf16_tflops, r->peak);
	fprintf(f, "   against each run's own precision: %s %s MFU %.2f%%, %s %s MFU %.2f%%\n", nb,
		c->b->precision ? c->b->precision : "bf16", 100 * s->mfu_b, na,
		c->a->precision ? c->a->precision : "bf16", 100 * s->mfu_a);
	fprintf(f, "   model size and tokens account for %.1f%% of the ratio (log scale), "
		"hardware use for %.1f%%\n", 100 * c->size_share, 100 * (1 - c->size_share));
}

/* The verdict labels, in the order they are counted and reported. */
static const char *const labels[] = { "consistent", "inconsistent", "derived", "n/a", "stated" };
#define N_LABELS (sizeof(labels) / sizeof(labels[0]))

/* count_verdicts counts the rows of each label over every evaluated run. */
static void count_verdicts(const struct claims_out *co, size_t n[N_LABELS])
{
	memset(n, 0, N_LABELS * sizeof(n[0]));
	for (size_t i = 0; i < co->n_evals; i++)
		for (size_t r = 0; r < co->evals[i].report.n_rows; r++)
			for (size_t k = 0; k < N_LABELS; k++)
				if (strcmp(verdict_label(&co->evals[i].report.rows[r]), labels[k]) == 0)
					n[k]++;
}

/* print_sources lists, once each, the hardware entries whose peaks were used. */
static void print_sources(const struct claims_out *co, FILE *f)
{
	fprintf(f, "peaks: dense, per GPU, from moebench's hardware table (model/hardware.c)\n");
	for (size_t i = 0; i < co->n_evals; i++) {
		size_t j = 0;
		while (j < i && co->evals[j].hw != co->evals[i].hw)
			j++;
		if (j == i)
			fprintf(f, "  %s: %s\n", co->evals[i].hw->key, co->evals[i].hw->source);
	}
}

int claims_print_text(const struct claims_out *co, FILE *out)
{
	const struct model_baseline *last = NULL;
	size_t n[N_LABELS];

	fprintf(out, "moebench claims: %s of the %zu baselines in %s; $%.2f per GPU-hour where "
		"a source states none; consistent within %g%%\n", co->which, co->set->n,
		co->set->dir, co->usd, 100 * co->tolerance);
	for (size_t i = 0; i < co->n_evals; i++) {
		if (co->evals[i].baseline != last)
			print_baseline(out, last = co->evals[i].baseline);
		print_run(out, &co->evals[i]);
	}
	if (co->has_cmp)
		print_comparison(out, &co->cmp);
	count_verdicts(co, n);
	fprintf(out, "\nverdicts: %zu consistent, %zu inconsistent, %zu derived (no published "
		"figure to compare), %zu n/a, %zu stated only\n(an inconsistent verdict is a "
		"finding about a published figure, not an error: the exit status stays 0)\n",
		n[0], n[1], n[2], n[3], n[4]);
	print_sources(co, out);
	return ferror(out) ? cli_error("stdout could not take it: a closed pipe or a full disk",
				       "writing the table failed") : 0;
}

/* add_num adds a number, or null for NaN. */
static void add_num(cJSON *o, const char *key, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

/* add_str adds a string, or null. */
static void add_str(cJSON *o, const char *key, const char *s)
{
	if (s)
		cJSON_AddStringToObject(o, key, s);
	else
		cJSON_AddNullToObject(o, key);
}

/* row_json returns one row as an object. */
static cJSON *row_json(const struct model_claim_row *r)
{
	cJSON *o = cJSON_CreateObject();
	bool stated_only = strcmp(r->how, "stated") == 0;

	add_str(o, "figure", r->figure);
	add_str(o, "unit", r->unit);
	add_num(o, "claimed", r->claimed);
	add_str(o, "bound", isnan(r->claimed) ? NULL : model_bound_name(r->bound));
	add_num(o, "recomputed", r->recomputed);
	add_num(o, "rel_diff", r->rel_diff);
	add_str(o, "verdict", verdict_label(r));
	add_str(o, "how", stated_only ? NULL : r->how);
	add_str(o, "ref", r->ref);
	add_str(o, "where", r->where);
	return o;
}

/* run_json returns an evaluated run with its counts, peaks and rows. */
static cJSON *run_json(const struct baselines_eval *e)
{
	const struct model_claim_report *rep = &e->report;
	cJSON *o = cJSON_CreateObject(), *rows;

	add_str(o, "baseline", e->baseline->name);
	add_str(o, "run", e->run->name);
	add_str(o, "model", e->run->model);
	add_str(o, "hardware", e->run->hardware);
	add_str(o, "precision", e->run->precision);
	add_str(o, "note", e->run->note);
	add_num(o, "seq", (double)rep->seq);
	add_num(o, "mtp_depth", (double)rep->mtp_depth);
	add_num(o, "flops_per_token_train", rep->flops_per_token);
	add_num(o, "flops_per_token_train_noncausal", rep->flops_per_token_noncausal);
	add_num(o, "flops_per_token_6n", rep->flops_per_token_6n);
	add_num(o, "peak_bf16_tflops", e->hw->peak_bf16_tflops);
	add_num(o, "peak_fp8_tflops", e->hw->peak_fp8_tflops);
	add_str(o, "peak_source", e->hw->source);
	rows = cJSON_AddArrayToObject(o, "rows");
	for (size_t i = 0; i < rep->n_rows; i++)
		cJSON_AddItemToArray(rows, row_json(&rep->rows[i]));
	return o;
}

/* baseline_json returns a baseline's name, title, file and references. */
static cJSON *baseline_json(const struct model_baseline *b)
{
	cJSON *o = cJSON_CreateObject();

	add_str(o, "name", b->name);
	add_str(o, "title", b->title);
	add_str(o, "file", b->origin);
	cJSON_AddItemToObject(o, "references", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
		b->doc, "references"), true));
	return o;
}

/* ratio_json returns one decomposition of the comparison. */
static cJSON *ratio_json(const struct model_claim_ratio *r)
{
	cJSON *o = cJSON_CreateObject();
	const struct { const char *k; double v; } f[] = {
		{ "gpu_hours", r->gpu_hours }, { "total_flops", r->total_flops },
		{ "tokens", r->tokens }, { "flops_per_token", r->flops_per_token },
		{ "tflops_per_gpu_a", r->tflops_a }, { "tflops_per_gpu_b", r->tflops_b },
		{ "rate_b_over_a", r->rate }, { "mfu_a", r->mfu_a }, { "mfu_b", r->mfu_b },
		{ "mfu_b_over_a", r->mfu }, { "peak_b_over_a", r->peak },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		add_num(o, f[i].k, f[i].v);
	return o;
}

/* comparison_json returns the comparison object. */
static cJSON *comparison_json(const struct baselines_comparison *c)
{
	cJSON *o = cJSON_CreateObject();

	add_str(o, "a", BASELINES_CMP_A);
	add_str(o, "b", BASELINES_CMP_B);
	add_str(o, "b_total", BASELINES_CMP_B_TOTAL);
	add_num(o, "headline_gpu_hours_ratio", c->headline);
	cJSON_AddItemToObject(o, "bf16", ratio_json(&c->bf16));
	cJSON_AddItemToObject(o, "stated_precision", ratio_json(&c->stated));
	add_num(o, "size_share", c->size_share);
	return o;
}

int claims_print_json(const struct claims_out *co, FILE *out)
{
	cJSON *o = cJSON_CreateObject(), *runs, *v;
	size_t n[N_LABELS];
	char *text;

	add_str(o, "schema", CLAIMS_SCHEMA);
	add_str(o, "baseline", co->which);
	add_str(o, "baselines_dir", co->set->dir);
	add_num(o, "usd_per_gpu_hour", co->usd);
	add_num(o, "tolerance", co->tolerance);
	cJSON *bl = cJSON_AddArrayToObject(o, "baselines");
	for (size_t i = 0; i < co->n_evals; i++)
		if (i == 0 || co->evals[i].baseline != co->evals[i - 1].baseline)
			cJSON_AddItemToArray(bl, baseline_json(co->evals[i].baseline));
	runs = cJSON_AddArrayToObject(o, "runs");
	for (size_t i = 0; i < co->n_evals; i++)
		cJSON_AddItemToArray(runs, run_json(&co->evals[i]));
	if (co->has_cmp)
		cJSON_AddItemToObject(o, "comparison", comparison_json(&co->cmp));
	else
		cJSON_AddNullToObject(o, "comparison");
	count_verdicts(co, n);
	v = cJSON_AddObjectToObject(o, "verdicts");
	for (size_t k = 0; k < N_LABELS; k++)
		add_num(v, labels[k], (double)n[k]);
	text = cJSON_Print(o);
	cJSON_Delete(o);
	if (!text)
		return cli_error(NULL, "out of memory");
	fprintf(out, "%s\n", text);
	free(text);
	return ferror(out) ? cli_error("stdout could not take it: a closed pipe or a full disk",
				       "writing the JSON failed") : 0;
}
