/*
 * accum_study.h - the FP8 accumulation-precision study behind `moebench gemm
 * --accum-study`: DeepSeek-V3's claim (report sec. 3.3.2) that Hopper's limited FP8
 * accumulator gives a relative error growing with K (~2% at K = 4096 in their test),
 * and that promoting partial sums to FP32 every N_C = 128 elements makes it flat.
 *
 * For K = k_min, 2*k_min, ..., k_max it quantizes two fresh random mn x K matrices to
 * FP8 with per-tensor scales (so the unpromoted accumulator is legal: see gemm.h),
 * computes gemm_fp8_ref (FP64) and gemm_fp8_emulated without promotion and with
 * promotion every acc.promote, and measures both with gemm_compare. It prints
 *
 *   FP8 accumulation study: e4m3, per-tensor scales, M=N=64, inputs uniform[0,1), seed 1
 *   accumulator: aligned, 13 mantissa bits, 32 products per step; error vs gemm_fp8_ref ...
 *         K  nopromo_max_rel_err  nopromo_mean_rel_err  promo128_max_rel_err  ...
 *       256            3.080e-03             1.940e-03             9.570e-04  ...
 *      4096            7.837e-02             7.457e-02             6.425e-04  ...
 *     16384            2.568e-01             2.509e-01             6.006e-04  ...
 *   K 256 -> 16384: no promotion max_rel_err x83.38, promotion every 128 x0.63
 *
 * It optionally appends two records per K to a result document (benchmark "gemm", name
 * "accum/<format>/K<k>/no-promotion" or ".../promote<N_C>", backend "cpu"; params m, n,
 * k, format, scaling, dist, seed, model, mantissa_bits, group, promote (0: none),
 * pow2_scales; metrics time_s (one sample: the emulated GEMM's wall time),
 * max_rel_err, mean_rel_err; check "pass" unless the emulation produced a non-finite
 * value, tolerance null: the error is what is measured, not a defect), and optionally
 * writes the table as CSV for plots/fp8_accum.gp:
 *
 *   # '#' provenance lines: git_commit, date, device, argv, configuration
 *   k,log2_k,nopromo_max_rel_err,nopromo_mean_rel_err,promo_max_rel_err,promo_mean_rel_err
 *
 * NOTE: the default accumulator is the one an H100's WGMMA matched bit for bit (gemm.h),
 * and on these inputs the H100 itself gave 7.9e-2 at K = 4096 and 6.4e-4 with
 * promotion: the shape of DeepSeek's claim, at about four times their "nearly 2%",
 * whose inputs and metric are not published. GEMM_ACCUM_SUM_TRUNC gives 3.6e-3 there.
 */
#ifndef MB_HARNESS_ACCUM_STUDY_H
#define MB_HARNESS_ACCUM_STUDY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "gemm.h"

/* The distribution of the elements before quantization. DeepSeek does not say which
 * one its test used; on a positive one the error grows fastest (no cancellation). */
enum accum_study_dist {
	ACCUM_DIST_UNIFORM,     /* uniform in [0, 1) */
	ACCUM_DIST_ABS_NORMAL,  /* |N(0, 1)| */
	ACCUM_DIST_NORMAL,      /* N(0, 1): relative errors then reflect cancellation too */
};

struct accum_study_opts {
	int mn;                       /* M = N of every GEMM (64) */
	int k_min, k_max;             /* K doubles from k_min up to k_max (256, 16384) */
	uint64_t seed;                /* (1) */
	enum accum_study_dist dist;   /* (ACCUM_DIST_UNIFORM) */
	enum fp8_format format;       /* both operands (FP8_E4M3) */
	bool pow2_scales;             /* (false) */
	struct gemm_accum acc;        /* the accumulator; acc.promote > 0 is N_C of the
				       * promoted line (gemm_accum_default()) */
	const char *csv_path;         /* write the CSV here; NULL: none (NULL) */
	bool force;                   /* overwrite an existing CSV (false) */
	const char *argv_line;        /* the command line, for the CSV provenance (NULL) */
};

/* accum_study_defaults fills o with the defaults marked above. */
void accum_study_defaults(struct accum_study_opts *o);
/* accum_study_dist_name returns "uniform", "abs-normal" or "normal". */
const char *accum_study_dist_name(enum accum_study_dist d);
/* accum_study_dist_parse reads one of those names: MB_OK or MB_ERR_PARSE. */
int accum_study_dist_parse(const char *name, enum accum_study_dist *d);

/* accum_study_run runs the study, prints the table to out, appends records to doc when
 * doc is not NULL, writes the CSV (atomically) when o->csv_path is set. Returns MB_OK;
 * MB_ERR_ARG (mn < 1, k_min < 1, k_max < k_min, acc.promote < 1, or an accumulator
 * gemm_fp8_emulated rejects); MB_ERR_EXISTS (the CSV exists and !force); MB_ERR_IO;
 * MB_ERR_NOMEM. Failures print one `moebench: error:` line (and a hint) to stderr. */
int accum_study_run(const struct accum_study_opts *o, cJSON *doc, FILE *out);

#endif
