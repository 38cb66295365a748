/*
 * train_pp.c - pipeline parallelism on the training step (train_pp.h): the refusals, the
 * stages' parts, the step through the executor, the bubble against the simulator, the
 * forward-only pass of validation and the gathering of the stages for --save.
 */
#include "train_pp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mpi_world.h"
#include "pipeline_exec_impl.h"
#include "result.h"
#include "status.h"

/* pp_built says whether the step runs schedule s. */
static bool pp_built(enum pipe_schedule s)
{
	return s >= 0 && s < PIPE_N_SCHEDULES;
}

int train_pp_check(int pp, const char *schedule, int chunks, long n_micro,
		   const struct model_config *cfg)
{
	enum pipe_schedule s;
	char why[256];
	int layers = (int)cfg->layers;
	if (pipe_schedule_parse(schedule, &s))
		return cli_error_once(pipe_schedule_names(), "--schedule %s: unknown schedule",
				      schedule);
	if (pp == 1)
		return 0;
	if ((s == PIPE_DUALPIPE || s == PIPE_DUALPIPEV) && pp % 2)
		return cli_error_once("pass an even --pp for DualPipe", "--schedule %s with "
				      "--pp %d: DualPipe pairs the stages, it needs an even number",
				      schedule, pp);
	/* the virtual stages over which the layers are split: interleaved's PP x v, the V of
	 * DualPipeV's 2 PP; DualPipe's second copy runs the same PP stages */
	int v = s == PIPE_INTERLEAVED ? chunks : s == PIPE_DUALPIPEV ? 2 : 1;
	if (v > 1 && layers % (pp * v))
		return cli_error_once("pass a --pp and --chunks whose product divides the layers",
				      "--schedule %s: %d stages x %d chunks do not divide the %d "
				      "layers", schedule, pp, v, layers);
	if (v > NET_PART_RANGES)
		return cli_error_once("pass fewer --chunks", "--chunks %d: at most %d", v,
				      NET_PART_RANGES);
	if (pp > TRAIN_PP_MAX)
		return cli_error_once("pass a smaller --pp", "--pp %d: at most %d", pp, TRAIN_PP_MAX);
	if (pipe_plan_check(s, pp, (int)n_micro, chunks, why, sizeof(why)))
		return cli_error_once("pass a --batch / --micro-batch giving the schedule's "
				      "micro-batch count", "--schedule %s with %ld micro-batches per "
				      "step: %s", schedule, n_micro, why);
	if (!pp_built(s))
		return cli_error_once("use --schedule gpipe, 1f1b, interleaved or zb-h1", "--schedule %s: "
				      "this schedule on the training step is not built yet", schedule);
	return 0;
}

/* vstage returns the virtual stage device s runs as its chunk c under schedule sch (v
 * chunks) and the virtual stages' count *S, over which the layers are split evenly. */
static int vstage(enum pipe_schedule sch, int pp, int v, int s, int c, int *S)
{
	*S = sch == PIPE_INTERLEAVED ? pp * v : sch == PIPE_DUALPIPEV ? 2 * pp : pp;
	switch (sch) {
	case PIPE_INTERLEAVED:
		return c * pp + s;
	case PIPE_DUALPIPE:       /* direction 1 runs stage PP-1-s here */
		return c == 0 ? s : pp - 1 - s;
	case PIPE_DUALPIPEV:      /* the V: stages s and 2PP-1-s */
		return c == 0 ? s : 2 * pp - 1 - s;
	default:
		return s;
	}
}

/* stage_part sets part p's ranges for pipeline device s of pp (v chunks). */
static void stage_part(const struct model_config *cfg, enum pipe_schedule sch, int pp, int v,
		       int s, struct net_part *p)
{
	int layers = (int)cfg->layers, S = 1;
	p->n_ranges = v;
	p->head = false;
	bool first = false;
	for (int c = 0; c < v; c++) {
		int vs = vstage(sch, pp, v, s, c, &S);
		p->lo[c] = layers * vs / S;
		p->hi[c] = layers * (vs + 1) / S;
		p->head = p->head || vs == S - 1;
		first = first || vs == 0;
	}
	p->embed = first || (p->head && (cfg->mtp_depth > 0 || cfg->tied_embeddings));
}

/* sched_of parses a schedule name (1f1b when unknown: refused before, by train_pp_check). */
static enum pipe_schedule sched_of(const char *schedule)
{
	enum pipe_schedule s;
	return pipe_schedule_parse(schedule, &s) == MB_OK ? s : PIPE_1F1B;
}

/* chunks_of is the model chunks per rank schedule name asks for. */
static int chunks_of(const char *schedule, int chunks)
{
	enum pipe_schedule s = sched_of(schedule);
	return s == PIPE_INTERLEAVED ? chunks : s == PIPE_DUALPIPE || s == PIPE_DUALPIPEV ? 2 : 1;
}

void train_pp_stage_part(const struct model_config *cfg, int schedule, int pp, int chunks,
			 int stage, struct net_part *p)
{
	stage_part(cfg, (enum pipe_schedule)schedule, pp, chunks, stage, p);
}

void train_pp_part(struct train_dp *d, const struct model_config *cfg, const char *schedule,
		   int chunks, struct net_part *p)
{
	d->pp_schedule = (int)sched_of(schedule);
	d->pp_chunks = chunks_of(schedule, chunks);
	train_dp_part(d, cfg, p);
}

/* remote says whether virtual stage `other` of micro-batch mb runs on another device. */
static bool remote(const struct train_pp *p, int mb, int other)
{
	return pipe_stage_device(&p->plan, mb, other) != p->stage;
}

/* pp_fwd runs forward (mb, stage): its input from the next received message (a stage on
 * another device), the micro-batch's turn buffer (the previous stage on this device:
 * DualPipeV's V) or the tokens; its output likewise. */
static int pp_fwd(struct train_pp *p, int mb, int stage, float *const *in, float *const *out,
		  int *ri, int *si)
{
	int S = p->plan.stages, c = pipe_stage_chunk(&p->plan, mb, stage);
	float *turn = p->turn ? p->turn + (size_t)mb * p->msg : NULL;
	const float *src = stage == 0 ? NULL : remote(p, mb, stage - 1) ? in[(*ri)++] : turn;
	float *dst = stage == S - 1 ? NULL : remote(p, mb, stage + 1) ? out[(*si)++] : turn;
	return net_stage_forward_f32(p->mb[mb], c, p->rows + (size_t)mb * p->mb_tokens, src, dst,
				     &p->st[mb * p->chunks + c]);
}

/* pp_bwd runs backward (mb, stage), the full one or (zero-bubble) its input pass. */
static int pp_bwd(struct train_pp *p, int mb, int stage, bool full, float *const *in,
		  float *const *out, int *ri, int *si)
{
	int S = p->plan.stages, c = pipe_stage_chunk(&p->plan, mb, stage);
	float *turn = p->turn ? p->turn + (size_t)mb * p->msg : NULL;
	const float *src = stage == S - 1 ? NULL : remote(p, mb, stage + 1) ? in[(*ri)++] : turn;
	float *dst = stage == 0 ? NULL : remote(p, mb, stage - 1) ? out[(*si)++] : turn;
	return full ? net_stage_backward_f32(p->mb[mb], c, src, dst)
		    : net_stage_backward_input_f32(p->mb[mb], c, src, dst);
}

/* pp_run is the executor's stage work: the plan operation behind op (this rank's i-th),
 * on its micro-batch's model, messages in the order pipe_lower lists them (an F&B pair:
 * the forward's, then the backward's). */
static int pp_run(void *ctx, const struct pipe_exec_op *op, float *const *in, float *const *out)
{
	struct train_pp *p = ctx;
	long i = op - p->prog.ops;
	if (i < 0 || i >= p->prog.n_ops)
		return MB_ERR_ARG;
	const struct pipe_op *po = &p->plan.ops[p->plan.first[p->stage] + i];
	int ri = 0, si = 0, err = MB_OK;
	switch (po->kind) {
	case PIPE_OP_F:
		return pp_fwd(p, po->mb, po->stage, in, out, &ri, &si);
	case PIPE_OP_B:
		return pp_bwd(p, po->mb, po->stage, po->with_w, in, out, &ri, &si);
	case PIPE_OP_W:
		return net_stage_wgrad_f32(p->mb[po->mb], pipe_stage_chunk(&p->plan, po->mb,
									   po->stage));
	default:
		err = pp_fwd(p, po->mb, po->stage, in, out, &ri, &si);
		return err ? err : pp_bwd(p, po->mb2, po->stage2, po->with_w, in, out, &ri, &si);
	}
}

/* copy_group opens the group whose gradients are summed before the optimizer and finds
 * what it sums [emb_lo, emb_hi): the embedding over the first and last stage (its two
 * copies); under DualPipe every parameter over the device pair d, PP-1-d (the two copies
 * of their stages); nothing under DualPipeV (device 0 holds both ends: one embedding).
 * The copy a rank does not count in the clipping norm goes to norm_skip. Collective
 * over the pipeline (ranks outside a group get one of their own, unused). */
static int copy_group(struct train_pp *p, const struct net_layout *L)
{
	enum pipe_schedule sch = p->plan.schedule;
	int color = 1 + p->stage, mirror = p->pp - 1 - p->stage;
	if (sch == PIPE_DUALPIPE)
		color = p->stage < mirror ? p->stage : mirror;
	else if (sch != PIPE_DUALPIPEV && (L->cfg.mtp_depth > 0 || L->cfg.tied_embeddings) &&
		 (p->stage == 0 || p->stage == p->pp - 1))
		color = 0;
	int err = comm_split(p->d->pp, color, p->stage, &p->embed);
	if (err || comm_size(p->embed) == 1)
		return err;
	if (sch == PIPE_DUALPIPE) {
		p->emb_lo = 0;
		p->emb_hi = L->total;
	} else if (L->embed >= 0) {
		const struct net_tensor *t = &L->t[L->embed];
		p->emb_lo = t->off;
		p->emb_hi = t->off + (size_t)(t->rows * t->cols);
	}
	/* the later rank of the group holds the copy another counts */
	if (p->stage > mirror || (sch != PIPE_DUALPIPE && p->stage == p->pp - 1)) {
		p->d->norm_skip_lo = p->emb_lo;
		p->d->norm_skip_hi = p->emb_hi;
	}
	return MB_OK;
}

int train_pp_open(struct train_pp *p, struct train_dp *d, struct net_f32 *m0,
		  const char *schedule, int chunks, int micro, int seq, int n_micro, uint64_t seed)
{
	const struct net_layout *L = net_layout_of_f32(m0);
	enum pipe_schedule s;
	char why[256];
	memset(p, 0, sizeof(*p));
	p->d = d;
	p->pp = d->lay.pp;
	p->stage = d->me.pp;
	p->chunks = chunks_of(schedule, chunks);
	p->n_micro = n_micro;
	p->len = seq + 1 + (int)L->cfg.mtp_depth;
	p->mb_tokens = (size_t)micro * (size_t)p->len;
	p->msg = (size_t)micro * (size_t)seq * (size_t)L->cfg.dim;
	if (comm_rank(d->pp) != p->stage || pipe_schedule_parse(schedule, &s))
		return MB_ERR_ARG;
	int err = pipe_plan_build(s, p->pp, n_micro, p->chunks, &p->plan, why, sizeof(why));
	if (!err)
		err = pipe_lower(&p->plan, p->stage, &p->prog);
	if (err)
		return err;
	p->mb = calloc((size_t)n_micro, sizeof(*p->mb));
	p->st = calloc((size_t)n_micro * (size_t)p->chunks, sizeof(*p->st));
	p->vbuf = malloc(p->msg * sizeof(float));
	if (!p->mb || !p->st || !p->vbuf)
		return MB_ERR_NOMEM;
	p->mb[0] = m0;
	for (int k = 1; k < n_micro && !err; k++) {
		err = net_create_f32(L, net_options_of_f32(m0), micro, seq, seed, &p->mb[k]);
		if (!err)
			err = net_share_params_f32(p->mb[k], m0);
	}
	int color = 0, *ranks = malloc(sizeof(int) * (size_t)d->lay.world);
	if (!ranks)
		return MB_ERR_NOMEM;
	layout_group_ranks(&d->lay, LAYOUT_PP, comm_rank(d->world), ranks, &color);
	free(ranks);
	p->work = (struct pipe_exec_stage){ p, pp_run, color, p->stage };
	if (!err && s == PIPE_DUALPIPEV)
		p->turn = malloc((size_t)n_micro * p->msg * sizeof(float));
	if (!err && s == PIPE_DUALPIPEV && !p->turn)
		err = MB_ERR_NOMEM;
	return err ? err : copy_group(p, L);
}

void train_pp_close(struct train_pp *p)
{
	for (int k = 1; p->mb && k < p->n_micro; k++)
		net_destroy_f32(p->mb[k]);
	for (int k = 1; p->mb_ep && k < p->n_micro; k++)
		train_ep_close(&p->mb_ep[k]);
	free(p->mb_ep);
	free(p->mb);
	free(p->st);
	free(p->vbuf);
	free(p->turn);
	pipe_exec_program_free(&p->prog);
	pipe_plan_free(&p->plan);
	comm_free(p->embed);
	memset(p, 0, sizeof(*p));
}

/* op_times fills dev[r * chunks + c] with rank r's mean F and B seconds on chunk c in
 * the gathered events (per device share: divided by the plan's op_scale), and busy[r]. */
static void op_times(const struct train_pp *p, const struct pipe_exec_result *res,
		     struct pipe_times *dev, double *busy)
{
	int n = p->pp * p->chunks;
	double sum[3 * TRAIN_PP_MAX * NET_PART_RANGES] = { 0 };
	int cnt[3 * TRAIN_PP_MAX * NET_PART_RANGES] = { 0 };
	for (int r = 0; r < p->pp; r++)
		busy[r] = 0;
	for (int i = 0; i < res->n_events; i++) {
		const struct pipe_exec_event *e = &res->events[i];
		int k = pipe_exec_kind_index(e->kind), at = e->rank * p->chunks + e->chunk;
		if (e->rank < 0 || e->rank >= p->pp || e->chunk < 0 || e->chunk >= p->chunks)
			continue;
		/* every op is busy time, DualPipe's F&B pairs ('X') included */
		busy[e->rank] += e->end - e->start;
		if (k < 0)
			continue;
		sum[3 * at + k] += e->end - e->start;
		cnt[3 * at + k]++;
	}
	/* gpipe, 1f1b and interleaved run the full backward (B = b + w, no W: w = 0) */
	for (int j = 0; j < n; j++) {
		double *v[3] = { &dev[j].f, &dev[j].b, &dev[j].w };
		pipe_times_default(&dev[j]);
		for (int k = 0; k < 3; k++)
			*v[k] = cnt[3 * j + k] ? sum[3 * j + k] / cnt[3 * j + k] / p->plan.op_scale : 0;
	}
}

/* op_receives says whether plan operation i takes a message from another device. */
static bool op_receives(const struct pipe_plan *pl, long i)
{
	const struct pipe_op *op = &pl->ops[i];
	int S = pl->stages, next = op->kind == PIPE_OP_F ? op->stage - 1 : op->stage + 1;
	if ((op->kind != PIPE_OP_F && op->kind != PIPE_OP_B) || next < 0 || next >= S)
		return false;
	return pipe_stage_device(pl, op->mb, next) != pipe_stage_device(pl, op->mb, op->stage);
}

/* op_durations puts each gathered event's duration at its plan operation (events come
 * rank by rank, each rank's in program order, which is the plan's order). */
static int op_durations(const struct train_pp *p, const struct pipe_exec_result *res,
			double *dur)
{
	if (res->n_events != p->plan.n_ops)
		return MB_ERR_CHECK;
	for (int i = 0; i < res->n_events; i++) {
		const struct pipe_exec_event *e = &res->events[i];
		if (i > 0 && e->rank < res->events[i - 1].rank)
			return MB_ERR_CHECK;
		dur[i] = e->end - e->start;
	}
	return MB_OK;
}

/* producer returns the plan operation making op's input (the previous stage's forward,
 * the next stage's backward) when it runs on another device, else -1. */
static long producer(const struct pipe_plan *pl, const long *at, const struct pipe_op *op)
{
	int S = pl->stages, next = op->kind == PIPE_OP_F ? op->stage - 1 : op->stage + 1;
	if ((op->kind != PIPE_OP_F && op->kind != PIPE_OP_B) || next < 0 || next >= S)
		return -1;
	if (pipe_stage_device(pl, op->mb, next) == pipe_stage_device(pl, op->mb, op->stage))
		return -1;
	return at[((long)op->mb * S + next) * 2 + (op->kind == PIPE_OP_B)];
}

/* The executor's costs around an op that its measured compute time leaves out, from the
 * step's events: recv, the time from the device being free (its previous op ended, the
 * input already sent) to the op's start (posting the receive, the transfer a rendezvous
 * protocol makes then, the previous op's sends); local, the same for ops that receive
 * nothing; latency, how long after its producer an op whose device waited for the
 * input started, less recv. Means. */
struct pp_costs {
	double recv, local, latency;
};

/* mean_of returns the mean of n samples (>= 0), 0 when none: the costs add up over the
 * step, so their mean (not a median, blind to the occasional long one) predicts it. */
static double mean_of(const double *x, long n)
{
	double sum = 0;
	for (long i = 0; i < n; i++)
		sum += x[i];
	return n > 0 ? fmax(sum / (double)n, 0) : 0;
}

/* op_index fills at[(mb, stage, is_backward)] with the plan operation of each F and B. */
static void op_index(const struct pipe_plan *pl, long *at)
{
	for (long i = 0; i < pl->n_ops; i++)
		if (pl->ops[i].kind == PIPE_OP_F || pl->ops[i].kind == PIPE_OP_B)
			at[((long)pl->ops[i].mb * pl->stages + pl->ops[i].stage) * 2 +
			   (pl->ops[i].kind == PIPE_OP_B)] = i;
}

/* costs measures struct pp_costs from the step's events (indexed like the plan). */
static int costs(const struct train_pp *p, const struct pipe_exec_result *res,
		 struct pp_costs *c)
{
	const struct pipe_plan *pl = &p->plan;
	long cells = (long)pl->microbatches * pl->stages * 2, n[3] = { 0, 0, 0 };
	long *at = malloc((size_t)cells * sizeof(long));
	double *x = malloc(3 * (size_t)pl->n_ops * sizeof(double) + 1);
	if (!at || !x) {
		free(at);
		free(x);
		return MB_ERR_NOMEM;
	}
	op_index(pl, at);
	for (int d = 0; d < pl->pp; d++)
		for (long i = pl->first[d] + 1; i < pl->first[d + 1]; i++) {
			const struct pipe_exec_event *e = &res->events[i];
			long j = producer(pl, at, &pl->ops[i]);
			double prev = res->events[i - 1].end;
			if (pl->ops[i].kind == PIPE_OP_FB)
				continue;   /* two inputs: its gap mixes waiting and cost */
			if (j < 0)
				x[n[1]++ + pl->n_ops] = e->start - prev;
			else if (res->events[j].end < prev)
				x[n[0]++] = e->start - prev;
			else
				x[n[2]++ + 2 * pl->n_ops] = e->start - res->events[j].end;
		}
	c->recv = mean_of(x, n[0]);
	c->local = mean_of(x + pl->n_ops, n[1]);
	c->latency = fmax(mean_of(x + 2 * pl->n_ops, n[2]) - c->recv, 0);
	free(at);
	free(x);
	return MB_OK;
}

/* bubble compares, on pipeline rank 0, each rank's idle time in the step (span minus
 * its ops' compute time) with the simulator's prediction of it for the same plan: every
 * op taking its own measured compute time plus the executor's measured cost before it
 * (struct pp_costs), messages the measured latency; predicted idle = simulated step
 * time - the rank's compute time. Also the stage-level figure: each stage's mean F and B,
 * the same costs (sim_mean). */
static int bubble(struct train_pp *p, const struct pipe_exec_result *res)
{
	struct pipe_times dev[TRAIN_PP_MAX * NET_PART_RANGES], t;
	double busy[TRAIN_PP_MAX];
	struct pipe_sim sim, mean;
	struct pp_costs c = { 0, 0, 0 };
	char why[256];
	if (p->stage != 0 || !res->events)
		return MB_OK;
	double *dur = malloc((size_t)p->plan.n_ops * sizeof(double) + 1);
	pipe_times_default(&t);
	int err = dur ? op_durations(p, res, dur) : MB_ERR_NOMEM;
	if (!err)
		err = costs(p, res, &c);
	if (!err) {
		op_times(p, res, dev, busy);
		t.latency = c.latency;
		for (long i = 0; i < p->plan.n_ops; i++)
			dur[i] += op_receives(&p->plan, i) || p->plan.ops[i].kind == PIPE_OP_FB
					  ? c.recv : c.local;
		for (int j = 0; j < p->pp * p->chunks; j++) {
			dev[j].latency = c.latency;
			dev[j].f += c.recv / p->plan.op_scale;
			dev[j].b += c.recv / p->plan.op_scale;
		}
		p->msg_s += c.latency;
		p->recv_s += c.recv;
	}
	if (!err)
		err = pipe_simulate_ops(&p->plan, &t, NULL, dur, &sim, why, sizeof(why));
	if (!err && (err = pipe_simulate_devices(&p->plan, &t, dev, &mean, why, sizeof(why))))
		pipe_sim_free(&sim);
	free(dur);
	if (err)
		return err;
	p->last_idle = p->last_sim = 0;
	for (int r = 0; r < p->pp; r++) {
		double idle = res->step_time - busy[r], pred = sim.step_time - busy[r];
		p->idle[r] += idle;
		p->sim[r] += pred;
		p->sim_mean[r] += mean.step_time - busy[r];
		p->last_idle = fmax(p->last_idle, idle);
		p->last_sim = fmax(p->last_sim, pred);
	}
	p->span += res->step_time;
	p->steps++;
	pipe_sim_free(&sim);
	pipe_sim_free(&mean);
	return MB_OK;
}

/* share_bubble gives every rank of the pipeline the figures its rank 0 computed (each
 * rank's own term of the step's split by cause). */
static int share_bubble(struct train_pp *p)
{
	double v[3 * TRAIN_PP_MAX + 5] = { 0 };
	int n = p->pp;
	if (p->stage == 0) {
		for (int r = 0; r < n; r++) {
			v[r] = p->idle[r];
			v[n + r] = p->sim[r];
			v[2 * n + r] = p->sim_mean[r];
		}
		double tail[5] = { p->last_idle, p->last_sim, p->span, p->msg_s, p->recv_s };
		memcpy(v + 3 * n, tail, sizeof(tail));
	}
	int err = comm_host_allreduce_f64(p->d->pp, v, (size_t)(3 * n + 5), COMM_SUM);
	for (int r = 0; !err && r < n; r++) {
		p->idle[r] = v[r];
		p->sim[r] = v[n + r];
		p->sim_mean[r] = v[2 * n + r];
	}
	if (!err) {
		p->last_idle = v[3 * n];
		p->last_sim = v[3 * n + 1];
		p->span = v[3 * n + 2];
		p->msg_s = v[3 * n + 3];
		p->recv_s = v[3 * n + 4];
		p->steps += p->stage != 0;   /* rank 0 counted it in bubble() */
	}
	return err;
}

/* step_loads sums the micro-batches' expert loads per held MoE block into load (NULL
 * elsewhere), from the models' own counts. */
static void step_loads(struct train_pp *p, long *buf, const long **load)
{
	const struct net_layout *L = net_layout_of_f32(p->mb[0]);
	int E = (int)L->cfg.routed_experts;
	for (int b = 0; b < L->blocks; b++) {
		load[b] = NULL;
		if (!L->blk[b].moe || !L->blk[b].held)
			continue;
		long *dst = buf + (size_t)b * (size_t)E;
		memset(dst, 0, (size_t)E * sizeof(long));
		for (int k = 0; k < p->n_micro; k++) {
			const long *l = net_expert_load_f32(p->mb[k], b);
			for (int e = 0; l && e < E; e++)
				dst[e] += l[e];
		}
		load[b] = dst;
	}
}

/* accumulate hands the step's gradient (the sum of n_micro micro-batches) and loads to
 * the data-parallel path, the embedding copies' gradients summed first. */
static int accumulate(struct train_pp *p)
{
	const struct net_layout *L = net_layout_of_f32(p->mb[0]);
	float *g = net_grads_f32(p->mb[0]);
	const long *load[1 + 1024 + 16];
	long *buf = calloc((size_t)L->blocks * (size_t)(L->cfg.routed_experts + 1), sizeof(long));
	int err = buf ? MB_OK : MB_ERR_NOMEM;
	if (!err && L->part.tp > 1)
		err = net_stage_tp_reduce_f32(p->mb[0]);
	if (!err && p->emb_hi > p->emb_lo && comm_size(p->embed) > 1)
		err = comm_allreduce(p->embed, g + p->emb_lo, g + p->emb_lo, p->emb_hi - p->emb_lo,
				     COMM_F32, COMM_SUM);
	if (!err) {
		step_loads(p, buf, load);
		p->d->micro_done = 0;
		train_dp_accumulate(p->d, g, load);
		p->d->micro_done = p->n_micro;
	}
	free(buf);
	return err;
}

int train_pp_step(struct train_pp *p, const int32_t *rows, double x[3])
{
	const struct net_layout *L = net_layout_of_f32(p->mb[0]);
	struct pipe_exec_opts o = { .hidden = 1, .tokens = 1, .msg_floats = (int)p->msg,
				    .steps = 1, .timeout_s = p->d->timeout_s, .stage = &p->work };
	struct pipe_exec_result res;
	p->rows = rows;
	memset(p->st, 0, (size_t)p->n_micro * (size_t)p->chunks * sizeof(*p->st));
	memset(net_grads_f32(p->mb[0]), 0, L->total * sizeof(float));
	int err = pipe_execute(&p->prog, &o, &res);
	if (!err)
		err = bubble(p, &res);
	if (!err)
		err = share_bubble(p);
	pipe_exec_result_free(&res);
	x[0] = x[1] = x[2] = 0;
	for (int j = 0; j < p->n_micro * p->chunks; j++) {
		x[0] += p->st[j].main_loss / p->n_micro;
		x[1] += p->st[j].mtp_loss / p->n_micro;
		x[2] += p->st[j].loss / p->n_micro;
	}
	if (!err)
		err = comm_host_allreduce_f64(p->d->pp, x, 3, COMM_SUM);
	return err ? err : accumulate(p);
}

/* dev_of and chunk_of place virtual stage vs of a direction-0 micro-batch (the chains
 * of validation and of the FP64 reference run micro-batches one at a time). */
static int dev_of(const struct train_pp *p, int vs)
{
	return pipe_stage_device(&p->plan, 0, vs);
}

static int chunk_of(const struct train_pp *p, int vs)
{
	return pipe_stage_chunk(&p->plan, 0, vs);
}

/* eval_chunk runs virtual stage vs of micro-batch k when this rank holds it: receive
 * the activation from the previous stage's rank (none when it is this rank: the V of
 * DualPipeV leaves it in vbuf), forward, send to the next's. */
static int eval_chunk(struct train_pp *p, int k, int vs, double *loss)
{
	int S = p->plan.stages, err = MB_OK;
	struct net_stats st;
	if (dev_of(p, vs) != p->stage)
		return MB_OK;
	if (vs > 0 && dev_of(p, vs - 1) != p->stage)
		err = comm_recv(p->d->pp, p->vbuf, p->msg, COMM_F32, dev_of(p, vs - 1));
	if (!err)
		err = net_stage_forward_f32(p->mb[0], chunk_of(p, vs),
					    p->rows + (size_t)k * p->mb_tokens,
					    vs > 0 ? p->vbuf : NULL, vs < S - 1 ? p->vbuf : NULL, &st);
	if (!err && vs < S - 1 && dev_of(p, vs + 1) != p->stage)
		err = comm_send(p->d->pp, p->vbuf, p->msg, COMM_F32, dev_of(p, vs + 1));
	if (vs == S - 1)
		*loss += st.main_loss;
	return err;
}

int train_pp_eval(struct train_pp *p, const int32_t *rows, double *main_loss)
{
	int S = p->plan.stages, err = MB_OK;
	double loss = 0;
	p->rows = rows;
	/* NOTE: blocking sends in stage order cannot deadlock: every rank walks the
	 * virtual stages in the same order and the receiver of each send is the next. */
	for (int k = 0; k < p->n_micro && !err; k++)
		for (int vs = 0; vs < S && !err; vs++)
			err = eval_chunk(p, k, vs, &loss);
	loss /= p->n_micro;
	if (!err)
		err = comm_host_allreduce_f64(p->d->pp, &loss, 1, COMM_SUM);
	*main_loss = loss;
	return err;
}

void train_pp_record(const struct train_pp *p, const char *schedule, cJSON *rec, char *line,
		     size_t len)
{
	char name[64], ranks[256] = "";
	double n = p->steps ? p->steps : NAN, worst = 0, worst_sim = 0;
	cJSON *pm = cJSON_GetObjectItem(rec, "params");
	cJSON_AddNumberToObject(pm, "pp", p->pp);
	cJSON_AddStringToObject(pm, "schedule", schedule);
	cJSON_AddNumberToObject(pm, "chunks", p->chunks);
	cJSON_AddNumberToObject(pm, "microbatches", p->n_micro);
	for (int r = 0; r < p->pp; r++) {
		size_t at = strlen(ranks);
		snprintf(name, sizeof(name), "pp_bubble_s_rank%d", r);
		result_set_metric(rec, name, p->idle[r] / n);
		snprintf(name, sizeof(name), "pp_bubble_sim_s_rank%d", r);
		result_set_metric(rec, name, p->sim[r] / n);
		snprintf(name, sizeof(name), "pp_bubble_sim_mean_s_rank%d", r);
		result_set_metric(rec, name, p->sim_mean[r] / n);
		worst = fmax(worst, p->idle[r] / n);
		worst_sim = fmax(worst_sim, p->sim[r] / n);
		snprintf(ranks + at, sizeof(ranks) - at, "%s rank %d %.1f/%.1f", r ? "," : "", r,
			 1e3 * p->idle[r] / n, 1e3 * p->sim[r] / n);
	}
	/* the slowest rank's: the figure of the step's split by cause */
	result_set_metric(rec, "pp_bubble_s", worst);
	result_set_metric(rec, "pp_bubble_sim_s", worst_sim);
	result_set_metric(rec, "pp_bubble_dev", worst_sim > 0 ? worst / worst_sim - 1 : NAN);
	result_set_metric(rec, "pp_step_span_s", p->span / n);
	result_set_metric(rec, "pp_msg_s", p->msg_s / n);
	result_set_metric(rec, "pp_recv_cost_s", p->recv_s / n);
	snprintf(line, len, "pipeline: %s, pp %d x %d chunk(s), %d micro-batches: bubble per step "
		 "(measured/simulated ms)%s; slowest %.1f/%.1f ms (%+.1f%%), span %.1f ms, "
		 "message %.2f ms, receive %.2f ms", schedule, p->pp, p->chunks, p->n_micro, ranks, 1e3 * worst,
		 1e3 * worst_sim, worst_sim > 0 ? 100 * (worst / worst_sim - 1) : NAN,
		 1e3 * p->span / n, 1e3 * p->msg_s / n, 1e3 * p->recv_s / n);
}

/* ref_forward runs the FP64 model's forward of one micro-batch through the pipeline's
 * virtual stages in order (blocking messages, as train_pp_eval), adding the chunks'
 * total losses into *loss. */
static int ref_forward(struct train_pp *p, struct net_f64 *md, const int32_t *rows,
		       double *buf, double *loss)
{
	int S = p->plan.stages, err = MB_OK;
	struct net_stats st;
	for (int vs = 0; vs < S && !err; vs++) {
		if (dev_of(p, vs) != p->stage)
			continue;
		if (vs > 0 && dev_of(p, vs - 1) != p->stage)
			err = comm_recv(p->d->pp, buf, p->msg, COMM_F64, dev_of(p, vs - 1));
		if (!err)
			err = net_stage_forward_f64(md, chunk_of(p, vs), rows, vs > 0 ? buf : NULL,
						    vs < S - 1 ? buf : NULL, &st);
		if (!err && vs < S - 1 && dev_of(p, vs + 1) != p->stage)
			err = comm_send(p->d->pp, buf, p->msg, COMM_F64, dev_of(p, vs + 1));
		*loss += err ? 0 : st.loss;
	}
	return err;
}

/* ref_backward runs the FP64 backward through the virtual stages in reverse order. */
static int ref_backward(struct train_pp *p, struct net_f64 *md, double *buf)
{
	int S = p->plan.stages, err = MB_OK;
	for (int vs = S - 1; vs >= 0 && !err; vs--) {
		if (dev_of(p, vs) != p->stage)
			continue;
		if (vs < S - 1 && dev_of(p, vs + 1) != p->stage)
			err = comm_recv(p->d->pp, buf, p->msg, COMM_F64, dev_of(p, vs + 1));
		if (!err)
			err = net_stage_backward_f64(md, chunk_of(p, vs), vs < S - 1 ? buf : NULL,
						     vs > 0 ? buf : NULL);
		if (!err && vs > 0 && dev_of(p, vs - 1) != p->stage)
			err = comm_send(p->d->pp, buf, p->msg, COMM_F64, dev_of(p, vs - 1));
	}
	return err;
}

int train_pp_reference_f64(struct train_pp *p, struct net_f64 *md, const int32_t *rows,
			   double *loss)
{
	const struct net_layout *L = net_layout_of_f32(p->mb[0]);
	double *buf = malloc(p->msg * sizeof(double)), *g = net_grads_f64(md);
	int err = buf ? MB_OK : MB_ERR_NOMEM;
	*loss = 0;
	memset(g, 0, L->total * sizeof(double));
	if (!err)
		err = ref_forward(p, md, rows, buf, loss);
	if (!err)
		err = ref_backward(p, md, buf);
	if (!err && L->part.tp > 1)
		err = net_stage_tp_reduce_f64(md);
	if (!err)
		err = comm_host_allreduce_f64(p->d->pp, loss, 1, COMM_SUM);
	if (!err && p->emb_hi > p->emb_lo && comm_size(p->embed) > 1)
		err = comm_host_allreduce_f64(p->embed, g + p->emb_lo, p->emb_hi - p->emb_lo,
					      COMM_SUM);
	free(buf);
	return err;
}

void train_pp_plant(struct train_pp *p, size_t j, float delta)
{
	for (int r = 0; r < 2; r++) {
		struct train_region *q = &p->d->reg[r];
		if (j >= q->lo && j < q->hi)
			q->acc[j - q->lo] += delta;
	}
}
