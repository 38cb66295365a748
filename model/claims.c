/*
 * claims.c - the arithmetic of training-cost claims (see claims.h for the formulas),
 * and the figure-by-figure evaluation of a baseline run: every figure the run states
 * beside what the model config, the hardware peaks and the run's other figures imply.
 */
#include "claims.h"
#include "accounting.h"
#include "status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SECONDS_PER_HOUR 3600.0

/* known: a stated, usable positive number. */
static bool known(double x)
{
	return isfinite(x) && x > 0;
}

double model_claim_mfu(double tflops_per_gpu, double peak_tflops)
{
	if (!known(peak_tflops) || !isfinite(tflops_per_gpu))
		return NAN;
	return tflops_per_gpu / peak_tflops;
}

double model_claim_cost_usd(double gpu_hours, double usd_per_gpu_hour)
{
	return gpu_hours * usd_per_gpu_hour;
}

int model_claim_from_gpu_hours(double gpu_hours, double tokens, double flops_per_token,
			       double flops_per_token_noncausal, double peak_bf16_tflops,
			       double peak_fp8_tflops, struct model_claim_hours *out)
{
	if (!out || !known(gpu_hours) || !known(tokens) || !known(flops_per_token) ||
	    !known(flops_per_token_noncausal))
		return MB_ERR_ARG;
	out->tokens_per_gpu_s = tokens / (gpu_hours * SECONDS_PER_HOUR);
	out->tflops_per_gpu = out->tokens_per_gpu_s * flops_per_token / 1e12;
	out->tflops_per_gpu_noncausal = out->tokens_per_gpu_s * flops_per_token_noncausal / 1e12;
	out->mfu_bf16 = model_claim_mfu(out->tflops_per_gpu, peak_bf16_tflops);
	out->mfu_fp8 = model_claim_mfu(out->tflops_per_gpu, peak_fp8_tflops);
	out->mfu_bf16_noncausal = model_claim_mfu(out->tflops_per_gpu_noncausal, peak_bf16_tflops);
	out->mfu_fp8_noncausal = model_claim_mfu(out->tflops_per_gpu_noncausal, peak_fp8_tflops);
	out->total_flops = tokens * flops_per_token;
	return MB_OK;
}

int model_claim_from_tflops(double tflops_per_gpu, double flops_per_token, double tokens,
			    double gpu_hours_reported, double peak_bf16_tflops,
			    double peak_fp8_tflops, struct model_claim_rate *out)
{
	if (!out || !known(tflops_per_gpu) || !known(flops_per_token))
		return MB_ERR_ARG;
	out->mfu_bf16 = model_claim_mfu(tflops_per_gpu, peak_bf16_tflops);
	out->mfu_fp8 = model_claim_mfu(tflops_per_gpu, peak_fp8_tflops);
	out->tokens_per_gpu_s = tflops_per_gpu * 1e12 / flops_per_token;
	out->gpu_hours_needed = known(tokens) ?
		tokens / out->tokens_per_gpu_s / SECONDS_PER_HOUR : NAN;
	out->goodput = known(gpu_hours_reported) ?
		out->gpu_hours_needed / gpu_hours_reported : NAN;
	out->gpu_hours_lost = gpu_hours_reported - out->gpu_hours_needed;
	return MB_OK;
}

int model_claim_compare(const struct model_claim_side *a, const struct model_claim_side *b,
			struct model_claim_ratio *out)
{
	if (!a || !b || !out || !known(a->gpu_hours) || !known(b->gpu_hours) ||
	    !known(a->tokens) || !known(b->tokens) || !known(a->flops_per_token) ||
	    !known(b->flops_per_token))
		return MB_ERR_ARG;
	out->gpu_hours = a->gpu_hours / b->gpu_hours;
	out->tokens = a->tokens / b->tokens;
	out->flops_per_token = a->flops_per_token / b->flops_per_token;
	out->total_flops = out->tokens * out->flops_per_token;
	out->tflops_a = a->tokens * a->flops_per_token / (a->gpu_hours * SECONDS_PER_HOUR) / 1e12;
	out->tflops_b = b->tokens * b->flops_per_token / (b->gpu_hours * SECONDS_PER_HOUR) / 1e12;
	out->rate = out->tflops_b / out->tflops_a;
	out->mfu_a = model_claim_mfu(out->tflops_a, a->peak_tflops);
	out->mfu_b = model_claim_mfu(out->tflops_b, b->peak_tflops);
	out->mfu = out->mfu_b / out->mfu_a;
	out->peak = known(a->peak_tflops) && known(b->peak_tflops) ?
		b->peak_tflops / a->peak_tflops : NAN;
	return MB_OK;
}

const char *model_verdict_name(enum model_verdict v)
{
	switch (v) {
	case MODEL_VERDICT_NA: return "n/a";
	case MODEL_VERDICT_CONSISTENT: return "consistent";
	case MODEL_VERDICT_INCONSISTENT: return "inconsistent";
	}
	return "?";
}

/* ---- evaluation of a baseline run ---- */

/* The state of one evaluation: the run, its inputs, and what is known so far. */
struct eval {
	const struct model_baseline_run *run;
	const struct model_config *cfg;
	const struct model_claim_inputs *in;
	struct model_claim_report *out;
	bool used[MODEL_FIG_COUNT];  /* figures already shown in a row */
	struct model_summary sum;
	double fpt, fpt_nc;          /* FLOPs per token, causal and not */
};

/* fig reads a stated figure (NaN if absent). */
static double fig(const struct eval *e, enum model_figure f)
{
	return model_run_figure(e->run, f);
}

/* judge sets a row's relative difference and verdict from its two sides. */
static void judge(struct model_claim_row *r, double tolerance)
{
	bool ok;

	r->rel_diff = NAN;
	r->verdict = MODEL_VERDICT_NA;
	if (isnan(r->claimed) || isnan(r->recomputed) || r->claimed == 0)
		return;
	r->rel_diff = (r->recomputed - r->claimed) / r->claimed;
	if (r->bound == MODEL_BOUND_AT_LEAST)
		ok = r->rel_diff >= -tolerance;
	else if (r->bound == MODEL_BOUND_AT_MOST)
		ok = r->rel_diff <= tolerance;
	else
		ok = fabs(r->rel_diff) <= tolerance;
	r->verdict = ok ? MODEL_VERDICT_CONSISTENT : MODEL_VERDICT_INCONSISTENT;
}

/* add_row appends a row comparing figure f (or none, f < 0) with recomputed; label
 * names the row (NULL: the figure's name); how is printf-style. Returns the row, or
 * NULL when the report is full. */
static struct model_claim_row *add_row(struct eval *e, const char *label, int f,
				       const char *unit, double recomputed, const char *how, ...)
{
	struct model_claim_report *r = e->out;
	struct model_claim_row *row;
	va_list ap;

	if (r->n_rows == MODEL_CLAIM_ROWS_MAX)
		return NULL;
	row = &r->rows[r->n_rows++];
	memset(row, 0, sizeof(*row));
	row->figure = label ? label : model_figure_name((enum model_figure)f);
	row->unit = unit ? unit : model_figure_unit((enum model_figure)f);
	row->claimed = NAN;
	row->recomputed = recomputed;
	if (f >= 0 && e->run->fig[f].present) {
		const struct model_figure_value *v = &e->run->fig[f];
		row->claimed = v->value;
		row->bound = v->bound;
		row->ref = v->ref;
		row->where = v->where;
		e->used[f] = true;
	}
	va_start(ap, how);
	vsnprintf(row->how, sizeof(row->how), how, ap);
	va_end(ap);
	judge(row, e->in->tolerance);
	return row;
}

/* add_mfu appends an MFU row: tflops against a peak, or n/a when the hardware has no
 * known peak of that precision. */
static void add_mfu(struct eval *e, const char *label, int f, double tflops, double peak,
		    const char *what, bool noncausal)
{
	if (known(peak))
		add_row(e, label, f, "fraction", model_claim_mfu(tflops, peak),
			"%.1f TFLOP/s%s / %.1f %s peak", tflops,
			noncausal ? " (non-causal core)" : "", peak, what);
	else
		add_row(e, label, f, "fraction", NAN, "no %s peak known for %s", what,
			e->run->hardware);
}

/* eval_model compares the model figures the run states with the accounting. */
static void eval_model(struct eval *e)
{
	const char *mtp = e->sum.mtp_depth ? "with" : "without";

	if (e->run->fig[MODEL_FIG_PARAMS_TOTAL].present)
		add_row(e, NULL, MODEL_FIG_PARAMS_TOTAL, NULL, (double)e->sum.params_total,
			"counted from the config, MTP modules excluded");
	if (e->run->fig[MODEL_FIG_PARAMS_ACTIVE].present && e->cfg->routed_experts)
		add_row(e, NULL, MODEL_FIG_PARAMS_ACTIVE, NULL, (double)e->sum.params_active,
			"counted from the config: embedding, head, router, shared and %lld "
			"routed experts", (long long)e->cfg->activated_experts);
	else if (e->run->fig[MODEL_FIG_PARAMS_ACTIVE].present)
		add_row(e, NULL, MODEL_FIG_PARAMS_ACTIVE, NULL, (double)e->sum.params_active,
			"counted from the config (dense: every parameter)");
	if (e->run->fig[MODEL_FIG_KV_CACHE_BYTES_PER_TOKEN].present)
		add_row(e, NULL, MODEL_FIG_KV_CACHE_BYTES_PER_TOKEN, NULL,
			(double)e->sum.kv_cache_bytes_per_token, "BF16, all main layers");
	if (e->run->fig[MODEL_FIG_FLOPS_PER_TOKEN].present)
		add_row(e, NULL, MODEL_FIG_FLOPS_PER_TOKEN, NULL, e->fpt,
			"training, causal, seq %lld, %s MTP", (long long)e->sum.seq, mtp);
}

/* eval_totals compares the stated total training FLOPs with tokens x FLOPs/token,
 * counted both ways (Megatron terms and 6N). */
static void eval_totals(struct eval *e)
{
	double tokens = fig(e, MODEL_FIG_TOKENS);

	if (!known(tokens))
		return;
	add_row(e, NULL, MODEL_FIG_TOTAL_FLOPS, NULL, tokens * e->fpt,
		"%.4g tokens x %.4g FLOP/token (Megatron terms)", tokens, e->fpt);
	add_row(e, "total_flops_6n", MODEL_FIG_TOTAL_FLOPS, NULL,
		tokens * (double)e->sum.flops_per_token_6n, "%.4g tokens x 6 x %.4g activated "
		"parameters", tokens, (double)e->sum.flops_per_token_6n / 6);
}

/* eval_hours derives the achieved rate from GPU-hours and tokens, and the figures
 * stated per trillion tokens and in dollars. */
static void eval_hours(struct eval *e)
{
	struct model_claim_hours h;
	const struct model_claim_inputs *in = e->in;
	double gh = fig(e, MODEL_FIG_GPU_HOURS), tokens = fig(e, MODEL_FIG_TOKENS);
	double gpus = fig(e, MODEL_FIG_GPUS), per_t;

	if (model_claim_from_gpu_hours(gh, tokens, e->fpt, e->fpt_nc, in->peak_bf16_tflops,
				       in->peak_fp8_tflops, &h))
		return;
	add_row(e, NULL, MODEL_FIG_TOKENS_PER_GPU_S, NULL, h.tokens_per_gpu_s,
		"%.4g tokens / (%.4g GPU-hours x 3600 s)", tokens, gh);
	add_row(e, "tflops_per_gpu_from_gpu_hours", -1, "TFLOP/s", h.tflops_per_gpu,
		"%.1f tokens/GPU-s x %.4g FLOP/token", h.tokens_per_gpu_s, e->fpt);
	add_mfu(e, "mfu_bf16_from_gpu_hours", -1, h.tflops_per_gpu, in->peak_bf16_tflops,
		"BF16", false);
	add_mfu(e, "mfu_fp8_from_gpu_hours", -1, h.tflops_per_gpu, in->peak_fp8_tflops, "FP8",
		false);
	add_mfu(e, "mfu_bf16_noncausal_from_gpu_hours", -1, h.tflops_per_gpu_noncausal,
		in->peak_bf16_tflops, "BF16", true);
	add_mfu(e, "mfu_fp8_noncausal_from_gpu_hours", -1, h.tflops_per_gpu_noncausal,
		in->peak_fp8_tflops, "FP8", true);
	per_t = gh / (tokens / 1e12);
	if (e->run->fig[MODEL_FIG_GPU_HOURS_PER_TRILLION_TOKENS].present)
		add_row(e, NULL, MODEL_FIG_GPU_HOURS_PER_TRILLION_TOKENS, NULL, per_t,
			"%.4g GPU-hours / %.4g trillion tokens", gh, tokens / 1e12);
	if (e->run->fig[MODEL_FIG_DAYS_PER_TRILLION_TOKENS].present)
		add_row(e, NULL, MODEL_FIG_DAYS_PER_TRILLION_TOKENS, NULL,
			known(gpus) ? per_t / gpus / 24 : NAN, "%.4g GPU-hours per trillion "
			"tokens / %.0f GPUs / 24 h", per_t, gpus);
}

/* eval_cost prices the stated GPU-hours at the run's own $/GPU-hour, else the
 * caller's; the caller's wins when it overrides (and the row says which it replaced). */
static void eval_cost(struct eval *e)
{
	double gh = fig(e, MODEL_FIG_GPU_HOURS), usd = fig(e, MODEL_FIG_USD_PER_GPU_HOUR);
	double source = usd;
	bool stated = known(usd), over = stated && e->in->usd_override;
	char why[64];

	if (!known(gh))
		return;
	if (!stated || over)
		usd = e->in->usd_per_gpu_hour;
	if (!known(usd) && !e->run->fig[MODEL_FIG_COST_USD].present)
		return;
	e->used[MODEL_FIG_USD_PER_GPU_HOUR] = stated && !over;
	if (over)
		snprintf(why, sizeof(why), "--usd-per-gpu-hour, over the source's $%.2f", source);
	else
		snprintf(why, sizeof(why), "%s", stated ? "the source's price" : "moebench's price");
	struct model_claim_row *row = add_row(e, NULL, MODEL_FIG_COST_USD, NULL,
					      model_claim_cost_usd(gh, usd),
					      "%.4g GPU-hours x $%.2f/GPU-hour (%s)", gh, usd, why);
	/* NOTE: at another price than the source's the cost is a what-if, not a check of
	 * the stated cost: no verdict. */
	if (row && over)
		row->verdict = MODEL_VERDICT_NA;
}

/* stated_rate picks the run's stated throughput, in TFLOP/s per GPU: the TFLOP/s
 * figure, else tokens per GPU-second x FLOPs/token, else MFU x BF16 peak. Sets *from
 * to the figure used; NaN when the run states none. */
static double stated_rate(const struct eval *e, enum model_figure *from)
{
	if (known(fig(e, MODEL_FIG_TFLOPS_PER_GPU))) {
		*from = MODEL_FIG_TFLOPS_PER_GPU;
		return fig(e, MODEL_FIG_TFLOPS_PER_GPU);
	}
	if (known(fig(e, MODEL_FIG_TOKENS_PER_GPU_S))) {
		*from = MODEL_FIG_TOKENS_PER_GPU_S;
		return fig(e, MODEL_FIG_TOKENS_PER_GPU_S) * e->fpt / 1e12;
	}
	*from = MODEL_FIG_MFU_BF16;
	return fig(e, MODEL_FIG_MFU_BF16) * e->in->peak_bf16_tflops;
}

/* eval_rate_cross checks the stated rate figures against each other: TFLOP/s against
 * tokens/s x FLOPs/token or MFU x peak, tokens/s and MFU against TFLOP/s. */
static void eval_rate_cross(struct eval *e, double rate, enum model_figure from)
{
	double tps = fig(e, MODEL_FIG_TOKENS_PER_GPU_S), mfu = fig(e, MODEL_FIG_MFU_BF16);
	double peak = e->in->peak_bf16_tflops;

	if (from == MODEL_FIG_TFLOPS_PER_GPU && known(tps))
		add_row(e, NULL, MODEL_FIG_TFLOPS_PER_GPU, NULL, tps * e->fpt / 1e12,
			"stated %.0f tokens/GPU-s x %.4g FLOP/token", tps, e->fpt);
	else if (from == MODEL_FIG_TFLOPS_PER_GPU)
		add_row(e, NULL, MODEL_FIG_TFLOPS_PER_GPU, NULL, mfu * peak,
			"stated MFU %.4g x %.1f BF16 peak", mfu, peak);
	else
		add_row(e, NULL, MODEL_FIG_TFLOPS_PER_GPU, NULL, rate, "stated %s x %s",
			model_figure_name(from), from == MODEL_FIG_MFU_BF16 ? "BF16 peak" :
			"FLOP/token");
	if (from != MODEL_FIG_TOKENS_PER_GPU_S)
		add_row(e, "tokens_per_gpu_s_at_stated_rate", MODEL_FIG_TOKENS_PER_GPU_S,
			NULL, rate * 1e12 / e->fpt, "%.1f TFLOP/s / %.4g FLOP/token", rate,
			e->fpt);
	if (from != MODEL_FIG_MFU_BF16)
		add_mfu(e, NULL, MODEL_FIG_MFU_BF16, rate, peak, "BF16", false);
	add_mfu(e, "mfu_fp8", -1, rate, e->in->peak_fp8_tflops, "FP8", false);
}

/* eval_rate derives what the stated throughput implies: the figures it should agree
 * with, and the GPU-hours the tokens need at that rate against those reported. */
static void eval_rate(struct eval *e)
{
	struct model_claim_rate r;
	struct model_claim_row *row;
	enum model_figure from;
	double rate = stated_rate(e, &from), gh = fig(e, MODEL_FIG_GPU_HOURS);
	double tokens = fig(e, MODEL_FIG_TOKENS);

	if (!known(rate))
		return;
	eval_rate_cross(e, rate, from);
	if (model_claim_from_tflops(rate, e->fpt, tokens, gh, e->in->peak_bf16_tflops,
				    e->in->peak_fp8_tflops, &r) || !known(tokens))
		return;
	row = add_row(e, "gpu_hours_at_stated_rate", MODEL_FIG_GPU_HOURS, NULL,
		      r.gpu_hours_needed, "%.4g tokens / (%.1f tokens/GPU-s x 3600 s)", tokens,
		      r.tokens_per_gpu_s);
	/* NOTE: needing fewer GPU-hours than reported is the expected goodput gap (the
	 * goodput row measures it); needing more would contradict the stated rate. */
	if (row) {
		row->bound = MODEL_BOUND_AT_MOST;
		judge(row, e->in->tolerance);
	}
	if (known(gh))
		add_row(e, NULL, MODEL_FIG_GOODPUT, NULL, r.goodput, "%.4g GPU-hours needed / "
			"%.4g reported; %.4g lost", r.gpu_hours_needed, gh, r.gpu_hours_lost);
}

/* eval_rest lists, unrecomputed, every stated figure no row has shown yet, so that
 * the report carries all of the run's figures with their references. */
static void eval_rest(struct eval *e)
{
	for (int f = 0; f < MODEL_FIG_COUNT; f++)
		if (e->run->fig[f].present && !e->used[f])
			add_row(e, NULL, f, NULL, NAN, "stated");
}

int model_claims_evaluate(const struct model_baseline_run *run, const struct model_config *cfg,
			  const struct model_claim_inputs *in, struct model_claim_report *out)
{
	struct eval e;
	double seq;
	int64_t mtp;
	int err;

	if (!run || !cfg || !in || !out)
		return MB_ERR_ARG;
	seq = model_run_figure(run, MODEL_FIG_SEQ_LEN);
	mtp = run->mtp_depth >= 0 ? run->mtp_depth : cfg->mtp_depth;
	memset(&e, 0, sizeof(e));
	memset(out, 0, sizeof(*out));
	e.run = run;
	e.cfg = cfg;
	e.in = in;
	e.out = out;
	err = model_summarize(cfg, known(seq) ? (int64_t)seq : cfg->seq_len, mtp, &e.sum);
	if (err)
		return err;
	out->seq = e.sum.seq;
	out->mtp_depth = e.sum.mtp_depth;
	out->flops_per_token = e.fpt = (double)e.sum.flops_per_token_train;
	out->flops_per_token_noncausal = e.fpt_nc = (double)e.sum.flops_per_token_train_noncausal;
	out->flops_per_token_6n = (double)e.sum.flops_per_token_6n;
	eval_model(&e);
	eval_totals(&e);
	eval_hours(&e);
	eval_cost(&e);
	eval_rate(&e);
	eval_rest(&e);
	return MB_OK;
}

int model_claims_side(const struct model_baseline_run *run, const struct model_config *cfg,
		      double peak_tflops, struct model_claim_side *out)
{
	struct model_summary sum;
	double seq = model_run_figure(run, MODEL_FIG_SEQ_LEN);
	int64_t mtp;
	int err;

	if (!run || !cfg || !out)
		return MB_ERR_ARG;
	mtp = run->mtp_depth >= 0 ? run->mtp_depth : cfg->mtp_depth;
	err = model_summarize(cfg, known(seq) ? (int64_t)seq : cfg->seq_len, mtp, &sum);
	if (err)
		return err;
	out->gpu_hours = model_run_figure(run, MODEL_FIG_GPU_HOURS);
	out->tokens = model_run_figure(run, MODEL_FIG_TOKENS);
	out->flops_per_token = (double)sum.flops_per_token_train;
	out->peak_tflops = peak_tflops;
	return known(out->gpu_hours) && known(out->tokens) ? MB_OK : MB_ERR_ARG;
}
