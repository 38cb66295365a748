/*
 * test_seed.h - the seed of a test run's random inputs: MB_TEST_SEED when set (to
 * replay a failure), else drawn once from the clock and the pid, so every run tests
 * fresh inputs. Suites print it in their failure messages.
 */
#ifndef MB_TESTS_TEST_SEED_H
#define MB_TESTS_TEST_SEED_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* test_seed is this run's seed: MB_TEST_SEED, or drawn once from the clock and pid. */
static inline uint64_t test_seed(void)
{
	static uint64_t seed;
	if (!seed) {
		const char *env = getenv("MB_TEST_SEED");
		seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		seed |= 1;
	}
	return seed;
}

#endif
