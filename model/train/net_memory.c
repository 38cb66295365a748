/*
 * net_memory.c - model/memory.c's prediction for the training step this model runs on
 * one rank, term by term, beside the model's own allocations (net_memory_f32): the
 * comparison `moebench step` records and tests/test_train_memory.c checks.
 */
#include "net.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "accounting.h"
#include "status.h"

/* net_memory_predict asks memory.c about one data-parallel rank of the step (net.h). */
int net_memory_predict(const struct model_config *cfg, int batch, int seq, int dp, bool zero1,
		       struct model_memory *out)
{
	return net_memory_predict_par(cfg, batch, seq, dp, 1, 1, zero1, out);
}

int net_memory_predict_tp(const struct model_config *cfg, int batch, int seq, int dp, int tp,
			  bool zero1, struct model_memory *out)
{
	return net_memory_predict_par(cfg, batch, seq, dp, tp, 1, zero1, out);
}

int net_memory_predict_ep(const struct model_config *cfg, int batch, int seq, int dp, int ep,
			  bool zero1, struct model_memory *out)
{
	return net_memory_predict_par(cfg, batch, seq, dp, 1, ep, zero1, out);
}

int net_memory_predict_par(const struct model_config *cfg, int batch, int seq, int dp, int tp,
			   int ep, bool zero1, struct model_memory *out)
{
	struct model_layout lay;
	/* one GPU, FP32 weights that are also the master copy, FP32 gradients, moments and
	 * activations: what the CPU step keeps (net.h) */
	model_layout_default(&lay, cfg);
	lay.micro_batch = batch;
	lay.seq = seq;
	lay.weight_bytes = 4;
	lay.grad_bytes = 4;
	lay.master_bytes = 0;
	lay.moment_bytes = 4;
	lay.act_bytes = 4;
	/* NOTE: ZeRO-1 here shards the moments alone (the FP32 weights are the master copy);
	 * the routed experts' over the expert-DP group */
	lay.dp = dp > 0 ? dp : 1;
	lay.zero1 = zero1 && lay.dp > 1;
	/* NOTE: memory.c keeps experts whole (expert TP 1) and shards them over EP; this
	 * step slices each over the TP ranks (ETP = TP), the same bytes per rank as EP
	 * multiplied by TP with EDP = DP / EP. Its activations are split over TP (sequence
	 * parallelism): this step keeps the residual stream, norms and router whole on
	 * every TP rank. */
	lay.tp = tp > 0 ? tp : 1;
	lay.ep = ep > 0 ? ep : 1;
	if (cfg->routed_experts > 0)
		lay.ep *= lay.tp;
	return model_memory_per_gpu(cfg, &lay, out, NULL, 0);
}

/* net_memory_part_of maps the step's part onto memory.c's: its layer ranges (every
 * layer when unset), embedding and head, and the routed rows per token its MoE blocks
 * are allocated for (net_setup's rows_max: under EP every EP rank's tokens may choose
 * this rank's experts, ep * min(K, E / ep) rows per token, the worst case). */
static void net_memory_part_of(const struct model_config *cfg, const struct net_part *np,
			       int in_flight, struct model_part *mp)
{
	int64_t K = cfg->activated_experts, ep = np->ep > 1 ? np->ep : 1;
	int64_t El = cfg->routed_experts / ep;

	memset(mp, 0, sizeof(*mp));
	mp->n_ranges = np->n_ranges ? np->n_ranges : 1;
	mp->lo[0] = 0;
	mp->hi[0] = cfg->layers;
	for (int r = 0; r < np->n_ranges && r < MODEL_PART_RANGES; r++) {
		mp->lo[r] = np->lo[r];
		mp->hi[r] = np->hi[r];
	}
	mp->embed = np->n_ranges ? np->embed : true;
	mp->head = np->n_ranges ? np->head : true;
	mp->in_flight = in_flight > 0 ? in_flight : 1;
	mp->routed_rows = (double)(ep * (K < El ? K : El));
	/* the stage's output stays among its activations (net_carve_all) */
	mp->keeps_output = true;
}

int net_memory_predict_part(const struct model_config *cfg, const struct net_part *part,
			    int batch, int seq, int dp, bool zero1, int in_flight,
			    struct model_memory *out)
{
	struct model_layout lay;
	struct model_part mp;
	/* the step's byte widths, as net_memory_predict_par */
	model_layout_default(&lay, cfg);
	lay.micro_batch = batch;
	lay.seq = seq;
	lay.weight_bytes = lay.grad_bytes = lay.moment_bytes = lay.act_bytes = 4;
	lay.master_bytes = 0;
	lay.dp = dp > 0 ? dp : 1;
	lay.zero1 = zero1 && lay.dp > 1;
	/* NOTE: the step slices every expert over the TP ranks (ETP = TP) besides sharding
	 * them over EP: memory.c's EP of ep x tp; its TP keeps the residual stream, norms,
	 * latents and router whole on every rank (no sequence parallelism) and replicates
	 * the norms, router, MLA's down-projections and the MTP projection */
	lay.tp = part->tp > 0 ? part->tp : 1;
	lay.ep = part->ep > 0 ? part->ep : 1;
	if (cfg->routed_experts > 0)
		lay.ep *= lay.tp;
	lay.no_seq_parallel = lay.tp_replicated = true;
	net_memory_part_of(cfg, part, in_flight, &mp);
	return model_memory_part(cfg, &lay, &mp, out, NULL, 0);
}

int net_memory_in_flight(const char *schedule, int pp, int stage, int n_micro)
{
	int ahead = pp > 1 ? pp - stage : 1;
	if (pp > 1 && schedule && strcmp(schedule, "gpipe") == 0)
		return n_micro;
	return n_micro < ahead ? n_micro : ahead;
}

/* net_memory_ratios divides each measured term by its prediction (NaN where none). */
void net_memory_ratios(const struct net_memory *got, const struct model_memory *want,
		       double ratio[NET_MEM_TERMS])
{
	double g[NET_MEM_TERMS] = { (double)got->weights, (double)got->grads,
				    (double)got->optimizer, (double)got->activations,
				    (double)got->scratch };
	double w[NET_MEM_TERMS] = { want->weight_bytes, want->grad_bytes, want->optimizer_bytes,
				    want->activation_bytes, NAN };
	for (int i = 0; i < NET_MEM_TERMS; i++)
		ratio[i] = w[i] > 0 ? g[i] / w[i] : NAN;
}
