/* rng.c - xoshiro256** with splitmix64 seeding (see rng.h). */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void mb_rng_seed(struct mb_rng *rng, uint64_t seed, uint64_t stream)
{
	/* NOTE: mixing the stream through splitmix64 first keeps (seed, stream) pairs
	 * from aliasing (seed+1, stream-1). */
	uint64_t x = seed;
	uint64_t y = stream;
	x ^= splitmix64(&y);
	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

uint64_t mb_rng_next(struct mb_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double mb_rng_uniform(struct mb_rng *rng, double lo, double hi)
{
	/* 53 random bits give every double in [0, 1) spaced 2^-53. */
	double u = (double)(mb_rng_next(rng) >> 11) * 0x1.0p-53;
	return lo + (hi - lo) * u;
}

double mb_rng_normal(struct mb_rng *rng)
{
	double u1 = mb_rng_uniform(rng, 0.0, 1.0);
	double u2 = mb_rng_uniform(rng, 0.0, 1.0);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void mb_rng_fill_uniform_f32(struct mb_rng *rng, float *x, size_t n, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)mb_rng_uniform(rng, lo, hi);
}

void mb_rng_fill_uniform_f64(struct mb_rng *rng, double *x, size_t n, double lo, double hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = mb_rng_uniform(rng, lo, hi);
}
