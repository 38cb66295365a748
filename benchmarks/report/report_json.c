/*
 * report_json.c - `moebench report --format json`: the whole report as one object,
 *
 * { "schema": "moebench.report/1", "argv": [...], "usd_per_gpu_hour", "tolerance",
 *   "tokens" (null: each published run's), "verdict_rule",
 *   "measured": [ { run, origin, kind, device, gpus, precision, tokens_per_s,
 *                   tokens_per_gpu_s, model_flops_per_token, flops_terms{...},
 *                   flops_6n, recorded_flops_per_token, tflops_per_gpu,
 *                   mfu_bf16_datasheet, mfu_fp8_datasheet, mfu_bf16_measured,
 *                   mfu_fp8_measured, scaling_efficiency (scale rows; null else),
 *                   scaling_mode?, scaling_base_gpus?,
 *                   peaks{bf16_datasheet{tflops,source},...} } ],
 *   "published": [ { run, hardware, gpus, tokens, gpu_hours, tokens_per_gpu_s,
 *                    mfu_published, published_as, closest, ref, where,
 *                    conventions{causal+mtp{flops_per_token, mfu}, ...} } ],
 *   "comparisons": [ { measured, published, tokens, gpu_hours, cost_usd,
 *                      gpu_hours_at_our_mfu, mfu_ours, verdict } ],
 *   "projections": [ { run, model, hardware, gpus, tokens, gpu_hours,
 *                      claimed_gpu_hours, mfu_bf16, tokens_per_gpu_s } ] }
 *
 * MFU values are fractions; NaN is null.
 */
#include "report.h"

#include <math.h>

/* add_num adds a number, null when NaN. */
static void add_num(cJSON *o, const char *k, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

/* add_peak adds {tflops, source}. */
static void add_peak(cJSON *o, const char *k, const struct report_peak *p)
{
	cJSON *x = cJSON_AddObjectToObject(o, k);
	add_num(x, "tflops", p->tflops);
	cJSON_AddStringToObject(x, "source", p->source);
}

/* meas_json returns measured run i. */
static cJSON *meas_json(const struct report *rep, size_t i)
{
	const struct report_meas *m = &rep->in.meas[i];
	const struct report_figs *f = &rep->figs[i];
	cJSON *o = cJSON_CreateObject(), *terms, *pk;
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "run", m->label);
	cJSON_AddStringToObject(o, "origin", m->origin);
	cJSON_AddStringToObject(o, "kind", m->kind);
	cJSON_AddStringToObject(o, "device", m->device);
	cJSON_AddNumberToObject(o, "gpus", (double)m->gpus);
	cJSON_AddStringToObject(o, "precision", m->precision);
	add_num(o, "tokens_per_s", m->tokens_per_s);
	add_num(o, "tokens_per_gpu_s", f->tokens_per_gpu_s);
	cJSON_AddNumberToObject(o, "model_flops_per_token", (double)f->flops.total);
	terms = cJSON_AddObjectToObject(o, "flops_terms");
	for (int k = 0; k < MODEL_FLOP_TERMS; k++)
		cJSON_AddNumberToObject(terms, model_flop_term_name(k),
					(double)(f->flops.main[k] + f->flops.mtp[k]));
	add_num(o, "flops_6n", f->flops_6n);
	add_num(o, "recorded_flops_per_token", m->flops_recorded);
	add_num(o, "tflops_per_gpu", f->tflops_per_gpu);
	add_num(o, "mfu_bf16_datasheet", f->mfu_bf16_ds);
	add_num(o, "mfu_fp8_datasheet", f->mfu_fp8_ds);
	add_num(o, "mfu_bf16_measured", f->mfu_bf16_meas);
	add_num(o, "mfu_fp8_measured", f->mfu_fp8_meas);
	add_num(o, "scaling_efficiency", f->scaling_eff);
	if (isfinite(f->scaling_eff)) {
		cJSON_AddStringToObject(o, "scaling_mode", m->mode);
		cJSON_AddNumberToObject(o, "scaling_base_gpus", (double)f->scaling_base_gpus);
	}
	pk = cJSON_AddObjectToObject(o, "peaks");
	add_peak(pk, "bf16_datasheet", &f->bf16_ds);
	add_peak(pk, "fp8_datasheet", &f->fp8_ds);
	add_peak(pk, "bf16_measured", &f->bf16_meas);
	add_peak(pk, "fp8_measured", &f->fp8_meas);
	return o;
}

/* pub_json returns published run j. */
static cJSON *pub_json(const struct report_pub *p)
{
	char run[160];
	cJSON *o = cJSON_CreateObject(), *conv;
	if (!o)
		return NULL;
	snprintf(run, sizeof(run), "%s/%s", p->eval->baseline->name, p->eval->run->name);
	cJSON_AddStringToObject(o, "run", run);
	cJSON_AddStringToObject(o, "hardware", p->eval->run->hardware);
	add_num(o, "gpus", p->gpus);
	add_num(o, "tokens", p->tokens);
	add_num(o, "gpu_hours", p->gpu_hours);
	add_num(o, "tokens_per_gpu_s", p->tokens_per_gpu_s);
	add_num(o, "peak_bf16_tflops", p->peak);
	add_num(o, "mfu_published", p->mfu_published);
	cJSON_AddStringToObject(o, "published_as", p->published_as);
	cJSON_AddStringToObject(o, "closest", p->closest >= 0 ? report_conv_name(p->closest) : "");
	cJSON_AddStringToObject(o, "ref", p->cite ? p->cite : "");
	cJSON_AddStringToObject(o, "where", p->where ? p->where : "");
	conv = cJSON_AddObjectToObject(o, "conventions");
	for (int c = 0; c < REPORT_CONV_COUNT; c++) {
		cJSON *x = cJSON_AddObjectToObject(conv, report_conv_name(c));
		add_num(x, "flops_per_token", p->flops[c]);
		add_num(x, "mfu", p->mfu[c]);
	}
	return o;
}

/* cmp_json returns the comparison of measured run i with published run j. */
static cJSON *cmp_json(const struct report *rep, size_t i, size_t j)
{
	const struct report_cmp *c = &rep->cmps[i * rep->n_pub + j];
	const struct report_pub *p = &rep->pubs[j];
	char run[160];
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	snprintf(run, sizeof(run), "%s/%s", p->eval->baseline->name, p->eval->run->name);
	cJSON_AddStringToObject(o, "measured", rep->in.meas[i].label);
	cJSON_AddStringToObject(o, "published", run);
	add_num(o, "tokens", c->tokens);
	add_num(o, "gpu_hours", c->gpu_hours);
	add_num(o, "cost_usd", c->cost_usd);
	add_num(o, "gpu_hours_published", p->gpu_hours);
	add_num(o, "gpu_hours_at_our_mfu", c->gpu_hours_at_mfu);
	add_num(o, "mfu_ours", c->mfu_ours);
	add_num(o, "mfu_published", p->mfu_published);
	cJSON_AddStringToObject(o, "verdict", report_verdict_name(c->verdict));
	return o;
}

/* proj_json returns projection k. */
static cJSON *proj_json(const struct report_project *p)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "run", p->label);
	cJSON_AddStringToObject(o, "model", p->model);
	cJSON_AddStringToObject(o, "hardware", p->hardware);
	add_num(o, "gpus", p->gpus);
	add_num(o, "tokens", p->tokens);
	add_num(o, "gpu_hours", p->gpu_hours);
	add_num(o, "claimed_gpu_hours", p->claimed_gpu_hours);
	add_num(o, "mfu_bf16", p->mfu_bf16);
	add_num(o, "tokens_per_gpu_s", p->tokens_per_gpu_s);
	return o;
}

cJSON *report_to_json(const struct report *rep)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *schema = cJSON_AddStringToObject(o, "schema", "moebench.report/1");
	cJSON *argv = cJSON_AddArrayToObject(o, "argv");
	cJSON *ms = cJSON_CreateArray(), *ps = cJSON_CreateArray();
	cJSON *cs = cJSON_CreateArray(), *js = cJSON_CreateArray();
	if (!o || !schema || !argv || !ms || !ps || !cs || !js) {
		cJSON_Delete(o), cJSON_Delete(ms), cJSON_Delete(ps);
		cJSON_Delete(cs), cJSON_Delete(js);
		return NULL;
	}
	for (int i = 0; i < rep->argc; i++)
		cJSON_AddItemToArray(argv, cJSON_CreateString(rep->argv[i]));
	cJSON_AddNumberToObject(o, "usd_per_gpu_hour", rep->usd);
	cJSON_AddNumberToObject(o, "tolerance", rep->tolerance);
	add_num(o, "tokens", rep->tokens);
	cJSON_AddStringToObject(o, "verdict_rule", REPORT_VERDICT_RULE);
	for (size_t i = 0; i < rep->in.n_meas; i++) {
		cJSON_AddItemToArray(ms, meas_json(rep, i));
		for (size_t j = 0; j < rep->n_pub; j++)
			cJSON_AddItemToArray(cs, cmp_json(rep, i, j));
	}
	for (size_t j = 0; j < rep->n_pub; j++)
		cJSON_AddItemToArray(ps, pub_json(&rep->pubs[j]));
	for (size_t k = 0; k < rep->in.n_proj; k++)
		cJSON_AddItemToArray(js, proj_json(&rep->in.proj[k]));
	cJSON_AddItemToObject(o, "measured", ms);
	cJSON_AddItemToObject(o, "published", ps);
	cJSON_AddItemToObject(o, "comparisons", cs);
	cJSON_AddItemToObject(o, "projections", js);
	return o;
}
