/*
 * fp8.h - FP8 formats and fine-grained quantization, CPU reference.
 *
 * Formats (OCP 8-bit floating point):
 *   E4M3 (E4M3FN): 1 sign, 4 exponent (bias 7), 3 mantissa; max 448; no infinities;
 *                  S.1111.111 is NaN.
 *   E5M2:          1 sign, 5 exponent (bias 15), 2 mantissa; max 57344; IEEE-like
 *                  infinities and NaNs.
 * Encoding rounds to nearest, ties to even, and saturates to the largest finite value
 * (infinities too), keeping NaN: bit for bit what CUDA's cuda_fp8.h conversions do with
 * __NV_SATFINITE (tests/fp8_cuda_parity.cu checks this on the host).
 *
 * Quantization of a row-major matrix X[rows, cols], along cols (K):
 *   FP8_PER_TENSOR   one scale
 *   FP8_PER_1X128    one scale per row per 128 columns (activations, DeepSeek-V3)
 *   FP8_PER_128X128  one scale per 128x128 block (weights, DeepSeek-V3)
 * A scale s dequantizes: x ~= decode(q) * s, with s = amax / max_finite of its tile
 * (s = 1 for an all-zero tile, at least FLT_MIN otherwise); optionally rounded up to a
 * power of two, so scaling is exact in the exponent and |x| / s <= max_finite. Codes
 * are q = encode(x / s), an IEEE float division (a CUDA quantizer must divide too, not
 * multiply by 1 / s, to stay bit-equal). Scales are FP32, row-major [scale_rows,
 * scale_cols]. Edge tiles (rows or cols not multiples of 128) cover what remains.
 */
#ifndef MB_FP8_H
#define MB_FP8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fp8_format { FP8_E4M3, FP8_E5M2 };
enum fp8_scaling { FP8_PER_TENSOR, FP8_PER_1X128, FP8_PER_128X128 };

#define FP8_TILE 128

/* fp8_max_finite returns 448 (E4M3) or 57344 (E5M2). */
float fp8_max_finite(enum fp8_format f);
/* fp8_encode converts with round-to-nearest-even, saturating; any NaN gives 0x7f (as
 * CUDA, which drops a NaN's sign). */
uint8_t fp8_encode(float x, enum fp8_format f);
/* fp8_decode returns the exact value of a code; NaN codes give the NaN with bits
 * 0x7fffffff (CUDA's, through half), E5M2's infinity codes +-inf. */
float fp8_decode(uint8_t code, enum fp8_format f);
const char *fp8_format_name(enum fp8_format f);    /* "e4m3", "e5m2" */
const char *fp8_scaling_name(enum fp8_scaling s);  /* "tensor", "1x128", "128x128" */

struct fp8_matrix {
	int rows, cols;
	enum fp8_format format;
	enum fp8_scaling scaling;
	uint8_t *q;                 /* rows * cols codes, row-major */
	float *scale;               /* scale_rows * scale_cols, row-major */
	int scale_rows, scale_cols;
};

/* fp8_matrix_alloc allocates q and scale for the shape and scaling (zeroed).
 * Returns MB_OK, MB_ERR_ARG or MB_ERR_NOMEM. */
int fp8_matrix_alloc(struct fp8_matrix *m, int rows, int cols, enum fp8_format f,
		     enum fp8_scaling s);
void fp8_matrix_free(struct fp8_matrix *m);
/* fp8_quantize fills m (allocated for x's shape) from x[rows, cols]. Returns MB_OK, or
 * MB_ERR_ARG for a NULL argument or a non-finite element of x. */
int fp8_quantize(const float *x, struct fp8_matrix *m, bool pow2_scales);
/* fp8_quantize_transposed quantizes x^T (x is [rows, cols]; m is [cols, rows]): the
 * layouts Dgrad (W^T) and Wgrad (dY^T, X^T) consume. Equal byte for byte to
 * fp8_quantize of the transposed copy; MB_ERR_ARG also when m is not [cols, rows]. */
int fp8_quantize_transposed(const float *x, int rows, int cols, struct fp8_matrix *m,
			    bool pow2_scales);
/* fp8_dequantize writes decode(q) * scale into x[rows, cols]. */
void fp8_dequantize(const struct fp8_matrix *m, float *x);
/* fp8_scale_of returns the scale that applies to element (r, c). */
float fp8_scale_of(const struct fp8_matrix *m, int r, int c);

#ifdef __cplusplus
}
#endif

#endif
