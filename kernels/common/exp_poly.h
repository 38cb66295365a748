/*
 * exp_poly.h - e^x in float without a call or a branch, for loops that must vectorise
 * (the attention core's softmax, the CPU step's SiLU, sigmoid and cross-entropy).
 *
 * x = n ln2 + r, |r| <= ln2 / 2: Cody-Waite's two-part ln2, e^r by its Taylor
 * polynomial to degree 6, 2^n by the exponent bits; within about 2 ulp of expf. |x| is
 * held at 88 first (through its bits: a float comparison may trap, so GCC will not
 * if-convert it and the loop stays scalar), so the result is finite and the integer
 * conversion in range; below x = -87, n is held at -126: a value under 2e-38 instead of
 * a subnormal or 0. A NaN comes out finite: callers carry x itself beside e^x (SiLU's
 * x / (1 + e^-x), the cross-entropy's maximum), so it still reaches their result.
 * NOTE: libm's expf, one call per element, was a quarter of the attention core's time
 * and most of SwiGLU's (perf, REPRODUCE.md).
 */
#ifndef MB_EXP_POLY_H
#define MB_EXP_POLY_H

#include <stdint.h>
#include <string.h>

static inline float exp_poly_f(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof(u));
	int32_t mag = (int32_t)(u & 0x7fffffffu);
	mag = mag > 0x42b00000 ? 0x42b00000 : mag;   /* 88.0f */
	u = (u & 0x80000000u) | (uint32_t)mag;
	memcpy(&x, &u, sizeof(x));
	float t = x * 1.44269504f + 12582912.0f;      /* round to nearest: 1.5 * 2^23 */
	float n = t - 12582912.0f;
	float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
	float p = 1.0f / 720;
	p = p * r + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	int32_t ni = (int32_t)n;
	ni = ni < -126 ? -126 : ni;
	uint32_t eb = (uint32_t)(ni + 127) << 23;
	float e;
	memcpy(&e, &eb, sizeof(e));
	return p * e;
}

#endif
