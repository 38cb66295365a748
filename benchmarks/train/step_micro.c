/*
 * step_micro.c - micro-batches and the EP overlap of `moebench step` (step_micro.h).
 */
#include "step_micro.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "status.h"

int step_micro_check(long per_rank, long micro, int ep, int pp, bool overlap)
{
	if (micro && pp > 1)
		return cli_error_once("leave --micro-batch out with --pp", "--micro-batch in "
				      "`step` is one pipeline stage's");
	return overlap ? train_overlap_check(ep, pp, (int)(micro ? per_rank / micro : 1)) : 0;
}

struct net_f32 *step_micro_model(const struct step_micro *sm, int k)
{
	return sm->replicas > 1 ? sm->m[k == sm->n - 1 ? 0 : k + 1] : sm->m[k];
}

double step_grad_error(const struct net_tensor *t, const float *g, const double *ref)
{
	size_t n = (size_t)(t->rows * t->cols), stride = n > 4096 ? n / 4096 : 1;
	double num = 0, den = 0;
	for (size_t j = t->off; j < t->off + n; j += stride) {
		double d = g[j] - ref[j];
		num += d * d, den += ref[j] * ref[j];
	}
	return den > 0 ? sqrt(num / den) : sqrt(num);
}

void step_grad_check(const struct net_tensor *t, const float *g, const double *ref,
		     double gtol, struct bench_check *chk)
{
	double e = step_grad_error(t, g, ref) / gtol;
	chk->mismatches += e > 1;
	chk->max_err = fmax(chk->max_err, e);
	chk->samples++;
}

int step_micro_open(struct step_micro *sm, const struct net_layout *L, struct net_f32 *m0,
		    int micro, int n, int seq, int len, struct train_dp *dp,
		    struct train_ep *ep, int rpn, enum ep_wire wire, bool overlap,
		    int replicas, struct net_profile *prof)
{
	memset(sm, 0, sizeof(*sm));
	sm->micro = micro, sm->n = n, sm->len = len, sm->dp = dp, sm->prof = prof;
	sm->replicas = replicas > 1 && n > 1 ? replicas : 1;
	if (n <= 1)
		return MB_OK;
	sm->m = calloc((size_t)n, sizeof(*sm->m));
	if (!sm->m)
		return MB_ERR_NOMEM;
	sm->m[0] = m0;
	int err = MB_OK;
	for (int k = 1; k < n && !err; k++) {
		err = net_create_f32(L, net_options_of_f32(m0), micro, seq, 0, &sm->m[k]);
		if (!err)
			err = sm->replicas > 1 ? net_share_weights_f32(sm->m[k], m0)
					       : net_share_params_f32(sm->m[k], m0);
		if (!err)
			net_tp_set_f32(sm->m[k], train_dp_tp(dp));
	}
	if (!err && overlap)
		err = comm_split(dp->ep, 0, comm_rank(dp->ep), &sm->ep_dup);
	if (!err && overlap) {
		comm_set_name(sm->ep_dup, "ep.overlap");
		err = train_ep_open(&sm->ep2, sm->ep_dup, L, rpn, wire);
	}
	/* under overlap the odd micro-batches take the second EP state */
	for (int k = 1; !err && k < n && train_ep_active(ep); k++)
		net_comm_set_f32(sm->m[k], overlap && k % 2 ? &sm->ep2.nc : &ep->nc);
	if (!err && overlap)
		err = train_overlap_init(&sm->ov, dp->ep, sm->ep_dup, sm->m[0], sm->m[1]);
	sm->ov_on = !err && overlap;
	/* a micro-batch's clock: the overlap chunk's, its thread's in a wave, or prof */
	for (int k = 0; !err && k < n; k++)
		net_profile_set_f32(step_micro_model(sm, k), overlap ? &sm->ov.prof[k % 2]
						  : sm->replicas > 1 && prof
						  ? &sm->rprof[k % sm->replicas] : prof);
	for (int r = 0; prof && r < sm->replicas; r++)
		sm->rprof[r].now = prof->now;
	return err;
}

void step_micro_close(struct step_micro *sm)
{
	if (sm->ov_on)
		train_overlap_free(&sm->ov, sm->dp->ep, sm->ep_dup);
	for (int k = 1; sm->m && k < sm->n; k++)
		net_destroy_f32(sm->m[k]);
	free(sm->m);
	train_ep_close(&sm->ep2);
	comm_free(sm->ep_dup);
	memset(sm, 0, sizeof(*sm));
}

static const int32_t *micro_rows(void *ctx, int k)
{
	struct step_micro *sm = ctx;
	return sm->rows + (size_t)k * (size_t)sm->micro * (size_t)sm->len;
}

/* micro_done accumulates micro-batch k's gradients (all but the last) and its losses. */
static void micro_done(void *ctx, struct net_f32 *m, int k, const struct net_stats *st)
{
	struct step_micro *sm = ctx;
	const struct net_layout *L = net_layout_of_f32(m);
	const long *load[1024 + 16];
	double inv = 1.0 / sm->n;
	if (k < sm->n - 1) {
		for (int i = 0; i < L->blocks; i++)
			load[i] = net_expert_load_f32(m, i);
		train_dp_accumulate(sm->dp, net_grads_f32(m), load);
	}
	sm->sum.loss += st->loss * inv;
	sm->sum.main_loss += st->main_loss * inv;
	sm->sum.mtp_loss += st->mtp_loss * inv;
	sm->sum.balance_loss += st->balance_loss * inv;
	if (st->load_max_mean > sm->sum.load_max_mean)
		sm->sum.load_max_mean = st->load_max_mean;
	sm->sum.route_hash = sm->sum.route_hash * 1099511628211ull ^ st->route_hash;
}

/* replicas_run runs the micro-batches wave by wave (train_replicas_run), then takes
 * their gradients and losses in micro-batch order. */
static int replicas_run(struct step_micro *sm)
{
	struct net_f32 *m[TRAIN_REPLICAS_MAX];
	const int32_t *rows[TRAIN_REPLICAS_MAX];
	int err = MB_OK, r = sm->replicas;
	for (int k0 = 0; k0 < sm->n && !err; k0 += r) {
		for (int i = 0; i < r; i++) {
			m[i] = step_micro_model(sm, k0 + i);
			rows[i] = micro_rows(sm, k0 + i);
		}
		err = train_replicas_run(m, rows, r, sm->rst, sm->rprof, sm->prof);
		for (int i = 0; i < r && !err; i++)
			micro_done(sm, m[i], k0 + i, &sm->rst[i]);
	}
	return err;
}

int step_micro_run(struct step_micro *sm, const int32_t *rows, struct net_stats *st)
{
	struct train_overlap_job j = { sm->m, sm->n, sm->n, micro_rows, micro_done, sm };
	int err = MB_OK;
	memset(&sm->sum, 0, sizeof(sm->sum));
	sm->rows = rows;
	if (sm->ov_on) {
		err = train_overlap_run(&sm->ov, &j);
	} else if (sm->replicas > 1) {
		err = replicas_run(sm);
	} else {
		for (int k = 0; k < sm->n && !err; k++) {
			struct net_stats s1;
			err = net_forward_f32(sm->m[k], micro_rows(sm, k), &s1);
			if (!err)
				err = net_backward_f32(sm->m[k]);
			if (!err)
				micro_done(sm, sm->m[k], k, &s1);
		}
	}
	*st = sm->sum;
	return err;
}

struct net_f32 *step_micro_last(const struct step_micro *sm)
{
	return step_micro_model(sm, sm->n - 1);
}

int step_micro_reference(struct step_micro *sm, struct net_f64 *md, const int32_t *rows,
			 double *loss)
{
	const struct net_layout *L = net_layout_of_f32(sm->m[0]);
	double *g = net_grads_f64(md), *acc = calloc(L->total + 1, sizeof(double));
	int err = acc ? MB_OK : MB_ERR_NOMEM;
	sm->rows = rows;
	*loss = 0;
	for (int k = 0; k < sm->n && !err; k++) {
		struct net_stats st;
		err = net_fix_selection_f64(md, step_micro_model(sm, k));
		if (!err)
			err = net_forward_f64(md, micro_rows(sm, k), &st);
		if (!err)
			err = net_backward_f64(md);
		for (size_t i = 0; !err && i < L->total; i++)
			acc[i] += g[i];
		*loss += st.loss / sm->n;
	}
	for (size_t i = 0; !err && i < L->total; i++)
		g[i] = acc[i] / sm->n;
	free(acc);
	return err;
}

void step_micro_profile(struct step_micro *sm, struct net_profile *prof)
{
	if (sm->ov_on)
		train_overlap_fold(&sm->ov, prof);
}

void step_micro_ep(const struct step_micro *sm, double *exposed_extra, double *hidden)
{
	*exposed_extra = sm->ov_on ? sm->ep2.exposed_s - sm->ov.away_s : 0;
	*hidden = sm->ov_on ? sm->ov.hidden_s : 0;
}
