/*
 * train_dp.c - the rank grid of the training step and its data-parallel gradient path
 * (train_dp.h): layout check, groups, the part of the model, gradient accumulation, the
 * all-reduce or ZeRO-1 optimizer step per region.
 */
#include "train_dp.h"
#include "train_pp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mpi_world.h"
#include "status.h"
#include "timer.h"

int train_dp_layout(struct train_grid *g, long batch, long micro, const struct model_config *cfg)
{
	return train_dp_layout_of(mpi_world_size(), g, batch, micro, cfg);
}

int train_sp_check(bool sp, const struct train_grid *g, long micro, long seq)
{
	if (!sp)
		return 0;
	if (g->tp < 2)
		return cli_error_once("pass --sp with --tp 2 or more", "--sp: sequence "
				      "parallelism splits the tokens over the TP ranks (--tp %d)",
				      g->tp);
	if ((micro * seq) % g->tp)
		return cli_error_once("pass a --seq (or --micro-batch) whose tokens per forward "
				      "divide by --tp", "--sp: %ld tokens per forward (%ld x "
				      "--seq %ld) do not split over --tp %d", micro * seq, micro,
				      seq, g->tp);
	return 0;
}

int train_dp_layout_of(int world, struct train_grid *g, long batch, long micro,
		       const struct model_config *cfg)
{
	if (g->tp < 1 || g->pp < 1 || g->ep < 1 || g->etp < 1 || g->dp < 0)
		return cli_error_once("pass sizes of 1 or more", "--tp/--pp/--ep/--etp below 1");
	if (g->pp > cfg->layers)
		return cli_error_once("pass a --pp of at most the model's layers",
				      "--pp %d is more stages than the %lld layers", g->pp,
				      (long long)cfg->layers);
	if (g->ep > 1 && (cfg->routed_experts == 0 || cfg->routed_experts % g->ep))
		return cli_error_once("pass an --ep that divides the routed experts",
				      "--ep %d does not divide the %lld routed experts", g->ep,
				      (long long)cfg->routed_experts);
	int mp = g->tp * g->pp;
	if (world % mp)
		return cli_error_once("launch a multiple of --tp x --pp ranks",
				      "--tp %d x --pp %d does not divide the world of %d ranks",
				      g->tp, g->pp, world);
	int dp = world / mp;
	if (g->dp && g->dp != dp)
		return cli_error_once("leave --dp out (it is the world / (tp x pp)) or launch "
				      "tp x pp x dp ranks", "--dp %d with --tp %d --pp %d on %d "
				      "ranks: the data-parallel size is %d", g->dp, g->tp, g->pp,
				      world, dp);
	if ((world / (g->pp * g->etp)) % g->ep)
		return cli_error_once("pass --ep x --etp dividing the ranks of a stage",
				      "--ep %d x --etp %d does not divide the %d ranks of a stage",
				      g->ep, g->etp, world / g->pp);
	const char *why = net_tp_check(cfg, g->tp);
	if (why)
		return cli_error_once("pass a --tp that divides the heads, FFN widths and "
				      "vocabulary", "--tp %d on %s: %s", g->tp, cfg->name, why);
	if (g->tp > 1 && cfg->routed_experts > 0 && g->etp != g->tp)
		return cli_error_once("pass --etp equal to --tp", "--tp %d --etp %d: the routed "
				      "experts are sliced like the dense FFN over the TP ranks "
				      "(ETP = TP); other expert slicings are not built", g->tp,
				      g->etp);
	if (g->etp > 1 && g->etp != g->tp)
		return cli_error_once("pass --etp 1, or equal to --tp", "--etp %d with --tp %d: "
				      "experts split over other than the TP ranks are not built",
				      g->etp, g->tp);
	if (batch % dp)
		return cli_error_once("pass a --batch that the data-parallel size divides",
				      "the data-parallel size %d does not divide --batch %ld", dp,
				      batch);
	if (micro && (batch / dp) % micro)
		return cli_error_once("pass a --micro-batch that divides --batch / dp",
				      "--micro-batch %ld does not divide the %ld sequences per rank",
				      micro, batch / dp);
	g->dp = dp;
	return 0;
}

/* open_group makes the communicator of this rank's group g, named after it. */
static int open_group(struct train_dp *d, enum layout_group g, struct comm **out)
{
	int color = 0, r = comm_rank(d->world);
	int *ranks = malloc(sizeof(int) * (size_t)d->lay.world);
	if (!ranks)
		return MB_ERR_NOMEM;
	int n = layout_group_ranks(&d->lay, g, r, ranks, &color), idx = 0;
	for (int i = 0; i < n; i++)
		idx = ranks[i] == r ? i : idx;
	free(ranks);
	int err = comm_split(d->world, color, idx, out);
	if (!err)
		comm_set_name(*out, layout_group_name(g));
	return err;
}

/* tp_reduce: the TP collectives handed to the model, timed into tp_comm_s. */
static int tp_reduce(void *ctx, void *x, size_t n, enum comm_dtype t, enum comm_redop op)
{
	struct train_dp *d = ctx;
	double t0 = timer_now();
	int err = comm_allreduce(d->tp, x, x, n, t, op);
	d->tp_comm_s += timer_now() - t0;
	return err;
}

static int tp_sum_f32(void *ctx, float *x, size_t n)
{
	return tp_reduce(ctx, x, n, COMM_F32, COMM_SUM);
}

static int tp_sum_f64(void *ctx, double *x, size_t n)
{
	return tp_reduce(ctx, x, n, COMM_F64, COMM_SUM);
}

static int tp_max_f64(void *ctx, double *x, size_t n)
{
	return tp_reduce(ctx, x, n, COMM_F64, COMM_MAX);
}

/* tp_seq: sequence parallelism's in-place reduce-scatter (gather false) or all-gather of
 * x [n] over the TP group, rank r's chunk at r n / tp, through a copy of the chunk (the
 * communicator's send and receive buffers do not alias); timed into tp_comm_s. */
static int tp_seq(struct train_dp *d, void *x, size_t n, size_t es, enum comm_dtype t,
		  bool gather)
{
	int size = comm_size(d->tp), rank = comm_rank(d->tp);
	size_t c = n / (size_t)size;
	char *chunk = (char *)x + (size_t)rank * c * es;
	void *tmp = malloc(c ? c * es : 1);
	if (!tmp)
		return MB_ERR_NOMEM;
	double t0 = timer_now();
	int err;
	if (gather) {
		memcpy(tmp, chunk, c * es);
		err = comm_allgather(d->tp, tmp, x, c, t);
	} else {
		err = comm_reduce_scatter(d->tp, x, tmp, c, t, COMM_SUM);
		if (!err)
			memcpy(chunk, tmp, c * es);
	}
	d->tp_comm_s += timer_now() - t0;
	free(tmp);
	return err;
}

static int tp_rs_f32(void *ctx, float *x, size_t n)
{
	return tp_seq(ctx, x, n, sizeof(float), COMM_F32, false);
}

static int tp_rs_f64(void *ctx, double *x, size_t n)
{
	return tp_seq(ctx, x, n, sizeof(double), COMM_F64, false);
}

static int tp_ag_f32(void *ctx, float *x, size_t n)
{
	return tp_seq(ctx, x, n, sizeof(float), COMM_F32, true);
}

static int tp_ag_f64(void *ctx, double *x, size_t n)
{
	return tp_seq(ctx, x, n, sizeof(double), COMM_F64, true);
}

int train_dp_open(struct train_dp *d, const struct train_grid *g, bool zero1,
		  const struct model_config *cfg, double timeout_s, char *why, size_t why_len)
{
	memset(d, 0, sizeof(*d));
	d->timeout_s = timeout_s;
	int err = comm_world(NULL, timeout_s, &d->world, why, why_len);
	if (err)
		return err;
	d->lay = (struct parallel_layout){ .world = comm_size(d->world), .tp = g->tp, .cp = 1,
					   .dp = 0, .pp = g->pp, .etp = g->etp, .ep = g->ep,
					   .experts = (int)cfg->routed_experts,
					   .ranks_per_node = 1 };
	if ((err = layout_init(&d->lay, why, why_len)))
		return err;
	layout_coords_of(&d->lay, comm_rank(d->world), &d->me);
	struct { enum layout_group g; struct comm **c; } gs[] = {
		{ LAYOUT_DP, &d->dp }, { LAYOUT_EDP, &d->edp }, { LAYOUT_TP, &d->tp },
		{ LAYOUT_PP, &d->pp }, { LAYOUT_EP, &d->ep },
	};
	for (size_t i = 0; i < sizeof(gs) / sizeof(gs[0]) && !err; i++)
		err = open_group(d, gs[i].g, gs[i].c);
	if (err)
		return err;
	d->rank = comm_rank(d->dp);
	d->size = comm_size(d->dp);
	d->zero1 = zero1;
	d->tpc = (struct net_tp_comm){ d, tp_sum_f32, tp_sum_f64, tp_max_f64, tp_rs_f32, tp_rs_f64,
				     tp_ag_f32, tp_ag_f64 };
	return MB_OK;
}

const struct net_tp_comm *train_dp_tp(struct train_dp *d)
{
	return d->lay.tp > 1 ? &d->tpc : NULL;
}

void train_dp_part_of(const struct train_dp *d, const struct model_config *cfg, int rank,
		      struct net_part *p)
{
	struct layout_coords c;
	layout_coords_of(&d->lay, rank, &c);
	int pp = d->lay.pp, s = c.pp, layers = (int)cfg->layers;
	net_part_whole(p);
	p->tp = d->lay.tp;
	p->tp_rank = c.tp;
	p->ep = d->lay.ep;
	p->ep_rank = c.ep;
	if (pp == 1)
		return;
	/* the schedule's layer ranges (train_pp.h; an even split of one range per stage
	 * unless interleaved or DualPipe); the last stage keeps a copy of the embedding when
	 * MTP embeds or the head is tied */
	(void)layers;
	train_pp_stage_part(cfg, d->pp_schedule, pp, d->pp_chunks ? d->pp_chunks : 1, s, p);
}

void train_dp_part(const struct train_dp *d, const struct model_config *cfg, struct net_part *p)
{
	train_dp_part_of(d, cfg, comm_rank(d->world), p);
}

/* collect_from receives world rank r's part into the whole model's weights w. */
static int collect_from(struct train_dp *d, const struct net_layout *W, float *w, int r,
			char *why, size_t why_len)
{
	struct net_part part;
	struct net_layout P;
	train_dp_part_of(d, &W->cfg, r, &part);
	int err = net_layout_build_part(&W->cfg, &part, &P, why, why_len);
	if (err)
		return err;
	float *buf = malloc((P.total ? P.total : 1) * sizeof(float));
	err = buf ? comm_recv(d->world, buf, P.total, COMM_F32, r) : MB_ERR_NOMEM;
	if (!err && net_place(W, w, &P, buf))
		err = (snprintf(why, why_len, "rank %d's part does not fit the model", r), MB_ERR_ARG);
	free(buf);
	net_layout_free(&P);
	return err;
}

int train_dp_save(struct train_dp *d, const struct net_layout *L, const float *w,
		  const char *path, char *why, size_t why_len)
{
	bool split = d->lay.tp > 1 || d->lay.pp > 1 || d->lay.ep > 1 || d->lay.etp > 1;
	int me = comm_rank(d->world);
	if (!split)
		return me == 0 && path ? net_save(L, w, path, why, why_len) : MB_OK;
	if (me != 0)
		return comm_send(d->world, w, L->total, COMM_F32, 0);
	struct net_layout W;
	int err = net_layout_build(&L->cfg, &W, why, why_len);
	if (err)
		return err;
	float *whole = calloc(W.total, sizeof(float));
	err = whole ? net_place(&W, whole, L, w) : MB_ERR_NOMEM;
	for (int r = 1; r < d->lay.world && !err; r++)
		err = collect_from(d, &W, whole, r, why, why_len);
	if (!err && path)
		err = net_save(&W, whole, path, why, why_len);
	free(whole);
	net_layout_free(&W);
	return err;
}

/* region_init sizes region r: [lo, hi) over group c. */
static int region_init(struct train_dp *d, int r, struct comm *c, size_t lo, size_t hi)
{
	struct train_region *g = &d->reg[r];
	g->c = c;
	g->rank = comm_rank(c);
	g->size = comm_size(c);
	g->lo = lo;
	g->hi = hi;
	g->shard = (hi - lo + (size_t)g->size - 1) / (size_t)g->size;
	g->own_lo = lo + g->shard * (size_t)g->rank;
	g->own_lo = g->own_lo < hi ? g->own_lo : hi;
	g->own_hi = g->own_lo + g->shard < hi ? g->own_lo + g->shard : hi;
	size_t n = g->shard * (size_t)g->size;
	g->acc = calloc(n ? n : 1, sizeof(float));
	g->buf = calloc(n ? n : 1, sizeof(float));
	return g->acc && g->buf ? MB_OK : MB_ERR_NOMEM;
}

int train_dp_buffers(struct train_dp *d, const struct net_layout *L)
{
	d->total = L->total;
	d->blocks = L->blocks;
	d->experts = (int)L->cfg.routed_experts;
	int err = region_init(d, 0, d->dp, 0, L->dense_total);
	if (!err)
		err = region_init(d, 1, d->edp, L->dense_total, L->total);
	d->moments = 0;
	if (d->zero1)
		for (int r = 0; r < 2; r++)
			d->moments += d->reg[r].own_hi - d->reg[r].own_lo;
	d->load = calloc((size_t)d->blocks * (size_t)(d->experts ? d->experts : 1), sizeof(long));
	return err ? err : d->load ? MB_OK : MB_ERR_NOMEM;
}

void train_dp_close(struct train_dp *d)
{
	for (int r = 0; r < 2; r++) {
		free(d->reg[r].acc);
		free(d->reg[r].buf);
	}
	free(d->load);
	struct comm *cs[] = { d->dp, d->edp, d->tp, d->pp, d->ep, d->world };
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
		if (cs[i])
			comm_free(cs[i]);
	memset(d, 0, sizeof(*d));
}

void train_dp_accumulate(struct train_dp *d, const float *g, const long *const *load)
{
	bool first = d->micro_done == 0;
	for (int r = 0; r < 2; r++) {
		struct train_region *q = &d->reg[r];
		net_vec_pass(first ? NET_VEC_COPY : NET_VEC_ADD, q->acc, g + q->lo, 1.0f, q->hi - q->lo);
	}
	for (int b = 0; b < d->blocks && d->experts; b++) {
		long *dst = d->load + (size_t)b * (size_t)d->experts;
		for (int e = 0; e < d->experts; e++)
			dst[e] = (first ? 0 : dst[e]) + (load[b] ? load[b][e] : 0);
	}
	d->micro_done++;
}

/* dp_loads sums the step's expert loads over the DP group and points load_out at them. */
static int dp_loads(struct train_dp *d, const long **load_out)
{
	int err = MB_OK;
	size_t n = (size_t)d->blocks * (size_t)d->experts;
	double t0 = timer_now();
	if (n && d->size > 1)
		err = comm_allreduce(d->dp, d->load, d->load, n, COMM_I64, COMM_SUM);
	/* pipeline stages hold other blocks: the sum gives every block's (the bias update
	 * touches the held ones alone) */
	if (!err && n && d->lay.pp > 1)
		err = comm_allreduce(d->pp, d->load, d->load, n, COMM_I64, COMM_SUM);
	d->comm_s += timer_now() - t0;
	for (int b = 0; b < d->blocks; b++) {
		const long *l = d->load + (size_t)b * (size_t)d->experts;
		bool any = false;
		for (int e = 0; e < d->experts; e++)
			any = any || l[e] != 0;
		load_out[b] = any ? l : NULL;
	}
	return err;
}

/* sumsq_counted is net_grad_sumsq_range over [lo, hi) less the elements another rank
 * counts (d->norm_skip_lo/hi). */
static double sumsq_counted(const struct train_dp *d, const struct net_layout *L,
			    const float *g, size_t lo, size_t hi)
{
	double ss = net_grad_sumsq_range(L, g, lo, hi);
	size_t a = d->norm_skip_lo > lo ? d->norm_skip_lo : lo;
	size_t b = d->norm_skip_hi < hi ? d->norm_skip_hi : hi;
	return a < b ? ss - net_grad_sumsq_range(L, g, a, b) : ss;
}

/* region_reduce reduces region q's accumulated gradients into g (times inv): all of it,
 * or the owned shard under ZeRO-1; returns the sum of squares this rank counts. */
static int region_reduce(struct train_dp *d, const struct net_layout *L, struct train_region *q,
			 float inv, float *g, double *ss)
{
	int err = MB_OK;
	double t0 = timer_now();
	if (d->zero1 && q->size > 1) {
		float *mine = q->buf + (q->own_lo - q->lo);
		err = comm_reduce_scatter(q->c, q->acc, mine, q->shard, COMM_F32, COMM_SUM);
		d->comm_s += timer_now() - t0;
		for (size_t j = q->own_lo; j < q->own_hi && !err; j++)
			g[j] = mine[j - q->own_lo] * inv;
		*ss = err ? 0 : sumsq_counted(d, L, g, q->own_lo, q->own_hi);
		return err;
	}
	if (q->size > 1 && q->hi > q->lo)
		err = comm_allreduce(q->c, q->acc, q->acc, q->hi - q->lo, COMM_F32, COMM_SUM);
	d->comm_s += timer_now() - t0;
	if (!err)
		net_vec_pass(NET_VEC_SCALE, g + q->lo, q->acc, inv, q->hi - q->lo);
	*ss = err || q->rank != 0 ? 0 : sumsq_counted(d, L, g, q->lo, q->hi);
	return err;
}

/* region_update applies AdamW to region q (its shard under ZeRO-1, then the gather);
 * m and v hold the moments of the first element updated. */
static int region_update(struct train_dp *d, const struct net_layout *L, struct train_region *q,
			 const struct net_adamw *a, long t, double scale, float *w, float *g,
			 float *m, float *v)
{
	if (!d->zero1 || q->size == 1) {
		net_adamw_range(L, a, t, scale, q->lo, q->hi, w, g, m, v);
		return MB_OK;
	}
	net_adamw_range(L, a, t, scale, q->own_lo, q->own_hi, w, g, m, v);
	memcpy(q->acc, w + q->own_lo, (q->own_hi - q->own_lo) * sizeof(float));
	double t0 = timer_now();
	int err = comm_allgather(q->c, q->acc, q->buf, q->shard, COMM_F32);
	d->comm_s += timer_now() - t0;
	if (!err)
		memcpy(w + q->lo, q->buf, (q->hi - q->lo) * sizeof(float));
	return err;
}

int train_dp_step(struct train_dp *d, const struct net_layout *L, const struct net_adamw *a,
		  long t, float *w, float *g, float *m, float *v, const long **load_out,
		  double *norm)
{
	float inv = 1.0f / (float)(d->size * (d->micro_done ? d->micro_done : 1));
	double ss[2] = { 0, 0 };
	int err = dp_loads(d, load_out);
	for (int r = 0; r < 2 && !err; r++)
		err = region_reduce(d, L, &d->reg[r], inv, g, &ss[r]);
	double sum = ss[0] + ss[1], t0 = timer_now();
	if (!err && d->lay.world > 1)
		err = comm_host_allreduce_f64(d->world, &sum, 1, COMM_SUM);
	d->comm_s += timer_now() - t0;
	*norm = sqrt(sum);
	double scale = net_clip_scale(a, *norm);
	size_t at = 0;   /* ZeRO-1's moments hold the owned shards alone, dense first */
	for (int r = 0; r < 2 && !err; r++) {
		struct train_region *q = &d->reg[r];
		size_t k = d->zero1 ? at : q->lo;
		err = region_update(d, L, q, a, t, scale, w, g, m + k, v + k);
		at += q->own_hi - q->own_lo;
	}
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
	o->moments = d->zero1 ? d->moments : 0;
}

bool train_dp_owned(const struct train_dp *d, size_t j)
{
	for (int r = 0; r < 2; r++) {
		const struct train_region *q = &d->reg[r];
		if (j >= q->lo && j < q->hi)
			return !d->zero1 || q->size == 1 || (j >= q->own_lo && j < q->own_hi);
	}
	return false;
}

int train_dp_gather(struct train_dp *d, float *x)
{
	int err = MB_OK;
	for (int r = 0; r < 2 && d->zero1 && !err; r++) {
		struct train_region *q = &d->reg[r];
		if (q->size == 1)
			continue;
		memcpy(q->acc, x + q->own_lo, (q->own_hi - q->own_lo) * sizeof(float));
		err = comm_allgather(q->c, q->acc, q->buf, q->shard, COMM_F32);
		if (!err)
			memcpy(x + q->lo, q->buf, (q->hi - q->lo) * sizeof(float));
	}
	return err;
}
