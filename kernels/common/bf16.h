/*
 * bf16.h - BF16 <-> float on the host: round to nearest, ties to even (what CUDA's
 * __float2bfloat16_rn does), NaN kept quiet instead of rounding into infinity.
 */
#ifndef MB_BF16_H
#define MB_BF16_H

#include <stdint.h>
#include <string.h>

/* bf16_from_float rounds a float to BF16 bits. */
static inline uint16_t bf16_from_float(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof(u));
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x0040u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

/* bf16_to_float widens BF16 bits to a float exactly. */
static inline float bf16_to_float(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float x;
	memcpy(&x, &u, sizeof(x));
	return x;
}

/* bf16_round returns x rounded to the nearest BF16 value, as a float. */
static inline float bf16_round(float x)
{
	return bf16_to_float(bf16_from_float(x));
}

#endif
