/*
 * mla_block.cu - the MLA block's small kernels (mla_block.h) around the cuBLASLt
 * projections and the attention core of mla_cuda.c: RMSNorm forward and backward,
 * RoPE on the rope slices, the assembly of the core's k and v from [k_nope | v] and
 * the shared RoPE key, and the backward of that assembly. BF16 in and out, FP32 math
 * (RoPE angles in double, as the CPU reference block_real.h computes them).
 *
 * Shapes: T tokens (batch * seq), H heads, dn nope, dr rope, dv value, kvl latent.
 *   v1: plain ports of block_real.h / mla_impl.h: one CTA of 128 threads per row for
 *       the norms (block reductions by warp shuffles), the gain gradient as per-column
 *       sums over chunks of 64 rows added with FP32 atomics, and grid-stride loops of
 *       one thread per element (per pair for RoPE) for the rest. Memory-bound, simple.
 */
#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <stdint.h>

#include <cublasLt.h>   /* before cuda_check.h, outside extern "C" (C++ overloads) */

extern "C" {
#include "cuda_check.h"
#include "mla_block.h"
#include "status.h"
}

#define NORM_THREADS 128
#define NORM_ROWS_PER_CTA 64      /* rows one CTA of the gain gradient sums */
#define EW_THREADS 256
#define EW_MAX_BLOCKS (1L << 20)  /* grid-stride beyond this */

typedef __nv_bfloat16 bf16;

/* ---- GPU kernels ---- */

/* ld and st convert one element between BF16 storage and FP32 math. */
__device__ __forceinline__ float ld(const uint16_t *p)
{
	return __bfloat162float(*(const bf16 *)p);
}

__device__ __forceinline__ void st(uint16_t *p, float x)
{
	*(bf16 *)p = __float2bfloat16_rn(x);
}

/* block_sum returns the sum of v over the CTA to every thread (blockDim a multiple of
 * 32); sh holds 32 floats. NOTE: the first barrier keeps a second call from
 * overwriting sh while a slow warp still reads the first call's partial sums. */
__device__ float block_sum(float v, float *sh)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	__syncthreads();
	if (threadIdx.x % 32 == 0)
		sh[threadIdx.x / 32] = v;
	__syncthreads();
	float s = 0.f;
	for (int w = 0; w < (int)blockDim.x / 32; w++)
		s += sh[w];
	return s;
}

/* rmsnorm_fwd_kernel: CTA blockIdx.x normalizes row blockIdx.x. */
__global__ void rmsnorm_fwd_kernel(int n, const uint16_t *x, int ldx, const uint16_t *g,
				   float eps, uint16_t *y)
{
	__shared__ float sh[32];
	const uint16_t *xr = x + (size_t)blockIdx.x * ldx;
	uint16_t *yr = y + (size_t)blockIdx.x * n;
	float ss = 0.f;
	for (int c = threadIdx.x; c < n; c += blockDim.x)
		ss += ld(xr + c) * ld(xr + c);
	float inv = rsqrtf(block_sum(ss, sh) / n + eps);
	for (int c = threadIdx.x; c < n; c += blockDim.x)
		st(yr + c, ld(xr + c) * inv * ld(g + c));
}

/* rmsnorm_bwd_kernel: CTA blockIdx.x computes dx of row blockIdx.x and saves its inv. */
__global__ void rmsnorm_bwd_kernel(int n, const uint16_t *x, int ldx, const uint16_t *g,
				   float eps, const uint16_t *dy, uint16_t *dx, int lddx,
				   float *rstd)
{
	__shared__ float sh[32];
	const uint16_t *xr = x + (size_t)blockIdx.x * ldx, *dyr = dy + (size_t)blockIdx.x * n;
	uint16_t *dxr = dx + (size_t)blockIdx.x * lddx;
	float ss = 0.f, s = 0.f;
	for (int c = threadIdx.x; c < n; c += blockDim.x) {
		float xc = ld(xr + c);
		ss += xc * xc;
		s += ld(g + c) * ld(dyr + c) * xc;
	}
	ss = block_sum(ss, sh);
	s = block_sum(s, sh);
	float inv = rsqrtf(ss / n + eps), k = inv * inv * inv * s / n;
	for (int c = threadIdx.x; c < n; c += blockDim.x)
		st(dxr + c, inv * ld(g + c) * ld(dyr + c) - k * ld(xr + c));
	if (threadIdx.x == 0)
		rstd[blockIdx.x] = inv;
}

/* rmsnorm_dg_kernel adds sum over rows of dy x inv, column blockIdx.x * 128 + thread,
 * over chunks of NORM_ROWS_PER_CTA rows (blockIdx.y, grid-stride), into dg. */
__global__ void rmsnorm_dg_kernel(int rows, int n, const uint16_t *x, int ldx,
				  const uint16_t *dy, const float *rstd, float *dg)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	int chunks = (rows + NORM_ROWS_PER_CTA - 1) / NORM_ROWS_PER_CTA;
	if (c >= n)
		return;
	for (int ch = blockIdx.y; ch < chunks; ch += gridDim.y) {
		int r0 = ch * NORM_ROWS_PER_CTA, r1 = min(rows, r0 + NORM_ROWS_PER_CTA);
		float s = 0.f;
		for (int r = r0; r < r1; r++)
			s += ld(dy + (size_t)r * n + c) * ld(x + (size_t)r * ldx + c) * rstd[r];
		atomicAdd(dg + c, s);
	}
}

/* rope_angle returns cos and sin of pos * theta^(-2i/dr), sin negated for inverse. */
__device__ __forceinline__ void rope_angle(int pos, int i, int dr, double theta, bool inverse,
					   float *cs, float *sn)
{
	double s, c;
	sincos(pos * pow(theta, -2.0 * i / dr), &s, &c);
	*cs = (float)c;
	*sn = (float)(inverse ? -s : s);
}

/* rope_kernel: one thread per (row, pair), grid-stride. */
__global__ void rope_kernel(long pairs, int per_pos, int seq, int dr, double theta,
			    bool inverse, const uint16_t *src, int lds, uint16_t *dst, int ldd)
{
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < pairs;
	     e += (long)gridDim.x * blockDim.x) {
		long row = e / (dr / 2);
		int i = (int)(e % (dr / 2));
		float cs, sn;
		rope_angle((int)(row / per_pos % seq), i, dr, theta, inverse, &cs, &sn);
		float a = ld(src + row * lds + 2 * i), b = ld(src + row * lds + 2 * i + 1);
		st(dst + row * ldd + 2 * i, a * cs - b * sn);
		st(dst + row * ldd + 2 * i + 1, a * sn + b * cs);
	}
}

/* assemble_kernel: one thread per element of a (token, head) row of [k | v]. */
__global__ void assemble_kernel(long n, int heads, int dn, int dr, int dv, const uint16_t *kv,
				const uint16_t *krr, uint16_t *k, uint16_t *v)
{
	int dqk = dn + dr, w = dqk + dv;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n;
	     e += (long)gridDim.x * blockDim.x) {
		long row = e / w, t = row / heads;
		int j = (int)(e % w);
		if (j < dn)
			k[row * dqk + j] = kv[row * (dn + dv) + j];
		else if (j < dqk)
			k[row * dqk + j] = krr[t * dr + j - dn];
		else
			v[row * dv + j - dqk] = kv[row * (dn + dv) + dn + j - dqk];
	}
}

/* scatter_kernel: one thread per element of a (token, head) row of dkv. */
__global__ void scatter_kernel(long n, int dn, int dr, int dv, const uint16_t *dk,
			       const uint16_t *dvv, uint16_t *dkv)
{
	int dqk = dn + dr, w = dn + dv;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n;
	     e += (long)gridDim.x * blockDim.x) {
		long row = e / w;
		int j = (int)(e % w);
		dkv[e] = j < dn ? dk[row * dqk + j] : dvv[row * dv + j - dn];
	}
}

/* rope_key_grad_kernel: one thread per (token, pair): the FP32 sum over heads, then
 * the inverse rotation. */
__global__ void rope_key_grad_kernel(long pairs, int heads, int seq, int dn, int dr, int kvl,
				     double theta, const uint16_t *dk, uint16_t *dkva)
{
	int dqk = dn + dr;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < pairs;
	     e += (long)gridDim.x * blockDim.x) {
		long t = e / (dr / 2);
		int i = (int)(e % (dr / 2));
		float a = 0.f, b = 0.f, cs, sn;
		for (int h = 0; h < heads; h++) {
			const uint16_t *p = dk + (t * heads + h) * dqk + dn + 2 * i;
			a += ld(p);
			b += ld(p + 1);
		}
		rope_angle((int)(t % seq), i, dr, theta, true, &cs, &sn);
		uint16_t *o = dkva + t * (kvl + dr) + kvl + 2 * i;
		st(o, a * cs - b * sn);
		st(o + 1, a * sn + b * cs);
	}
}

/* ---- launchers ---- */

/* ew_blocks returns the grid of a grid-stride loop over n elements. */
static unsigned ew_blocks(long n)
{
	long b = (n + EW_THREADS - 1) / EW_THREADS;
	return (unsigned)(b < 1 ? 1 : b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS);
}

extern "C" int mla_rmsnorm_fwd_cuda(int rows, int n, const uint16_t *x, int ldx,
				    const uint16_t *g, float eps, uint16_t *y, void *stream)
{
	rmsnorm_fwd_kernel<<<rows, NORM_THREADS, 0, (cudaStream_t)stream>>>(n, x, ldx, g, eps, y);
	return MB_CUDA_CHECK(cudaGetLastError());
}

/* mla_rmsnorm_bwd_cuda: the row kernel (dx, rstd), then dg zeroed and summed. */
extern "C" int mla_rmsnorm_bwd_cuda(int rows, int n, const uint16_t *x, int ldx,
				    const uint16_t *g, float eps, const uint16_t *dy,
				    uint16_t *dx, int lddx, float *rstd, float *dg, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	int chunks = (rows + NORM_ROWS_PER_CTA - 1) / NORM_ROWS_PER_CTA;
	dim3 grid((unsigned)((n + NORM_THREADS - 1) / NORM_THREADS),
		  (unsigned)(chunks < 4096 ? chunks : 4096));
	rmsnorm_bwd_kernel<<<rows, NORM_THREADS, 0, s>>>(n, x, ldx, g, eps, dy, dx, lddx, rstd);
	int err = MB_CUDA_CHECK(cudaGetLastError());
	if (!err)
		err = MB_CUDA_CHECK(cudaMemsetAsync(dg, 0, (size_t)n * sizeof(float), s));
	if (err)
		return err;
	rmsnorm_dg_kernel<<<grid, NORM_THREADS, 0, s>>>(rows, n, x, ldx, dy, rstd, dg);
	return MB_CUDA_CHECK(cudaGetLastError());
}

extern "C" int mla_rope_cuda(int rows, int per_pos, int seq, int dr, double theta,
			     bool inverse, const uint16_t *src, int lds, uint16_t *dst, int ldd,
			     void *stream)
{
	long pairs = (long)rows * (dr / 2);
	rope_kernel<<<ew_blocks(pairs), EW_THREADS, 0, (cudaStream_t)stream>>>(
		pairs, per_pos, seq, dr, theta, inverse, src, lds, dst, ldd);
	return MB_CUDA_CHECK(cudaGetLastError());
}

extern "C" int mla_assemble_cuda(int t, int heads, int dn, int dr, int dv, const uint16_t *kv,
				 const uint16_t *krr, uint16_t *k, uint16_t *v, void *stream)
{
	long n = (long)t * heads * (dn + dr + dv);
	assemble_kernel<<<ew_blocks(n), EW_THREADS, 0, (cudaStream_t)stream>>>(
		n, heads, dn, dr, dv, kv, krr, k, v);
	return MB_CUDA_CHECK(cudaGetLastError());
}

extern "C" int mla_scatter_cuda(int t, int heads, int dn, int dr, int dv, const uint16_t *dk,
				const uint16_t *d_v, uint16_t *dkv, void *stream)
{
	long n = (long)t * heads * (dn + dv);
	scatter_kernel<<<ew_blocks(n), EW_THREADS, 0, (cudaStream_t)stream>>>(n, dn, dr, dv, dk,
									    d_v, dkv);
	return MB_CUDA_CHECK(cudaGetLastError());
}

extern "C" int mla_rope_key_grad_cuda(int t, int heads, int seq, int dn, int dr, int kvl,
				      double theta, const uint16_t *dk, uint16_t *dkva,
				      void *stream)
{
	long pairs = (long)t * (dr / 2);
	rope_key_grad_kernel<<<ew_blocks(pairs), EW_THREADS, 0, (cudaStream_t)stream>>>(
		pairs, heads, seq, dn, dr, kvl, theta, dk, dkva);
	return MB_CUDA_CHECK(cudaGetLastError());
}
