/*
 * train_dp.c - data parallelism of the training step (train_dp.h): layout check, DP
 * group, gradient accumulation, all-reduce or ZeRO-1 optimizer step.
 */
#include "train_dp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mpi_world.h"
#include "status.h"
#include "timer.h"

int train_dp_layout(int dp, long batch, long micro, int *dp_out)
{
	int world = mpi_world_size();
	int n = dp ? dp : world;
	if (world % n)
		return cli_error_once("launch a multiple of --dp ranks",
				      "--dp %d does not divide the world of %d ranks", n, world);
	if (n != world)
		return cli_error_once("pass --dp equal to the number of ranks",
				      "--dp %d on %d ranks: the other %d-fold (tp, pp, ep) is not "
				      "built yet", n, world, world / n);
	if (batch % n)
		return cli_error_once("pass a --batch that --dp divides",
				      "--dp %d does not divide --batch %ld", n, batch);
	if (micro && (batch / n) % micro)
		return cli_error_once("pass a --micro-batch that divides --batch / --dp",
				      "--micro-batch %ld does not divide the %ld sequences per rank",
				      micro, batch / n);
	*dp_out = n;
	return 0;
}

/* dp_group makes the DP communicator from the layout's DP group of this rank. */
static int dp_group(struct train_dp *d)
{
	int color = 0, r = comm_rank(d->world);
	int *ranks = malloc(sizeof(int) * (size_t)d->lay.world);
	if (!ranks)
		return MB_ERR_NOMEM;
	int n = layout_group_ranks(&d->lay, LAYOUT_DP, r, ranks, &color), idx = 0;
	for (int i = 0; i < n; i++)
		idx = ranks[i] == r ? i : idx;
	free(ranks);
	int err = comm_split(d->world, color, idx, &d->dp);
	if (!err)
		comm_set_name(d->dp, "dp");
	return err;
}

int train_dp_open(struct train_dp *d, int dp, bool zero1, const struct net_layout *L,
		  double timeout_s, char *why, size_t why_len)
{
	memset(d, 0, sizeof(*d));
	int err = comm_world(NULL, timeout_s, &d->world, why, why_len);
	if (err)
		return err;
	d->lay = (struct parallel_layout){ .world = comm_size(d->world), .tp = 1, .cp = 1,
					   .dp = dp, .pp = 1, .etp = 1, .ep = 1,
					   .ranks_per_node = 1 };
	if ((err = layout_init(&d->lay, why, why_len)) || (err = dp_group(d)))
		return err;
	d->rank = comm_rank(d->dp);
	d->size = comm_size(d->dp);
	d->zero1 = zero1;
	d->total = L->total;
	d->shard = (L->total + (size_t)d->size - 1) / (size_t)d->size;
	d->lo = d->shard * (size_t)d->rank;
	d->lo = d->lo < d->total ? d->lo : d->total;
	d->hi = d->lo + d->shard < d->total ? d->lo + d->shard : d->total;
	d->blocks = L->blocks;
	d->experts = (int)L->cfg.routed_experts;
	size_t nbuf = d->shard * (size_t)d->size;
	d->acc = calloc(nbuf, sizeof(float));
	d->buf = calloc(nbuf, sizeof(float));
	d->load = calloc((size_t)d->blocks * (size_t)(d->experts ? d->experts : 1), sizeof(long));
	return d->acc && d->buf && d->load ? MB_OK : MB_ERR_NOMEM;
}

void train_dp_close(struct train_dp *d)
{
	free(d->acc);
	free(d->buf);
	free(d->load);
	if (d->dp != d->world)
		comm_free(d->dp);
	comm_free(d->world);
	memset(d, 0, sizeof(*d));
}

void train_dp_accumulate(struct train_dp *d, const float *g, const long *const *load)
{
	bool first = d->micro_done == 0;
	if (first)
		memcpy(d->acc, g, d->total * sizeof(float));
	else
		for (size_t j = 0; j < d->total; j++)
			d->acc[j] += g[j];
	for (int b = 0; b < d->blocks && d->experts; b++) {
		long *dst = d->load + (size_t)b * (size_t)d->experts;
		for (int e = 0; e < d->experts; e++)
			dst[e] = (first ? 0 : dst[e]) + (load[b] ? load[b][e] : 0);
	}
	d->micro_done++;
}

/* dp_loads sums the step's expert loads over the group and points load_out at them. */
static int dp_loads(struct train_dp *d, const long **load_out)
{
	int err = MB_OK;
	size_t n = (size_t)d->blocks * (size_t)d->experts;
	if (n && d->size > 1)
		err = comm_allreduce(d->dp, d->load, d->load, n, COMM_I64, COMM_SUM);
	for (int b = 0; b < d->blocks; b++) {
		const long *l = d->load + (size_t)b * (size_t)d->experts;
		bool any = false;
		for (int e = 0; e < d->experts; e++)
			any = any || l[e] != 0;
		load_out[b] = any ? l : NULL;
	}
	return err;
}

/* dp_zero1 is the ZeRO-1 update: reduce-scatter, the global norm from the shards' sums
 * of squares, AdamW on [lo, hi), all-gather of the parameters. */
static int dp_zero1(struct train_dp *d, const struct net_layout *L, const struct net_adamw *a,
		    long t, float inv, float *w, float *g, float *m, float *v, double *norm)
{
	float *mine = d->buf + d->lo;
	int err = comm_reduce_scatter(d->dp, d->acc, mine, d->shard, COMM_F32, COMM_SUM);
	if (err)
		return err;
	for (size_t j = d->lo; j < d->hi; j++)
		g[j] = mine[j - d->lo] * inv;
	double ss = net_grad_sumsq_range(L, g, d->lo, d->hi);
	if ((err = comm_host_allreduce_f64(d->dp, &ss, 1, COMM_SUM)))
		return err;
	*norm = sqrt(ss);
	net_adamw_range(L, a, t, net_clip_scale(a, *norm), d->lo, d->hi, w, g, m, v);
	memcpy(d->acc, w + d->lo, (d->hi - d->lo) * sizeof(float));
	err = comm_allgather(d->dp, d->acc, d->buf, d->shard, COMM_F32);
	if (!err)
		memcpy(w, d->buf, d->total * sizeof(float));
	return err;
}

int train_dp_step(struct train_dp *d, const struct net_layout *L, const struct net_adamw *a,
		  long t, float *w, float *g, float *m, float *v, const long **load_out,
		  double *norm)
{
	float inv = 1.0f / (float)(d->size * (d->micro_done ? d->micro_done : 1));
	double t0 = timer_now();
	int err = dp_loads(d, load_out);
	if (!err && d->zero1 && d->size > 1) {
		err = dp_zero1(d, L, a, t, inv, w, g, m, v, norm);
		d->comm_s += timer_now() - t0;
		d->micro_done = 0;
		return err;
	}
	if (!err && d->size > 1)
		err = comm_allreduce(d->dp, d->acc, d->acc, d->total, COMM_F32, COMM_SUM);
	d->comm_s += timer_now() - t0;
	for (size_t j = 0; j < d->total && !err; j++)
		g[j] = d->acc[j] * inv;
	if (!err)
		*norm = net_adamw_step(L, a, t, w, g, m, v);
	d->micro_done = 0;
	return err;
}

int train_dp_mean(struct train_dp *d, double *x, int n)
{
	if (d->size == 1)
		return MB_OK;
	int err = comm_host_allreduce_f64(d->dp, x, (size_t)n, COMM_SUM);
	for (int i = 0; i < n; i++)
		x[i] /= d->size;
	return err;
}

int train_dp_max(struct train_dp *d, double *x, int n)
{
	return comm_host_allreduce_f64(d->world, x, (size_t)n, COMM_MAX);
}

void train_dp_moments(const struct train_dp *d, struct net_options *o)
{
	bool shard = d->zero1 && d->size > 1;
	o->moments_lo = shard ? d->lo : 0;
	o->moments_hi = shard ? d->hi : 0;
}

int train_dp_gather(struct train_dp *d, float *x)
{
	if (!d->zero1 || d->size == 1)
		return MB_OK;
	memcpy(d->acc, x + d->lo, (d->hi - d->lo) * sizeof(float));
	int err = comm_allgather(d->dp, d->acc, d->buf, d->shard, COMM_F32);
	if (!err)
		memcpy(x, d->buf, d->total * sizeof(float));
	return err;
}
