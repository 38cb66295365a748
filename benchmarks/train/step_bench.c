/*
 * step_bench.c - `moebench step`: one training step of a model preset on one rank
 * (forward, backward, AdamW with clipping, routing-bias update) at a batch and sequence,
 * timed through the generic driver (warm-up, repetitions, median), and checked: the
 * first step's loss and gradients (every tensor, up to 4096 sampled elements each)
 * against an untimed FP64 forward and backward of the same weights, batch and expert
 * selection, each error over its precision's tolerance (fp32 1e-5 loss, 1e-3
 * gradients; bf16 1e-2, 3e-2; fp8 5e-2, 0.25).
 *
 *   moebench step                                   # v3-tiny, batch 4 x 128, fp32
 *   moebench step --preset llama3-tiny --batch 8 --seq 256 --measured-peak peak.json
 *   moebench step --precision fp8 --iters 5
 *
 * Recorded beside time_s: tokens_per_s, model FLOPs per token (model/accounting.c, the
 * function `moebench model` prints), TFLOP/s and pct_measured_peak (MFU against
 * --measured-peak's SGEMM rate; no datasheet peak on a CPU), the median step split by
 * phase (attention, routing and permutation, expert GEMMs, dense GEMMs, loss,
 * optimizer, other: shares of the timed steps' clock times the median), and memory:
 * the model's allocations by term (weights, gradients, optimizer states, saved
 * activations, scratch; from the allocation sizes, net_memory_f32) each beside
 * model/memory.c's prediction for this rank's part holding FP32 weights, gradients, moments
 * and activations (net_memory_predict_part) and their ratio, and the process's resident set
 * (largest at the end of a step).
 * Also the GEMM rate of the expert and dense phases (the linear layers' GEMMs alone,
 * gemm_*_gflops, and % of the measured SGEMM).
 * Tokens are random bytes (vocabulary 256). --plant-error adds an error to one gradient
 * of the first step, which the check must catch (exit 1). --model FILE runs a preset
 * changed by a JSON config (v3-small with 2 layers: its GEMM shapes in 1/6 the memory);
 * --init-from / --save read and write the starting weights (safetensors, Hugging Face
 * names), --dump-batch the config, token ids and first-step losses that
 * scripts/torch_step.py recomputes (step_io.c). --experts-serial runs the routed experts
 * one after another (the A/B of running them side by side, net_moe_impl.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accounting.h"
#include "cli.h"
#include "driver.h"
#include "mpi_world.h"
#include "net.h"
#include "result.h"
#include "rng.h"
#include "status.h"
#include "timer.h"
#include "train_dp.h"
#include "train_pp.h"
#include "step_dev.h"
#include "step_io.h"
#include "step_micro.h"
#include "step_out.h"
#include "train_ep.h"
#include "train_run.h"
#include "train_split.h"

static struct {
	const char *preset, *precision, *peak_file, *dispatch, *schedule, *model, *save;
	const char *init_from, *dump;
	int64_t batch, seq, mem_limit, dp, tp, pp, ep, etp, ranks_per_node, chunks, micro;
	int64_t replicas;
	double timeout;
	bool plant, zero1, serial, overlap, sp;
} sopt;

static const struct cli_opt step_options[] = {
	{ "preset", CLI_STRING, &sopt.preset, "v3-tiny", "model preset (moebench model --list)", 0, -1, NULL },
	{ "batch", CLI_SIZE, &sopt.batch, "4", "sequences per step", 1, 65536, NULL },
	{ "seq", CLI_SIZE, &sopt.seq, "128", "tokens per sequence", 2, 65536, NULL },
	{ "precision", CLI_CHOICE, &sopt.precision, "fp32", "GEMM precision (emulated exactly on the CPU)", 0, -1, "fp32|bf16|fp8" },
	{ "measured-peak", CLI_STRING, &sopt.peak_file, NULL, "a `moebench peak` result: MFU against its SGEMM rate", 0, -1, NULL },
	{ "mem-limit", CLI_SIZE, &sopt.mem_limit, "0", "refuse a step predicted to need more bytes (0: the machine's memory)", 0, 1e15, NULL },
	{ "dp", CLI_SIZE, &sopt.dp, "0", "data-parallel ranks (0: the world / (tp x pp)); --batch is the global batch", 0, 1e6, NULL },
	{ "tp", CLI_SIZE, &sopt.tp, "1", "tensor-parallel ranks (Megatron order tp-cp-dp-pp)", 1, 1024, NULL },
	{ "pp", CLI_SIZE, &sopt.pp, "1", "pipeline stages", 1, 1024, NULL },
	{ "ep", CLI_SIZE, &sopt.ep, "1", "expert-parallel ranks (carved out of the data-parallel ones)", 1, 1e6, NULL },
	{ "ranks-per-node", CLI_SIZE, &sopt.ranks_per_node, "1", "EP ranks per node: >1 routes node-limited over two hops (DeepSeek-V3)", 1, 1024, NULL },
	{ "dispatch", CLI_CHOICE, &sopt.dispatch, "fp32", "EP dispatch payload: bf16 rounds it, fp8 (with --precision fp8) quantizes it 1x128; combine then in bf16", 0, -1, "fp32|bf16|fp8" },
	{ "etp", CLI_SIZE, &sopt.etp, "1", "tensor-parallel ranks of each expert", 1, 1024, NULL },
	{ "sp", CLI_FLAG, &sopt.sp, NULL, "sequence parallelism under --tp (Megatron-LM)", 0, -1, NULL },
	{ "schedule", CLI_STRING, &sopt.schedule, "1f1b", "pipeline schedule under --pp (one micro-batch per step: the rank's batch)", 0, -1, NULL },
	{ "chunks", CLI_SIZE, &sopt.chunks, "2", "model chunks per stage of --schedule interleaved", 1, 64, NULL },
	{ "micro-batch", CLI_SIZE, &sopt.micro, "0", "sequences per forward on a rank, gradients accumulated (0: all of the rank's; not with --pp)", 0, 65536, NULL },
	{ "replicas", CLI_SIZE, &sopt.replicas, "1", "micro-batches run side by side, one thread (and one BLAS thread) each, gradients summed in micro-batch order (in-process data parallelism; --micro-batch defaults to the rank's batch / replicas)", 1, 64, NULL },
	{ "ep-overlap", CLI_FLAG, &sopt.overlap, NULL, "with --ep and 2+ micro-batches: the forward of one micro-batch beside the backward of the previous, EP dispatch/combine hidden under compute (DualPipe's F&B)", 0, -1, NULL },
	{ "zero1", CLI_FLAG, &sopt.zero1, NULL, "ZeRO-1: reduce-scatter, AdamW on the owned shard, all-gather", 0, -1, NULL },
	{ "timeout", CLI_DOUBLE, &sopt.timeout, "60", "under mpirun: end every rank, naming the silent one, when a collective waits longer (s)", 0.1, 1e6, NULL },
	{ "model", CLI_STRING, &sopt.model, NULL, "a model JSON (moebench model --model) instead of --preset, e.g. {\"preset\": \"v3-small\", \"layers\": 2}", 0, -1, NULL },
	{ "init-from", CLI_STRING, &sopt.init_from, NULL, "start from a FILE.safetensors of the same configuration", 0, -1, NULL },
	{ "save", CLI_STRING, &sopt.save, NULL, "write the starting weights to FILE.safetensors", 0, -1, NULL },
	{ "dump-batch", CLI_STRING, &sopt.dump, NULL, "write the config, the batch's token ids and the checked step's losses as JSON (scripts/torch_step.py)", 0, -1, NULL },
	{ "experts-serial", CLI_FLAG, &sopt.serial, NULL, "routed experts one after another, each GEMM on all BLAS threads (the A/B of running them side by side)", 0, -1, NULL },
	{ "plant-error", CLI_FLAG, &sopt.plant, NULL, "corrupt one gradient of the checked step (the check must fail)", 0, -1, NULL },
	CLI_END
};

static const struct cli_opt *step_opts_table(void)
{
	return step_options;
}

static struct step_figures figs[8];
static int n_figs;
static struct train_grid step_grid;   /* the grid train_dp_layout resolved */
static enum ep_wire step_wire;        /* --dispatch */
static bool step_force;              /* --force: --save and --dump-batch may replace a file */

struct step_state {
	struct net_layout L;
	struct net_options no;
	struct net_adamw adam;
	struct net_f32 *m;
	struct net_profile prof;
	struct train_dp dp;
	struct train_pp pp;        /* pp.pp > 1: the step runs through the pipeline */
	struct train_ep ep;
	struct step_micro sm;      /* --micro-batch, --ep-overlap (sm.n > 1) */
	int per_rank;              /* sequences of this rank: batch / dp */
	int32_t *tok, *mine;       /* the global batch; this rank's rows of it */
	float *w0, *g0;
	double loss0, tol, gtol;   /* tolerances of the loss and of each tensor's gradient */
	struct net_stats st0;      /* the first step's forward (--dump-batch) */
	uint64_t seed;
	char metric[160];
	long runs;
	double tp_s;               /* the steps' TP collectives (not the check's) */
	struct step_figures *fig;
};

/* step_keep keeps the first step's reduced gradients (unclipped) for the check. */
static void step_keep(struct step_state *s, const float *g, double norm)
{
	double scale = net_clip_scale(&s->adam, norm);
	for (size_t j = 0; j < s->L.total; j++)
		if (train_dp_owned(&s->dp, j))
			s->g0[j] = (float)(g[j] / scale);
}

/* step_run_pp: step_run through the pipeline (its one micro-batch: the rank's rows). */
static int step_run_pp(struct step_state *s)
{
	const long *gload[1024 + 16];
	double norm, x[3];
	int err = train_pp_step(&s->pp, s->mine, x);
	if (err)
		return err;
	float *g = net_grads_f32(s->m);
	if (s->runs == 0) {
		size_t j = s->L.t[s->L.n / 2].off;
		if (sopt.plant)
			train_pp_plant(&s->pp, j, 0.05f * (1.0f + fabsf(g[j])));
		s->loss0 = x[2];
	}
	double t0 = timer_now(), c0 = s->dp.comm_s;
	err = train_dp_step(&s->dp, &s->L, &s->adam, s->runs + 1, net_params_f32(s->m), g,
			    net_moment1_f32(s->m), net_moment2_f32(s->m), gload, &norm);
	if (err)
		return err;
	if (s->runs == 0)
		step_keep(s, g, norm);
	net_bias_update(&s->L, net_params_f32(s->m), gload, 0.001);
	s->prof.seconds[NET_PH_OPTIMIZER] += timer_now() - t0 - (s->dp.comm_s - c0);
	s->runs++;
	double rss = step_resident_bytes();
	if (s->fig && !(rss <= s->fig->rss_bytes))
		s->fig->rss_bytes = rss;
	return MB_OK;
}

/* step_run: one training step on this rank's rows, gradients reduced over the DP
 * group; the first keeps its loss and reduced gradients for the check. */
/* step_split gathers every rank's time by cause over the steps run (collective) and
 * keeps the table in the case's figures. */
static void step_split(struct step_state *s)
{
	struct train_split mine;
	int n = comm_size(s->dp.world);
	struct train_split *all = calloc((size_t)n, sizeof(*all));
	memset(&mine, 0, sizeof(mine));
	step_micro_profile(&s->sm, &s->prof);
	train_split_phases(&mine, &s->prof);
	double ep_cb;   /* the profile's EP phase is the exposed time already */
	step_micro_ep(&s->sm, &ep_cb, &mine.s[TC_EP_HIDDEN]);
	mine.s[TC_DP_COMM] = s->dp.comm_s;
	mine.s[TC_TP_COMM] = s->tp_s;
	/* this rank's pipeline idle time, and the simulator's for the run's op times */
	mine.s[TC_BUBBLE] = s->pp.pp > 1 ? s->pp.idle[s->pp.stage] : 0;
	mine.s[TC_BUBBLE_SIM] = s->pp.pp > 1 ? s->pp.sim[s->pp.stage] : 0;
	if (!all || train_split_gather(s->dp.world, &mine, all, n) || !s->fig) {
		free(all);
		return;
	}
	free(s->fig->split);
	s->fig->split = all;
	s->fig->n_split = n;
}

static int step_run(void *p)
{
	struct step_state *s = p;
	struct net_stats st;
	const long *load[1024 + 16], *gload[1024 + 16];
	double norm, tp0 = s->dp.tp_comm_s;
	if (s->pp.pp > 1)
		return step_run_pp(s);
	bool mb = s->sm.n > 1;
	int err = mb ? step_micro_run(&s->sm, s->mine, &st) : net_forward_f32(s->m, s->mine, &st);
	if (!err && !mb)
		err = net_backward_f32(s->m);
	s->tp_s += s->dp.tp_comm_s - tp0;
	if (err)
		return err;
	float *g = net_grads_f32(s->m);
	if (s->runs == 0) {
		if (sopt.plant)
			g[s->L.t[s->L.n / 2].off] += 0.05f * (1.0f + fabsf(g[s->L.t[s->L.n / 2].off]));
		s->loss0 = st.loss;
		s->st0 = st;
	}
	double t0 = timer_now(), c0 = s->dp.comm_s;
	for (int i = 0; i < s->L.blocks; i++)
		load[i] = net_expert_load_f32(mb ? step_micro_last(&s->sm) : s->m, i);
	train_dp_accumulate(&s->dp, g, load);
	err = train_dp_step(&s->dp, &s->L, &s->adam, s->runs + 1, net_params_f32(s->m), g,
			    net_moment1_f32(s->m), net_moment2_f32(s->m), gload, &norm);
	if (err)
		return err;
	if (s->runs == 0)
		step_keep(s, g, norm);
	net_bias_update(&s->L, net_params_f32(s->m), gload, 0.001);
	s->prof.seconds[NET_PH_OPTIMIZER] += timer_now() - t0 - (s->dp.comm_s - c0);
	s->runs++;
	/* NOTE: the resident set at the end of a step, not getrusage's lifetime peak,
	 * which would count the FP64 model of the check too */
	double rss = step_resident_bytes();
	if (s->fig && !(rss <= s->fig->rss_bytes))
		s->fig->rss_bytes = rss;
	return MB_OK;
}

/* step_reduce64 makes the FP64 gradients what the step's reduction makes of the FP32
 * ones: the dense region's mean over the DP group, the experts' sum over the expert-DP
 * group over the DP size (under EP a rank's experts hold every EP rank's tokens). */
static int step_reduce64(struct step_state *s, double *g)
{
	size_t lo = s->L.dense_total, n = s->L.total - lo;
	int err = train_dp_mean(&s->dp, g, (int)lo);
	if (!err && n && comm_size(s->dp.edp) > 1)
		err = comm_host_allreduce_f64(s->dp.edp, g + lo, n, COMM_SUM);
	for (size_t j = 0; !err && s->dp.size > 1 && j < n; j++)
		g[lo + j] /= s->dp.size;
	return err;
}

/* step_reference runs the FP64 forward and backward of the first step's weights on
 * this rank's rows with its expert selection, and averages the loss (into *loss, beside
 * the run's own in s->loss0) and gradients over the DP group. */
static int step_reference(struct step_state *s, struct net_f64 *md, double *loss)
{
	struct net_stats st;
	for (size_t j = 0; j < s->L.total; j++)
		net_params_f64(md)[j] = s->w0[j];
	/* under EP the FP64 model takes the same dispatch and combine, in FP64 rows */
	if (train_ep_active(&s->ep))
		net_comm_set_f64(md, &s->ep.nc);
	/* NOTE: the run's own expert selection (its activations are the first step's
	 * still): rounding near a tie would otherwise send tokens to other experts */
	int err = net_fix_selection_f64(md, s->m);
	double l64 = NAN;
	if (!err && s->pp.pp > 1) {
		err = train_pp_reference_f64(&s->pp, md, s->mine, &l64);
	} else if (!err && s->sm.n > 1) {
		err = step_micro_reference(&s->sm, md, s->mine, &l64);
	} else if (!err) {
		err = net_forward_f64(md, s->mine, &st);
		if (!err)
			err = net_backward_f64(md);
		l64 = st.loss;
	}
	double x[2] = { s->loss0, l64 };
	if (!err)
		err = train_dp_mean(&s->dp, x, 2);
	if (!err)
		err = step_reduce64(s, net_grads_f64(md));
	if (!err)
		err = train_dp_gather(&s->dp, s->g0);
	s->loss0 = x[0];
	*loss = x[1];
	return err;
}

/* step_dump writes --dump-batch: the config, the batch and the first step's losses. */
static int step_dump(struct step_state *s, double loss64)
{
	char why[512];
	struct step_dump d = { &s->L, &s->no, (int)sopt.batch, (int)sopt.seq, s->seed, s->tok,
			       &s->st0, loss64 };
	if (step_dump_write(sopt.dump, step_force, &d, why, sizeof(why)))
		return cli_error(NULL, "--dump-batch: %s", why), MB_ERR_IO;
	return MB_OK;
}

/* step_check: the first step's loss and reduced gradients against the FP64 model (the
 * DP ranks split the tensors between them; the driver sums their counts). */
static int step_check(void *p, struct bench_check *chk)
{
	struct step_state *s = p;
	struct net_f64 *md;
	double loss64 = NAN;
	int err = net_create_f64(&s->L, &s->no, s->sm.n > 1 ? s->sm.micro : s->per_rank,
				 (int)sopt.seq, 1, &md);
	if (err)
		return err;
	net_tp_set_f64(md, train_dp_tp(&s->dp));
	err = step_reference(s, md, &loss64);
	if (!err && sopt.dump)
		err = step_dump(s, loss64);
	/* each error over its tolerance: the check passes at <= 1 */
	chk->max_err = err ? INFINITY : fabs(s->loss0 - loss64) / loss64 / s->tol;
	chk->samples = s->dp.rank == 0;
	chk->mismatches = chk->samples && chk->max_err > 1;
	/* dense tensors split over the DP group, a rank's experts over its expert-DP group */
	int er = comm_rank(s->dp.edp), es = comm_size(s->dp.edp);
	for (int i = 0; !err && i < s->L.n; i++) {
		bool mine = s->L.t[i].expert ? i % es == er : i % s->dp.size == s->dp.rank;
		if (!s->L.t[i].trainable || !mine)
			continue;
		step_grad_check(&s->L.t[i], s->g0, net_grads_f64(md), s->gtol, chk);
	}
	chk->tolerance = 1;
	chk->metric = s->metric;
	net_destroy_f64(md);
	return err;
}

/* step_destroy keeps the case's figures for the summary and frees the state. */
static void step_destroy(void *p)
{
	struct step_state *s = p;
	step_split(s);
	if (s->fig) {
		memcpy(s->fig->phase, s->prof.seconds, sizeof(s->fig->phase));
		memcpy(s->fig->gemm_s, s->prof.gemm_seconds, sizeof(s->fig->gemm_s));
		memcpy(s->fig->gemm_flops, s->prof.gemm_flops, sizeof(s->fig->gemm_flops));
		s->fig->dp_comm = s->dp.comm_s;
		s->fig->pp = s->pp.pp;
		s->fig->pp_bubble = s->pp.pp > 1 ? s->pp.idle[s->pp.stage] : 0;
		s->fig->pp_bubble_sim = s->pp.pp > 1 ? s->pp.sim[s->pp.stage] : 0;
		s->fig->dp = s->dp.size;
		s->fig->tp_comm = s->tp_s;
		s->fig->tp = s->dp.lay.tp;
		step_micro_ep(&s->sm, &s->fig->ep_exposed, &s->fig->ep_hidden);
		s->fig->ep_exposed += s->ep.exposed_s;
		s->fig->ep = s->dp.lay.ep;
	}
	if (s->pp.pp > 1)
		train_pp_close(&s->pp);
	step_micro_close(&s->sm);
	net_destroy_f32(s->m);
	train_ep_close(&s->ep);
	train_dp_close(&s->dp);
	net_layout_free(&s->L);
	free(s->tok);
	free(s->w0);
	free(s->g0);
	free(s);
}

/* step_state_new builds the model, its random batch and the copies the check needs. */
static int step_state_new(const struct model_config *cfg, uint64_t seed, struct step_state **out)
{
	struct step_state *s = calloc(1, sizeof(*s));
	size_t ntok = (size_t)sopt.batch * (size_t)(sopt.seq + 1 + cfg->mtp_depth);
	struct mb_rng rng;
	char why[256];
	int err = MB_ERR_NOMEM;
	*out = s;
	if (!s)
		return err;
	struct net_part part;
	if ((err = train_dp_open(&s->dp, &step_grid, sopt.zero1, cfg, sopt.timeout, why,
				 sizeof(why)))) {
		cli_error(NULL, "parallel groups: %s", why);
		return err;
	}
	train_pp_part(&s->dp, cfg, sopt.schedule, (int)sopt.chunks, &part);
	if ((err = net_layout_build_part(cfg, &part, &s->L, why, sizeof(why)))) {
		cli_error(NULL, "this rank's part of the model: %s", why);
		return err;
	}
	if ((err = train_dp_buffers(&s->dp, &s->L)))
		return err;
	s->per_rank = (int)(sopt.batch / s->dp.size);
	net_options_default(&s->no);
	train_dp_moments(&s->dp, &s->no);
	net_precision_parse(sopt.precision, &s->no.precision);
	s->no.experts_serial = sopt.serial;
	s->no.sp = sopt.sp;
	net_adamw_default(&s->adam);
	/* NOTE: gradients carry a whole backward's rounding: FP8's 3 mantissa bits give
	 * ~10% on the attention projections of v3-tiny (measured), BF16's 8 under 1% */
	s->tol = s->no.precision == NET_FP32 ? 1e-5 : s->no.precision == NET_BF16 ? 1e-2 : 5e-2;
	s->gtol = s->no.precision == NET_FP32 ? 1e-3 : s->no.precision == NET_BF16 ? 3e-2 : 0.25;
	/* a BF16 dispatch rounds the experts' inputs and outputs as BF16 GEMMs would (the
	 * FP64 reference moves FP64 rows): BF16's tolerances at least */
	if (step_wire != EP_WIRE_SAME && s->tol < 1e-2)
		s->tol = 1e-2, s->gtol = 3e-2;
	snprintf(s->metric, sizeof(s->metric), "max(|loss-loss64|/loss64 / %g, "
		 "||g-g64||/||g64|| per tensor / %g)", s->tol, s->gtol);
	s->tok = malloc(ntok * sizeof(int32_t));
	s->w0 = malloc(s->L.total * sizeof(float));
	s->g0 = malloc(s->L.total * sizeof(float));
	err = s->tok && s->w0 && s->g0 ? MB_OK : MB_ERR_NOMEM;
	if (!err)
		err = net_create_f32(&s->L, &s->no, sopt.micro ? (int)sopt.micro : s->per_rank,
				     (int)sopt.seq, seed, &s->m);
	if (!err)
		err = train_ep_open(&s->ep, s->dp.ep, &s->L, (int)sopt.ranks_per_node,
				    step_wire);
	if (!err && s->dp.lay.pp > 1)
		err = train_pp_open(&s->pp, &s->dp, s->m, sopt.schedule, (int)sopt.chunks,
				    s->per_rank, (int)sopt.seq, 1, seed);
	if (!err && s->dp.lay.pp > 1)
		err = train_pp_comm(&s->pp, train_dp_tp(&s->dp), &s->ep);
	if (err)
		return err;
	if (train_ep_active(&s->ep))
		net_comm_set_f32(s->m, &s->ep.nc);
	if (sopt.init_from &&
	    net_load(&s->L, net_params_f32(s->m), sopt.init_from, why, sizeof(why)))
		return cli_error("--init-from needs a checkpoint of the same configuration "
				 "(vocabulary 256)", "--init-from: %s", why), MB_ERR_ARG;
	s->seed = seed;
	mb_rng_seed(&rng, seed, 0x70c);
	for (size_t j = 0; j < ntok; j++)
		s->tok[j] = (int32_t)(mb_rng_next(&rng) >> 56);
	s->mine = s->tok + (size_t)s->dp.rank * (size_t)s->per_rank * (ntok / (size_t)sopt.batch);
	memcpy(s->w0, net_params_f32(s->m), s->L.total * sizeof(float));
	if (sopt.save && net_save(&s->L, s->w0, sopt.save, why, sizeof(why)))
		return cli_error(NULL, "--save: %s", why), MB_ERR_IO;
	net_tp_set_f32(s->m, train_dp_tp(&s->dp));
	s->prof.now = timer_now;
	net_profile_set_f32(s->m, &s->prof);
	int n = sopt.micro ? s->per_rank / (int)sopt.micro : 1;
	return step_micro_open(&s->sm, &s->L, s->m, (int)sopt.micro, n, (int)sopt.seq,
			       (int)(ntok / (size_t)sopt.batch), &s->dp, &s->ep,
			       (int)sopt.ranks_per_node, step_wire, sopt.overlap,
			       (int)sopt.replicas, &s->prof);
}

/* step_case fills the driver's case for cfg. */
static int step_case(struct run_ctx *ctx, const struct model_config *cfg, double peak_tflops)
{
	struct bench_case c = { .peak = NAN, .measured_peak = peak_tflops };
	struct model_flops fl;
	struct step_state *s;
	int err = step_state_new(cfg, ctx->opts->seed, &s);
	if (err) {
		if (s)
			step_destroy(s);
		return err;
	}
	model_flops_per_token(cfg, sopt.seq, cfg->mtp_depth, 0, &fl);
	double tokens = (double)sopt.batch * (double)sopt.seq;
	char rep[32] = "";
	if (sopt.replicas > 1)
		snprintf(rep, sizeof(rep), "_r%lld", (long long)sopt.replicas);
	snprintf(c.name, sizeof(c.name), "%s/%s/b%lld_s%lld%s", cfg->name, sopt.precision,
		 (long long)sopt.batch, (long long)sopt.seq, rep);
	c.flops = (double)fl.total * tokens;
	c.state = s;
	c.run = step_run;
	c.check = step_check;
	c.destroy = step_destroy;
	c.comm = s->dp.lay.world > 1 ? s->dp.world : NULL;
	c.params = cJSON_CreateObject();
	cJSON_AddStringToObject(c.params, "preset", cfg->name);
	cJSON_AddStringToObject(c.params, "precision", sopt.precision);
	cJSON_AddNumberToObject(c.params, "batch", (double)sopt.batch);
	cJSON_AddNumberToObject(c.params, "seq", (double)sopt.seq);
	cJSON_AddNumberToObject(c.params, "vocab", (double)cfg->vocab);
	cJSON_AddNumberToObject(c.params, "params", (double)s->L.total);
	cJSON_AddNumberToObject(c.params, "micro_batch", (double)(sopt.micro ? sopt.micro
										      : s->per_rank));
	cJSON_AddNumberToObject(c.params, "replicas", (double)sopt.replicas);
	cJSON_AddNumberToObject(c.params, "dp", (double)s->dp.size);
	cJSON_AddNumberToObject(c.params, "tp", (double)s->dp.lay.tp);
	cJSON_AddBoolToObject(c.params, "zero1", sopt.zero1);
	cJSON_AddBoolToObject(c.params, "sp", sopt.sp);
	cJSON_AddBoolToObject(c.params, "experts_serial", sopt.serial);
	cJSON_AddNumberToObject(c.params, "ep", (double)s->dp.lay.ep);
	cJSON_AddNumberToObject(c.params, "ranks_per_node", (double)sopt.ranks_per_node);
	cJSON_AddStringToObject(c.params, "dispatch", sopt.dispatch);
	if (n_figs < 8) {
		s->fig = &figs[n_figs++];
		memset(s->fig, 0, sizeof(*s->fig));
		snprintf(s->fig->name, sizeof(s->fig->name), "%s", c.name);
		s->fig->tokens = tokens;
		s->fig->flops_per_token = (double)fl.total;
		s->fig->cfg = *cfg;
		s->fig->peak_tflops = peak_tflops;
		net_memory_f32(s->m, &s->fig->mem);
		if (net_memory_predict_part(cfg, &s->L.part, s->per_rank, (int)sopt.seq,
					    step_grid.dp, sopt.zero1,
					    net_memory_in_flight(sopt.schedule, s->pp.pp, s->pp.stage, 1),
					    &s->fig->pred))
			s->fig->pred.total_bytes = NAN;
		s->fig->rss_bytes = NAN;
	}
	/* NOTE: this is the host step: under a CUDA backend opened by auto (`run`) it is
	 * timed and recorded as the CPU's, never as the GPU's; `--backend cuda` runs the
	 * device step instead (step_dev.c) */
	return ctx->backend->kind == BACKEND_CUDA ? driver_run_case_on_host(ctx, &c)
						 : driver_run_case(ctx, &c);
}

/* step_fits refuses (exit 2) a step predicted to need more memory than --mem-limit or
 * the machine has: the FP32 step (weights, gradients, moments, activations) plus its
 * FP64 reference (weights and gradients at twice the width, no moments, activations at
 * twice the width), from memory.c's terms; scratch adds a little more. v3-small (1.3B
 * parameters) needs about 44 GB at batch 4 x 128, which a 24 GB machine would otherwise
 * meet as the OOM killer. */
static int step_fits(const struct model_config *cfg)
{
	struct model_memory w;
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	double have = sopt.mem_limit > 0 ? (double)sopt.mem_limit
		      : (pages > 0 && page > 0 ? (double)pages * (double)page : INFINITY);
	if (net_memory_predict_tp(cfg, (int)(sopt.batch / step_grid.dp), (int)sopt.seq,
				  step_grid.dp, step_grid.tp, sopt.zero1, &w))
		return MB_OK;   /* net_layout_build reports what is wrong with the config */
	double need = 2 * (w.weight_bytes + w.grad_bytes + w.optimizer_bytes) +
		      3 * w.activation_bytes;
	if (need <= have)
		return MB_OK;
	cli_error("choose a smaller --preset (v3-tiny, llama3-tiny), --batch or --seq, or a "
		  "machine with more memory", "step: %s at batch %lld x %lld needs about %.1f GB "
		  "(the FP32 step and its FP64 check), more than %s's %.1f GB", cfg->name,
		  (long long)sopt.batch, (long long)sopt.seq, need / 1e9,
		  sopt.mem_limit > 0 ? "--mem-limit" : "this machine", have / 1e9);
	return MB_ERR_ARG;
}

/* step_outputs_free refuses (exit 2) a --save or --dump-batch that names an existing
 * file without --force, or any of them and --init-from on more than one rank (the
 * weights of one whole model, one rank's batch), before any work. */
static int step_outputs_free(void)
{
	const char *path[3] = { sopt.save, sopt.dump, sopt.init_from };
	const char *opt[3] = { "--save", "--dump-batch", "--init-from" };
	const struct train_grid *g = &step_grid;
	for (int i = 0; i < 3; i++) {
		if (path[i] && g->tp * g->pp * g->ep * g->dp > 1)
			return cli_error("run it on one rank", "%s: one rank's batch and weights only",
					 opt[i]), MB_ERR_ARG;
		if (i < 2 && path[i] && !step_force && access(path[i], F_OK) == 0)
			return cli_error("pass --force, or choose another file", "%s: %s exists",
					 opt[i], path[i]), MB_ERR_ARG;
	}
	return MB_OK;
}

/* step_cuda_hook hands the options to the device step; its figures are the one case's. */
static int step_cuda_hook(struct run_ctx *ctx)
{
	struct step_dev_opts d = {
		sopt.preset, sopt.model, sopt.precision, sopt.peak_file, sopt.batch, sopt.seq,
		sopt.dp, sopt.tp, sopt.pp, sopt.ep, sopt.etp, sopt.micro, sopt.zero1, sopt.sp,
		sopt.overlap, sopt.serial, sopt.plant, sopt.init_from, sopt.save, sopt.dump };
	if (sopt.replicas > 1)
		return cli_error("leave --replicas out with --backend cuda", "--replicas: the "
				 "device step runs its batch as one forward"), MB_ERR_ARG;
	n_figs = 1;
	return step_dev_bench(ctx, &d, &figs[0]);
}

/* step_bench_run resolves the preset or --model (byte-level vocabulary) and runs its
 * one case; the suite runs a small v3-tiny step. */
static int step_bench_run(struct run_ctx *ctx)
{
	char why[512];
	double peak = NAN;
	struct net_layout L;
	struct model_config cfg;
	if (ctx->suite) {
		sopt.preset = "v3-tiny";
		sopt.model = NULL;
		sopt.batch = mpi_world_size();   /* one sequence per rank */
		sopt.seq = 64;
		sopt.tp = sopt.pp = sopt.ep = sopt.etp = sopt.ranks_per_node = sopt.replicas = 1;
		sopt.dispatch = "fp32";
		sopt.schedule = "1f1b";
		sopt.dp = 0;
	}
	step_force = ctx->opts->force;
	/* --backend cuda: the device step (step_dev.c), one rank */
	if (!ctx->suite && ctx->opts->backend && !strcmp(ctx->opts->backend, "cuda"))
		return step_cuda_hook(ctx);
	if (step_resolve_config(sopt.model, sopt.preset, &cfg))
		return MB_ERR_ARG;
	step_grid = (struct train_grid){ (int)sopt.tp, (int)sopt.pp, (int)sopt.ep, (int)sopt.etp,
					 (int)sopt.dp };
	if (train_dp_layout(&step_grid, (long)sopt.batch, (long)sopt.micro, &cfg) ||
	    step_micro_check(sopt.batch / step_grid.dp, sopt.micro, step_grid.ep, step_grid.pp,
			     sopt.overlap) ||
	    train_pp_check(step_grid.pp, sopt.schedule, (int)sopt.chunks, 1, &cfg) ||
	    train_ep_check(step_grid.ep, (int)sopt.ranks_per_node) ||
	    train_sp_check(sopt.sp, &step_grid, sopt.micro ? (long)sopt.micro
							   : (long)(sopt.batch / step_grid.dp),
			   (long)sopt.seq) ||
	    train_ep_wire(sopt.dispatch, sopt.precision, &step_wire) || step_outputs_free())
		return MB_ERR_ARG;
	long micro = (long)sopt.micro;
	if (train_replicas_check(sopt.batch / step_grid.dp, &micro, sopt.replicas, step_grid.tp,
				 step_grid.ep, step_grid.pp, sopt.overlap))
		return MB_ERR_ARG;
	sopt.micro = micro;
	if (cfg.vocab != 256)
		cli_note(ctx->opts->quiet, "byte-level tokens: vocabulary %lld -> 256",
			 (long long)cfg.vocab);
	cfg.vocab = 256;
	cfg.seq_len = sopt.seq;
	if (net_layout_build(&cfg, &L, why, sizeof(why)))
		return cli_error("v3-tiny, v3-small and llama3-tiny train here", "%s %s: %s",
				 sopt.model ? "--model" : "--preset",
				 sopt.model ? sopt.model : sopt.preset, why), MB_ERR_ARG;
	net_layout_free(&L);
	if (step_fits(&cfg))
		return MB_ERR_ARG;
	if (sopt.peak_file && train_measured_rate(sopt.peak_file, "sgemm", &peak, why, sizeof(why)))
		return cli_error("pass a result file written by `moebench peak`",
				 "--measured-peak: %s", why), MB_ERR_ARG;
	n_figs = 0;
	return step_case(ctx, &cfg, peak);
}

/* find_figures returns the kept figures of the case named name, or NULL. */
static const struct step_figures *find_figures(const char *name)
{
	for (int i = 0; i < n_figs; i++)
		if (strcmp(figs[i].name, name) == 0)
			return &figs[i];
	return NULL;
}

/* step_annotate_record adds the timed figures to one step record; writes its line. */
static void step_annotate_record(cJSON *rec, const struct step_figures *f, char *line,
				 size_t len)
{
	static const char *ph[NET_PH_COUNT] = { "attention", "routing", "experts", "dense",
						"loss", "optimizer", "other", "ep_exposed" };
	cJSON *mt = cJSON_GetObjectItem(rec, "metrics");
	const cJSON *med = cJSON_GetObjectItem(cJSON_GetObjectItem(mt, "time_s"), "median");
	double t = cJSON_IsNumber(med) ? med->valuedouble : NAN;
	double total = f->dp_comm + f->tp_comm + f->pp_bubble;
	int n = 0;
	for (int i = 0; i < NET_PH_COUNT; i++)
		total += f->phase[i];
	result_set_metric(rec, "tokens_per_s", f->tokens / t);
	result_set_metric(rec, "model_flops_per_token", f->flops_per_token);
	/* NOTE: beside params, not in them: `compare` keys records by their params */
	cJSON_AddItemToObject(rec, "model_config", model_config_to_json(&f->cfg));
	n += snprintf(line + n, len - (size_t)n, "step %s: %.0f tok/s, %.1f ms:", f->name,
		      f->tokens / t, 1e3 * t);
	for (int i = 0; i < NET_PH_COUNT; i++) {
		char key[48];
		double ms = total > 0 ? 1e3 * t * f->phase[i] / total : NAN;
		snprintf(key, sizeof(key), "phase_%s_ms", ph[i]);
		result_set_metric(rec, key, ms);
		if (n < (int)len)
			n += snprintf(line + n, len - (size_t)n, " %s %.0f%%", ph[i],
				      100 * f->phase[i] / total);
	}
	/* NOTE: the DP collectives' time (the optimizer's excludes it), named as the
	 * projection's data-parallel communication term */
	result_set_metric(rec, "phase_dp_comm_ms", total > 0 ? 1e3 * t * f->dp_comm / total : NAN);
	if (n < (int)len && f->dp > 1)
		n += snprintf(line + n, len - (size_t)n, " dp-comm %.0f%%", 100 * f->dp_comm / total);
	/* the model's TP collectives (its phases leave them out) */
	result_set_metric(rec, "phase_tp_comm_ms", total > 0 ? 1e3 * t * f->tp_comm / total : NAN);
	if (n < (int)len && f->tp > 1)
		n += snprintf(line + n, len - (size_t)n, " tp-comm %.0f%%", 100 * f->tp_comm / total);
	/* NOTE: EP's dispatch/combine is the phase ep_exposed above (the model marks it;
	 * the split's ep_comm_exposed); --ep-overlap hides some under the other chunk */
	result_set_metric(rec, "ep_exposed_s", f->ep_exposed);
	result_set_metric(rec, "ep_hidden_s", f->ep_hidden);
	/* the pipeline's idle time (rank 0's), beside the simulator's for the same op times */
	if (f->pp > 1) {
		result_set_metric(rec, "phase_pp_bubble_ms", 1e3 * t * f->pp_bubble / total);
		result_set_metric(rec, "phase_pp_bubble_sim_ms", 1e3 * t * f->pp_bubble_sim / total);
	}
	if (n < (int)len && f->pp > 1)
		n += snprintf(line + n, len - (size_t)n, " pp-bubble %.0f%% (simulated %.0f%%)",
			      100 * f->pp_bubble / total, 100 * f->pp_bubble_sim / total);
	n += step_gemm_rates(rec, f, line + n, n < (int)len ? len - (size_t)n : 0);
	step_memory(rec, f, line + n, n < (int)len ? len - (size_t)n : 0);
	if (f->split) {
		cJSON *sp = train_split_json(f->split, f->n_split);
		char causes[512];
		if (sp)
			cJSON_AddItemToObject(rec, "split", sp);
		int slow = sp ? cJSON_GetObjectItem(sp, "slowest_rank")->valueint : 0;
		train_split_line(&f->split[slow], causes, sizeof(causes));
		n = (int)strlen(line);
		if (n < (int)len)
			snprintf(line + n, len - (size_t)n, "; by cause (slowest rank %d of %d): %s",
				 slow, f->n_split, causes);
	}
}

/* step_summarize adds tokens/s, the phase split and memory to every measured step
 * record, and the summary lines. */
static int step_summarize(cJSON *doc)
{
	const cJSON *rec;
	cJSON *lines = cJSON_CreateArray();
	if (!lines)
		return MB_ERR_NOMEM;
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(doc, "records")) {
		const cJSON *b = cJSON_GetObjectItem(rec, "benchmark");
		const cJSON *nm = cJSON_GetObjectItem(rec, "name");
		if (!cJSON_IsString(b) || strcmp(b->valuestring, "step") || !cJSON_IsString(nm))
			continue;
		const struct step_figures *f = find_figures(nm->valuestring);
		const cJSON *chk = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "check"), "status");
		char line[1536];
		/* a failed check leaves no performance figure (DESIGN.md) */
		if (!f || !cJSON_IsString(chk) || strcmp(chk->valuestring, "pass"))
			continue;
		step_annotate_record((cJSON *)rec, f, line, sizeof(line));
		cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	}
	cJSON *sum = cJSON_GetObjectItem(doc, "summary");
	if (!sum)
		sum = cJSON_AddObjectToObject(doc, "summary");
	cJSON *s = sum ? cJSON_AddObjectToObject(sum, "step") : NULL;
	if (!s) {
		cJSON_Delete(lines);
		return MB_ERR_NOMEM;
	}
	cJSON_AddItemToObject(s, "lines", lines);
	return MB_OK;
}

const struct bench_desc bench_step = {
	.name = "step",
	.summary = "one training step (fwd, bwd, AdamW), timed and checked against FP64",
	.usage = "moebench step [--preset v3-tiny | --model FILE] [--batch B] [--seq S] "
		 "[--precision fp32|bf16|fp8] [--measured-peak FILE] [--init-from FILE] "
		 "[--save FILE] [--dump-batch FILE] [options]",
	.warmup = "1",
	.iters = "5",
	.min_time = "0",
	.options = step_opts_table,
	.run = step_bench_run,
	.summarize = step_summarize,
};
