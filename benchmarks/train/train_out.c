/*
 * train_out.c - the output of `moebench train`: one line per step (step, loss, MTP
 * loss, lr, grad norm, step ms, tokens/s, MFU, expert load max/mean, as llm.c and
 * Megatron-LM print them), the loss-curve CSV for plots/train_loss.gp, and the
 * result document's summary.
 */
#include "train_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "result.h"
#include "stats.h"
#include "status.h"

int train_curve_add(struct train_curve *c, const struct train_point *pt)
{
	if (c->n == c->cap) {
		long cap = c->cap ? 2 * c->cap : 256;
		struct train_point *p = realloc(c->p, (size_t)cap * sizeof(*p));
		if (!p)
			return MB_ERR_NOMEM;
		c->p = p;
		c->cap = cap;
	}
	c->p[c->n++] = *pt;
	return MB_OK;
}

void train_print_step(const struct train_point *p, long steps, bool moe)
{
	char mfu[32] = "n/a", load[32] = "", val[32] = "", ep[64] = "", pp[64] = "";
	if (isfinite(p->mfu))
		snprintf(mfu, sizeof(mfu), "%.1f%%", 100 * p->mfu);
	if (moe)
		snprintf(load, sizeof(load), " | load max/mean %.2f", p->load);
	if (isfinite(p->val_loss))
		snprintf(val, sizeof(val), " | val %.4f", p->val_loss);
	if (p->ep_ms > 0)
		snprintf(ep, sizeof(ep), " | ep a2a %.1f ms", p->ep_ms);
	if (p->ep_hidden_ms > 0)
		snprintf(ep, sizeof(ep), " | ep a2a %.1f ms +%.1f hidden", p->ep_ms,
			 p->ep_hidden_ms);
	if (isfinite(p->pp_bubble_ms))
		snprintf(pp, sizeof(pp), " | bubble %.1f ms (sim %.1f)", p->pp_bubble_ms,
			 p->pp_bubble_sim_ms);
	printf("step %5ld/%ld | loss %.4f | mtp %.4f | lr %.2e | norm %.3f | %7.1f ms | "
	       "%7.0f tok/s | MFU %s%s%s%s%s\n", p->step, steps, p->loss, p->mtp_loss, p->lr,
	       p->grad_norm, p->step_ms, p->tok_s, mfu, load, ep, pp, val);
	fflush(stdout);
}

/* csv_text renders the curve as CSV text (provenance lines first). */
static char *csv_text(const cJSON *doc, const struct train_curve *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(doc, "context");
	const cJSON *commit = cJSON_GetObjectItemCaseSensitive(ctx, "git_commit");
	const cJSON *date = cJSON_GetObjectItemCaseSensitive(ctx, "date");
	const cJSON *argv = cJSON_GetObjectItemCaseSensitive(ctx, "argv"), *a;
	fprintf(f, "# moebench train loss curve\n# git_commit %s\n# date %s\n# argv",
		cJSON_IsString(commit) ? commit->valuestring : "?",
		cJSON_IsString(date) ? date->valuestring : "?");
	cJSON_ArrayForEach(a, argv)
		fprintf(f, " %s", cJSON_IsString(a) ? a->valuestring : "?");
	fprintf(f, "\nstep,tokens,train_loss,mtp_loss,val_loss,lr,grad_norm,step_ms,tok_s\n");
	for (long i = 0; i < c->n; i++) {
		const struct train_point *p = &c->p[i];
		fprintf(f, "%ld,%.0f,%.6f,%.6f,%.6f,%.6g,%.6g,%.3f,%.1f\n", p->step, p->tokens,
			p->loss, p->mtp_loss, p->val_loss, p->lr, p->grad_norm, p->step_ms, p->tok_s);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int train_write_csv(const char *path, const cJSON *doc, const struct train_curve *c,
		    bool force, char *why, size_t why_len)
{
	char *text = csv_text(doc, c);
	if (!text)
		return MB_ERR_NOMEM;
	int err = result_write_atomic(path, text, force, why, why_len);
	free(text);
	return err;
}

/* point_json returns one curve point as an object (NaN values as null). */
static cJSON *point_json(const struct train_point *p)
{
	cJSON *o = cJSON_CreateObject();
	const char *k[7] = { "step", "tokens", "loss", "mtp_loss", "val_loss", "lr", "load_hash" };
	double v[7] = { (double)p->step, p->tokens, p->loss, p->mtp_loss, p->val_loss, p->lr,
			p->load_hash };
	for (int i = 0; o && i < 7; i++)
		if (isfinite(v[i]))
			cJSON_AddNumberToObject(o, k[i], v[i]);
		else
			cJSON_AddNullToObject(o, k[i]);
	/* expert parallelism's dispatch/combine, slowest rank (runs with EP only) */
	if (o && p->ep_ms > 0)
		cJSON_AddNumberToObject(o, "ep_ms", p->ep_ms);
	if (o && p->ep_hidden_ms > 0)
		cJSON_AddNumberToObject(o, "ep_hidden_ms", p->ep_hidden_ms);
	return o;
}

int train_summary(cJSON *doc, const struct train_curve *c, const char *lines)
{
	cJSON *sum = cJSON_GetObjectItemCaseSensitive(doc, "summary");
	if (!sum && !(sum = cJSON_AddObjectToObject(doc, "summary")))
		return MB_ERR_NOMEM;
	cJSON *t = cJSON_AddObjectToObject(sum, "train");
	cJSON *ln = t ? cJSON_AddArrayToObject(t, "lines") : NULL;
	cJSON *curve = t ? cJSON_AddArrayToObject(t, "curve") : NULL;
	if (!ln || !curve)
		return MB_ERR_NOMEM;
	char *copy = strdup(lines), *save = NULL;
	for (char *s = copy ? strtok_r(copy, "\n", &save) : NULL; s; s = strtok_r(NULL, "\n", &save))
		cJSON_AddItemToArray(ln, cJSON_CreateString(s));
	free(copy);
	for (long i = 0; i < c->n; i++)
		cJSON_AddItemToArray(curve, point_json(&c->p[i]));
	return MB_OK;
}

int train_measured_rate(const char *path, const char *op, double *tflops, char *why,
			size_t why_len)
{
	cJSON *doc;
	const cJSON *rec;
	int err = result_read(path, &doc, why, why_len);
	*tflops = NAN;
	if (err)
		return err;
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(doc, "records")) {
		const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "params"), "op");
		const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), "tflops");
		if (cJSON_IsString(o) && strcmp(o->valuestring, op) == 0 && cJSON_IsNumber(t))
			*tflops = t->valuedouble;
	}
	cJSON_Delete(doc);
	return MB_OK;
}

/* train_val_range: see train_run.h. */
void train_val_range(const struct train_curve *c, double *first, double *best)
{
	*first = *best = NAN;
	for (long i = 0; i < c->n; i++) {
		double v = c->p[i].val_loss;
		if (!isfinite(v))
			continue;
		if (!isfinite(*first))
			*first = v;
		if (!isfinite(*best) || v < *best)
			*best = v;
	}
}

/* train_times: see train_run.h. */
double train_times(cJSON *r, const struct train_curve *c, double tokens_per_step, long *steps)
{
	struct stats st;
	double *dt = malloc((size_t)(c->n ? c->n : 1) * sizeof(double)), med = NAN;
	long n = 0;
	*steps = 0;
	if (!dt)
		return NAN;
	for (long i = 0; i < c->n; i++)
		if (isfinite(c->p[i].step_ms))
			dt[n++] = c->p[i].step_ms / 1e3;
	if (n > 0 && stats_compute(dt, (size_t)n, &st) == MB_OK) {
		result_set_time(r, &st);
		med = tokens_per_step / st.median;
	} else {
		/* no step finished: the schema still wants a time_s */
		struct stats none = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0 };
		result_set_time(r, &none);
	}
	free(dt);
	*steps = n;
	return med;
}

/* train_ep_median_ms: see train_run.h. */
double train_ep_median_ms(const struct train_curve *c, bool hidden)
{
	struct stats st;
	double *v = malloc((size_t)(c->n ? c->n : 1) * sizeof(double)), med = NAN;
	size_t n = 0;
	for (long i = 0; v && i < c->n; i++)
		if (c->p[i].step > 0 && (hidden ? c->p[i].ep_hidden_ms : c->p[i].ep_ms) > 0)
			v[n++] = hidden ? c->p[i].ep_hidden_ms : c->p[i].ep_ms;
	if (n && stats_compute(v, n, &st) == MB_OK)
		med = st.median;
	free(v);
	return med;
}
