/*
 * session.h - the flow every measuring command shares: options -> backend -> counters
 * -> provenance -> the benchmark's cases -> one atomically written result file -> the
 * chosen stdout format -> exit status (0 ok, 1 a check failed or a run error, 2 bad
 * input).
 */
#ifndef MB_HARNESS_SESSION_H
#define MB_HARNESS_SESSION_H

#include "driver.h"

/* Every command moebench knows, in the order `moebench --help` lists them; the default
 * suite runs those with a `run`, in this order (benchmarks/registry.c). */
extern const struct bench_desc *const bench_registry[];

/* bench_find returns the registry's command of that name, or NULL. */
const struct bench_desc *bench_find(const char *name);

/* session_bench runs one benchmark as its own command (`moebench peak ...`). */
int session_bench(const struct bench_desc *d, int argc, char **argv);
/* session_suite runs every registered benchmark at small sizes (`moebench run`). */
int session_suite(int argc, char **argv);

/* session_output_error prints the error of result_output_check or result_write_atomic
 * (err) for the option opt ("--out", "--timeline") with its hint; returns 2. */
int session_output_error(int err, const char *opt, const char *why);

#endif
