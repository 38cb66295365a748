/*
 * train_record.c - the result record of a `moebench train` run (cmd_train.c): the
 * configuration as params (compare pairs runs on them), the final and median figures as
 * metrics, the check (the loss finite), the time by cause of every rank (train_split.h)
 * and the summary's text lines and loss curve.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "result.h"
#include "status.h"
#include "train_state.h"

/* train_ep_seconds: see train_state.h. */
double train_ep_seconds(const struct trainer *t)
{
	return t->ep.exposed_s + t->ep2.exposed_s - t->ov.away_s +
	       (t->pp.pp > 1 ? train_pp_ep_exposed(&t->pp) : 0);
}


/* train_split_record adds the run's time by cause to record r, under the names of
 * `step`'s split (train_split.h): each rank's causes summed over the run's optimizer
 * steps (validation excluded), the slowest rank's in split_s; beside them each rank's
 * own step times summed (step_s_by_rank; the causes leave out only the step's work
 * outside the model: the batch, gradient accumulation) and time_s_sum, the recorded
 * step times (each step's slowest rank) summed. Appends the line to lines. Collective
 * over the world. */
static int train_split_record(struct trainer *t, cJSON *r, char *lines, size_t len)
{
	int n = comm_size(t->dp.world), err = MB_ERR_NOMEM;
	struct train_split *all = calloc((size_t)n, sizeof(*all));
	double *own = calloc((size_t)n, sizeof(*own)), sum = 0;
	cJSON *sp = NULL, *by = NULL;
	if (all && own) {
		own[comm_rank(t->dp.world)] = t->split_step_s;
		err = train_split_gather(t->dp.world, &t->split, all, n);
	}
	if (!err && n > 1)
		err = comm_host_allreduce_f64(t->dp.world, own, (size_t)n, COMM_SUM);
	if (!err && (sp = train_split_json(all, n)) && (by = cJSON_CreateDoubleArray(own, n))) {
		int slow = cJSON_GetObjectItem(sp, "slowest_rank")->valueint;
		char causes[512];
		for (long i = 0; i < t->curve.n; i++)
			sum += t->curve.p[i].step > 0 && isfinite(t->curve.p[i].step_ms)
				       ? t->curve.p[i].step_ms / 1e3 : 0;
		cJSON_AddStringToObject(sp, "over", t->split_over);
		cJSON_AddItemToObject(sp, "step_s_by_rank", by);
		cJSON_AddNumberToObject(sp, "time_s_sum", sum);
		cJSON_AddItemToObject(r, "split", sp);
		train_split_line(&all[slow], causes, sizeof(causes));
		size_t k = strlen(lines);
		snprintf(lines + k, len - k, "\ntrain: time by cause (slowest rank %d of %d, %.2f of "
			 "its %.2f s in steps): %s", slow, n, train_split_total(&all[slow]), own[slow],
			 causes);
	} else if (!err) {
		cJSON_Delete(sp);
		err = MB_ERR_NOMEM;
	}
	free(all);
	free(own);
	return err;
}

/* record_params adds the run's configuration (compare pairs runs on it) to pm. */
static void record_params(const struct trainer *t, cJSON *pm)
{
	cJSON_AddStringToObject(pm, "preset", t->o->preset);
	cJSON_AddStringToObject(pm, "precision", t->o->precision);
	cJSON_AddStringToObject(pm, "data", t->corpus.source);
	cJSON_AddNumberToObject(pm, "batch", (double)t->o->batch);
	cJSON_AddNumberToObject(pm, "seq", (double)t->o->seq);
	/* the requested steps are the configuration (compare pairs on params); the steps a
	 * --time-limit let finish are a result */
	cJSON_AddNumberToObject(pm, "steps", (double)t->o->steps);
	cJSON_AddNumberToObject(pm, "vocab", (double)t->corpus.vocab);
	cJSON_AddNumberToObject(pm, "bytes_per_token",
				(double)t->corpus.n / (double)(t->corpus.ntok ? t->corpus.ntok : 1));
	cJSON_AddNumberToObject(pm, "params", (double)t->L.total);
	cJSON_AddNumberToObject(pm, "dp", (double)t->dp.size);
	cJSON_AddBoolToObject(pm, "zero1", t->o->zero1);
	cJSON_AddNumberToObject(pm, "micro_batch", (double)t->micro);
	cJSON_AddNumberToObject(pm, "tp", (double)t->dp.lay.tp);
	cJSON_AddBoolToObject(pm, "sp", t->o->sp);
	cJSON_AddNumberToObject(pm, "ep", (double)t->o->ep);
	cJSON_AddNumberToObject(pm, "ranks_per_node", (double)t->o->ranks_per_node);
	cJSON_AddStringToObject(pm, "dispatch", t->o->dispatch);
}

/* train_record: see train_state.h. */
int train_record(struct run_ctx *ctx, struct trainer *t, int run_err)
{
	char name[160], lines[2048], ppl[512] = "";
	const struct train_curve *c = &t->curve;
	double first, best;
	long n = 0;
	train_val_range(c, &first, &best);
	const struct train_point *last = c->n ? &c->p[c->n - 1] : NULL;
	snprintf(name, sizeof(name), "%s/%s/b%lld_s%lld", t->o->preset, t->o->precision,
		 (long long)t->o->batch, (long long)t->o->seq);
	cJSON *r = result_add_record(ctx->doc, "train", name, backend_name(ctx->backend->kind));
	if (!r)
		return MB_ERR_NOMEM;
	double med = train_times(r, c, (double)t->o->batch * (double)t->o->seq, &n);
	cJSON *pm = cJSON_GetObjectItem(r, "params");
	record_params(t, pm);
	result_set_metric(r, "dp_comm_s", t->dp.comm_s);
	result_set_metric(r, "tp_comm_s", t->dp.tp_comm_s);
	result_set_metric(r, "tp_replica_spread", t->tp_spread);
	/* EP dispatch/combine (this rank, the whole run, validation forwards included):
	 * all exposed, blocking, unless --ep-overlap hid some under the other chunk */
	result_set_metric(r, "ep_exposed_s", train_ep_seconds(t));
	result_set_metric(r, "ep_hidden_s", t->ov.hidden_s);
	cJSON_AddBoolToObject(pm, "ep_overlap", t->ov_on);
	if (t->ov_on)
		result_set_metric(r, "ep_overlapped_ops", (double)t->ov.handoffs);
	result_set_metric(r, "tokens_per_s", med);
	result_set_metric(r, "model_flops_per_token", t->flops_per_token);
	result_set_metric(r, "mfu", t->flops_per_token * med / t->peak_flops);
	result_set_metric(r, "steps_done", (double)n);
	result_set_metric(r, "final_loss", last ? last->loss : NAN);
	result_set_metric(r, "final_val_loss", last ? last->val_loss : NAN);
	result_set_metric(r, "best_val_loss", best);
	bool pass = !run_err && last && isfinite(last->loss);
	result_set_check(r, pass, last ? last->loss : NAN, 0, "loss finite", c->n, pass ? 0 : 1);
	if (t->pp.pp > 1)
		train_pp_record(&t->pp, t->o->schedule, r, ppl, sizeof(ppl));
	snprintf(lines, sizeof(lines),
		 "train: %s %s, %ld steps, %.0f tokens, median %.0f tok/s, validation loss "
		 "%.4f -> %.4f (best %.4f) nats/%s%s%s", t->o->preset, t->o->precision, n,
		 last ? last->tokens : 0.0, med, first, last ? last->val_loss : NAN, best,
		 t->bpe ? "token" : "byte", *ppl ? "\n" : "", ppl);
	size_t k = strlen(lines);
	if (t->dp.lay.tp > 1 && k < sizeof(lines))
		snprintf(lines + k, sizeof(lines) - k, "; tp %d: %.2f s in TP collectives (rank 0)",
			 t->dp.lay.tp, t->dp.tp_comm_s);
	if (t->o->ep > 1) {
		k = strlen(lines);
		snprintf(lines + k, sizeof(lines) - k, "\ntrain: ep %lld (%s dispatch%s): dispatch/"
			 "combine %.1f ms per step on the slowest rank (median), %s",
			 (long long)t->o->ep, t->o->dispatch, t->o->ranks_per_node > 1 ? ", two-hop" : "",
			 train_ep_median_ms(c, false), t->ov_on ? "exposed" : "all exposed");
		k = strlen(lines);
		if (t->ov_on && k < sizeof(lines))
			snprintf(lines + k, sizeof(lines) - k, "; %.1f ms hidden under the other "
				 "chunk's compute (--ep-overlap, %ld operations overlapped on rank 0)",
				 train_ep_median_ms(c, true), t->ov.handoffs);
	}
	if (t->dev)
		train_dev_record(t, med, r, lines, sizeof(lines));
	ctx->failures += pass ? 0 : 1;
	/* NOTE: collective: a rank whose steps failed leaves it out as train_save does */
	if (!run_err && train_split_record(t, r, lines, sizeof(lines)))
		return MB_ERR_NOMEM;
	return train_summary(ctx->doc, c, lines);
}

