/*
 * a2a_moe.c - a2a_moe_run (a2a.h): one MoE layer's expert-parallel layout, dispatch and
 * combine over the EP communicator, each a collective driver case (bench_case.comm: the
 * slowest rank's time), checked every run: layout by conservation of copies, dispatch
 * row by row against the source rank's and token's payload (harness/parallel/ep_check.c),
 * combine of identity experts against x * sum(weights). Figures: a2a_moe_report.c;
 * the local permutation kernels timed alone after the phases: a2a_kernels.c.
 *
 *   mpirun -np 4 moebench a2a --tokens 512 --hidden 7168 --dtype fp8 --ranks-per-node 2
 *
 * Routing: DeepSeek-V3's gate (route_cpu / route_cuda) on random logits, each rank its
 * own tokens; with a Zipf skew all ranks share one ranking of hot experts (the seed's).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a.h"
#include "a2a_moe.h"
#include "ep.h"
#include "permute.h"
#include "route.h"
#include "status.h"

/* ---- routing ---- */

/* route_config_of is the gate of the options over the communicator's nodes. */
static struct route_config route_config_of(const struct a2a_moe_opts *o, int size)
{
	int nodes = size / (o->ranks_per_node > 0 ? o->ranks_per_node : 1);
	int max_nodes = nodes > 1 && o->max_nodes > 0 ? (o->max_nodes < nodes ? o->max_nodes : nodes) : 0;
	return (struct route_config){ o->experts, o->topk, o->groups, o->topk_groups,
				      nodes, max_nodes, (float)o->route_scale };
}

/* route_on_device runs route_cuda on logits uploaded to the device. */
static int route_on_device(struct a2a_moe *m, const struct route_config *rc, const float *logits)
{
	size_t t = (size_t)m->tokens, e = (size_t)rc->experts, k = (size_t)rc->topk;
	void *d_l = NULL, *d_i = NULL, *d_w = NULL;
	int err = permute_cuda_alloc(&d_l, t * e * 4 + 4);
	if (!err)
		err = permute_cuda_alloc(&d_i, t * k * 4 + 4);
	if (!err)
		err = permute_cuda_alloc(&d_w, t * k * 4 + 4);
	if (!err)
		err = permute_cuda_copy(d_l, logits, t * e * 4, 0, m->stream);
	if (!err)
		err = route_cuda(rc, d_l, NULL, m->tokens, d_i, d_w, m->stream);
	if (!err)
		err = permute_cuda_copy(m->idx, d_i, t * k * 4, 1, m->stream);
	if (!err)
		err = permute_cuda_copy(m->w, d_w, t * k * 4, 1, m->stream);
	if (!err)
		err = permute_cuda_sync(m->stream);
	permute_cuda_free(d_l);
	permute_cuda_free(d_i);
	permute_cuda_free(d_w);
	return err;
}

/* route_tokens routes this rank's tokens (the result on the host: ep_layout's input). */
static int route_tokens(struct a2a_moe *m, const struct a2a_moe_opts *o)
{
	struct route_config rc = route_config_of(o, m->size);
	size_t n = (size_t)o->tokens * (size_t)o->experts;
	float *logits = malloc(n * sizeof(float) + 4);
	m->idx = malloc((size_t)o->tokens * (size_t)o->topk * 4 + 4);
	m->w = malloc((size_t)o->tokens * (size_t)o->topk * 4 + 4);
	int err = logits && m->idx && m->w ? MB_OK : MB_ERR_NOMEM;
	if (!err)
		route_logits_random(logits, o->tokens, o->experts, o->zipf, o->seed,
				    (uint64_t)m->rank);
	if (!err)
		err = m->on_device ? route_on_device(m, &rc, logits)
				   : route_cpu(&rc, logits, NULL, o->tokens, m->idx, m->w);
	free(logits);
	return err;
}

/* ---- the cases ---- */

static int layout_run(void *state)
{
	struct a2a_moe *m = state;
	return ep_layout(m->ep, m->idx, m->w, m->tokens);
}

static int layout_check(void *state, struct bench_check *chk)
{
	struct a2a_moe *m = state;
	*chk = (struct bench_check){ 0, 0, 3, 0, "copies sent != received, expert rows != T*K" };
	int err = ep_check_layout(m->ep, &chk->mismatches);
	m->wrong[0] = chk->mismatches;
	/* NOTE: the conservation count is global already; the driver sums over ranks. */
	if (!err && m->rank != 0)
		chk->mismatches = 0, chk->samples = 0;
	return err;
}

/* poison_with fills n bytes of communicator memory with 0xff. */
static int poison_with(struct a2a_moe *m, void *p, size_t n)
{
	uint8_t *h = malloc(n + 1);
	int err = h ? MB_OK : MB_ERR_NOMEM;
	if (!err) {
		memset(h, 0xff, n);
		err = ep_upload(m->ep, p, h, n);
	}
	if (!err && m->on_device)
		err = permute_cuda_sync(m->stream);
	free(h);
	return err;
}

static int dispatch_poison(void *state)
{
	struct a2a_moe *m = state;
	const struct permute_experts *x = ep_experts(m->ep);
	const struct permute_format *f = ep_format(m->ep);
	float *xs;
	void *xe = ep_expert_input(m->ep, &xs);
	size_t rows = (size_t)x->rows_padded;
	int err = poison_with(m, xe, rows * (size_t)f->hidden * (f->payload == PERMUTE_FP8 ? 1 : 2));
	return err || !xs ? err : poison_with(m, xs, rows * (size_t)f->scales * 4);
}

static int dispatch_run(void *state)
{
	struct a2a_moe *m = state;
	return ep_dispatch(m->ep, m->x_rows);
}

static int dispatch_check(void *state, struct bench_check *chk)
{
	struct a2a_moe *m = state;
	*chk = (struct bench_check){ 0, 0, ep_experts(m->ep)->rows_padded, 0,
				     "expert-major rows not bit-equal to their source token" };
	int err = ep_check_dispatch(m->ep, m->seed, &chk->mismatches);
	m->wrong[1] = chk->mismatches;
	return err;
}

static int combine_poison(void *state)
{
	struct a2a_moe *m = state;
	return poison_with(m, m->out, (size_t)m->tokens * (size_t)m->hidden * 2);
}

static int combine_run(void *state)
{
	struct a2a_moe *m = state;
	return ep_combine(m->ep, m->y, m->out);
}

static int combine_check(void *state, struct bench_check *chk)
{
	struct a2a_moe *m = state;
	*chk = (struct bench_check){ 0, 0, m->tokens, 0,
				     "tokens with |out - x*sum(w)| > 2^-6 |x*sum(w)|" };
	int err = ep_check_combine(m->ep, m->seed, m->w, m->out, &chk->mismatches);
	m->wrong[2] = chk->mismatches;
	return err;
}

/* run_phase runs one phase as a collective driver case. */
static int run_phase(struct run_ctx *ctx, struct a2a_moe *m, int phase)
{
	static const char *names[] = { "layout", "dispatch", "combine" };
	struct bench_case c = { .peak = NAN, .state = m, .comm = m->comm };
	snprintf(c.name, sizeof(c.name), "moe/%s/%s/T%ld_H%d_E%d_K%d_ep%d%s", names[phase],
		 permute_payload_name(phase == 2 ? PERMUTE_BF16 : m->payload), m->tokens, m->hidden,
		 m->experts, m->topk, m->size, ep_two_hop(m->ep) ? "_2hop" : "");
	c.params = a2a_moe_params(m, phase);
	c.bytes = m->alltoall_bytes[phase];
	c.run = phase == 0 ? layout_run : phase == 1 ? dispatch_run : combine_run;
	c.check = phase == 0 ? layout_check : phase == 1 ? dispatch_check : combine_check;
	c.poison = phase == 0 ? NULL : phase == 1 ? dispatch_poison : combine_poison;
	return c.params ? driver_run_case(ctx, &c) : MB_ERR_NOMEM;
}

/* ---- setup ---- */

/* check_opts reports options the communicator cannot take (cli_error). */
static int check_opts(const struct a2a_moe_opts *o, int size)
{
	char why[256];
	struct route_config rc = route_config_of(o, size);
	if (o->tokens < 1 || o->hidden < 1)
		return cli_error_once("moebench a2a --help shows the ranges",
				      "a2a: --tokens and --hidden must be positive");
	if (o->ranks_per_node < 1 || size % o->ranks_per_node)
		return cli_error_once("--ranks-per-node divides the ranks", "a2a: %d ranks, %d per node",
				 size, o->ranks_per_node);
	if (o->experts % size)
		return cli_error_once("every rank holds experts/ranks experts", "a2a: %d experts over %d ranks",
				 o->experts, size);
	if (route_config_check(&rc, why, sizeof(why)))
		return cli_error_once("see moebench a2a --help", "a2a: routing: %s", why);
	return 0;
}

/* setup routes the tokens, makes the payload and lays out once (so every case has its
 * buffers), and counts the bytes of each phase. */
static int setup(struct a2a_moe *m, const struct a2a_moe_opts *o)
{
	struct ep_config cfg = { o->hidden, o->experts, o->topk, o->ranks_per_node,
				 o->payload == A2A_FP8 ? PERMUTE_FP8 : PERMUTE_BF16 };
	int err = route_tokens(m, o);
	if (!err)
		err = ep_create(m->comm, &cfg, m->on_device ? m->stream : NULL, &m->ep);
	if (!err)
		err = ep_alloc(m->ep, &m->x_rows, (size_t)o->tokens * ep_format(m->ep)->row_bytes);
	if (!err)
		err = ep_alloc(m->ep, (void **)&m->out, (size_t)o->tokens * (size_t)o->hidden * 2);
	if (!err)
		err = ep_token_rows(m->ep, m->seed, o->tokens, m->x_rows);
	if (!err)
		err = ep_layout(m->ep, m->idx, m->w, m->tokens);
	if (!err)
		err = a2a_moe_account(m);
	return err;
}

/* teardown frees what setup made. */
static void teardown(struct a2a_moe *m)
{
	if (m->ep) {
		ep_release(m->ep, m->x_rows);
		ep_release(m->ep, m->out);
	}
	ep_free(m->ep);
	free(m->idx);
	free(m->w);
	free(m->expert_load);
}

int a2a_moe_run(struct run_ctx *ctx, struct comm *ep, const struct a2a_moe_opts *o)
{
	struct a2a_moe m = { .comm = ep, .rank = comm_rank(ep), .size = comm_size(ep),
			     .tokens = o->tokens, .hidden = o->hidden, .experts = o->experts,
			     .topk = o->topk, .rpn = o->ranks_per_node, .zipf = o->zipf,
			     .payload = o->payload == A2A_FP8 ? PERMUTE_FP8 : PERMUTE_BF16,
			     .seed = o->seed, .on_device = comm_on_device(ep),
			     .stream = ctx->backend->stream };
	if (check_opts(o, m.size))
		return MB_ERR_ARG;
	int err = setup(&m, o);
	if (!err)
		err = run_phase(ctx, &m, 0);
	if (!err)
		err = run_phase(ctx, &m, 1);
	/* NOTE: identity experts once; combine then returns the same outputs each time. */
	if (!err)
		err = ep_identity_experts(m.ep, &m.y);
	if (!err)
		err = run_phase(ctx, &m, 2);
	if (!err)
		err = a2a_moe_report(ctx, &m);
	/* NOTE: after the phases, on their data: rank-local, so one rank measures them. */
	if (!err)
		err = a2a_kernels_run(ctx, &m, o->measured_copy_gbps);
	teardown(&m);
	return err;
}
