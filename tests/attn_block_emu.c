/*
 * attn_block_emu.c - the CUDA table's attention blocks (model/train/net_ops_attn_cuda.c,
 * the file itself, included below) run on the host against the CPU blocks (mla_fwd_f32,
 * mla_bwd_f32, gqa_fwd_f32, gqa_bwd_f32), so the device block's composition (scratch
 * carving, every GEMM's cuBLASLt descriptors, strides of the copies, RoPE offsets, the
 * norms' ld, which gradient is overwritten or added) is checked without a GPU.
 *
 * The device functions it calls are stood in for on the host: the attnblk kernels by
 * their CPU twins (train_emu checks the kernels against those, one thread per CUDA
 * thread), rmsnorm by rmsnorm.h's CPU versions, BF16 rounding by bf16.h, the cuBLASLt GEMM
 * by a plain column-major GEMM that reads the descriptors as cuBLASLt does (op, ld,
 * type), the attention core by the CPU core on the widened operands, the FP8 entries
 * (net_ops_fp8_cuda.c's _io forms, checked against lt_fake by fp8_lin_fake) by what
 * their contract says they compute: each operand's E4M3 round trip by fp8.c in the
 * K-major form the entry builds (x 1x128 along in, dy along out, x^T and dy^T along the
 * tokens, W^T or W in 128x128 blocks), then the product in double.
 *
 * Two modes. "exact core": the stand-in core reads the FP32 values its BF16 inputs were
 * rounded from (a side table kept by the rounding stand-in) and hands back FP32 results,
 * so everything but the GEMMs' summation order is the CPU block's: FP32 tolerance (1e-5
 * relative to the largest value). "bf16 core": the core sees the BF16 bits, as the CUDA
 * core does: BF16 tolerance (3e-2). Under fp32, bf16 and fp8 projections (c->round),
 * fp8 against the CPU block under net_attn_round(NET_FP8); the fp8 cases add blocks with
 * dims and tokens past one 128 tile (dim 200, ranks 136 and 132, 140 tokens) so a tile
 * along the wrong dimension shows. Fresh random inputs (MB_TEST_SEED replays), sizes off
 * every tile (head dims 18/10, 10), outputs poisoned (NaN) first. Exit 0 when all pass.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attnblk.h"
#include "bf16.h"
#include "cuda_check.h"
#include "fp8.h"
#include "mla.h"
#include "net_ops.h"
#include "rmsnorm.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

/* the device functions the block calls, renamed to the stand-ins below (the prototypes
 * the included file's headers gave keep the real names) */
#define net_cuda emu_net_cuda
#define net_cuda_fail emu_net_cuda_fail
#define net_cuda_gemm emu_gemm
#define net_cuda_attn_bytes emu_attn_bytes
#define net_cuda_mla_fwd emu_mla_fwd
#define net_cuda_mla_bwd emu_mla_bwd
#define net_cuda_gqa_fwd emu_gqa_fwd
#define net_cuda_gqa_bwd emu_gqa_bwd
#define attnblk_rope_cuda emu_rope
#define attnblk_copy_cuda emu_copy
#define attnblk_headsum_cuda emu_headsum
#define attnblk_widen_cuda emu_widen
#define netop_round_bf16_cuda emu_round
#define netop_rstd_cuda emu_rstd
#define rmsnorm_fwd_cuda emu_rms_fwd
#define rmsnorm_bwd_cuda emu_rms_bwd
#define attn_fwd_cuda emu_core_fwd
#define attn_bwd_cuda emu_core_bwd
#define attn_bwd_cuda_workspace emu_core_ws
#define net_cuda_fp8_fwd_io emu_f8_fwd
#define net_cuda_fp8_dx_io emu_f8_dx
#define net_cuda_fp8_dw_io emu_f8_dw
#undef MB_CUDA_CHECK
#define MB_CUDA_CHECK(call) ((call) == cudaSuccess ? MB_OK : MB_ERR_CUDA)
#define cudaMemsetAsync(p, v, n, s) ((void)(s), memset((p), (v), (n)), cudaSuccess)
#define cudaMemcpyAsync(d, p, n, k, s) ((void)(k), (void)(s), memcpy((d), (p), (n)), cudaSuccess)

#include "net_ops_cuda.h"

struct net_cuda_ctx net_cuda;
static int exact_core;   /* the core reads and writes FP32 through the side table */
static int f8_calls, gemm_calls;   /* which path the projections took */

int net_cuda_fail(int err)
{
	if (err && !net_cuda.err)
		net_cuda.err = err;
	return err;
}

/* ---- the side table: BF16 buffers -> the FP32 values behind them ---- */

#define SIDE_N 32
static struct side {
	const void *bits;
	float *f;
	size_t n;
} side[SIDE_N];

/* side_put records f [n] behind bits (replacing an older record of bits). */
static void side_put(const void *bits, const float *f, size_t n)
{
	int slot = -1;
	for (int i = 0; i < SIDE_N && slot < 0; i++)
		if (side[i].bits == bits || !side[i].bits)
			slot = i;
	if (slot < 0)
		abort();
	free(side[slot].f);
	side[slot].bits = bits;
	side[slot].f = malloc(n * sizeof(float));
	side[slot].n = n;
	memcpy(side[slot].f, f, n * sizeof(float));
}

/* side_get returns the FP32 values of bits [n]: the record in exact mode, else the
 * widened bits (a fresh allocation either way). */
static float *side_get(const uint16_t *bits, size_t n)
{
	float *f = malloc(n * sizeof(float));
	for (int i = 0; i < SIDE_N; i++)
		if (exact_core && side[i].bits == bits && side[i].n >= n) {
			memcpy(f, side[i].f, n * sizeof(float));
			return f;
		}
	for (size_t i = 0; i < n; i++)
		f[i] = bf16_to_float(bits[i]);
	return f;
}

static void side_clear(void)
{
	for (int i = 0; i < SIDE_N; i++) {
		free(side[i].f);
		side[i] = (struct side){ 0 };
	}
}

/* ---- stand-ins ---- */

int emu_round(const float *x, long n, float *y, uint16_t *bits, void *stream)
{
	for (long i = 0; i < n; i++) {
		uint16_t b = bf16_from_float(x[i]);
		if (bits)
			bits[i] = b;
		if (y)
			y[i] = bf16_to_float(b);
	}
	if (bits)
		side_put(bits, x, (size_t)n);
	return MB_OK;
}

int emu_widen(const uint16_t *x, long n, float *y, void *stream)
{
	float *f = side_get(x, (size_t)n);
	memcpy(y, f, (size_t)n * sizeof(float));
	free(f);
	return MB_OK;
}

int emu_rope(float *x, long rows, int seq, int pos0, int heads, long hs, long rs, int dr,
	     double theta, int inverse, void *stream)
{
	return attnblk_rope_cpu(x, rows, seq, pos0, heads, hs, rs, dr, theta, inverse);
}

int emu_copy(long rows, int heads, int cols, const float *x, long ldx, long hx, float *y,
	     long ldy, long hy, int add, void *stream)
{
	return attnblk_copy_cpu(rows, heads, cols, x, ldx, hx, y, ldy, hy, add);
}

int emu_headsum(long rows, int heads, int cols, const float *x, long ldx, long hx, float *y,
		long ldy, void *stream)
{
	return attnblk_headsum_cpu(rows, heads, cols, x, ldx, hx, y, ldy);
}

int emu_rstd(const float *x, long rows, int dim, float eps, float *rstd, void *stream)
{
	for (long r = 0; r < rows; r++) {
		double ss = 0;
		for (int c = 0; c < dim; c++)
			ss += (double)x[r * dim + c] * x[r * dim + c];
		rstd[r] = (float)(1.0 / sqrt(ss / dim + eps));
	}
	return MB_OK;
}

int emu_rms_fwd(const float *x, const float *g, long rows, int dim, float eps, float *y,
		float *rstd, void *stream)
{
	return rmsnorm_fwd_cpu(x, g, rows, dim, eps, y, rstd);
}

int emu_rms_bwd(const float *dy, const float *x, const float *g, const float *rstd, long rows,
		int dim, float *dx, float *dg, void *work, size_t work_bytes, void *stream)
{
	if (work_bytes < rmsnorm_bwd_workspace(rows, dim))
		return MB_ERR_ARG;
	return rmsnorm_bwd_cpu(dy, x, g, rstd, rows, dim, dx, dg);
}

/* emu_elem reads element (i, p) of op(M), M column-major [rows, cols] ld, FP32 or BF16. */
static double emu_elem(const struct mb_lt_matrix *m, const void *p, long i, long k)
{
	long at = m->op == CUBLAS_OP_N ? i + k * m->ld : k + i * m->ld;
	return m->type == CUDA_R_16BF ? bf16_to_float(((const uint16_t *)p)[at])
				      : ((const float *)p)[at];
}

/* emu_gemm: C [m, n] (column-major, ld ldc) = op(A) op(B) (+ C), checking that the
 * descriptors' shapes are what op says (op(A) [m, k], op(B) [k, n]). */
void emu_gemm(cudaDataType_t ab, int m, int n, int k, struct mb_lt_matrix a, const void *pa,
	      struct mb_lt_matrix b, const void *pb, int ldc, float *c, bool acc)
{
	a.type = b.type = ab;
	gemm_calls++;
	uint64_t am = a.op == CUBLAS_OP_N ? a.rows : a.cols, ak = a.op == CUBLAS_OP_N ? a.cols : a.rows;
	uint64_t bk = b.op == CUBLAS_OP_N ? b.rows : b.cols, bn = b.op == CUBLAS_OP_N ? b.cols : b.rows;
	if (am != (uint64_t)m || ak != (uint64_t)k || bk != (uint64_t)k || bn != (uint64_t)n ||
	    a.ld < (int64_t)a.rows || b.ld < (int64_t)b.rows || ldc < m) {
		net_cuda_fail(MB_ERR_ARG);
		return;
	}
	for (long j = 0; j < n; j++)
		for (long i = 0; i < m; i++) {
			double s = 0;
			for (long p = 0; p < k; p++)
				s += emu_elem(&a, pa, i, p) * emu_elem(&b, pb, p, j);
			c[i + j * ldc] = (float)(s + (acc ? c[i + j * ldc] : 0));
		}
}

/* ---- the FP8 entries ---- */

/* emu_qdq returns the E4M3 round trip of x [rows, cols] (of x^T when trans) in 128x128
 * blocks (blk) or 1x128 tiles along its rows, as fp8.c computes it (NULL on a non-finite
 * input, which the entries' quantizer refuses too). */
static float *emu_qdq(const float *x, int rows, int cols, bool trans, bool blk)
{
	struct fp8_matrix m;
	int r = trans ? cols : rows, c = trans ? rows : cols;
	float *y = malloc((size_t)r * c * sizeof(float));
	if (fp8_matrix_alloc(&m, r, c, FP8_E4M3, blk ? FP8_PER_128X128 : FP8_PER_1X128))
		abort();
	int err = trans ? fp8_quantize_transposed(x, rows, cols, &m, false)
			: fp8_quantize(x, &m, false);
	if (!err)
		fp8_dequantize(&m, y);
	fp8_matrix_free(&m);
	if (err)
		free(y);
	return err ? NULL : y;
}

/* emu_abt: C [M, N] (+ C when acc) = A [M, K] B [N, K]^T in double, freeing a and b;
 * MB_ERR_ARG when either is NULL. */
static int emu_abt(float *a, float *b, int M, int N, int K, bool acc, float *c)
{
	f8_calls++;
	for (long i = 0; a && b && i < M; i++)
		for (long j = 0; j < N; j++) {
			double s = acc ? c[i * N + j] : 0;
			for (long p = 0; p < K; p++)
				s += (double)a[i * K + p] * b[j * K + p];
			c[i * N + j] = (float)s;
		}
	int err = a && b ? MB_OK : MB_ERR_ARG;
	free(a), free(b);
	return err;
}

int emu_f8_fwd(int t, int in, int out, const float *x, const float *w, float *y)
{
	return emu_abt(emu_qdq(x, t, in, false, false), emu_qdq(w, in, out, true, true), t, out,
		       in, false, y);
}

int emu_f8_dx(int t, int in, int out, const float *w, const float *dy, float *dx, bool acc)
{
	return emu_abt(emu_qdq(dy, t, out, false, false), emu_qdq(w, in, out, false, true), t,
		       in, out, acc, dx);
}

int emu_f8_dw(int t, int in, int out, const float *x, const float *dy, float *dw)
{
	return emu_abt(emu_qdq(x, t, in, true, false), emu_qdq(dy, t, out, true, false), in, out,
		       t, false, dw);
}

/* emu_out stores FP32 results as BF16 bits and, for the exact mode, behind them. */
static void emu_out(const float *f, size_t n, uint16_t *bits)
{
	for (size_t i = 0; i < n; i++)
		bits[i] = bf16_from_float(f[i]);
	side_put(bits, f, n);
}

int emu_core_fwd(const struct attn_shape *s, const uint16_t *q, const uint16_t *k,
		 const uint16_t *v, uint16_t *o, float *lse, void *stream)
{
	size_t nq = (size_t)s->batch * s->seq * s->heads, nk = (size_t)s->batch * s->seq * s->kv_heads;
	float *fq = side_get(q, nq * s->d_qk), *fk = side_get(k, nk * s->d_qk);
	float *fv = side_get(v, nk * s->d_v), *fo = malloc(nq * s->d_v * sizeof(float));
	int err = attn_fwd_cpu(s, fq, fk, fv, fo, lse);
	emu_out(fo, nq * s->d_v, o);
	free(fq), free(fk), free(fv), free(fo);
	return err;
}

size_t emu_core_ws(const struct attn_shape *s)
{
	return (size_t)s->batch * s->seq * s->heads * ((size_t)s->d_qk + 1) * sizeof(float);
}

int emu_core_bwd(const struct attn_shape *s, const uint16_t *q, const uint16_t *k,
		 const uint16_t *v, const uint16_t *o, const uint16_t *dout, const float *lse,
		 uint16_t *dq, uint16_t *dk, uint16_t *dv, void *work, void *stream)
{
	size_t nq = (size_t)s->batch * s->seq * s->heads, nk = (size_t)s->batch * s->seq * s->kv_heads;
	float *f[5] = { side_get(q, nq * s->d_qk), side_get(k, nk * s->d_qk),
			side_get(v, nk * s->d_v), side_get(o, nq * s->d_v), side_get(dout, nq * s->d_v) };
	float *g[3] = { malloc(nq * s->d_qk * 4), malloc(nk * s->d_qk * 4), malloc(nk * s->d_v * 4) };
	memset(work, 0xff, emu_core_ws(s));   /* the real core's workspace is scratch */
	int err = attn_bwd_cpu(s, f[0], f[1], f[2], f[3], f[4], lse, g[0], g[1], g[2]);
	emu_out(g[0], nq * s->d_qk, dq);
	emu_out(g[1], nk * s->d_qk, dk);
	emu_out(g[2], nk * s->d_v, dv);
	for (int i = 0; i < 5; i++)
		free(f[i]);
	for (int i = 0; i < 3; i++)
		free(g[i]);
	return err;
}

/* the block file itself, on the stand-ins */
#include "net_ops_attn_cuda.c"

#include "attn_block_emu_checks.h"
