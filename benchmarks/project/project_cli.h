/*
 * project_cli.h - the options of `moebench project`, what they load (model, hardware,
 * calibration, baselines), and the sweep and search over layouts.
 */
#ifndef MB_PROJECT_CLI_H
#define MB_PROJECT_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "baselines.h"
#include "project_calib.h"
#include "project_out.h"
#include "project_step.h"

struct proj_opts {
	const char *preset, *model_file, *hardware, *layout, *schedule, *precision;
	const char *recompute, *calibration, *sweep, *dispatch, *stages;
	int64_t gpus, seq, global_batch, micro_batch;
	int mtp, top;
	double tokens, usd;
	bool json, search, validate;
};

/* What the options name, loaded. */
struct proj_env {
	struct model_config cfg;
	const struct hardware_spec *hw;
	struct proj_calib cal;
	bool cal_ok;                  /* a calibration was loaded */
	struct baselines baselines;
	bool baselines_ok;
};

/* proj_opts_parse parses argv into o; 0, or 2 after an error line. */
int proj_opts_parse(int argc, char **argv, struct proj_opts *o, bool *help);
/* proj_env_load resolves the model, hardware, calibration and baselines. */
int proj_env_load(const struct proj_opts *o, struct proj_env *env);
void proj_env_free(struct proj_env *env);
/* proj_input_from_opts builds the projection's input (layout parsed, defaults). */
int proj_input_from_opts(const struct proj_opts *o, const struct proj_env *env,
			 struct proj_input *in);
/* proj_layout_hint: the hint line for a layout the projection rejects. */
const char *proj_layout_hint(void);

/* proj_sweep prints one row per value of --sweep KEY=V1,V2,...; proj_search the best
 * --top layouts that fit memory. 0, or 2 after an error line. */
int proj_sweep(const struct proj_opts *o, const struct proj_input *base,
	       const struct proj_budget *b);
int proj_search(const struct proj_opts *o, const struct proj_input *base,
		const struct proj_budget *b);

#endif
