/*
 * claims.h - published training-cost claims (the JSON files of results/baselines/) and
 * the arithmetic that recomputes what they imply from a model config and hardware peaks.
 *
 * A baseline file (format in results/baselines/README.md) holds runs; a run names a
 * model preset and a hardware key and states figures, each with a reference and a
 * locator (table or section). Peaks are arguments here: the hardware table lives in
 * harness/. A peak that is unknown is passed as NaN (or <= 0) and every MFU that needs
 * it comes out NaN ("n/a"), never a made-up number.
 *
 * The arithmetic (docs/ARCHITECTURE.md, "Measuring rules"):
 *   tokens per GPU-second = tokens / (GPU-hours * 3600)
 *   achieved FLOP/s per GPU = tokens per GPU-second * FLOPs per token
 *   MFU = achieved FLOP/s per GPU / dense peak of the stated precision
 *   GPU-hours needed at R FLOP/s = tokens * FLOPs per token / R / 3600
 *   goodput = GPU-hours needed / GPU-hours reported
 *   GPU-hours(a) / GPU-hours(b) = [F(a) / F(b)] * [R(b) / R(a)], F the total training
 *   FLOPs, R the achieved FLOP/s per GPU, and R = MFU * peak.
 */
#ifndef MB_MODEL_CLAIMS_H
#define MB_MODEL_CLAIMS_H

#include "model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define MODEL_BASELINE_SCHEMA "moebench.baseline/1"

/* The figures a run may state; their JSON names are model_figure_name's. */
enum model_figure {
	MODEL_FIG_PARAMS_TOTAL,
	MODEL_FIG_PARAMS_ACTIVE,
	MODEL_FIG_KV_CACHE_BYTES_PER_TOKEN,
	MODEL_FIG_FLOPS_PER_TOKEN,
	MODEL_FIG_TOKENS,
	MODEL_FIG_SEQ_LEN,
	MODEL_FIG_BATCH_TOKENS,
	MODEL_FIG_TOTAL_FLOPS,
	MODEL_FIG_GPUS,
	MODEL_FIG_TP,
	MODEL_FIG_CP,
	MODEL_FIG_PP,
	MODEL_FIG_EP,
	MODEL_FIG_DP,
	MODEL_FIG_GPU_HOURS,
	MODEL_FIG_GPU_HOURS_PER_TRILLION_TOKENS,
	MODEL_FIG_DAYS_PER_TRILLION_TOKENS,
	MODEL_FIG_COST_USD,
	MODEL_FIG_USD_PER_GPU_HOUR,
	MODEL_FIG_TFLOPS_PER_GPU,
	MODEL_FIG_TOKENS_PER_GPU_S,
	MODEL_FIG_MFU_BF16,
	MODEL_FIG_GOODPUT,
	MODEL_FIG_INTERRUPTIONS,
	MODEL_FIG_UNEXPECTED_INTERRUPTIONS,
	MODEL_FIG_PERIOD_DAYS,
	MODEL_FIG_WEAK_SCALING_EFFICIENCY,
	MODEL_FIG_STRONG_SCALING_EFFICIENCY,
	MODEL_FIG_COUNT
};

/* How a stated figure bounds the truth: "about" (rounded), "at_least", "at_most". */
enum model_bound { MODEL_BOUND_ABOUT, MODEL_BOUND_AT_LEAST, MODEL_BOUND_AT_MOST };

struct model_figure_value {
	bool present;
	double value;
	enum model_bound bound;
	const char *ref;    /* the reference's full text (from the file's "references") */
	const char *where;  /* table or section within it */
	const char *note;   /* or NULL */
};

struct model_baseline_run {
	const char *name;
	const char *model;      /* a preset name (checked when loading) */
	const char *hardware;   /* a hardware key, resolved by the caller */
	const char *precision;  /* "bf16", "fp8", or NULL when the source does not say */
	const char *note;       /* or NULL */
	int64_t mtp_depth;      /* MTP modules to count; -1: the preset's own */
	struct model_figure_value fig[MODEL_FIG_COUNT];
};

struct model_baseline {
	char *origin;           /* the file it came from */
	const char *name;
	const char *title;
	size_t n_runs;
	struct model_baseline_run *runs;
	cJSON *doc;             /* owns every string above but origin */
};

/* model_figure_name returns a figure's JSON name ("gpu_hours", ...), or "?". */
const char *model_figure_name(enum model_figure fig);
/* model_figure_unit returns its unit ("GPU-hours", "fraction", ...). */
const char *model_figure_unit(enum model_figure fig);
/* model_bound_name: "about", "at_least", "at_most". */
const char *model_bound_name(enum model_bound bound);

/* model_baseline_from_json reads a parsed baseline document. Every figure needs a
 * value and a known reference; unknown keys and figures are rejected. Messages name
 * origin and the field's path, e.g. "x.json: runs[1].figures.gpu_hours: missing
 * \"ref\"". On success *out owns doc (the caller must not delete it). Returns MB_OK,
 * MB_ERR_PARSE or MB_ERR_NOMEM. */
int model_baseline_from_json(cJSON *doc, const char *origin, struct model_baseline **out,
			     char *why, size_t why_len);
/* model_baseline_load reads, parses and checks a baseline file. Also MB_ERR_IO. */
int model_baseline_load(const char *path, struct model_baseline **out, char *why,
			size_t why_len);
/* model_baseline_free releases a baseline (NULL is fine). */
void model_baseline_free(struct model_baseline *b);
/* model_baseline_run_find returns the run of that name, or NULL. */
const struct model_baseline_run *model_baseline_run_find(const struct model_baseline *b,
							 const char *name);
/* model_run_figure returns the figure's value, or NaN when the run does not state it. */
double model_run_figure(const struct model_baseline_run *run, enum model_figure fig);

/* ---- the arithmetic: pure functions of numbers (claims.c) ---- */

/* What GPU-hours, tokens and FLOPs per token imply. */
struct model_claim_hours {
	double tokens_per_gpu_s;
	double tflops_per_gpu;             /* achieved, causal model FLOPs */
	double tflops_per_gpu_noncausal;   /* achieved, non-causal attention core */
	double mfu_bf16, mfu_fp8;          /* causal; NaN when the peak is unknown */
	double mfu_bf16_noncausal, mfu_fp8_noncausal;
	double total_flops;                /* tokens * FLOPs per token (causal) */
};

/* model_claim_from_gpu_hours. Returns MB_ERR_ARG unless gpu_hours, tokens and both
 * FLOP counts are positive and finite. */
int model_claim_from_gpu_hours(double gpu_hours, double tokens, double flops_per_token,
			       double flops_per_token_noncausal, double peak_bf16_tflops,
			       double peak_fp8_tflops, struct model_claim_hours *out);

/* What a reported TFLOP/s per GPU implies. */
struct model_claim_rate {
	double mfu_bf16, mfu_fp8;      /* NaN when the peak is unknown */
	double tokens_per_gpu_s;       /* rate / FLOPs per token */
	double gpu_hours_needed;       /* for tokens at that rate; NaN without tokens */
	double goodput;                /* needed / reported; NaN without a report */
	double gpu_hours_lost;         /* reported - needed (restarts, failures, ...) */
};

/* model_claim_from_tflops. tokens and gpu_hours_reported may be NaN (not stated).
 * Returns MB_ERR_ARG unless tflops_per_gpu and flops_per_token are positive. */
int model_claim_from_tflops(double tflops_per_gpu, double flops_per_token, double tokens,
			    double gpu_hours_reported, double peak_bf16_tflops,
			    double peak_fp8_tflops, struct model_claim_rate *out);

/* model_claim_cost_usd = gpu_hours * usd_per_gpu_hour. */
double model_claim_cost_usd(double gpu_hours, double usd_per_gpu_hour);

/* model_claim_mfu = tflops / peak, NaN when peak is unknown (NaN, <= 0). */
double model_claim_mfu(double tflops_per_gpu, double peak_tflops);

/* One side of a comparison between two runs. */
struct model_claim_side {
	double gpu_hours;
	double tokens;
	double flops_per_token;
	double peak_tflops;    /* dense peak the MFU is taken against; NaN if unknown */
};

/* The GPU-hours ratio a / b decomposed:
 * gpu_hours = total_flops * rate = tokens * flops_per_token * mfu * peak. */
struct model_claim_ratio {
	double gpu_hours;          /* a / b */
	double total_flops;        /* a / b: model size and tokens */
	double tokens;             /* a / b */
	double flops_per_token;    /* a / b */
	double tflops_a, tflops_b; /* achieved per GPU */
	double rate;               /* tflops_b / tflops_a: hardware use */
	double mfu_a, mfu_b;       /* NaN when a peak is unknown */
	double mfu;                /* mfu_b / mfu_a */
	double peak;               /* peak_b / peak_a */
};

/* model_claim_compare. Returns MB_ERR_ARG unless both sides have positive GPU-hours,
 * tokens and FLOPs per token. */
int model_claim_compare(const struct model_claim_side *a, const struct model_claim_side *b,
			struct model_claim_ratio *out);

/* ---- claims of a baseline run, figure by figure (claims.c) ---- */

enum model_verdict {
	MODEL_VERDICT_NA,            /* nothing to compare: one side missing */
	MODEL_VERDICT_CONSISTENT,
	MODEL_VERDICT_INCONSISTENT,
};

/* One line of `moebench claims`: a stated figure beside its recomputation. */
struct model_claim_row {
	const char *figure;    /* "gpu_hours", "mfu_bf16_from_gpu_hours", ... */
	const char *unit;
	double claimed;        /* NaN: the source does not state it */
	enum model_bound bound;
	const char *ref;       /* the claimed figure's reference and locator, or NULL */
	const char *where;
	double recomputed;     /* NaN: not derivable from what the run states */
	double rel_diff;       /* (recomputed - claimed) / claimed, or NaN */
	enum model_verdict verdict;
	char how[192];         /* what the recomputation used, one line */
};

#define MODEL_CLAIM_ROWS_MAX 32

struct model_claim_inputs {
	double peak_bf16_tflops;   /* of the run's hardware; NaN if unknown */
	double peak_fp8_tflops;
	double usd_per_gpu_hour;   /* used when the run states none; e.g. 2.0 */
	bool usd_override;         /* true: usd_per_gpu_hour wins over a stated price too */
	double tolerance;          /* relative, for verdicts; e.g. 0.05 */
};

struct model_claim_report {
	int64_t seq, mtp_depth;            /* what FLOPs per token were counted at */
	double flops_per_token;            /* causal training */
	double flops_per_token_noncausal;
	double flops_per_token_6n;
	size_t n_rows;
	struct model_claim_row rows[MODEL_CLAIM_ROWS_MAX];
};

/* model_claims_evaluate recomputes every figure of run that its statements allow,
 * with cfg the run's model, FLOPs per token counted at the run's seq_len (else the
 * preset's) and mtp_depth (else the preset's). Rows, in order, where their inputs
 * are stated:
 *   model:   params_total, params_active, kv_cache_bytes_per_token, flops_per_token
 *   tokens:  total_flops (Megatron terms), total_flops_6n (both vs total_flops)
 *   GPU-hours + tokens: tokens_per_gpu_s, tflops_per_gpu_from_gpu_hours,
 *            mfu_{bf16,fp8}[_noncausal]_from_gpu_hours, gpu_hours_per_trillion_tokens,
 *            days_per_trillion_tokens
 *   GPU-hours: cost_usd (at the run's usd_per_gpu_hour, else in->usd_per_gpu_hour;
 *            in->usd_per_gpu_hour always when in->usd_override, the row saying so)
 *   a stated rate (tflops_per_gpu, else tokens_per_gpu_s, else mfu_bf16): the rate
 *            figures against each other (tflops_per_gpu, tokens_per_gpu_s_at_stated_
 *            rate, mfu_bf16, mfu_fp8), then gpu_hours_at_stated_rate (consistent when
 *            it does not exceed the reported GPU-hours) and goodput
 *   last:    every stated figure not shown yet, claimed only ("stated").
 * Returns MB_OK or MB_ERR_ARG. */
int model_claims_evaluate(const struct model_baseline_run *run, const struct model_config *cfg,
			  const struct model_claim_inputs *in, struct model_claim_report *out);

/* model_claims_side fills one side of a comparison from a run that states GPU-hours
 * and tokens (FLOPs per token from cfg at the run's sequence length and MTP depth).
 * Returns MB_ERR_ARG when the run lacks them. */
int model_claims_side(const struct model_baseline_run *run, const struct model_config *cfg,
		      double peak_tflops, struct model_claim_side *out);

/* model_verdict_name: "n/a", "consistent", "inconsistent". */
const char *model_verdict_name(enum model_verdict v);

#endif
