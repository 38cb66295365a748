/*
 * net.c - the trainable model (net.h) in float and in double: net_impl.h,
 * net_moe_impl.h and net_bwd_impl.h instantiated twice, as mla.c does with mla_impl.h,
 * so the FP64 model used by the finite-difference and `step` checks is the same code.
 */
#include "net.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mla.h"
#include "net_ops.h"
#include "par_team.h"
#include "route.h"
#include "status.h"

#define REAL float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#define OPS net_ops_f32
#define EXP expf
#define TP_SUM sum_f32
#define TP_RS rs_f32
#define TP_AG ag_f32
/* the attention blocks' projections take the run's precision (net_ops.c) */
#define ATTN_ROUND(p) net_attn_round(p)
#include "net_impl.h"
#include "net_bwd_impl.h"
#include "net_stage_impl.h"
#undef REAL
#undef SFX
#undef GEMM
#undef OPS
#undef EXP
#undef TP_SUM
#undef TP_RS
#undef TP_AG
#undef ATTN_ROUND

#define REAL double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#define OPS net_ops_f64
#define EXP exp
#define TP_SUM sum_f64
#define TP_RS rs_f64
#define TP_AG ag_f64
#define ATTN_ROUND(p) ((void)(p), (const struct attn_round *)NULL)
#include "net_impl.h"
#include "net_bwd_impl.h"
#include "net_stage_impl.h"
#undef REAL
#undef SFX
#undef GEMM
#undef OPS
#undef EXP
#undef TP_SUM
#undef TP_RS
#undef TP_AG
#undef ATTN_ROUND

/* net_init_on draws the initial weights on the host and puts them into the backend's
 * memory (in place on the CPU). */
static int net_init_on(struct net_f32 *m, double std, uint64_t seed)
{
	if (m->ops == &net_cpu_ops_f32) {
		net_init_f32(m->L, m->w, std, seed);
		return MB_OK;
	}
	float *h = malloc(m->L->total * sizeof(float) + 1);
	if (!h)
		return MB_ERR_NOMEM;
	net_init_f32(m->L, h, std, seed);
	int err = m->ops->upload(m->w, h, m->L->total * sizeof(float));
	free(h);
	return err;
}

int net_create_f32_ops(const struct net_layout *L, const struct net_options *o, int batch,
		       int seq, uint64_t seed, const struct net_ops_f32 *ops, struct net_f32 **out)
{
	struct net_f32 *m = calloc(1, sizeof(*m));
	int err = MB_ERR_NOMEM;
	*out = NULL;
	if (!m)
		goto out;
	m->ops = ops;
	err = net_setup_f32(m, L, o, batch, seq);
	/* NOTE: TP, EP and pipeline stages move rows and activations through host callbacks
	 * and copies: the CPU table alone runs them (a shadow of it is the one exception) */
	if (!err && ops->one_thread && (L->part.tp > 1 || L->part.ep > 1 || !L->whole))
		err = MB_ERR_UNSUPPORTED;
	if (!err)
		err = net_alloc_f32(m, true);
	if (!err)
		err = net_init_on(m, o->init_std, seed);
	if (err)
		goto out;
	*out = m;
	m = NULL;
out:
	net_destroy_f32(m);
	return err;
}

int net_create_f64(const struct net_layout *L, const struct net_options *o, int batch,
		   int seq, uint64_t seed, struct net_f64 **out)
{
	struct net_f64 *m = calloc(1, sizeof(*m));
	int err = MB_ERR_NOMEM;
	*out = NULL;
	if (!m)
		goto out;
	m->ops = &net_cpu_ops_f64;
	err = net_setup_f64(m, L, o, batch, seq);
	if (!err)
		err = net_alloc_f64(m, false);
	if (err)
		goto out;
	net_init_f64(L, m->w, o->init_std, seed);
	*out = m;
	m = NULL;
out:
	net_destroy_f64(m);
	return err;
}

float *net_params_f32(struct net_f32 *m)
{
	return m->w;
}

float *net_grads_f32(struct net_f32 *m)
{
	return m->g;
}

int net_create_f32(const struct net_layout *L, const struct net_options *o, int batch,
		   int seq, uint64_t seed, struct net_f32 **out)
{
	return net_create_f32_ops(L, o, batch, seq, seed, &net_cpu_ops_f32, out);
}

/* net_cuda_attn_scratch returns the device scratch of the layout's attention block
 * (this TP rank's heads, as net_impl.h's net_attn_configs makes it). */
static size_t net_cuda_attn_scratch(const struct net_layout *L, int batch, int seq)
{
	const struct model_config *c = &L->cfg;
	int tp = L->part.tp > 0 ? L->part.tp : 1, G = (int)c->kv_heads;
	bool rep = c->attention != MODEL_ATTN_MLA && tp > 1 && G % tp != 0;
	struct mla_config mla = { (int)c->dim, (int)c->heads / tp, (int)c->q_lora_rank,
				  (int)c->kv_lora_rank, (int)c->qk_nope_head_dim,
				  (int)c->qk_rope_head_dim, (int)c->v_head_dim, 10000, 1e-6, NULL };
	struct gqa_config gqa = { (int)c->dim, (int)c->heads / tp, rep ? 1 : G / tp,
				  (int)c->head_dim, true, 10000, NULL };
	if (c->attention == MODEL_ATTN_MLA)
		return net_cuda_attn_bytes(&mla, NULL, batch, seq);
	return net_cuda_attn_bytes(NULL, &gqa, batch, seq);
}

int net_create_f32_cuda(const struct net_layout *L, const struct net_options *o, int batch,
			int seq, uint64_t seed, struct net_f32 **out)
{
	const struct model_config *c = &L->cfg;
	const struct net_ops_f32 *ops;
	long T = (long)batch * seq, K = (long)c->activated_experts, d = (long)c->dim;
	long sh = (long)c->moe_inter_dim * (c->shared_experts > 1 ? (long)c->shared_experts : 1);
	long wide = (long)c->inter_dim > sh ? (long)c->inter_dim : sh;   /* widest SwiGLU */
	long lin = (T * K > T ? T * K : T) * (2 * d > wide ? 2 * d : wide);
	long wmax = (2 * d > wide ? 2 * d : wide) * (wide > d ? wide : d);
	struct net_cuda_sizes z = { T, T * K > T ? T * K : T, (int)d, (int)c->routed_experts,
				    (int)c->vocab, lin > wmax ? lin : wmax, L->n, (long)L->total,
				    net_cuda_attn_scratch(L, batch, seq), o->precision == NET_FP8 };
	*out = NULL;
	int err = net_cuda_ops_open(&z, &ops);
	if (!err)
		err = net_create_f32_ops(L, o, batch, seq, seed, ops, out);
	if (err)
		net_cuda_ops_close();
	return err;
}

int net_download_f32(const struct net_f32 *m, bool grads, float *host)
{
	return m->ops->download(host, grads ? m->g : m->w, m->L->total * sizeof(float));
}

float *net_acc_alloc_f32(struct net_f32 *m)
{
	return m->ops->mem_alloc(m->L->total * sizeof(float));
}

void net_acc_free_f32(struct net_f32 *m, float *acc)
{
	if (acc)
		m->ops->mem_free(acc);
}

int net_acc_add_f32(struct net_f32 *m, float *acc, bool first)
{
	return first ? m->ops->copy(m->g, m->L->total, acc) : m->ops->add(acc, m->g, m->L->total);
}

int net_acc_mean_f32(struct net_f32 *m, const float *acc, int n)
{
	int err = m->ops->copy(acc, m->L->total, m->g);
	return err ? err : m->ops->scale(m->g, 1.0f / (float)n, m->L->total);
}

int net_sync_f32(struct net_f32 *m)
{
	return m->ops->sync ? m->ops->sync() : MB_OK;
}

int net_upload_f32(struct net_f32 *m, const float *host)
{
	return m->ops->upload(m->w, host, m->L->total * sizeof(float));
}

double *net_params_f64(struct net_f64 *m)
{
	return m->w;
}

double *net_grads_f64(struct net_f64 *m)
{
	return m->g;
}

float *net_moment1_f32(struct net_f32 *m)
{
	return m->m1;
}

float *net_moment2_f32(struct net_f32 *m)
{
	return m->m2;
}

int net_share_params_f32(struct net_f32 *m, struct net_f32 *owner)
{
	if (!m || !owner || m == owner || m->L != owner->L || m->borrowed)
		return MB_ERR_ARG;
	m->ops->mem_free(m->w);
	m->ops->mem_free(m->m1);
	m->w = owner->w;
	m->g = owner->g;
	m->m1 = owner->m1;
	m->m2 = owner->m2;
	m->borrowed = true;
	return MB_OK;
}

int net_share_weights_f32(struct net_f32 *m, struct net_f32 *owner)
{
	if (!m || !owner || m == owner || m->L != owner->L || m->borrowed)
		return MB_ERR_ARG;
	/* NOTE: m->w's allocation holds m->g too (net_alloc): kept, freed from g */
	m->ops->mem_free(m->m1);
	m->w = owner->w;
	m->m1 = owner->m1;
	m->m2 = owner->m2;
	m->borrowed = m->own_grads = true;
	return MB_OK;
}

const struct net_options *net_options_of_f32(const struct net_f32 *m)
{
	return &m->o;
}

const struct net_layout *net_layout_of_f32(const struct net_f32 *m)
{
	return m->L;
}

void net_tp_set_f32(struct net_f32 *m, const struct net_tp_comm *c)
{
	m->tp = c;
}

void net_tp_set_f64(struct net_f64 *m, const struct net_tp_comm *c)
{
	m->tp = c;
}

void net_comm_set_f32(struct net_f32 *m, const struct net_comm *c)
{
	m->comm = c;
}

void net_comm_set_f64(struct net_f64 *m, const struct net_comm *c)
{
	m->comm = c;
}

void net_profile_set_f32(struct net_f32 *m, struct net_profile *p)
{
	m->prof = p;
}

const long *net_expert_load_f32(const struct net_f32 *m, int block)
{
	if (block < 0 || block >= m->L->blocks || !m->L->blk[block].moe)
		return NULL;
	return m->A[block].load;
}

double net_adam_step_f32(struct net_f32 *m, const struct net_adamw *a, long t)
{
	return m->ops->adamw_step(m->L, a, t, m->w, m->g, m->m1, m->m2);
}

size_t net_bytes_f32(const struct net_f32 *m)
{
	return m->bytes;
}

/* net_memory_f32 copies the terms net_alloc took from the allocations. */
void net_memory_f32(const struct net_f32 *m, struct net_memory *out)
{
	*out = m->mem;
}

int net_fix_selection_f64(struct net_f64 *d, const struct net_f32 *s)
{
	size_t TK = (size_t)s->T * (size_t)s->L->cfg.activated_experts;
	if (d->L != s->L || d->T != s->T)
		return MB_ERR_ARG;
	for (int i = 0; i < s->L->blocks; i++)
		if (s->L->blk[i].moe)
			s->ops->download(d->A[i].idx, s->A[i].idx, TK * sizeof(int32_t));
	d->fixed_route = true;
	return MB_OK;
}

/* net_bias_update_f32: each held MoE block's routing bias comes to the host (E floats),
 * takes route_bias_update (net_bias_update's step) and goes back: the same arithmetic on
 * either table, the host's copies on the CPU's. */
int net_bias_update_f32(struct net_f32 *m, const long *const *load, double gamma)
{
	const struct net_layout *L = m->L;
	int E = (int)L->cfg.routed_experts, err = MB_OK;
	float *b = malloc((size_t)(E > 0 ? E : 1) * sizeof(float));
	if (!b)
		return MB_ERR_NOMEM;
	for (int i = 0; !err && i < L->blocks && L->cfg.expert_bias; i++) {
		const struct net_block *k = &L->blk[i];
		/* NOTE: a dense block has no router_bias tensor (-1): test before indexing */
		if (!k->moe || !k->held || !load[i])
			continue;
		float *dev = m->w + L->t[k->router_bias].off;
		err = m->ops->download(b, dev, (size_t)E * sizeof(float));
		if (!err)
			route_bias_update(b, load[i], E, (float)gamma);
		if (!err)
			err = m->ops->upload(dev, b, (size_t)E * sizeof(float));
	}
	free(b);
	return err;
}
