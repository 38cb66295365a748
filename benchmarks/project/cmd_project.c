/*
 * cmd_project.c - `moebench project`: a model's training step projected to N GPUs of a
 * hardware entry, from the accounting's FLOPs, GEMM efficiencies measured by moebench's
 * own microbenchmarks, alpha-beta network models per tier, and the pipeline simulator
 * (project_step.h says what is modelled, project_share.c and project_run.c how).
 *
 *   moebench project --preset deepseek-v3 --hardware h800-sxm --gpus 2048 \
 *       --layout pp=16,ep=64,dp=128 --schedule dualpipe --precision fp8
 *   moebench project --preset llama3-405b --hardware h100-sxm --gpus 16384 \
 *       --layout tp=8,pp=16,vp=8 --schedule interleaved --global-batch 2048
 *   moebench project ... --sweep gpus=1024,2048,4096      one line per value
 *   moebench project ... --search                          the best layouts that fit
 *   moebench project --validate                            against published runs
 *
 * Exit 0; 2 on bad input (one error line and a hint).
 */
#include "commands.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "project_cli.h"
#include "project_out.h"
#include "status.h"

/* print_one runs one projection and prints it. */
static int print_one(const struct proj_opts *o, struct proj_input *in,
		     const struct proj_budget *b)
{
	struct proj_result r;
	char why[512];

	if (proj_step(in, &r, why, sizeof(why)))
		return cli_error(proj_layout_hint(), "%s", why);
	if (!o->json) {
		proj_print_text(stdout, &r, in->calib, b);
		return 0;
	}
	cJSON *j = proj_to_json(&r, b);
	char *text = j ? cJSON_Print(j) : NULL;
	if (text)
		printf("%s\n", text);
	int st = text ? 0 : cli_error(NULL, "out of memory");
	cJSON_free(text);
	cJSON_Delete(j);
	return st;
}

/* run_main dispatches to validate, sweep, search or one projection. */
static int run_main(struct proj_opts *o, struct proj_env *env)
{
	struct proj_input in;
	struct proj_budget b;
	int st;

	if (o->validate)
		return proj_validate(&env->baselines, env->cal_ok ? &env->cal : NULL, o->json);
	if ((st = proj_input_from_opts(o, env, &in)))
		return st;
	proj_budget_from_baselines(&env->baselines, in.cfg->name, o->tokens, o->usd, &b);
	if (o->sweep)
		return proj_sweep(o, &in, &b);
	if (o->search)
		return proj_search(o, &in, &b);
	return print_one(o, &in, &b);
}

int cmd_project(int argc, char **argv)
{
	struct proj_opts o;
	struct proj_env env;
	bool help = false;
	int st = proj_opts_parse(argc, argv, &o, &help);

	if (st || help)
		return st;
	if ((st = proj_env_load(&o, &env)))
		return st;
	st = run_main(&o, &env);
	proj_env_free(&env);
	return st;
}
