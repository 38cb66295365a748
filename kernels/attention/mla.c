/*
 * mla.c - DeepSeek-V3's Multi-head Latent Attention block on the CPU (see mla.h):
 * the layouts of its weights and saved activations, here; the forward, backward and
 * absorbed decode in mla_impl.h, instantiated below in float (SGEMM) and double
 * (DGEMM), both on the attention core of attention.c, and once more in float on the
 * SGEMM core of attention_blas.c (_f32_blas: the CPU training step's).
 */
#include "mla.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "ref_dgemm.h"
#include "status.h"

/* NOTE: 2^24 bounds every size so that products of a few of them stay far inside
 * size_t and the int arguments BLAS takes; heads * (kv_lora_rank + rope), the row of
 * the absorbed queries (an int leading dimension), is bounded on its own. */
#define MLA_SIZE_MAX (1 << 24)

int mla_check(const struct mla_config *c, char *why, size_t why_len)
{
	const char *msg = NULL;
	if (!c)
		msg = "no config";
	else if (c->dim < 1 || c->heads < 1 || c->kv_lora_rank < 1 || c->nope < 1 ||
		 c->rope < 2 || c->v_dim < 1 || c->q_lora_rank < 0)
		msg = "dim, heads, kv_lora_rank, nope, v_dim must be >= 1, rope >= 2, q_lora_rank >= 0";
	else if (c->rope % 2)
		msg = "rope must be even (RoPE rotates pairs)";
	else if (!(c->rope_theta > 0) || !(c->eps > 0))
		msg = "rope_theta and eps must be > 0";
	else if (c->dim > MLA_SIZE_MAX || c->heads > 4096 || c->q_lora_rank > MLA_SIZE_MAX ||
		 c->kv_lora_rank > MLA_SIZE_MAX || c->nope > 65536 || c->rope > 65536 ||
		 c->v_dim > 65536 ||
		 (long long)c->heads * (c->kv_lora_rank + c->rope) > INT_MAX)
		msg = "sizes too large";
	if (msg && why && why_len)
		snprintf(why, why_len, "%s", msg);
	return msg ? MB_ERR_ARG : MB_OK;
}

void mla_layout_of(const struct mla_config *c, struct mla_layout *l)
{
	size_t d = (size_t)c->dim, ql = (size_t)c->q_lora_rank, kvl = (size_t)c->kv_lora_rank;
	size_t h = (size_t)c->heads, qin = ql ? ql : d;
	l->wq_a = 0;
	l->q_norm = l->wq_a + d * ql;
	l->wq_b = l->q_norm + ql;
	l->wkv_a = l->wq_b + qin * h * (size_t)(c->nope + c->rope);
	l->kv_norm = l->wkv_a + d * (kvl + (size_t)c->rope);
	l->wkv_b = l->kv_norm + kvl;
	l->wo = l->wkv_b + kvl * h * (size_t)(c->nope + c->v_dim);
	l->total = l->wo + h * (size_t)c->v_dim * d;
}

/* ws_layout_of fills the workspace offsets for t = batch * seq tokens. */
static void ws_layout_of(const struct mla_config *c, int batch, int seq, struct mla_ws *w)
{
	size_t t = (size_t)batch * (size_t)seq, h = (size_t)c->heads;
	size_t dqk = (size_t)(c->nope + c->rope), kvl = (size_t)c->kv_lora_rank;
	w->cq = 0;
	w->cqn = w->cq + t * (size_t)c->q_lora_rank;
	w->q = w->cqn + t * (size_t)c->q_lora_rank;
	w->kva = w->q + t * h * dqk;
	w->latn = w->kva + t * (kvl + (size_t)c->rope);
	w->krr = w->latn + t * kvl;
	w->kv = w->krr + t * (size_t)c->rope;
	w->k = w->kv + t * h * (size_t)(c->nope + c->v_dim);
	w->v = w->k + t * h * dqk;
	w->o = w->v + t * h * (size_t)c->v_dim;
	w->lse = w->o + t * h * (size_t)c->v_dim;
	w->total = w->lse + t * h;
}

/* mla_prepare checks the config and sizes and fills both layouts. */
static int mla_prepare(const struct mla_config *c, int batch, int seq, struct mla_layout *l,
		       struct mla_ws *w)
{
	if (mla_check(c, NULL, 0) || batch < 1 || seq < 1 || batch > MLA_SIZE_MAX / seq)
		return MB_ERR_ARG;
	mla_layout_of(c, l);
	ws_layout_of(c, batch, seq, w);
	return MB_OK;
}

int mla_ws_layout(const struct mla_config *c, int batch, int seq, struct mla_ws *w)
{
	struct mla_layout l;
	return mla_prepare(c, batch, seq, &l, w);
}

size_t mla_workspace_count(const struct mla_config *c, int batch, int seq)
{
	struct mla_layout l;
	struct mla_ws w;
	return mla_prepare(c, batch, seq, &l, &w) ? 0 : w.total;
}

int mla_cache_width(const struct mla_config *c)
{
	return c->kv_lora_rank + c->rope;
}

uint64_t mla_kv_bytes_per_pos(const struct mla_config *c, int dtype_bytes)
{
	return (uint64_t)(c->kv_lora_rank + c->rope) * (uint64_t)dtype_bytes;
}

#define REAL float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#define CORE_FWD attn_fwd_cpu
#define CORE_BWD attn_bwd_cpu
#define CORE_DECODE attn_decode_cpu
#define LIN_FWD(c, ...) ((c)->round ? attn_round_linear_fwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_fwd)(__VA_ARGS__))
#define LIN_BWD(c, ...) ((c)->round ? attn_round_linear_bwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_bwd)(__VA_ARGS__))
#include "mla_impl.h"
#undef LIN_FWD
#undef LIN_BWD
#undef REAL
#undef SFX
#undef GEMM
#undef CORE_FWD
#undef CORE_BWD
#undef CORE_DECODE

#define REAL float
#define SFX(name) name##_f32_blas
#define GEMM cblas_sgemm
#define CORE_FWD attn_fwd_blas
#define CORE_BWD attn_bwd_blas
#define CORE_DECODE attn_decode_cpu
#define LIN_FWD(c, ...) ((c)->round ? attn_round_linear_fwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_fwd)(__VA_ARGS__))
#define LIN_BWD(c, ...) ((c)->round ? attn_round_linear_bwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_bwd)(__VA_ARGS__))
#include "mla_impl.h"
#undef LIN_FWD
#undef LIN_BWD
#undef REAL
#undef SFX
#undef GEMM
#undef CORE_FWD
#undef CORE_BWD
#undef CORE_DECODE

#define REAL double
#define SFX(name) name##_f64
#define GEMM attn_ref_dgemm
#define CORE_FWD attn_fwd_cpu_f64
#define CORE_BWD attn_bwd_cpu_f64
#define CORE_DECODE attn_decode_cpu_f64
/* the FP64 reference never rounds */
#define LIN_FWD(c, ...) ((void)(c), SFX(linear_fwd)(__VA_ARGS__))
#define LIN_BWD(c, ...) ((void)(c), SFX(linear_bwd)(__VA_ARGS__))
#include "mla_impl.h"
#undef LIN_FWD
#undef LIN_BWD
