/*
 * peak.h - the kernels behind `moebench peak`: the achievable dense matmul rate and
 * memory bandwidth of a backend.
 *
 * Shapes: GEMM D[M,N] = A[M,K] * B[N,K]^T (both operands K-major, the "TN" layout
 * cuBLASLt needs for FP8). Copy: `bytes` read and `bytes` written.
 *
 *   CPU   peak_gemm_cpu_*   OpenBLAS SGEMM / DGEMM
 *         peak_stream_cpu_* STREAM-style copy (c = a) and triad (a = b + s*c), OpenMP
 *   CUDA  peak_gemm_cuda_*  cuBLASLt BF16 (BF16 out, FP32 accumulate) and FP8 E4M3
 *                           tensor-scaled (per-tensor A/B scales, BF16 out)
 *         peak_copy_cuda_*  device-to-device copy
 *
 * Every object follows one life cycle: create (allocate, fill with random data from
 * the seed), poison (fill the output with a pattern a correct run overwrites), run
 * (one repetition; CUDA versions only enqueue on the stream), check (wait, compare
 * against an FP64 host reference or an exact invariant), destroy.
 *
 * GEMM check metric: for sampled output elements (i,j),
 *   err(i,j) = |D(i,j) - ref(i,j)| / sum_k |A(i,k) B(j,k)|
 * with ref in FP64 from the same (rounded) inputs. The denominator bounds |D| so the
 * metric stays meaningful where the dot product cancels to near zero; the output
 * rounding alone contributes up to 2^-8 (BF16) or 2^-24 (FP32).
 */
#ifndef MB_PEAK_H
#define MB_PEAK_H

#include <stddef.h>
#include <stdint.h>

enum peak_dtype {
	PEAK_FP64,
	PEAK_FP32,
	PEAK_BF16,
	PEAK_FP8_E4M3,
};

/* peak_dtype_name returns "fp64", "fp32", "bf16" or "fp8_e4m3". */
const char *peak_dtype_name(enum peak_dtype dtype);

struct peak_check {
	double max_err;    /* largest err(i,j) over the samples (GEMM) or 0/1 (copy) */
	double tolerance;  /* the bound max_err must stay under */
	long mismatches;   /* samples over tolerance, or differing bytes */
	long samples;      /* elements compared */
};

/* ---- CPU ---- */
struct peak_gemm_cpu;
/* dtype PEAK_FP32 or PEAK_FP64. Returns MB_OK, MB_ERR_ARG, MB_ERR_NOMEM. */
int peak_gemm_cpu_create(struct peak_gemm_cpu **out, enum peak_dtype dtype,
			 int m, int n, int k, uint64_t seed);
void peak_gemm_cpu_poison(struct peak_gemm_cpu *g);
void peak_gemm_cpu_run(struct peak_gemm_cpu *g);
int peak_gemm_cpu_check(struct peak_gemm_cpu *g, int samples, struct peak_check *chk);
void peak_gemm_cpu_destroy(struct peak_gemm_cpu *g);

enum peak_stream_op { PEAK_STREAM_COPY, PEAK_STREAM_TRIAD };
struct peak_stream_cpu;
/* n doubles per array. bytes moved per run: copy 16n, triad 24n. */
int peak_stream_cpu_create(struct peak_stream_cpu **out, enum peak_stream_op op, size_t n,
			   uint64_t seed);
size_t peak_stream_cpu_bytes(const struct peak_stream_cpu *s);
void peak_stream_cpu_poison(struct peak_stream_cpu *s);
void peak_stream_cpu_run(struct peak_stream_cpu *s);
int peak_stream_cpu_check(struct peak_stream_cpu *s, struct peak_check *chk);
void peak_stream_cpu_destroy(struct peak_stream_cpu *s);

/* ---- CUDA (built with MOEBENCH_CUDA; otherwise create returns MB_ERR_UNSUPPORTED) ---- */
struct peak_gemm_cuda;
/* dtype PEAK_BF16 or PEAK_FP8_E4M3; stream is a cudaStream_t (void* keeps CUDA
 * headers out of this interface). Returns MB_OK, MB_ERR_ARG, MB_ERR_NOMEM,
 * MB_ERR_CUDA, MB_ERR_CUBLAS or MB_ERR_UNSUPPORTED (no algorithm for this device). */
int peak_gemm_cuda_create(struct peak_gemm_cuda **out, enum peak_dtype dtype,
			  int m, int n, int k, uint64_t seed, void *stream);
int peak_gemm_cuda_poison(struct peak_gemm_cuda *g);
int peak_gemm_cuda_run(struct peak_gemm_cuda *g);
int peak_gemm_cuda_check(struct peak_gemm_cuda *g, int samples, struct peak_check *chk);
void peak_gemm_cuda_destroy(struct peak_gemm_cuda *g);

struct peak_copy_cuda;
int peak_copy_cuda_create(struct peak_copy_cuda **out, size_t bytes, uint64_t seed, void *stream);
int peak_copy_cuda_poison(struct peak_copy_cuda *c);
int peak_copy_cuda_run(struct peak_copy_cuda *c);
int peak_copy_cuda_check(struct peak_copy_cuda *c, struct peak_check *chk);
void peak_copy_cuda_destroy(struct peak_copy_cuda *c);

#endif
