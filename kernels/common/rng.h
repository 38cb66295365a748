/*
 * rng.h - a small, fast, seedable random generator for benchmark inputs.
 *
 * xoshiro256** (Blackman and Vigna) seeded through splitmix64, so every input of a
 * run is a pure function of --seed. Inputs are random, never zeros: a kernel that
 * writes nothing cannot pass a check against a reference on random data.
 */
#ifndef MB_RNG_H
#define MB_RNG_H

#include <stddef.h>
#include <stdint.h>

struct mb_rng {
	uint64_t s[4];
};

/* mb_rng_seed initialises the generator from a 64-bit seed and a stream number, so
 * independent streams (per rank, per tensor) never overlap for one seed. */
void mb_rng_seed(struct mb_rng *rng, uint64_t seed, uint64_t stream);
/* mb_rng_next returns 64 uniformly random bits. */
uint64_t mb_rng_next(struct mb_rng *rng);
/* mb_rng_uniform returns a double uniform in [lo, hi). */
double mb_rng_uniform(struct mb_rng *rng, double lo, double hi);
/* mb_rng_normal returns a standard normal deviate (Box-Muller). */
double mb_rng_normal(struct mb_rng *rng);
/* mb_rng_fill_uniform_f32 / _f64 fill n values uniform in [lo, hi). */
void mb_rng_fill_uniform_f32(struct mb_rng *rng, float *x, size_t n, float lo, float hi);
void mb_rng_fill_uniform_f64(struct mb_rng *rng, double *x, size_t n, double lo, double hi);

#endif
