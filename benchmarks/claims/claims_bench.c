/*
 * claims.c - the claims arithmetic as a case of `moebench run`. One repetition
 * evaluates every run of every published baseline (the FLOPs and parameter accounting
 * of its model at its sequence length and MTP depth, then the claims arithmetic of
 * model/claims.c) and the DeepSeek-V3 / Llama 3 405B comparison: what
 * `moebench claims` computes, without the printing. The files are read once, before
 * timing. It runs on the host whatever the backend (CLOCK_MONOTONIC, never GPU events).
 *
 * The check is exact: DeepSeek-V3's parameters (671,026,419,200) and BF16 KV cache
 * (70,272 bytes per token) as recomputed in the claims rows, every row that has both a
 * claim and a recomputation carries a verdict, and the comparison's identity
 * GPU-hours ratio = FLOPs ratio x rate ratio holds to rounding.
 *
 * `moebench claims` is the command that prints the table; this descriptor has no
 * command of its own (the name is taken by it) and runs only in the suite.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "commands.h"
#include "driver.h"
#include "status.h"

#define DSV3_PARAMS 671026419200.0
#define DSV3_KV_BYTES 70272.0
#define IDENTITY_TOL 1e-12

struct claims_state {
	struct baselines set;
	struct baselines_eval *evals;
	size_t n_evals;
	struct baselines_comparison cmp;
	int cmp_err;
};

/* claims_poison fills the outputs with garbage so the check sees only fresh work. */
static int claims_poison(void *s)
{
	struct claims_state *st = s;

	memset(st->evals, 0xa5, st->n_evals * sizeof(*st->evals));
	memset(&st->cmp, 0xa5, sizeof(st->cmp));
	return MB_OK;
}

/* claims_run evaluates every run of every baseline, then the comparison. */
static int claims_run(void *s)
{
	struct claims_state *st = s;
	char why[512];
	size_t k = 0;

	for (size_t i = 0; i < st->set.n; i++)
		for (size_t r = 0; r < st->set.items[i]->n_runs; r++) {
			int err = baselines_evaluate(st->set.items[i], r, 2.0, false, 0.05, &st->evals[k++],
						     why, sizeof(why));
			if (err)
				return err;
		}
	st->cmp_err = baselines_compare(&st->set, &st->cmp, why, sizeof(why));
	return MB_OK;
}

/* row_value returns the recomputed value of a row of run "baseline/run", or NaN. */
static double row_value(const struct claims_state *st, const char *baseline, const char *run,
			const char *figure)
{
	for (size_t i = 0; i < st->n_evals; i++) {
		const struct baselines_eval *e = &st->evals[i];
		if (strcmp(e->baseline->name, baseline) || strcmp(e->run->name, run))
			continue;
		for (size_t r = 0; r < e->report.n_rows; r++)
			if (strcmp(e->report.rows[r].figure, figure) == 0)
				return e->report.rows[r].recomputed;
	}
	return NAN;
}

/* count_unjudged counts rows with a claim and a recomputation but no verdict. */
static long count_unjudged(const struct claims_state *st, long *rows)
{
	long bad = 0;

	*rows = 0;
	for (size_t i = 0; i < st->n_evals; i++)
		for (size_t r = 0; r < st->evals[i].report.n_rows; r++) {
			const struct model_claim_row *row = &st->evals[i].report.rows[r];
			(*rows)++;
			if (isfinite(row->claimed) && isfinite(row->recomputed) && row->claimed != 0 &&
			    (row->verdict == MODEL_VERDICT_NA || !isfinite(row->rel_diff)))
				bad++;
		}
	return bad;
}

/* claims_check applies the invariants; max_err is the identity's relative error. */
static int claims_check(void *s, struct bench_check *chk)
{
	struct claims_state *st = s;
	const struct model_claim_ratio *r = &st->cmp.bf16;
	long rows;

	chk->mismatches = count_unjudged(st, &rows);
	chk->samples = rows + 3;
	if (row_value(st, "deepseek-v3", "model", "params_total") != DSV3_PARAMS)
		chk->mismatches++;
	if (row_value(st, "deepseek-v3", "model", "kv_cache_bytes_per_token") != DSV3_KV_BYTES)
		chk->mismatches++;
	chk->max_err = INFINITY;
	if (st->cmp_err == MB_OK)
		chk->max_err = fabs(r->total_flops * r->rate / r->gpu_hours - 1.0);
	if (!(chk->max_err <= IDENTITY_TOL))
		chk->mismatches++;
	chk->tolerance = IDENTITY_TOL;
	chk->metric = "rel_err(gpu_hours_ratio vs flops_ratio x rate_ratio)";
	return MB_OK;
}

/* claims_destroy releases the baselines and the evaluations. */
static void claims_destroy(void *s)
{
	struct claims_state *st = s;

	baselines_free(&st->set);
	free(st->evals);
	free(st);
}

/* claims_create reads the baseline files. Returns MB_OK or the error, printed. */
static int claims_create(struct claims_state **out)
{
	struct claims_state *st = calloc(1, sizeof(*st));
	char dir[1024], why[1024];
	int err = st ? MB_OK : MB_ERR_NOMEM;

	if (!err && !(err = baselines_find_dir(dir, sizeof(dir), why, sizeof(why))))
		err = baselines_load(dir, &st->set, why, sizeof(why));
	if (err && st)
		fprintf(stderr, "moebench: error: claims: %s\n", why);
	if (!err) {
		st->n_evals = baselines_run_count(&st->set);
		st->evals = calloc(st->n_evals, sizeof(*st->evals));
		err = st->evals ? MB_OK : MB_ERR_NOMEM;
	}
	if (err && st) {
		claims_destroy(st);
		st = NULL;
	}
	*out = st;
	return err;
}

/* claims_bench_run runs the one case on a host backend of its own. */
static int claims_bench_run(struct run_ctx *ctx)
{
	struct bench_case c = { .peak = NAN };
	struct claims_state *st;
	int err = claims_create(&st);

	if (err)
		return err;
	snprintf(c.name, sizeof(c.name), "cpu/claims_eval/baselines%zu_runs%zu", st->set.n,
		 st->n_evals);
	c.params = cJSON_CreateObject();
	cJSON_AddStringToObject(c.params, "op", "claims_eval");
	cJSON_AddNumberToObject(c.params, "baselines", (double)st->set.n);
	cJSON_AddNumberToObject(c.params, "runs", (double)st->n_evals);
	c.state = st;
	c.poison = claims_poison;
	c.run = claims_run;
	c.check = claims_check;
	c.destroy = claims_destroy;
	/* NOTE: arithmetic on the host: a CUDA backend would time it with GPU events. */
	return driver_run_case_on_host(ctx, &c);
}

const struct bench_desc bench_claims = {
	.name = "claims",
	.summary = "recompute published claims (GPU-hours, MFU, cost) from first principles",
	.usage = "moebench claims [options]   (the suite times the same arithmetic and checks "
		 "its invariants)",
	.warmup = "1",
	.iters = "5",
	.min_time = "0.2",
	.run = claims_bench_run,
	.command = cmd_claims,
};
