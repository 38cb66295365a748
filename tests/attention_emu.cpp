/*
 * attention_emu.cpp - runs the CUDA attention kernels (kernels/attention*.cu) on the
 * host, one POSIX thread per CUDA thread, and checks them against the CPU reference
 * (attention.c): a check of the kernels' own index math, masking, online softmax,
 * GQA and split bookkeeping on a machine without a GPU.
 *
 * The kernel sources are compiled as host C++ with ATT_EMULATE: __syncthreads is a
 * barrier of the block's threads; __shfl_xor_sync, ldmatrix and mma.sync m16n8k16 are
 * warp collectives through a per-warp exchange area (two slots alternating, so one barrier
 * per collective suffices); the product takes each lane's fragments at the positions
 * of the PTX ISA layout (attention_tiles.h) and sums in FP32. Blocks run one after
 * the other, so the dynamic shared memory is one static array (poisoned with NaN
 * before each block).
 *
 * What it cannot show: the real tensor-core layout (it uses the same layout table as
 * the kernels), memory-model races the barriers would hide, timing. Exit 0 when all
 * cases pass, 1 otherwise.
 */
#define __global__
#define __device__
#define __host__
#define __shared__
#include <cuda_runtime_api.h>
#include <vector_functions.h>
#include <pthread.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <vector>

#include <cuda_bf16.h>
#undef __launch_bounds__
#define __launch_bounds__(...)
#undef __forceinline__
#define __forceinline__ inline
#define __restrict__ __restrict

using std::max;
using std::min;

static thread_local uint3 threadIdx, blockIdx;
static thread_local dim3 blockDim, gridDim;
static thread_local int emu_slot;          /* collectives this thread has joined */

struct emu_warp {
	pthread_barrier_t bar;
	uint32_t a[2][32][4], b[2][32][2];
	float x[2][32];
	const uint16_t *row[2][32];
};
static emu_warp emu_warps[8];
static pthread_barrier_t emu_block_bar;
static pthread_mutex_t emu_atomic = PTHREAD_MUTEX_INITIALIZER;

static void __syncthreads(void)
{
	pthread_barrier_wait(&emu_block_bar);
}

static float __shfl_xor_sync(unsigned mask, float v, int off)
{
	(void)mask;
	emu_warp &w = emu_warps[threadIdx.x / 32];
	const int lane = threadIdx.x % 32, s = emu_slot++ & 1;
	w.x[s][lane] = v;
	pthread_barrier_wait(&w.bar);
	return w.x[s][lane ^ off];
}

static float atomicAdd(float *p, float v)
{
	pthread_mutex_lock(&emu_atomic);
	float old = *p;
	*p = old + v;
	pthread_mutex_unlock(&emu_atomic);
	return old;
}

/* NOTE: the kernels live in namespace emu, so their names cannot meet the host stubs
 * of the real kernels in moebench_core; the shared header comes first, at file scope,
 * and its include guard keeps the .cu files from opening it inside the namespace. */
#define ATT_EMULATE 1
#include "attention_cuda.cuh"
namespace emu {
alignas(16) unsigned char smem[256 * 1024];
#include "attention.cu"
#include "attention_bwd.cu"
#include "attention_decode.cu"
}
using namespace emu;

extern "C" {
#include "bf16.h"
#include "rng.h"
}

/* emu_half returns BF16 half h of register r as a float. */
static float emu_half(uint32_t r, int h)
{
	return bf16_to_float((uint16_t)(h ? r >> 16 : r & 0xffffu));
}

/* att_emu_mma: every lane posts its fragments; each then computes its four C elements
 * from the whole warp's A (16x16) and B (16x8). */
void att_emu_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
	emu_warp &w = emu_warps[threadIdx.x / 32];
	const int lane = threadIdx.x % 32, s = emu_slot++ & 1;
	memcpy(w.a[s][lane], a, sizeof(w.a[s][lane]));
	w.b[s][lane][0] = b0, w.b[s][lane][1] = b1;
	pthread_barrier_wait(&w.bar);
	float A[16][16], B[16][8];
	for (int l = 0; l < 32; l++) {
		for (int r = 0; r < 4; r++)
			for (int e = 0; e < 2; e++)
				A[att_a_row(l, r)][att_a_col(l, r) + e] = emu_half(w.a[s][l][r], e);
		for (int r = 0; r < 2; r++)
			for (int e = 0; e < 2; e++)
				B[att_b_k(l, r) + e][att_b_n(l)] = emu_half(w.b[s][l][r], e);
	}
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 16; k++)
			c[i] += A[att_c_row(lane, i)][k] * B[k][att_c_col(lane, i)];
}

/* att_emu_ldsm: every lane posts its row address; lane l then takes, from matrix j
 * (rows of lanes 8j..8j+7), elements (l/4, 2(l%4)), (l/4, 2(l%4)+1), or with trans
 * (2(l%4), l/4), (2(l%4)+1, l/4): ldmatrix as the PTX ISA describes it. */
void att_emu_ldsm(uint32_t r[4], const void *row, bool trans)
{
	emu_warp &w = emu_warps[threadIdx.x / 32];
	const int lane = threadIdx.x % 32, s = emu_slot++ & 1;
	w.row[s][lane] = (const uint16_t *)row;
	pthread_barrier_wait(&w.bar);
	for (int j = 0; j < 4; j++) {
		const uint16_t *const *m = w.row[s] + 8 * j;
		uint32_t lo, hi;
		if (trans)
			lo = m[2 * (lane % 4)][lane / 4], hi = m[2 * (lane % 4) + 1][lane / 4];
		else
			lo = m[lane / 4][2 * (lane % 4)], hi = m[lane / 4][2 * (lane % 4) + 1];
		r[j] = lo | hi << 16;
	}
}

/* One launch: the kernel body as a function of no arguments (a lambda). */
template <class F> struct emu_launch {
	F *body;
	dim3 grid, block;
	uint3 bid;
	unsigned tid;
};

template <class F> static void *emu_thread(void *arg)
{
	emu_launch<F> *l = (emu_launch<F> *)arg;
	threadIdx = make_uint3(l->tid % l->block.x, 0, 0);
	blockIdx = l->bid;
	blockDim = l->block;
	gridDim = l->grid;
	emu_slot = 0;
	(*l->body)();
	return NULL;
}

/* emu_run runs body for every block of grid (one at a time), block.x threads each. */
template <class F> static void emu_run(F body, dim3 grid, dim3 block)
{
	const unsigned n = block.x;
	std::vector<pthread_t> th(n);
	std::vector<emu_launch<F> > ls(n);
	for (unsigned z = 0; z < grid.z; z++)
		for (unsigned y = 0; y < grid.y; y++)
			for (unsigned x = 0; x < grid.x; x++) {
				memset(smem, 0xff, sizeof(smem));   /* stale shared memory is NaN */
				pthread_barrier_init(&emu_block_bar, NULL, n);
				for (unsigned w = 0; w < n / 32; w++)
					pthread_barrier_init(&emu_warps[w].bar, NULL, 32);
				for (unsigned t = 0; t < n; t++) {
					ls[t] = { &body, grid, block, make_uint3(x, y, z), t };
					pthread_create(&th[t], NULL, emu_thread<F>, &ls[t]);
				}
				for (unsigned t = 0; t < n; t++)
					pthread_join(th[t], NULL);
				pthread_barrier_destroy(&emu_block_bar);
				for (unsigned w = 0; w < n / 32; w++)
					pthread_barrier_destroy(&emu_warps[w].bar);
			}
}

/* A BF16 tensor: bits for the kernels, the same values as floats for the reference. */
struct tensor {
	std::vector<uint16_t> bits;
	std::vector<float> f;
};

static tensor tensor_random(size_t n, double amp, uint64_t seed)
{
	tensor t;
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, 1);
	t.bits.resize(n);
	t.f.resize(n);
	for (size_t i = 0; i < n; i++) {
		t.bits[i] = bf16_from_float((float)mb_rng_uniform(&rng, -amp, amp));
		t.f[i] = bf16_to_float(t.bits[i]);
	}
	return t;
}

static const bf16 *B16(const tensor &t)
{
	return (const bf16 *)t.bits.data();
}

/* scaled_err returns max |x - ref| / max |ref|; +inf for a non-finite x. */
static double scaled_err(const float *x, const float *ref, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]))
			return INFINITY;
		num = fmax(num, fabs((double)x[i] - ref[i]));
		den = fmax(den, fabs((double)ref[i]));
	}
	return den > 0 ? num / den : num;
}

static std::vector<float> widen(const std::vector<uint16_t> &b)
{
	std::vector<float> f(b.size());
	for (size_t i = 0; i < b.size(); i++)
		f[i] = bf16_to_float(b[i]);
	return f;
}

/* fwd_emu runs the forward kernel as attn_fwd_cuda would launch it. */
template <int DQK, int DV>
static void fwd_emu(const attn_shape &s, const tensor &q, const tensor &k, const tensor &v,
		    std::vector<uint16_t> &o, std::vector<float> &lse)
{
	fwd_params p = { B16(q), B16(k), B16(v), (bf16 *)o.data(), lse.data(), s.seq, s.heads,
			 s.kv_heads, s.scale * ATT_LOG2E, s.causal, s.d_qk, s.d_v };
	emu_run([&] { attn_fwd_kernel<DQK, DV>(p); },
		dim3(att_cdiv(s.seq, FWD_BM), s.batch * s.heads), dim3(FWD_THREADS));
}

/* bwd_emu runs the backward's launches as attn_bwd_cuda would, on the kernels' own
 * forward outputs o and lse. */
template <int DQK, int DV>
static void bwd_emu(const attn_shape &s, const tensor &q, const tensor &k, const tensor &v,
		    const std::vector<uint16_t> &o, const tensor &dout, const std::vector<float> &lse,
		    std::vector<uint16_t> &dq, std::vector<uint16_t> &dk, std::vector<uint16_t> &dv)
{
	const long nq = (long)s.batch * s.seq * s.heads * s.d_qk, rows = (long)s.batch * s.seq * s.heads;
	std::vector<float> work(nq + rows, NAN);
	std::fill(work.begin(), work.begin() + nq, 0.f);
	float *acc = work.data(), *delta = acc + nq;
	bwd_params p = { B16(q), B16(k), B16(v), B16(dout), lse.data(), delta, acc,
			 (bf16 *)dk.data(), (bf16 *)dv.data(), s.seq, s.heads, s.kv_heads, s.scale,
			 s.scale * ATT_LOG2E, s.causal, s.d_qk, s.d_v };
	emu_run([&] { attn_delta_kernel((const bf16 *)o.data(), B16(dout), delta, rows, s.seq,
					s.heads, s.d_v); }, dim3((unsigned)((rows + 3) / 4)), dim3(128));
	emu_run([&] { attn_bwd_kernel<DQK, DV>(p); },
		dim3(att_cdiv(s.seq, BWD_BN), s.batch * s.kv_heads), dim3(BWD_THREADS));
	emu_run([&] { attn_dq_convert_kernel(acc, (bf16 *)dq.data(), nq); },
		dim3((unsigned)std::min<long>((nq + 255) / 256, 4096)), dim3(256));
}

/* train_case checks forward and backward of one shape (head dims s.d_qk, s.d_v) on the
 * instantiation with tile widths DQK, DV; returns 1 when both pass. */
template <int DQK, int DV>
static int train_case(attn_shape s, uint64_t seed)
{
	const size_t bs = (size_t)s.batch * s.seq, nq = bs * s.heads * s.d_qk,
		     nk = bs * s.kv_heads * s.d_qk, nv = bs * s.kv_heads * s.d_v,
		     no = bs * s.heads * s.d_v;
	tensor q = tensor_random(nq, 2.0, seed), k = tensor_random(nk, 1.0, seed + 1),
	       v = tensor_random(nv, 1.0, seed + 2), dout = tensor_random(no, 1.0, seed + 3);
	std::vector<float> o_ref(no), lse_ref(bs * s.heads), dq_ref(nq), dk_ref(nk), dv_ref(nv);
	attn_fwd_cpu(&s, q.f.data(), k.f.data(), v.f.data(), o_ref.data(), lse_ref.data());
	attn_bwd_cpu(&s, q.f.data(), k.f.data(), v.f.data(), o_ref.data(), dout.f.data(),
		     lse_ref.data(), dq_ref.data(), dk_ref.data(), dv_ref.data());
	std::vector<uint16_t> o(no, 0xffff), dq(nq, 0xffff), dk(nk, 0xffff), dv(nv, 0xffff);
	std::vector<float> lse(bs * s.heads, NAN);
	fwd_emu<DQK, DV>(s, q, k, v, o, lse);
	bwd_emu<DQK, DV>(s, q, k, v, o, dout, lse, dq, dk, dv);
	double e[5] = { scaled_err(widen(o).data(), o_ref.data(), no),
			scaled_err(lse.data(), lse_ref.data(), lse.size()),
			scaled_err(widen(dq).data(), dq_ref.data(), nq),
			scaled_err(widen(dk).data(), dk_ref.data(), nk),
			scaled_err(widen(dv).data(), dv_ref.data(), nv) };
	int ok = e[0] <= 1e-2 && e[1] <= 1e-3 && e[2] <= 2e-2 && e[3] <= 2e-2 && e[4] <= 2e-2;
	printf("%s B%d S%d H%d G%d %d/%d (tile %d/%d) causal %d: o %.3g lse %.3g dq %.3g dk %.3g "
	       "dv %.3g\n", ok ? "ok  " : "FAIL", s.batch, s.seq, s.heads, s.kv_heads, s.d_qk, s.d_v,
	       DQK, DV, s.causal, e[0], e[1], e[2], e[3], e[4]);
	return ok;
}

/* decode_case checks decode of one shape, the splits chosen as for a 132-SM device. */
template <int DQK, int DV, int RT>
static int decode_case(attn_decode_shape s, bool shared, uint64_t seed)
{
	typedef dec_smem<DQK, DV, RT> L;
	const size_t rows = (size_t)s.batch * s.ctx * s.kv_heads, nh = (size_t)s.batch * s.heads;
	tensor q = tensor_random(nh * DQK, 2.0, seed), k = tensor_random(rows * s.k_stride, 1.0, seed + 1),
	       v = tensor_random(shared ? 1 : rows * s.v_stride, 1.0, seed + 2);
	const tensor &vv = shared ? k : v;
	std::vector<float> o_ref(nh * DV), lse_ref(nh);
	attn_decode_cpu(&s, q.f.data(), k.f.data(), vv.f.data(), o_ref.data(), lse_ref.data());
	const int group = s.heads / s.kv_heads, tiles = att_cdiv(s.ctx, DEC_DN);
	const long others = (long)s.batch * s.kv_heads * att_cdiv(group, L::HB);
	int want = (int)std::min<long>((2L * 132 + others - 1) / others, att_cdiv(tiles, DEC_MIN_TILES));
	const int per = att_decode_tiles_per_split(tiles, want), splits = att_cdiv(tiles, per);
	std::vector<float> work(nh * splits * (DV + 2), NAN);
	dec_params p = { B16(q), B16(k), B16(vv), work.data(), work.data() + nh * splits * DV,
			 s.ctx, s.heads, s.kv_heads, splits, per * DEC_DN, s.k_stride, s.v_stride,
			 shared, s.scale * ATT_LOG2E };
	int p_off;
	L::bytes(shared, &p_off);
	std::vector<uint16_t> o(nh * DV, 0xffff);
	std::vector<float> lse(nh, NAN);
	emu_run([&] { attn_decode_kernel<DQK, DV, RT>(p, p_off); },
		dim3(att_cdiv(group, L::HB), splits, s.batch * s.kv_heads), dim3(L::THREADS));
	emu_run([&] { attn_decode_combine_kernel(p.part_o, p.part_ml, splits, DV, (bf16 *)o.data(),
						 lse.data()); }, dim3((unsigned)nh), dim3(128));
	double e[2] = { scaled_err(widen(o).data(), o_ref.data(), o.size()),
			scaled_err(lse.data(), lse_ref.data(), nh) };
	int ok = e[0] <= 1e-2 && e[1] <= 1e-3;
	printf("%s decode B%d ctx%d H%d G%d %d/%d shared %d splits %d: o %.3g lse %.3g\n",
	       ok ? "ok  " : "FAIL", s.batch, s.ctx, s.heads, s.kv_heads, DQK, DV, (int)shared,
	       splits, e[0], e[1]);
	return ok;
}

int main(void)
{
	int ok = 1;
	ok &= train_case<192, 128>({ 1, 130, 2, 2, 192, 128, true, 1.f / sqrtf(192.f) }, 11);
	ok &= train_case<192, 128>({ 1, 17, 2, 2, 192, 128, false, 1.f / sqrtf(192.f) }, 12);
	ok &= train_case<128, 128>({ 1, 64, 2, 2, 128, 128, false, 1.f / sqrtf(128.f) }, 13);
	ok &= train_case<64, 64>({ 1, 100, 4, 2, 64, 64, true, 0.125f }, 14);
	ok &= train_case<64, 64>({ 2, 1, 2, 1, 64, 64, true, 0.125f }, 15);
	ok &= train_case<128, 128>({ 1, 130, 4, 2, 128, 128, false, 1.f / sqrtf(128.f) }, 16);
	ok &= train_case<192, 128>({ 1, 70, 4, 1, 192, 128, true, 1.f / sqrtf(192.f) }, 17);
	/* batch > 1 with GQA, causal, off the tiles: the (batch, head) and (batch, kv head)
	 * offsets of every launch and dQ rows from two key-tile CTAs per sequence */
	ok &= train_case<64, 64>({ 2, 70, 4, 2, 64, 64, true, 0.125f }, 18);
	/* the presets' head dims on their exact instantiations: v3-tiny 48/32, v3-small
	 * 96/64; and a pair with none (80/48) on the square 128 tile, zero columns past
	 * each dim, GQA and causal */
	ok &= train_case<48, 32>({ 1, 130, 2, 2, 48, 32, true, 1.f / sqrtf(48.f) }, 19);
	ok &= train_case<48, 32>({ 2, 33, 4, 2, 48, 32, false, 1.f / sqrtf(48.f) }, 20);
	ok &= train_case<96, 64>({ 1, 100, 2, 1, 96, 64, true, 1.f / sqrtf(96.f) }, 28);
	ok &= train_case<128, 128>({ 1, 70, 4, 2, 80, 48, true, 1.f / sqrtf(80.f) }, 29);
	ok &= decode_case<128, 128, 1>({ 1, 100, 4, 4, 128, 128, 192, 160, 1.f / sqrtf(128.f) }, false, 21);
	ok &= decode_case<64, 64, 2>({ 1, 70, 40, 1, 64, 64, 64, 72, 0.125f }, false, 22);
	ok &= decode_case<576, 512, 1>({ 1, 200, 16, 1, 576, 512, 576, 576, 1.f / 24.f }, true, 23);
	ok &= decode_case<576, 512, 1>({ 2, 1, 16, 1, 576, 512, 576, 576, 1.f / 24.f }, true, 24);
	ok &= decode_case<576, 512, 2>({ 1, 90, 40, 1, 576, 512, 576, 576, 1.f / 24.f }, true, 25);
	ok &= decode_case<576, 512, 1>({ 1, 100, 16, 1, 576, 512, 584, 520, 1.f / 24.f }, false, 26);
	ok &= decode_case<192, 128, 1>({ 2, 65, 4, 2, 192, 128, 192, 128, 1.f / sqrtf(192.f) }, false, 27);
	return ok ? 0 : 1;
}
