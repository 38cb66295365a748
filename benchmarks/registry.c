/* registry.c - the benchmarks moebench knows, in the order `moebench run` runs them. */
#include <stddef.h>

#include "session.h"

extern const struct bench_desc bench_peak;
extern const struct bench_desc bench_claims;
extern const struct bench_desc bench_pipeline;
extern const struct bench_desc bench_gemm;
extern const struct bench_desc bench_mla;
extern const struct bench_desc bench_a2a;
extern const struct bench_desc bench_step;

const struct bench_desc *const bench_registry[] = {
	&bench_peak,
	&bench_claims,
	&bench_pipeline,
	&bench_gemm,
	&bench_mla,
	&bench_a2a,
	&bench_step,
	NULL,
};
