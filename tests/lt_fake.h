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

#include <stdio.h>

/* The heuristic's answer: an algorithm, CUBLAS_STATUS_NOT_SUPPORTED, or zero results. */
enum lt_fake_heuristic { LT_FAKE_ALGO, LT_FAKE_NOT_SUPPORTED, LT_FAKE_NONE };

/* lt_fake_reset frees what a scenario left, zeroes the names and counters and sends
 * the trace to `trace`. */
void lt_fake_reset(FILE *trace, enum lt_fake_heuristic h);
/* lt_fake_note writes one line to the trace (the kernel stand-ins name themselves). */
void lt_fake_note(const char *line);
/* lt_fake_live returns the handles, descriptors, layouts, preferences and buffers
 * made and not yet destroyed or freed. */
int lt_fake_live(void);

#endif
