/*
 * lt_fake.h - a recording stand-in for the CUDA runtime and cuBLASLt calls that the
 * cuBLASLt callers (peak_cuda.c, gemm_cuda.c, mla_cuda.c) make, so their plans can be
 * checked without a GPU (tests/lt_plan_trace.c).
 *
 * Device memory is host memory; each allocation is named by its order (buf0, buf1, ...).
 * A descriptor, layout or preference keeps every attribute set on it, and each
 * heuristic query and matmul writes one trace line describing them in full (attributes
 * sorted by id, device pointers by name), so the line says exactly what cuBLASLt would
 * be handed, whatever order the caller built it in.
 */
#ifndef MB_TESTS_LT_FAKE_H
#define MB_TESTS_LT_FAKE_H

#include <stdint.h>
#include <stdio.h>

/* The heuristic's answer: an algorithm, CUBLAS_STATUS_NOT_SUPPORTED, or zero results. */
enum lt_fake_heuristic { LT_FAKE_ALGO, LT_FAKE_NOT_SUPPORTED, LT_FAKE_NONE };

/* lt_fake_reset frees what a scenario left, zeroes the names and counters and sends
 * the trace to `trace`. */
void lt_fake_reset(FILE *trace, enum lt_fake_heuristic h);
/* lt_fake_note writes one line to the trace (the kernel stand-ins name themselves). */
void lt_fake_note(const char *line);
/* What a matmul was handed, for lt_fake_matmul_hook: the pointers, alpha and beta, the
 * A, B and D layouts (index 0, 1, 2), the descriptor's transposes and A / B scale
 * pointers and modes (0 where not set). */
struct lt_fake_matmul {
	const void *a, *b;
	void *d;
	float alpha, beta;
	int type[3];
	uint64_t rows[3], cols[3];
	int64_t ld[3];
	int trans_a, trans_b;
	const void *scale_a, *scale_b;
	int mode_a, mode_b;
};
/* lt_fake_matmul_hook, when set, is called by each matmul after its trace line, so a
 * host stand-in may compute D (tests/fp8_lin_fake.c); NULL (the default) computes
 * nothing. */
extern void (*lt_fake_matmul_hook)(const struct lt_fake_matmul *mm);
/* lt_fake_live returns the handles, descriptors, layouts, preferences and buffers
 * made and not yet destroyed or freed. */
int lt_fake_live(void);

#endif
