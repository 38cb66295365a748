/*
 * project_share.c - the cost of one micro-batch through one device's share of the
 * model: every weight GEMM of every layer (model_gemm_shapes, split over TP/ETP and
 * EP), the attention core, the memory-bound element-wise work, and the TP, CP and EP
 * collectives, each timed with model/project.c; then the pipeline view of it (what an
 * F, B, W or DualPipe F&B operation costs with its exposed communication).
 *
 * Stated modelling choices (none fitted to a published throughput):
 *   - GEMMs: efficiency of the nearest measured shape (project_calib.h); router and
 *     output head in BF16 under --precision fp8 (DeepSeek-V3 sec. 3.3.1).
 *   - Attention core: the accounting's forward FLOPs at PROJ_ATTENTION_EFF of the BF16
 *     peak; the backward 2.5x the forward (FlashAttention's 5 matmuls against 2).
 *   - Element-wise work per token and layer, BF16, split over TP (sequence parallel):
 *     two norms (read + write), two residual adds (2 reads + write), the FFN activation
 *     (SwiGLU reads gate and up, writes the product), RoPE on Q and K; MoE adds the
 *     router scores and the permutation of every routed copy before and after the
 *     experts; the loss reads and writes FP32 logits. The backward moves twice that.
 *   - TP with sequence parallelism: two all-gathers and two reduce-scatters of the
 *     micro-batch's [tokens, dim] BF16 activations per layer, forward and backward.
 *   - CP: K and V all-gathered in the forward, all-gathered and their gradients
 *     reduce-scattered in the backward, hidden behind the attention core up to its time.
 *   - EP: dispatch (FP8 with a 4-byte scale per 128 under --precision fp8, else BF16)
 *     and combine (BF16) forward, both BF16 backward, as DeepEP or a plain all-to-all
 *     sends them (a2a_time); routing taken as uniform (no hot expert). DualPipe hides it behind the paired chunk's compute, which
 *     then runs on 112 of 132 SMs (DeepSeek-V3 sec. 3.2.2: 20 SMs communicate).
 */
#include "project_step.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

#define DUALPIPE_SM_SHARE (132.0 / 112.0)

/* What one layer (or the head) costs for one micro-batch on one GPU. */
struct cost {
	double f[PROJ_N_CLASSES], b[PROJ_N_CLASSES], w[PROJ_N_CLASSES];
	double flops[PROJ_N_CLASSES];  /* executed (recomputation included) */
	double f_comm[PROJ_N_COMMS], b_comm[PROJ_N_COMMS];
	double cp_exposed_f, cp_exposed_b;
};

struct ctx {
	const struct proj_input *in;
	const struct model_config *c;
	bool calibrated;
	double mem_eff;
	struct proj_tier nvl, ib;
	int gpn;
	int64_t tokens;  /* a micro-batch's tokens on one GPU's sequence chunk */
};

/* cost_scale multiplies every figure of a cost by s and adds it into acc. */
static void cost_add(struct cost *acc, const struct cost *x, double s)
{
	for (int i = 0; i < PROJ_N_CLASSES; i++) {
		acc->f[i] += s * x->f[i];
		acc->b[i] += s * x->b[i];
		acc->w[i] += s * x->w[i];
		acc->flops[i] += s * x->flops[i];
	}
	for (int i = 0; i < PROJ_N_COMMS; i++) {
		acc->f_comm[i] += s * x->f_comm[i];
		acc->b_comm[i] += s * x->b_comm[i];
	}
	acc->cp_exposed_f += s * x->cp_exposed_f;
	acc->cp_exposed_b += s * x->cp_exposed_b;
}

/* cost_total is the sum of every figure (the work a stage holding it does). */
static double cost_total(const struct cost *x)
{
	double t = 0;

	for (int i = 0; i < PROJ_N_CLASSES; i++)
		t += x->f[i] + x->b[i] + x->w[i];
	for (int i = 0; i < PROJ_N_COMMS; i++)
		t += x->f_comm[i] + x->b_comm[i];
	return t;
}

/* gemm_time times one GEMM of dtype dt on the target device. */
static double gemm_time(const struct ctx *x, int dt, int64_t m, int64_t n, int64_t k)
{
	const struct hardware_spec *hw = x->in->hw;
	const struct proj_calib *cal = x->in->calib;
	double eff = x->calibrated ? proj_gemm_efficiency(cal->pts[dt], cal->n[dt], m, n, k,
							  PROJ_FALLBACK_GEMM_EFF)
				   : PROJ_FALLBACK_GEMM_EFF;
	double peak = dt == PROJ_FP8 ? hw->peak_fp8_tflops : hw->peak_bf16_tflops;

	return proj_gemm_time(m, n, k, eff, peak, dt == PROJ_FP8 ? 1.0 : 2.0, 2.0, hw->hbm_tbps,
			      x->mem_eff);
}

/* split_gemm divides the dimension a TP/ETP split cuts: the output features of a
 * column-parallel matrix (col), else the input features of a row-parallel one. */
static void split_gemm(struct model_gemm *g, int64_t ways, bool col)
{
	int64_t *d = NULL;

	if (ways <= 1)
		return;
	if (g->pass == MODEL_PASS_FWD)
		d = col ? &g->n : &g->k;
	else if (g->pass == MODEL_PASS_DGRAD)
		d = col ? &g->k : &g->n;
	else
		d = col ? &g->m : &g->n;
	*d = (*d + ways - 1) / ways;
}

/* name_in tells whether name is one of the NULL-terminated list. */
static bool name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

/* add_gemm adds one GEMM entry's time (split as Megatron splits it) to the cost. */
static void add_gemm(const struct ctx *x, struct cost *cs, struct model_gemm g)
{
	static const char *const col[] = { "attn.wqkv", "attn.wq", "attn.wq_b", "attn.wkv_b",
					   "ffn.fc1", "moe.shared.fc1", "moe.expert.fc1", NULL };
	static const char *const row[] = { "attn.wo", "ffn.fc2", "moe.shared.fc2",
					   "moe.expert.fc2", NULL };
	bool expert = strncmp(g.name, "moe.expert.", 11) == 0;
	int64_t ways = expert ? x->in->etp : x->in->tp;
	int dt = x->in->fp8 && strcmp(g.name, "moe.router") != 0 ? PROJ_FP8 : PROJ_BF16;
	int cls = expert ? PROJ_EXPERT_GEMM : PROJ_DENSE_GEMM;

	if (name_in(g.name, col) || name_in(g.name, row))
		split_gemm(&g, ways, name_in(g.name, col));
	double count = expert ? (double)(x->c->routed_experts / x->in->ep) : (double)g.count;
	double t = count * gemm_time(x, dt, g.m, g.n, g.k);
	double *slot = g.pass == MODEL_PASS_FWD ? cs->f : g.pass == MODEL_PASS_DGRAD ? cs->b : cs->w;
	slot[cls] += t;
	cs->flops[cls] += count * 2.0 * (double)g.m * (double)g.n * (double)g.k;
}

/* add_layer_gemms adds a layer's weight GEMMs: the non-expert ones at the GPU's own
 * tokens, the routed experts at the tokens the EP x ETP group sends them. */
static int add_layer_gemms(const struct ctx *x, struct cost *cs, bool moe)
{
	struct model_gemm g[MODEL_GEMM_MAX];
	size_t n = 0;
	const struct proj_input *in = x->in;
	int64_t te = x->tokens * in->ep * in->etp / in->tp;

	if (model_gemm_shapes(x->c, moe, x->tokens, g, MODEL_GEMM_MAX, &n))
		return MB_ERR_ARG;
	for (size_t i = 0; i < n; i++)
		if (strncmp(g[i].name, "moe.expert.", 11) != 0)
			add_gemm(x, cs, g[i]);
	if (!moe)
		return MB_OK;
	if (model_gemm_shapes(x->c, true, te > 0 ? te : 1, g, MODEL_GEMM_MAX, &n))
		return MB_ERR_ARG;
	for (size_t i = 0; i < n; i++)
		if (strncmp(g[i].name, "moe.expert.", 11) == 0)
			add_gemm(x, cs, g[i]);
	return MB_OK;
}

/* add_attention_core adds the attention core (forward, backward, recomputation). */
static int add_attention_core(const struct ctx *x, struct cost *cs)
{
	struct model_flops fl;
	const struct proj_input *in = x->in;

	if (model_flops_per_token(x->c, in->seq, 0, MODEL_FLOPS_FORWARD, &fl))
		return MB_ERR_ARG;
	double per_layer = (double)fl.main[MODEL_FLOP_ATTN_CORE] / (double)x->c->layers;
	double t = per_layer * (double)x->tokens / in->tp /
		   (PROJ_ATTENTION_EFF * in->hw->peak_bf16_tflops * 1e12);
	double again = in->recompute != PROJ_RECOMPUTE_NONE ? 1.0 : 0.0;
	cs->f[PROJ_ATTN_CORE] += t;
	cs->b[PROJ_ATTN_CORE] += (2.5 + again) * t;
	cs->flops[PROJ_ATTN_CORE] += (3.5 + again) * per_layer * (double)x->tokens / in->tp;
	return MB_OK;
}

/* elementwise_elems is the element-wise traffic of one layer, elements per token. */
static double elementwise_elems(const struct model_config *c, bool moe)
{
	double dim = (double)c->dim, acts = c->ffn == MODEL_FFN_GELU ? 2.0 : 3.0;
	double rope = c->attention == MODEL_ATTN_MLA ?
		      (double)(c->heads + 1) * (double)c->qk_rope_head_dim :
		      (double)(c->heads + c->kv_heads) * (double)c->head_dim;
	double e = 4.0 * dim + 6.0 * dim + 2.0 * rope;

	if (!moe)
		return e + acts * (double)c->inter_dim;
	double k = (double)c->activated_experts;
	return e + acts * (double)c->moe_inter_dim * (k + (double)c->shared_experts) +
	       4.0 * k * dim + 3.0 * (double)c->routed_experts;
}

/* add_elementwise adds the memory-bound work of one layer. */
static void add_elementwise(const struct ctx *x, struct cost *cs, bool moe)
{
	double bytes = 2.0 * elementwise_elems(x->c, moe) * (double)x->tokens / x->in->tp;
	double t = proj_memory_time(bytes, x->in->hw->hbm_tbps, x->mem_eff);

	cs->f[PROJ_OTHER] += t;
	cs->b[PROJ_OTHER] += 2.0 * t + (x->in->recompute == PROJ_RECOMPUTE_FULL ? t : 0.0);
}

/* tier_of picks the tier of a group whose ranks are `stride` apart, n of them. */
static const struct proj_tier *tier_of(const struct ctx *x, int64_t stride, int64_t n)
{
	return stride * n <= x->gpn ? &x->nvl : &x->ib;
}

/* add_tp_cp adds TP's and CP's collectives of one layer. */
static void add_tp_cp(const struct ctx *x, struct proj_result *r, struct cost *cs)
{
	const struct proj_input *in = x->in;
	const struct model_config *c = x->c;
	double act = (double)x->tokens * (double)c->dim * 2.0;
	const struct proj_tier *t = tier_of(x, 1, in->tp);
	double tp = 2.0 * (proj_collective_time(PROJ_ALL_GATHER, in->tp, act, t) +
			   proj_collective_time(PROJ_REDUCE_SCATTER, in->tp, act, t));

	r->layer.tp_all_gather_s = proj_collective_time(PROJ_ALL_GATHER, in->tp, act, t);
	r->layer.tp_bytes = act;
	r->layer.tp_network = in->tp > 1 && t == &x->ib;
	cs->f_comm[PROJ_COMM_TP] += tp;
	cs->b_comm[PROJ_COMM_TP] += tp * (in->recompute == PROJ_RECOMPUTE_FULL ? 2.0 : 1.0);
	if (in->cp <= 1)
		return;
	double kv = c->attention == MODEL_ATTN_MLA ?
		    (double)c->heads * (double)(c->qk_nope_head_dim + c->qk_rope_head_dim +
						c->v_head_dim) / in->tp :
		    2.0 * (double)c->head_dim * fmax(1.0, (double)c->kv_heads / in->tp);
	double buf = (double)x->tokens * in->cp * kv * 2.0;
	t = tier_of(x, in->tp, in->cp);
	double ag = proj_collective_time(PROJ_ALL_GATHER, in->cp, buf, t);
	double rs = proj_collective_time(PROJ_REDUCE_SCATTER, in->cp, buf, t);
	r->layer.cp_all_gather_s = ag;
	cs->f_comm[PROJ_COMM_CP] += ag;
	cs->b_comm[PROJ_COMM_CP] += ag + rs;
	cs->cp_exposed_f += fmax(0.0, ag - cs->f[PROJ_ATTN_CORE]);
	cs->cp_exposed_b += fmax(0.0, ag + rs - cs->b[PROJ_ATTN_CORE]);
}

/* a2a_time is one EP all-to-all of `per_copy` bytes per routed token copy. DeepEP:
 * across nodes a token travels once per destination node, inside a node once per
 * copy. All-to-all: every copy travels to its expert's GPU, (ep - per_node)/ep of them
 * over the network. The two tiers run concurrently. */
static double a2a_time(const struct ctx *x, const struct proj_result *r, double per_copy,
		       double *ib_bytes, double *nvl_bytes)
{
	const struct proj_input *in = x->in;
	double tokens = (double)x->tokens / in->tp, k = (double)x->c->activated_experts;
	double nodes = r->ep_nodes, ep = in->ep, per_node = ep / nodes, ib, nvl;

	if (in->dispatch == PROJ_DISPATCH_DEEPEP) {
		ib = nodes > 1 ? tokens * r->nodes_per_token * (nodes - 1) / nodes * per_copy : 0;
		nvl = per_node > 1 ? tokens * k * per_copy * (per_node - 1) / per_node : 0;
	} else {
		ib = tokens * k * per_copy * (ep - per_node) / ep;
		nvl = tokens * k * per_copy * (per_node - 1) / ep;
	}
	const struct proj_tier *lat = nodes > 1 ? &x->ib : &x->nvl;
	double t_ib = ib / (x->ib.gbps * 1e9 * x->ib.efficiency);
	double t_nvl = nvl / (x->nvl.gbps * 1e9 * x->nvl.efficiency);

	*ib_bytes = ib;
	*nvl_bytes = nvl;
	return fmax(t_ib, t_nvl) + (lat->base_us + lat->hop_us) * 1e-6;
}

/* add_ep adds an MoE layer's dispatch and combine, forward and backward, and keeps one
 * layer's figures for the printout. */
static void add_ep(const struct ctx *x, struct proj_result *r, struct cost *cs)
{
	double dim = (double)x->c->dim, ib, nvl, ib_c, nvl_c;
	double disp = a2a_time(x, r, dim * (x->in->fp8 ? 1.0 + 4.0 / 128.0 : 2.0), &ib, &nvl);
	double comb = a2a_time(x, r, dim * 2.0, &ib_c, &nvl_c);

	if (x->in->ep <= 1)
		return;
	r->layer.ep_dispatch_s = disp;
	r->layer.ep_combine_s = comb;
	r->layer.ep_dispatch_net_bytes = ib;
	r->layer.ep_dispatch_nvl_bytes = nvl;
	cs->f_comm[PROJ_COMM_EP] += disp + comb;
	cs->b_comm[PROJ_COMM_EP] += 2.0 * comb +
				    (x->in->recompute == PROJ_RECOMPUTE_FULL ? disp + comb : 0.0);
}

/* layer_cost fills the cost of one dense or MoE layer. */
static int layer_cost(const struct ctx *x, struct proj_result *r, bool moe,
		      struct cost *cs)
{
	memset(cs, 0, sizeof(*cs));
	if (add_layer_gemms(x, cs, moe) || add_attention_core(x, cs))
		return MB_ERR_ARG;
	add_elementwise(x, cs, moe);
	add_tp_cp(x, r, cs);
	if (moe)
		add_ep(x, r, cs);
	if (x->in->recompute == PROJ_RECOMPUTE_FULL)
		for (int i = 0; i < PROJ_N_CLASSES; i++)
			if (i != PROJ_ATTN_CORE && i != PROJ_OTHER)
				cs->b[i] += cs->f[i], cs->flops[i] *= 4.0 / 3.0;
	return MB_OK;
}

/* head_cost fills the output head's logits GEMM (BF16, vocabulary split over TP) and
 * the loss's FP32 logits traffic; with `proj`, also MTP's [2d -> d] projection. */
static void head_cost(const struct ctx *x, bool proj, struct cost *cs)
{
	const struct model_config *c = x->c;
	int64_t t = x->tokens, v = (c->vocab + x->in->tp - 1) / x->in->tp, d = c->dim;
	int dt = x->in->fp8 ? PROJ_FP8 : PROJ_BF16;

	memset(cs, 0, sizeof(*cs));
	cs->f[PROJ_DENSE_GEMM] = gemm_time(x, PROJ_BF16, t, v, d);
	cs->b[PROJ_DENSE_GEMM] = gemm_time(x, PROJ_BF16, t, d, v);
	cs->w[PROJ_DENSE_GEMM] = gemm_time(x, PROJ_BF16, v, d, t);
	cs->flops[PROJ_DENSE_GEMM] = 6.0 * (double)t * (double)v * (double)d;
	double loss = proj_memory_time(8.0 * (double)t * (double)v, x->in->hw->hbm_tbps, x->mem_eff);
	cs->f[PROJ_OTHER] = loss;
	cs->b[PROJ_OTHER] = loss;
	if (!proj)
		return;
	cs->f[PROJ_DENSE_GEMM] += gemm_time(x, dt, t, d, 2 * d);
	cs->b[PROJ_DENSE_GEMM] += gemm_time(x, dt, t, 2 * d, d);
	cs->w[PROJ_DENSE_GEMM] += gemm_time(x, dt, d, 2 * d, t);
	cs->flops[PROJ_DENSE_GEMM] += 12.0 * (double)t * (double)d * (double)d;
}

/* ep_routing fills the EP group's node count and node-limited routing figures. */
static void ep_routing(const struct ctx *x, struct proj_result *r)
{
	const struct proj_input *in = x->in;
	const struct model_config *c = x->c;
	int64_t per_node = x->gpn / (in->tp * in->cp) > 0 ? x->gpn / (in->tp * in->cp) : 1;
	int64_t nodes = (in->ep + per_node - 1) / per_node;

	r->ep_nodes = (int)(nodes > 0 ? nodes : 1);
	r->max_nodes = 0;
	if (c->n_groups > 1 && c->topk_groups < c->n_groups)
		r->max_nodes = ceil((double)c->topk_groups * (double)r->ep_nodes / (double)c->n_groups);
	r->nodes_per_token = c->routed_experts ?
			     proj_nodes_per_token(c->activated_experts, r->ep_nodes,
						  (int64_t)r->max_nodes) : 0.0;
}

/* stage_cost fills the cost of virtual stage s of n_stages, the layers split evenly:
 * its layers, and on the last stage the head and the MTP modules. */
static void stage_cost(const struct ctx *x, int64_t s, int64_t n_stages,
		       const struct cost *kinds, struct cost *st)
{
	const struct model_config *c = x->c;
	int64_t lo = s * c->layers / n_stages, hi = (s + 1) * c->layers / n_stages;
	int64_t dh = hi < c->dense_layers ? hi : c->dense_layers;
	int64_t nd = dh > lo ? dh - lo : 0;

	memset(st, 0, sizeof(*st));
	cost_add(st, &kinds[0], (double)nd);
	cost_add(st, &kinds[1], (double)(hi - lo - nd));
	if (s < n_stages - 1)
		return;
	cost_add(st, &kinds[2], 1.0);
	cost_add(st, c->dense_layers < c->layers ? &kinds[1] : &kinds[0],
		 (double)x->in->mtp_depth);
	cost_add(st, &kinds[3], (double)x->in->mtp_depth);
}

/* device_cost fills device d's share of an even layer split as the simulator counts it
 * (one micro-batch through everything the device holds, per its op scale): interleaved
 * holds stages d, d+PP, ...; DualPipe stages d and PP-1-d, each op one of them, so the
 * mean; DualPipeV stages d and 2PP-1-d of 2PP; the others stage d. */
static void device_cost(const struct ctx *x, int64_t d, const struct cost *kinds,
			struct cost *dev)
{
	const struct proj_input *in = x->in;
	int64_t pp = in->pp, v = in->schedule == PIPE_INTERLEAVED ? in->vp : 1;
	struct cost st;

	memset(dev, 0, sizeof(*dev));
	if (in->schedule == PIPE_DUALPIPE || in->schedule == PIPE_DUALPIPEV) {
		bool half = in->schedule == PIPE_DUALPIPE;
		int64_t n = half ? pp : 2 * pp;
		stage_cost(x, d, n, kinds, &st);
		cost_add(dev, &st, half ? 0.5 : 1.0);
		stage_cost(x, n - 1 - d, n, kinds, &st);
		cost_add(dev, &st, half ? 0.5 : 1.0);
		return;
	}
	for (int64_t c = 0; c < v; c++) {
		stage_cost(x, c * pp + d, pp * v, kinds, &st);
		cost_add(dev, &st, 1.0);
	}
}

/* model_cost sums the whole model for one micro-batch (all layers, head, MTP) into
 * *all, and the fullest device's share of an even layer split into *fullest. */
static int model_cost(const struct ctx *x, struct proj_result *r, struct cost *all,
		      struct cost *fullest)
{
	const struct model_config *c = x->c;
	struct cost kinds[4], dev;  /* dense layer, MoE layer, head, MTP's head + proj */
	int64_t mtp = x->in->mtp_depth;

	memset(kinds, 0, sizeof(kinds));
	if ((c->dense_layers && layer_cost(x, r, false, &kinds[0])) ||
	    (c->dense_layers < c->layers && layer_cost(x, r, true, &kinds[1])))
		return MB_ERR_ARG;
	head_cost(x, false, &kinds[2]);
	head_cost(x, true, &kinds[3]);
	memset(all, 0, sizeof(*all));
	cost_add(all, &kinds[0], (double)c->dense_layers);
	cost_add(all, &kinds[1], (double)(c->layers - c->dense_layers));
	cost_add(all, &kinds[2], 1.0);
	cost_add(all, c->dense_layers < c->layers ? &kinds[1] : &kinds[0], (double)mtp);
	cost_add(all, &kinds[3], (double)mtp);
	memset(fullest, 0, sizeof(*fullest));
	for (int64_t d = 0; d < x->in->pp; d++) {
		device_cost(x, d, kinds, &dev);
		if (cost_total(&dev) > cost_total(fullest))
			*fullest = dev;
	}
	return MB_OK;
}

/* ctx_init prepares the tiers, calibration and tokens of a projection. */
static void ctx_init(struct ctx *x, const struct proj_input *in, struct proj_result *r)
{
	const struct proj_net *net = proj_net_find(in->hw->key);

	memset(x, 0, sizeof(*x));
	x->in = in;
	x->c = in->cfg;
	x->calibrated = proj_calib_applies(in->calib, in->hw);
	x->mem_eff = x->calibrated && in->calib->mem_efficiency > 0 ? in->calib->mem_efficiency
								     : PROJ_FALLBACK_MEM_EFF;
	x->gpn = net->gpus_per_node;
	x->nvl = (struct proj_tier){ in->hw->scaleup_gbps, net->nvlink_eff, net->nvlink_hop_us,
				     net->base_us };
	x->ib = (struct proj_tier){ in->hw->scaleout_gbps, net->ib_eff, net->ib_hop_us,
				    net->base_us };
	x->tokens = in->micro_batch * in->seq / in->cp;
	r->calibrated = x->calibrated;
	r->mem_efficiency = x->mem_eff;
}

/* share_from_cost takes one device's share (the model's cost over PP, or the fullest
 * stage's: pp = 1) and states the pipeline view of it. */
static void share_from_cost(const struct proj_input *in, const struct cost *all, double pp,
			    struct proj_share *s)
{
	double fc = 0, bc = 0, wc = 0;
	bool dual = in->schedule == PIPE_DUALPIPE || in->schedule == PIPE_DUALPIPEV;

	for (int i = 0; i < PROJ_N_CLASSES; i++) {
		s->f[i] = all->f[i] / pp;
		s->b[i] = all->b[i] / pp;
		s->w[i] = all->w[i] / pp;
		s->flops[i] = all->flops[i] / pp;
		fc += s->f[i];
		bc += s->b[i];
		wc += s->w[i];
	}
	for (int i = 0; i < PROJ_N_COMMS; i++) {
		s->f_comm[i] = all->f_comm[i] / pp;
		s->b_comm[i] = all->b_comm[i] / pp;
	}
	double tp = s->f_comm[PROJ_COMM_TP] + s->b_comm[PROJ_COMM_TP];
	double cp_f = all->cp_exposed_f / pp, cp_b = all->cp_exposed_b / pp;
	s->f_exposed = s->f_comm[PROJ_COMM_TP] + s->f_comm[PROJ_COMM_EP] + cp_f;
	s->b_exposed = s->b_comm[PROJ_COMM_TP] + s->b_comm[PROJ_COMM_EP] + cp_b;
	s->fb_overlapped = NAN;
	if (dual)
		s->fb_overlapped = fmax((fc + bc + wc) * DUALPIPE_SM_SHARE,
					s->f_comm[PROJ_COMM_EP] + s->b_comm[PROJ_COMM_EP]) +
				   tp + cp_f + cp_b;
	s->p2p_bytes = (double)in->micro_batch * (double)in->seq / in->cp *
		       (double)in->cfg->dim * 2.0 / in->tp;
}

int proj_share_compute(const struct proj_input *in, struct proj_result *r, char *why,
		       size_t why_len)
{
	struct ctx x;
	struct cost all, fullest;

	ctx_init(&x, in, r);
	ep_routing(&x, r);
	if (model_cost(&x, r, &all, &fullest))
		return mb_fail(MB_ERR_ARG, why, why_len, "the model's shapes do not fit the layout (tokens %lld)",
			    (long long)x.tokens);
	if (in->stages == PROJ_STAGES_BALANCED)
		share_from_cost(in, &all, in->pp, &r->share);
	else
		share_from_cost(in, &fullest, 1.0, &r->share);
	r->imbalance = cost_total(&fullest) / (cost_total(&all) / in->pp);
	return MB_OK;
}
