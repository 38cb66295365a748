/*
 * report.h - what `moebench report` computes and prints: measured runs (records of
 * `step`, `train` and, when that command exists, `scale` result documents) turned into
 * tokens/s per GPU, model FLOPs per token, MFU, GPU-hours and cost for a token budget,
 * beside the published runs of results/baselines/ under every FLOP convention.
 *
 * Arithmetic (DESIGN.md, "Measuring honestly"):
 *   tokens per GPU-second  = tokens/s of the run / GPUs
 *   achieved FLOP/s per GPU = tokens per GPU-second x model FLOPs per token
 *   MFU                    = achieved FLOP/s per GPU / dense peak of the precision
 *   GPU-hours(tokens)      = tokens / tokens per GPU-second / 3600
 *   cost                   = GPU-hours x $/GPU-hour
 * A peak that is unknown (NaN) gives MFU NaN ("n/a"), never a guess.
 *
 * A `scale` record (not written by any command yet) is read as: benchmark "scale",
 * params.gpus (int), params.mode ("weak"|"strong"), params.preset, params.precision,
 * params.seq, params.vocab, metrics.tokens_per_s (whole run), and optionally
 * metrics.efficiency (ignored: report computes it); its rows carry their GPU count into
 * MFU and GPU-hours, and each gets its scaling efficiency against the run of fewest
 * GPUs of the same mode, preset, precision and seq (report_scaling).
 *
 * Library functions return MB_OK or a negative MB_ERR_* with the reason in why.
 */
#ifndef MB_REPORT_H
#define MB_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "accounting.h"
#include "baselines.h"
#include "hardware.h"
#include "model.h"

/* A denominator: its value in TFLOP/s (NaN: unknown) and where it comes from. */
struct report_peak {
	double tflops;
	char source[512];
};

/* One measured run, as read from a record. */
struct report_meas {
	char kind[8];               /* "step", "train", "scale" */
	char label[200];            /* "step v3-tiny/fp32/b2_s64" */
	char origin[256];           /* the file */
	char precision[8];          /* "fp32", "bf16", "fp8" */
	char device[96];            /* the run's device, or its CPU model */
	char mode[48];              /* scale: the series ("weak", "strong-ep", "weak-pp+layers"); else "" */
	struct model_config cfg;    /* the preset at the run's vocabulary and seq */
	int64_t gpus;               /* ranks (CPU: processes) */
	double tokens_per_s;        /* of the whole run */
	double flops_recorded;      /* the record's model_flops_per_token (NaN: none) */
	const struct hardware_spec *hw;  /* the device's datasheet entry, or NULL */
};

/* The figures of a measured run. */
struct report_figs {
	double tokens_per_gpu_s;
	struct model_flops flops;          /* causal, with the preset's MTP modules */
	double flops_6n;                   /* 6 x activated parameters (with MTP) */
	double tflops_per_gpu;
	struct report_peak bf16_ds, fp8_ds;     /* datasheet (hardware.c) */
	struct report_peak bf16_meas, fp8_meas; /* a `peak` document's */
	double mfu_bf16_ds, mfu_fp8_ds, mfu_bf16_meas, mfu_fp8_meas;
	bool fp8;                          /* an FP8 run: its FP8 MFU is shown too */
	double scaling_eff;                /* scale rows: tokens/s per GPU over that of the
					      fewest GPUs of the same mode, preset,
					      precision and seq (weak and strong alike:
					      E_s = T0 N0 / (T N) is the same ratio); NaN
					      for other rows */
	int64_t scaling_base_gpus;         /* that fewest */
};

/* A published run with a rate: its figures and its MFU under each convention. */
enum report_conv {
	REPORT_CONV_CAUSAL_MTP,    /* moebench's: causal core, the run's MTP modules */
	REPORT_CONV_CAUSAL,        /* causal core, MTP left out */
	REPORT_CONV_FULL_MTP,      /* full (non-causal) core, with MTP */
	REPORT_CONV_FULL,          /* full core, without MTP */
	REPORT_CONV_6N_MTP,        /* 6 x activated parameters, with MTP */
	REPORT_CONV_6N,            /* 6N, main model only */
	REPORT_CONV_COUNT
};

struct report_pub {
	const struct baselines_eval *eval;
	double gpus, tokens, gpu_hours;/* stated, NaN when not */
	double tokens_per_gpu_s;       /* from GPU-hours and tokens, or stated; NaN else */
	double tflops_stated;          /* stated TFLOP/s per GPU (the source's count) */
	double mfu_stated;             /* stated BF16 MFU (the source's convention) */
	double peak;                   /* dense peak of the run's precision */
	double flops[REPORT_CONV_COUNT];
	double mfu[REPORT_CONV_COUNT]; /* tokens_per_gpu_s x flops / peak; NaN without */
	double mfu_published;          /* the stated MFU, else stated TFLOP/s / peak, else
					  moebench's from GPU-hours */
	const char *published_as;      /* where mfu_published comes from, in words */
	int closest;                   /* the convention nearest the stated MFU, or -1 */
	const char *cite;              /* reference of the rate's figure */
	const char *where;             /* and its locator */
	double budget_tokens;          /* the run's tokens, else its baseline's first */
	const char *budget_from;       /* the run that states them */
	const char *budget_baseline;   /* and its baseline */
};

/* One measured run against one published run. */
enum report_verdict { REPORT_NA, REPORT_AT_OR_ABOVE, REPORT_BELOW };

struct report_cmp {
	double tokens;          /* the budget: --tokens, else the published run's */
	double gpu_hours;       /* the measured model on the measured device */
	double cost_usd;
	double gpu_hours_at_mfu;/* the published model and hardware at the measured MFU */
	double mfu_ours;        /* datasheet BF16 MFU, else measured BF16 */
	enum report_verdict verdict;
};

#define REPORT_VERDICT_RULE \
	"verdict: at_or_above when moebench's BF16 MFU (datasheet peak, else measured " \
	"peak) >= the published MFU x (1 - tolerance); below otherwise; n/a when either " \
	"is unknown. It compares utilisation only: model and hardware differ."

/* report_conv_name: "causal+mtp", "causal", "full+mtp", "full", "6n+mtp", "6n". */
const char *report_conv_name(enum report_conv c);

/* report_figures computes a run's figures; peaks from the datasheet of m->hw and from
 * measured (either may be NULL/NaN). MB_ERR_ARG when the config does not count. */
int report_figures(const struct report_meas *m, const struct report_peak *meas_bf16,
		   const struct report_peak *meas_fp8, struct report_figs *out);

/* report_scaling sets figs[i].scaling_eff of every scale row of meas[0..n). */
void report_scaling(const struct report_meas *meas, struct report_figs *figs, size_t n);

/* report_pub_fill computes a published run's rate and its MFU under each convention. */
int report_pub_fill(const struct baselines_eval *e, struct report_pub *out);
/* report_pub_has_rate tells whether a run states enough for a rate (GPU-hours and
 * tokens, tokens per GPU-second, TFLOP/s per GPU, or an MFU). */
bool report_pub_has_rate(const struct model_baseline_run *run);

/* report_compare fills one comparison; tokens NaN: the published run's own;
 * tolerance relative. */
void report_compare(const struct report_figs *f, const struct report_pub *p, double tokens,
		    double usd_per_gpu_hour, double tolerance, struct report_cmp *out);
/* report_verdict_name: "n/a", "at_or_above", "below". */
const char *report_verdict_name(enum report_verdict v);

/* ---- reading documents (report_in.c) ---- */

/* What a document on the command line turned out to be. */
enum report_doc_kind { REPORT_DOC_RUNS, REPORT_DOC_PEAK, REPORT_DOC_PROJECT };

struct report_project {
	char label[200];       /* "project deepseek-v3 h800-sxm 2048 GPUs" */
	char model[64], hardware[32];
	double gpus, tokens, gpu_hours, claimed_gpu_hours, mfu_bf16, tokens_per_gpu_s;
};

#define REPORT_MEAS_MAX 64
#define REPORT_PROJ_MAX 16
#define REPORT_PEAK_MAX 16

/* The measured peaks of one device: a run's MFU on measured peaks takes its own
 * device's, never another's (an H100's peak for a CPU run, say). */
struct report_device_peaks {
	char device[96];                    /* as report_meas.device names it */
	struct report_peak bf16, fp8;       /* NaN when no such record */
};

struct report_inputs {
	size_t n_meas, n_proj;
	struct report_meas meas[REPORT_MEAS_MAX];
	struct report_project proj[REPORT_PROJ_MAX];
	size_t n_peaks;
	struct report_device_peaks peaks[REPORT_PEAK_MAX];
};

/* report_read_file reads one file into in: a result document of step, train, scale
 * or peak records, or a `project --json` document. MB_ERR_IO (unreadable),
 * MB_ERR_PARSE (not a document report reads; why says what it is instead). */
int report_read_file(const char *path, struct report_inputs *in, char *why, size_t why_len);
/* report_peaks_of returns the measured peaks of the device named so, or NULL. */
const struct report_device_peaks *report_peaks_of(const struct report_inputs *in,
						  const char *device);
/* report_read_doc is report_read_file on a parsed document (origin names it). */
int report_read_doc(const cJSON *doc, const char *origin, struct report_inputs *in,
		    char *why, size_t why_len);

/* ---- the whole report (cmd_report.c builds it, report_out.c prints it) ---- */

enum report_format { REPORT_TEXT, REPORT_JSON, REPORT_CSV, REPORT_MD };

struct report {
	int argc;
	char **argv;
	double tokens;              /* --tokens, NaN: each published run's budget */
	double usd;                 /* $/GPU-hour */
	double tolerance;           /* relative, for the verdict */
	const char *baselines_dir;
	struct report_inputs in;
	struct report_figs figs[REPORT_MEAS_MAX];
	size_t n_pub;
	struct baselines_eval *evals;   /* n_pub of them */
	struct report_pub *pubs;
	struct report_cmp *cmps;        /* [meas * n_pub + pub] */
};

/* report_build computes figures, published runs and comparisons of rep->in against
 * every run with a rate of the chosen baselines (names NULL-terminated; NULL: all).
 * MB_ERR_ARG with why on a config that does not count. */
int report_build(struct report *rep, const struct baselines *set, const char *const *names,
		 char *why, size_t why_len);
/* report_free releases what report_build allocated. */
void report_free(struct report *rep);

/* report_print writes the report in a format to out. Returns 0 or 1 (write failed). */
int report_print(const struct report *rep, enum report_format fmt, FILE *out);

/* report_to_json returns the whole report as a new object, schema "moebench.report/1"
 * (NaN as null), or NULL when out of memory (report_json.c). */
cJSON *report_to_json(const struct report *rep);

/* report_plot_paths / report_plot: DIR/report_mfu.{csv,png} and
 * DIR/report_gpu_hours.{csv,png} (report_plot.c). check before any work, then plot;
 * both return an exit status after printing any error. */
int report_plot_check(const char *dir, bool force);
int report_plot(const struct report *rep, const char *dir, bool force);

#endif
