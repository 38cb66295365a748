/*
 * gemm.h - GEMM references and the accumulation-precision emulation, CPU.
 *
 * Shapes: D[M,N] = A[M,K] * B[N,K]^T; both operands K-major (the layout FP8 tensor
 * cores and cuBLASLt's FP8 "TN" need). A is the activation-like operand (1x128
 * scales), B the weight-like one (128x128 scales).
 *
 * Every FP8 result reports two errors against the CPU references:
 *   quantization error: vs gemm_ref_f64 on the unquantized inputs
 *   arithmetic error:   vs gemm_fp8_ref on the dequantized inputs (FP64 accumulation)
 * Error metric (gemm_compare): per element |d - ref| / |ref|, with elements whose |ref|
 * is below 1e-3 * mean|ref| measured against that floor instead (so cancellation near
 * zero cannot dominate); max and mean over all elements.
 *
 * K need not be a multiple of 128 (or of anything): every CPU path handles the partial
 * last scale tile and the partial last group of products; nothing is padded.
 *
 * Accumulation emulation (DeepSeek-V3 report, sec. 3.3.2 and 3.5.2): Hopper's FP8 tensor
 * cores keep about 14 bits when accumulating. gemm_fp8_emulated feeds the raw FP8 values
 * (scales left out, as on the tensor core) through a limited accumulator, `group`
 * products per step (one k32 WGMMA), and, when promote > 0, every `promote` K elements
 * multiplies the partial sum by its scales into an FP32 accumulator (fmaf) and restarts
 * it (N_C = 128 in DeepSeek-V3). Without promotion the scales are applied once at the
 * end, which only per-tensor scaling allows. The step, by `model`:
 *   GEMM_ACCUM_ALIGNED  (default) the group's products and the accumulator c are aligned
 *       to the largest exponent among them, e_max, where a product's exponent is the sum
 *       of its two FP8 exponents (a subnormal counts as the format's e_min); every
 *       addend is truncated toward zero to a multiple of 2^(e_max - mantissa_bits); the
 *       exact sum is truncated toward zero to mantissa_bits explicit bits.
 *       This is DeepSeek's description ("highest 14 bits of each mantissa product after
 *       sign-fill right shifting", sec. 3.5.2) made precise on an H100: with {13, 32},
 *       this function equalled wgmma.mma_async m64n8k32 (FP32 accumulator) bit for bit
 *       on all of 53248 outputs: E4M3xE4M3, E5M2xE5M2, E4M3xE5M2, subnormal and
 *       full-range codes of both signs, K 1024..4096, with and without promotion every
 *       128 (while 12 bits, or the sum models below, matched none).
 *   GEMM_ACCUM_SUM_TRUNC  exact group sum added to c, result truncated to mantissa_bits
 *       (an "e8m13" accumulator that rounds only its running sum: far milder).
 *   GEMM_ACCUM_SUM_NEAREST  the same, rounded to nearest even.
 * NOTE: on the same H100, mma.sync.m16n8k32 e4m3 accumulated at FP32 precision (errors
 * ~1e-7 at K = 4096): the limited accumulator belongs to WGMMA, not to every FP8 MMA
 * instruction; a kernel on mma.sync shows no promotion effect.
 */
#ifndef MB_GEMM_H
#define MB_GEMM_H

#include <stddef.h>

#include "fp8.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gemm_ref_f64: d = a * b^T from FP32 inputs with FP64 accumulation. */
void gemm_ref_f64(const float *a, const float *b, int m, int n, int k, double *d);
/* gemm_fp8_ref: d = dequant(a) * dequant(b)^T with FP64 accumulation, each value
 * decode(q) * scale formed exactly in double (not rounded to float first). a is [m,k],
 * b is [n,k], any formats and scalings. Returns MB_OK or MB_ERR_ARG (shapes disagree). */
int gemm_fp8_ref(const struct fp8_matrix *a, const struct fp8_matrix *b, double *d);

enum gemm_accum_model { GEMM_ACCUM_ALIGNED, GEMM_ACCUM_SUM_TRUNC, GEMM_ACCUM_SUM_NEAREST };

struct gemm_accum {
	int mantissa_bits;  /* explicit mantissa bits kept by the accumulator, 1..23 (13) */
	int group;          /* products per accumulation step (32) */
	int promote;        /* K interval of promotion to FP32; 0 = never (128) */
	enum gemm_accum_model model;  /* the step's rounding (GEMM_ACCUM_ALIGNED) */
};
/* gemm_accum_default returns {13, 32, 128, GEMM_ACCUM_ALIGNED}. */
struct gemm_accum gemm_accum_default(void);
/* gemm_accum_model_name returns "aligned", "sum-trunc" or "sum-nearest". */
const char *gemm_accum_model_name(enum gemm_accum_model m);
/* gemm_fp8_emulated computes d like gemm_fp8_ref but through the limited accumulator.
 * Returns MB_OK, or MB_ERR_ARG: shapes disagree, mantissa_bits outside 1..23, group < 1,
 * promote < 0 or not a multiple of group, or an operand's scales change along K
 * (1x128 or 128x128 with K > 128) while 128 is not a multiple of promote (promote = 0
 * included): such an accumulator could not apply them. */
int gemm_fp8_emulated(const struct fp8_matrix *a, const struct fp8_matrix *b,
		      const struct gemm_accum *acc, double *d);

struct gemm_err {
	double max_rel;
	double mean_rel;
	long nonfinite;     /* elements of d that are NaN or infinite */
};
/* gemm_compare measures d (float or double, by is_double) against ref[n]. Any
 * non-finite element of d makes max_rel and mean_rel +inf, so no tolerance passes it;
 * where the floor is 0 (every ref is 0) an element counts 0 when equal, else +inf. */
void gemm_compare(const void *d, int is_double, const double *ref, size_t n,
		  struct gemm_err *e);

#ifdef __cplusplus
}
#endif

#endif
