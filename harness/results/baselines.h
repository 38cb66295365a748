/*
 * baselines.h - the published baselines of results/baselines/ as one set: where the
 * files are, loading every one, evaluating each run with its model preset and the
 * peaks of its hardware, and the comparison claim of DeepSeek-V3 with Llama 3 405B.
 * `moebench claims` prints what this computes; the claims benchmark of `moebench run`
 * times it and checks its invariants.
 *
 * Every function returns MB_OK or a negative MB_ERR_* (kernels/common/status.h) with the
 * reason, naming the file and field where one is at fault, in why.
 */
#ifndef MB_HARNESS_BASELINES_H
#define MB_HARNESS_BASELINES_H

#include <stddef.h>

#include "claims.h"
#include "hardware.h"

#define BASELINES_MAX 64

struct baselines {
	char dir[1024];
	size_t n;
	struct model_baseline *items[BASELINES_MAX];  /* sorted by file name */
};

/* baselines_find_dir picks the directory of baseline files: $MOEBENCH_BASELINES when
 * set, else ./results/baselines, else results/baselines of the source tree moebench
 * was built from. Returns MB_ERR_IO, listing the places tried, when none exists. */
int baselines_find_dir(char *dir, size_t len, char *why, size_t why_len);

/* baselines_load reads every *.json file of dir (at least one). Two files of the same
 * "name" are an error. On failure set holds nothing. */
int baselines_load(const char *dir, struct baselines *set, char *why, size_t why_len);
/* baselines_free releases what baselines_load read. */
void baselines_free(struct baselines *set);
/* baselines_find returns the baseline of that name, or NULL. */
const struct model_baseline *baselines_find(const struct baselines *set, const char *name);
/* baselines_names writes the names, comma separated, for a hint line. */
void baselines_names(const struct baselines *set, char *buf, size_t len);
/* baselines_run_count returns the number of runs over all baselines. */
size_t baselines_run_count(const struct baselines *set);

/* One run evaluated: its figures beside their recomputation (claims.h). */
struct baselines_eval {
	const struct model_baseline *baseline;
	const struct model_baseline_run *run;
	const struct model_config *cfg;
	const struct hardware_spec *hw;
	struct model_claim_report report;
};

/* baselines_evaluate evaluates run i of b at usd_per_gpu_hour (used where the source
 * states no price, and where it does too when usd_override) and tolerance (relative).
 * MB_ERR_PARSE when the run names a hardware key the table does not have. */
int baselines_evaluate(const struct model_baseline *b, size_t i, double usd_per_gpu_hour,
		       bool usd_override, double tolerance, struct baselines_eval *out, char *why, size_t why_len);

/* The comparison claim: Llama 3 405B's GPU-hours over DeepSeek-V3's (the "11x"). */
struct baselines_comparison {
	const struct model_baseline_run *a, *b;  /* the two pre-training runs */
	const struct model_baseline_run *b_total;
	const struct hardware_spec *hw_a, *hw_b;
	double headline;                  /* a's GPU-hours / b_total's: the quoted ratio */
	struct model_claim_ratio bf16;    /* MFU of both against the BF16 peak */
	struct model_claim_ratio stated;  /* MFU against the peak of each run's precision */
	double size_share;                /* ln(FLOPs ratio) / ln(GPU-hours ratio) */
};

/* The runs compared, as "baseline/run". */
#define BASELINES_CMP_A "llama3-405b/pre-training"
#define BASELINES_CMP_B "deepseek-v3/pre-training"
#define BASELINES_CMP_B_TOTAL "deepseek-v3/total"

/* baselines_compare decomposes the GPU-hours ratio of the two pre-training runs into
 * total training FLOPs times achieved FLOP/s per GPU. MB_ERR_ARG when the set lacks
 * one of the runs above (a directory of other baselines). */
int baselines_compare(const struct baselines *set, struct baselines_comparison *out,
		      char *why, size_t why_len);

/* baselines_peak returns hw's dense peak of precision ("fp8"; anything else BF16). */
double baselines_peak(const struct hardware_spec *hw, const char *precision);

#endif
