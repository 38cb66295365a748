/*
 * net_ops_attn_cuda.c - the CUDA op table's attention blocks (net_ops.h mla_fwd ..
 * gqa_bwd) on the device, the CPU blocks' computation (mla_impl.h, gqa_impl.h) step for
 * step on device pointers and the table's stream:
 *   projections  the table's cuBLASLt GEMMs (net_cuda_gemm) on the blocks' [in, out]
 *                weights: FP32 operands, or under bf16 every operand rounded to BF16
 *                first, FP32 accumulation (attn_round.c's Fprop, Dgrad and Wgrad);
 *                under fp8 the FP8 linear layers' block-scaled GEMMs in their W [in,
 *                out] form (net_ops_fp8_cuda.c's _io entries: x, dy 1x128 along the
 *                reduction, x^T and dy^T 1x128 along the tokens, W 128x128), attn_round.c
 *                under net_attn_round(NET_FP8) as the CPU table runs it
 *   norms        kernels/train's rmsnorm_fwd_cuda / rmsnorm_bwd_cuda (FP32)
 *   RoPE, glue   kernels/train/attnblk.cu (FP64 angles, as block_real.h)
 *   core         kernels/attention's attn_fwd_cuda / attn_bwd_cuda: BF16 operands
 *                (q, k, v, o, dout rounded to BF16), FP32 accumulation, softmax and lse.
 * NOTE: the core is the one place where the device block differs from the CPU table's:
 * the CPU core takes FP32 operands; the CUDA core is a BF16 tensor-core kernel (DeepSeek-V3
 * 3.3 keeps attention in BF16/FP32, never FP8), so under fp32 too the block agrees with
 * the CPU's to BF16 rounding of the core's inputs, not to FP32.
 * The workspace the forward saves (ws) has the CPU block's layout (mla_ws, gqa.c's), lse
 * the CUDA core's [B, H, S]. Scratch: one device buffer carved per call, allocated at
 * open (net_cuda_sizes.attn_bytes, net_cuda_attn_bytes); a block that needs more fails
 * with MB_ERR_ARG. A rounding other than bf16's or fp8's is MB_ERR_UNSUPPORTED. Under fp8
 * the FP8 entries' own operand buffers (net_ops_fp8_cuda.c) grow to the blocks' shapes
 * in the first step, which the driver does not time, as the FFN layers' do.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "attention.h"
#include "attnblk.h"
#include "cuda_check.h"
#include "mla.h"
#include "net_ops_cuda.h"
#include "netops.h"
#include "rmsnorm.h"
#include "status.h"

#define S (net_cuda.stream)
#define SCR_N 23          /* pieces of the scratch */

/* The scratch of one block call (struct attn_scr's order is the sizes' order). */
struct attn_scr {
	uint16_t *ba, *bb;                      /* GEMM operands: bf16, or fp32 realigned [nb] */
	uint16_t *bq, *bk, *bv, *bo, *bdo;      /* the core's BF16 inputs */
	uint16_t *bdq, *bdk, *bdv;              /* its BF16 gradients */
	float *dout, *dq, *dk, *dv, *dkv, *dkva, *s1, *s2, *nx, *rstd;
	void *core_work, *norm_work;
	float *bc;                              /* a GEMM's output, realigned [nb] */
	size_t core_bytes, norm_bytes;
};

/* The element counts a block's scratch is made of. */
struct attn_counts {
	size_t nb;                 /* largest GEMM operand */
	size_t nq, nk, nv, no;     /* q, k, v, o of the core */
	size_t nkv, nkva, wide, t; /* MLA: kv, kva, the latent / q-latent width rows */
	struct attn_shape s;
};

/* max2 and align256 (to the 256 bytes cuBLASLt and the core's 16 need, with room). */
static size_t max2(size_t a, size_t b)
{
	return a > b ? a : b;
}

static size_t align256(size_t n)
{
	return (n + 255) & ~(size_t)255;
}

/* scr_bytes lists the pieces' bytes; returns their aligned total. */
static size_t scr_bytes(const struct attn_counts *n, size_t b[SCR_N])
{
	size_t wide = n->t * n->wide;
	size_t v[SCR_N] = { 4 * n->nb, 4 * n->nb, 2 * n->nq, 2 * n->nk, 2 * n->nv, 2 * n->no,
			    2 * n->no, 2 * n->nq, 2 * n->nk, 2 * n->nv, 4 * n->no, 4 * n->nq,
			    4 * n->nk, 4 * n->nv, 4 * n->nkv, 4 * n->nkva, 4 * wide, 4 * wide,
			    4 * wide, 4 * n->t, attn_bwd_cuda_workspace(&n->s),
			    n->wide ? rmsnorm_bwd_workspace((long)n->t, (int)n->wide) : 0,
			    4 * n->nb };
	size_t total = 0;
	for (int i = 0; i < SCR_N; i++)
		total += align256(b[i] = v[i] ? v[i] : 16);
	return total;
}

/* scr_carve points s at the pieces of the context's attention buffer; MB_ERR_ARG when
 * it is smaller than this block needs (sized at open for other shapes). */
static int scr_carve(const struct attn_counts *n, struct attn_scr *s)
{
	size_t b[SCR_N];
	if (scr_bytes(n, b) > net_cuda.attn_bytes || !net_cuda.attn) {
		fprintf(stderr, "CUDA attention block: it needs %zu bytes of "
			"scratch, the table was opened with %zu\n", scr_bytes(n, b),
			net_cuda.attn_bytes);
		return MB_ERR_ARG;
	}
	void **p[SCR_N] = { (void **)&s->ba, (void **)&s->bb, (void **)&s->bq, (void **)&s->bk,
			    (void **)&s->bv, (void **)&s->bo, (void **)&s->bdo, (void **)&s->bdq,
			    (void **)&s->bdk, (void **)&s->bdv, (void **)&s->dout, (void **)&s->dq,
			    (void **)&s->dk, (void **)&s->dv, (void **)&s->dkv, (void **)&s->dkva,
			    (void **)&s->s1, (void **)&s->s2, (void **)&s->nx, (void **)&s->rstd,
			    &s->core_work, &s->norm_work, (void **)&s->bc };
	char *at = net_cuda.attn;
	for (int i = 0; i < SCR_N; i++) {
		*p[i] = at;
		at += align256(b[i]);
	}
	s->core_bytes = b[20];
	s->norm_bytes = b[21];
	return MB_OK;
}

/* mla_counts fills the element counts of an MLA block of batch x seq. */
static int mla_counts(const struct mla_config *c, int batch, int seq, struct attn_counts *n)
{
	struct mla_ws w;
	if (mla_ws_layout(c, batch, seq, &w))
		return MB_ERR_ARG;
	size_t t = (size_t)batch * seq, H = (size_t)c->heads, dqk = (size_t)(c->nope + c->rope);
	size_t ql = (size_t)c->q_lora_rank, kvl = (size_t)c->kv_lora_rank;
	size_t wd = kvl + (size_t)c->rope, d = (size_t)c->dim, hkv = H * (c->nope + c->v_dim);
	*n = (struct attn_counts){ 0, t * H * dqk, t * H * dqk, t * H * c->v_dim, t * H * c->v_dim,
				   t * hkv, t * wd, max2(ql, kvl), t,
				   { batch, seq, c->heads, c->heads, (int)dqk, c->v_dim, true,
				     (float)(1.0 / sqrt((double)dqk)) } };
	size_t acts[] = { t * d, t * ql, t * wd, n->nq, n->nkv, n->no, d * max2(ql, 1),
			  (ql ? ql : d) * H * dqk, d * wd, kvl * hkv, H * c->v_dim * d };
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		n->nb = max2(n->nb, acts[i]);
	return MB_OK;
}

/* gqa_counts: mla_counts for the GQA block (no norms: wide 0). */
static int gqa_counts(const struct gqa_config *c, int batch, int seq, struct attn_counts *n)
{
	if (!gqa_workspace_count(c, batch, seq))
		return MB_ERR_ARG;
	size_t t = (size_t)batch * seq, q = (size_t)c->heads * c->head_dim;
	size_t kv = (size_t)c->kv_heads * c->head_dim, d = (size_t)c->dim;
	*n = (struct attn_counts){ 0, t * q, t * kv, t * kv, t * q, 0, 0, 0, t,
				   { batch, seq, c->heads, c->kv_heads, c->head_dim, c->head_dim,
				     true, (float)(1.0 / sqrt((double)c->head_dim)) } };
	n->nb = max2(max2(t * d, t * q), d * q);
	return MB_OK;
}

/* net_cuda_attn_bytes: see net_ops.h. */
size_t net_cuda_attn_bytes(const struct mla_config *mla, const struct gqa_config *gqa,
			   int batch, int seq)
{
	struct attn_counts n;
	size_t b[SCR_N], m = 0, g = 0;
	if (mla && !mla_counts(mla, batch, seq, &n))
		m = scr_bytes(&n, b);
	if (gqa && !gqa_counts(gqa, batch, seq, &n))
		g = scr_bytes(&n, b);
	return max2(m, g);
}

/* ---- the projections: y = x W with the blocks' W [in, out] ---- */

/* How the projections run: FP32, BF16 operands, or the FP8 entries. */
enum blk_prec { BLK_FP32, BLK_BF16, BLK_FP8 };

/* blk_prec_of says how the projections of a block with rounding r run; MB_OK or
 * MB_ERR_UNSUPPORTED for a rounding the device has no path for. */
static int blk_prec_of(const struct attn_round *r, enum blk_prec *p)
{
	*p = !r ? BLK_FP32 : r == net_attn_round(NET_BF16) ? BLK_BF16 : BLK_FP8;
	if (r && *p == BLK_FP8 && r != net_attn_round(NET_FP8)) {
		fprintf(stderr, "CUDA attention block: it runs fp32, bf16 and fp8 "
			"roundings, not this one\n");
		return MB_ERR_UNSUPPORTED;
	}
	return MB_OK;
}

/* aligned says whether p is on a 256-byte boundary, the alignment cuBLASLt's heuristic
 * assumes by default (lt_plan sets no smaller one): the blocks' weights and saved
 * activations sit at offsets in one vector that need not be. */
static bool aligned(const void *p)
{
	return ((uintptr_t)p & 255) == 0;
}

/* blk_copy copies n floats on the stream (error kept). */
static int blk_copy(float *dst, const float *src, size_t n)
{
	return net_cuda_fail(MB_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float),
							   cudaMemcpyDeviceToDevice, S)));
}

/* blk_operand returns x [n] as the GEMM takes it: under low its BF16 copy in buf; else
 * itself, or its copy in buf when x is not aligned. NULL on error (kept). */
static const void *blk_operand(bool low, const float *x, size_t n, uint16_t *buf)
{
	if (!low)
		return aligned(x) ? (const void *)x : blk_copy((float *)buf, x, n) ? NULL : buf;
	return net_cuda_fail(netop_round_bf16_cuda(x, (long)n, NULL, buf, S)) ? NULL : buf;
}

/* blk_gemm is net_cuda_gemm into c [m, n] through the aligned sc->bc when c is not
 * aligned (c copied in first when acc, the result copied back). */
static int blk_gemm(const struct attn_scr *sc, cudaDataType_t ty, int m, int n, int k,
		    struct mb_lt_matrix a, const void *pa, struct mb_lt_matrix b, const void *pb,
		    float *c, bool acc)
{
	size_t cn = (size_t)m * n;
	float *out = aligned(c) ? c : sc->bc;
	if (out != c && acc && blk_copy(out, c, cn))
		return net_cuda.err;
	net_cuda_gemm(ty, m, n, k, a, pa, b, pb, m, out, acc);
	if (out != c && !net_cuda.err)
		blk_copy(c, out, cn);
	return net_cuda.err;
}

/* The FP8 entries blk_f8 calls. */
enum blk_f8_kind { F8_FWD, F8_DX, F8_DW };

/* blk_f8 runs one FP8 entry (net_ops_fp8_cuda.c, W [in, out]) into c [cn]: Fprop
 * (a = x, b = W), Dgrad (a = dy, b = W; added when acc) or Wgrad (a = x, b = dy),
 * through the aligned sc->bc when c is not aligned (c copied in first when acc). */
static int blk_f8(const struct attn_scr *sc, enum blk_f8_kind kind, int t, int in, int out,
		  const float *a, const float *b, float *c, size_t cn, bool acc)
{
	float *o = aligned(c) ? c : sc->bc;
	if (o != c && acc && blk_copy(o, c, cn))
		return net_cuda.err;
	int err = kind == F8_FWD  ? net_cuda_fp8_fwd_io(t, in, out, a, b, o)
		  : kind == F8_DX ? net_cuda_fp8_dx_io(t, in, out, b, a, o, acc)
				  : net_cuda_fp8_dw_io(t, in, out, a, b, o);
	if (net_cuda_fail(err))
		return err;
	return o != c ? blk_copy(c, o, cn) : MB_OK;
}

/* blk_fwd: y [t, out] = x [t, in] W [in, out] (column-major: y^T = W^T x^T, W^T being
 * W's row-major storage read column-major). */
static int blk_fwd(enum blk_prec prec, const struct attn_scr *sc, int t, int in, int out,
		   const float *x, const float *w, float *y)
{
	bool low = prec == BLK_BF16;
	if (prec == BLK_FP8)
		return blk_f8(sc, F8_FWD, t, in, out, x, w, y, (size_t)t * out, false);
	cudaDataType_t ty = low ? CUDA_R_16BF : CUDA_R_32F;
	const void *xa = blk_operand(low, x, (size_t)t * in, sc->ba);
	const void *wb = blk_operand(low, w, (size_t)in * out, sc->bb);
	if (!xa || !wb)
		return net_cuda.err;
	struct mb_lt_matrix a = { ty, (uint64_t)out, (uint64_t)in, out, CUBLAS_OP_N, NULL, 0 };
	struct mb_lt_matrix b = { ty, (uint64_t)in, (uint64_t)t, in, CUBLAS_OP_N, NULL, 0 };
	return blk_gemm(sc, ty, out, t, in, a, wb, b, xa, y, false);
}

/* blk_bwd: dW [in, out] = x^T dy (overwritten), dx [t, in] = dy W^T (added when acc). */
static int blk_bwd(enum blk_prec prec, const struct attn_scr *sc, int t, int in, int out,
		   const float *x, const float *w, const float *dy, float *dx, bool acc,
		   float *dw)
{
	bool low = prec == BLK_BF16;
	if (prec == BLK_FP8) {
		int err = blk_f8(sc, F8_DW, t, in, out, x, dy, dw, (size_t)in * out, false);
		return err ? err : blk_f8(sc, F8_DX, t, in, out, dy, w, dx, (size_t)t * in, acc);
	}
	cudaDataType_t ty = low ? CUDA_R_16BF : CUDA_R_32F;
	const void *dya = blk_operand(low, dy, (size_t)t * out, sc->ba);
	const void *xb = blk_operand(low, x, (size_t)t * in, sc->bb);
	if (!dya || !xb)
		return net_cuda.err;
	/* dW^T [out, in] = dy^T [out, t] (x^T)^T */
	struct mb_lt_matrix a = { ty, (uint64_t)out, (uint64_t)t, out, CUBLAS_OP_N, NULL, 0 };
	struct mb_lt_matrix b = { ty, (uint64_t)in, (uint64_t)t, in, CUBLAS_OP_T, NULL, 0 };
	if (blk_gemm(sc, ty, out, in, t, a, dya, b, xb, dw, false))
		return net_cuda.err;
	/* dx^T [in, t] = (W^T)^T dy^T; bb is free again once the GEMM above is queued */
	const void *wb = blk_operand(low, w, (size_t)in * out, sc->bb);
	if (!wb)
		return net_cuda.err;
	struct mb_lt_matrix a2 = { ty, (uint64_t)out, (uint64_t)in, out, CUBLAS_OP_T, NULL, 0 };
	struct mb_lt_matrix b2 = { ty, (uint64_t)out, (uint64_t)t, out, CUBLAS_OP_N, NULL, 0 };
	return blk_gemm(sc, ty, in, t, out, a2, wb, b2, dya, dx, acc);
}

/* ---- the core ---- */

/* core_fwd rounds q, k, v to BF16, runs the CUDA core and widens o back into FP32. */
static int core_fwd(const struct attn_counts *n, const struct attn_scr *sc, const float *q,
		    const float *k, const float *v, float *o, float *lse)
{
	int err = netop_round_bf16_cuda(q, (long)n->nq, NULL, sc->bq, S);
	err = err ? err : netop_round_bf16_cuda(k, (long)n->nk, NULL, sc->bk, S);
	err = err ? err : netop_round_bf16_cuda(v, (long)n->nv, NULL, sc->bv, S);
	err = err ? err : attn_fwd_cuda(&n->s, sc->bq, sc->bk, sc->bv, sc->bo, lse, S);
	return err ? err : attnblk_widen_cuda(sc->bo, (long)n->no, o, S);
}

/* core_bwd: the core's backward from the forward's FP32 q, k, v, o, lse and dout
 * (sc->dout) into FP32 dq, dk, dv (sc's). */
static int core_bwd(const struct attn_counts *n, const struct attn_scr *sc, const float *q,
		    const float *k, const float *v, const float *o, const float *lse)
{
	int err = netop_round_bf16_cuda(q, (long)n->nq, NULL, sc->bq, S);
	err = err ? err : netop_round_bf16_cuda(k, (long)n->nk, NULL, sc->bk, S);
	err = err ? err : netop_round_bf16_cuda(v, (long)n->nv, NULL, sc->bv, S);
	err = err ? err : netop_round_bf16_cuda(o, (long)n->no, NULL, sc->bo, S);
	err = err ? err : netop_round_bf16_cuda(sc->dout, (long)n->no, NULL, sc->bdo, S);
	err = err ? err : attn_bwd_cuda(&n->s, sc->bq, sc->bk, sc->bv, sc->bo, sc->bdo, lse,
					sc->bdq, sc->bdk, sc->bdv, sc->core_work, S);
	err = err ? err : attnblk_widen_cuda(sc->bdq, (long)n->nq, sc->dq, S);
	err = err ? err : attnblk_widen_cuda(sc->bdk, (long)n->nk, sc->dk, S);
	return err ? err : attnblk_widen_cuda(sc->bdv, (long)n->nv, sc->dv, S);
}

/* norm_bwd: rmsnorm_bwd of x [t, n] (rows ldx apart, copied contiguous first) from dy
 * [t, n]: dx into rows lddx apart, the gain's gradient overwritten into dg. */
static int norm_bwd(const struct attn_scr *sc, int t, int n, const float *x, int ldx,
		    const float *g, double eps, const float *dy, float *dx, int lddx, float *dg)
{
	int err = attnblk_copy_cuda(t, 1, n, x, ldx, 0, sc->nx, n, 0, 0, S);
	err = err ? err : netop_rstd_cuda(sc->nx, t, n, (float)eps, sc->rstd, S);
	err = err ? err : MB_CUDA_CHECK(cudaMemsetAsync(dg, 0, (size_t)n * sizeof(float), S));
	err = err ? err : rmsnorm_bwd_cuda(dy, sc->nx, g, sc->rstd, t, n, sc->s2, dg,
					   sc->norm_work, sc->norm_bytes, S);
	return err ? err : attnblk_copy_cuda(t, 1, n, sc->s2, n, 0, dx, lddx, 0, 0, S);
}

/* ---- MLA ---- */

/* The pieces of one MLA call. */
struct mla_call {
	const struct mla_config *c;
	struct mla_layout L;
	struct mla_ws W;
	struct attn_counts n;
	struct attn_scr sc;
	enum blk_prec prec;
	int t, seq;
};

/* mla_call_make checks the config, fills the layouts and carves the scratch. */
static int mla_call_make(const struct mla_config *c, int batch, int seq, struct mla_call *m)
{
	m->c = c;
	m->t = batch * seq;
	m->seq = seq;
	int err = mla_counts(c, batch, seq, &m->n);
	if (err)
		return err;
	mla_layout_of(c, &m->L);
	mla_ws_layout(c, batch, seq, &m->W);
	err = blk_prec_of(c->round, &m->prec);
	return err ? err : scr_carve(&m->n, &m->sc);
}

/* mla_proj_fwd: mla_impl.h's mla_q_fwd and mla_kv_fwd (q before RoPE, kva, latn, kv,
 * krr rotated). */
static int mla_proj_fwd(const struct mla_call *m, const float *w, const float *x, float *ws)
{
	const struct mla_config *c = m->c;
	int t = m->t, ql = c->q_lora_rank, kvl = c->kv_lora_rank, dr = c->rope, wd = kvl + dr;
	int hq = c->heads * (c->nope + dr), err;
	float eps = (float)c->eps;
	if (ql == 0) {
		err = blk_fwd(m->prec, &m->sc, t, c->dim, hq, x, w + m->L.wq_b, ws + m->W.q);
	} else {
		err = blk_fwd(m->prec, &m->sc, t, c->dim, ql, x, w + m->L.wq_a, ws + m->W.cq);
		err = err ? err : rmsnorm_fwd_cuda(ws + m->W.cq, w + m->L.q_norm, t, ql, eps,
						   ws + m->W.cqn, m->sc.rstd, S);
		err = err ? err : blk_fwd(m->prec, &m->sc, t, ql, hq, ws + m->W.cqn,
					  w + m->L.wq_b, ws + m->W.q);
	}
	err = err ? err : blk_fwd(m->prec, &m->sc, t, c->dim, wd, x, w + m->L.wkv_a, ws + m->W.kva);
	err = err ? err : attnblk_copy_cuda(t, 1, kvl, ws + m->W.kva, wd, 0, m->sc.nx, kvl, 0, 0, S);
	err = err ? err : rmsnorm_fwd_cuda(m->sc.nx, w + m->L.kv_norm, t, kvl, eps, ws + m->W.latn,
					   m->sc.rstd, S);
	err = err ? err : blk_fwd(m->prec, &m->sc, t, kvl, c->heads * (c->nope + c->v_dim),
				  ws + m->W.latn, w + m->L.wkv_b, ws + m->W.kv);
	err = err ? err : attnblk_copy_cuda(t, 1, dr, ws + m->W.kva + kvl, wd, 0, ws + m->W.krr,
					    dr, 0, 0, S);
	return err ? err : attnblk_rope_cuda(ws + m->W.krr, t, m->seq, 0, 1, 0, dr, dr,
					     c->rope_theta, 0, S);
}

/* mla_assemble: q's rope part rotated; k = [k_nope | krr for every head], v. */
static int mla_assemble(const struct mla_call *m, float *ws)
{
	const struct mla_config *c = m->c;
	int t = m->t, H = c->heads, dn = c->nope, dr = c->rope, dv = c->v_dim, dqk = dn + dr;
	long th = (long)t * H;
	int err = attnblk_rope_cuda(ws + m->W.q + dn, t, m->seq, 0, H, dqk, (long)H * dqk, dr,
				    c->rope_theta, 0, S);
	err = err ? err : attnblk_copy_cuda(th, 1, dn, ws + m->W.kv, dn + dv, 0, ws + m->W.k, dqk,
					    0, 0, S);
	err = err ? err : attnblk_copy_cuda(t, H, dr, ws + m->W.krr, dr, 0, ws + m->W.k + dn,
					    (long)H * dqk, dqk, 0, S);
	return err ? err : attnblk_copy_cuda(th, 1, dv, ws + m->W.kv + dn, dn + dv, 0,
					     ws + m->W.v, dv, 0, 0, S);
}

int net_cuda_mla_fwd(const struct mla_config *c, int b, int s, const float *w, const float *x,
		     float *y, float *ws)
{
	struct mla_call m;
	if (!w || !x || !y || !ws)
		return MB_ERR_ARG;
	int err = mla_call_make(c, b, s, &m);
	err = err ? err : mla_proj_fwd(&m, w, x, ws);
	err = err ? err : mla_assemble(&m, ws);
	err = err ? err : core_fwd(&m.n, &m.sc, ws + m.W.q, ws + m.W.k, ws + m.W.v, ws + m.W.o,
				   ws + m.W.lse);
	return err ? err : blk_fwd(m.prec, &m.sc, m.t, c->heads * c->v_dim, c->dim, ws + m.W.o,
				   w + m.L.wo, y);
}

/* mla_scatter: dq's rope part rotated back; dkv = [dk_nope | dv] per head; dkva's rope
 * part the heads' summed rope key gradient, rotated back. */
static int mla_scatter(const struct mla_call *m)
{
	const struct mla_config *c = m->c;
	const struct attn_scr *sc = &m->sc;
	int t = m->t, H = c->heads, dn = c->nope, dr = c->rope, dv = c->v_dim, dqk = dn + dr;
	int kvl = c->kv_lora_rank, wd = kvl + dr;
	long th = (long)t * H;
	int err = attnblk_rope_cuda(sc->dq + dn, t, m->seq, 0, H, dqk, (long)H * dqk, dr,
				    c->rope_theta, 1, S);
	err = err ? err : attnblk_copy_cuda(th, 1, dn, sc->dk, dqk, 0, sc->dkv, dn + dv, 0, 0, S);
	err = err ? err : attnblk_copy_cuda(th, 1, dv, sc->dv, dv, 0, sc->dkv + dn, dn + dv, 0, 0, S);
	err = err ? err : attnblk_headsum_cuda(t, H, dr, sc->dk + dn, (long)H * dqk, dqk,
					       sc->dkva + kvl, wd, S);
	return err ? err : attnblk_rope_cuda(sc->dkva + kvl, t, m->seq, 0, 1, 0, wd, dr,
					     c->rope_theta, 1, S);
}

/* mla_proj_bwd: mla_impl.h's mla_kv_bwd then mla_q_bwd: every projection's and norm's
 * gradient, dx overwritten by the kv path and added to by the q path. */
static int mla_proj_bwd(const struct mla_call *m, const float *w, const float *x,
			const float *ws, float *dx, float *dw)
{
	const struct mla_config *c = m->c;
	const struct attn_scr *sc = &m->sc;
	int t = m->t, ql = c->q_lora_rank, kvl = c->kv_lora_rank, wd = kvl + c->rope;
	int hq = c->heads * (c->nope + c->rope);
	int err = blk_bwd(m->prec, sc, t, kvl, c->heads * (c->nope + c->v_dim), ws + m->W.latn,
			  w + m->L.wkv_b, sc->dkv, sc->s1, false, dw + m->L.wkv_b);
	err = err ? err : norm_bwd(sc, t, kvl, ws + m->W.kva, wd, w + m->L.kv_norm, c->eps, sc->s1,
				   sc->dkva, wd, dw + m->L.kv_norm);
	err = err ? err : blk_bwd(m->prec, sc, t, c->dim, wd, x, w + m->L.wkv_a, sc->dkva, dx,
				  false, dw + m->L.wkv_a);
	if (err || ql == 0)
		return err ? err : blk_bwd(m->prec, sc, t, c->dim, hq, x, w + m->L.wq_b, sc->dq, dx,
					   true, dw + m->L.wq_b);
	err = blk_bwd(m->prec, sc, t, ql, hq, ws + m->W.cqn, w + m->L.wq_b, sc->dq, sc->s1, false,
		      dw + m->L.wq_b);
	err = err ? err : norm_bwd(sc, t, ql, ws + m->W.cq, ql, w + m->L.q_norm, c->eps, sc->s1,
				   sc->s2, ql, dw + m->L.q_norm);
	return err ? err : blk_bwd(m->prec, sc, t, c->dim, ql, x, w + m->L.wq_a, sc->s2, dx, true,
				   dw + m->L.wq_a);
}

int net_cuda_mla_bwd(const struct mla_config *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw)
{
	struct mla_call m;
	if (!w || !x || !ws || !dy || !dx || !dw)
		return MB_ERR_ARG;
	int err = mla_call_make(c, b, s, &m);
	err = err ? err : blk_bwd(m.prec, &m.sc, m.t, c->heads * c->v_dim, c->dim, ws + m.W.o,
				  w + m.L.wo, dy, m.sc.dout, false, dw + m.L.wo);
	err = err ? err : core_bwd(&m.n, &m.sc, ws + m.W.q, ws + m.W.k, ws + m.W.v, ws + m.W.o,
				   ws + m.W.lse);
	err = err ? err : mla_scatter(&m);
	return err ? err : mla_proj_bwd(&m, w, x, ws, dx, dw);
}

/* ---- GQA ---- */

/* The pieces of one GQA call; the workspace offsets are gqa.c's (q, k, v, o, lse). */
struct gqa_call {
	const struct gqa_config *c;
	struct gqa_layout L;
	size_t q, k, v, o, lse;
	struct attn_counts n;
	struct attn_scr sc;
	enum blk_prec prec;
	int t, seq, qw, kw;   /* qw = H hd, kw = G hd */
};

/* gqa_call_make: mla_call_make for GQA. */
static int gqa_call_make(const struct gqa_config *c, int batch, int seq, struct gqa_call *g)
{
	int err = gqa_counts(c, batch, seq, &g->n);
	if (err)
		return err;
	g->c = c;
	g->t = batch * seq;
	g->seq = seq;
	g->qw = c->heads * c->head_dim;
	g->kw = c->kv_heads * c->head_dim;
	gqa_layout_of(c, &g->L);
	g->q = 0;
	g->k = (size_t)g->t * g->qw;
	g->v = g->k + (size_t)g->t * g->kw;
	g->o = g->v + (size_t)g->t * g->kw;
	g->lse = g->o + (size_t)g->t * g->qw;
	err = blk_prec_of(c->round, &g->prec);
	return err ? err : scr_carve(&g->n, &g->sc);
}

/* gqa_rope rotates (inverse: back) every head of x [T, heads, hd] when the block ropes. */
static int gqa_rope(const struct gqa_call *g, float *x, int heads, int inverse)
{
	int hd = g->c->head_dim;
	if (!g->c->rope)
		return MB_OK;
	return attnblk_rope_cuda(x, g->t, g->seq, 0, heads, hd, (long)heads * hd, hd,
				 g->c->rope_theta, inverse, S);
}

int net_cuda_gqa_fwd(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		     float *y, float *ws)
{
	struct gqa_call g;
	if (!w || !x || !y || !ws)
		return MB_ERR_ARG;
	int err = gqa_call_make(c, b, s, &g), t = g.t;
	err = err ? err : blk_fwd(g.prec, &g.sc, t, c->dim, g.qw, x, w + g.L.wq, ws + g.q);
	err = err ? err : blk_fwd(g.prec, &g.sc, t, c->dim, g.kw, x, w + g.L.wk, ws + g.k);
	err = err ? err : blk_fwd(g.prec, &g.sc, t, c->dim, g.kw, x, w + g.L.wv, ws + g.v);
	err = err ? err : gqa_rope(&g, ws + g.q, c->heads, 0);
	err = err ? err : gqa_rope(&g, ws + g.k, c->kv_heads, 0);
	err = err ? err : core_fwd(&g.n, &g.sc, ws + g.q, ws + g.k, ws + g.v, ws + g.o, ws + g.lse);
	return err ? err : blk_fwd(g.prec, &g.sc, t, g.qw, c->dim, ws + g.o, w + g.L.wo, y);
}

int net_cuda_gqa_bwd(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw)
{
	struct gqa_call g;
	if (!w || !x || !ws || !dy || !dx || !dw)
		return MB_ERR_ARG;
	int err = gqa_call_make(c, b, s, &g), t = g.t;
	const struct attn_scr *sc = &g.sc;
	err = err ? err : blk_bwd(g.prec, sc, t, g.qw, c->dim, ws + g.o, w + g.L.wo, dy, sc->dout,
				  false, dw + g.L.wo);
	err = err ? err : core_bwd(&g.n, sc, ws + g.q, ws + g.k, ws + g.v, ws + g.o, ws + g.lse);
	err = err ? err : gqa_rope(&g, sc->dq, c->heads, 1);
	err = err ? err : gqa_rope(&g, sc->dk, c->kv_heads, 1);
	err = err ? err : blk_bwd(g.prec, sc, t, c->dim, g.qw, x, w + g.L.wq, sc->dq, dx, false,
				  dw + g.L.wq);
	err = err ? err : blk_bwd(g.prec, sc, t, c->dim, g.kw, x, w + g.L.wk, sc->dk, dx, true,
				  dw + g.L.wk);
	return err ? err : blk_bwd(g.prec, sc, t, c->dim, g.kw, x, w + g.L.wv, sc->dv, dx, true,
				   dw + g.L.wv);
}
