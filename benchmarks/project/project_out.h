/*
 * project_out.h - what `moebench project` prints: one projection as text or JSON, a
 * sweep or search table, and the validation against published runs.
 */
#ifndef MB_PROJECT_OUT_H
#define MB_PROJECT_OUT_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "baselines.h"
#include "project_step.h"

/* The token budget a projection is turned into GPU-hours for, and the claim beside. */
struct proj_budget {
	double tokens;
	double usd_per_gpu_hour;
	double claimed_gpu_hours;   /* NaN: no claim for this model */
	const char *claim_label;    /* "deepseek-v3/pre-training", or NULL */
	const char *claim_where;
};

/* proj_budget_from_baselines fills the default budget of cfg's model: the tokens and
 * GPU-hours of a baseline run of that model stating both (a run named "pre-training"
 * first). tokens <= 0 keeps the baseline's; usd is the price. */
void proj_budget_from_baselines(const struct baselines *set, const char *model, double tokens,
				double usd, struct proj_budget *b);

/* proj_gpu_hours: tokens / (tokens per GPU-second) / 3600. */
double proj_gpu_hours(const struct proj_result *r, double tokens);

/* proj_print_text prints one projection; proj_to_json returns it as a new object. */
void proj_print_text(FILE *f, const struct proj_result *r, const struct proj_calib *cal,
		     const struct proj_budget *b);
cJSON *proj_to_json(const struct proj_result *r, const struct proj_budget *b);

/* proj_print_row_header / proj_print_row: one line per projection (sweep, search). */
void proj_print_row_header(FILE *f);
void proj_print_row(FILE *f, const struct proj_result *r, const struct proj_budget *b);

/* proj_validate projects every published run of set that states enough of its
 * configuration and prints projected vs published with the error per case, the mean
 * and the maximum (as JSON with json). Returns 0, or 2 after an error line. */
int proj_validate(const struct baselines *set, const struct proj_calib *cal, bool json);

#endif
