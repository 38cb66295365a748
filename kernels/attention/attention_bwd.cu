/*
 * attention_bwd.cu - attn_bwd_cuda and attn_bwd_cuda_workspace (attention.h): the
 * flash-style attention backward on BF16 tensor cores, written from the
 * FlashAttention-2 backward (Dao, 2023, arXiv:2307.08691, Algorithm 2): the
 * probabilities are recomputed from the saved log-sum-exp instead of stored, key tiles
 * are the outer loop (dK, dV stay in registers), query tiles the inner one, and dQ is
 * accumulated across key tiles with FP32 atomics.
 *
 * With S = scale Q K^T, P = softmax(S), O = P V and dO given:
 *   dV = P^T dO,  dP = dO V^T,  dS = P o (dP - D) with D = rowsum(dO o O),
 *   dQ = scale dS K,  dK = scale dS^T Q.
 *
 *   v1: three launches after zeroing the FP32 dQ workspace:
 *     1. delta: D per (batch, head, query), one warp per row of dO and O.
 *     2. main: one CTA of 4 warps per (64-key tile, batch, kv head); each warp owns 16
 *        keys. K and V tiles stay in shared memory; for every query head of the kv
 *        group (GQA: the group's dK, dV summed in registers, no atomics) and every
 *        32-query tile that sees the keys (causal: from the diagonal on), Q and dO are
 *        copied in (cp.async), then by mma.sync m16n8k16 BF16 (ldmatrix fragments):
 *        S^T = K Q^T -> P^T (from lse), dV += P^T dO, dP^T = V dO^T, dS^T,
 *        dK += dS^T Q (P^T and dS^T reused from registers as A operands); dS goes to
 *        shared memory, and dQ = dS K is added to the workspace with atomicAdd, one
 *        16x16 piece at a time per warp.
 *     3. convert: the workspace dQ to BF16.
 *   Head dims: any d_qk, d_v that are multiples of 16 up to 256, with the forward's
 *   instantiations (attention.cu): exact 192/128, 96/64, 48/32, square tiles of 64,
 *   128, 192, 256 for the rest; zero columns past a head dim add nothing to S, dP, dK
 *   or dV, and are neither stored nor added to dQ.
 */
#include "attention_cuda.cuh"

#define BWD_BN 64           /* keys per CTA: 4 warps x 16 */
#define BWD_BM 32           /* queries per inner step */
#define BWD_THREADS 128

struct bwd_params {
	const bf16 *q, *k, *v, *dout;
	const float *lse, *delta;   /* [B, H, S] */
	float *dq;                  /* [B, S, H, d_qk] FP32 workspace */
	bf16 *dk, *dv;
	int seq, heads, kv_heads;
	float scale, scale_log2;
	int causal;
	int dim_qk, dim_v;          /* the head dims: <= the tile widths DQK, DV */
};

/* ---- GPU kernels ---- */

/* attn_delta_kernel sets delta[b, h, i] = sum over d_v of dO * O for row (b, i, h):
 * one warp per row, 4 rows per CTA of 128 threads. */
__global__ void attn_delta_kernel(const bf16 *__restrict__ o, const bf16 *__restrict__ dout,
				  float *delta, long rows, int seq, int heads, int dv)
{
	const long r = (long)blockIdx.x * 4 + threadIdx.x / 32;
	const int lane = threadIdx.x % 32;
	if (r >= rows)
		return;
	float acc = 0.f;
	for (int c = lane; c < dv; c += 32)
		acc += __bfloat162float(o[r * dv + c]) * __bfloat162float(dout[r * dv + c]);
	for (int off = 16; off > 0; off /= 2)
		acc += __shfl_xor_sync(0xffffffffu, acc, off);
	/* row r is (b, i, h) of [B, S, H]; delta is [B, H, S] like lse */
	const long b = r / ((long)seq * heads);
	const int i = (int)(r / heads % seq), h = (int)(r % heads);
	if (lane == 0)
		delta[(b * heads + h) * seq + i] = acc;
}

/* attn_dq_convert_kernel rounds the FP32 dQ workspace to BF16. */
__global__ void attn_dq_convert_kernel(const float *__restrict__ acc, bf16 *dq, long n)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x)
		dq[i] = __float2bfloat16_rn(acc[i]);
}

/* bwd_probs turns the warp's S^T fragments (16 keys x 32 queries) into P^T =
 * exp(scale s - lse), zero where the query does not see the key or lies past S.
 * slse holds lse * log2(e) of the tile's queries. */
__device__ __forceinline__ void bwd_probs(float st[BWD_BM / 8][4], const float *slse,
					  int key_row, int q0, int lane, const bwd_params &p)
{
#pragma unroll
	for (int j = 0; j < BWD_BM / 8; j++)
#pragma unroll
		for (int i = 0; i < 4; i++) {
			int ql = j * 8 + att_c_col(lane, i), key = key_row + 8 * (i / 2);
			st[j][i] = att_visible(q0 + ql, key, p.seq, p.causal)
				   ? exp2f(st[j][i] * p.scale_log2 - slse[ql]) : 0.f;
		}
}

/* bwd_dsoft turns dP^T into dS^T = P^T o (dP^T - D) in place and stores dS (query
 * major, BF16) into sds [32][64+8] for the dQ product. */
__device__ __forceinline__ void bwd_dsoft(float dpt[BWD_BM / 8][4], const float pt[BWD_BM / 8][4],
					  const float *sdelta, bf16 *sds, int warp, int lane)
{
#pragma unroll
	for (int j = 0; j < BWD_BM / 8; j++)
#pragma unroll
		for (int i = 0; i < 4; i++) {
			int ql = j * 8 + att_c_col(lane, i);
			dpt[j][i] = pt[j][i] * (dpt[j][i] - sdelta[ql]);
			sds[ql * (BWD_BN + ATT_PAD) + warp * 16 + att_c_row(lane, i)] =
				__float2bfloat16_rn(dpt[j][i]);
		}
}

/* bwd_dq adds scale * dS K for the tile's 32 queries to the FP32 dQ rows dq (row i at
 * dq + i * qstride): warp w takes query rows 16 (w % 2).. and the 16-column pieces
 * w / 2, w / 2 + 2, ...; dS from sds, K from sk (k-major for this product). */
template <int DQK>
__device__ __forceinline__ void bwd_dq(const bf16 *sds, const bf16 *sk, float *dq, long qstride,
				       int q0, int seq, float scale, int dqk, int warp, int lane)
{
	const int rt = (warp % 2) * 16;
	uint32_t a[BWD_BN / 16][4], b[2][2];
#pragma unroll
	for (int kk = 0; kk < BWD_BN / 16; kk++)
		att_load_a(a[kk], sds, BWD_BN + ATT_PAD, rt, kk * 16, lane);
	for (int np = warp / 2; np < dqk / 16; np += 2) {   /* dqk <= DQK, a multiple of 16 */
		float c[2][4] = {};
#pragma unroll
		for (int kk = 0; kk < BWD_BN / 16; kk++) {
			att_load_b_kn2(b, sk, DQK + ATT_PAD, kk * 16, np * 16, lane);
			att_mma(c[0], a[kk], b[0][0], b[0][1]);
			att_mma(c[1], a[kk], b[1][0], b[1][1]);
		}
#pragma unroll
		for (int t = 0; t < 2; t++)
#pragma unroll
			for (int i = 0; i < 4; i++) {
				int row = q0 + rt + att_c_row(lane, i);
				if (row < seq)
					atomicAdd(dq + row * qstride + np * 16 + t * 8 + att_c_col(lane, i),
						  c[t][i] * scale);
			}
	}
}

/* bwd_store writes the warp's 16 rows of a key-tile gradient (times mul), columns below
 * d, as BF16 to rows key_row, key_row + 8 of out (row i at out + i * stride). */
template <int D>
__device__ __forceinline__ void bwd_store(const float acc[D / 8][4], float mul, bf16 *out,
					  long stride, int key_row, int seq, int d, int lane)
{
#pragma unroll
	for (int r = 0; r < 2; r++) {
		int row = key_row + 8 * r;
		if (row >= seq)
			continue;
#pragma unroll
		for (int n = 0; n < D / 8 && n * 8 < d; n++)
			*reinterpret_cast<__nv_bfloat162 *>(out + row * stride + n * 8 +
							    att_c_col(lane, 0)) =
				__floats2bfloat162_rn(acc[n][2 * r] * mul, acc[n][2 * r + 1] * mul);
	}
}

/* The shared tiles of the main kernel (BF16 unless said): K [64][DQK+8], V [64][DV+8],
 * Q [32][DQK+8], dO [32][DV+8], dS [32][64+8], lse and delta [32] FP32. */
template <int DQK, int DV>
struct bwd_smem {
	static constexpr int K = 0, V = K + BWD_BN * (DQK + ATT_PAD),
		Q = V + BWD_BN * (DV + ATT_PAD), DO = Q + BWD_BM * (DQK + ATT_PAD),
		DS = DO + BWD_BM * (DV + ATT_PAD), END = DS + BWD_BM * (BWD_BN + ATT_PAD);
	static constexpr size_t BYTES = END * sizeof(bf16) + 2 * BWD_BM * sizeof(float);
};

/* bwd_load_queries copies query tile q0 of head h (Q, dO, lse * log2 e, delta) into
 * shared memory; rows past S are zeros. */
template <int DQK, int DV>
__device__ __forceinline__ void bwd_load_queries(bf16 *sm, float *slse, float *sdelta,
						 const bwd_params &p, int b, int h, int q0, int tid)
{
	typedef bwd_smem<DQK, DV> L;
	const long qs = (long)p.heads * p.dim_qk, os = (long)p.heads * p.dim_v;
	const long row0 = (long)b * p.seq * p.heads + h;
	const int nq = min(BWD_BM, p.seq - q0);
	att_load_rows<DQK>(sm + L::Q, p.q + row0 * p.dim_qk + q0 * qs, qs, BWD_BM, nq, tid,
			   BWD_THREADS, p.dim_qk);
	att_load_rows<DV>(sm + L::DO, p.dout + row0 * p.dim_v + q0 * os, os, BWD_BM, nq, tid,
			  BWD_THREADS, p.dim_v);
	if (tid < BWD_BM) {
		const long at = ((long)b * p.heads + h) * p.seq + q0 + tid;
		slse[tid] = tid < nq ? p.lse[at] * ATT_LOG2E : 0.f;
		sdelta[tid] = tid < nq ? p.delta[at] : 0.f;
	}
}

/* attn_bwd_kernel: CTA (x, y) owns key tile x of batch y / G, kv head y % G (see the
 * file header for the loop). */
template <int DQK, int DV>
__global__ void __launch_bounds__(BWD_THREADS, 1) attn_bwd_kernel(bwd_params p)
{
	typedef bwd_smem<DQK, DV> L;
	extern __shared__ __align__(16) unsigned char smem[];
	bf16 *sm = reinterpret_cast<bf16 *>(smem);
	float *slse = reinterpret_cast<float *>(sm + L::END), *sdelta = slse + BWD_BM;
	const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
	const int k0 = blockIdx.x * BWD_BN, nk = min(BWD_BN, p.seq - k0);
	const int b = blockIdx.y / p.kv_heads, g = blockIdx.y % p.kv_heads;
	const int group = p.heads / p.kv_heads, key_row = k0 + warp * 16 + lane / 4;
	const long ks = (long)p.kv_heads * p.dim_qk, vs = (long)p.kv_heads * p.dim_v;
	const long kv0 = (long)b * p.seq * p.kv_heads + g;
	float dk[DQK / 8][4] = {}, dv[DV / 8][4] = {}, pt[BWD_BM / 8][4], dpt[BWD_BM / 8][4];

	att_load_rows<DQK>(sm + L::K, p.k + kv0 * p.dim_qk + k0 * ks, ks, BWD_BN, nk, tid,
			   BWD_THREADS, p.dim_qk);
	att_load_rows<DV>(sm + L::V, p.v + kv0 * p.dim_v + k0 * vs, vs, BWD_BN, nk, tid,
			  BWD_THREADS, p.dim_v);
	for (int h = g * group; h < (g + 1) * group; h++) {
		float *dq = p.dq + ((long)b * p.seq * p.heads + h) * p.dim_qk;
		for (int qt = att_bwd_first_query_tile(k0, BWD_BM, p.causal);
		     qt < att_cdiv(p.seq, BWD_BM); qt++) {
			const int q0 = qt * BWD_BM;
			__syncthreads();   /* the previous step's Q, dO, dS are no longer read */
			bwd_load_queries<DQK, DV>(sm, slse, sdelta, p, b, h, q0, tid);
			att_cp_wait_all();   /* K and V too, the first time */
			__syncthreads();
			att_scores<DQK, BWD_BM / 8>(pt, sm + L::K, warp * 16, sm + L::Q, lane);
			bwd_probs(pt, slse, key_row, q0, lane, p);
			att_acc_ptile<BWD_BM, DV>(dv, pt, sm + L::DO, lane);
			att_scores<DV, BWD_BM / 8>(dpt, sm + L::V, warp * 16, sm + L::DO, lane);
			bwd_dsoft(dpt, pt, sdelta, sm + L::DS, warp, lane);
			att_acc_ptile<BWD_BM, DQK>(dk, dpt, sm + L::Q, lane);
			__syncthreads();   /* all of dS is in shared memory */
			bwd_dq<DQK>(sm + L::DS, sm + L::K, dq, (long)p.heads * p.dim_qk, q0, p.seq,
				    p.scale, p.dim_qk, warp, lane);
		}
	}
	bwd_store<DQK>(dk, p.scale, p.dk + kv0 * p.dim_qk, ks, key_row, p.seq, p.dim_qk, lane);
	bwd_store<DV>(dv, 1.f, p.dv + kv0 * p.dim_v, vs, key_row, p.seq, p.dim_v, lane);
}

/* NOTE: tests/attention_emu.cpp compiles the kernels above as host C++ (ATT_EMULATE)
 * and runs them thread by thread; launchers and dispatch are CUDA only. */
#ifndef ATT_EMULATE

/* ---- launchers ---- */

/* bwd_launch runs attn_bwd_kernel<DQK, DV>: grid (key tiles, B * G), 128 threads. */
template <int DQK, int DV>
static int bwd_launch(const struct attn_shape *s, const bwd_params &p, cudaStream_t st)
{
	const size_t smem = bwd_smem<DQK, DV>::BYTES;
	int err = att_set_smem((const void *)attn_bwd_kernel<DQK, DV>, smem, "attention v1");
	if (err)
		return err;
	dim3 grid(att_cdiv(s->seq, BWD_BN), s->batch * s->kv_heads);
	attn_bwd_kernel<DQK, DV><<<grid, BWD_THREADS, smem, st>>>(p);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* bwd_dispatch picks the instantiation of attn_bwd_kernel for s's head dims (as
 * attn_fwd_cuda picks the forward's). */
static int bwd_dispatch(const struct attn_shape *s, const bwd_params &p, cudaStream_t st)
{
	if (s->d_qk == 192 && s->d_v == 128)
		return bwd_launch<192, 128>(s, p, st);
	if (s->d_qk == 96 && s->d_v == 64)
		return bwd_launch<96, 64>(s, p, st);
	if (s->d_qk == 48 && s->d_v == 32)
		return bwd_launch<48, 32>(s, p, st);
	switch (att_train_tile(s->d_qk, s->d_v)) {
	case 64:
		return bwd_launch<64, 64>(s, p, st);
	case 128:
		return bwd_launch<128, 128>(s, p, st);
	case 192:
		return bwd_launch<192, 192>(s, p, st);
	default:
		return bwd_launch<256, 256>(s, p, st);
	}
}

/* delta_launch runs attn_delta_kernel: one warp per (b, i, h) row, 4 rows per CTA. */
static int delta_launch(const struct attn_shape *s, const bf16 *o, const bf16 *dout,
			float *delta, cudaStream_t st)
{
	const long rows = (long)s->batch * s->seq * s->heads;
	attn_delta_kernel<<<(unsigned)((rows + 3) / 4), 128, 0, st>>>(o, dout, delta, rows, s->seq,
								      s->heads, s->d_v);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* convert_launch runs attn_dq_convert_kernel, grid-stride over n values. */
static int convert_launch(const float *acc, bf16 *dq, long n, cudaStream_t st)
{
	long blocks = (n + 255) / 256;
	attn_dq_convert_kernel<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, st>>>(acc, dq, n);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* ---- dispatch ---- */

/* attn_bwd_cuda_workspace: see attention.h. The FP32 dQ [B, S, H, d_qk], then delta
 * [B, H, S]; 0 for a NULL shape. */
extern "C" size_t attn_bwd_cuda_workspace(const struct attn_shape *s)
{
	if (!s || s->batch < 1 || s->seq < 1 || s->heads < 1 || s->d_qk < 1)
		return 0;
	return (size_t)s->batch * s->seq * s->heads * ((size_t)s->d_qk + 1) * sizeof(float);
}

/* bwd_check_pointers says whether every pointer attn_bwd_cuda takes is usable. */
static bool bwd_check_pointers(const void *const *bf16_ptrs, int n, const float *lse,
			       const void *work)
{
	for (int i = 0; i < n; i++)
		if (!att_aligned16(bf16_ptrs[i]))
			return false;
	return lse && att_aligned16(work);
}

/* attn_bwd_cuda: see attention.h. d_work holds attn_bwd_cuda_workspace(s) bytes.
 * Returns MB_OK, MB_ERR_ARG, MB_ERR_UNSUPPORTED or MB_ERR_CUDA, as attn_fwd_cuda. */
extern "C" int attn_bwd_cuda(const struct attn_shape *s, const uint16_t *d_q,
			     const uint16_t *d_k, const uint16_t *d_v, const uint16_t *d_o,
			     const uint16_t *d_dout, const float *d_lse, uint16_t *d_dq,
			     uint16_t *d_dk, uint16_t *d_dv, void *d_work, void *stream)
{
	const void *ptrs[] = { d_q, d_k, d_v, d_o, d_dout, d_dq, d_dk, d_dv };
	int err = att_check_train_shape(s, "attention v1 backward");
	if (err)
		return err;
	if (!bwd_check_pointers(ptrs, 8, d_lse, d_work)) {
		fprintf(stderr, "attention v1 backward: q, k, v, o, dout, dq, dk, dv and the "
			"workspace must be 16-byte aligned, lse given\n");
		return MB_ERR_ARG;
	}
	cudaStream_t st = (cudaStream_t)stream;
	const long nq = (long)s->batch * s->seq * s->heads * s->d_qk;
	float *dq_acc = (float *)d_work, *delta = dq_acc + nq;
	bwd_params p = { (const bf16 *)d_q, (const bf16 *)d_k, (const bf16 *)d_v,
			 (const bf16 *)d_dout, d_lse, delta, dq_acc, (bf16 *)d_dk, (bf16 *)d_dv,
			 s->seq, s->heads, s->kv_heads, s->scale, s->scale * ATT_LOG2E, s->causal,
			 s->d_qk, s->d_v };
	err = MB_CUDA_CHECK(cudaMemsetAsync(dq_acc, 0, (size_t)nq * sizeof(float), st));
	if (!err)
		err = delta_launch(s, (const bf16 *)d_o, (const bf16 *)d_dout, delta, st);
	if (!err)
		err = bwd_dispatch(s, p, st);
	if (!err)
		err = convert_launch(dq_acc, (bf16 *)d_dq, nq, st);
	return err;
}

#endif /* ATT_EMULATE */
