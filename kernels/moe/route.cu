/*
 * route.cu - route_cuda (route.h): DeepSeek-V3's gate on the GPU, the same output as
 * route_cpu (route.c) bit for bit.
 *
 * Shapes: logits [T, E], bias [E], topk_idx / topk_w [T, K], best first.
 * v1: one warp per token (grid-stride over tokens), ROUTE_WARPS warps per CTA, the
 *     token's biased scores and masks in shared memory. Each selection (groups, nodes,
 *     experts) is n passes of "best element ranked after the previous pick" (higher
 *     score, then lower index), each pass a strided scan plus a butterfly shuffle
 *     reduction. The order is total, so every lane ends a pass with the same pick, and
 *     the picks equal route.c's.
 * NOTE: bit-equality needs the same float operations in the same order as route.c:
 * the sigmoid is spelled with __fmul_rn / __fadd_rn / __fdiv_rn (never contracted into
 * an FMA), sums run best first on every lane, weights are (s / sum) * route_scale.
 */
#include <cuda_runtime_api.h>
#include <cublasLt.h>   /* before cuda_check.h, outside extern "C" (C++ overloads) */
#include <stdint.h>

extern "C" {
#include "cuda_check.h"
#include "route.h"
#include "status.h"
}

#define ROUTE_WARPS 4
#define ROUTE_FULL_MASK 0xffffffffu
#define ROUTE_SMEM_MAX (48 * 1024)   /* dynamic shared memory without an opt-in */

/* The constants of route.c's route_sigmoid, as the same hex literals. */
#define ROUTE_LOG2E 0x1.715476p+0f
#define ROUTE_LN2_HI 0x1.62e4p-1f
#define ROUTE_LN2_LO 0x1.7f7d1cp-20f
#define ROUTE_C7 0x1.a01a02p-13f
#define ROUTE_C6 0x1.6c16c2p-10f
#define ROUTE_C5 0x1.111112p-7f
#define ROUTE_C4 0x1.555556p-5f
#define ROUTE_C3 0x1.555556p-3f
#define ROUTE_SCORE_MAX 1e30f

/* One warp's shared memory: biased scores, group/node scores, the selection, masks. */
struct route_smem {
	float *b;                    /* [E] */
	float *unit_score;           /* [U], U = max(groups, nodes) */
	float *sel_s;                /* [K] unbiased scores of the picks */
	int *sel;                    /* [K] */
	unsigned char *keep;         /* [E] */
	unsigned char *unit_keep;    /* [U] */
};

/* A candidate: its score and index; i < 0 means none. */
struct route_pick {
	float v;
	int i;
};

/* ---- GPU kernels ---- */

/* route_sigmoid_dev is route_sigmoid (route.c), operation for operation. */
__device__ __forceinline__ float route_sigmoid_dev(float x)
{
	float t = x >= -80.0f ? (x <= 80.0f ? -x : -80.0f) : 80.0f;
	float k = __fmul_rn(t, ROUTE_LOG2E);
	int n = (int)(k >= 0.0f ? __fadd_rn(k, 0.5f) : __fsub_rn(k, 0.5f));
	float nf = (float)n;
	float r = __fsub_rn(__fsub_rn(t, __fmul_rn(nf, ROUTE_LN2_HI)), __fmul_rn(nf, ROUTE_LN2_LO));
	float p = ROUTE_C7;

	p = __fadd_rn(__fmul_rn(p, r), ROUTE_C6);
	p = __fadd_rn(__fmul_rn(p, r), ROUTE_C5);
	p = __fadd_rn(__fmul_rn(p, r), ROUTE_C4);
	p = __fadd_rn(__fmul_rn(p, r), ROUTE_C3);
	p = __fadd_rn(__fmul_rn(p, r), 0.5f);
	p = __fadd_rn(__fmul_rn(p, r), 1.0f);
	p = __fadd_rn(__fmul_rn(p, r), 1.0f);
	return __fdiv_rn(1.0f, __fadd_rn(1.0f, __fmul_rn(p, __int_as_float((n + 127) << 23))));
}

/* ranks_before says whether (v, i) ranks before (pv, pi): higher score, then lower index. */
__device__ __forceinline__ bool ranks_before(float v, int i, float pv, int pi)
{
	return v > pv || (v == pv && i < pi);
}

/* warp_best returns the best of the lanes' candidates, the same on every lane. */
__device__ __forceinline__ struct route_pick warp_best(struct route_pick p)
{
	for (int off = 16; off > 0; off /= 2) {
		struct route_pick o = { __shfl_xor_sync(ROUTE_FULL_MASK, p.v, off),
					__shfl_xor_sync(ROUTE_FULL_MASK, p.i, off) };
		if (o.i >= 0 && (p.i < 0 || ranks_before(o.v, o.i, p.v, p.i)))
			p = o;
	}
	return p;
}

/* warp_next_best is route.c's next_best: the best of v[lo, hi) (kept ones only when keep
 * is given) ranked after prev (all when prev.i < 0); i < 0 when there is none. */
__device__ struct route_pick warp_next_best(const float *v, const unsigned char *keep, int lo,
					    int hi, struct route_pick prev)
{
	struct route_pick best = { 0.0f, -1 };

	for (int i = lo + (int)(threadIdx.x % 32); i < hi; i += 32) {
		if ((keep && !keep[i]) || (prev.i >= 0 && !ranks_before(prev.v, prev.i, v[i], i)))
			continue;
		if (best.i < 0 || ranks_before(v[i], i, best.v, best.i))
			best = route_pick{ v[i], i };
	}
	return warp_best(best);
}

/* warp_top_sum is route.c's top_sum: the best-first sum of the n best kept v[lo, hi);
 * -INFINITY when none is kept. */
__device__ float warp_top_sum(const float *v, const unsigned char *keep, int lo, int hi, int n)
{
	struct route_pick p = { 0.0f, -1 };
	float sum = -INFINITY;

	for (int j = 0; j < n; j++) {
		p = warp_next_best(v, keep, lo, hi, p);
		if (p.i < 0)
			break;
		sum = j == 0 ? p.v : __fadd_rn(sum, p.v);
	}
	return sum;
}

/* warp_limit_units is route.c's limit_units: units of `size` experts scored by their top
 * n kept b; the m best are kept, the experts of the others dropped. */
__device__ void warp_limit_units(struct route_smem w, int experts, int size, int n, int m)
{
	int lane = (int)(threadIdx.x % 32), units = experts / size;
	struct route_pick p = { 0.0f, -1 };

	for (int u = 0; u < units; u++) {
		float score = warp_top_sum(w.b, w.keep, u * size, (u + 1) * size, n);
		if (lane == 0)
			w.unit_score[u] = score;
	}
	for (int u = lane; u < units; u += 32)
		w.unit_keep[u] = 0;
	__syncwarp();
	for (int j = 0; j < m; j++) {
		p = warp_next_best(w.unit_score, NULL, 0, units, p);
		if (lane == 0)
			w.unit_keep[p.i] = 1;
	}
	__syncwarp();
	for (int e = lane; e < experts; e += 32)
		w.keep[e] = w.keep[e] && w.unit_keep[e / size];
	__syncwarp();
}

/* warp_route_token routes token t (route.c's route_token, one warp). */
__device__ void warp_route_token(const struct route_config c, const float *__restrict__ logits,
				 const float *__restrict__ bias, struct route_smem w,
				 int32_t *topk_idx, float *topk_w)
{
	int lane = (int)(threadIdx.x % 32);
	struct route_pick p = { 0.0f, -1 };
	float sum = 0.0f;

	for (int e = lane; e < c.experts; e += 32) {
		float b = __fadd_rn(route_sigmoid_dev(logits[e]), bias ? bias[e] : 0.0f);
		w.b[e] = fminf(fmaxf(b, -ROUTE_SCORE_MAX), ROUTE_SCORE_MAX);
		w.keep[e] = 1;
	}
	__syncwarp();
	if (c.n_groups > 1 && c.topk_groups < c.n_groups)
		warp_limit_units(w, c.experts, c.experts / c.n_groups, 2, c.topk_groups);
	if (c.max_nodes > 0 && c.max_nodes < c.nodes)
		warp_limit_units(w, c.experts, c.experts / c.nodes, c.topk / c.max_nodes, c.max_nodes);
	for (int j = 0; j < c.topk; j++) {
		p = warp_next_best(w.b, w.keep, 0, c.experts, p);
		if (lane == 0)
			w.sel[j] = p.i;
	}
	__syncwarp();
	for (int j = lane; j < c.topk; j += 32)
		w.sel_s[j] = route_sigmoid_dev(logits[w.sel[j]]);   /* unbiased score */
	__syncwarp();
	for (int j = 0; j < c.topk; j++)   /* best first, as route.c sums */
		sum = j == 0 ? w.sel_s[j] : __fadd_rn(sum, w.sel_s[j]);
	for (int j = lane; j < c.topk; j += 32) {
		topk_idx[j] = w.sel[j];
		topk_w[j] = __fmul_rn(__fdiv_rn(w.sel_s[j], sum), c.route_scale);
	}
	__syncwarp();   /* the next token reuses the shared memory */
}

/* route_smem_bytes returns one warp's shared memory, a multiple of 16 bytes. */
__host__ __device__ static size_t route_smem_bytes(const struct route_config &c)
{
	int units = c.n_groups > c.nodes ? c.n_groups : c.nodes;
	size_t words = (size_t)c.experts + (size_t)units + 2 * (size_t)c.topk;
	size_t bytes = 4 * words + (size_t)c.experts + (size_t)units;
	return (bytes + 15) / 16 * 16;
}

/* route_smem_of carves warp `warp`'s part out of the CTA's shared memory. */
__device__ struct route_smem route_smem_of(const struct route_config &c, unsigned char *base,
					   int warp)
{
	int units = c.n_groups > c.nodes ? c.n_groups : c.nodes;
	unsigned char *p = base + (size_t)warp * route_smem_bytes(c);
	struct route_smem w;

	w.b = (float *)p;
	w.unit_score = w.b + c.experts;
	w.sel_s = w.unit_score + units;
	w.sel = (int *)(w.sel_s + c.topk);
	w.keep = (unsigned char *)(w.sel + c.topk);
	w.unit_keep = w.keep + c.experts;
	return w;
}

/* route_kernel: warp (CTA, w) routes tokens blockIdx.x * ROUTE_WARPS + w, then every
 * gridDim.x * ROUTE_WARPS-th token after it. */
__global__ void route_kernel(const struct route_config c, const float *__restrict__ logits,
			     const float *__restrict__ bias, long tokens, int32_t *topk_idx,
			     float *topk_w)
{
	extern __shared__ __align__(16) unsigned char route_shared[];
	int warp = (int)(threadIdx.x / 32);
	struct route_smem w = route_smem_of(c, route_shared, warp);

	for (long t = (long)blockIdx.x * ROUTE_WARPS + warp; t < tokens;
	     t += (long)gridDim.x * ROUTE_WARPS)
		warp_route_token(c, logits + (size_t)t * c.experts, bias, w,
				 topk_idx + (size_t)t * c.topk, topk_w + (size_t)t * c.topk);
}

/* ---- launcher ---- */

/* route_cuda: see route.h. Returns MB_OK, MB_ERR_ARG (bad configuration or buffers),
 * MB_ERR_UNSUPPORTED (a warp's scores do not fit in 48 KiB / ROUTE_WARPS of shared
 * memory: E above about 2300) or MB_ERR_CUDA. */
extern "C" int route_cuda(const struct route_config *c, const float *d_logits,
			  const float *d_bias, long tokens, int32_t *d_topk_idx, float *d_topk_w,
			  void *stream)
{
	int err = route_config_check(c, NULL, 0);
	long ctas;
	size_t smem;

	if (err)
		return err;
	if (tokens < 0 || (tokens > 0 && (!d_logits || !d_topk_idx || !d_topk_w)))
		return MB_ERR_ARG;
	smem = ROUTE_WARPS * route_smem_bytes(*c);
	if (smem > ROUTE_SMEM_MAX)
		return MB_ERR_UNSUPPORTED;
	if (tokens == 0)
		return MB_OK;
	/* NOTE: 64K CTAs of 4 warps cover 256K tokens per sweep, enough to fill any GPU */
	ctas = (tokens + ROUTE_WARPS - 1) / ROUTE_WARPS;
	ctas = ctas < 65536 ? ctas : 65536;
	route_kernel<<<(unsigned)ctas, ROUTE_WARPS * 32, smem, (cudaStream_t)stream>>>(
		*c, d_logits, d_bias, tokens, d_topk_idx, d_topk_w);
	return MB_CUDA_CHECK(cudaGetLastError());
}
