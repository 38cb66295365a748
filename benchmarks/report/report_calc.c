/*
 * report_calc.c - the arithmetic of `moebench report` (report.h): a measured run's
 * tokens/s per GPU, model FLOPs per token, MFU and GPU-hours; a published run's rate
 * and its MFU under each FLOP convention; one beside the other with a verdict. FLOPs
 * per token are model/accounting.c's (the one function every command uses), MFU and
 * cost claims.c's.
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claims.h"
#include "status.h"

const char *report_conv_name(enum report_conv c)
{
	static const char *const names[REPORT_CONV_COUNT] = {
		"causal+mtp", "causal", "full+mtp", "full", "6n+mtp", "6n"
	};
	return c < REPORT_CONV_COUNT ? names[c] : "?";
}

const char *report_verdict_name(enum report_verdict v)
{
	return v == REPORT_AT_OR_ABOVE ? "at_or_above" : v == REPORT_BELOW ? "below" : "n/a";
}

/* set_peak fills a denominator, NaN with its reason when the value is unknown. */
static void set_peak(struct report_peak *p, double tflops, const char *source)
{
	p->tflops = tflops > 0 && isfinite(tflops) ? tflops : NAN;
	snprintf(p->source, sizeof(p->source), "%s", source ? source : "unknown");
}

int report_figures(const struct report_meas *m, const struct report_peak *meas_bf16,
		   const struct report_peak *meas_fp8, struct report_figs *out)
{
	struct model_summary sum;
	char src[200];
	int err;

	memset(out, 0, sizeof(*out));
	if (m->gpus < 1 || !(m->tokens_per_s > 0))
		return MB_ERR_ARG;
	if ((err = model_flops_per_token(&m->cfg, m->cfg.seq_len, m->cfg.mtp_depth, 0,
					 &out->flops)) ||
	    (err = model_summarize(&m->cfg, m->cfg.seq_len, m->cfg.mtp_depth, &sum)))
		return err;
	out->flops_6n = (double)sum.flops_per_token_6n;
	out->tokens_per_gpu_s = m->tokens_per_s / (double)m->gpus;
	out->tflops_per_gpu = out->tokens_per_gpu_s * (double)out->flops.total / 1e12;
	out->fp8 = strcmp(m->precision, "fp8") == 0;
	snprintf(src, sizeof(src), "no datasheet entry for '%s' (model/hardware.c)", m->device);
	set_peak(&out->bf16_ds, m->hw ? m->hw->peak_bf16_tflops : NAN, m->hw ? m->hw->source : src);
	set_peak(&out->fp8_ds, m->hw ? m->hw->peak_fp8_tflops : NAN, m->hw ? m->hw->source : src);
	bool mb = meas_bf16 && meas_bf16->source[0], mf = meas_fp8 && meas_fp8->source[0];
	set_peak(&out->bf16_meas, mb ? meas_bf16->tflops : NAN,
		 mb ? meas_bf16->source : "no peak record of this device with a BF16 (CPU: SGEMM) "
		 "rate given");
	set_peak(&out->fp8_meas, mf ? meas_fp8->tflops : NAN,
		 mf ? meas_fp8->source : "no peak record of this device with an FP8 rate given");
	out->mfu_bf16_ds = model_claim_mfu(out->tflops_per_gpu, out->bf16_ds.tflops);
	out->mfu_bf16_meas = model_claim_mfu(out->tflops_per_gpu, out->bf16_meas.tflops);
	out->mfu_fp8_ds = out->fp8 ? model_claim_mfu(out->tflops_per_gpu, out->fp8_ds.tflops) : NAN;
	out->mfu_fp8_meas = out->fp8 ? model_claim_mfu(out->tflops_per_gpu, out->fp8_meas.tflops)
				     : NAN;
	return MB_OK;
}

/* same_series tells whether two scale rows belong to one sweep. */
static bool same_series(const struct report_meas *a, const struct report_meas *b)
{
	return !strcmp(a->kind, "scale") && !strcmp(b->kind, "scale") &&
	       !strcmp(a->mode, b->mode) && !strcmp(a->cfg.name, b->cfg.name) &&
	       !strcmp(a->precision, b->precision) && a->cfg.seq_len == b->cfg.seq_len;
}

void report_scaling(const struct report_meas *meas, struct report_figs *figs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t base = i;
		figs[i].scaling_eff = NAN;
		figs[i].scaling_base_gpus = 0;
		if (strcmp(meas[i].kind, "scale") != 0)
			continue;
		for (size_t k = 0; k < n; k++)
			if (same_series(&meas[i], &meas[k]) && meas[k].gpus < meas[base].gpus)
				base = k;
		/* NOTE: per-GPU work, as `scale` takes it: a weak sweep that grows the model
		 * (scale --grow) does more FLOPs per token at more GPUs */
		double grown = meas[i].flops_recorded / meas[base].flops_recorded;
		figs[i].scaling_eff = figs[i].tokens_per_gpu_s * (isfinite(grown) ? grown : 1) /
				      figs[base].tokens_per_gpu_s;
		figs[i].scaling_base_gpus = meas[base].gpus;
	}
}

bool report_pub_has_rate(const struct model_baseline_run *run)
{
	return (isfinite(model_run_figure(run, MODEL_FIG_GPU_HOURS)) &&
		isfinite(model_run_figure(run, MODEL_FIG_TOKENS))) ||
	       isfinite(model_run_figure(run, MODEL_FIG_TOKENS_PER_GPU_S)) ||
	       isfinite(model_run_figure(run, MODEL_FIG_TFLOPS_PER_GPU)) ||
	       isfinite(model_run_figure(run, MODEL_FIG_MFU_BF16));
}

/* conv_flops counts FLOPs per token of cfg under convention c at seq with mtp modules
 * (0 for the conventions without MTP). */
static int conv_flops(const struct model_config *cfg, int64_t seq, int64_t mtp,
		      enum report_conv c, double *out)
{
	bool with_mtp = c == REPORT_CONV_CAUSAL_MTP || c == REPORT_CONV_FULL_MTP ||
			c == REPORT_CONV_6N_MTP;
	unsigned flags = c == REPORT_CONV_FULL_MTP || c == REPORT_CONV_FULL ? MODEL_FLOPS_NONCAUSAL : 0;
	struct model_flops fl;
	struct model_summary sum;
	int err;

	if (c == REPORT_CONV_6N_MTP || c == REPORT_CONV_6N) {
		err = model_summarize(cfg, seq, with_mtp ? mtp : 0, &sum);
		*out = (double)sum.flops_per_token_6n;
		return err;
	}
	err = model_flops_per_token(cfg, seq, with_mtp ? mtp : 0, flags, &fl);
	*out = (double)fl.total;
	return err;
}

/* pub_rate sets the convention-free rate (tokens per GPU-second: from GPU-hours and
 * tokens, else stated) and the citation. */
static void pub_rate(const struct model_baseline_run *run, struct report_pub *p)
{
	const struct model_figure_value *gh = &run->fig[MODEL_FIG_GPU_HOURS];
	const struct model_figure_value *tps = &run->fig[MODEL_FIG_TOKENS_PER_GPU_S];
	const struct model_figure_value *tf = &run->fig[MODEL_FIG_TFLOPS_PER_GPU];
	const struct model_figure_value *mfu = &run->fig[MODEL_FIG_MFU_BF16];
	/* the citation of the figure the published MFU comes from (pub_published) */
	const struct model_figure_value *use = mfu->present ? mfu : tf->present ? tf :
					       gh->present ? gh : tps;

	p->tokens_per_gpu_s = NAN;
	if (isfinite(p->gpu_hours) && isfinite(p->tokens) && p->gpu_hours > 0)
		p->tokens_per_gpu_s = p->tokens / (p->gpu_hours * 3600.0);
	else if (tps->present)
		p->tokens_per_gpu_s = tps->value;
	p->cite = use->present ? use->ref : NULL;
	p->where = use->present ? use->where : NULL;
}

/* pub_budget picks the token budget: the run's tokens, else the first run of its
 * baseline that states tokens (Llama 3's Table 4 rows take the pre-training's). */
static void pub_budget(const struct baselines_eval *e, struct report_pub *p)
{
	p->budget_tokens = p->tokens;
	p->budget_from = e->run->name;
	p->budget_baseline = e->baseline->name;
	for (size_t i = 0; !isfinite(p->budget_tokens) && i < e->baseline->n_runs; i++) {
		double t = model_run_figure(&e->baseline->runs[i], MODEL_FIG_TOKENS);
		if (isfinite(t)) {
			p->budget_tokens = t;
			p->budget_from = e->baseline->runs[i].name;
			p->budget_baseline = e->baseline->name;
		}
	}
}

/* pub_published picks the MFU a reader holds for the run, and the convention nearest
 * to a stated one. */
static void pub_published(struct report_pub *p)
{
	p->closest = -1;
	if (isfinite(p->mfu_stated)) {
		p->mfu_published = p->mfu_stated;
		p->published_as = "stated MFU (the source's FLOP count)";
	} else if (isfinite(p->tflops_stated) && isfinite(p->peak)) {
		p->mfu_published = p->tflops_stated / p->peak;
		p->published_as = "stated TFLOP/s per GPU / BF16 peak (the source's FLOP count)";
	} else {
		p->mfu_published = p->mfu[REPORT_CONV_CAUSAL_MTP];
		p->published_as = "implied by GPU-hours and tokens (moebench's count)";
		return;
	}
	double best = INFINITY;
	for (int c = 0; c < REPORT_CONV_COUNT; c++)
		if (isfinite(p->mfu[c]) && fabs(p->mfu[c] - p->mfu_published) < best) {
			best = fabs(p->mfu[c] - p->mfu_published);
			p->closest = c;
		}
}

int report_pub_fill(const struct baselines_eval *e, struct report_pub *p)
{
	const struct model_baseline_run *run = e->run;
	int err;

	memset(p, 0, sizeof(*p));
	p->eval = e;
	p->gpus = model_run_figure(run, MODEL_FIG_GPUS);
	p->tokens = model_run_figure(run, MODEL_FIG_TOKENS);
	p->gpu_hours = model_run_figure(run, MODEL_FIG_GPU_HOURS);
	p->tflops_stated = model_run_figure(run, MODEL_FIG_TFLOPS_PER_GPU);
	p->mfu_stated = model_run_figure(run, MODEL_FIG_MFU_BF16);
	p->peak = e->hw ? e->hw->peak_bf16_tflops : NAN;
	if (!(p->peak > 0))
		p->peak = NAN;
	pub_rate(run, p);
	for (int c = 0; c < REPORT_CONV_COUNT; c++) {
		if ((err = conv_flops(e->cfg, e->report.seq, e->report.mtp_depth, c, &p->flops[c])))
			return err;
		p->mfu[c] = p->tokens_per_gpu_s * p->flops[c] / 1e12 / p->peak;
	}
	pub_budget(e, p);
	pub_published(p);
	return MB_OK;
}

void report_compare(const struct report_figs *f, const struct report_pub *p, double tokens,
		    double usd_per_gpu_hour, double tolerance, struct report_cmp *out)
{
	out->tokens = isfinite(tokens) ? tokens : p->budget_tokens;
	out->gpu_hours = out->tokens / f->tokens_per_gpu_s / 3600.0;
	out->cost_usd = model_claim_cost_usd(out->gpu_hours, usd_per_gpu_hour);
	out->mfu_ours = isfinite(f->mfu_bf16_ds) ? f->mfu_bf16_ds : f->mfu_bf16_meas;
	out->gpu_hours_at_mfu = out->tokens * p->flops[REPORT_CONV_CAUSAL_MTP] /
				(out->mfu_ours * p->peak * 1e12) / 3600.0;
	if (!isfinite(out->mfu_ours) || !isfinite(p->mfu_published))
		out->verdict = REPORT_NA;
	else if (out->mfu_ours >= p->mfu_published * (1.0 - tolerance))
		out->verdict = REPORT_AT_OR_ABOVE;
	else
		out->verdict = REPORT_BELOW;
}

/* chosen tells whether baseline b is among names (NULL: every baseline is). */
static bool chosen(const struct model_baseline *b, const char *const *names)
{
	for (size_t i = 0; names && names[i]; i++)
		if (strcmp(names[i], b->name) == 0)
			return true;
	return !names;
}

/* budget_from_model gives a run without a token budget that of another chosen run
 * of the same model (Megatron-Bridge's DeepSeek-V3 row takes DeepSeek-V3's 14.8T). */
static void budget_from_model(struct report *rep)
{
	for (size_t j = 0; j < rep->n_pub; j++) {
		struct report_pub *p = &rep->pubs[j];
		for (size_t k = 0; !isfinite(p->budget_tokens) && k < rep->n_pub; k++) {
			const struct report_pub *q = &rep->pubs[k];
			if (isfinite(q->tokens) && !strcmp(q->eval->run->model, p->eval->run->model)) {
				p->budget_tokens = q->tokens;
				p->budget_from = q->eval->run->name;
				p->budget_baseline = q->eval->baseline->name;
			}
		}
	}
}

/* build_pubs evaluates every run with a rate of the chosen baselines. */
static int build_pubs(struct report *rep, const struct baselines *set,
		      const char *const *names, char *why, size_t why_len)
{
	size_t n = baselines_run_count(set);
	int err;

	rep->evals = calloc(n ? n : 1, sizeof(*rep->evals));
	rep->pubs = calloc(n ? n : 1, sizeof(*rep->pubs));
	if (!rep->evals || !rep->pubs)
		return MB_ERR_NOMEM;
	for (size_t i = 0; i < set->n; i++) {
		if (!chosen(set->items[i], names))
			continue;
		for (size_t r = 0; r < set->items[i]->n_runs; r++) {
			if (!report_pub_has_rate(&set->items[i]->runs[r]))
				continue;
			struct baselines_eval *e = &rep->evals[rep->n_pub];
			if ((err = baselines_evaluate(set->items[i], r, rep->usd, false, rep->tolerance,
						      e, why, why_len)) ||
			    (err = report_pub_fill(e, &rep->pubs[rep->n_pub])))
				return err;
			rep->n_pub++;
		}
	}
	budget_from_model(rep);
	return MB_OK;
}

int report_build(struct report *rep, const struct baselines *set, const char *const *names,
		 char *why, size_t why_len)
{
	struct report_inputs *in = &rep->in;
	int err;

	for (size_t i = 0; i < in->n_meas; i++) {
		const struct report_device_peaks *pk = report_peaks_of(in, in->meas[i].device);
		if ((err = report_figures(&in->meas[i], pk ? &pk->bf16 : NULL, pk ? &pk->fp8 : NULL,
					  &rep->figs[i]))) {
			snprintf(why, why_len, "%s: %s: the accounting cannot count this "
				 "configuration", in->meas[i].origin, in->meas[i].label);
			return err;
		}
	}
	report_scaling(in->meas, rep->figs, in->n_meas);
	if ((err = build_pubs(rep, set, names, why, why_len)))
		return err;
	rep->cmps = calloc(in->n_meas * rep->n_pub + 1, sizeof(*rep->cmps));
	if (!rep->cmps)
		return MB_ERR_NOMEM;
	for (size_t i = 0; i < in->n_meas; i++)
		for (size_t j = 0; j < rep->n_pub; j++)
			report_compare(&rep->figs[i], &rep->pubs[j], rep->tokens, rep->usd,
				       rep->tolerance, &rep->cmps[i * rep->n_pub + j]);
	return MB_OK;
}

void report_free(struct report *rep)
{
	free(rep->evals);
	free(rep->pubs);
	free(rep->cmps);
	rep->evals = NULL;
	rep->pubs = NULL;
	rep->cmps = NULL;
}
