/*
 * attention_decode.cu - attn_decode_cuda (attention.h): one new query token per
 * sequence against a KV cache of ctx positions, split over the context so that a small
 * batch still fills the GPU (flash-decoding: each split keeps its own running max, sum
 * and unnormalized output; a second kernel combines them).
 *
 * Shapes: q [B, H, d_qk]; k cache [B, ctx, G, k_stride]; v cache [B, ctx, G, v_stride];
 * o [B, H, d_v]; lse [B, H]. The H / G query heads of a kv head are the rows of one
 * tile, so a cache row is read once for all of them (once per 32 heads when a group is
 * larger). With v == k, equal strides and d_v <= d_qk (MLA's absorbed form: G = 1,
 * 576-wide latent + rope rows, d_v = 512) the value tile is the key tile already in
 * shared memory: each row is read once for both.
 *
 *   v1: CTA (head chunk, split, batch x kv head) with 16 or 32 heads (1 or 2 row
 *       tiles; 4 warps per row tile) walks its split's keys in tiles of 32 rows copied
 *       to padded shared memory by cp.async (the whole tile in flight, then waited
 *       for). S = Q K^T by mma.sync m16n8k16 BF16 (each warp 16
 *       heads x 8 keys) to shared FP32; one warp per head row does the online softmax
 *       (lane = key) and writes P as BF16; O += P V by mma.sync with each warp owning
 *       16 heads x d_v / 4 columns in FP32 registers. The partial O, max and sum go to
 *       the caller's workspace (attn_decode_cuda_workspace bytes, allocated once, so
 *       a timed call allocates nothing); the combine kernel, one CTA per
 *       (batch, head), rescales and sums them and writes O (BF16) and lse.
 *       Splits: about two CTAs per SM over the whole grid, each split at least
 *       DEC_MIN_TILES tiles. Compiled head dims: 64/64, 128/128, 192/128, 576/512.
 */
#include "attention_cuda.cuh"

#define DEC_DN 32           /* keys per shared tile: 4 warps x 8 */
#define DEC_MIN_TILES 2     /* key tiles per split at least (partials cost writes) */

struct dec_params {
	const bf16 *q, *k, *v;
	float *part_o, *part_ml;    /* [B, H, splits, d_v], [B, H, splits, 2] */
	int ctx, heads, kv_heads, splits, chunk;
	long k_stride, v_stride;
	int shared_v;               /* V rows are the first d_v values of the K rows */
	float scale_log2;
};

/* The shared tiles (BF16 unless said): Q [HB][DQK+8], K [32][DQK+8], V [32][DV+8]
 * (absent when shared_v), P [HB][32+8]; FP32 S [HB][32] and alpha [HB]. */
template <int DQK, int DV, int RT>
struct dec_smem {
	static constexpr int HB = 16 * RT, THREADS = 128 * RT;
	static constexpr int Q = 0, K = Q + HB * (DQK + ATT_PAD), V = K + DEC_DN * (DQK + ATT_PAD);
	static size_t bytes(bool shared_v, int *p_off)
	{
		int p = V + (shared_v ? 0 : DEC_DN * (DV + ATT_PAD));
		*p_off = p;
		return (size_t)(p + HB * (DEC_DN + ATT_PAD)) * sizeof(bf16) +
		       (size_t)(HB * DEC_DN + HB) * sizeof(float);
	}
};

/* ---- GPU kernels ---- */

/* dec_softmax: warp w updates head rows w, w + 4RT, ... of the tile (lane = key,
 * valid when below nk): running max m and sum l (the same in every lane), P to sp,
 * the rescale factor of O to salpha. */
template <int RT>
__device__ __forceinline__ void dec_softmax(const float *ss, bf16 *sp, float *salpha,
					    float m[4], float l[4], int nk, float scale_log2,
					    int warp, int lane)
{
#pragma unroll
	for (int t = 0; t < 4; t++) {
		const int r = warp + 4 * RT * t;
		float x = lane < nk ? ss[r * DEC_DN + lane] * scale_log2 : -INFINITY, mx = x;
		for (int off = 16; off > 0; off /= 2)
			mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
		float m_new = fmaxf(m[t], mx);   /* finite: nk >= 1 */
		float alpha = exp2f(m[t] - m_new), p = exp2f(x - m_new), sum = p;
		for (int off = 16; off > 0; off /= 2)
			sum += __shfl_xor_sync(0xffffffffu, sum, off);
		l[t] = l[t] * alpha + sum;
		m[t] = m_new;
		sp[r * (DEC_DN + ATT_PAD) + lane] = __float2bfloat16_rn(p);
		if (lane == 0)
			salpha[r] = alpha;
	}
}

/* dec_pv rescales the warp's 16 heads x DV/4 columns of O by alpha and adds P V. */
template <int DV>
__device__ __forceinline__ void dec_pv(float acc[DV / 32][4], const bf16 *sp, const bf16 *sv,
				       int vpitch, const float *salpha, int rt, int c0, int lane)
{
	const float a0 = salpha[rt + att_c_row(lane, 0)], a1 = salpha[rt + att_c_row(lane, 2)];
#pragma unroll
	for (int n = 0; n < DV / 32; n++) {
		acc[n][0] *= a0, acc[n][1] *= a0;
		acc[n][2] *= a1, acc[n][3] *= a1;
	}
#pragma unroll
	for (int kk = 0; kk < DEC_DN / 16; kk++) {
		uint32_t a[4], b[2][2];
		att_load_a(a, sp, DEC_DN + ATT_PAD, rt, kk * 16, lane);
#pragma unroll
		for (int n = 0; n < DV / 32; n += 2) {
			att_load_b_kn2(b, sv, vpitch, kk * 16, c0 + n * 8, lane);
			att_mma(acc[n], a, b[0][0], b[0][1]);
			att_mma(acc[n + 1], a, b[1][0], b[1][1]);
		}
	}
}

/* dec_store writes this split's partials of the CTA's first `live` heads (from head0):
 * the warp's 16 heads x DV/4 columns of unnormalized O, and the running max and sum of
 * the head rows its softmax kept. */
template <int DV, int RT>
__device__ __forceinline__ void dec_store(const float acc[DV / 32][4], const float m[4],
					  const float l[4], const dec_params &p, long head0,
					  int live, int rt, int c0, int warp, int lane)
{
	for (int i = 0; i < 4; i++) {
		const int hl = rt + att_c_row(lane, i);
		if (hl >= live)
			continue;
		float *po = p.part_o + ((head0 + hl) * p.splits + blockIdx.y) * DV + c0;
		for (int n = 0; n < DV / 32; n++)
			po[n * 8 + att_c_col(lane, i)] = acc[n][i];
	}
	for (int t = 0; t < 4; t++) {
		const int r = warp + 4 * RT * t;
		if (lane == 0 && r < live) {
			float *ml = p.part_ml + ((head0 + r) * p.splits + blockIdx.y) * 2;
			ml[0] = m[t];
			ml[1] = l[t];
		}
	}
}

/* attn_decode_kernel: CTA (x, y, z) is head chunk x (16 RT heads) of split y of batch
 * z / G, kv head z % G; see the file header. */
template <int DQK, int DV, int RT>
__global__ void __launch_bounds__(128 * RT) attn_decode_kernel(dec_params p, int p_off)
{
	typedef dec_smem<DQK, DV, RT> L;
	extern __shared__ __align__(16) unsigned char smem[];
	bf16 *sm = reinterpret_cast<bf16 *>(smem), *sp = sm + p_off;
	bf16 *sv = p.shared_v ? sm + L::K : sm + L::V;
	float *ss = reinterpret_cast<float *>(sp + L::HB * (DEC_DN + ATT_PAD)), *salpha = ss + L::HB * DEC_DN;
	const int vpitch = p.shared_v ? DQK + ATT_PAD : DV + ATT_PAD;
	const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
	const int rt = (warp / 4) * 16, c0 = (warp % 4) * (DV / 4);
	const int b = blockIdx.z / p.kv_heads, g = blockIdx.z % p.kv_heads;
	const int group = p.heads / p.kv_heads, hl0 = blockIdx.x * L::HB;
	const int kbeg = blockIdx.y * p.chunk, kend = min(p.ctx, kbeg + p.chunk);
	const long ks = p.kv_heads * p.k_stride, vs = p.kv_heads * p.v_stride;
	const bf16 *k = p.k + ((long)b * p.ctx * p.kv_heads + g) * p.k_stride;
	const bf16 *v = p.v + ((long)b * p.ctx * p.kv_heads + g) * p.v_stride;
	const long head0 = (long)b * p.heads + (long)g * group + hl0;   /* first head of the CTA */
	float acc[DV / 32][4] = {}, s[1][4], m[4], l[4] = { 0.f, 0.f, 0.f, 0.f };
	m[0] = m[1] = m[2] = m[3] = -INFINITY;

	att_load_rows<DQK>(sm + L::Q, p.q + head0 * DQK, DQK, L::HB, min(L::HB, group - hl0), tid,
			   L::THREADS);
	for (int k0 = kbeg; k0 < kend; k0 += DEC_DN) {
		const int nk = min(DEC_DN, kend - k0);
		__syncthreads();   /* the previous tile's K, V and P are no longer read */
		att_load_rows<DQK>(sm + L::K, k + k0 * ks, ks, DEC_DN, nk, tid, L::THREADS);
		if (!p.shared_v)
			att_load_rows<DV>(sm + L::V, v + k0 * vs, vs, DEC_DN, nk, tid, L::THREADS);
		att_cp_wait_all();   /* Q too, the first time */
		__syncthreads();
		att_scores<DQK, 1>(s, sm + L::Q, rt, sm + L::K + (warp % 4) * 8 * (DQK + ATT_PAD), lane);
#pragma unroll
		for (int i = 0; i < 4; i++)
			ss[(rt + att_c_row(lane, i)) * DEC_DN + (warp % 4) * 8 + att_c_col(lane, i)] = s[0][i];
		__syncthreads();
		dec_softmax<RT>(ss, sp, salpha, m, l, nk, p.scale_log2, warp, lane);
		__syncthreads();
		dec_pv<DV>(acc, sp, sv, vpitch, salpha, rt, c0, lane);
	}
	dec_store<DV, RT>(acc, m, l, p, head0, min(L::HB, group - hl0), rt, c0, warp, lane);
}

/* attn_decode_combine_kernel: CTA x is row x of [B, H]: merges its splits' partial
 * outputs (base-2 max m_s, sum l_s, O_s) into O = sum 2^(m_s - M) O_s / L with
 * L = sum 2^(m_s - M) l_s, and lse = ln 2 (M + log2 L). */
__global__ void attn_decode_combine_kernel(const float *__restrict__ part_o,
					   const float *__restrict__ part_ml, int splits, int dv,
					   bf16 *o, float *lse)
{
	const long row = blockIdx.x;
	const float *ml = part_ml + row * splits * 2, *po = part_o + row * splits * dv;
	float mx = -INFINITY, sum = 0.f;
	for (int sp = 0; sp < splits; sp++)
		mx = fmaxf(mx, ml[2 * sp]);
	for (int sp = 0; sp < splits; sp++)
		sum += exp2f(ml[2 * sp] - mx) * ml[2 * sp + 1];
	for (int c = threadIdx.x; c < dv; c += blockDim.x) {
		float x = 0.f;
		for (int sp = 0; sp < splits; sp++)
			x += exp2f(ml[2 * sp] - mx) * po[(long)sp * dv + c];
		o[row * dv + c] = __float2bfloat16_rn(x / sum);
	}
	if (threadIdx.x == 0)
		lse[row] = (mx + log2f(sum)) * ATT_LN2;
}

/* NOTE: tests/attention_emu.cpp compiles the kernels above as host C++ (ATT_EMULATE)
 * and runs them thread by thread; launchers and dispatch are CUDA only. */
#ifndef ATT_EMULATE

/* ---- launchers ---- */

/* dec_launch runs attn_decode_kernel<DQK, DV, RT>: grid (head chunks, splits, B * G),
 * 128 RT threads. */
template <int DQK, int DV, int RT>
static int dec_launch(const struct attn_decode_shape *s, const dec_params &p, cudaStream_t st)
{
	typedef dec_smem<DQK, DV, RT> L;
	int p_off;
	const size_t smem = L::bytes(p.shared_v, &p_off);
	int err = att_set_smem((const void *)attn_decode_kernel<DQK, DV, RT>, smem,
			       "attention v1 decode");
	if (err)
		return err;
	dim3 grid(att_cdiv(s->heads / s->kv_heads, L::HB), p.splits, s->batch * s->kv_heads);
	attn_decode_kernel<DQK, DV, RT><<<grid, L::THREADS, smem, st>>>(p, p_off);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* dec_launch_dims picks the compiled kernel for the head dims and group size. */
static int dec_launch_dims(const struct attn_decode_shape *s, const dec_params &p, int rt,
			   cudaStream_t st)
{
	if (s->d_qk == 64)
		return rt == 1 ? dec_launch<64, 64, 1>(s, p, st) : dec_launch<64, 64, 2>(s, p, st);
	if (s->d_qk == 128)
		return rt == 1 ? dec_launch<128, 128, 1>(s, p, st) : dec_launch<128, 128, 2>(s, p, st);
	if (s->d_qk == 192)
		return rt == 1 ? dec_launch<192, 128, 1>(s, p, st) : dec_launch<192, 128, 2>(s, p, st);
	return rt == 1 ? dec_launch<576, 512, 1>(s, p, st) : dec_launch<576, 512, 2>(s, p, st);
}

/* combine_launch runs attn_decode_combine_kernel: one CTA of 128 threads per (b, h). */
static int combine_launch(const struct attn_decode_shape *s, const dec_params &p, bf16 *o,
			  float *lse, cudaStream_t st)
{
	attn_decode_combine_kernel<<<s->batch * s->heads, 128, 0, st>>>(p.part_o, p.part_ml,
									p.splits, s->d_v, o, lse);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* ---- dispatch ---- */

/* dec_check prints the rule s or the pointers break: sizes >= 1, kv_heads dividing
 * heads, strides multiples of 8 covering the head dims, a compiled (d_qk, d_v) pair,
 * 16-byte aligned q, k, v, o. */
static int dec_check(const struct attn_decode_shape *s, const void *q, const void *k,
		     const void *v, const void *o, const float *lse)
{
	if (!s || s->batch < 1 || s->ctx < 1 || s->heads < 1 || s->kv_heads < 1 ||
	    s->heads % s->kv_heads || s->k_stride < s->d_qk || s->v_stride < s->d_v ||
	    s->k_stride % 8 || s->v_stride % 8 || (long)s->batch * s->kv_heads > 65535) {
		fprintf(stderr, "attention v1 decode: bad shape (sizes >= 1, kv_heads dividing "
			"heads, strides >= the head dims and multiples of 8)\n");
		return MB_ERR_ARG;
	}
	if (!((s->d_qk == 64 && s->d_v == 64) || (s->d_qk == 128 && s->d_v == 128) ||
	      (s->d_qk == 192 && s->d_v == 128) || (s->d_qk == 576 && s->d_v == 512))) {
		fprintf(stderr, "attention v1 decode: head dims d_qk=%d d_v=%d not compiled "
			"(64/64, 128/128, 192/128, 576/512)\n", s->d_qk, s->d_v);
		return MB_ERR_UNSUPPORTED;
	}
	if (!att_aligned16(q) || !att_aligned16(k) || !att_aligned16(v) || !att_aligned16(o) ||
	    !lse) {
		fprintf(stderr, "attention v1 decode: q, k, v, o must be 16-byte aligned, lse "
			"given\n");
		return MB_ERR_ARG;
	}
	return MB_OK;
}

/* dec_splits sets p's splits and chunk: about two CTAs per SM in all. */
static int dec_splits(const struct attn_decode_shape *s, int heads_per_cta, dec_params *p)
{
	int dev, sms, err = MB_CUDA_CHECK(cudaGetDevice(&dev));
	if (!err)
		err = MB_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
	if (err)
		return err;
	const long others = (long)s->batch * s->kv_heads *
			    att_cdiv(s->heads / s->kv_heads, heads_per_cta);
	const int tiles = att_cdiv(s->ctx, DEC_DN);
	int want = (int)((2L * sms + others - 1) / others);
	if (want > att_cdiv(tiles, DEC_MIN_TILES))
		want = att_cdiv(tiles, DEC_MIN_TILES);
	const int per = att_decode_tiles_per_split(tiles, want);
	p->splits = att_cdiv(tiles, per);
	p->chunk = per * DEC_DN;
	return MB_OK;
}

/* dec_row_tiles is the row tiles per CTA: 2 (32 heads) when a kv head has over 16. */
static int dec_row_tiles(const struct attn_decode_shape *s)
{
	return s->heads / s->kv_heads > 16 ? 2 : 1;
}

/* dec_work_bytes is the FP32 partials of `splits` splits: O [B, H, splits, d_v] then
 * max and sum [B, H, splits, 2]. */
static size_t dec_work_bytes(const struct attn_decode_shape *s, int splits)
{
	const size_t rows = (size_t)s->batch * s->heads * splits;
	return rows * (s->d_v + 2) * sizeof(float);
}

/* attn_decode_cuda_workspace: see attention.h. The split count follows the current
 * device's SM count (dec_splits), so the bytes are the current device's. */
extern "C" size_t attn_decode_cuda_workspace(const struct attn_decode_shape *s)
{
	dec_params p = {};
	if (!s || s->batch < 1 || s->ctx < 1 || s->heads < 1 || s->kv_heads < 1 ||
	    s->heads % s->kv_heads || s->d_v < 1)
		return 0;
	if (dec_splits(s, 16 * dec_row_tiles(s), &p))
		return 0;
	return dec_work_bytes(s, p.splits);
}

/* attn_decode_cuda: see attention.h. Returns MB_OK, MB_ERR_ARG, MB_ERR_UNSUPPORTED or
 * MB_ERR_CUDA, as attn_fwd_cuda. */
extern "C" int attn_decode_cuda(const struct attn_decode_shape *s, const uint16_t *d_q,
				const uint16_t *d_k, const uint16_t *d_v, uint16_t *d_o,
				float *d_lse, void *d_work, size_t work_bytes, void *stream)
{
	int err = dec_check(s, d_q, d_k, d_v, d_o, d_lse);
	if (err)
		return err;
	cudaStream_t st = (cudaStream_t)stream;
	const int rt = dec_row_tiles(s);
	dec_params p = { (const bf16 *)d_q, (const bf16 *)d_k, (const bf16 *)d_v, NULL, NULL,
			 s->ctx, s->heads, s->kv_heads, 0, 0, s->k_stride, s->v_stride,
			 d_v == d_k && s->v_stride == s->k_stride && s->d_v <= s->d_qk,
			 s->scale * ATT_LOG2E };
	err = dec_splits(s, 16 * rt, &p);
	if (err)
		return err;
	const size_t need = dec_work_bytes(s, p.splits);
	if (!d_work || !att_aligned16(d_work) || work_bytes < need) {
		fprintf(stderr, "attention v1 decode: the workspace must be 16-byte aligned and "
			"hold %zu bytes (attn_decode_cuda_workspace), %zu given\n", need,
			d_work ? work_bytes : 0);
		return MB_ERR_ARG;
	}
	p.part_o = (float *)d_work;
	p.part_ml = p.part_o + (size_t)s->batch * s->heads * p.splits * s->d_v;
	err = dec_launch_dims(s, p, rt, st);
	return err ? err : combine_launch(s, p, (bf16 *)d_o, d_lse, st);
}

#endif /* ATT_EMULATE */
