/*
 * project_run.c - the projected step (project_step.h): layout checks, the pipeline
 * simulator on the share's operation times, DP/ZeRO-1 traffic, the optimizer, memory
 * per GPU, and the rates.
 *
 * Stated modelling choices (none fitted to a published throughput):
 *   - ZeRO-1 (Megatron's distributed optimizer): FP32 gradients reduce-scattered and
 *     BF16 parameters all-gathered over DP x CP (non-expert) and over EDP (experts),
 *     ring over the network when the group leaves the node. The reduce-scatter hides
 *     behind one micro-batch's backward, the all-gather behind one forward
 *     (--overlap-grad-reduce, --overlap-param-gather); the rest is exposed.
 *   - Adam on the shard: reads the FP32 gradient, reads and writes FP32 master weights
 *     and both moments, writes the BF16 weights: 30 bytes per parameter, memory-bound.
 *   - Memory: model/memory.c for the fullest stage (CP counted as DP there, its
 *     sequence share as the sequence), parameters, gradients and optimizer states times
 *     the schedule's parameter copies (2 for DualPipe), activations per micro-batch
 *     times the simulator's peak of micro-batches in flight. Full recomputation keeps
 *     each layer's input and one layer's activations; selective recomputes the
 *     attention core, which memory.c already stores no seq x seq matrix of.
 */
#include "project_step.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "claims.h"
#include "status.h"

const char *proj_class_name(enum proj_class c)
{
	static const char *const n[] = { "dense_gemm", "expert_gemm", "attn_core", "other" };
	return (unsigned)c < PROJ_N_CLASSES ? n[c] : "?";
}

const char *proj_comm_name(enum proj_comm c)
{
	static const char *const n[] = { "tp", "cp", "ep" };
	return (unsigned)c < PROJ_N_COMMS ? n[c] : "?";
}

const char *proj_recompute_name(enum proj_recompute r)
{
	static const char *const n[] = { "none", "selective", "full" };
	return (unsigned)r < 3 ? n[r] : "?";
}

const char *proj_dispatch_name(enum proj_dispatch d)
{
	return d == PROJ_DISPATCH_DEEPEP ? "deepep" : d == PROJ_DISPATCH_ALLTOALL ? "alltoall" : "?";
}

const char *proj_stages_name(enum proj_stages s)
{
	return s == PROJ_STAGES_BALANCED ? "balanced" : s == PROJ_STAGES_EVEN_LAYERS ? "even-layers"
										       : "?";
}

/* check_layout checks the layout against the GPUs, the model and the batch. */
static int check_layout(const struct proj_input *in, char *why, size_t len)
{
	const struct model_config *c = in->cfg;
	int64_t world = (int64_t)in->tp * in->cp * in->pp * in->dp;

	if (in->tp < 1 || in->cp < 1 || in->pp < 1 || in->dp < 1 || in->ep < 1 || in->etp < 1 ||
	    in->vp < 1)
		return mb_fail(MB_ERR_ARG, why, len, "--layout: every size must be at least 1");
	if (!(in->hw->scaleup_gbps > 0) || !(in->hw->scaleout_gbps > 0) ||
	    !(in->hw->hbm_tbps > 0) || !(in->hw->hbm_gb > 0) || !(in->hw->peak_bf16_tflops > 0))
		return mb_fail(MB_ERR_ARG, why, len, "--hardware %s: the table lacks its scale-up or scale-out "
			    "bandwidth, HBM or BF16 peak (add them with a hardware file)", in->hw->key);
	if (world != in->gpus)
		return mb_fail(MB_ERR_ARG, why, len, "--layout: tp*cp*pp*dp = %lld, not --gpus %lld",
			    (long long)world, (long long)in->gpus);
	if (c->heads % in->tp)
		return mb_fail(MB_ERR_ARG, why, len, "--layout: tp=%d does not divide %lld heads", in->tp,
			    (long long)c->heads);
	if (in->seq % in->cp)
		return mb_fail(MB_ERR_ARG, why, len, "--layout: cp=%d does not divide --seq %lld", in->cp,
			    (long long)in->seq);
	if ((int64_t)in->pp * in->vp > c->layers)
		return mb_fail(MB_ERR_ARG, why, len, "--layout: pp*vp = %d stages for %lld layers", in->pp * in->vp,
			    (long long)c->layers);
	if (c->routed_experts == 0 && (in->ep > 1 || in->etp > 1))
		return mb_fail(MB_ERR_ARG, why, len, "--layout: ep/etp > 1 but %s has no routed experts", c->name);
	if (c->routed_experts && c->routed_experts % in->ep)
		return mb_fail(MB_ERR_ARG, why, len, "--layout: ep=%d does not divide %lld routed experts", in->ep,
			    (long long)c->routed_experts);
	if (((int64_t)in->tp * in->cp * in->dp) % ((int64_t)in->ep * in->etp))
		return mb_fail(MB_ERR_ARG, why, len, "--layout: ep*etp = %d does not divide tp*cp*dp = %lld",
			    in->ep * in->etp, (long long)in->tp * in->cp * in->dp);
	if (in->global_batch % ((int64_t)in->dp * in->micro_batch))
		return mb_fail(MB_ERR_ARG, why, len, "--global-batch %lld is not a multiple of dp x --micro-batch "
			    "= %lld", (long long)in->global_batch,
			    (long long)in->dp * in->micro_batch);
	if ((in->vp > 1) != (in->schedule == PIPE_INTERLEAVED))
		return mb_fail(MB_ERR_ARG, why, len, "--layout: vp=%d %s", in->vp, in->vp > 1 ?
			    "needs --schedule interleaved" : "but interleaved needs vp >= 2");
	return MB_OK;
}

/* pipeline runs the simulator on the share's times and fills the pipeline figures and
 * the peak of activations in flight. */
static int pipeline(const struct proj_input *in, struct proj_result *r, int *copies,
		    char *why, size_t len)
{
	const struct proj_net *net = proj_net_find(in->hw->key);
	const struct proj_share *s = &r->share;
	struct pipe_plan plan;
	struct pipe_sim sim;
	struct pipe_times t = { 0 };
	bool ib = (int64_t)in->tp * in->cp * in->dp >= net->gpus_per_node;
	double fc = 0, bc = 0, wc = 0;

	for (int i = 0; i < PROJ_N_CLASSES; i++) {
		fc += s->f[i];
		bc += s->b[i];
		wc += s->w[i];
	}
	t = (struct pipe_times){ fc + s->f_exposed, bc + s->b_exposed, wc, s->fb_overlapped,
				 ((ib ? net->ib_hop_us : net->nvlink_hop_us) + net->base_us) * 1e-6,
				 (ib ? in->hw->scaleout_gbps * net->ib_eff :
				       in->hw->scaleup_gbps * net->nvlink_eff) * 1e9,
				 in->pp > 1 ? s->p2p_bytes : 0.0 };
	int err = pipe_plan_build(in->schedule, in->pp, r->microbatches, in->vp, &plan, why, len);
	if (err == MB_ERR_ARG) {
		char reason[512];
		snprintf(reason, sizeof(reason), "%s", why);
		return mb_fail(MB_ERR_ARG, why, len, "--schedule %s: %s", pipe_schedule_name(in->schedule), reason);
	}
	if (err)
		return err;
	err = pipe_simulate(&plan, &t, &sim, why, len);
	if (!err) {
		r->pipeline_s = sim.step_time;
		r->bubble_s = sim.bubble_max;
		r->busy_s = sim.step_time - sim.bubble_max;
		r->peak_act_microbatches = sim.peak_act_max;
		r->p2p_s = in->pp > 1 ? 2.0 * r->microbatches * (t.latency + t.msg_bytes / t.bandwidth) : 0;
		*copies = plan.param_copies;
		pipe_sim_free(&sim);
	}
	pipe_plan_free(&plan);
	return err;
}

/* split_step fills the per-step compute and communication totals. */
static void split_step(struct proj_result *r)
{
	const struct proj_share *s = &r->share;
	double m = r->microbatches, compute = 0, comm = 0;

	for (int i = 0; i < PROJ_N_CLASSES; i++) {
		r->compute_s[i] = m * (s->f[i] + s->b[i] + s->w[i]);
		compute += r->compute_s[i];
	}
	for (int i = 0; i < PROJ_N_COMMS; i++) {
		r->comm_s[i] = m * (s->f_comm[i] + s->b_comm[i]);
		comm += r->comm_s[i];
	}
	r->comm_exposed_s = fmax(0.0, r->busy_s - compute);
	r->comm_hidden_s = fmax(0.0, comm - r->comm_exposed_s);
}

/* dp_and_optimizer fills the ZeRO-1 traffic, its exposed part and the optimizer. */
static void dp_and_optimizer(const struct proj_input *in, struct proj_result *r, int copies)
{
	const struct proj_net *net = proj_net_find(in->hw->key);
	const struct proj_share *s = &r->share;
	int64_t dp = (int64_t)in->dp * in->cp;
	int64_t edp = in->gpus / ((int64_t)in->ep * in->etp * in->pp);
	double dense = (double)r->mem.params_dense * copies;
	double expert = (double)r->mem.params_expert * copies;
	bool ib = (int64_t)in->tp * dp > net->gpus_per_node;
	struct proj_tier t = { ib ? in->hw->scaleout_gbps : in->hw->scaleup_gbps,
			       ib ? net->ib_eff : net->nvlink_eff,
			       ib ? net->ib_hop_us : net->nvlink_hop_us, net->base_us };
	double fsum = 0, bsum = 0;

	r->dp_rs_s = proj_collective_time(PROJ_REDUCE_SCATTER, dp, 4.0 * dense, &t) +
		     proj_collective_time(PROJ_REDUCE_SCATTER, edp, 4.0 * expert, &t);
	r->dp_ag_s = proj_collective_time(PROJ_ALL_GATHER, dp, 2.0 * dense, &t) +
		     proj_collective_time(PROJ_ALL_GATHER, edp, 2.0 * expert, &t);
	for (int i = 0; i < PROJ_N_CLASSES; i++) {
		fsum += s->f[i];
		bsum += s->b[i] + s->w[i];
	}
	r->dp_exposed_s = fmax(0.0, r->dp_rs_s - bsum) + fmax(0.0, r->dp_ag_s - fsum);
	double shard = dense / (double)dp + expert / (double)(edp > 0 ? edp : 1);
	r->optimizer_s = proj_memory_time(30.0 * shard, in->hw->hbm_tbps, r->mem_efficiency);
}

/* memory fills the memory per GPU and the verdict. */
static int memory(const struct proj_input *in, struct proj_result *r, int copies, char *why,
		  size_t len)
{
	struct model_layout lay;
	struct model_memory *m = &r->mem;

	model_layout_default(&lay, in->cfg);
	lay.tp = in->tp;
	lay.pp = in->pp;
	lay.ep = in->ep;
	lay.dp = (int64_t)in->dp * in->cp;
	lay.micro_batch = in->micro_batch;
	lay.seq = in->seq / in->cp;
	lay.mtp_depth = in->mtp_depth;
	if (model_memory_per_gpu(in->cfg, &lay, m, why, len))
		return MB_ERR_ARG;
	double per_mb = m->activation_bytes_per_microbatch;
	if (in->recompute == PROJ_RECOMPUTE_FULL && m->stage_layers > 0)
		per_mb = (double)lay.micro_batch * (double)lay.seq * (double)in->cfg->dim * 2.0 *
			 (double)m->stage_layers / in->tp + per_mb / (double)m->stage_layers;
	/* NOTE: the simulator counts in device shares; memory.c's per micro-batch figure is
	 * already one stage, the device's share. */
	m->activation_bytes = per_mb * r->peak_act_microbatches;
	m->weight_bytes *= copies;
	m->grad_bytes *= copies;
	m->optimizer_bytes *= copies;
	r->mem_total_bytes = m->weight_bytes + m->grad_bytes + m->optimizer_bytes +
			     m->activation_bytes;
	r->fits = r->mem_total_bytes <= in->hw->hbm_gb * 1e9;
	return MB_OK;
}

/* rates fills throughput, TFLOP/s and MFU. */
static int rates(const struct proj_input *in, struct proj_result *r)
{
	struct model_flops fl;

	if (model_flops_per_token(in->cfg, in->seq, in->mtp_depth, 0, &fl))
		return MB_ERR_ARG;
	r->flops_per_token = (double)fl.total;
	r->tokens_per_gpu_s = (double)in->global_batch * (double)in->seq / r->step_s /
			      (double)in->gpus;
	r->tflops_per_gpu = r->tokens_per_gpu_s * r->flops_per_token / 1e12;
	r->mfu_bf16 = model_claim_mfu(r->tflops_per_gpu, in->hw->peak_bf16_tflops);
	r->mfu_fp8 = model_claim_mfu(r->tflops_per_gpu, in->hw->peak_fp8_tflops);
	return MB_OK;
}

int proj_step(const struct proj_input *in, struct proj_result *out, char *why, size_t why_len)
{
	int copies = 1, err;

	memset(out, 0, sizeof(*out));
	out->in = *in;
	if ((err = check_layout(in, why, why_len)))
		return err;
	out->microbatches = (int)(in->global_batch / ((int64_t)in->dp * in->micro_batch));
	if ((err = proj_share_compute(in, out, why, why_len)) ||
	    (err = pipeline(in, out, &copies, why, why_len)))
		return err;
	split_step(out);
	if ((err = memory(in, out, copies, why, why_len)))
		return err;
	dp_and_optimizer(in, out, copies);
	out->step_s = out->pipeline_s + out->dp_exposed_s + out->optimizer_s;
	return rates(in, out);
}
