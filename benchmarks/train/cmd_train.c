/*
 * cmd_train.c - `moebench train`: train a model preset on real text on one rank, one
 * line per step (loss, MTP loss, lr, grad norm, step ms, tokens/s, MFU, expert load
 * max/mean), validation loss every --val-every steps, a progress line with ETA on
 * stderr, and a result document whose summary holds the loss curve (--csv writes it for
 * plots/train_loss.gp).
 *
 *   moebench train                                  # v3-tiny, fortunes, fp32, 200 steps
 *   moebench train --preset llama3-tiny --steps 500 --csv llama.csv
 *   moebench train --precision fp8 --time-limit 1200 --data my_corpus/
 *
 * Tokens are bytes (vocabulary 256, overriding the preset's, with a note), or with
 * --vocab N a BPE trained on the training text (model/train/bpe.h; saved beside --save as
 * FILE.bpe.json, reused with --tokenizer). --save / --init-from write and read the
 * weights as safetensors under the Hugging Face names (model/train/net_ckpt.c). Model FLOPs
 * per token are model/accounting.c's (the function `moebench model` prints); MFU is
 * against --measured-peak's SGEMM rate (`moebench peak`), n/a without it: there is no
 * datasheet peak for a CPU. Exit 0; 1 when the loss is not finite; 2 on bad input.
 * The record's `split` is the run's time by cause under `step`'s names (train_split.h),
 * summed over the optimizer steps (validation excluded), per rank and the slowest's.
 * --time-limit stops every rank after the same step: the slowest rank's clock decides.
 * --backend cuda runs the same loop with the model on the GPU (train_dev.c: one rank,
 * MFU against the datasheet and --measured-peak's bf16/fp8 GEMM rate).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "accounting.h"
#include "bpe.h"
#include "cli.h"
#include "commands.h"
#include "driver.h"
#include "mpi_world.h"
#include "net_data.h"
#include "result.h"
#include "session.h"
#include "stats.h"
#include "status.h"
#include "timer.h"
#include "train_dp.h"
#include "train_pp.h"
#include "train_ep.h"
#include "train_overlap.h"
#include "train_replicas.h"
#include "train_run.h"
#include "train_split.h"
#include "train_state.h"

static struct train_opts opt;

static const struct cli_opt train_options[] = {
	{ "preset", CLI_STRING, &opt.preset, "v3-tiny", "model preset (moebench model --list)", 0, -1, NULL },
	{ "precision", CLI_CHOICE, &opt.precision, "fp32", "GEMM precision (emulated exactly on the CPU)", 0, -1, "fp32|bf16|fp8" },
	{ "data", CLI_STRING, &opt.data, "fortunes", "text: fortunes, synthetic, a file or a folder", 0, -1, NULL },
	{ "steps", CLI_SIZE, &opt.steps, "200", "optimizer steps", 1, 1e9, NULL },
	{ "batch", CLI_SIZE, &opt.batch, "8", "sequences per step", 1, 65536, NULL },
	{ "seq", CLI_SIZE, &opt.seq, "256", "tokens per sequence", 2, 65536, NULL },
	{ "lr", CLI_DOUBLE, &opt.lr, "3e-3", "peak learning rate", 0, 10, NULL },
	{ "min-lr", CLI_DOUBLE, &opt.min_lr, "3e-4", "learning rate at the end of the cosine", 0, 10, NULL },
	{ "lr-warmup", CLI_SIZE, &opt.warmup, "20", "linear warm-up steps", 0, 1e9, NULL },
	{ "val-every", CLI_SIZE, &opt.val_every, "50", "validation loss every N steps (and at the end)", 1, 1e9, NULL },
	{ "val-batches", CLI_SIZE, &opt.val_batches, "8", "held-out batches per validation", 1, 1e6, NULL },
	{ "init-std", CLI_DOUBLE, &opt.init_std, "0.006", "initialisation std (DeepSeek-V3 4.2)", 1e-6, 1, NULL },
	{ "mtp-weight", CLI_DOUBLE, &opt.mtp_weight, "0.3", "MTP loss weight lambda", 0, 10, NULL },
	{ "balance-alpha", CLI_DOUBLE, &opt.alpha, "1e-4", "sequence-wise balance loss weight", 0, 10, NULL },
	{ "bias-gamma", CLI_DOUBLE, &opt.gamma, "0.001", "routing-bias update speed", 0, 1, NULL },
	{ "clip", CLI_DOUBLE, &opt.clip, "1.0", "global gradient-norm clip (0: none)", 0, 1e9, NULL },
	{ "weight-decay", CLI_DOUBLE, &opt.wd, "0.1", "AdamW weight decay", 0, 10, NULL },
	{ "time-limit", CLI_DOUBLE, &opt.time_limit, "0", "stop after this many seconds (0: none)", 0, 1e7, NULL },
	{ "vocab", CLI_SIZE, &opt.vocab, "256", "tokens: 256 bytes, or a BPE of N trained on the training text", 256, 262144, NULL },
	{ "tokenizer", CLI_STRING, &opt.tokenizer, NULL, "a BPE file (written beside a --save) instead of training one", 0, -1, NULL },
	{ "save", CLI_STRING, &opt.save, NULL, "write the weights to FILE.safetensors (and the BPE beside it)", 0, -1, NULL },
	{ "init-from", CLI_STRING, &opt.init_from, NULL, "start from a FILE.safetensors of the same configuration", 0, -1, NULL },
	{ "csv", CLI_STRING, &opt.csv, NULL, "also write the loss curve as CSV (plots/train_loss.gp)", 0, -1, NULL },
	{ "measured-peak", CLI_STRING, &opt.peak_file, NULL, "a `moebench peak` result: MFU against its SGEMM rate (bf16/fp8 GEMM under --backend cuda)", 0, -1, NULL },
	{ "dp", CLI_SIZE, &opt.dp, "0", "data-parallel ranks (0: the world / (tp x pp))", 0, 1e6, NULL },
	{ "tp", CLI_SIZE, &opt.tp, "1", "tensor-parallel ranks (Megatron order tp-cp-dp-pp)", 1, 1024, NULL },
	{ "pp", CLI_SIZE, &opt.pp, "1", "pipeline stages", 1, 1024, NULL },
	{ "ep", CLI_SIZE, &opt.ep, "1", "expert-parallel ranks (carved out of the data-parallel ones)", 1, 1e6, NULL },
	{ "ranks-per-node", CLI_SIZE, &opt.ranks_per_node, "1", "EP ranks per node: >1 routes node-limited over two hops (DeepSeek-V3)", 1, 1024, NULL },
	{ "dispatch", CLI_CHOICE, &opt.dispatch, "fp32", "EP dispatch payload: bf16 rounds it, fp8 (with --precision fp8) quantizes it 1x128; combine then in bf16", 0, -1, "fp32|bf16|fp8" },
	{ "etp", CLI_SIZE, &opt.etp, "1", "tensor-parallel ranks of each expert", 1, 1024, NULL },
	{ "sp", CLI_FLAG, &opt.sp, NULL, "sequence parallelism under --tp: norms and residuals on 1/tp of the tokens, reduce-scatter/all-gather for all-reduce", 0, -1, NULL },
	{ "zero1", CLI_FLAG, &opt.zero1, NULL, "ZeRO-1: reduce-scatter, AdamW on the owned shard, all-gather", 0, -1, NULL },
	{ "schedule", CLI_STRING, &opt.schedule, "1f1b", "pipeline schedule under --pp: gpipe|1f1b|interleaved|zb-h1|dualpipe|dualpipev", 0, -1, NULL },
	{ "chunks", CLI_SIZE, &opt.chunks, "2", "model chunks per stage of --schedule interleaved", 1, 64, NULL },
	{ "micro-batch", CLI_SIZE, &opt.micro, "0", "sequences per forward on a rank, gradients accumulated (0: all of the rank's)", 0, 65536, NULL },
	{ "replicas", CLI_SIZE, &opt.replicas, "1", "micro-batches side by side, one thread (and one BLAS thread) each, gradients summed in micro-batch order (--micro-batch defaults to the rank's batch / replicas)", 1, 64, NULL },
	{ "ep-overlap", CLI_FLAG, &opt.overlap, NULL, "with --ep and 2+ micro-batches: the forward of one micro-batch beside the backward of the previous, EP dispatch/combine hidden under compute (DualPipe's F&B)", 0, -1, NULL },
	{ "timeout", CLI_DOUBLE, &opt.timeout, "60", "under mpirun: end every rank, naming the silent one, when a collective waits longer (s)", 0.1, 1e6, NULL },
	CLI_END
};

static const struct cli_opt *train_opts_table(void)
{
	return train_options;
}

/* train_config resolves the preset (byte-level vocabulary) and the precision. */
static int train_config(struct trainer *t, bool quiet)
{
	char why[256], names[512];
	const struct model_config *p = model_preset_find(opt.preset);
	if (!p) {
		model_preset_names(names, sizeof(names));
		return cli_error(names, "--preset %s: unknown preset", opt.preset);
	}
	t->cfg = *p;
	if (t->cfg.vocab != t->corpus.vocab)
		cli_note(quiet, "%s tokens: vocabulary %lld -> %d", t->bpe ? "BPE" : "byte-level",
			 (long long)t->cfg.vocab, t->corpus.vocab);
	t->cfg.vocab = t->corpus.vocab;
	t->cfg.seq_len = opt.seq;
	if (net_layout_build(&t->cfg, &t->L, why, sizeof(why)))
		return cli_error("v3-tiny, v3-small and llama3-tiny train here", "--preset %s: %s",
				 opt.preset, why);
	net_layout_free(&t->L);   /* the rank's part is built once the grid is known */
	net_options_default(&t->no);
	net_precision_parse(opt.precision, &t->no.precision);
	t->no.init_std = opt.init_std;
	t->no.mtp_weight = opt.mtp_weight;
	t->no.balance_alpha = opt.alpha;
	t->no.sp = opt.sp;
	net_adamw_default(&t->adam);
	t->adam.clip = opt.clip;
	t->adam.weight_decay = opt.wd;
	t->moe = t->cfg.routed_experts > 0;
	t->len = (int)(opt.seq + 1 + t->cfg.mtp_depth);
	return 0;
}

/* train_tokens loads the text and tokenizes it: bytes, a --tokenizer file, or a BPE
 * of --vocab tokens trained on the training part. Returns 0 or exit status 2. */
static int train_tokens(struct trainer *t, uint64_t seed, bool quiet)
{
	char why[512];
	if (net_corpus_load(opt.data, seed, &t->corpus, why, sizeof(why)))
		return cli_error("install the Debian package fortunes (make deps), or pass --data "
				 "FILE|DIR|synthetic", "--data: %s", why);
	cli_note(quiet, "data: %s, %d files, %zu bytes (%zu train, %zu validation)",
		 t->corpus.source, t->corpus.files, t->corpus.n, t->corpus.n_train,
		 t->corpus.n - t->corpus.n_train);
	if (opt.tokenizer && bpe_load(&t->bpe, opt.tokenizer, why, sizeof(why)))
		return cli_error("pass a file a `moebench train --vocab N --save` wrote",
				 "--tokenizer: %s", why);
	if (!t->bpe && opt.vocab > 256) {
		double t0 = timer_now();
		if (bpe_train(&t->bpe, t->corpus.bytes, t->corpus.n_train, (int)opt.vocab, why,
			      sizeof(why)))
			return cli_error(NULL, "--vocab: %s", why);
		cli_note(quiet, "BPE: %d tokens trained on %zu bytes in %.1f s",
			 bpe_vocab_size(t->bpe), t->corpus.n_train, timer_now() - t0);
	}
	if (t->bpe && net_corpus_tokenize(&t->corpus, t->bpe))
		return cli_error(NULL, "out of memory encoding the text");
	if (t->corpus.ntok - t->corpus.ntok_train <= (size_t)(opt.seq + 4))
		return cli_error("use a larger corpus or a shorter --seq",
				 "--data: the held-out 5%% (%zu tokens) is shorter than one sequence",
				 t->corpus.ntok - t->corpus.ntok_train);
	return 0;
}

/* train_overlap_open makes the second model of --ep-overlap (sharing the weights and
 * gradients of t->m), its EP state over a duplicate of the EP group, and the baton. */
static int train_overlap_open(struct trainer *t, enum ep_wire wire)
{
	int err = net_create_f32(&t->L, &t->no, t->micro, (int)opt.seq, 0, &t->m2);
	if (!err)
		err = net_share_params_f32(t->m2, t->m);
	if (!err)
		err = comm_split(t->dp.ep, 0, comm_rank(t->dp.ep), &t->ep_dup);
	if (err)
		return err;
	comm_set_name(t->ep_dup, "ep.overlap");
	net_tp_set_f32(t->m2, train_dp_tp(&t->dp));
	err = train_ep_open(&t->ep2, t->ep_dup, &t->L, (int)opt.ranks_per_node, wire);
	if (err)
		return err;
	net_comm_set_f32(t->m2, &t->ep2.nc);
	err = train_overlap_init(&t->ov, t->dp.ep, t->ep_dup, t->m, t->m2);
	t->ov_on = !err;
	return err;
}

/* train_init_from reads --init-from's weights into the model (through the host copy on
 * the device). Returns 0 or exit status 2. */
static int train_init_from(struct trainer *t)
{
	char why[512];
	float *w = t->dev ? train_dev_host(t) : net_params_f32(t->m);
	if (!opt.init_from)
		return 0;
	if (net_load(&t->L, w, opt.init_from, why, sizeof(why)))
		return cli_error("--init-from needs a checkpoint of the same preset and --vocab",
				 "--init-from: %s", why);
	if (t->dev && train_dev_params(t, true))
		return cli_error(NULL, "--init-from: the weights could not be copied to the device");
	return 0;
}

/* train_prepare loads the text, the peak and the model (on be's device under cuda).
 * Returns 0 or exit status 2. */
static int train_prepare(struct trainer *t, const struct backend *be, uint64_t seed, bool quiet)
{
	char why[512];
	struct model_flops fl;
	struct train_grid grid = { (int)opt.tp, (int)opt.pp, (int)opt.ep, (int)opt.etp,
				   (int)opt.dp };
	/* the layout is checked on the preset before any work (the text, a BPE) */
	const struct model_config *pc = model_preset_find(opt.preset);
	int st = pc ? train_dp_layout(&grid, (long)opt.batch, (long)opt.micro, pc) : 0;
	long per = opt.batch / (grid.dp ? grid.dp : 1);
	if (!st && pc)
		st = train_pp_check(grid.pp, opt.schedule, (int)opt.chunks,
				    opt.micro ? per / opt.micro : 1, pc);
	enum ep_wire wire = EP_WIRE_SAME;
	if (!st)
		st = train_ep_check(grid.ep, (int)opt.ranks_per_node);
	if (!st)
		st = train_ep_wire(opt.dispatch, opt.precision, &wire);
	if (!st)
		st = train_sp_check(opt.sp, &grid, opt.micro ? opt.micro : per, (long)opt.seq);
	if (!st && opt.overlap)
		st = train_overlap_check(grid.ep, grid.pp, (int)(opt.micro ? per / opt.micro : 1));
	long mic = (long)opt.micro;
	if (!st)
		st = train_replicas_check(per, &mic, (long)opt.replicas, grid.tp, grid.ep, grid.pp,
					  opt.overlap);
	opt.micro = mic;
	if (!st)
		st = train_tokens(t, seed, quiet);
	if (!st)
		st = train_config(t, quiet);
	if (st)
		return st;
	t->per_rank = (int)(opt.batch / grid.dp);
	t->micro = opt.micro ? (int)opt.micro : t->per_rank;
	t->n_micro = t->per_rank / t->micro;
	t->peak_flops = NAN;
	if (opt.peak_file && train_measured_rate(opt.peak_file, "sgemm", &t->peak_flops, why, sizeof(why)))
		return cli_error("pass a result file written by `moebench peak`", "--measured-peak: %s",
				 why);
	t->peak_flops *= 1e12;
	model_flops_per_token(&t->cfg, opt.seq, t->cfg.mtp_depth, 0, &fl);
	t->flops_per_token = (double)fl.total;
	mb_rng_seed(&t->rng, seed, 0xda7a);
	struct net_part part;
	if (train_dp_open(&t->dp, &grid, opt.zero1, &t->cfg, opt.timeout, why, sizeof(why)))
		return cli_error(NULL, "parallel groups: %s", why);
	train_pp_part(&t->dp, &t->cfg, opt.schedule, (int)opt.chunks, &part);
	if (net_layout_build_part(&t->cfg, &part, &t->L, why, sizeof(why)))
		return cli_error(NULL, "this rank's part of the model: %s", why);
	if (train_dp_buffers(&t->dp, &t->L))
		return cli_error("use a smaller model", "out of memory for the gradient buffers");
	train_dp_moments(&t->dp, &t->no);
	t->tok = malloc((size_t)opt.batch * t->len * sizeof(int32_t));
	if (!t->tok)
		return cli_error("use a smaller --batch or --seq", "out of memory for the batch");
	if (be && be->kind == BACKEND_CUDA)
		return train_dev_open(t, be, seed) ? 2 : train_init_from(t);
	if (net_create_f32(&t->L, &t->no, t->micro, (int)opt.seq, seed, &t->m))
		return cli_error("use a smaller --batch or --seq", "out of memory for the model");
	net_tp_set_f32(t->m, train_dp_tp(&t->dp));
	if (train_ep_open(&t->ep, t->dp.ep, &t->L, (int)opt.ranks_per_node,
			  wire))
		return cli_error(NULL, "out of memory for expert parallelism");
	if (train_ep_active(&t->ep))
		net_comm_set_f32(t->m, &t->ep.nc);
	if (opt.overlap && train_overlap_open(t, wire))
		return cli_error("use a smaller --batch or --seq", "out of memory for --ep-overlap");
	if (train_init_from(t))
		return 2;
	if (grid.pp > 1 && train_pp_open(&t->pp, &t->dp, t->m, opt.schedule, (int)opt.chunks,
					 t->micro, (int)opt.seq, t->n_micro, seed))
		return cli_error("use a smaller --batch or --seq", "the pipeline of %d micro-batches "
				 "could not be set up", t->n_micro);
	if (grid.pp > 1 && train_pp_comm(&t->pp, train_dp_tp(&t->dp), &t->ep))
		return cli_error("use a smaller --batch", "out of memory for the micro-batches' "
				 "expert parallelism");
	return 0;
}

/* train_save writes the weights and, for a BPE run, the tokenizer beside them
 * (FILE.safetensors -> FILE.bpe.json). Returns 0 or the exit status. */
static int train_save(struct trainer *t, bool force)
{
	char why[512] = "", path[1100];
	if (!opt.save)
		return 0;
	/* the TP ranks' copies of the replicated tensors must agree (collective) */
	if (t->dp.lay.tp > 1 && train_tp_spread(&t->dp, &t->L, net_params_f32(t->m),
						&t->tp_spread))
		return cli_error(NULL, "--save: the TP ranks' replicated tensors not compared");
	/* every rank sends its part, rank 0 writes the whole model (or, refusing to
	 * replace a file that appeared meanwhile, takes the parts and drops them) */
	bool kept = mpi_world_is_root() && !force && access(opt.save, F_OK) == 0;
	if (t->dev && train_dev_params(t, false))
		return cli_error(NULL, "--save: the weights could not be copied from the device");
	int err = train_dp_save(&t->dp, &t->L, t->dev ? train_dev_host(t) : net_params_f32(t->m),
				kept ? NULL : opt.save, why, sizeof(why));
	if (!mpi_world_is_root())
		return err ? 2 : 0;
	if (kept)
		return cli_error("pass --force, or choose another --save", "--save: %s exists",
				 opt.save);
	if (err)
		return cli_error(NULL, "--save: %s", why);
	if (!t->bpe)
		return 0;
	size_t n = strlen(opt.save), k = strlen(".safetensors");
	int base = (int)(n > k && strcmp(opt.save + n - k, ".safetensors") == 0 ? n - k : n);
	snprintf(path, sizeof(path), "%.*s.bpe.json", base, opt.save);
	if (bpe_save(t->bpe, path, t->corpus.source, why, sizeof(why)))
		return cli_error(NULL, "--save: %s", why);
	return 0;
}

/* micro_rows returns this rank's micro-batch k of the global batch in t->tok. */
static const int32_t *micro_rows(const struct trainer *t, int k)
{
	size_t row = (size_t)t->dp.rank * (size_t)t->per_rank + (size_t)k * (size_t)t->micro;
	return t->tok + row * (size_t)t->len;
}

/* validate returns the mean main loss over the held-out batches (each rank its rows,
 * averaged over the DP group). */
static double validate(struct trainer *t)
{
	int n = net_val_batches(&t->corpus, (int)opt.batch, t->len, (int)opt.val_batches);
	double sum = 0;
	struct net_stats st;
	for (int i = 0; i < n; i++) {
		net_batch_val(&t->corpus, i, (int)opt.batch, t->len, t->tok);
		if (t->pp.pp > 1) {
			double l;
			if (train_pp_eval(&t->pp, micro_rows(t, 0), &l))
				return NAN;
			sum += l;
			continue;
		}
		for (int k = 0; k < t->n_micro; k++) {
			if (net_forward_f32(t->m, micro_rows(t, k), &st))
				return NAN;
			sum += st.main_loss;
		}
	}
	sum /= (double)n * (t->pp.pp > 1 ? 1 : t->n_micro);
	return train_dp_mean(&t->dp, &sum, 1) ? NAN : sum;
}

/* load_max_mean is max over MoE blocks of (max expert load / mean load). */
static double load_max_mean(const struct trainer *t, const long *const *load)
{
	double worst = 0;
	for (int b = 0; b < t->L.blocks; b++) {
		long mx = 0, sum = 0;
		for (int e = 0; load[b] && e < t->dp.experts; e++) {
			mx = load[b][e] > mx ? load[b][e] : mx;
			sum += load[b][e];
		}
		if (sum > 0 && (double)mx * t->dp.experts / (double)sum > worst)
			worst = (double)mx * t->dp.experts / (double)sum;
	}
	return t->moe ? worst : NAN;
}

/* load_hash is FNV-1a (32 bits) over the global loads of every MoE block, NaN without. */
static double load_hash(const struct trainer *t, const long *const *load)
{
	uint32_t h = 2166136261u;
	for (int b = 0; b < t->L.blocks; b++)
		for (int e = 0; load[b] && e < t->dp.experts; e++)
			for (int k = 0; k < 8; k++)
				h = (h ^ (uint32_t)((unsigned long)load[b][e] >> (8 * k) & 0xff)) *
				    16777619u;
	return t->moe ? (double)h : NAN;
}

/* overlap_rows and overlap_done are train_overlap_job's callbacks: a micro-batch's
 * tokens, and after its backward what train_micro's loop does after each. */
static const int32_t *overlap_rows(void *ctx, int k)
{
	return micro_rows(ctx, k);
}

static void overlap_done(void *ctx, struct net_f32 *m, int k, const struct net_stats *st)
{
	struct trainer *t = ctx;
	const long *load[1 + 1024 + 16];
	(void)k;
	for (int i = 0; i < t->L.blocks; i++)
		load[i] = net_expert_load_f32(m, i);
	train_dp_accumulate(&t->dp, net_grads_f32(m), load);
	t->x_acc[0] += st->main_loss / t->n_micro;
	t->x_acc[1] += st->mtp_loss / t->n_micro;
	t->x_acc[2] += st->loss / t->n_micro;
}

/* train_micro runs the forward and backward of every micro-batch of this rank (in
 * turn, or --replicas at a time), accumulating gradients and loads; fills the rank's
 * mean losses x[0..2]. */
static int train_micro(struct trainer *t, double *x)
{
	if (t->pp.pp > 1)
		return train_pp_step(&t->pp, micro_rows(t, 0), x);
	x[0] = x[1] = x[2] = 0;
	if (t->ov_on) {
		struct net_f32 *const m[2] = { t->m, t->m2 };
		struct train_overlap_job j = { m, 2, t->n_micro, overlap_rows, overlap_done, t };
		t->x_acc = x;
		return train_overlap_run(&t->ov, &j);
	}
	return train_replicas_micro(&t->rep, &t->dp, t->n_micro, overlap_rows, t, x);
}

/* ov_profile_fold adds the --ep-overlap models' phases (their own clocks) into the
 * run's, so the split counts both chunks' compute. */
static void ov_profile_fold(struct trainer *t)
{
	if (t->ov_on)
		train_overlap_fold(&t->ov, &t->prof);
}

/* split_mark_take notes the split's running terms at a step's start. */
static void split_mark_take(const struct trainer *t, struct split_mark *m)
{
	memcpy(m->ph, t->prof.seconds, sizeof(m->ph));
	m->dp = t->dp.comm_s;
	m->tp = t->dp.tp_comm_s;
	m->idle = t->pp.pp > 1 ? t->pp.idle[t->pp.stage] : 0;
	m->sim = t->pp.pp > 1 ? t->pp.sim[t->pp.stage] : 0;
}

/* split_step adds one step's time by cause (the model's phases, the optimizer without
 * its DP collectives, the DP and TP collectives, this rank's pipeline idle time and the
 * simulator's) and its own step time dt to the run's. */
static void split_step(struct trainer *t, const struct split_mark *m, double opt_s, double dt)
{
	struct net_profile d;
	memset(&d, 0, sizeof(d));
	for (int i = 0; i < NET_PH_COUNT; i++)
		d.seconds[i] = t->prof.seconds[i] - m->ph[i];
	train_split_phases(&t->split, &d);
	t->split.s[TC_OPTIMIZER] += opt_s;
	t->split.s[TC_DP_COMM] += t->dp.comm_s - m->dp;
	t->split.s[TC_TP_COMM] += t->dp.tp_comm_s - m->tp;
	if (t->pp.pp > 1) {
		t->split.s[TC_BUBBLE] += t->pp.idle[t->pp.stage] - m->idle;
		t->split.s[TC_BUBBLE_SIM] += t->pp.sim[t->pp.stage] - m->sim;
	}
	t->split_step_s += dt;
}

/* host_step runs optimizer step `step` on the CPU (t->adam.lr set): every micro-batch,
 * the DP collectives and AdamW, the bias update; fills x[0..5] (train_dev_step's). */
static int host_step(struct trainer *t, long step, double *x, double *norm, const long **load)
{
	struct split_mark mk;
	ov_profile_fold(t);   /* what ran between steps (validation) is before the mark */
	split_mark_take(t, &mk);
	double t0 = timer_now(), e0 = train_ep_seconds(t);
	double h0 = t->ov.hidden_s;
	int err = train_micro(t, x);
	if (err)
		return err;
	double o0 = timer_now(), c0 = t->dp.comm_s;
	err = train_dp_step(&t->dp, &t->L, &t->adam, step + 1, net_params_f32(t->m),
			    net_grads_f32(t->m), net_moment1_f32(t->m), net_moment2_f32(t->m), load,
			    norm);
	if (!err && t->moe && t->cfg.expert_bias)
		net_bias_update(&t->L, net_params_f32(t->m), load, opt.gamma);
	x[3] = timer_now() - t0;
	x[4] = train_ep_seconds(t) - e0;
	x[5] = t->ov.hidden_s - h0;
	ov_profile_fold(t);
	split_step(t, &mk, t0 + x[3] - o0 - (t->dp.comm_s - c0), x[3]);
	t->split.s[TC_EP_HIDDEN] += x[5];
	return err;
}

/* train_step runs one optimizer step (on the device under cuda) and fills the point's
 * figures: global mean losses, the slowest rank's time. */
static int train_step(struct trainer *t, long step, struct train_point *p)
{
	const long *load[1 + 1024 + 16];
	double x[6];
	net_batch_train(&t->corpus, &t->rng, (int)opt.batch, t->len, t->tok);
	t->adam.lr = net_lr_at(step, opt.warmup, opt.steps, opt.lr, opt.min_lr);
	int err = t->dev ? train_dev_step(t, step, t->tok, x, &p->grad_norm, load)
			 : host_step(t, step, x, &p->grad_norm, load);
	if (err || (err = train_dp_mean(&t->dp, x, 3)) || (err = train_dp_max(&t->dp, x + 3, 3)))
		return err;
	double dt = x[3], tokens = (double)opt.batch * opt.seq;
	p->step = step + 1;
	p->tokens = tokens * (double)(step + 1);
	p->loss = x[0];
	p->mtp_loss = x[1];
	p->lr = t->adam.lr;
	p->step_ms = 1e3 * dt;
	p->tok_s = tokens / dt;
	p->mfu = t->flops_per_token * p->tok_s / t->peak_flops;
	p->load = load_max_mean(t, load);
	p->load_hash = load_hash(t, load);
	p->val_loss = NAN;
	p->pp_bubble_ms = t->pp.pp > 1 ? 1e3 * t->pp.last_idle : NAN;
	p->pp_bubble_sim_ms = t->pp.pp > 1 ? 1e3 * t->pp.last_sim : NAN;
	p->ep_ms = 1e3 * x[4];
	p->ep_hidden_ms = 1e3 * x[5];
	return isfinite(x[2]) ? MB_OK : MB_ERR_CHECK;
}

/* progress prints the stderr line with the elapsed time and the ETA. */
static void progress(long step, long steps, double elapsed, bool quiet)
{
	double eta = elapsed / (double)step * (double)(steps - step);
	if (!quiet && (step % 10 == 0 || step == steps))
		fprintf(stderr, "moebench: train %ld/%ld steps, %.0f s elapsed, ETA %.0f s\n", step,
			steps, elapsed, eta);
}

/* train_loop runs the steps (until --steps or --time-limit) into the curve. */
static int train_loop(struct trainer *t, bool quiet)
{
	/* the validation loss before the first step: the curve's starting point */
	struct train_point p0 = { 0, 0, NAN, NAN, validate(t), 0, NAN, NAN, NAN, NAN, NAN, NAN, 0,
				  NAN, NAN, 0 };
	int err = train_curve_add(&t->curve, &p0);
	bool root = mpi_world_is_root();
	if (root)
		printf("step %5d/%ld | val %.4f (before training)\n", 0, (long)opt.steps, p0.val_loss);
	double start = timer_now();
	for (long s = 0; s < opt.steps && !err; s++) {
		struct train_point p;
		err = train_step(t, s, &p);
		double elapsed = timer_now() - start;
		/* NOTE: every rank must stop after the same step (the next one's collectives
		 * would wait forever for a rank that stopped): the slowest rank's clock
		 * decides, the same figure on every rank */
		if (!err && opt.time_limit > 0)
			err = train_dp_max(&t->dp, &elapsed, 1);
		bool timed_out = opt.time_limit > 0 && elapsed >= opt.time_limit;
		bool last = s + 1 == opt.steps || timed_out;
		if (!err && ((s + 1) % opt.val_every == 0 || last))
			p.val_loss = validate(t);
		if (!err)
			err = train_curve_add(&t->curve, &p);
		if (root)
			train_print_step(&p, opt.steps, t->moe);
		progress(s + 1, opt.steps, elapsed, quiet || !root);
		if (!err && timed_out && s + 1 < opt.steps && t->dp.lay.world > 1)
			fprintf(stderr, "moebench: train: rank %d stopped by --time-limit after %ld "
				"steps (%.1f s on the slowest rank's clock)\n", mpi_world_rank(), s + 1,
				elapsed);
		if (last)
			break;
	}
	return err;
}

/* train_release frees a trainer. */
static void train_release(struct trainer *t)
{
	if (t->pp.pp > 1)
		train_pp_close(&t->pp);
	train_replicas_close(&t->rep);
	train_dev_close(t);   /* the device model, before its table closes */
	net_destroy_f32(t->m);
	net_layout_free(&t->L);
	net_corpus_free(&t->corpus);
	bpe_free(t->bpe);
	free(t->tok);
	free(t->curve.p);
	train_ep_close(&t->ep);
	if (t->ov_on)
		train_overlap_free(&t->ov, t->dp.ep, t->ep_dup);
	net_destroy_f32(t->m2);
	train_ep_close(&t->ep2);
	comm_free(t->ep_dup);
	train_dp_close(&t->dp);
}

/* train_run is the descriptor's run: prepare, loop, record, CSV. */
static int train_run(struct run_ctx *ctx)
{
	struct trainer t;
	char why[512];
	memset(&t, 0, sizeof(t));
	t.o = &opt;
	t.tp_spread = NAN;
	t.split_over = "sum of the run's steps";
	bool quiet = ctx->opts->quiet;
	int err = MB_ERR_ARG;
	/* a kept --save is refused before any work, on every rank alike */
	if (opt.save && !ctx->opts->force && access(opt.save, F_OK) == 0) {
		cli_error_once("pass --force, or choose another --save", "--save: %s exists",
			       opt.save);
		goto out;
	}
	/* --backend cuda: the device loop (train_dev.c) on one rank */
	bool dev = ctx->backend->kind == BACKEND_CUDA;
	if (dev && train_dev_refuse(&opt, mpi_world_size()))
		goto out;
	if (train_prepare(&t, ctx->backend, ctx->opts->seed, quiet))
		goto out;
	/* one clock for the rank's models (the pipeline's micro-batch models too); under
	 * --ep-overlap the two models keep the baton's clocks (ov_profile_fold) */
	if (dev)
		t.split_over = "step 2 alone (1 when the run has one), profiled with CUDA events";
	t.prof.now = dev ? t.prof.now : timer_now;
	if (!t.ov_on && !dev)
		net_profile_set_f32(t.m, &t.prof);
	for (int k = 1; t.pp.pp > 1 && k < t.pp.n_micro; k++)
		net_profile_set_f32(t.pp.mb[k], &t.prof);
	if (train_replicas_open(&t.rep, &t.L, t.m, (int)opt.replicas, t.micro, (int)opt.seq,
				&t.prof)) {
		cli_error("use a smaller --batch or --seq", "out of memory for --replicas");
		goto out;
	}
	cli_note(quiet, "train: %s (%zu parameters%s), %s, batch %lld x %lld, %lld steps, tp %d, "
		 "pp %d, dp %d%s, ep %lld, micro-batch %d x %d", opt.preset, t.L.total,
		 t.dp.lay.world > 1 ? " on rank 0" : "", opt.precision, (long long)opt.batch,
		 (long long)opt.seq, (long long)opt.steps, t.dp.lay.tp, t.dp.lay.pp, t.dp.size,
		 opt.zero1 ? " (ZeRO-1)" : "", (long long)opt.ep, t.micro, t.n_micro);
	int run_err = train_loop(&t, quiet);
	if (!run_err && train_save(&t, ctx->opts->force)) {
		err = MB_ERR_ARG;
		goto out;
	}
	err = train_record(ctx, &t, run_err);
	if (!err && opt.csv && mpi_world_is_root() && train_write_csv(opt.csv, ctx->doc, &t.curve, ctx->opts->force, why,
					       sizeof(why)))
		err = (cli_error("pass --force, or choose another --csv", "--csv: %s", why), MB_ERR_ARG);
out:
	train_release(&t);
	return err;
}

const struct bench_desc bench_train = {
	.name = "train",
	.summary = "train a model preset on text: per-step loss, tokens/s, MFU, validation loss",
	.usage = "moebench train [--preset v3-tiny] [--steps N] [--precision fp32|bf16|fp8] "
		 "[--data fortunes|synthetic|FILE|DIR] [options]",
	.warmup = "0",
	.iters = "1",
	.min_time = "0",
	.options = train_opts_table,
	.run = train_run,
};

int cmd_train(int argc, char **argv)
{
	return session_bench(&bench_train, argc, argv);
}
