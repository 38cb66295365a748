/*
 * cmd_compare.c - `moebench compare BASE NEW`: per-record verdicts between two result
 * files; exit 1 on a regression (SLOWER, or a check that passed and now fails), 2 on
 * unreadable or mismatched input, 0 otherwise.
 *
 *   moebench compare base.json new.json --threshold 5 --metric time_s
 */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "compare.h"
#include "result.h"
#include "status.h"

int cmd_compare(int argc, char **argv)
{
	struct compare_opts co;
	struct compare_summary sum;
	double threshold;
	const char *metric;
	bool json, help;
	char *pos[2], why[512];
	int npos;
	cJSON *base = NULL, *cur = NULL, *out = NULL;
	const struct cli_opt opts[] = {
		{ "threshold", CLI_DOUBLE, &threshold, "5", "percent change that counts (beside the noise)", 0, 1000, NULL },
		{ "metric", CLI_STRING, &metric, "time_s", "metric compared (time_s, tflops, gbps, ...)", 0, -1, NULL },
		{ "json", CLI_FLAG, &json, NULL, "print the comparison as JSON", 0, -1, NULL },
		CLI_END
	};
	const char *usage = "moebench compare BASE.json NEW.json [--threshold PCT] [--metric NAME] [--json]";
	int st = cli_parse("compare", argc, argv, NULL, opts, pos, 2, &npos, &help, usage);
	if (st || help)
		return st;
	if (npos != 2)
		return cli_error(usage, "compare needs two result files, got %d", npos);
	compare_opts_default(&co);
	co.threshold_pct = threshold;
	co.metric = metric;
	for (int i = 0; i < 2; i++) {
		cJSON **dst = i ? &cur : &base;
		if (result_read(pos[i], dst, why, sizeof(why))) {
			st = cli_error("both files must be moebench result files (schema " RESULT_SCHEMA ")", "%s", why);
			goto out;
		}
	}
	int err = json ? compare_docs_json(base, cur, &co, &out, &sum)
		       : compare_docs(base, cur, &co, stdout, &sum);
	if (err) {
		st = cli_error(sum.invalid ? "a result file was edited or damaged: rerun the benchmark "
			       "to regenerate it" : "compare runs of the same benchmarks and metric", "%s",
			       err == MB_ERR_PARSE ? sum.why : mb_status_str(err));
		goto out;
	}
	if (json) {
		char *t = cJSON_Print(out);
		puts(t);
		free(t);
	}
	st = compare_has_regression(&sum) ? 1 : 0;
out:
	cJSON_Delete(base);
	cJSON_Delete(cur);
	cJSON_Delete(out);
	return st;
}
