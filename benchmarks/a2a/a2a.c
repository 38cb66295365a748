/*
 * a2a.c - `moebench a2a`: expert-parallel dispatch and combine of one MoE layer's
 * tokens, or one plain collective laid out like nccl-tests.
 *
 *   mpirun -np 4 moebench a2a --tokens 4096 --hidden 7168 --dtype fp8 --skew zipf:1.2
 *   mpirun -np 4 moebench a2a --collective alltoall -b 8 -e 256M -f 2 -n 20 -w 5
 *   moebench a2a --print-layout --world 2048 --pp 16 --ep 64      (no run: the layout)
 *   moebench a2a --backend cuda --measured-peak peak.json   (one GPU: the kernels' GB/s)
 *
 * The ranks form the layout of --tp --cp --pp --ep --etp (Megatron-LM's order,
 * harness/parallel/layout.h); dispatch and combine run over this rank's expert-parallel group
 * (a2a_moe.c), the collectives over all ranks (a2a_collective.c). Without MPI, one rank.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a.h"
#include "cli.h"
#include "comm.h"
#include "layout.h"
#include "model.h"
#include "mpi_world.h"
#include "status.h"

static struct {
	const char *collective, *type, *op;
	int64_t minbytes, maxbytes;
	double factor;
	int64_t tokens;
	int hidden, experts, topk, groups, topk_groups, max_nodes, ranks_per_node;
	double route_scale, timeout;
	const char *skew, *dtype, *peak_file;
	int tp, cp, pp, dp, ep, etp, world;
	int iters, warmup, check;
	bool print_layout, nonblocking;
} opt;

static const struct cli_opt a2a_opts[] = {
	{ "collective", CLI_CHOICE, &opt.collective, "none", "plain collective instead of dispatch/combine (nccl-tests' columns)", 0, -1, "none|alltoall|allreduce|allgather|reducescatter" },
	{ "b", CLI_SIZE, &opt.minbytes, "8", "--collective: smallest size in bytes (nccl-tests -b)", 1, 1e12, NULL },
	{ "e", CLI_SIZE, &opt.maxbytes, "32M", "--collective: largest size in bytes (nccl-tests -e)", 1, 1e12, NULL },
	{ "f", CLI_DOUBLE, &opt.factor, "2", "--collective: size multiplier per step (nccl-tests -f)", 1.01, 1e6, NULL },
	{ "type", CLI_CHOICE, &opt.type, "float", "--collective: element type", 0, -1, "float|bfloat16|double|int32|int64|uint8" },
	{ "op", CLI_CHOICE, &opt.op, "sum", "--collective: reduction", 0, -1, "sum|max|min" },
	{ "n", CLI_INT, &opt.iters, "-1", "--collective: timed repetitions (nccl-tests -n; else --iters)", -1, 1e7, NULL },
	{ "w", CLI_INT, &opt.warmup, "-1", "--collective: warm-up repetitions (nccl-tests -w; else --warmup)", -1, 1e6, NULL },
	{ "c", CLI_INT, &opt.check, "1", "--collective: nccl-tests -c; moebench checks every size once, before timing, either way", 0, 1, NULL },
	{ "nonblocking", CLI_FLAG, &opt.nonblocking, NULL, "--collective: time MPI's nonblocking calls polled to completion (default: blocking calls, as nccl-tests' MPI peers and IMB)", 0, -1, NULL },
	{ "tokens", CLI_SIZE, &opt.tokens, "4096", "tokens per rank", 1, 1 << 22, NULL },
	{ "hidden", CLI_INT, &opt.hidden, "7168", "hidden size (DeepSeek-V3: 7168)", 128, 65536, NULL },
	{ "experts", CLI_INT, &opt.experts, "256", "routed experts", 1, 4096, NULL },
	{ "topk", CLI_INT, &opt.topk, "8", "experts per token", 1, 64, NULL },
	{ "groups", CLI_INT, &opt.groups, "8", "expert groups (group-limited routing)", 1, 4096, NULL },
	{ "topk-groups", CLI_INT, &opt.topk_groups, "4", "groups kept per token", 1, 4096, NULL },
	{ "max-nodes", CLI_INT, &opt.max_nodes, "4", "nodes per token at most (node-limited routing); 0: no limit", 0, 4096, NULL },
	{ "ranks-per-node", CLI_INT, &opt.ranks_per_node, "0", "ranks sharing a node; 0: as MPI finds them", 0, 1 << 20, NULL },
	{ "route-scale", CLI_DOUBLE, &opt.route_scale, "2.5", "routing weights' scale (DeepSeek-V3: 2.5)", 0.001, 1000, NULL },
	{ "skew", CLI_STRING, &opt.skew, "none", "token stream: none (random logits) or zipf:S", 0, -1, NULL },
	{ "dtype", CLI_CHOICE, &opt.dtype, "fp8", "dispatch payload (combine is BF16)", 0, -1, "fp8|bf16" },
	{ "tp", CLI_INT, &opt.tp, "1", "tensor-parallel size", 1, 1 << 20, NULL },
	{ "cp", CLI_INT, &opt.cp, "1", "context-parallel size", 1, 1 << 20, NULL },
	{ "pp", CLI_INT, &opt.pp, "1", "pipeline-parallel size", 1, 1 << 20, NULL },
	{ "dp", CLI_INT, &opt.dp, "0", "data-parallel size; 0: what the others leave", 0, 1 << 20, NULL },
	{ "ep", CLI_INT, &opt.ep, "0", "expert-parallel size; 0: every rank of a stage (world / (etp x pp))", 0, 1 << 20, NULL },
	{ "etp", CLI_INT, &opt.etp, "1", "expert tensor-parallel size", 1, 1 << 20, NULL },
	{ "print-layout", CLI_FLAG, &opt.print_layout, NULL, "print each rank's coordinates and groups, and stop", 0, -1, NULL },
	{ "world", CLI_INT, &opt.world, "0", "--print-layout: ranks to lay out; 0: the ranks running", 0, 1 << 20, NULL },
	{ "measured-peak", CLI_STRING, &opt.peak_file, NULL, "a `moebench peak` result file: its copy bandwidth gives the kernel cases pct_measured_peak", 0, -1, NULL },
	{ "timeout", CLI_DOUBLE, &opt.timeout, "60", "abort every rank when a collective takes longer (s)", 0.1, 1e6, NULL },
	CLI_END
};

static const struct cli_opt *a2a_options(void)
{
	return a2a_opts;
}

/* root_error reports bad input once (rank 0); returns MB_ERR_ARG. */
static int root_error(const char *hint, const char *why)
{
	cli_error_once(hint, "a2a: %s", why);
	return MB_ERR_ARG;
}

/* parse_skew reads --skew: "none" or "zipf:S" with S > 0. */
static int parse_skew(const char *s, double *zipf)
{
	char *end;
	*zipf = 0;
	if (strcmp(s, "none") == 0)
		return MB_OK;
	if (strncmp(s, "zipf:", 5) != 0)
		return MB_ERR_ARG;
	*zipf = strtod(s + 5, &end);
	return (*end || end == s + 5 || !(*zipf > 0) || *zipf > 100) ? MB_ERR_ARG : MB_OK;
}

/* make_layout builds the layout of `world` ranks from the options. */
static int make_layout(int world, int ranks_per_node, struct parallel_layout *l)
{
	char why[256];
	memset(l, 0, sizeof(*l));
	l->world = world, l->tp = opt.tp, l->cp = opt.cp, l->pp = opt.pp, l->dp = opt.dp;
	l->etp = opt.etp, l->experts = opt.experts;
	l->ep = opt.ep ? opt.ep : world / (opt.etp * opt.pp);
	l->ranks_per_node = ranks_per_node;
	if (l->ep < 1)
		l->ep = 1;
	if (layout_init(l, why, sizeof(why)))
		return root_error("moebench a2a --help lists the layout options; --print-layout shows one", why);
	return MB_OK;
}

/* ep_ranks_per_node counts the members of this rank's EP group on each node the group
 * touches. ep.c takes group member i to be on the group's node i / count, so the count
 * must be the same on every such node; returns it, 0 when it is not, -1 out of memory. */
static int ep_ranks_per_node(const struct parallel_layout *l, int rank)
{
	int *m = malloc(sizeof(int) * (size_t)l->world), n, here = 1;
	if (!m)
		return -1;
	n = layout_group_ranks(l, LAYOUT_EP, rank, m, NULL);
	while (here < n && m[here] / l->ranks_per_node == m[0] / l->ranks_per_node)
		here++;
	if (n % here)
		here = 0;
	for (int i = 1; i < n && here > 0; i++) {
		bool same_node = m[i] / l->ranks_per_node == m[i - 1] / l->ranks_per_node;
		if (same_node != (i % here != 0))
			here = 0;
	}
	free(m);
	return here;
}

/* uneven_ep_group returns the first rank of an EP group whose ranks_per_node count is
 * 0 (see ep_ranks_per_node), -1 when every group is even, -2 out of memory. NOTE: over
 * all groups, so every rank of the world agrees before the world's split. */
static int uneven_ep_group(const struct parallel_layout *l)
{
	int *m = malloc(sizeof(int) * (size_t)l->world), color, bad = -1;
	if (!m)
		return -2;
	for (int r = 0; r < l->world && bad == -1; r++) {
		layout_group_ranks(l, LAYOUT_EP, r, m, &color);
		int here = color == r ? ep_ranks_per_node(l, r) : 1;
		bad = here < 0 ? -2 : here == 0 ? r : -1;
	}
	free(m);
	return bad;
}

/* run_collective measures --collective over all ranks. */
static int run_collective(struct run_ctx *ctx, struct comm *world)
{
	static const char *const types[] = { "uint8", "bfloat16", "float", "double", "int32", "int64" };
	struct a2a_coll_opts co = { .collective = opt.collective, .factor = opt.factor,
				    .nonblocking = opt.nonblocking };
	co.min_bytes = (size_t)opt.minbytes, co.max_bytes = (size_t)opt.maxbytes;
	for (int t = 0; t < 6; t++)
		if (strcmp(opt.type, types[t]) == 0)
			co.dtype = (enum comm_dtype)t;
	co.op = strcmp(opt.op, "max") == 0 ? COMM_MAX : strcmp(opt.op, "min") == 0 ? COMM_MIN : COMM_SUM;
	if (co.min_bytes > co.max_bytes)
		return root_error("-b is the smallest size, -e the largest", "-b is larger than -e");
	/* nccl-tests' -n and -w stand for --iters and --warmup in this mode. */
	struct cli_common o = *ctx->opts;
	const struct cli_common *shared = ctx->opts;
	if (opt.iters >= 1)
		o.iters = opt.iters;
	if (opt.warmup >= 0)
		o.warmup = opt.warmup;
	if (opt.check == 0)
		cli_note(o.quiet || !mpi_world_is_root(), "a2a: -c 0: every size is still checked "
			 "once, before its timed repetitions (it costs no measured time)");
	ctx->opts = &o;
	int err = a2a_collective_run(ctx, world, &co);
	ctx->opts = shared;
	return err;
}

/* moe_options fills the dispatch/combine options (the suite's small case, or the
 * command line's). */
static int moe_options(struct run_ctx *ctx, const struct parallel_layout *l, int rank,
		       struct a2a_moe_opts *mo)
{
	*mo = (struct a2a_moe_opts){
		.tokens = opt.tokens, .hidden = opt.hidden, .experts = opt.experts,
		.topk = opt.topk, .groups = opt.groups, .topk_groups = opt.topk_groups,
		.max_nodes = opt.max_nodes, .route_scale = opt.route_scale,
		.payload = strcmp(opt.dtype, "bf16") == 0 ? A2A_BF16 : A2A_FP8,
		.seed = ctx->opts->seed,
	};
	if (ctx->suite)   /* a small single-layer case: well under a second on a CPU */
		mo->tokens = 256, mo->hidden = 512, mo->experts = 64;
	int bad = uneven_ep_group(l);
	if (bad == -2)
		return MB_ERR_NOMEM;
	if (bad >= 0) {
		char why[160];
		snprintf(why, sizeof(why), "the EP group of rank %d has unequal numbers of ranks "
			 "on its nodes (%d ranks per node)", bad, l->ranks_per_node);
		return root_error("make --ranks-per-node a multiple of --etp x --ep, or a divisor "
				  "of it that --etp divides", why);
	}
	mo->ranks_per_node = ep_ranks_per_node(l, rank);
	if (mo->ranks_per_node < 0)
		return MB_ERR_NOMEM;
	if (parse_skew(opt.skew, &mo->zipf))
		return root_error("--skew none, or zipf:S with 0 < S <= 100 (e.g. zipf:1.2)",
				  "--skew: not none or zipf:S");
	int nodes = l->ep / mo->ranks_per_node;
	if (mo->max_nodes > nodes)   /* a limit above the nodes there are limits nothing */
		mo->max_nodes = nodes;
	return MB_OK;
}

/* run_moe measures dispatch and combine over this rank's expert-parallel group, then
 * the local permutation kernels on its data (a2a_kernels.c). */
static int run_moe(struct run_ctx *ctx, struct comm *world, const struct parallel_layout *l)
{
	struct a2a_moe_opts mo;
	struct comm *ep = NULL;
	double copy_gbps;
	int rank = comm_rank(world), color, *members = malloc(sizeof(int) * (size_t)l->world);
	if (!members)
		return MB_ERR_NOMEM;
	int n = layout_group_ranks(l, LAYOUT_EP, rank, members, &color), index = 0;
	for (int i = 0; i < n; i++)
		if (members[i] == rank)
			index = i;
	free(members);
	int err = moe_options(ctx, l, rank, &mo);
	if (!err)
		err = a2a_measured_copy(world, ctx->suite ? NULL : opt.peak_file,
					ctx->backend->kind == BACKEND_CUDA, &copy_gbps);
	mo.measured_copy_gbps = err ? NAN : copy_gbps;
	if (!err)
		err = comm_split(world, color, index, &ep);
	if (!err) {
		comm_set_name(ep, "ep");
		err = a2a_moe_run(ctx, ep, &mo);
	}
	comm_free(ep);
	return err;
}

/* check_mode_options refuses the options of another mode (each rank alike; rank 0
 * says so): the size sweep's outside --collective, the layout's world outside
 * --print-layout. Returns MB_OK or MB_ERR_ARG. */
static int check_mode_options(void)
{
	const void *coll[] = { &opt.minbytes, &opt.maxbytes, &opt.factor, &opt.type, &opt.op };
	const char *names[] = { "b", "e", "f", "type", "op" };
	bool collective = strcmp(opt.collective, "none") != 0;
	for (int i = 0; i < 5; i++)
		if (cli_given(coll[i]) && !collective)
			return cli_error_once("add --collective alltoall|allreduce|allgather|"
					      "reducescatter", "-%s%s applies only with --collective",
					      names[i][1] ? "-" : "", names[i]), MB_ERR_ARG;
	if (cli_given(&opt.world) && !opt.print_layout)
		return cli_error_once("add --print-layout", "--world applies only with "
				      "--print-layout"), MB_ERR_ARG;
	return MB_OK;
}

/* a2a_run lays out the ranks and runs the mode asked for. */
static int a2a_run(struct run_ctx *ctx)
{
	char why[512];
	struct parallel_layout l;
	struct comm *world = NULL;
	int rpn = opt.ranks_per_node ? opt.ranks_per_node : mpi_world_local_size();
	if (!ctx->suite && check_mode_options())
		return MB_ERR_ARG;
	if (opt.print_layout && !ctx->suite) {
		int err = make_layout(opt.world ? opt.world : mpi_world_size(),
				      opt.world ? (rpn > 0 ? rpn : 1) : rpn, &l);
		if (!err && mpi_world_is_root())
			layout_print(stdout, &l);
		ctx->answered = !err;
		return err;
	}
	int err = comm_world(ctx->backend, opt.timeout, &world, why, sizeof(why));
	if (err) {
		fprintf(stderr, "moebench: error: a2a: %s\n", why);
		return err;
	}
	/* NOTE: a plain collective uses no expert layout: any number of ranks runs it. */
	if (strcmp(opt.collective, "none") != 0 && !ctx->suite)
		err = run_collective(ctx, world);
	else if (!(err = make_layout(comm_size(world), ctx->suite ? 1 : rpn, &l)))
		err = run_moe(ctx, world, &l);
	comm_free(world);
	return err;
}

const struct bench_desc bench_a2a = {
	.name = "a2a",
	.summary = "expert-parallel dispatch/combine (or a collective, nccl-tests style) over MPI ranks",
	.usage = "[mpirun -np N] moebench a2a [--tokens N --hidden H --dtype fp8|bf16 --skew zipf:S] "
		 "[--collective alltoall|allreduce|allgather|reducescatter -b MIN -e MAX -f F "
		 "-n ITERS -w WARMUP -c 0|1 --nonblocking] "
		 "[--tp --cp --pp --ep --etp] [--print-layout] [--measured-peak PEAK.json]",
	.warmup = "2",
	.iters = "10",
	.min_time = "0.2",
	.options = a2a_options,
	.run = a2a_run,
	.summarize = NULL,
};
