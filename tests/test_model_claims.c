/*
 * test_model_claims.c - the published baselines of results/baselines/ and the claims
 * arithmetic, on the published inputs: every expected figure is recomputed here by
 * hand from the formula in claims.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accounting.h"
#include "check_main.h"
#include "claims.h"
#include "hardware.h"
#include "status.h"

#ifndef MOEBENCH_SOURCE_DIR
#define MOEBENCH_SOURCE_DIR "."
#endif

static const char *const files[] = { "deepseek-v3", "llama3-405b", "llama3-70b", "llama3-8b",
				     "frontier", "megatron-bridge-deepseek-v3" };

/* H100/H800 SXM dense peaks (REFERENCES.md, datasheet table). */
#define PEAK_BF16 989.0
#define PEAK_FP8 1979.0

/* load loads results/baselines/NAME.json or fails the test. */
static struct model_baseline *load(const char *name)
{
	char path[512], why[512] = "";
	struct model_baseline *b = NULL;

	snprintf(path, sizeof(path), "%s/results/baselines/%s.json", MOEBENCH_SOURCE_DIR, name);
	ck_assert_msg(model_baseline_load(path, &b, why, sizeof(why)) == MB_OK, "%s", why);
	return b;
}

/* train_fpt: causal training FLOPs per token of a preset. */
static double train_fpt(const char *preset, int64_t seq, int64_t mtp)
{
	struct model_flops f;

	ck_assert_int_eq(model_flops_per_token(model_preset_find(preset), seq, mtp, 0, &f), MB_OK);
	return (double)f.total;
}

START_TEST(every_baseline_loads_with_citations)
{
	struct model_baseline *b = load(files[_i]);

	ck_assert_str_eq(b->name, files[_i]);
	ck_assert_uint_gt(b->n_runs, 0);
	for (size_t r = 0; r < b->n_runs; r++) {
		const struct model_baseline_run *run = &b->runs[r];
		ck_assert_msg(hardware_find_key(run->hardware) != NULL, "%s: hardware %s",
			      run->name, run->hardware);
		ck_assert_ptr_nonnull(model_preset_find(run->model));
		for (int f = 0; f < MODEL_FIG_COUNT; f++)
			if (run->fig[f].present) {
				ck_assert(strlen(run->fig[f].ref) > 10);
				ck_assert(strlen(run->fig[f].where) > 2);
			}
	}
	model_baseline_free(b);
}
END_TEST

START_TEST(deepseek_v3_figures_as_published)
{
	struct model_baseline *b = load("deepseek-v3");
	const struct model_baseline_run *pre = model_baseline_run_find(b, "pre-training");
	const struct model_baseline_run *total = model_baseline_run_find(b, "total");

	ck_assert_ptr_nonnull(pre);
	ck_assert_double_eq(model_run_figure(pre, MODEL_FIG_GPU_HOURS), 2664000);
	ck_assert_double_eq(model_run_figure(pre, MODEL_FIG_TOKENS), 14.8e12);
	ck_assert_double_eq(model_run_figure(pre, MODEL_FIG_GPUS), 2048);
	ck_assert_double_eq(model_run_figure(total, MODEL_FIG_GPU_HOURS), 2788000);
	ck_assert_double_eq(model_run_figure(total, MODEL_FIG_COST_USD), 5576000);
	ck_assert(isnan(model_run_figure(total, MODEL_FIG_TOKENS)));
	ck_assert_ptr_null(model_baseline_run_find(b, "fine-tuning"));
	ck_assert_ptr_nonnull(strstr(pre->fig[MODEL_FIG_GPU_HOURS].ref, "2412.19437"));
	ck_assert_str_eq(pre->fig[MODEL_FIG_GPU_HOURS].where,
			 "Table 1 (pre-training, 2664K H800 GPU hours)");
	model_baseline_free(b);
}
END_TEST

START_TEST(deepseek_v3_from_gpu_hours)
{
	const double gh = 2.664e6, tokens = 14.8e12;
	const double fpt = train_fpt("deepseek-v3", 4096, 1);
	struct model_flops nc;
	struct model_claim_hours h;
	double fpt_nc;

	ck_assert_int_eq(model_flops_per_token(model_preset_find("deepseek-v3"), 4096, 1,
					       MODEL_FLOPS_NONCAUSAL, &nc), MB_OK);
	fpt_nc = (double)nc.total;
	ck_assert_double_eq(fpt, 260641652736.0);
	ck_assert_double_eq(fpt_nc, 291847274496.0);  /* + the other half of the core */
	ck_assert_int_eq(model_claim_from_gpu_hours(gh, tokens, fpt, fpt_nc, PEAK_BF16, PEAK_FP8,
						    &h), MB_OK);
	/* 14.8e12 / (2.664e6 * 3600) = 1543.2 tokens per GPU-second */
	ck_assert_double_eq_tol(h.tokens_per_gpu_s, tokens / (gh * 3600), 1e-9);
	ck_assert_double_eq_tol(h.tokens_per_gpu_s, 1543.2, 0.05);
	ck_assert_double_eq_tol(h.tflops_per_gpu, 1543.216 * fpt / 1e12, 0.01);
	ck_assert_double_eq_tol(h.tflops_per_gpu, 402.2, 0.05);
	ck_assert_double_eq_tol(h.mfu_bf16, 402.22 / 989, 1e-4);
	ck_assert_double_eq_tol(h.mfu_fp8, 402.22 / 1979, 1e-4);
	ck_assert_double_eq_tol(h.mfu_bf16_noncausal, 1543.216 * fpt_nc / 1e12 / 989, 1e-4);
	ck_assert_double_eq_tol(h.total_flops, 14.8e12 * fpt, 1e12);
	ck_assert_int_eq(model_claim_from_gpu_hours(0, tokens, fpt, fpt, 1, 1, &h), MB_ERR_ARG);
}
END_TEST

START_TEST(llama3_405b_from_reported_rate)
{
	const double fpt = train_fpt("llama3-405b", 8192, 0);
	struct model_claim_rate r;

	ck_assert_int_eq(model_claim_from_tflops(400, fpt, 15.6e12, 30.84e6, PEAK_BF16, PEAK_FP8,
						 &r), MB_OK);
	ck_assert_double_eq_tol(r.mfu_bf16, 400.0 / 989, 1e-12);
	ck_assert_double_eq_tol(r.tokens_per_gpu_s, 400e12 / fpt, 1e-9);
	/* 15.6e12 tokens / 158.48 tokens/GPU-s / 3600 = 27.34M GPU-hours of 30.84M */
	ck_assert_double_eq_tol(r.gpu_hours_needed, 15.6e12 / (400e12 / fpt) / 3600, 1);
	ck_assert_double_eq_tol(r.gpu_hours_needed, 27.34e6, 0.01e6);
	ck_assert_double_eq_tol(r.goodput, r.gpu_hours_needed / 30.84e6, 1e-12);
	ck_assert_double_eq_tol(r.gpu_hours_lost, 30.84e6 - r.gpu_hours_needed, 1);
	ck_assert_int_eq(model_claim_from_tflops(400, fpt, NAN, NAN, NAN, PEAK_FP8, &r), MB_OK);
	ck_assert(isnan(r.mfu_bf16) && isnan(r.gpu_hours_needed) && isnan(r.goodput));
}
END_TEST

START_TEST(cost_and_unknown_peaks)
{
	ck_assert_double_eq(model_claim_cost_usd(2.788e6, 2.0), 5.576e6);
	ck_assert_double_eq(model_claim_cost_usd(2.664e6, 2.0), 5.328e6);
	ck_assert(isnan(model_claim_mfu(100, NAN)));
	ck_assert(isnan(model_claim_mfu(100, 0)));
	ck_assert(isnan(model_claim_mfu(100, -5)));
	ck_assert_double_eq(model_claim_mfu(494.5, 989), 0.5);
}
END_TEST

START_TEST(deepseek_vs_llama_decomposes)
{
	struct model_claim_side ds = { 2.664e6, 14.8e12, train_fpt("deepseek-v3", 4096, 1),
				       PEAK_BF16 };
	struct model_claim_side ll = { 30.84e6, 15.6e12, train_fpt("llama3-405b", 8192, 0),
				       PEAK_BF16 };
	struct model_claim_ratio q;

	ck_assert_int_eq(model_claim_compare(&ll, &ds, &q), MB_OK);
	ck_assert_double_eq_tol(q.gpu_hours, 30.84 / 2.664, 1e-12);
	ck_assert_double_eq_tol(q.gpu_hours, q.total_flops * q.rate, 1e-9);
	ck_assert_double_eq_tol(q.total_flops, q.tokens * q.flops_per_token, 1e-12);
	ck_assert_double_eq_tol(q.rate, q.mfu * q.peak, 1e-12);
	ck_assert_double_eq_tol(q.total_flops, (15.6 * ll.flops_per_token) /
					       (14.8 * ds.flops_per_token), 1e-12);
	/* Llama 3 405B's 11.6x GPU-hours: 10.2x the FLOPs, 1.13x slower per GPU. */
	ck_assert_double_eq_tol(q.total_flops, 10.21, 0.01);
	ck_assert_double_eq_tol(q.rate, 1.134, 0.001);
	ds.tokens = 0;
	ck_assert_int_eq(model_claim_compare(&ll, &ds, &q), MB_ERR_ARG);
}
END_TEST

/* row finds a report row by its label, or fails. */
static const struct model_claim_row *row(const struct model_claim_report *r, const char *label)
{
	for (size_t i = 0; i < r->n_rows; i++)
		if (strcmp(r->rows[i].figure, label) == 0)
			return &r->rows[i];
	ck_abort_msg("no row %s", label);
	return NULL;
}

/* evaluate evaluates one run of a baseline file at the H100/H800 peaks. */
static void evaluate(const char *file, const char *run, struct model_claim_report *out)
{
	struct model_claim_inputs in = { PEAK_BF16, PEAK_FP8, 2.0, false, 0.05 };
	struct model_baseline *b = load(file);
	const struct model_baseline_run *r = model_baseline_run_find(b, run);

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(model_claims_evaluate(r, model_preset_find(r->model), &in, out), MB_OK);
	model_baseline_free(b);
}

START_TEST(deepseek_v3_claims_are_consistent)
{
	struct model_claim_report r;

	evaluate("deepseek-v3", "model", &r);
	ck_assert_int_eq(r.mtp_depth, 0);
	ck_assert_int_eq(row(&r, "params_total")->verdict, MODEL_VERDICT_CONSISTENT);
	ck_assert_double_eq(row(&r, "kv_cache_bytes_per_token")->rel_diff, 0);
	ck_assert_double_eq_tol(row(&r, "flops_per_token")->recomputed, 250449887232.0, 0.5);
	ck_assert_int_eq(row(&r, "flops_per_token")->verdict, MODEL_VERDICT_CONSISTENT);
	evaluate("deepseek-v3", "pre-training", &r);
	ck_assert_int_eq(r.mtp_depth, 1);
	ck_assert_double_eq_tol(row(&r, "mfu_bf16_from_gpu_hours")->recomputed, 0.4067, 1e-4);
	ck_assert_double_eq_tol(row(&r, "mfu_fp8_from_gpu_hours")->recomputed, 0.2032, 1e-4);
	ck_assert_int_eq(row(&r, "cost_usd")->verdict, MODEL_VERDICT_CONSISTENT);
	ck_assert_double_eq_tol(row(&r, "gpu_hours_per_trillion_tokens")->recomputed,
				2.664e6 / 14.8, 1e-6);
	ck_assert_double_eq_tol(row(&r, "days_per_trillion_tokens")->recomputed,
				2.664e6 / 14.8 / 2048 / 24, 1e-9);
	ck_assert_int_eq(row(&r, "days_per_trillion_tokens")->verdict, MODEL_VERDICT_CONSISTENT);
	ck_assert(isnan(row(&r, "gpus")->recomputed));
}
END_TEST

START_TEST(llama_and_bridge_claims)
{
	struct model_claim_report r;

	evaluate("llama3-405b", "pre-training", &r);
	ck_assert_double_eq_tol(row(&r, "total_flops_6n")->rel_diff, -0.0003, 0.0005);
	ck_assert_double_eq_tol(row(&r, "goodput")->recomputed, 0.8866, 1e-4);
	ck_assert_int_eq(row(&r, "goodput")->bound, MODEL_BOUND_AT_LEAST);
	ck_assert_int_eq(row(&r, "gpu_hours_at_stated_rate")->verdict, MODEL_VERDICT_CONSISTENT);
	ck_assert_double_eq_tol(row(&r, "mfu_bf16")->recomputed, 400.0 / 989, 1e-12);
	evaluate("llama3-405b", "table4-8192-gpus", &r);
	ck_assert_int_eq(row(&r, "mfu_bf16")->verdict, MODEL_VERDICT_CONSISTENT);
	evaluate("megatron-bridge-deepseek-v3", "h100-1024", &r);
	/* 338 TFLOP/s / 1297 tokens/s = 260.6 GFLOP: the V3 count with one MTP module */
	ck_assert(fabs(row(&r, "tflops_per_gpu")->rel_diff) < 0.001);
	ck_assert(fabs(row(&r, "tokens_per_gpu_s_at_stated_rate")->rel_diff) < 0.001);
	evaluate("frontier", "gpt-1t", &r);
	ck_assert_double_eq_tol(row(&r, "tflops_per_gpu")->recomputed, 0.3196 * 989, 1e-9);
	ck_assert_int_eq(row(&r, "weak_scaling_efficiency")->verdict, MODEL_VERDICT_NA);
}
END_TEST

/* A baseline with a wrong cost: the verdict must say so. */
START_TEST(a_wrong_claim_is_inconsistent)
{
	const char *text = "{\"schema\": \"moebench.baseline/1\", \"name\": \"x\", \"title\": \"t\","
		" \"references\": {\"r\": \"A reference\"}, \"runs\": [{\"name\": \"a\", \"model\":"
		" \"v3-tiny\", \"hardware\": \"h100-sxm\", \"figures\": {\"gpu_hours\": {\"value\":"
		" 1000, \"ref\": \"r\", \"where\": \"T1\"}, \"cost_usd\": {\"value\": 2400, \"ref\":"
		" \"r\", \"where\": \"T1\"}}}]}";
	struct model_claim_inputs in = { PEAK_BF16, PEAK_FP8, 2.0, false, 0.05 };
	struct model_claim_report r;
	struct model_baseline *b;
	char why[256] = "";

	ck_assert_msg(model_baseline_from_json(cJSON_Parse(text), "x.json", &b, why,
					       sizeof(why)) == MB_OK, "%s", why);
	ck_assert_int_eq(model_claims_evaluate(&b->runs[0], model_preset_find("v3-tiny"), &in, &r),
			 MB_OK);
	ck_assert_double_eq(row(&r, "cost_usd")->recomputed, 2000);
	ck_assert_double_eq_tol(row(&r, "cost_usd")->rel_diff, -1.0 / 6, 1e-12);
	ck_assert_int_eq(row(&r, "cost_usd")->verdict, MODEL_VERDICT_INCONSISTENT);
	ck_assert_str_eq(model_verdict_name(MODEL_VERDICT_INCONSISTENT), "inconsistent");
	model_baseline_free(b);
}
END_TEST

/* Broken baseline documents and the path the error must name. */
static const struct { const char *runs; const char *words; } broken[] = {
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"hardware\": \"h\", \"figures\": "
	  "{\"gpu_hours\": {\"value\": 5, \"where\": \"T1\"}}}",
	  "b.json: runs[0].figures.gpu_hours: missing \"ref\"" },
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"hardware\": \"h\", \"figures\": "
	  "{\"gpu_hours\": {\"value\": 5, \"ref\": \"q\", \"where\": \"T1\"}}}",
	  "runs[0].figures.gpu_hours: \"ref\": \"q\" is not in \"references\"" },
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"hardware\": \"h\", \"figures\": "
	  "{\"gpu_hourz\": {\"value\": 5, \"ref\": \"r\", \"where\": \"T1\"}}}",
	  "runs[0].figures.gpu_hourz: unknown figure" },
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"hardware\": \"h\", \"figures\": "
	  "{\"gpu_hours\": {\"value\": -5, \"ref\": \"r\", \"where\": \"T1\"}}}",
	  "runs[0].figures.gpu_hours: \"value\": expected a non-negative number" },
	{ "{\"name\": \"a\", \"model\": \"gpt-5\", \"hardware\": \"h\", \"figures\": "
	  "{\"gpu_hours\": {\"value\": 5, \"ref\": \"r\", \"where\": \"T1\"}}}",
	  "runs[0]: \"model\": unknown preset \"gpt-5\"" },
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"figures\": "
	  "{\"gpu_hours\": {\"value\": 5, \"ref\": \"r\", \"where\": \"T1\"}}}",
	  "runs[0]: missing \"hardware\"" },
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"hardware\": \"h\", \"gpus\": 4, "
	  "\"figures\": {\"gpu_hours\": {\"value\": 5, \"ref\": \"r\", \"where\": \"T1\"}}}",
	  "runs[0]: unknown key \"gpus\"" },
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"hardware\": \"h\", \"figures\": "
	  "{\"goodput\": {\"value\": 1, \"ref\": \"r\", \"where\": \"T\", \"bound\": \"over\"}}}",
	  "runs[0].figures.goodput: \"bound\": expected" },
	{ "{\"name\": \"a\", \"model\": \"v3-tiny\", \"hardware\": \"h\", \"figures\": {}}",
	  "runs[0]: \"figures\": expected a non-empty object" },
};

START_TEST(broken_baselines_name_file_and_field)
{
	char text[1024], why[512] = "";
	struct model_baseline *b = NULL;
	cJSON *doc;

	snprintf(text, sizeof(text), "{\"schema\": \"moebench.baseline/1\", \"name\": \"x\", "
		 "\"title\": \"t\", \"references\": {\"r\": \"A reference\"}, \"runs\": [%s]}",
		 broken[_i].runs);
	doc = cJSON_Parse(text);
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(model_baseline_from_json(doc, "b.json", &b, why, sizeof(why)),
			 MB_ERR_PARSE);
	ck_assert_msg(strstr(why, broken[_i].words) != NULL, "'%s' lacks '%s'", why,
		      broken[_i].words);
	ck_assert_ptr_null(b);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(broken_files_and_top_level)
{
	char why[512] = "", path[] = "/tmp/test_claims_XXXXXX";
	struct model_baseline *b = NULL;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("{\"schema\": \"moebench.baseline/2\", \"name\": \"x\", \"title\": \"t\", "
	      "\"references\": {\"r\": \"R\"}, \"runs\": []}", f);
	fclose(f);
	ck_assert_int_eq(model_baseline_load(path, &b, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, path));
	ck_assert_ptr_nonnull(strstr(why, "schema: expected \"moebench.baseline/1\""));
	unlink(path);
	ck_assert_int_eq(model_baseline_load("/nonexistent/b.json", &b, why, sizeof(why)),
			 MB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(why, "/nonexistent/b.json"));
	ck_assert_ptr_null(b);
	model_baseline_free(NULL);
}
END_TEST

START_TEST(figure_names_and_units)
{
	ck_assert_str_eq(model_figure_name(MODEL_FIG_GPU_HOURS), "gpu_hours");
	ck_assert_str_eq(model_figure_unit(MODEL_FIG_GPU_HOURS), "GPU-hours");
	ck_assert_str_eq(model_figure_name(MODEL_FIG_COUNT), "?");
	ck_assert_str_eq(model_bound_name(MODEL_BOUND_AT_LEAST), "at_least");
	for (int f = 0; f < MODEL_FIG_COUNT; f++) {
		ck_assert_msg(strcmp(model_figure_unit(f), "?") != 0, "figure %d has no unit", f);
		for (int g = 0; g < f; g++)
			ck_assert_str_ne(model_figure_name(f), model_figure_name(g));
	}
}
END_TEST

static Suite *claims_suite(void)
{
	Suite *s = suite_create("model_claims");
	TCase *files_tc = tcase_create("baselines");
	TCase *math = tcase_create("arithmetic");
	TCase *eval = tcase_create("evaluate");

	tcase_add_loop_test(files_tc, every_baseline_loads_with_citations, 0,
			    (int)(sizeof(files) / sizeof(files[0])));
	tcase_add_test(files_tc, deepseek_v3_figures_as_published);
	tcase_add_loop_test(files_tc, broken_baselines_name_file_and_field, 0,
			    (int)(sizeof(broken) / sizeof(broken[0])));
	tcase_add_test(files_tc, broken_files_and_top_level);
	tcase_add_test(files_tc, figure_names_and_units);
	tcase_add_test(math, deepseek_v3_from_gpu_hours);
	tcase_add_test(math, llama3_405b_from_reported_rate);
	tcase_add_test(math, cost_and_unknown_peaks);
	tcase_add_test(math, deepseek_vs_llama_decomposes);
	tcase_add_test(eval, deepseek_v3_claims_are_consistent);
	tcase_add_test(eval, llama_and_bridge_claims);
	tcase_add_test(eval, a_wrong_claim_is_inconsistent);
	suite_add_tcase(s, files_tc);
	suite_add_tcase(s, math);
	suite_add_tcase(s, eval);
	return s;
}

MB_CHECK_MAIN(claims_suite)
