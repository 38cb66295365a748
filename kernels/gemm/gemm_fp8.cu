/*
 * gemm_fp8.cu - our own FP8 GEMM on tensor cores: D[M,N] = A[M,K] * B[N,K]^T.
 *
 * Shapes: M rows of A and D (any M >= 1); N rows of B and columns of D (a multiple of
 * 128); K the shared, contiguous dimension (a multiple of 128). A and B are E4M3 codes,
 * row-major (K-major); D is BF16, row-major. Scales as fp8.h: x ~= decode(q) * scale,
 * A one scale per row per 128 K (or one per tensor), B one per 128x128 block (or one
 * per tensor).
 *
 *   v1: mma.sync m16n8k32 E4M3 (sm_89+); a 128x128 tile per CTA, 8 warps of 64x32;
 *       K in steps of 128 (one scale block) through a 4-stage cp.async ring in
 *       XOR-swizzled shared memory, fragments by ldmatrix. Each 128-wide K block is
 *       accumulated from zero on the tensor cores, then multiplied by
 *       scale_a[row][kb] * scale_b[n block][kb] and added to FP32 registers: the
 *       promotion every N_C = 128 of DeepSeek-V3 (arXiv:2412.19437, sec. 3.3.2). On
 *       sm_90, which has no E4M3 mma.sync, the fragments are widened to FP16 once each
 *       and multiplied by m16n8k16 FP16 MMAs (exact products, FP32 accumulation).
 *       fast_accum (per-tensor scales only) keeps one tensor-core accumulator over all
 *       of K and scales it once at the end. Grouped (MoE experts): the same kernel over
 *       the stacked, 128-padded rows of all experts; each M tile looks up its expert
 *       and reads that expert's rows of B.
 */
#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <cublasLt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "bf16.h"
#include "cuda_check.h"
#include "gemm_cuda_impl.h"
#include "status.h"
}

#define V1_BM 128            /* rows of D per CTA */
#define V1_BN 128            /* columns of D per CTA: one 128x128 block of B's scales */
#define V1_BK 128            /* K per step: one scale block */
#define V1_STAGES 4
#define V1_THREADS 256
#define V1_GROUP_M 8         /* M tiles walked together, so their B tiles stay in L2 */
#define V1_TILE_BYTES (V1_BM * V1_BK)
#define V1_STAGE_BYTES (2 * V1_TILE_BYTES)
#define V1_SMEM_BYTES (V1_STAGES * V1_STAGE_BYTES)

enum v1_mode { V1_BLOCK_SCALED, V1_TENSOR_SCALED, V1_TENSOR_FAST };

struct v1_params {
	const uint8_t *a, *b;            /* [m,k], [rows of b,k] E4M3 codes */
	const float *scale_a, *scale_b;  /* fp8.h layouts */
	const int *tile_expert;          /* M tile -> expert (grouped), or NULL */
	__nv_bfloat16 *d;                /* [m,n] */
	int m, n, k;
};

struct gemm_v1 {
	enum v1_mode mode;
	int m, n, k, tiles;
	cudaStream_t stream;
	uint8_t *d_a, *d_b;
	float *d_scale_a, *d_scale_b;
	int *d_tile_expert;
	__nv_bfloat16 *d_d;
	uint16_t *h_d;                   /* D copied back, BF16 bits */
};

/* ---- GPU kernels ---- */

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
	/* NOTE: src_bytes 0 zero-fills the 16 bytes: rows of A past M read as zeros. */
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
		     :: "r"(dst), "l"(src), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit(void)
{
	asm volatile("cp.async.commit_group;\n" ::);
}

template <int N> __device__ __forceinline__ void cp_async_wait(void)
{
	asm volatile("cp.async.wait_group %0;\n" :: "n"(N));
}

/* ldmatrix_x4 loads four 8x16-byte matrices: lanes 8j..8j+7 give the row addresses of
 * matrix j, and lane l receives bytes 4(l%4)..4(l%4)+3 of row l/4 of each, which is
 * the m16n8k32 E4M3 fragment layout of A (and of B, K-major) in the PTX ISA. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], uint32_t addr)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
		     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

/* mma_e4m3 does c += a * b on a 16x8x32 E4M3 tile with the tensor core's accumulator. */
__device__ __forceinline__ void mma_e4m3(float c[4], const uint32_t a[4], const uint32_t b[2])
{
	asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
		     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* v1_swizzle returns the byte offset of 16-byte chunk `chunk` of tile row `row`.
 * NOTE: rows are 128 bytes, so the 8 rows one ldmatrix phase reads would all hit the
 * same 4 banks; XOR-ing the chunk with row % 8 spreads them over all 32. */
__device__ __forceinline__ uint32_t v1_swizzle(int row, int chunk)
{
	return (uint32_t)(row * V1_BK + ((chunk ^ (row & 7)) << 4));
}

/* v1_tile_of maps a CTA to its (M tile, N tile), walking V1_GROUP_M M tiles across
 * all N tiles before moving on, so the CTAs in flight share A and B tiles in L2. */
__device__ __forceinline__ void v1_tile_of(int cta, int tiles_m, int tiles_n, int *tm, int *tn)
{
	int width = V1_GROUP_M * tiles_n;
	int first_m = (cta / width) * V1_GROUP_M;
	int rows = min(tiles_m - first_m, V1_GROUP_M);
	*tm = first_m + (cta % width) % rows;
	*tn = (cta % width) / rows;
}

/* v1_load_stage starts the copies of A's and B's 128x128-byte tiles of K block kb. */
__device__ __forceinline__ void v1_load_stage(uint32_t s_a, uint32_t s_b, const v1_params &p,
					      int m0, int b_row0, int kb)
{
#pragma unroll
	for (int i = 0; i < V1_TILE_BYTES / 16 / V1_THREADS; i++) {
		int idx = threadIdx.x + i * V1_THREADS;
		int row = idx >> 3, chunk = idx & 7;
		size_t col = (size_t)kb * V1_BK + chunk * 16;
		int a_row = m0 + row;
		const uint8_t *src_a = p.a + (size_t)(a_row < p.m ? a_row : 0) * p.k + col;
		cp_async16(s_a + v1_swizzle(row, chunk), src_a, a_row < p.m ? 16 : 0);
		cp_async16(s_b + v1_swizzle(row, chunk), p.b + (size_t)(b_row0 + row) * p.k + col, 16);
	}
}

/* The fragments of one 32-wide K step of a warp's 64x32 tile: 4 m16 tiles of A, 4 n8
 * tiles of B. */
struct v1_frags {
	uint32_t a[4][4], b[4][2];
};

/* Per-lane shared-memory offsets of ldmatrix rows; the XOR terms are the lane's part
 * of v1_swizzle (row % 8 is lane % 8 for every row a lane addresses). */
struct v1_lane {
	uint32_t a_row, a_x, b_row, b_x;
};

/* v1_load_frags loads K step ks of the warp's tile from one stage. */
__device__ __forceinline__ void v1_load_frags(v1_frags &f, uint32_t s_a, uint32_t s_b, int ks,
					      const v1_lane &l)
{
	uint32_t ca = (((uint32_t)ks * 2) ^ l.a_x) << 4, cb = (((uint32_t)ks * 2) ^ l.b_x) << 4;
	uint32_t r[4];
#pragma unroll
	for (int mi = 0; mi < 4; mi++)
		ldmatrix_x4(f.a[mi], s_a + l.a_row + mi * 16 * V1_BK + ca);
#pragma unroll
	for (int p = 0; p < 2; p++) {
		ldmatrix_x4(r, s_b + l.b_row + p * 16 * V1_BK + cb);
		f.b[2 * p][0] = r[0];
		f.b[2 * p][1] = r[1];
		f.b[2 * p + 1][0] = r[2];
		f.b[2 * p + 1][1] = r[3];
	}
}

/* NOTE: sm_90 has no E4M3 mma.sync: ptxas emulates m16n8k32 E4M3 by converting both
 * fragments to FP16 for every MMA and running FP16 MMAs (NVIDIA/cutlass#1986). On
 * sm_90 we do that conversion ourselves, once per fragment, and issue m16n8k16 FP16
 * MMAs with FP32 accumulation; E4M3 -> FP16 is exact, so the products are the same.
 * V1_NATIVE_E4M3 forces the E4M3 instruction (for comparison). Either way there are
 * 1.5 conversions (F2FP) per FP16 MMA with 64x32 warp tiles, and on an H100 they,
 * rather than the MMAs, appear to set v1's rate; WGMMA reads E4M3 natively. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && !defined(V1_NATIVE_E4M3)
#define V1_VIA_F16 1
#else
#define V1_VIA_F16 0
#endif

/* e4m3x4_to_f16 widens the four E4M3 codes of x: bytes 0-1 into lo, 2-3 into hi. */
__device__ __forceinline__ void e4m3x4_to_f16(uint32_t x, uint32_t &lo, uint32_t &hi)
{
	asm("{\n.reg .b16 l, h;\nmov.b32 {l, h}, %2;\n"
	    "cvt.rn.f16x2.e4m3x2 %0, l;\ncvt.rn.f16x2.e4m3x2 %1, h;\n}\n"
	    : "=r"(lo), "=r"(hi) : "r"(x));
}

/* mma_f16 does c += a * b on a 16x8x16 FP16 tile, FP32 accumulation. */
__device__ __forceinline__ void mma_f16(float c[4], uint32_t a0, uint32_t a1, uint32_t a2,
					uint32_t a3, uint32_t b0, uint32_t b1)
{
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
		     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* v1_mma_step multiplies one 32-wide K step of fragments into frag. Via FP16, an E4M3
 * register of K k..k+3 becomes two FP16 pairs (k, k+1) and (k+2, k+3); m16n8k16 reads
 * A pairs (2t, 2t+1) and (2t+8, 2t+9), B likewise, so placing lo where it reads 2t
 * and hi where it reads 2t+8, in A and B alike, sums the same 16 products. */
__device__ __forceinline__ void v1_mma_step(float frag[4][4][4], const v1_frags &f)
{
#if V1_VIA_F16
	uint32_t b[4][4], a[8];
#pragma unroll
	for (int nj = 0; nj < 4; nj++) {
		e4m3x4_to_f16(f.b[nj][0], b[nj][0], b[nj][1]);
		e4m3x4_to_f16(f.b[nj][1], b[nj][2], b[nj][3]);
	}
#pragma unroll
	for (int mi = 0; mi < 4; mi++) {
#pragma unroll
		for (int r = 0; r < 4; r++)
			e4m3x4_to_f16(f.a[mi][r], a[2 * r], a[2 * r + 1]);
#pragma unroll
		for (int nj = 0; nj < 4; nj++) {
			mma_f16(frag[mi][nj], a[0], a[2], a[1], a[3], b[nj][0], b[nj][1]);
			mma_f16(frag[mi][nj], a[4], a[6], a[5], a[7], b[nj][2], b[nj][3]);
		}
	}
#else
#pragma unroll
	for (int mi = 0; mi < 4; mi++)
#pragma unroll
		for (int nj = 0; nj < 4; nj++)
			mma_e4m3(frag[mi][nj], f.a[mi], f.b[nj]);
#endif
}

/* v1_mma_stage adds one 128-wide K block of the warp's 64x32 tile into frag, loading
 * the fragments of step ks+1 while the MMAs of step ks run. */
__device__ __forceinline__ void v1_mma_stage(float frag[4][4][4], uint32_t s_a, uint32_t s_b,
					     const v1_lane &l)
{
	v1_frags f[2];
	v1_load_frags(f[0], s_a, s_b, 0, l);
#pragma unroll
	for (int ks = 0; ks < V1_BK / 32; ks++) {
		if (ks + 1 < V1_BK / 32)
			v1_load_frags(f[(ks + 1) & 1], s_a, s_b, ks + 1, l);
		v1_mma_step(frag, f[ks & 1]);
	}
}

/* v1_promote adds the K block's tensor-core sums, scaled, into the FP32 accumulator
 * and restarts them from zero. */
template <int MODE>
__device__ __forceinline__ void v1_promote(float acc[4][4][4], float frag[4][4][4],
					   const float sa[4][2], float sb, float s_tensor)
{
#pragma unroll
	for (int mi = 0; mi < 4; mi++)
#pragma unroll
		for (int nj = 0; nj < 4; nj++)
#pragma unroll
			for (int e = 0; e < 4; e++) {
				float s = MODE == V1_BLOCK_SCALED ? sa[mi][e >> 1] * sb : s_tensor;
				acc[mi][nj][e] = fmaf(frag[mi][nj][e], s, acc[mi][nj][e]);
				frag[mi][nj][e] = 0.f;
			}
}

/* gemm_v1_kernel computes one 128x128 tile of D. Thread (lane) holds, for each of the
 * warp's 4x4 16x8 sub-tiles, rows lane/4 and lane/4+8, columns 2(lane%4) and +1. */
template <int MODE>
__global__ void __launch_bounds__(V1_THREADS, 1) gemm_v1_kernel(v1_params p)
{
	extern __shared__ __align__(128) uint8_t smem[];
	const int tiles_m = (p.m + V1_BM - 1) / V1_BM, kblocks = p.k / V1_BK;
	int tm, tn;
	v1_tile_of(blockIdx.x, tiles_m, p.n / V1_BN, &tm, &tn);
	const int m0 = tm * V1_BM;
	const int b_row0 = (p.tile_expert ? p.tile_expert[tm] * p.n : 0) + tn * V1_BN;
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const int warp_m = (warp >> 2) * 64, warp_n = (warp & 3) * 32;
	/* ldmatrix row addresses: A lanes 0-15 rows 0-15 at K chunk 0, lanes 16-31 the
	 * same rows at chunk 1; B lanes 0-7 and 8-15 rows 0-7 at chunks 0 and 1, lanes
	 * 16-31 rows 8-15 likewise (see ldmatrix_x4 and the m16n8k32 layouts). */
	const v1_lane lane_off = {
		(uint32_t)(warp_m + (lane & 15)) * V1_BK, (uint32_t)((lane >> 4) ^ (lane & 7)),
		(uint32_t)(warp_n + (lane & 7) + ((lane >> 4) << 3)) * V1_BK,
		(uint32_t)(((lane >> 3) & 1) ^ (lane & 7)),
	};
	const uint32_t s0 = (uint32_t)__cvta_generic_to_shared(smem);
	const float s_tensor = MODE == V1_BLOCK_SCALED ? 0.f : p.scale_a[0] * p.scale_b[0];
	const float *scale_b = p.scale_b + (size_t)(b_row0 / V1_BN) * kblocks;
	float acc[4][4][4] = {}, frag[4][4][4] = {};

	for (int s = 0; s < V1_STAGES - 1; s++) {
		if (s < kblocks)
			v1_load_stage(s0 + s * V1_STAGE_BYTES, s0 + s * V1_STAGE_BYTES + V1_TILE_BYTES,
				      p, m0, b_row0, s);
		cp_async_commit();
	}
	for (int kb = 0; kb < kblocks; kb++) {
		/* NOTE: one commit per step (empty at the tail), so "all but STAGES-2 groups
		 * done" always means block kb has landed; the barrier also tells us every
		 * warp is done with the stage the next copy overwrites. */
		cp_async_wait<V1_STAGES - 2>();
		__syncthreads();
		int next = kb + V1_STAGES - 1, ns = next % V1_STAGES;
		if (next < kblocks)
			v1_load_stage(s0 + ns * V1_STAGE_BYTES, s0 + ns * V1_STAGE_BYTES + V1_TILE_BYTES,
				      p, m0, b_row0, next);
		cp_async_commit();

		float sa[4][2], sb = 1.f;
		if (MODE == V1_BLOCK_SCALED) {
			sb = __ldg(scale_b + kb);
#pragma unroll
			for (int mi = 0; mi < 4; mi++)
#pragma unroll
				for (int h = 0; h < 2; h++) {
					int row = m0 + warp_m + mi * 16 + (lane >> 2) + h * 8;
					sa[mi][h] = row < p.m ? __ldg(p.scale_a + (size_t)row * kblocks + kb) : 0.f;
				}
		}
		int cs = kb % V1_STAGES;
		v1_mma_stage(frag, s0 + cs * V1_STAGE_BYTES, s0 + cs * V1_STAGE_BYTES + V1_TILE_BYTES,
			     lane_off);
		if (MODE != V1_TENSOR_FAST)
			v1_promote<MODE>(acc, frag, sa, sb, s_tensor);
	}
	cp_async_wait<0>();

#pragma unroll
	for (int mi = 0; mi < 4; mi++)
#pragma unroll
		for (int nj = 0; nj < 4; nj++)
#pragma unroll
			for (int h = 0; h < 2; h++) {
				int row = m0 + warp_m + mi * 16 + (lane >> 2) + h * 8;
				int col = tn * V1_BN + warp_n + nj * 8 + 2 * (lane & 3);
				float x0 = acc[mi][nj][2 * h], x1 = acc[mi][nj][2 * h + 1];
				if (MODE == V1_TENSOR_FAST) {
					x0 = frag[mi][nj][2 * h] * s_tensor;
					x1 = frag[mi][nj][2 * h + 1] * s_tensor;
				}
				if (row < p.m)
					*(__nv_bfloat162 *)(p.d + (size_t)row * p.n + col) =
						__floats2bfloat162_rn(x0, x1);
			}
}

/* ---- launchers ---- */

/* v1_prepare lets the kernel of `mode` use V1_SMEM_BYTES of dynamic shared memory;
 * MB_ERR_UNSUPPORTED when this device has no image of it (below sm_89, or an
 * architecture the build left out). */
static int v1_prepare(enum v1_mode mode)
{
	const void *fn = mode == V1_BLOCK_SCALED ? (const void *)gemm_v1_kernel<V1_BLOCK_SCALED>
		       : mode == V1_TENSOR_SCALED ? (const void *)gemm_v1_kernel<V1_TENSOR_SCALED>
		       : (const void *)gemm_v1_kernel<V1_TENSOR_FAST>;
	struct cudaFuncAttributes attr;
	if (cudaFuncGetAttributes(&attr, fn) != cudaSuccess) {
		cudaGetLastError();
		fprintf(stderr, "gemm v1: no kernel image for this device (needs sm_89 or newer, "
			"built for CMAKE_CUDA_ARCHITECTURES)\n");
		return MB_ERR_UNSUPPORTED;
	}
	return MB_CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
						  V1_SMEM_BYTES));
}

/* v1_launch enqueues the kernel of g's mode over all of g's tiles. */
static int v1_launch(const struct gemm_v1 *g)
{
	v1_params p = { g->d_a, g->d_b, g->d_scale_a, g->d_scale_b, g->d_tile_expert, g->d_d,
			g->m, g->n, g->k };
	dim3 grid(g->tiles), block(V1_THREADS);
	if (g->mode == V1_BLOCK_SCALED)
		gemm_v1_kernel<V1_BLOCK_SCALED><<<grid, block, V1_SMEM_BYTES, g->stream>>>(p);
	else if (g->mode == V1_TENSOR_SCALED)
		gemm_v1_kernel<V1_TENSOR_SCALED><<<grid, block, V1_SMEM_BYTES, g->stream>>>(p);
	else
		gemm_v1_kernel<V1_TENSOR_FAST><<<grid, block, V1_SMEM_BYTES, g->stream>>>(p);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* ---- dispatch ---- */

/* v1_check_shapes applies v1's rules to A [m,k] and B [b_rows,k]; prints the rule
 * broken and returns MB_ERR_ARG. */
static int v1_check_shapes(int m, int n, int k, const struct fp8_matrix *a,
			   const struct fp8_matrix *b, int b_rows)
{
	if (m < 1 || n < 1 || k < 1 || a->rows != m || a->cols != k || b->rows != b_rows ||
	    b->cols != k) {
		fprintf(stderr, "gemm v1: shapes disagree: m=%d n=%d k=%d, A %dx%d, B %dx%d\n",
			m, n, k, a->rows, a->cols, b->rows, b->cols);
		return MB_ERR_ARG;
	}
	if (k % V1_BK) {
		fprintf(stderr, "gemm v1: K=%d must be a multiple of 128 (one scale block per K "
			"step)\n", k);
		return MB_ERR_ARG;
	}
	if (n % V1_BN) {
		fprintf(stderr, "gemm v1: N=%d must be a multiple of 128 (one 128x128 scale "
			"block of B per CTA tile)\n", n);
		return MB_ERR_ARG;
	}
	if (a->format != FP8_E4M3 || b->format != FP8_E4M3) {
		fprintf(stderr, "gemm v1: E4M3 operands only\n");
		return MB_ERR_ARG;
	}
	return MB_OK;
}

/* v1_mode_of picks the kernel for kind, fast_accum and the operands' scaling. */
static int v1_mode_of(enum gemm_kind kind, bool fast_accum, const struct fp8_matrix *a,
		      const struct fp8_matrix *b, enum v1_mode *mode)
{
	if (kind == GEMM_FP8_BLOCK && a->scaling == FP8_PER_1X128 &&
	    b->scaling == FP8_PER_128X128) {
		/* NOTE: block scales differ per K block, so one accumulator over all of K
		 * cannot be scaled at the end: fast_accum has no meaning here. */
		if (fast_accum) {
			fprintf(stderr, "gemm v1: fast_accum needs per-tensor scales (block "
				"scales are applied per 128-wide K block)\n");
			return MB_ERR_ARG;
		}
		*mode = V1_BLOCK_SCALED;
		return MB_OK;
	}
	if (kind == GEMM_FP8_TENSOR && a->scaling == FP8_PER_TENSOR &&
	    b->scaling == FP8_PER_TENSOR) {
		*mode = fast_accum ? V1_TENSOR_FAST : V1_TENSOR_SCALED;
		return MB_OK;
	}
	fprintf(stderr, "gemm v1: kind %d takes fp8-tensor (tensor/tensor scales) or fp8-block "
		"(1x128 A, 128x128 B) only\n", (int)kind);
	return MB_ERR_ARG;
}

/* v1_upload copies n bytes of host memory into a new device buffer. */
static int v1_upload(void **d, const void *h, size_t n, cudaStream_t s)
{
	int err = MB_CUDA_CHECK(cudaMalloc(d, n));
	if (err)
		return err;
	return MB_CUDA_CHECK(cudaMemcpyAsync(*d, h, n, cudaMemcpyHostToDevice, s));
}

/* v1_setup fills a new gemm_v1 of m rows (tile_expert: one expert per M tile, or
 * NULL) from the checked operands; frees what it made on failure. */
static int v1_setup(struct gemm_v1 **out, enum v1_mode mode, int m, int n, int k,
		    const struct fp8_matrix *a, const struct fp8_matrix *b,
		    const int *tile_expert, void *stream)
{
	int err = v1_prepare(mode);
	if (err)
		return err;
	struct gemm_v1 *g = (struct gemm_v1 *)calloc(1, sizeof(*g));
	if (!g)
		return MB_ERR_NOMEM;
	g->mode = mode;
	g->m = m, g->n = n, g->k = k;
	g->tiles = ((m + V1_BM - 1) / V1_BM) * (n / V1_BN);
	g->stream = (cudaStream_t)stream;
	g->h_d = (uint16_t *)malloc((size_t)m * n * sizeof(uint16_t));
	err = g->h_d ? MB_OK : MB_ERR_NOMEM;
	if (!err)
		err = v1_upload((void **)&g->d_a, a->q, (size_t)m * k, g->stream);
	if (!err)
		err = v1_upload((void **)&g->d_b, b->q, (size_t)b->rows * k, g->stream);
	if (!err)
		err = v1_upload((void **)&g->d_scale_a, a->scale,
				(size_t)a->scale_rows * a->scale_cols * sizeof(float), g->stream);
	if (!err)
		err = v1_upload((void **)&g->d_scale_b, b->scale,
				(size_t)b->scale_rows * b->scale_cols * sizeof(float), g->stream);
	if (!err && tile_expert)
		err = v1_upload((void **)&g->d_tile_expert, tile_expert,
				(size_t)((m + V1_BM - 1) / V1_BM) * sizeof(int), g->stream);
	if (!err)
		err = MB_CUDA_CHECK(cudaMalloc((void **)&g->d_d, (size_t)m * n * 2));
	if (!err)
		err = MB_CUDA_CHECK(cudaStreamSynchronize(g->stream));
	if (err) {
		gemm_v1_destroy(g);
		return err;
	}
	*out = g;
	return MB_OK;
}

/* gemm_v1_create checks v1's rules (gemm_cuda_impl.h) and uploads the operands. */
extern "C" int gemm_v1_create(struct gemm_v1 **out, enum gemm_kind kind, bool fast_accum,
			      const struct gemm_inputs *in, void *stream)
{
	enum v1_mode mode;
	*out = NULL;
	if (kind == GEMM_BF16 || !in->a8 || !in->b8) {
		fprintf(stderr, "gemm v1: FP8 kinds only (fp8-tensor, fp8-block)\n");
		return MB_ERR_ARG;
	}
	int err = v1_check_shapes(in->m, in->n, in->k, in->a8, in->b8, in->n);
	if (!err)
		err = v1_mode_of(kind, fast_accum, in->a8, in->b8, &mode);
	if (err)
		return err;
	return v1_setup(out, mode, in->m, in->n, in->k, in->a8, in->b8, NULL, stream);
}

/* gemm_v1_grouped_create sets up one launch over all experts of `in` (gemm_cuda.h):
 * A's stacked rows, each expert's padded to a multiple of 128, so each M tile belongs
 * to one expert; D covers all padded rows. Block scales only, promotion on. */
extern "C" int gemm_v1_grouped_create(struct gemm_v1 **out, const struct gemm_grouped_inputs *in,
				      void *stream)
{
	int tiles = 0, err;
	*out = NULL;
	for (int e = 0; e < in->groups; e++)
		tiles += (in->rows[e] + V1_BM - 1) / V1_BM;
	int *tile_expert = (int *)malloc((size_t)(tiles > 0 ? tiles : 1) * sizeof(int));
	if (!tile_expert)
		return MB_ERR_NOMEM;
	for (int e = 0, t = 0; e < in->groups; e++)
		for (int r = 0; r < in->rows[e]; r += V1_BM)
			tile_expert[t++] = e;
	err = v1_check_shapes(tiles * V1_BM, in->n, in->k, in->a8, in->b8, in->groups * in->n);
	if (!err && (in->a8->scaling != FP8_PER_1X128 || in->b8->scaling != FP8_PER_128X128)) {
		fprintf(stderr, "gemm v1 grouped: A needs 1x128 scales, B 128x128\n");
		err = MB_ERR_ARG;
	}
	if (!err)
		err = v1_setup(out, V1_BLOCK_SCALED, tiles * V1_BM, in->n, in->k, in->a8, in->b8,
			       tile_expert, stream);
	free(tile_expert);
	return err;
}

/* gemm_v1_poison sets every element of D to a BF16 NaN (all bits set). */
extern "C" int gemm_v1_poison(struct gemm_v1 *g)
{
	return MB_CUDA_CHECK(cudaMemsetAsync(g->d_d, 0xff, (size_t)g->m * g->n * 2, g->stream));
}

/* gemm_v1_run enqueues the kernel; the caller times it with events on the stream. */
extern "C" int gemm_v1_run(struct gemm_v1 *g)
{
	return v1_launch(g);
}

/* gemm_v1_download waits for the stream and widens D to floats in d[m*n]. */
extern "C" int gemm_v1_download(struct gemm_v1 *g, float *d)
{
	size_t n = (size_t)g->m * g->n;
	int err = MB_CUDA_CHECK(cudaMemcpyAsync(g->h_d, g->d_d, n * 2, cudaMemcpyDeviceToHost,
						g->stream));
	if (!err)
		err = MB_CUDA_CHECK(cudaStreamSynchronize(g->stream));
	if (err)
		return err;
	for (size_t i = 0; i < n; i++)
		d[i] = bf16_to_float(g->h_d[i]);
	return MB_OK;
}

/* gemm_v1_destroy frees g and its device buffers; NULL is fine. */
extern "C" void gemm_v1_destroy(struct gemm_v1 *g)
{
	if (!g)
		return;
	cudaFree(g->d_a);
	cudaFree(g->d_b);
	cudaFree(g->d_scale_a);
	cudaFree(g->d_scale_b);
	cudaFree(g->d_tile_expert);
	cudaFree(g->d_d);
	free(g->h_d);
	free(g);
}
