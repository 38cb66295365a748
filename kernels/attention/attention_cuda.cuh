/*
 * attention_cuda.cuh - device helpers shared by attention.cu (forward),
 * attention_bwd.cu and attention_decode.cu: the BF16 tensor-core MMA, fragment loads
 * (ldmatrix) from padded shared-memory tiles, the tile loader and the launch checks.
 * Under ATT_EMULATE (tests/attention_emu.cpp) the MMA and ldmatrix call host
 * emulations instead of their PTX.
 *
 * Shared-memory tiles are row-major BF16 with ATT_PAD elements of padding per row: a
 * pitch of d + 8 elements is 4 (mod 32) words for every d that is a multiple of 64 (and
 * 20 words for the 32 + 8 of decode's P), so the 8 rows of one ldmatrix matrix land
 * on 8 different groups of 4 banks.
 */
#ifndef MB_ATTENTION_CUDA_CUH
#define MB_ATTENTION_CUDA_CUH

#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cublasLt.h>   /* before cuda_check.h, outside extern "C" (C++ overloads) */

extern "C" {
#include "attention.h"
#include "cuda_check.h"
#include "status.h"
}
#include "attention_tiles.h"

#define ATT_PAD 8
#define ATT_LOG2E 1.4426950408889634f
#define ATT_LN2 0.6931471805599453f

typedef __nv_bfloat16 bf16;

/* att_mma does c += a * b on a 16x8x16 BF16 tile with FP32 accumulation (sm_80+). */
#ifdef ATT_EMULATE
void att_emu_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
#endif
__device__ __forceinline__ void att_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
#ifdef ATT_EMULATE
	att_emu_mma(c, a, b0, b1);   /* tests/attention_emu.cpp: the warp's product on the host */
#else
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
		     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/* att_pack rounds two floats to BF16, lo in the lower 16 bits. */
__device__ __forceinline__ uint32_t att_pack(float lo, float hi)
{
	__nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);   /* .x = lo: the lower half */
	uint32_t u;
	memcpy(&u, &v, sizeof(u));
	return u;
}

/* att_ld_pair loads two adjacent BF16 values (4-byte aligned), p[0] in the low half. */
__device__ __forceinline__ uint32_t att_ld_pair(const bf16 *p)
{
	return *reinterpret_cast<const uint32_t *>(p);
}

/* att_ld_two packs two BF16 values from anywhere, *lo in the low half. */
__device__ __forceinline__ uint32_t att_ld_two(const bf16 *lo, const bf16 *hi)
{
	uint32_t l = *reinterpret_cast<const uint16_t *>(lo);
	uint32_t h = *reinterpret_cast<const uint16_t *>(hi);
	return l | (h << 16);
}

#ifdef ATT_EMULATE
void att_emu_ldsm(uint32_t r[4], const void *row, bool trans);
#endif

/* att_ldsm_x4 is ldmatrix .x4: lanes 8j..8j+7 give the addresses of the 8 rows (16
 * bytes each) of 8x8 matrix j, and lane l receives in r[j] the elements (l/4, 2(l%4))
 * and (l/4, 2(l%4)+1) of matrix j; with trans, (2(l%4), l/4) and (2(l%4)+1, l/4). */
template <bool TRANS>
__device__ __forceinline__ void att_ldsm_x4(uint32_t r[4], const bf16 *row)
{
#ifdef ATT_EMULATE
	att_emu_ldsm(r, row, TRANS);
#else
	const uint32_t a = (uint32_t)__cvta_generic_to_shared(row);
	if (TRANS)
		asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
			     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a) : "memory");
	else
		asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
			     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a) : "memory");
#endif
}

/* att_load_a loads the A fragment of the 16x16 block at (row0, col0) of a row-major
 * tile of pitch `pitch` (row = a_row, col = a_col of attention_tiles.h): matrices 0-3
 * of one ldmatrix are the blocks (rows +0, cols +0), (+8, +0), (+0, +8), (+8, +8),
 * which are a[0..3]. */
__device__ __forceinline__ void att_load_a(uint32_t a[4], const bf16 *s, int pitch, int row0,
					   int col0, int lane)
{
	const int j = lane / 8, i = lane % 8;
	att_ldsm_x4<false>(a, s + (row0 + i + 8 * (j % 2)) * pitch + col0 + 8 * (j / 2));
}

/* att_load_b_nk loads one B fragment (k 16 x n 8) from a tile stored n-major, element
 * (k, n) at s[(n0 + n) * pitch + k0 + k], with two 32-bit loads per register: keys of
 * K for Q K^T when only one n tile is wanted. */
__device__ __forceinline__ void att_load_b_nk(uint32_t b[2], const bf16 *s, int pitch, int n0,
					      int k0, int lane)
{
	const bf16 *p = s + (n0 + lane / 4) * pitch + k0 + 2 * (lane % 4);
	b[0] = att_ld_pair(p);
	b[1] = att_ld_pair(p + 8);
}

/* att_load_b_nk2 loads the B fragments of n tiles n0 and n0 + 8 from an n-major tile
 * (as att_load_b_nk) with one ldmatrix: matrices (n +0, k +0), (+0, +8), (+8, +0),
 * (+8, +8) are b[0][0], b[0][1], b[1][0], b[1][1]. */
__device__ __forceinline__ void att_load_b_nk2(uint32_t b[2][2], const bf16 *s, int pitch,
					       int n0, int k0, int lane)
{
	const int j = lane / 8, i = lane % 8;
	uint32_t r[4];
	att_ldsm_x4<false>(r, s + (n0 + i + 8 * (j / 2)) * pitch + k0 + 8 * (j % 2));
	b[0][0] = r[0], b[0][1] = r[1], b[1][0] = r[2], b[1][1] = r[3];
}

/* att_load_b_kn2 loads the B fragments of n tiles n0 and n0 + 8 from a tile stored
 * k-major, element (k, n) at s[(k0 + k) * pitch + n0 + n] (rows of V for P V), with
 * one transposing ldmatrix: matrices (k +0, n +0), (+8, +0), (+0, +8), (+8, +8) are
 * b[0][0], b[0][1], b[1][0], b[1][1]. */
__device__ __forceinline__ void att_load_b_kn2(uint32_t b[2][2], const bf16 *s, int pitch,
					       int k0, int n0, int lane)
{
	const int j = lane / 8, i = lane % 8;
	uint32_t r[4];
	att_ldsm_x4<true>(r, s + (k0 + i + 8 * (j % 2)) * pitch + n0 + 8 * (j / 2));
	b[0][0] = r[0], b[0][1] = r[1], b[1][0] = r[2], b[1][1] = r[3];
}

/* att_cp16 starts an asynchronous 16-byte copy from global src to shared dst
 * (cp.async, sm_80+), or zero-fills dst when !valid (src-size 0: nothing is read). */
__device__ __forceinline__ void att_cp16(bf16 *dst, const bf16 *src, bool valid)
{
#ifdef ATT_EMULATE
	*reinterpret_cast<uint4 *>(dst) = valid ? *reinterpret_cast<const uint4 *>(src)
						: make_uint4(0u, 0u, 0u, 0u);
#else
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
		     :: "r"((uint32_t)__cvta_generic_to_shared(dst)),
			"l"(__cvta_generic_to_global(src)), "r"(valid ? 16 : 0));
#endif
}

/* att_cp_wait_all waits for this thread's copies; a __syncthreads must follow before
 * other threads read them. */
__device__ __forceinline__ void att_cp_wait_all(void)
{
#ifndef ATT_EMULATE
	asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

/* att_load_rows starts copying rows [0, rows) of a global matrix (row r at
 * g + r * gstride, COLS contiguous BF16 values, 16-byte aligned) into a shared tile of
 * pitch COLS + ATT_PAD, in 16-byte pieces spread over nthreads threads; rows at or
 * past nvalid (>= 1) and columns at or past ncols (a multiple of 8, <= COLS: a head
 * dim narrower than the tile) are zero-filled, so masked positions hold zeros rather
 * than garbage (a 0 * NaN would poison the sums) and zero columns add nothing to a
 * product over them. The caller waits (att_cp_wait_all) and synchronizes before
 * reading.
 * NOTE: cp.async puts every piece of the tile in flight at once; plain loads with a
 * store after each would wait a memory latency per piece. */
template <int COLS>
__device__ __forceinline__ void att_load_rows(bf16 *s, const bf16 *g, long gstride, int rows,
					      int nvalid, int tid, int nthreads, int ncols = COLS)
{
	constexpr int CH = COLS / 8;
	for (int i = tid; i < rows * CH; i += nthreads) {
		const int r = i / CH, c = (i % CH) * 8;
		const bool ok = r < nvalid && c < ncols;
		att_cp16(s + r * (COLS + ATT_PAD) + c, g + (ok ? r * gstride + c : 0), ok);
	}
}

/* att_scores sets s[j] (j < NJ), the C fragments of the 16 x 8NJ product
 * A[row0..row0+15] B[0..8NJ-1]^T over D columns, from two row-major shared tiles of
 * pitch D + ATT_PAD: S = Q K^T in the forward, S^T = K Q^T and dP^T = V dO^T in the
 * backward, S = Q K^T of a head tile in decode. B fragments come in pairs of n tiles
 * (one ldmatrix) when NJ is even. */
template <int D, int NJ>
__device__ __forceinline__ void att_scores(float s[NJ][4], const bf16 *sa, int row0,
					   const bf16 *sb, int lane)
{
	constexpr int P = D + ATT_PAD;
#pragma unroll
	for (int j = 0; j < NJ; j++)
		s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll 4
	for (int kk = 0; kk < D / 16; kk++) {
		uint32_t a[4], b[2];
		att_load_a(a, sa, P, row0, kk * 16, lane);
		if constexpr (NJ % 2) {
#pragma unroll
			for (int j = 0; j < NJ; j++) {
				att_load_b_nk(b, sb, P, j * 8, kk * 16, lane);
				att_mma(s[j], a, b[0], b[1]);
			}
		} else {
#pragma unroll
			for (int j = 0; j < NJ; j += 2) {
				uint32_t b2[2][2];
				att_load_b_nk2(b2, sb, P, j * 8, kk * 16, lane);
				att_mma(s[j], a, b2[0][0], b2[0][1]);
				att_mma(s[j + 1], a, b2[1][0], b2[1][1]);
			}
		}
	}
}

/* att_acc_ptile adds (16 x KN tile held as C fragments c) x (KN x NC shared tile sb,
 * row-major, pitch NC + ATT_PAD) to acc: P V in the forward, P^T dO and dS^T Q in the
 * backward. The C fragments of n tiles 2kk and 2kk+1, rounded to BF16, are the A
 * operand of K step kk (att_p_tile): no trip through shared memory. NC is a multiple
 * of 16 (B fragments come in pairs of n tiles). */
template <int KN, int NC>
__device__ __forceinline__ void att_acc_ptile(float acc[NC / 8][4], const float c[KN / 8][4],
					      const bf16 *sb, int lane)
{
	constexpr int P = NC + ATT_PAD;
#pragma unroll
	for (int kk = 0; kk < KN / 16; kk++) {
		uint32_t a[4], b[2][2];
#pragma unroll
		for (int r = 0; r < 4; r++) {
			const float *x = c[att_p_tile(kk, r)] + att_p_elem(r);
			a[r] = att_pack(x[0], x[1]);
		}
#pragma unroll
		for (int n = 0; n < NC / 8; n += 2) {
			att_load_b_kn2(b, sb, P, kk * 16, n * 8, lane);
			att_mma(acc[n], a, b[0][0], b[0][1]);
			att_mma(acc[n + 1], a, b[1][0], b[1][1]);
		}
	}
}

/* att_aligned16 says whether a device pointer is non-NULL and allows 16-byte loads. */
static inline bool att_aligned16(const void *p)
{
	return p && ((uintptr_t)p & 15u) == 0;
}

/* att_set_smem lets kernel fn use `bytes` of dynamic shared memory; MB_ERR_UNSUPPORTED
 * when the device has no image of it (built for other architectures). */
static inline int att_set_smem(const void *fn, size_t bytes, const char *what)
{
	struct cudaFuncAttributes attr;
	if (cudaFuncGetAttributes(&attr, fn) != cudaSuccess) {
		cudaGetLastError();
		fprintf(stderr, "%s: no kernel image for this device (needs sm_80 or newer, "
			"built for CMAKE_CUDA_ARCHITECTURES)\n", what);
		return MB_ERR_UNSUPPORTED;
	}
	return MB_CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
						  (int)bytes));
}

/* att_check_train_shape applies the rules the forward and backward kernels share and
 * prints the one broken: attn_shape_check's (sizes >= 1, kv_heads dividing heads, a
 * finite scale), batch * heads within the grid's y limit, d_qk and d_v multiples of 16
 * up to ATT_TRAIN_MAX_DIM. */
static inline int att_check_train_shape(const struct attn_shape *s, const char *what)
{
	char why[160];
	if (attn_shape_check(s, why, sizeof(why))) {
		fprintf(stderr, "%s: bad shape: %s\n", what, why);
		return MB_ERR_ARG;
	}
	if ((long)s->batch * s->heads > 65535) {
		fprintf(stderr, "%s: batch * heads = %ld is over the grid's 65535\n", what,
			(long)s->batch * s->heads);
		return MB_ERR_ARG;
	}
	if (!att_train_dims_ok(s->d_qk, s->d_v)) {
		fprintf(stderr, "%s: head dims d_qk=%d d_v=%d: each must be a multiple of 16 "
			"up to %d\n", what, s->d_qk, s->d_v, ATT_TRAIN_MAX_DIM);
		return MB_ERR_UNSUPPORTED;
	}
	return MB_OK;
}

#endif
