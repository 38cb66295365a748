/*
 * export.h - a result document ("moebench.result/1", see result.h) written out in the
 * formats other tools read:
 *
 *   text    aligned table for stdout: benchmark/name, backend, time_ms (median), min_ms,
 *           max_ms, cv_pct, every derived metric (union across records; "n/a" for null,
 *           "-" where a record lacks it), check (pass/FAIL) and max_err
 *   json    the document itself, pretty-printed
 *   csv     for gnuplot: '#' provenance lines (schema, git_commit, date, host,
 *           backend, devices, argv), then one header row
 *             benchmark,name,backend,<param keys>,time_s_median,time_s_min,
 *             time_s_max,time_s_cv,n,<derived metrics>,check_status,max_err
 *           and one row per record. Param and metric columns are the union over the
 *           records, in order of first appearance; a missing or null value is an empty
 *           field; numbers print as %.9g; fields holding a comma, quote or line break
 *           are quoted RFC 4180 style
 *   gbench  Google Benchmark JSON ({"context", "benchmarks"}), one entry per record named
 *           "<benchmark>/<name>" with real_time = cpu_time = median in ns, time_unit
 *           "ns", iterations = repetitions, and each non-null derived metric as a
 *           counter key, and gbps also as bytes_per_second (bytes/s): read unchanged by
 *           github-action-benchmark (tool 'googlecpp'), Bencher (adapter cpp_google)
 *           and Conbench (GoogleBenchmarkAdapter). A record whose check failed is an
 *           entry with "error_occurred": true, "error_message" (the check's numbers)
 *           and zero times and iterations, as Google Benchmark writes a run skipped
 *           with an error
 *   bmf     Bencher Metric Format: { "<benchmark>/<name>": { "latency": {value,
 *           lower_value, upper_value} in ns (median, min, max), "<metric-slug>":
 *           {value} } }; a derived metric's slug is its name with '_' as '-' (pct_peak
 *           -> pct-peak), as Bencher measure slugs are kebab case
 *
 * A record whose check did not pass is never reported as a performance figure: text
 * and csv keep its row with the time and metric fields empty ("-" in text), gbench
 * marks it as an error (above), bmf leaves it out (the format has no error field). When two records share "<benchmark>/<name>" (differing in params or
 * backend), gbench, bmf and text suffix the later ones "#2", "#3", ... so names stay
 * unique.
 *
 * Every function returns MB_OK, MB_ERR_ARG (NULL argument, unknown format),
 * MB_ERR_PARSE (the document has no "records" array), MB_ERR_NOMEM, or MB_ERR_IO (a
 * write to out failed).
 */
#ifndef MB_HARNESS_EXPORT_H
#define MB_HARNESS_EXPORT_H

#include <stdio.h>
#include <cjson/cJSON.h>

/* export_text writes the aligned table for a terminal. */
int export_text(const cJSON *doc, FILE *out);
/* export_csv writes provenance comment lines, a header row and one row per record. */
int export_csv(const cJSON *doc, FILE *out);
/* export_gbench writes Google Benchmark JSON. */
int export_gbench(const cJSON *doc, FILE *out);
/* export_bmf writes Bencher Metric Format JSON. */
int export_bmf(const cJSON *doc, FILE *out);
/* export_by_name writes doc in format "text", "json", "csv", "gbench" or "bmf"; any
 * other name gives MB_ERR_ARG and writes nothing. */
int export_by_name(const char *format, const cJSON *doc, FILE *out);

/* export_gbench_json and export_bmf_json build the same documents as new cJSON trees
 * (owned by the caller) in *json. */
int export_gbench_json(const cJSON *doc, cJSON **json);
int export_bmf_json(const cJSON *doc, cJSON **json);

#endif
