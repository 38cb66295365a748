/*
 * step_io.c - `moebench step`'s --model config and its --dump-batch file (step_io.h).
 *
 * The dump is what an outside implementation of the same model needs to recompute the
 * checked step's loss: the config, the options that enter the arithmetic (norm eps,
 * RoPE theta, MTP weight, balance-loss alpha), the token ids, and the losses this
 * implementation got (FP32, and its FP64 reference). scripts/torch_step.py reads it
 * with the weights of `step --save`.
 */
#include "step_io.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "result.h"
#include "status.h"

/* dump_tokens adds the batch's rows of token ids as an array of arrays. */
static bool dump_tokens(cJSON *o, const struct step_dump *d)
{
	int len = d->seq + 1 + (int)d->L->cfg.mtp_depth;
	cJSON *rows = cJSON_AddArrayToObject(o, "tokens");
	for (int b = 0; rows && b < d->batch; b++) {
		cJSON *row = cJSON_CreateIntArray(d->tokens + (size_t)b * len, len);
		if (!row)
			return false;
		cJSON_AddItemToArray(rows, row);
	}
	return rows != NULL;
}

/* dump_json builds the dump's object, or NULL when out of memory. */
static cJSON *dump_json(const struct step_dump *d)
{
	char hash[32];
	cJSON *o = cJSON_CreateObject(), *cfg = model_config_to_json(&d->L->cfg);
	if (!o || !cfg || !cJSON_AddItemToObject(o, "config", cfg)) {
		cJSON_Delete(cfg);
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddNumberToObject(o, "norm_eps", d->no->norm_eps);
	cJSON_AddNumberToObject(o, "rope_theta", d->no->rope_theta);
	cJSON_AddNumberToObject(o, "mtp_weight", d->no->mtp_weight);
	cJSON_AddNumberToObject(o, "balance_alpha", d->no->balance_alpha);
	cJSON_AddStringToObject(o, "precision", net_precision_name(d->no->precision));
	cJSON_AddNumberToObject(o, "batch", d->batch);
	cJSON_AddNumberToObject(o, "seq", d->seq);
	cJSON_AddNumberToObject(o, "seed", (double)d->seed);
	cJSON_AddNumberToObject(o, "loss", d->st->loss);
	cJSON_AddNumberToObject(o, "main_loss", d->st->main_loss);
	cJSON_AddNumberToObject(o, "mtp_loss", d->st->mtp_loss);
	cJSON_AddNumberToObject(o, "balance_loss", d->st->balance_loss);
	cJSON_AddNumberToObject(o, "loss_fp64", d->loss_fp64);
	snprintf(hash, sizeof(hash), "%" PRIu64, d->st->route_hash);
	cJSON_AddStringToObject(o, "route_hash", hash);
	if (!dump_tokens(o, d)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int step_dump_write(const char *path, bool force, const struct step_dump *d, char *why,
		    size_t why_len)
{
	cJSON *o = dump_json(d);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	int err = MB_ERR_NOMEM;
	if (text)
		err = result_write_atomic(path, text, force, why, why_len);
	else
		snprintf(why, why_len, "out of memory");
	free(text);
	cJSON_Delete(o);
	return err;
}

int step_resolve_config(const char *model_path, const char *preset, struct model_config *cfg)
{
	char why[512], names[512];
	if (model_path) {
		if (model_config_load(model_path, cfg, why, sizeof(why)))
			return cli_error("a JSON object of model fields, e.g. {\"preset\": \"v3-small\", "
					 "\"layers\": 2} (moebench model --model)", "--model: %s", why),
			       MB_ERR_ARG;
		return MB_OK;
	}
	const struct model_config *p = model_preset_find(preset);
	if (!p) {
		model_preset_names(names, sizeof(names));
		return cli_error(names, "--preset %s: unknown preset", preset), MB_ERR_ARG;
	}
	*cfg = *p;
	return MB_OK;
}

/* step_resident_bytes returns the process's resident set now (Linux /proc), NaN elsewhere. */
double step_resident_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return NAN;
	int n = fscanf(f, "%ld %ld", &pages, &rss);
	fclose(f);
	return n == 2 ? (double)rss * (double)sysconf(_SC_PAGESIZE) : NAN;
}
