/*
 * counters.h - hardware and software event counts (PAPI) over a benchmark's timed
 * repetitions, reported per repetition.
 *
 * An event the machine does not expose (a virtual machine refuses hardware counters;
 * a component may be disabled) is recorded as unavailable with PAPI's reason, never a
 * failure. PAPI counts the calling thread: work done by a BLAS thread pool is not in
 * the counts, and the record says so ("scope").
 */
#ifndef MB_HARNESS_COUNTERS_H
#define MB_HARNESS_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define COUNTERS_DEFAULT "PAPI_TOT_CYC,PAPI_TOT_INS,perf::TASK-CLOCK"

struct counters;

/* counters_open prepares the events of spec: "default" (COUNTERS_DEFAULT), "none", or a
 * comma-separated list. Unavailable events are kept with their reason. *out is NULL for
 * "none". Returns MB_OK, MB_ERR_ARG (empty or over-long event name, or, with PAPI, a
 * listed name PAPI cannot resolve; why names it) or MB_ERR_NOMEM. */
int counters_open(const char *spec, struct counters **out, char *why, size_t why_len);
/* counters_start / counters_stop bracket the timed region; counts accumulate. Both
 * are no-ops when no event is available. */
void counters_start(struct counters *c);
void counters_stop(struct counters *c);
/* counters_record adds "counters" to a record: each event's count divided by reps, or
 * {available: false, reason}; then resets the counts. */
int counters_record(struct counters *c, long reps, cJSON *record);
/* counters_any_available tells whether at least one event can be counted. */
bool counters_any_available(const struct counters *c);
void counters_close(struct counters *c);

/* counters_papi_version returns "7.0.0.0", or NULL when built without PAPI. */
const char *counters_papi_version(void);
/* counters_papi_status describes PAPI here: "7.0.0.0: perf_event disabled (...)". */
void counters_papi_status(char *out, size_t len);

#endif
