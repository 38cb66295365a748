/*
 * net_ops_fp8_cuda.c - the CUDA op table's linear layers under fp8 (net_ops.h's low
 * layers; the others stay FP32 or BF16 as on the CPU): DeepSeek-V3 3.3's recipe as the
 * CPU table emulates it (net_ops.c), on cuBLASLt's block scaling. Every GEMM is taken in
 * the "TN" form FP8 needs, D [M, N] = A [M, K] B [N, K]^T, both operands K-major:
 *   Fprop  y [T, out]    A = x [T, in] (1x128)      B = W [out, in] (128x128)
 *   Dgrad  dx [T, in]    A = dy [T, out] (1x128)    B = W^T [in, out] (128x128)
 *   Wgrad  dW [out, in] += A = dy^T [out, T] (1x128) B = x^T [in, T] (1x128)
 * Each operand is copied (transposed where the form needs it) into rows padded with zeros
 * to K a multiple of 16 (fp8_layout.h: the codes and scales are the unpadded ones'), and
 * A's rows to a multiple of 4 (D then through a scratch of those rows): cuBLASLt reads a
 * 1x128 operand's scales with its rows outermost, and with those a multiple of 4 the
 * layout is the same whether it pads that stride to 16 bytes or not (Transformer
 * Engine pads it); Wgrad's x^T (1x128 too) pads N the same way,
 * quantized to E4M3 by fp8_quantize_cuda (bit-equal to fp8.c, the CPU table's), its
 * scales put in cuBLASLt's order, and the GEMM accumulates in FP32 with the partial sums
 * promoted (no fast accumulation) into an FP32 D (beta 1 where the entry adds).
 * The attention blocks' projections (net_ops_attn_cuda.c) keep their weights [in, out]:
 * the _io entries are the same three GEMMs with W's transposition swapped (Fprop then
 * copies W transposed into K-major rows, Dgrad takes it as it is: one transposing copy
 * of W per layer, as in the [out, in] form; a 128x128 block of W is one of W^T, so its
 * scales are the same) and dW [in, out] = x^T dy, overwritten.
 * quant_act / quant_weight give the round trip (codes times scales) the attention blocks
 * consume, as the CPU table's qdq does.
 *
 * Buffers are sized at open for the step's largest linear operand (net_cuda_fp8_reserve,
 * the table's max_linear with the padding), so no step allocates; an operand past that
 * (an attention projection wider than the FFN's) grows them in the first step, which the
 * driver does not time. Plans are kept per shape; a buffer that moves drops them all
 * (their scale pointers are baked in).
 * NOTE: compiled for sm_90a but not yet run on a GPU: whether cuBLASLt takes 1x128 x
 * 1x128 (Wgrad) and an FP32 D with block scaling on the H200 is what gpu-check.sh
 * PHASE=table answers first.
 */
#include <stdbool.h>
#include <string.h>

#include "cuda_check.h"
#include "fp8.h"
#include "fp8_layout.h"
#include "gemm_cuda.h"
#include "net_ops_cuda.h"
#include "status.h"

#define F8_PLANS 128

/* One operand's buffers: padded FP32, codes, fp8_quantize's scales, cuBLASLt's order. */
struct f8_operand {
	float *pad, *scale, *lay;
	uint8_t *q;
	size_t pad_b, q_b, scale_b, lay_b;
};

static struct {
	struct f8_operand a, b;
	float *d;                 /* D of padded rows or columns (M or N not a multiple of 4) */
	size_t d_b;
	struct { int key[6]; struct mb_lt_plan p; } plans[F8_PLANS];
	int next;
} f8;

static void f8_plans_drop(void)
{
	for (int i = 0; i < F8_PLANS; i++) {
		mb_lt_plan_free(&f8.plans[i].p);
		memset(&f8.plans[i], 0, sizeof(f8.plans[i]));
	}
	f8.next = 0;
}

/* f8_grow makes *p at least need bytes (the plans dropped when it moves). */
static int f8_grow(void **p, size_t *have, size_t need)
{
	if (need <= *have)
		return MB_OK;
	f8_plans_drop();
	/* NOTE: the stream may still read the old buffer: wait before freeing it */
	int err = MB_CUDA_CHECK(cudaStreamSynchronize(net_cuda.stream));
	if (*p)
		cudaFree(*p);
	*p = NULL;
	*have = 0;
	err = err ? err : MB_CUDA_CHECK(cudaMalloc(p, need));
	*have = err ? 0 : need;
	return err;
}

/* f8_prepare quantizes x [rows, cols] (trans: x^T) as a K-major operand of K padded to
 * *ld (a multiple of 16) in o, 128x128 blocks when blk, else 1x128 tiles with the rows
 * padded to a multiple of 4; *yr: its rows, padded. */
static int f8_prepare(struct f8_operand *o, const float *x, int rows, int cols, bool trans,
		      bool blk, int *yr, int *ld)
{
	int r0 = trans ? cols : rows, w = trans ? rows : cols, L = (w + 15) / 16 * 16;
	int r = blk ? r0 : (r0 + 3) / 4 * 4;
	int tr = blk ? FP8_TILE : 1, sr = (r + tr - 1) / tr, sc = (L + FP8_TILE - 1) / FP8_TILE;
	size_t n = (size_t)r * (size_t)L, lay = (size_t)sr * (size_t)(blk ? (sc + 3) / 4 * 4 : sc);
	bool copy = trans || L != w || r != r0;
	*yr = r;
	*ld = L;
	int err = copy ? f8_grow((void **)&o->pad, &o->pad_b, n * sizeof(float)) : MB_OK;
	err = err ? err : f8_grow((void **)&o->q, &o->q_b, n);
	err = err ? err : f8_grow((void **)&o->scale, &o->scale_b, (size_t)sr * sc * sizeof(float));
	err = err ? err : f8_grow((void **)&o->lay, &o->lay_b, lay * sizeof(float));
	if (!err && copy)
		err = fp8lay_pad_cuda(rows, cols, x, trans, r, L, o->pad, net_cuda.stream);
	if (!err)
		err = fp8_quantize_cuda(copy ? o->pad : x, r, L, FP8_E4M3,
					blk ? FP8_PER_128X128 : FP8_PER_1X128, false, o->q, o->scale,
					net_cuda.stream);
	return err ? err : fp8lay_scales_cuda(sr, sc, o->scale, !blk, o->lay, net_cuda.stream);
}

/* f8_plan returns the kept plan of D [m, n] = A B^T (k, B blocked or not), made on first
 * use; NULL (error kept) on failure. */
static const struct mb_lt_plan *f8_plan(int m, int n, int k, bool blk)
{
	int key[6] = { 1, m, n, k, blk, 0 };
	for (int i = 0; i < F8_PLANS; i++)
		if (!memcmp(f8.plans[i].key, key, sizeof(key)))
			return &f8.plans[i].p;
	struct mb_lt_plan *p = &f8.plans[f8.next].p;
	mb_lt_plan_free(p);
	memset(&f8.plans[f8.next], 0, sizeof(f8.plans[f8.next]));
	struct mb_lt_spec s = {
		.a = { CUDA_R_8F_E4M3, (uint64_t)k, (uint64_t)n, k, CUBLAS_OP_T, f8.b.lay,
		       blk ? CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F
			   : CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F },
		.b = { CUDA_R_8F_E4M3, (uint64_t)k, (uint64_t)m, k, CUBLAS_OP_N, f8.a.lay,
		       CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F },
		.c = { CUDA_R_32F, (uint64_t)n, (uint64_t)m, n, CUBLAS_OP_N, NULL, 0 },
		.accum = MB_LT_ACCUM_PROMOTED,
		.workspace_bytes = NET_CUDA_LT_BYTES, .what = "net fp8 block-scaled linear",
		.m = m, .n = n, .k = k,
	};
	if (net_cuda_fail(mb_lt_plan_make(p, net_cuda.lt, &s))) {
		mb_lt_plan_free(p);
		memset(p, 0, sizeof(*p));
		return NULL;
	}
	memcpy(f8.plans[f8.next].key, key, sizeof(key));
	f8.next = (f8.next + 1) % F8_PLANS;
	return p;
}

/* f8_gemm: D [M, N] (+)= A [M, K] B [N, K]^T from x_a [ar, ac] (ta: transposed) and x_b
 * [br, bc] (tb), B's scales 128x128 when blk. A NOTE on the padded D: its rows and
 * columns past M and N hold products of zero rows, never read. */
static int f8_gemm(const float *x_a, int ar, int ac, bool ta, const float *x_b, int br, int bc,
		   bool tb, bool blk, float *d, bool acc)
{
	int m, n, k, k2;
	int M = ta ? ac : ar, N = tb ? bc : br;
	const float one = 1.0f, beta = acc ? 1.0f : 0.0f;
	if (M == 0 || N == 0)
		return MB_OK;
	if ((ta ? ar : ac) == 0)   /* K = 0: D = 0, or kept when adding */
		return acc ? MB_OK : MB_CUDA_CHECK(cudaMemsetAsync(d, 0, (size_t)M * N * sizeof(float),
								     net_cuda.stream));
	int err = f8_prepare(&f8.a, x_a, ar, ac, ta, false, &m, &k);
	err = err ? err : f8_prepare(&f8.b, x_b, br, bc, tb, blk, &n, &k2);
	if (err || k != k2)
		return err ? err : MB_ERR_ARG;
	/* M or N padded: D [m, n] is a scratch whose first M rows and N columns are d's */
	float *dd = m == M && n == N ? d : NULL;
	size_t w = (size_t)N * sizeof(float), ldd = (size_t)n * sizeof(float);
	if (!dd && !(err = f8_grow((void **)&f8.d, &f8.d_b, (size_t)m * ldd)))
		dd = f8.d;
	if (!err && dd != d && acc)
		err = MB_CUDA_CHECK(cudaMemcpy2DAsync(dd, ldd, d, w, w, (size_t)M,
						      cudaMemcpyDeviceToDevice, net_cuda.stream));
	const struct mb_lt_plan *p = err ? NULL : f8_plan(m, n, k, blk);
	if (!p)
		return err ? err : MB_ERR_UNSUPPORTED;
	err = mb_lt_plan_run(net_cuda.lt, p, &one, f8.b.q, f8.a.q, &beta, dd, net_cuda.lt_ws,
			     net_cuda.stream);
	if (!err && dd != d)
		err = MB_CUDA_CHECK(cudaMemcpy2DAsync(d, w, dd, ldd, w, (size_t)M,
						      cudaMemcpyDeviceToDevice, net_cuda.stream));
	return err;
}

int net_cuda_fp8_fwd(int t, int in, int out, const float *x, const float *w, float *y)
{
	return f8_gemm(x, t, in, false, w, out, in, false, true, y, false);
}

int net_cuda_fp8_dx(int t, int in, int out, const float *w, const float *dy, float *dx, bool acc)
{
	return f8_gemm(dy, t, out, false, w, out, in, true, true, dx, acc);
}

int net_cuda_fp8_dw(int t, int in, int out, const float *x, const float *dy, float *dw)
{
	return f8_gemm(dy, t, out, true, x, t, in, true, false, dw, true);
}

/* the attention blocks' forms (W [in, out]): Fprop B = (W [in, out])^T, Dgrad B = W as
 * it is, Wgrad A = x^T and B = dy^T (dW [in, out], overwritten) */
int net_cuda_fp8_fwd_io(int t, int in, int out, const float *x, const float *w, float *y)
{
	return f8_gemm(x, t, in, false, w, in, out, true, true, y, false);
}

int net_cuda_fp8_dx_io(int t, int in, int out, const float *w, const float *dy, float *dx,
		       bool acc)
{
	return f8_gemm(dy, t, out, false, w, in, out, false, true, dx, acc);
}

int net_cuda_fp8_dw_io(int t, int in, int out, const float *x, const float *dy, float *dw)
{
	return f8_gemm(x, t, in, true, dy, t, out, true, false, dw, false);
}

/* net_cuda_fp8_qdq: y = the E4M3 round trip of x [rows, cols] (128x128 blocks when blk,
 * else 1x128 tiles), through operand a's buffers. */
int net_cuda_fp8_qdq(const float *x, int rows, int cols, bool blk, float *y)
{
	int tr = blk ? FP8_TILE : 1, sr = (rows + tr - 1) / tr, sc = (cols + FP8_TILE - 1) / FP8_TILE;
	if ((long)rows * cols == 0)
		return MB_OK;
	int err = f8_grow((void **)&f8.a.q, &f8.a.q_b, (size_t)rows * (size_t)cols);
	err = err ? err : f8_grow((void **)&f8.a.scale, &f8.a.scale_b, (size_t)sr * sc * sizeof(float));
	err = err ? err : fp8_quantize_cuda(x, rows, cols, FP8_E4M3,
					    blk ? FP8_PER_128X128 : FP8_PER_1X128, false, f8.a.q,
					    f8.a.scale, net_cuda.stream);
	return err ? err : fp8lay_dequant_cuda(rows, cols, f8.a.q, f8.a.scale, tr, y, net_cuda.stream);
}

int net_cuda_fp8_reserve(size_t elems, size_t rows)
{
	/* 1x128 scales: a row's ceil(L / 128) <= L / 128 + 1; 128x128 ones fewer; cuBLASLt's
	 * order pads the blocks' columns to 4 */
	size_t sc = elems / 128 + 4 * (rows + 4) + 4096, n = elems + 16 * (rows + 4) + 4096;
	struct f8_operand *o[2] = { &f8.a, &f8.b };
	int err = MB_OK;
	for (int i = 0; i < 2 && !err; i++) {
		err = f8_grow((void **)&o[i]->pad, &o[i]->pad_b, n * sizeof(float));
		err = err ? err : f8_grow((void **)&o[i]->q, &o[i]->q_b, n);
		err = err ? err : f8_grow((void **)&o[i]->scale, &o[i]->scale_b, sc * sizeof(float));
		err = err ? err : f8_grow((void **)&o[i]->lay, &o[i]->lay_b, sc * sizeof(float));
	}
	return err ? err : f8_grow((void **)&f8.d, &f8.d_b, n * sizeof(float));
}

void net_cuda_fp8_free(void)
{
	struct f8_operand *o[2] = { &f8.a, &f8.b };
	f8_plans_drop();
	for (int i = 0; i < 2; i++) {
		cudaFree(o[i]->pad);
		cudaFree(o[i]->q);
		cudaFree(o[i]->scale);
		cudaFree(o[i]->lay);
	}
	cudaFree(f8.d);
	memset(&f8, 0, sizeof(f8));
}
