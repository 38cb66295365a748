/*
 * step_dev.c - `moebench step --backend cuda`: the single-rank training step of
 * step_bench.c on the CUDA op table (net_create_f32_cuda: parameters, gradients, moments
 * and activations in device memory; the same model code, net_impl.h, calls the device's
 * entries), timed by the generic driver (each repetition waits for the stream) and
 * checked as the CPU step is: the first step's loss and every tensor's gradient
 * (downloaded, net_download_f32) against the FP64 host forward and backward of the same
 * weights, batch and expert selection, at BF16's tolerances at least (the device's
 * reductions run in another order than the host's even under fp32).
 *
 * The record is the CPU step's (step_bench.c's summary writes its line): the phase split
 * comes from CUDA events at the profile's boundaries (net_cuda_clock_now) of an untimed
 * step (dev_profile says why), the memory terms beside model/memory.c's prediction plus
 * the device's cudaMemGetInfo high-water mark (sampled at every boundary of the profiled
 * steps and at every step's end; it counts the CUDA context and cuBLASLt's workspace
 * too), and MFU against the datasheet's BF16 (fp8: FP8) dense peak of the device and
 * --measured-peak's bf16_gemm (fp8: fp8_tensor_gemm) rate of a `moebench peak` run on it.
 * One rank only: the parallel options are refused (exit 2). Every precision runs: under
 * fp8 the linear layers and the attention blocks' projections take cuBLASLt's block
 * scaling (net_ops_fp8_cuda.c, net_ops_attn_cuda.c; checked on the host by fp8_lin_fake
 * and attn_block_emu, on a GPU by gpu_test_train_table), at FP8's tolerances below.
 */
#include "step_dev.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "cli.h"
#include "hardware.h"
#include "net.h"
#include "net_ops.h"
#include "result.h"
#include "rng.h"
#include "status.h"
#include "step_io.h"
#include "step_micro.h"
#include "train_run.h"

struct dev_state {
	struct net_layout L;
	struct net_options no;
	struct net_adamw adam;
	struct net_f32 *m;
	struct net_profile prof;
	int batch, seq;
	bool plant, clock;
	int32_t *tok;
	float *w0, *g0;            /* the first step's weights and (unclipped) gradients */
	double loss0, tol, gtol;
	long runs;
	char metric[160];
	struct step_figures *fig;
};

int step_dev_refuse(const struct step_dev_opts *o)
{
	static const char *hint = "run it without --backend cuda (the CPU step takes every "
				  "option), or drop the option";
	const char *what = o->tp > 1 ? "--tp" : o->pp > 1 ? "--pp" : o->ep > 1 ? "--ep"
			 : o->etp > 1 ? "--etp" : o->dp > 1 ? "--dp" : o->micro ? "--micro-batch"
			 : o->zero1 ? "--zero1" : o->sp ? "--sp" : o->overlap ? "--ep-overlap"
			 : o->init_from ? "--init-from" : o->save ? "--save"
			 : o->dump ? "--dump-batch" : NULL;
	if (what)
		return cli_error(hint, "step --backend cuda: %s: the device step runs on one rank "
				 "without it", what), MB_ERR_ARG;
	return MB_OK;
}

/* dev_profile attaches the event clock to the check's step and the next one (the
 * warm-up by default) only. NOTE: the clock waits for the stream at every boundary and
 * around every linear layer, which would serialise the timed steps with the host: they
 * run without it, so time_s is the unprofiled step's, and the phase split is the
 * second step's shares of it (the first's hold the plans' and buffers' setup). */
static bool dev_profile(struct dev_state *s)
{
	bool on = s->runs < 2;
	if (s->runs == 1) {
		memset(s->prof.seconds, 0, sizeof(s->prof.seconds));
		memset(s->prof.gemm_seconds, 0, sizeof(s->prof.gemm_seconds));
		memset(s->prof.gemm_flops, 0, sizeof(s->prof.gemm_flops));
	}
	net_profile_set_f32(s->m, on ? &s->prof : NULL);
	return on;
}

/* dev_run: forward, backward (the first keeps its loss and gradients), AdamW with
 * clipping and the routing-bias update, all on the device; waits for the stream. */
static int dev_run(void *p)
{
	struct dev_state *s = p;
	struct net_stats st;
	const long *load[1024 + 16];
	bool prof = dev_profile(s);
	int err = net_forward_f32(s->m, s->tok, &st);
	if (!err)
		err = net_backward_f32(s->m);
	if (!err && s->runs == 0) {
		s->loss0 = st.loss;
		err = net_download_f32(s->m, true, s->g0);
		size_t j = s->L.t[s->L.n / 2].off;
		if (!err && s->plant)
			s->g0[j] += 0.05f * (1.0f + fabsf(s->g0[j]));
	}
	if (err)
		return err;
	double t0 = prof ? s->prof.now() : 0;
	double norm = net_adam_step_f32(s->m, &s->adam, s->runs + 1);
	for (int i = 0; i < s->L.blocks && i < 1024; i++)
		load[i] = net_expert_load_f32(s->m, i);
	err = isfinite(norm) ? net_bias_update_f32(s->m, load, 0.001) : MB_ERR_CUDA;
	if (!err)
		err = net_cuda_ops_sync();
	/* the clock's reading at the step's end samples the device's memory as well */
	double t1 = net_cuda_clock_now();
	if (prof)
		s->prof.seconds[NET_PH_OPTIMIZER] += t1 - t0;
	int st_err = net_cuda_ops_status();
	err = err ? err : st_err;
	s->runs++;
	double rss = step_resident_bytes();
	if (!err && s->fig && !(rss <= s->fig->rss_bytes))
		s->fig->rss_bytes = rss;
	return err;
}

/* dev_check: the first step's loss and gradients against the FP64 host model with the
 * device's expert selection (net_fix_selection_f64 downloads it). */
static int dev_check(void *p, struct bench_check *chk)
{
	struct dev_state *s = p;
	struct net_f64 *md;
	struct net_stats st;
	int err = net_create_f64(&s->L, &s->no, s->batch, s->seq, 1, &md);
	if (err)
		return err;
	for (size_t j = 0; j < s->L.total; j++)
		net_params_f64(md)[j] = s->w0[j];
	err = net_fix_selection_f64(md, s->m);
	if (!err)
		err = net_forward_f64(md, s->tok, &st);
	if (!err)
		err = net_backward_f64(md);
	chk->max_err = err ? INFINITY : fabs(s->loss0 - st.loss) / st.loss / s->tol;
	chk->samples = 1;
	chk->mismatches = chk->max_err > 1;
	for (int i = 0; !err && i < s->L.n; i++) {
		if (!s->L.t[i].trainable)
			continue;
		step_grad_check(&s->L.t[i], s->g0, net_grads_f64(md), s->gtol, chk);
	}
	chk->tolerance = 1;
	chk->metric = s->metric;
	net_destroy_f64(md);
	return err;
}

/* dev_destroy leaves the figures for the summary, frees the model, the clock and the
 * table's context. */
static void dev_destroy(void *p)
{
	struct dev_state *s = p;
	if (s->fig) {
		memcpy(s->fig->phase, s->prof.seconds, sizeof(s->fig->phase));
		memcpy(s->fig->gemm_s, s->prof.gemm_seconds, sizeof(s->fig->gemm_s));
		memcpy(s->fig->gemm_flops, s->prof.gemm_flops, sizeof(s->fig->gemm_flops));
		s->fig->dev_peak_bytes = net_cuda_mem_peak();
		s->fig->dp = s->fig->tp = s->fig->ep = s->fig->pp = 1;
	}
	net_destroy_f32(s->m);
	if (s->clock)
		net_cuda_clock_close();
	net_cuda_ops_close();
	net_layout_free(&s->L);
	free(s->tok);
	free(s->w0);
	free(s->g0);
	free(s);
}

/* dev_no_device says why the table did not open: one error line, exit 2. */
static int dev_open_error(int err)
{
	if (err == MB_ERR_NODEV)
		return cli_error("use --backend cpu, or run on a machine with a CUDA GPU and driver",
				 "step --backend cuda: no CUDA device (or this moebench was built "
				 "without CUDA)"), MB_ERR_ARG;
	return cli_error("choose a smaller --batch, --seq or --preset", "step --backend cuda: "
			 "the model does not fit on the device or the table failed to open (%s)",
			 mb_status_str(err)), MB_ERR_ARG;
}

/* dev_state_new builds the layout, the random batch (step_bench.c's tokens for the same
 * seed) and the device model, whose starting weights it keeps for the check. */
static int dev_state_new(const struct model_config *cfg, const struct step_dev_opts *o,
			 uint64_t seed, struct dev_state *s)
{
	size_t ntok = (size_t)o->batch * (size_t)(o->seq + 1 + cfg->mtp_depth);
	struct mb_rng rng;
	char why[256];
	if (net_layout_build(cfg, &s->L, why, sizeof(why)))
		return cli_error("v3-tiny, v3-small and llama3-tiny train here", "step: %s", why),
		       MB_ERR_ARG;
	s->batch = (int)o->batch;
	s->seq = (int)o->seq;
	s->plant = o->plant;
	net_options_default(&s->no);
	net_precision_parse(o->precision, &s->no.precision);
	s->no.experts_serial = o->serial;
	net_adamw_default(&s->adam);
	/* the CPU step's tolerances, BF16's at least (see the top) */
	s->tol = s->no.precision == NET_FP8 ? 5e-2 : 1e-2;
	s->gtol = s->no.precision == NET_FP8 ? 0.25 : 3e-2;
	snprintf(s->metric, sizeof(s->metric), "max(|loss-loss64|/loss64 / %g, "
		 "||g-g64||/||g64|| per tensor / %g)", s->tol, s->gtol);
	s->tok = malloc(ntok * sizeof(int32_t));
	s->w0 = malloc(s->L.total * sizeof(float));
	s->g0 = malloc(s->L.total * sizeof(float));
	if (!s->tok || !s->w0 || !s->g0)
		return MB_ERR_NOMEM;
	mb_rng_seed(&rng, seed, 0x70c);
	for (size_t j = 0; j < ntok; j++)
		s->tok[j] = (int32_t)(mb_rng_next(&rng) >> 56);
	int err = net_create_f32_cuda(&s->L, &s->no, s->batch, s->seq, seed, &s->m);
	if (err)
		return dev_open_error(err);
	err = net_download_f32(s->m, false, s->w0);
	if (!err)
		err = net_cuda_clock_open();
	s->clock = !err;
	s->prof.now = net_cuda_clock_now;   /* attached per step by dev_profile */
	return err;
}

/* dev_params: the record's parameters, the CPU step's names. */
static cJSON *dev_params(const struct model_config *cfg, const struct step_dev_opts *o,
			 const struct dev_state *s)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "preset", cfg->name);
	cJSON_AddStringToObject(p, "precision", o->precision);
	cJSON_AddNumberToObject(p, "batch", (double)o->batch);
	cJSON_AddNumberToObject(p, "seq", (double)o->seq);
	cJSON_AddNumberToObject(p, "vocab", (double)cfg->vocab);
	cJSON_AddNumberToObject(p, "params", (double)s->L.total);
	cJSON_AddNumberToObject(p, "dp", 1);
	cJSON_AddNumberToObject(p, "tp", 1);
	cJSON_AddNumberToObject(p, "ep", 1);
	cJSON_AddBoolToObject(p, "zero1", false);
	cJSON_AddBoolToObject(p, "experts_serial", o->serial);
	cJSON_AddStringToObject(p, "op_table", "cuda");
	return p;
}

/* dev_figures starts the case's figures: the memory terms beside memory.c's. */
static void dev_figures(const struct model_config *cfg, const struct dev_state *s,
			const char *name, double tokens, double fpt, double peak,
			struct step_figures *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->tokens = tokens;
	f->flops_per_token = fpt;
	f->cfg = *cfg;
	f->peak_tflops = peak;
	net_memory_f32(s->m, &f->mem);
	if (net_memory_predict(cfg, s->batch, s->seq, 1, false, &f->pred))
		f->pred.total_bytes = NAN;
	f->rss_bytes = NAN;
	f->dev_peak_bytes = NAN;
}

/* dev_fits refuses (exit 2) a step memory.c predicts above the device's memory (the
 * model's FP32 weights, gradients, moments and activations; the table's buffers, the
 * CUDA context and cuBLASLt's workspace come on top). */
static int dev_fits(const struct run_ctx *ctx, const struct model_config *cfg,
		    const struct step_dev_opts *o)
{
	struct model_memory w;
	double have = (double)ctx->backend->dev.mem_bytes;
	if (net_memory_predict(cfg, (int)o->batch, (int)o->seq, 1, false, &w) || !(have > 0) ||
	    w.total_bytes <= have)
		return MB_OK;   /* net_layout_build says what is wrong with a bad config */
	return cli_error("choose a smaller --batch, --seq or --preset (--model with fewer layers)",
			 "step --backend cuda: %s at batch %lld x %lld needs about %.1f GB, more "
			 "than the device's %.1f GB", cfg->name, (long long)o->batch,
			 (long long)o->seq, w.total_bytes / 1e9, have / 1e9), MB_ERR_ARG;
}

int step_dev_bench(struct run_ctx *ctx, const struct step_dev_opts *o, struct step_figures *fig)
{
	struct model_config cfg;
	struct model_flops fl;
	char why[512];
	double measured = NAN;
	bool fp8 = !strcmp(o->precision, "fp8");
	if (step_dev_refuse(o) || step_resolve_config(o->model, o->preset, &cfg))
		return MB_ERR_ARG;
	if (o->peak_file && train_measured_rate(o->peak_file, fp8 ? "fp8_tensor_gemm" : "bf16_gemm",
					      &measured, why, sizeof(why)))
		return cli_error("pass a result file written by `moebench peak` on this GPU",
				 "--measured-peak: %s", why), MB_ERR_ARG;
	cfg.vocab = 256;
	cfg.seq_len = o->seq;
	if (dev_fits(ctx, &cfg, o))
		return MB_ERR_ARG;
	struct dev_state *s = calloc(1, sizeof(*s));
	if (!s)
		return MB_ERR_NOMEM;
	int err = dev_state_new(&cfg, o, ctx->opts->seed, s);
	if (err) {
		dev_destroy(s);
		return err;
	}
	model_flops_per_token(&cfg, o->seq, cfg.mtp_depth, 0, &fl);
	double tokens = (double)o->batch * (double)o->seq;
	const struct hardware_spec *hw = hardware_match(ctx->backend->dev.name);
	struct bench_case c = { .peak = NAN, .measured_peak = measured };
	snprintf(c.name, sizeof(c.name), "%s/%s/b%lld_s%lld", cfg.name, o->precision,
		 (long long)o->batch, (long long)o->seq);
	c.flops = (double)fl.total * tokens;
	c.peak = hw ? (fp8 ? hw->peak_fp8_tflops : hw->peak_bf16_tflops) : NAN;
	c.peak_source = hw ? hw->source : NULL;
	c.state = s;
	c.run = dev_run;
	c.check = dev_check;
	c.destroy = dev_destroy;
	c.params = dev_params(&cfg, o, s);
	s->fig = fig;
	dev_figures(&cfg, s, c.name, tokens, (double)fl.total, measured, fig);
	return driver_run_case(ctx, &c);
}
