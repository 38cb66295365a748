/*
 * gemm_bench.h - the pieces of `moebench gemm` (benchmarks/gemm*.c), private to it.
 *
 * One shape's inputs (struct gemm_shape_data) are generated once and shared by every
 * dtype and implementation measured on it; each (dtype, impl, fast_accum) is a case
 * (struct gemm_case) run by the generic driver.
 */
#ifndef MB_BENCH_GEMM_H
#define MB_BENCH_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "fp8.h"
#include "gemm_cuda.h"

/* NOTE: tolerances per output precision. BF16 output rounds to 2^-9 relative, and an
 * element can be ~4x the RMS: 2e-2. FP32 output (the CPU path) only sees FP32
 * accumulation: 1e-4. Fast accumulation on FP8 is allowed the FP8 per-tile bound 5e-2.
 * Quantization (mean): E4M3 products carry ~3.4% RMS relative error, so the mean
 * normalized error sits near 2.7%: bound 5e-2; BF16 inputs: 5e-3. */
#define TOL_ARITH_BF16_OUT 2e-2
#define TOL_ARITH_FP32_OUT 1e-4
#define TOL_ARITH_FAST 5e-2
#define TOL_QUANT_FP8 5e-2
#define TOL_QUANT_BF16 5e-3

struct gemm_shape {
	char label[64];      /* "moe.expert.fc1/fwd" or "M128_N256_K512" */
	char layer[32];      /* "moe", "dense", or "explicit" */
	char pass[8];        /* "fwd", "dgrad", "wgrad", or "" */
	int m, n, k;
	int64_t count;       /* GEMMs of this shape in the layer (routed experts) */
};

/* The inputs of one shape: FP32 A[m,k], B[n,k] and their quantized forms. */
struct gemm_shape_data {
	const struct gemm_shape *shape;
	float *a, *b;
	struct fp8_matrix a_tensor, b_tensor;   /* FP8_PER_TENSOR */
	struct fp8_matrix a_block, b_block;     /* 1x128 and 128x128 */
	bool have_tensor, have_block;
};

/* gemm_shape_data_make generates A ~ N(0,1) and B ~ N(0,1) from the seed (stream per
 * operand and shape index) and quantizes them for the kinds requested. */
int gemm_shape_data_make(struct gemm_shape_data *sd, const struct gemm_shape *s,
			 uint64_t seed, uint64_t index, bool tensor, bool block);
void gemm_shape_data_free(struct gemm_shape_data *sd);

/* The two errors of a checked GEMM over sampled output elements (gemm_case.c). */
struct gemm_errors {
	double arith_max, arith_mean;   /* vs the FP64 product of the inputs as seen */
	double quant_max, quant_mean;   /* vs the FP64 product of the unquantized inputs */
	long over, nonfinite;           /* samples over the arithmetic bound; NaN/inf */
};

struct mb_rng;

/* What gemm_sample_errors needs to know of a GEMM: how a sampled output element maps
 * to its rows of A and B (pick), and those rows as the implementation saw them (seen)
 * or unquantized (row). Errors are |d - ref| / rms(ref over the samples). */
struct gemm_sampler {
	const void *ctx;
	int k, samples;
	uint64_t seed;
	double tol_arith;
	void (*pick)(const void *ctx, int t, struct mb_rng *rng, size_t *a_row, size_t *b_row,
		     double *d);
	void (*row)(const void *ctx, bool is_a, bool seen, size_t r, float *dst);
};

void gemm_sample_errors(const struct gemm_sampler *s, struct gemm_errors *e);

/* The check's coverage (gemm_case.c): every output where M*N*K is at most this many
 * multiply-adds (about 0.1 s of FP64 on one core), else one element per tile of
 * GEMM_CHECK_TILE x GEMM_CHECK_TILE outputs plus --samples random ones. */
#define GEMM_FULL_CHECK_FMA ((double)(1 << 26))
#define GEMM_CHECK_TILE 16

/* gemm_check_in_tile returns a position inside tile number t of length len (the last
 * tile may be short), chosen by a hash of (seed, key): the same row for a whole band of
 * tiles and the same column for a whole column of tiles, so a sampler can reuse rows. */
size_t gemm_check_in_tile(uint64_t seed, uint64_t key, size_t t, size_t len);

/* gemm_test_corrupt is a test-only hook: when the environment variable
 * MOEBENCH_TEST_CORRUPT is "tile" or "element", it damages the output d (ld n) of a
 * logical lm x ln GEMM over k, one 16x16 tile or one element away from the corners, so
 * the suite can see the check fail (exit 1). Never set it in a real run. */
void gemm_test_corrupt(float *d, int m, int n, int lm, int ln, int k);
/* gemm_errors_to_check: pass when the arithmetic max and the quantization mean are
 * within their bounds. */
void gemm_errors_to_check(const struct gemm_errors *e, double tol_arith, double tol_quant,
			  int samples, struct bench_check *chk);
/* gemm_errors_annotate adds the record's "errors" object. */
int gemm_errors_annotate(const struct gemm_errors *e, double tol_arith, double tol_quant,
			 cJSON *rec);

/* gemm_shape_data_pad makes a copy of sd's inputs zero-padded to multiples of mult
 * (shape included, owned by the copy: free with gemm_shape_data_free, then free its
 * shape and itself), quantized for the kinds requested. */
int gemm_shape_data_pad(const struct gemm_shape_data *sd, int mult, bool tensor, bool block,
			struct gemm_shape_data **out);

/* gemm_run_case measures one (kind, impl, fast_accum) on a shape through the driver,
 * on inputs zero-padded to multiples of pad when pad > 0. An FP8 shape a CUDA
 * implementation does not take is retried padded to multiples of 128. One that still
 * is not taken (MB_ERR_ARG), or has no algorithm (MB_ERR_UNSUPPORTED), is reported on
 * stderr and skipped: *skipped is set. */
int gemm_run_case(struct run_ctx *ctx, const struct gemm_shape_data *sd, enum gemm_kind kind,
		  enum gemm_impl impl, bool fast_accum, int samples, double measured_peak,
		  int pad, bool *skipped);

/* gemm_run_grouped measures the routed-expert GEMM s (rows per expert s->m) as one
 * grouped GEMM over `groups` local experts, FP8 block-scaled, through impl. Not taken
 * (MB_ERR_ARG, MB_ERR_UNSUPPORTED): reported and skipped (*skipped). */
int gemm_run_grouped(struct run_ctx *ctx, const struct gemm_shape *s, int groups,
		     enum gemm_impl impl, int samples, double measured_peak, bool *skipped);

/* gemm_accum_study runs `--accum-study`: the CPU emulation table (printed to stderr,
 * recorded in the document, CSV to csv_path when set) and, on CUDA, the same sweep
 * through cuBLASLt and v1 into the summary. MB_ERR_ARG: bad input, reported. */
int gemm_accum_study(struct run_ctx *ctx, const char *csv_path, const char *dist);

#endif
