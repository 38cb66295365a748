/*
 * attention.cu - attn_fwd_cuda (attention.h): the flash-style attention forward on
 * BF16 tensor cores, written from the FlashAttention-2 algorithm (Dao, 2023,
 * arXiv:2307.08691, Algorithm 1): queries in tiles, keys and values streamed through
 * shared memory, the softmax kept online (running max and sum per row), so the S x S
 * score matrix never exists; O and the log-sum-exp per row are written at the end.
 *
 * Shapes as attention.h: B batch, S sequence, H query heads, G kv heads, d_qk, d_v.
 *
 *   v1: one CTA of 4 warps per (64-query tile, batch, head); each warp owns 16 query
 *       rows. Per 64-key tile: K and V copied by cp.async (the whole tile in flight,
 *       then waited for: no pipelining) to padded shared tiles (zeros past S);
 *       S = Q K^T by mma.sync m16n8k16 BF16 (FP32 accumulation), Q and K fragments by
 *       ldmatrix; masking (key >= S, causal key > query); online softmax in FP32
 *       registers (exp2 of scores pre-multiplied by scale * log2 e); then O += P V
 *       with P reused from the score registers as the A operand (no trip through
 *       shared memory) and V fragments by ldmatrix.trans. Causal tiles past a query
 *       tile's diagonal are skipped, and the heaviest query tiles are scheduled
 *       first. Head dims: any d_qk, d_v that are multiples of 16 up to 256. The
 *       kernel is a template on its tile widths: exact instantiations for 192/128
 *       (DeepSeek-V3's MLA), 96/64 (v3-small) and 48/32 (v3-tiny), and square tiles of
 *       64, 128, 192, 256 for the rest (max(d_qk, d_v) rounded up to 64; the columns
 *       past a head dim are zeros in shared memory and are never stored).
 * Backward: attention_bwd.cu. Decode: attention_decode.cu.
 */
#include "attention_cuda.cuh"

#define FWD_BM 64           /* query rows per CTA: 4 warps x 16 */
#define FWD_BN 64           /* keys per shared-memory tile */
#define FWD_THREADS 128

struct fwd_params {
	const bf16 *q, *k, *v;
	bf16 *o;
	float *lse;
	int seq, heads, kv_heads;
	float scale_log2;       /* scale * log2(e): scores in base 2 */
	int causal;
	int dim_qk, dim_v;      /* the head dims: <= the tile widths DQK, DV */
};

/* ---- GPU kernels ---- */

/* fwd_softmax masks and scales the score tile in place, turns it into probabilities
 * against the updated running max m (base 2), adds their sum to this thread's part of
 * l and rescales O by exp2(old max - new max). Row r (0, 1) of this thread is query
 * qrow + 8 r; the tile starts at key k0. */
template <int DV>
__device__ __forceinline__ void fwd_softmax(float s[FWD_BN / 8][4], float acc[DV / 8][4],
					    float m[2], float l[2], int qrow, int k0, int lane,
					    const fwd_params &p)
{
#pragma unroll
	for (int r = 0; r < 2; r++) {
		float mx = -INFINITY;
#pragma unroll
		for (int j = 0; j < FWD_BN / 8; j++)
#pragma unroll
			for (int e = 0; e < 2; e++) {
				int key = k0 + j * 8 + att_c_col(lane, e);
				float x = key < p.seq && (!p.causal || key <= qrow + 8 * r)
					  ? s[j][2 * r + e] * p.scale_log2 : -INFINITY;
				s[j][2 * r + e] = x;
				mx = fmaxf(mx, x);
			}
		/* NOTE: the 4 lanes of a quad hold one row; their max is the row's max. */
		mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
		mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
		float m_new = fmaxf(m[r], mx);
		float m_use = m_new == -INFINITY ? 0.f : m_new;   /* a row with nothing seen yet */
		float alpha = exp2f(m[r] - m_use), sum = 0.f;
#pragma unroll
		for (int j = 0; j < FWD_BN / 8; j++)
#pragma unroll
			for (int e = 0; e < 2; e++) {
				float x = exp2f(s[j][2 * r + e] - m_use);
				s[j][2 * r + e] = x;
				sum += x;
			}
		l[r] = l[r] * alpha + sum;   /* this lane's part; the quad is summed at the end */
		m[r] = m_new;
#pragma unroll
		for (int n = 0; n < DV / 8; n++) {
			acc[n][2 * r] *= alpha;
			acc[n][2 * r + 1] *= alpha;
		}
	}
}

/* fwd_store writes the warp's rows of O (divided by l), columns below dv, and their
 * log-sum-exp. */
template <int DV>
__device__ __forceinline__ void fwd_store(float acc[DV / 8][4], const float m[2], float l[2],
					  bf16 *o, long ostride, float *lse, int qrow, int seq,
					  int dv, int lane)
{
#pragma unroll
	for (int r = 0; r < 2; r++) {
		l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
		l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
		int row = qrow + 8 * r;
		if (row >= seq)
			continue;
		float inv = 1.f / l[r];
#pragma unroll
		for (int n = 0; n < DV / 8; n++) {
			int col = n * 8 + att_c_col(lane, 0);
			if (n * 8 >= dv)
				break;   /* a tile column past the head dim */
			*reinterpret_cast<__nv_bfloat162 *>(o + row * ostride + col) =
				__floats2bfloat162_rn(acc[n][2 * r] * inv, acc[n][2 * r + 1] * inv);
		}
		if (lane % 4 == 0)
			lse[row] = (m[r] + log2f(l[r])) * ATT_LN2;
	}
}

/* attn_fwd_kernel: CTA (x, y) computes query tile x (reversed when causal: the
 * longest first) of batch y / H, head y % H, over the key tiles it sees. Shared:
 * Q [64][DQK+8], K [64][DQK+8], V [64][DV+8] BF16 (DQK, DV: the tile widths, at least
 * the head dims p.dim_qk, p.dim_v). */
template <int DQK, int DV>
__global__ void __launch_bounds__(FWD_THREADS) attn_fwd_kernel(fwd_params p)
{
	extern __shared__ __align__(16) unsigned char smem[];
	bf16 *sq = reinterpret_cast<bf16 *>(smem);
	bf16 *sk = sq + FWD_BM * (DQK + ATT_PAD);
	bf16 *sv = sk + FWD_BN * (DQK + ATT_PAD);
	const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
	const int qtiles = att_cdiv(p.seq, FWD_BM);
	const int q0 = (p.causal ? qtiles - 1 - (int)blockIdx.x : (int)blockIdx.x) * FWD_BM;
	const int b = blockIdx.y / p.heads, h = blockIdx.y % p.heads;
	const int g = h / (p.heads / p.kv_heads);
	const long qs = (long)p.heads * p.dim_qk, ks = (long)p.kv_heads * p.dim_qk,
		   vs = (long)p.kv_heads * p.dim_v;
	const bf16 *q = p.q + ((long)b * p.seq * p.heads + h) * p.dim_qk + q0 * qs;
	const bf16 *k = p.k + ((long)b * p.seq * p.kv_heads + g) * p.dim_qk;
	const bf16 *v = p.v + ((long)b * p.seq * p.kv_heads + g) * p.dim_v;
	const int qrow = q0 + warp * 16 + lane / 4;
	float acc[DV / 8][4] = {}, s[FWD_BN / 8][4];
	float m[2] = { -INFINITY, -INFINITY }, l[2] = { 0.f, 0.f };

	att_load_rows<DQK>(sq, q, qs, FWD_BM, min(FWD_BM, p.seq - q0), tid, FWD_THREADS, p.dim_qk);
	const int ktiles = att_fwd_key_tiles(q0, FWD_BM, p.seq, FWD_BN, p.causal);
	for (int kt = 0; kt < ktiles; kt++) {
		const int k0 = kt * FWD_BN, nk = min(FWD_BN, p.seq - k0);
		__syncthreads();   /* every warp is done with the previous K and V */
		att_load_rows<DQK>(sk, k + k0 * ks, ks, FWD_BN, nk, tid, FWD_THREADS, p.dim_qk);
		att_load_rows<DV>(sv, v + k0 * vs, vs, FWD_BN, nk, tid, FWD_THREADS, p.dim_v);
		att_cp_wait_all();   /* Q too, the first time */
		__syncthreads();
		att_scores<DQK, FWD_BN / 8>(s, sq, warp * 16, sk, lane);
		fwd_softmax<DV>(s, acc, m, l, qrow, k0, lane, p);
		att_acc_ptile<FWD_BN, DV>(acc, s, sv, lane);
	}
	bf16 *o = p.o + ((long)b * p.seq * p.heads + h) * p.dim_v;
	fwd_store<DV>(acc, m, l, o, (long)p.heads * p.dim_v, p.lse + (long)blockIdx.y * p.seq, qrow,
		      p.seq, p.dim_v, lane);
}

/* NOTE: tests/attention_emu.cpp compiles the kernels above as host C++ (ATT_EMULATE)
 * and runs them thread by thread; launchers and dispatch are CUDA only. */
#ifndef ATT_EMULATE

/* ---- launchers ---- */

/* fwd_launch runs attn_fwd_kernel<DQK, DV>: grid (query tiles, B * H), 128 threads. */
template <int DQK, int DV>
static int fwd_launch(const struct attn_shape *s, const fwd_params &p, cudaStream_t st)
{
	const size_t smem = ((size_t)(FWD_BM + FWD_BN) * (DQK + ATT_PAD) +
			     (size_t)FWD_BN * (DV + ATT_PAD)) * sizeof(bf16);
	int err = att_set_smem((const void *)attn_fwd_kernel<DQK, DV>, smem, "attention v1");
	if (err)
		return err;
	dim3 grid(att_cdiv(s->seq, FWD_BM), s->batch * s->heads);
	attn_fwd_kernel<DQK, DV><<<grid, FWD_THREADS, smem, st>>>(p);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* ---- dispatch ---- */

/* attn_fwd_cuda: see attention.h. Returns MB_OK, MB_ERR_ARG (bad shape, NULL or
 * misaligned pointer), MB_ERR_UNSUPPORTED (head dims not multiples of 16 up to 256, no image for the
 * device) or MB_ERR_CUDA. */
extern "C" int attn_fwd_cuda(const struct attn_shape *s, const uint16_t *d_q,
			     const uint16_t *d_k, const uint16_t *d_v, uint16_t *d_o,
			     float *d_lse, void *stream)
{
	int err = att_check_train_shape(s, "attention v1 forward");
	if (err)
		return err;
	if (!att_aligned16(d_q) || !att_aligned16(d_k) || !att_aligned16(d_v) ||
	    !att_aligned16(d_o) || !d_lse) {
		fprintf(stderr, "attention v1 forward: q, k, v, o must be 16-byte aligned, lse "
			"given\n");
		return MB_ERR_ARG;
	}
	fwd_params p = { (const bf16 *)d_q, (const bf16 *)d_k, (const bf16 *)d_v, (bf16 *)d_o,
			 d_lse, s->seq, s->heads, s->kv_heads, s->scale * ATT_LOG2E, s->causal,
			 s->d_qk, s->d_v };
	cudaStream_t st = (cudaStream_t)stream;
	if (s->d_qk == 192 && s->d_v == 128)
		return fwd_launch<192, 128>(s, p, st);
	if (s->d_qk == 96 && s->d_v == 64)
		return fwd_launch<96, 64>(s, p, st);
	if (s->d_qk == 48 && s->d_v == 32)
		return fwd_launch<48, 32>(s, p, st);
	switch (att_train_tile(s->d_qk, s->d_v)) {
	case 64:
		return fwd_launch<64, 64>(s, p, st);
	case 128:
		return fwd_launch<128, 128>(s, p, st);
	case 192:
		return fwd_launch<192, 192>(s, p, st);
	default:
		return fwd_launch<256, 256>(s, p, st);
	}
}

#endif /* ATT_EMULATE */
