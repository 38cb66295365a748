/*
 * project_out.c - printing a projection (see project_out.h).
 */
#include "project_out.h"

#include <math.h>
#include <string.h>

#include "claims.h"

void proj_budget_from_baselines(const struct baselines *set, const char *model, double tokens,
				double usd, struct proj_budget *b)
{
	const struct model_baseline_run *best = NULL;
	const struct model_baseline *owner = NULL;

	memset(b, 0, sizeof(*b));
	b->claimed_gpu_hours = NAN;
	b->usd_per_gpu_hour = usd;
	for (size_t i = 0; set && i < set->n; i++)
		for (size_t r = 0; r < set->items[i]->n_runs; r++) {
			const struct model_baseline_run *run = &set->items[i]->runs[r];
			if (strcmp(run->model, model) != 0 ||
			    isnan(model_run_figure(run, MODEL_FIG_TOKENS)) ||
			    isnan(model_run_figure(run, MODEL_FIG_GPU_HOURS)))
				continue;
			if (!best || strcmp(run->name, "pre-training") == 0) {
				best = run;
				owner = set->items[i];
			}
		}
	b->tokens = tokens;
	if (!best)
		return;
	if (!(tokens > 0))
		b->tokens = model_run_figure(best, MODEL_FIG_TOKENS);
	b->claimed_gpu_hours = model_run_figure(best, MODEL_FIG_GPU_HOURS);
	b->claim_label = owner->name;
	b->claim_where = best->fig[MODEL_FIG_GPU_HOURS].where;
}

double proj_gpu_hours(const struct proj_result *r, double tokens)
{
	return tokens / r->tokens_per_gpu_s / 3600.0;
}

/* print_header prints what was projected and from what. */
static void print_header(FILE *f, const struct proj_result *r, const struct proj_calib *cal)
{
	const struct proj_input *in = &r->in;

	fprintf(f, "moebench project: %s on %lld x %s (%s), %s, schedule %s\n", in->cfg->name,
		(long long)in->gpus, in->hw->key, in->hw->label, in->fp8 ? "fp8" : "bf16",
		pipe_schedule_name(in->schedule));
	fprintf(f, "layout tp=%d cp=%d pp=%d dp=%d ep=%d etp=%d vp=%d; seq %lld, global batch "
		"%lld sequences, micro-batch %lld -> %d micro-batches; recompute %s; MTP %lld; "
		"stages %s; EP dispatch %s\n", in->tp, in->cp, in->pp, in->dp, in->ep, in->etp,
		in->vp, (long long)in->seq, (long long)in->global_batch, (long long)in->micro_batch,
		r->microbatches, proj_recompute_name(in->recompute), (long long)in->mtp_depth,
		proj_stages_name(in->stages), proj_dispatch_name(in->dispatch));
	if (r->calibrated)
		fprintf(f, "calibration: %s (%s, %d files: %zu BF16 + %zu FP8 GEMM shapes, copy at "
			"%.3f of HBM), efficiencies applied as fractions of %s's datasheet peaks\n",
			cal->dir, cal->device, cal->files, cal->n[PROJ_BF16], cal->n[PROJ_FP8],
			cal->mem_efficiency, in->hw->key);
	else
		fprintf(f, "calibration: none for %s: GEMMs at %.2f of the datasheet peak, memory "
			"at %.2f of HBM (stated, not measured)\n", in->hw->key,
			PROJ_FALLBACK_GEMM_EFF, PROJ_FALLBACK_MEM_EFF);
	fprintf(f, "attention core at %.2f of the BF16 peak (stated); network: %s\n",
		PROJ_ATTENTION_EFF, proj_net_find(in->hw->key)->source);
	if (in->ep > 1)
		fprintf(f, "EP: %d ranks over %d node(s)%s%.0f: %.2f nodes per token (uniform "
			"routing within the limit)\n", in->ep, r->ep_nodes,
			r->max_nodes > 0 ? ", node-limited routing to at most " : ", no node limit",
			r->max_nodes > 0 ? r->max_nodes : 0.0, r->nodes_per_token);
}

/* line prints one row of the step split. */
static void line(FILE *f, const char *what, double s, double step)
{
	fprintf(f, "  %-44s %10.3f %7.1f%%\n", what, s, 100.0 * s / step);
}

/* print_layer_comm prints one layer's collectives for one micro-batch. */
static void print_layer_comm(FILE *f, const struct proj_result *r)
{
	const struct proj_layer_comm *l = &r->layer;

	if (r->in.tp <= 1 && r->in.cp <= 1 && r->in.ep <= 1)
		return;
	fprintf(f, "one layer, one micro-batch:");
	if (r->in.tp > 1)
		fprintf(f, " TP all-gather %.3f ms (%.1f MB over %s; 2 all-gathers + 2 "
			"reduce-scatters per pass);", 1e3 * l->tp_all_gather_s, l->tp_bytes / 1e6,
			l->tp_network ? "the network" : "NVLink");
	if (r->in.cp > 1)
		fprintf(f, " CP all-gather of K,V %.3f ms;", 1e3 * l->cp_all_gather_s);
	if (r->in.ep > 1)
		fprintf(f, " EP dispatch %.3f ms (%.1f MB network + %.1f MB NVLink per GPU), "
			"combine %.3f ms;", 1e3 * l->ep_dispatch_s, l->ep_dispatch_net_bytes / 1e6,
			l->ep_dispatch_nvl_bytes / 1e6, 1e3 * l->ep_combine_s);
	fprintf(f, "\n");
}

/* print_rates_by_class prints the executed TFLOP/s of each compute class: what the
 * calibration gave the GEMMs of these shapes. */
static void print_rates_by_class(FILE *f, const struct proj_result *r)
{
	const struct proj_share *s = &r->share;
	const char *names[] = { "dense GEMMs", "expert GEMMs", "attention core" };

	fprintf(f, "executed rates:");
	for (int i = 0; i < PROJ_OTHER; i++) {
		double t = s->f[i] + s->b[i] + s->w[i];
		if (t > 0)
			fprintf(f, " %s %.0f TFLOP/s;", names[i], s->flops[i] / t / 1e12);
	}
	fprintf(f, " (datasheet %s %.0f TFLOP/s)\n", r->in.fp8 ? "FP8" : "BF16",
		r->in.fp8 ? r->in.hw->peak_fp8_tflops : r->in.hw->peak_bf16_tflops);
}

/* print_split prints the step time split by term. */
static void print_split(FILE *f, const struct proj_result *r)
{
	static const char *const cls[] = { "compute: dense GEMMs", "compute: expert GEMMs",
					   "compute: attention core",
					   "compute: other (memory-bound)" };
	double step = r->step_s;

	fprintf(f, "\nstep split (per GPU, one step)                   time_s   of step\n");
	for (int i = 0; i < PROJ_N_CLASSES; i++)
		line(f, cls[i], r->compute_s[i], step);
	line(f, r->in.schedule == PIPE_DUALPIPE || r->in.schedule == PIPE_DUALPIPEV ?
	     "communication exposed (+ SMs lent to it)" : "communication exposed (TP, CP, EP)",
	     r->comm_exposed_s, step);
	line(f, "pipeline bubble (simulated)", r->bubble_s, step);
	line(f, "DP/ZeRO-1 exposed", r->dp_exposed_s, step);
	line(f, "optimizer (Adam, ZeRO-1 shard)", r->optimizer_s, step);
	line(f, "step", step, step);
	fprintf(f, "communication in the step: tp %.3f s, cp %.3f s, ep %.3f s; hidden %.3f s\n",
		r->comm_s[PROJ_COMM_TP], r->comm_s[PROJ_COMM_CP], r->comm_s[PROJ_COMM_EP],
		r->comm_hidden_s);
	print_layer_comm(f, r);
	print_rates_by_class(f, r);
	fprintf(f, "DP/ZeRO-1: reduce-scatter %.3f s, all-gather %.3f s; pipeline messages "
		"%.3f s (inside the simulated %.3f s)\n", r->dp_rs_s, r->dp_ag_s, r->p2p_s,
		r->pipeline_s);
	fprintf(f, "stages %s: an even split of the layers puts %.2fx the mean share on its "
		"fullest stage%s\n", proj_stages_name(r->in.stages), r->imbalance,
		r->in.stages == PROJ_STAGES_EVEN_LAYERS ? ", which every device's operations take "
		"here (--stages balanced: the mean)" : "");
}

/* print_rates prints throughput, MFU, memory and the budget. */
static void print_rates(FILE *f, const struct proj_result *r, const struct proj_budget *b)
{
	const struct hardware_spec *hw = r->in.hw;
	const struct model_memory *m = &r->mem;

	fprintf(f, "\nthroughput: %.1f tokens/s per GPU, %.1f TFLOP/s per GPU (model FLOPs %.1f "
		"GFLOP/token, causal, MTP %lld)\n", r->tokens_per_gpu_s, r->tflops_per_gpu,
		r->flops_per_token / 1e9, (long long)r->in.mtp_depth);
	fprintf(f, "MFU: %.2f%% of the BF16 dense peak (%.0f TFLOP/s)", 100 * r->mfu_bf16,
		hw->peak_bf16_tflops);
	if (r->in.fp8)
		fprintf(f, "; %.2f%% of the FP8 dense peak (%.0f TFLOP/s)", 100 * r->mfu_fp8,
			hw->peak_fp8_tflops);
	fprintf(f, " (datasheet: %s)\n", hw->key);
	fprintf(f, "memory per GPU (stage %lld): weights %.1f GB, gradients %.1f GB, optimizer "
		"%.1f GB, activations %.1f GB (%.2f micro-batch shares in flight) = %.1f GB of "
		"%.0f GB: %s\n", (long long)m->stage, m->weight_bytes / 1e9, m->grad_bytes / 1e9,
		m->optimizer_bytes / 1e9, m->activation_bytes / 1e9, r->peak_act_microbatches,
		r->mem_total_bytes / 1e9, hw->hbm_gb, r->fits ? "fits" : "DOES NOT FIT");
	if (!r->fits)
		fprintf(f, "  (memory.c keeps BF16 activations of every layer: no FP8 activation "
			"caching or partial recomputation; --recompute full keeps layer inputs only)\n");
	if (!(b->tokens > 0))
		return;
	double gh = proj_gpu_hours(r, b->tokens);
	fprintf(f, "for %.4gT tokens: %.4gM GPU-hours, %.2f days on %lld GPUs, $%.4gM at $%g per "
		"GPU-hour\n", b->tokens / 1e12, gh / 1e6, gh / (double)r->in.gpus / 24.0,
		(long long)r->in.gpus, gh * b->usd_per_gpu_hour / 1e6, b->usd_per_gpu_hour);
	if (!isnan(b->claimed_gpu_hours))
		fprintf(f, "claimed: %.4gM GPU-hours (%s, %s): projected / claimed = %.3f\n",
			b->claimed_gpu_hours / 1e6, b->claim_label, b->claim_where,
			gh / b->claimed_gpu_hours);
}

void proj_print_text(FILE *f, const struct proj_result *r, const struct proj_calib *cal,
		     const struct proj_budget *b)
{
	print_header(f, r, cal);
	print_split(f, r);
	print_rates(f, r, b);
}

/* split_json returns the step split as an object of seconds. */
static cJSON *split_json(const struct proj_result *r)
{
	cJSON *o = cJSON_CreateObject();

	for (int i = 0; i < PROJ_N_CLASSES; i++)
		cJSON_AddNumberToObject(o, proj_class_name(i), r->compute_s[i]);
	for (int i = 0; i < PROJ_N_COMMS; i++) {
		char k[32];
		snprintf(k, sizeof(k), "%s_comm_total", proj_comm_name(i));
		cJSON_AddNumberToObject(o, k, r->comm_s[i]);
	}
	cJSON_AddNumberToObject(o, "comm_exposed", r->comm_exposed_s);
	cJSON_AddNumberToObject(o, "comm_hidden", r->comm_hidden_s);
	cJSON_AddNumberToObject(o, "bubble", r->bubble_s);
	cJSON_AddNumberToObject(o, "pipeline", r->pipeline_s);
	cJSON_AddNumberToObject(o, "dp_reduce_scatter", r->dp_rs_s);
	cJSON_AddNumberToObject(o, "dp_all_gather", r->dp_ag_s);
	cJSON_AddNumberToObject(o, "dp_exposed", r->dp_exposed_s);
	cJSON_AddNumberToObject(o, "optimizer", r->optimizer_s);
	return o;
}

cJSON *proj_to_json(const struct proj_result *r, const struct proj_budget *b)
{
	const struct proj_input *in = &r->in;
	cJSON *o = cJSON_CreateObject();
	cJSON *lay = cJSON_AddObjectToObject(o, "layout");
	const char *keys[] = { "tp", "cp", "pp", "dp", "ep", "etp", "vp" };
	const int vals[] = { in->tp, in->cp, in->pp, in->dp, in->ep, in->etp, in->vp };

	cJSON_AddStringToObject(o, "model", in->cfg->name);
	cJSON_AddStringToObject(o, "hardware", in->hw->key);
	cJSON_AddNumberToObject(o, "gpus", (double)in->gpus);
	for (int i = 0; i < 7; i++)
		cJSON_AddNumberToObject(lay, keys[i], vals[i]);
	cJSON_AddStringToObject(o, "schedule", pipe_schedule_name(in->schedule));
	cJSON_AddStringToObject(o, "precision", in->fp8 ? "fp8" : "bf16");
	cJSON_AddStringToObject(o, "stages", proj_stages_name(in->stages));
	cJSON_AddStringToObject(o, "ep_dispatch", proj_dispatch_name(in->dispatch));
	cJSON_AddNumberToObject(o, "stage_imbalance", r->imbalance);
	cJSON_AddNumberToObject(o, "microbatches", r->microbatches);
	cJSON_AddBoolToObject(o, "calibrated", r->calibrated);
	cJSON_AddNumberToObject(o, "step_s", r->step_s);
	cJSON_AddItemToObject(o, "split_s", split_json(r));
	cJSON_AddNumberToObject(o, "tokens_per_gpu_s", r->tokens_per_gpu_s);
	cJSON_AddNumberToObject(o, "tflops_per_gpu", r->tflops_per_gpu);
	cJSON_AddNumberToObject(o, "mfu_bf16", r->mfu_bf16);
	if (in->fp8)
		cJSON_AddNumberToObject(o, "mfu_fp8", r->mfu_fp8);
	cJSON_AddNumberToObject(o, "memory_bytes", r->mem_total_bytes);
	cJSON_AddBoolToObject(o, "fits", r->fits);
	cJSON_AddNumberToObject(o, "nodes_per_token", r->nodes_per_token);
	if (b->tokens > 0) {
		cJSON_AddNumberToObject(o, "tokens", b->tokens);
		cJSON_AddNumberToObject(o, "gpu_hours", proj_gpu_hours(r, b->tokens));
		cJSON_AddNumberToObject(o, "cost_usd", proj_gpu_hours(r, b->tokens) * b->usd_per_gpu_hour);
	}
	if (!isnan(b->claimed_gpu_hours))
		cJSON_AddNumberToObject(o, "claimed_gpu_hours", b->claimed_gpu_hours);
	return o;
}

void proj_print_row_header(FILE *f)
{
	fprintf(f, "%6s %3s %3s %3s %5s %4s %3s %5s %9s %10s %8s %7s %9s %-12s %10s\n", "gpus",
		"tp", "cp", "pp", "dp", "ep", "vp", "m", "step_s", "tok/s/gpu", "tflops",
		"mfu_pct", "mem_GB", "memory", "gpu_hours");
}

void proj_print_row(FILE *f, const struct proj_result *r, const struct proj_budget *b)
{
	const struct proj_input *in = &r->in;

	fprintf(f, "%6lld %3d %3d %3d %5d %4d %3d %5d %9.3f %10.1f %8.1f %7.2f %9.1f %-12s %10.4g\n",
		(long long)in->gpus, in->tp, in->cp, in->pp, in->dp, in->ep, in->vp, r->microbatches,
		r->step_s, r->tokens_per_gpu_s, r->tflops_per_gpu, 100 * r->mfu_bf16,
		r->mem_total_bytes / 1e9, r->fits ? "fits" : "DOES NOT FIT",
		b->tokens > 0 ? proj_gpu_hours(r, b->tokens) : NAN);
}
