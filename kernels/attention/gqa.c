/*
 * gqa.c - the MHA/GQA attention block on the CPU (see mla.h), the comparison point of
 * MLA at the same model width: layouts here, forward and backward in gqa_impl.h,
 * instantiated in float (SGEMM) and double (DGEMM) on the attention core, and in
 * float on the SGEMM core of attention_blas.c (_f32_blas: the CPU training step's).
 */
#include "mla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "ref_dgemm.h"
#include "status.h"

/* Offsets (elements) of the activations a forward saves for the backward. */
struct gqa_ws {
	size_t q, k, v, o, lse, total;
};

int gqa_check(const struct gqa_config *c, char *why, size_t why_len)
{
	const char *msg = NULL;
	if (!c)
		msg = "no config";
	else if (c->dim < 1 || c->heads < 1 || c->kv_heads < 1 || c->head_dim < 1)
		msg = "dim, heads, kv_heads and head_dim must be >= 1";
	else if (c->heads % c->kv_heads)
		msg = "kv_heads must divide heads";
	else if (c->rope && (c->head_dim % 2 || !(c->rope_theta > 0)))
		msg = "RoPE needs an even head_dim and rope_theta > 0";
	else if (c->dim > (1 << 24) || c->heads > 4096 || c->head_dim > 65536)
		msg = "sizes too large";
	if (msg && why && why_len)
		snprintf(why, why_len, "%s", msg);
	return msg ? MB_ERR_ARG : MB_OK;
}

void gqa_layout_of(const struct gqa_config *c, struct gqa_layout *l)
{
	size_t d = (size_t)c->dim, q = (size_t)c->heads * c->head_dim;
	size_t kv = (size_t)c->kv_heads * c->head_dim;
	l->wq = 0;
	l->wk = l->wq + d * q;
	l->wv = l->wk + d * kv;
	l->wo = l->wv + d * kv;
	l->total = l->wo + q * d;
}

/* gqa_prepare checks the config and sizes and fills both layouts. */
static int gqa_prepare(const struct gqa_config *c, int batch, int seq, struct gqa_layout *l,
		       struct gqa_ws *w)
{
	if (gqa_check(c, NULL, 0) || batch < 1 || seq < 1 || batch > (1 << 24) / seq)
		return MB_ERR_ARG;
	gqa_layout_of(c, l);
	size_t t = (size_t)batch * seq, q = (size_t)c->heads * c->head_dim;
	size_t kv = (size_t)c->kv_heads * c->head_dim;
	w->q = 0;
	w->k = t * q;
	w->v = w->k + t * kv;
	w->o = w->v + t * kv;
	w->lse = w->o + t * q;
	w->total = w->lse + t * c->heads;
	return MB_OK;
}

size_t gqa_workspace_count(const struct gqa_config *c, int batch, int seq)
{
	struct gqa_layout l;
	struct gqa_ws w;
	return gqa_prepare(c, batch, seq, &l, &w) ? 0 : w.total;
}

uint64_t gqa_kv_bytes_per_pos(const struct gqa_config *c, int dtype_bytes)
{
	return 2 * (uint64_t)c->kv_heads * (uint64_t)c->head_dim * (uint64_t)dtype_bytes;
}

#define REAL float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#define CORE_FWD attn_fwd_cpu
#define CORE_BWD attn_bwd_cpu
#define LIN_FWD(c, ...) ((c)->round ? attn_round_linear_fwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_fwd)(__VA_ARGS__))
#define LIN_BWD(c, ...) ((c)->round ? attn_round_linear_bwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_bwd)(__VA_ARGS__))
#include "gqa_impl.h"
#undef LIN_FWD
#undef LIN_BWD
#undef REAL
#undef SFX
#undef GEMM
#undef CORE_FWD
#undef CORE_BWD

#define REAL float
#define SFX(name) name##_f32_blas
#define GEMM cblas_sgemm
#define CORE_FWD attn_fwd_blas
#define CORE_BWD attn_bwd_blas
#define LIN_FWD(c, ...) ((c)->round ? attn_round_linear_fwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_fwd)(__VA_ARGS__))
#define LIN_BWD(c, ...) ((c)->round ? attn_round_linear_bwd((c)->round, __VA_ARGS__) \
				      : SFX(linear_bwd)(__VA_ARGS__))
#include "gqa_impl.h"
#undef LIN_FWD
#undef LIN_BWD
#undef REAL
#undef SFX
#undef GEMM
#undef CORE_FWD
#undef CORE_BWD

#define REAL double
#define SFX(name) name##_f64
#define GEMM attn_ref_dgemm
#define CORE_FWD attn_fwd_cpu_f64
#define CORE_BWD attn_bwd_cpu_f64
/* the FP64 reference never rounds */
#define LIN_FWD(c, ...) ((void)(c), SFX(linear_fwd)(__VA_ARGS__))
#define LIN_BWD(c, ...) ((void)(c), SFX(linear_bwd)(__VA_ARGS__))
#include "gqa_impl.h"
#undef LIN_FWD
#undef LIN_BWD
