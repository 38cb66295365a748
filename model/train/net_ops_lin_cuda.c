/*
 * net_ops_lin_cuda.c - the CUDA op table's linear layers and quantisation (net_ops.h):
 * cuBLASLt GEMMs on the table's stream, plans made once per shape and kept.
 *
 * Row-major to cuBLASLt's column-major (a row-major [r, c] matrix is a column-major
 * [c, r] one, ld c), with W [out, in], x [T, in], y and dy [T, out]:
 *   Fprop  y^T [out, T]  = (W as [in, out])^T  x^T [in, T]          A = W (op T), B = x
 *   Dgrad  dx^T [in, T]  = (W as [in, out])    dy^T [out, T]        A = W (op N), B = dy
 *   Wgrad  dW^T [in, out] += x^T [in, T]      (dy^T [out, T])^T     A = x (op N), B = dy (op T)
 * FP32: FP32 operands, CUBLAS_COMPUTE_32F (no TF32). BF16 (low layers under bf16): each
 * operand rounded to BF16 into the context's buffers first, FP32 output and
 * accumulation, as the CPU emulates it. FP8 (low layers under fp8): net_ops_fp8_cuda.c.
 */
#include <stdbool.h>
#include <string.h>

#include "cuda_check.h"
#include "net_ops_cuda.h"
#include "netops.h"
#include "status.h"

/* lin_plan returns the kept plan of this GEMM, made on first use (NULL on failure).
 * NOTE: the experts' row counts change every step, so their shapes do not repeat: when
 * every slot is taken the oldest made is freed and remade (a plan is host state that
 * cublasLtMatmul has read by the time it returns, so one in flight is not disturbed). */
static const struct mb_lt_plan *lin_plan(cudaDataType_t ab, int m, int n, int k,
					 const struct mb_lt_matrix *a,
					 const struct mb_lt_matrix *b, int ldc)
{
	int key[8] = { (int)ab + 1, m, n, k, (int)a->op, (int)b->op, (int)a->ld, ldc };
	struct net_cuda_plan *free_slot = NULL;
	for (int i = 0; i < NET_CUDA_PLANS; i++) {
		struct net_cuda_plan *p = &net_cuda.plans[i];
		if (p->key[0] == 0) {
			free_slot = free_slot ? free_slot : p;
			continue;
		}
		if (!memcmp(p->key, key, sizeof(key)))
			return &p->p;
	}
	if (!free_slot) {
		free_slot = &net_cuda.plans[net_cuda.next_plan];
		net_cuda.next_plan = (net_cuda.next_plan + 1) % NET_CUDA_PLANS;
		mb_lt_plan_free(&free_slot->p);
		memset(free_slot->key, 0, sizeof(free_slot->key));
	}
	struct mb_lt_spec s = { .a = *a, .b = *b, .c = { CUDA_R_32F, (uint64_t)m, (uint64_t)n, ldc,
							 CUBLAS_OP_N, NULL, 0 },
				.workspace_bytes = NET_CUDA_LT_BYTES, .what = "net linear",
				.m = m, .n = n, .k = k };
	if (net_cuda_fail(mb_lt_plan_make(&free_slot->p, net_cuda.lt, &s))) {
		mb_lt_plan_free(&free_slot->p);
		return NULL;
	}
	memcpy(free_slot->key, key, sizeof(key));
	return &free_slot->p;
}

/* lin_gemm runs C [m, n] (column-major, ld ldc) = A B (+ C when acc). */
static void lin_gemm(cudaDataType_t ab, int m, int n, int k, struct mb_lt_matrix a,
		     const void *pa, struct mb_lt_matrix b, const void *pb, int ldc, float *c,
		     bool acc)
{
	const float one = 1.0f, beta = acc ? 1.0f : 0.0f;
	if (m == 0 || n == 0)
		return;
	if (k == 0) {
		if (!acc)
			net_cuda_fail(MB_CUDA_CHECK(cudaMemsetAsync(c, 0, (size_t)m * n * sizeof(float),
								      net_cuda.stream)));
		return;
	}
	a.type = b.type = ab;
	const struct mb_lt_plan *p = lin_plan(ab, m, n, k, &a, &b, ldc);
	if (p)
		net_cuda_fail(mb_lt_plan_run(net_cuda.lt, p, &one, pa, pb, &beta, c, net_cuda.lt_ws,
					     net_cuda.stream));
}

/* lin_operand returns the operand x [n] as the GEMM takes it: itself (FP32) or its BF16
 * copy in buf; NULL (an error kept) under fp8 or when n exceeds the buffers. */
static const void *lin_operand(enum net_precision p, bool low, const float *x, long n,
			       uint16_t *buf, cudaDataType_t *type)
{
	*type = CUDA_R_32F;
	if (!low || p == NET_FP32)
		return x;
	if (p != NET_BF16 || n > net_cuda.z.max_linear) {
		net_cuda_fail(MB_ERR_UNSUPPORTED);
		return NULL;
	}
	*type = CUDA_R_16BF;
	return net_cuda_fail(netop_round_bf16_cuda(x, n, NULL, buf, net_cuda.stream)) ? NULL : buf;
}

void net_cuda_linear_fwd(enum net_precision p, bool low, int t, int in, int out,
			 const float *x, const float *w, float *y)
{
	cudaDataType_t ty;
	if (p == NET_FP8 && low) {
		net_cuda_fail(net_cuda_fp8_fwd(t, in, out, x, w, y));
		return;
	}
	const void *xa = lin_operand(p, low, x, (long)t * in, net_cuda.bf_a, &ty);
	const void *wb = lin_operand(p, low, w, (long)out * in, net_cuda.bf_b, &ty);
	if (!xa || !wb)
		return;
	struct mb_lt_matrix a = { ty, (uint64_t)in, (uint64_t)out, in, CUBLAS_OP_T, NULL, 0 };
	struct mb_lt_matrix b = { ty, (uint64_t)in, (uint64_t)t, in, CUBLAS_OP_N, NULL, 0 };
	lin_gemm(ty, out, t, in, a, wb, b, xa, out, y, false);
}

void net_cuda_linear_bwd_dx(enum net_precision p, bool low, int t, int in, int out,
			    const float *w, const float *dy, float *dx, bool acc)
{
	cudaDataType_t ty;
	if (p == NET_FP8 && low) {
		net_cuda_fail(net_cuda_fp8_dx(t, in, out, w, dy, dx, acc));
		return;
	}
	const void *wa = lin_operand(p, low, w, (long)out * in, net_cuda.bf_b, &ty);
	const void *dyb = lin_operand(p, low, dy, (long)t * out, net_cuda.bf_c, &ty);
	if (!wa || !dyb)
		return;
	struct mb_lt_matrix a = { ty, (uint64_t)in, (uint64_t)out, in, CUBLAS_OP_N, NULL, 0 };
	struct mb_lt_matrix b = { ty, (uint64_t)out, (uint64_t)t, out, CUBLAS_OP_N, NULL, 0 };
	lin_gemm(ty, in, t, out, a, wa, b, dyb, in, dx, acc);
}

void net_cuda_linear_bwd_dw(enum net_precision p, bool low, int t, int in, int out,
			    const float *x, const float *dy, float *dw)
{
	cudaDataType_t ty;
	if (p == NET_FP8 && low) {
		net_cuda_fail(net_cuda_fp8_dw(t, in, out, x, dy, dw));
		return;
	}
	const void *xa = lin_operand(p, low, x, (long)t * in, net_cuda.bf_a, &ty);
	const void *dyb = lin_operand(p, low, dy, (long)t * out, net_cuda.bf_c, &ty);
	if (!xa || !dyb)
		return;
	struct mb_lt_matrix a = { ty, (uint64_t)in, (uint64_t)t, in, CUBLAS_OP_N, NULL, 0 };
	struct mb_lt_matrix b = { ty, (uint64_t)out, (uint64_t)t, out, CUBLAS_OP_T, NULL, 0 };
	lin_gemm(ty, in, out, t, a, xa, b, dyb, in, dw, true);
}

void net_cuda_linear_bwd(enum net_precision p, bool low, int t, int in, int out,
			 const float *x, const float *w, const float *dy, float *dx, bool acc,
			 float *dw)
{
	net_cuda_linear_bwd_dw(p, low, t, in, out, x, dy, dw);
	net_cuda_linear_bwd_dx(p, low, t, in, out, w, dy, dx, acc);
}

/* quant: a copy under fp32, BF16 rounding under bf16, the E4M3 round trip under fp8
 * (activations 1x128 tiles, weights 128x128 blocks: net_ops_fp8_cuda.c). */
void net_cuda_quant_act(enum net_precision p, int t, int n, const float *x, float *y)
{
	size_t count = (size_t)t * n;
	if (p == NET_FP32)
		net_cuda_fail(MB_CUDA_CHECK(cudaMemcpyAsync(y, x, count * sizeof(float),
							    cudaMemcpyDeviceToDevice, net_cuda.stream)));
	else if (p == NET_BF16)
		net_cuda_fail(netop_round_bf16_cuda(x, (long)count, y, NULL, net_cuda.stream));
	else
		net_cuda_fail(net_cuda_fp8_qdq(x, t, n, false, y));
}

void net_cuda_quant_weight(enum net_precision p, int rows, int cols, const float *w, float *y)
{
	if (p == NET_FP8)
		net_cuda_fail(net_cuda_fp8_qdq(w, rows, cols, true, y));
	else
		net_cuda_quant_act(p, rows, cols, w, y);
}

void net_cuda_plans_free(void)
{
	net_cuda_fp8_free();
	for (int i = 0; i < NET_CUDA_PLANS; i++) {
		mb_lt_plan_free(&net_cuda.plans[i].p);
		memset(net_cuda.plans[i].key, 0, sizeof(net_cuda.plans[i].key));
	}
}

/* net_cuda_gemm is lin_gemm for the attention blocks (net_ops_attn_cuda.c), whose
 * weights are [in, out]: the same kept plans, stream and workspace. */
void net_cuda_gemm(cudaDataType_t ab, int m, int n, int k, struct mb_lt_matrix a,
		   const void *pa, struct mb_lt_matrix b, const void *pb, int ldc, float *c,
		   bool acc)
{
	lin_gemm(ab, m, n, k, a, pa, b, pb, ldc, c, acc);
}
