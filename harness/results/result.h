/*
 * result.h - the result document of one moebench run (schema "moebench.result/1").
 *
 * The document is a cJSON tree, built in memory while the run goes and written once,
 * atomically, at the end. Its shape (every key below is present unless marked '?'):
 *
 * { "schema": "moebench.result/1",
 *   "context": {
 *     "date": "2026-11-23T04:21:00Z", "host": str, "argv": [str...],
 *     "moebench_version": str, "git_commit": str,
 *     "build": { "type": str, "compiler": str, "cuda": bool, "nccl": bool, "mpi": bool,
 *                "papi": bool, "sanitize": bool, "cuda_architectures": str },
 *     "libraries": { "cjson": str, "openblas": str, "cuda_runtime": str|null,
 *                    "cuda_driver": str|null, "cublaslt": str|null, "nccl": str|null,
 *                    "mpi": str|null, "papi": str|null },
 *     "backend": "cpu"|"cuda",
 *     "cpu": { "model": str, "cores": int, "mem_bytes": int },
 *     "devices": [ { "index": int, "name": str, "cc": "9.0", "sms": int,
 *                    "mem_bytes": int, "clock_mhz": int, "mem_clock_mhz": int,
 *                    "mem_bus_bits": int, "driver": str, "runtime": str,
 *                    "hardware": { "key": str, "peak_bf16_tflops": num|null, ...,
 *                                  "source": str } | null } ],
 *     "world_size": int,
 *     "counters_available": bool,
 *     "machine"?: { "load_avg": [1m, 5m, 15m], "online_cpus", "cpu_mhz": num|null,
 *                   "cpu_mhz_source", "blas_threads" } },
 *   "records": [ {
 *     "benchmark": "peak", "name": "cpu/sgemm/M2048_N2048_K2048", "backend": "cpu",
 *     "params": { ...shape and configuration, numbers and strings... },
 *     "metrics": {
 *       "time_s": { "median", "min", "max", "mean", "stddev", "cv", "mad"?, "n",
 *                   "samples"?: [seconds, at most 256 repetitions in order] },
 *       <derived>: num|null ...   e.g. "tflops", "gbps", "pct_peak"; null = n/a
 *     },
 *     "peak"?: { "datasheet": num|null, "unit": "tflops"|"gbps", "source": str|null },
 *     "check": { "status": "pass"|"fail", "max_err": num, "tolerance": num,
 *                "metric": str, "samples": int (outputs compared), "mismatches": int,
 *                "coverage"?: str },
 *     "timing"?: { "wall_s", "cpu_s", "cpu_per_wall", "involuntary_switches",
 *                  "clean_reps": int|null, "load_avg_1m": num|null }   (noise.h),
 *     "counters"?: { "<event>": { "value": num } | { "available": false, "reason": str } }
 *   } ] }
 *
 * Direction of a metric, used by compare: names ending in "_s" (time_s) or "_err"
 * (max_rel_err) are lower-is-better; every other metric (tflops, gbps, pct_peak, ...)
 * higher-is-better.
 * Every derived metric comes from the shapes and time_s, so its run-to-run noise is
 * time_s's: the robust 1.4826 * mad / median when "mad" is there, else cv.
 */
#ifndef MB_HARNESS_RESULT_H
#define MB_HARNESS_RESULT_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#define RESULT_SCHEMA "moebench.result/1"

struct stats;

/* result_new returns an empty document with "schema", an empty "context" and an empty
 * "records" array; NULL when out of memory. */
cJSON *result_new(void);
/* result_context returns the document's context object (owned by the document). */
cJSON *result_context(cJSON *doc);
/* result_add_record appends a record {benchmark, name, backend, params:{}, metrics:{},
 * check} and returns it (owned by the document), or NULL when out of memory. */
cJSON *result_add_record(cJSON *doc, const char *benchmark, const char *name,
			 const char *backend);
/* result_set_time stores the time_s statistics object into a record's metrics. */
int result_set_time(cJSON *record, const struct stats *st);
/* result_set_metric stores a derived scalar metric; a NaN value is stored as null. */
int result_set_metric(cJSON *record, const char *metric, double value);
/* result_set_check stores the check object; status "pass" when passed. */
int result_set_check(cJSON *record, bool passed, double max_err, double tolerance,
		     const char *metric, long samples, long mismatches);

/* result_validate checks a parsed document against the schema: required keys and their
 * types. On failure returns MB_ERR_PARSE and writes the offending path (such as
 * "records[3].metrics.time_s.median") and the problem into why. */
int result_validate(const cJSON *doc, char *why, size_t why_len);

/* result_read parses and validates a result file. Returns MB_OK with *out set, or
 * MB_ERR_IO (unreadable) / MB_ERR_PARSE (not JSON, or not the schema), with the reason
 * in why. */
int result_read(const char *path, cJSON **out, char *why, size_t why_len);

/* Every file moebench writes (result documents, CSV, figures, timelines) goes through
 * these, under one rule: a new name is created exclusively, never replacing what is
 * there; with force, an existing *regular* file is replaced; anything else (a device
 * such as /dev/null, a FIFO, a socket, a symbolic link, a directory) is never replaced,
 * force or not. */

/* result_output_check is the check a command runs before any work, for each path it
 * will write: MB_OK; MB_ERR_EXISTS (exists, no force); MB_ERR_ARG (exists and is not a
 * regular file, or empty path); MB_ERR_IO (the nearest existing directory above path
 * cannot take a file: missing, not a directory, not writable). why says which. */
int result_output_check(const char *path, bool force, char *why, size_t why_len);

/* result_write_atomic writes text to path through a temporary file in the same
 * directory and fsync, so a reader never sees half a file and a failed write leaves
 * any existing file untouched; then, unless force, gives it the name exclusively
 * (link(2), like O_CREAT|O_EXCL: MB_ERR_EXISTS when the name is taken, even by a file
 * created since the check), else renames it over a regular file. A non-regular path
 * is MB_ERR_ARG. Parent directories are created. */
int result_write_atomic(const char *path, const char *text, bool force, char *why,
			size_t why_len);

/* result_write_bytes is result_write_atomic for len bytes of any content. */
int result_write_bytes(const char *path, const char *data, size_t len, bool force,
		       char *why, size_t why_len);
/* result_install_file copies the file from (a regular file, e.g. one a child program
 * rendered into a temporary directory) to path under the same rule. */
int result_install_file(const char *from, const char *path, bool force, char *why,
			size_t why_len);

/* result_default_path writes a fresh default result name for command into buf:
 * results/runs/local/<UTC date-time to the microsecond>-<host>-<pid>-<command>.json,
 * unique per run (two runs in the same microsecond on one host differ in pid). */
void result_default_path(const char *command, char *buf, size_t len);

/* result_metric_lower_is_better tells a metric's direction (see above). */
bool result_metric_lower_is_better(const char *metric);

#endif
