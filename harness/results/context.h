/*
 * context.h - provenance of a run: what machine, build, libraries and devices
 * produced a result, written into the document's "context" (see result.h).
 */
#ifndef MB_HARNESS_CONTEXT_H
#define MB_HARNESS_CONTEXT_H

#include <stdbool.h>
#include <cjson/cJSON.h>

struct backend;

/* context_fill writes date, host, argv, version, build, libraries, backend, cpu,
 * devices (with their datasheet entries), world_size and counters_available. */
int context_fill(cJSON *ctx, int argc, char **argv, const struct backend *b,
		 bool counters_available);
/* context_libraries returns a new object of library versions (null: not built). */
cJSON *context_libraries(void);
/* context_build returns a new object describing the build. */
cJSON *context_build(void);
/* context_devices returns a new array of every CUDA device with its facts and datasheet
 * entry (empty when none answers). */
cJSON *context_devices(void);
/* context_version_line prints "moebench X (commit Y)" and the libraries to stdout. */
void context_print_version(void);

/* moebench_git_commit is generated at build time (git describe, or "unknown"). */
extern const char moebench_git_commit[];

#endif
