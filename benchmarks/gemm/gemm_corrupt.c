/*
 * gemm_corrupt.c - the test-only hook that damages a GEMM output before its check
 * (MOEBENCH_TEST_CORRUPT=tile|element), so tests/test_cli_check.c can see that one
 * wrong 16x16 tile or one wrong element fails the check with exit 1. Unset in every
 * real run; the value is read on each check, nothing else changes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_bench.h"

void gemm_test_corrupt(float *d, int m, int n, int lm, int ln, int k)
{
	const char *what = getenv("MOEBENCH_TEST_CORRUPT");
	/* NOTE: outputs of N(0,1) inputs have rms sqrt(k): 8 rms is far off, yet finite. */
	float off = 8.0f * sqrtf((float)k);
	int ti, tj;

	(void)m;
	if (!what || lm < 3 || ln < 3)
		return;
	if (strcmp(what, "element") == 0) {
		d[(size_t)(lm / 3) * (size_t)n + (size_t)(2 * ln / 3)] += off;
		return;
	}
	if (strcmp(what, "tile") != 0)
		return;
	/* A whole tile inside the matrix, not at a corner: tile row lm/2, column ln/3. */
	ti = (lm / 2 / GEMM_CHECK_TILE) * GEMM_CHECK_TILE;
	tj = (ln / 3 / GEMM_CHECK_TILE) * GEMM_CHECK_TILE;
	for (int i = ti; i < ti + GEMM_CHECK_TILE && i < lm; i++)
		for (int j = tj; j < tj + GEMM_CHECK_TILE && j < ln; j++)
			d[(size_t)i * (size_t)n + (size_t)j] += off;
}
