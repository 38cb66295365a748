/*
 * test_report.c - `moebench report`: the arithmetic on a hand-computed run (tokens/s
 * per GPU, model FLOPs per token, MFU against datasheet and measured peaks, GPU-hours,
 * cost, the verdict's rule both ways), the published runs' MFU under the MTP and causal
 * switches equal to the accounting's exact counts, the documents read and refused, and
 * the real program on a step result it makes, a train result and hand-made documents.
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"
#include "report.h"
#include "status.h"

/* hand_run: v3-tiny at seq 64, vocabulary 256, 8000 tokens/s over 4 ranks of hw. */
static void hand_run(struct report_meas *m, const char *hw, const char *precision)
{
	memset(m, 0, sizeof(*m));
	m->cfg = *model_preset_find("v3-tiny");
	m->cfg.vocab = 256;
	m->cfg.seq_len = 64;
	m->gpus = 4;
	m->tokens_per_s = 8000;
	m->flops_recorded = NAN;
	m->hw = hw ? hardware_find_key(hw) : NULL;
	snprintf(m->precision, sizeof(m->precision), "%s", precision);
	snprintf(m->device, sizeof(m->device), "test device");
}

/* ---- arithmetic ---- */

START_TEST(figures_hand_computed)
{
	struct report_meas m;
	struct report_figs f;
	struct report_peak meas = { .tflops = 0.5, .source = "hand" };

	hand_run(&m, "h100-sxm", "bf16");
	ck_assert_int_eq(report_figures(&m, &meas, NULL, &f), MB_OK);
	/* the accounting's count for v3-tiny, seq 64, vocab 256, 1 MTP module (what
	 * `moebench step` records as model_flops_per_token) */
	ck_assert_uint_eq(f.flops.total, 16355328u);
	ck_assert_double_eq(f.flops_6n, 16075584.0);
	ck_assert_double_eq(f.tokens_per_gpu_s, 2000.0);
	ck_assert_double_eq_tol(f.tflops_per_gpu, 0.032710656, 1e-15);
	ck_assert_double_eq(f.bf16_ds.tflops, 989.0);
	ck_assert_double_eq_tol(f.mfu_bf16_ds, 0.032710656 / 989.0, 1e-18);
	ck_assert_double_eq_tol(f.mfu_bf16_meas, 0.032710656 / 0.5, 1e-15);
	ck_assert(isnan(f.mfu_fp8_ds));   /* not an FP8 run */
	ck_assert(isnan(f.mfu_fp8_meas));
}
END_TEST

START_TEST(figures_fp8_and_unknown_device)
{
	struct report_meas m;
	struct report_figs f;

	hand_run(&m, "h800-sxm", "fp8");
	ck_assert_int_eq(report_figures(&m, NULL, NULL, &f), MB_OK);
	ck_assert_double_eq(f.fp8_ds.tflops, 1979.0);
	ck_assert_double_eq_tol(f.mfu_fp8_ds, 0.032710656 / 1979.0, 1e-18);
	ck_assert_double_eq_tol(f.mfu_bf16_ds, 0.032710656 / 989.0, 1e-18);
	ck_assert(isnan(f.mfu_bf16_meas));
	ck_assert_ptr_nonnull(strstr(f.bf16_meas.source, "no peak record of this device"));
	hand_run(&m, NULL, "fp8");
	ck_assert_int_eq(report_figures(&m, NULL, NULL, &f), MB_OK);
	ck_assert(isnan(f.mfu_bf16_ds) && isnan(f.mfu_fp8_ds));
	ck_assert_ptr_nonnull(strstr(f.bf16_ds.source, "no datasheet entry for 'test device'"));
	m.tokens_per_s = 0;
	ck_assert_int_eq(report_figures(&m, NULL, NULL, &f), MB_ERR_ARG);
}
END_TEST

START_TEST(gpu_hours_cost_verdict)
{
	struct report_figs f = { .tokens_per_gpu_s = 2000, .mfu_bf16_ds = 0.39,
				 .mfu_bf16_meas = NAN };
	struct report_pub p = { .budget_tokens = 14.8e12, .peak = 989, .mfu_published = 0.40 };
	struct report_cmp c;

	p.flops[REPORT_CONV_CAUSAL_MTP] = 2.5e11;
	report_compare(&f, &p, NAN, 2.5, 0.05, &c);
	/* 14.8e12 tokens / 2000 tokens per GPU-s / 3600 s = 2,055,555.5... GPU-hours */
	ck_assert_double_eq(c.tokens, 14.8e12);
	ck_assert_double_eq_tol(c.gpu_hours, 14.8e12 / 7.2e6, 1e-6);
	ck_assert_double_eq_tol(c.cost_usd, 2.5 * 14.8e12 / 7.2e6, 1e-6);
	/* the published model at 39% of 989 TFLOP/s: 3.7e24 / 3.8571e14 / 3600 */
	ck_assert_double_eq_tol(c.gpu_hours_at_mfu, 3.7e24 / (0.39 * 989e12) / 3600, 1e-3);
	ck_assert_int_eq(c.verdict, REPORT_AT_OR_ABOVE);   /* 0.39 >= 0.40 x 0.95 */
	f.mfu_bf16_ds = 0.379;
	report_compare(&f, &p, 1e12, 2.5, 0.05, &c);
	ck_assert_int_eq(c.verdict, REPORT_BELOW);
	ck_assert_double_eq_tol(c.gpu_hours, 1e12 / 7.2e6, 1e-6);   /* --tokens wins */
	f.mfu_bf16_ds = NAN;
	f.mfu_bf16_meas = 0.6;                              /* measured peak stands in */
	report_compare(&f, &p, NAN, 2, 0.05, &c);
	ck_assert_double_eq(c.mfu_ours, 0.6);
	ck_assert_int_eq(c.verdict, REPORT_AT_OR_ABOVE);
	f.mfu_bf16_meas = NAN;
	report_compare(&f, &p, NAN, 2, 0.05, &c);
	ck_assert_int_eq(c.verdict, REPORT_NA);
}
END_TEST

START_TEST(scaling_efficiency)
{
	struct report_meas m[4];
	struct report_figs f[4];

	/* weak: 1 GPU at 1000 tokens/s, 8 at 7000 (875 per GPU: 87.5%); strong: 2 GPUs at
	 * 1000, 4 at 1500 (T0 N0 / (T N) = 2 / (4 x 2/3) = 75%); a step row has none */
	for (int i = 0; i < 4; i++) {
		hand_run(&m[i], NULL, "bf16");
		snprintf(m[i].kind, sizeof(m[i].kind), i < 3 ? "scale" : "step");
	}
	snprintf(m[0].mode, 8, "weak"), m[0].gpus = 8, m[0].tokens_per_s = 7000;
	snprintf(m[1].mode, 8, "weak"), m[1].gpus = 1, m[1].tokens_per_s = 1000;
	snprintf(m[2].mode, 8, "strong"), m[2].gpus = 4, m[2].tokens_per_s = 1500;
	snprintf(m[3].mode, 8, "%s", "");
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(report_figures(&m[i], NULL, NULL, &f[i]), MB_OK);
	report_scaling(m, f, 4);
	ck_assert_double_eq_tol(f[0].scaling_eff, 0.875, 1e-15);
	ck_assert_int_eq(f[0].scaling_base_gpus, 1);
	ck_assert_double_eq(f[1].scaling_eff, 1.0);
	ck_assert_double_eq(f[2].scaling_eff, 1.0);   /* its own base: no 2-GPU strong row */
	ck_assert(isnan(f[3].scaling_eff));
	m[3] = m[2], m[3].gpus = 2, m[3].tokens_per_s = 1000;
	ck_assert_int_eq(report_figures(&m[3], NULL, NULL, &f[3]), MB_OK);
	report_scaling(m, f, 4);
	ck_assert_double_eq_tol(f[2].scaling_eff, 0.75, 1e-15);
}
END_TEST

/* ---- conventions: the published runs under the accounting's switches ---- */

static struct baselines set;

/* load_set reads the source tree's baselines. */
static void load_set(void)
{
	char why[512], dir[1100];
	snprintf(dir, sizeof(dir), "%s/results/baselines", MOEBENCH_SOURCE_DIR);
	ck_assert_msg(baselines_load(dir, &set, why, sizeof(why)) == MB_OK, "%s", why);
}

static void free_set(void)
{
	baselines_free(&set);
}

/* pub_of evaluates baseline/run into e and p. */
static void pub_of(const char *b, const char *r, struct baselines_eval *e, struct report_pub *p)
{
	const struct model_baseline *bl = baselines_find(&set, b);
	char why[512];
	size_t i = 0;
	ck_assert_ptr_nonnull(bl);
	while (i < bl->n_runs && strcmp(bl->runs[i].name, r))
		i++;
	ck_assert_uint_lt(i, bl->n_runs);
	ck_assert_int_eq(baselines_evaluate(bl, i, 2, false, 0.05, e, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(report_pub_fill(e, p), MB_OK);
}

/* flops_of counts deepseek-v3 at seq 4096 with mtp modules and flags. */
static double flops_of(int64_t mtp, unsigned flags)
{
	struct model_flops fl;
	ck_assert_int_eq(model_flops_per_token(model_preset_find("deepseek-v3"), 4096, mtp,
					       flags, &fl), MB_OK);
	return (double)fl.total;
}

START_TEST(conventions_deepseek_v3)
{
	struct baselines_eval e;
	struct report_pub p;
	struct model_summary s0, s1;

	pub_of("deepseek-v3", "pre-training", &e, &p);
	double tps = 14.8e12 / (2.664e6 * 3600);
	ck_assert_double_eq_tol(p.tokens_per_gpu_s, tps, 1e-9);
	ck_assert_double_eq(p.flops[REPORT_CONV_CAUSAL_MTP], flops_of(1, 0));
	ck_assert_double_eq(p.flops[REPORT_CONV_CAUSAL], flops_of(0, 0));
	ck_assert_double_eq(p.flops[REPORT_CONV_FULL_MTP], flops_of(1, MODEL_FLOPS_NONCAUSAL));
	ck_assert_double_eq(p.flops[REPORT_CONV_FULL], flops_of(0, MODEL_FLOPS_NONCAUSAL));
	model_summarize(model_preset_find("deepseek-v3"), 4096, 0, &s0);
	model_summarize(model_preset_find("deepseek-v3"), 4096, 1, &s1);
	ck_assert_double_eq(p.flops[REPORT_CONV_6N], (double)s0.flops_per_token_6n);
	ck_assert_double_eq(p.flops[REPORT_CONV_6N_MTP], (double)s1.flops_per_token_6n);
	for (int c = 0; c < REPORT_CONV_COUNT; c++)
		ck_assert_double_eq_tol(p.mfu[c], tps * p.flops[c] / 1e12 / 989.0, 1e-12);
	/* claims' 40.67% is the causal count with MTP; without MTP it is 39.08% */
	ck_assert_double_eq_tol(p.mfu[REPORT_CONV_CAUSAL_MTP], 0.4067, 5e-5);
	ck_assert_double_eq_tol(p.mfu[REPORT_CONV_CAUSAL], 0.3908, 5e-5);
	ck_assert_double_eq(p.mfu_published, p.mfu[REPORT_CONV_CAUSAL_MTP]);
	ck_assert_double_eq(p.budget_tokens, 14.8e12);
}
END_TEST

START_TEST(conventions_stated_rates)
{
	struct baselines_eval e, e2;
	struct report_pub p, q;

	/* Megatron-Bridge states 338 TFLOP/s and 1297 tokens/s per GPU: its count is
	 * the causal one with one MTP module (260.6 GFLOP per token) */
	pub_of("megatron-bridge-deepseek-v3", "h100-1024", &e, &p);
	ck_assert_double_eq(p.tokens_per_gpu_s, 1297);
	ck_assert_double_eq_tol(p.mfu_published, 338.0 / 989.0, 1e-15);
	ck_assert_int_eq(p.closest, REPORT_CONV_CAUSAL_MTP);
	ck_assert(isnan(p.budget_tokens));   /* report_build lends DeepSeek-V3's */
	/* Llama 3's Table 4 rows take the pre-training's 15.6T as their budget */
	pub_of("llama3-405b", "table4-8192-gpus", &e2, &q);
	ck_assert_double_eq(q.mfu_published, 0.43);
	ck_assert_double_eq(q.budget_tokens, 15.6e12);
	ck_assert_str_eq(q.budget_from, "pre-training");
	ck_assert(isnan(q.mfu[REPORT_CONV_CAUSAL]));   /* no tokens/GPU-s stated */
}
END_TEST

/* ---- documents ---- */

/* doc_of parses text into in; returns report_read_doc's status. */
static int doc_of(const char *text, struct report_inputs *in, char *why, size_t len)
{
	cJSON *doc = cJSON_Parse(text);
	ck_assert_ptr_nonnull(doc);
	memset(in, 0, sizeof(*in));
	int err = report_read_doc(doc, "x.json", in, why, len);
	cJSON_Delete(doc);
	return err;
}

#define CTX "\"context\":{\"world_size\":1,\"backend\":\"cpu\",\"cpu\":{\"model\":\"c\"},\"devices\":[]}"
#define PASS "\"check\":{\"status\":\"pass\"}"

START_TEST(documents_read)
{
	struct report_inputs in;
	char why[512];

	ck_assert_int_eq(doc_of("{\"schema\":\"moebench.result/1\"," CTX ",\"records\":["
		"{\"benchmark\":\"scale\",\"name\":\"weak/8\",\"params\":{\"preset\":\"v3-tiny\","
		"\"seq\":64,\"vocab\":256,\"gpus\":8,\"mode\":\"weak\",\"precision\":\"bf16\"},"
		"\"metrics\":{\"tokens_per_s\":16000}," PASS "},"
		"{\"benchmark\":\"peak\",\"name\":\"cpu/sgemm\",\"params\":{\"op\":\"sgemm\"},"
		"\"metrics\":{\"tflops\":0.25}," PASS "}]}", &in, why, sizeof(why)), MB_OK);
	ck_assert_uint_eq(in.n_meas, 1);
	ck_assert_int_eq(in.meas[0].gpus, 8);
	ck_assert_str_eq(in.meas[0].mode, "weak");
	ck_assert_str_eq(in.meas[0].precision, "bf16");
	ck_assert_uint_eq(in.n_peaks, 1);
	ck_assert_str_eq(in.peaks[0].device, "c");
	ck_assert_double_eq(report_peaks_of(&in, "c")->bf16.tflops, 0.25);
	ck_assert(isnan(report_peaks_of(&in, "c")->fp8.tflops));
	ck_assert_ptr_null(report_peaks_of(&in, "NVIDIA H100 80GB HBM3"));
	ck_assert_int_eq(doc_of("{\"model\":\"deepseek-v3\",\"hardware\":\"h800-sxm\",\"gpus\":"
		"2048,\"step_s\":17,\"split_s\":{},\"gpu_hours\":2.3e6,\"tokens\":1.48e13}", &in,
		why, sizeof(why)), MB_OK);
	ck_assert_uint_eq(in.n_proj, 1);
	ck_assert_double_eq(in.proj[0].gpu_hours, 2.3e6);
}
END_TEST

START_TEST(documents_refused)
{
	struct report_inputs in;
	char why[512];

	ck_assert_int_eq(doc_of("{\"schema\":\"moebench.result/1\"," CTX ",\"records\":["
		"{\"benchmark\":\"gemm\",\"name\":\"g\",\"params\":{},\"metrics\":{}," PASS "}]}",
		&in, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "a result of 'gemm'"));
	ck_assert_int_eq(doc_of("{\"schema\":\"moebench.claims/1\"}", &in, why, sizeof(why)),
			 MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "not a result document"));
	/* a failed check is never a figure: the only record skipped leaves nothing */
	ck_assert_int_eq(doc_of("{\"schema\":\"moebench.result/1\"," CTX ",\"records\":["
		"{\"benchmark\":\"step\",\"name\":\"s\",\"params\":{\"preset\":\"v3-tiny\",\"seq\":"
		"64},\"metrics\":{\"tokens_per_s\":10},\"check\":{\"status\":\"fail\"}}]}", &in, why,
		sizeof(why)), MB_ERR_PARSE);
	ck_assert_int_eq(doc_of("{\"schema\":\"moebench.result/1\"," CTX ",\"records\":["
		"{\"benchmark\":\"step\",\"name\":\"s\",\"params\":{\"preset\":\"nope\",\"seq\":"
		"64},\"metrics\":{\"tokens_per_s\":10}," PASS "}]}", &in, why, sizeof(why)),
		MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "params.preset"));
}
END_TEST

/* ---- the real program ---- */

START_TEST(cli_step_and_train)
{
	ck_assert_int_eq(sh("$MB step --preset v3-tiny --batch 1 --seq 32 --warmup 0 --iters 1 "
			    "--out s.json --quiet >/dev/null && $MB train --preset v3-tiny "
			    "--steps 2 --batch 1 --seq 32 --val-every 2 --val-batches 1 --out t.json "
			    "--quiet >/dev/null && $MB report s.json t.json --baseline deepseek-v3"), 0);
	ck_assert_ptr_nonnull(strstr(out, "step v3-tiny/fp32/b1_s32"));
	ck_assert_ptr_nonnull(strstr(out, "train v3-tiny/fp32/b1_s32"));
	ck_assert_ptr_nonnull(strstr(out, "40.67"));    /* causal+mtp */
	ck_assert_ptr_nonnull(strstr(out, "39.08"));    /* causal, MTP left out */
	ck_assert_ptr_nonnull(strstr(out, "(same)"));   /* the record's count is ours */
	ck_assert_ptr_nonnull(strstr(out, "verdict: at_or_above when"));
	ck_assert_int_eq(sh("$MB report s.json --format json --baseline llama3-405b | python3 -c "
			    "'import json,sys; d=json.load(sys.stdin); assert d[\"schema\"]==\"moebench."
			    "report/1\"; assert d[\"comparisons\"][0][\"tokens\"]==15.6e12'"), 0);
	ck_assert_int_eq(sh("$MB report s.json --format csv --tokens 1e12 | grep -c '^step v3-tiny'"), 0);
	ck_assert_int_eq(sh("$MB report s.json --format md | grep -q '^| run '"), 0);
}
END_TEST

START_TEST(cli_plot_never_overwrites)
{
	/* gnuplot is one of the project's packages (Makefile DEBS) */
	ck_assert_int_eq(sh("$MB step --preset v3-tiny --batch 1 --seq 16 --warmup 0 --iters 1 "
			    "--out s.json --quiet >/dev/null && $MB report s.json --plot f >/dev/null"
			    " && test -s f/report_mfu.png && test -s f/report_gpu_hours.png && "
			    "head -1 f/report_mfu.csv | grep -q '^# moebench report'"), 0);
	expect_error("$MB report s.json --plot f", "exists");
	ck_assert_int_eq(sh("$MB report s.json --plot f --force >/dev/null"), 0);
}
END_TEST

START_TEST(cli_scale_document)
{
	/* hand-made: `scale` writes none yet; the fields report.h says it reads */
	ck_assert_int_eq(sh("printf '%%s' '{\"schema\":\"moebench.result/1\",\"context\":{\"world_size\":1},"
			    "\"records\":[{\"benchmark\":\"scale\",\"name\":\"weak/1\",\"params\":{"
			    "\"preset\":\"v3-tiny\",\"seq\":64,\"vocab\":256,\"gpus\":1,\"mode\":\"weak\"},"
			    "\"metrics\":{\"tokens_per_s\":1000},\"check\":{\"status\":\"pass\"}},"
			    "{\"benchmark\":\"scale\",\"name\":\"weak/8\",\"params\":{\"preset\":"
			    "\"v3-tiny\",\"seq\":64,\"vocab\":256,\"gpus\":8,\"mode\":\"weak\"},"
			    "\"metrics\":{\"tokens_per_s\":7000},\"check\":{\"status\":\"pass\"}}]}' "
			    "> sc.json && $MB report sc.json --baseline frontier"), 0);
	ck_assert_msg(strstr(out, "87.50 (weak vs 1)"), "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "scale weak/8"));
	/* the scaling figure's data: the sweep's efficiencies beside Frontier's */
	ck_assert_int_eq(sh("$MB report sc.json --baseline frontier --plot sf >/dev/null 2>&1 && "
			    "grep -v '^#' sf/report_scaling.csv && test -s sf/report_scaling.png"), 0);
	ck_assert_msg(strstr(out, "\"scale weak/8\",measured,weak,8,87.5\n"), "%s", out);
	ck_assert_msg(strstr(out, "\"frontier/gpt-175b\",published,strong,1024,89\n"), "%s", out);
}
END_TEST

START_TEST(cli_bad_input)
{
	ck_assert_int_eq(sh("echo '{\"schema\":\"moebench.result/1\",\"context\":{},\"records\":"
			    "[{\"benchmark\":\"gemm\",\"name\":\"g\",\"params\":{},\"metrics\":{},"
			    "\"check\":{\"status\":\"pass\"}}]}' > g.json && echo '{}' > e.json && "
			    "echo nope > n.txt"), 0);
	expect_error("$MB report g.json", "a result of 'gemm'");
	expect_error("$MB report e.json", "not a result document");
	expect_error("$MB report n.txt", "not JSON");
	expect_error("$MB report missing.json", "missing.json");
	expect_error("$MB report", "no result document given");
	expect_error("$MB report g.json --baseline nosuch", "unknown baseline 'nosuch'");
	expect_error("$MB report g.json --format xml", "format");
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *arith = tcase_create("arithmetic");
	TCase *conv = tcase_create("conventions");
	TCase *docs = tcase_create("documents");
	TCase *cli = tcase_create("cli");

	tcase_add_test(arith, figures_hand_computed);
	tcase_add_test(arith, figures_fp8_and_unknown_device);
	tcase_add_test(arith, gpu_hours_cost_verdict);
	tcase_add_test(arith, scaling_efficiency);
	tcase_add_unchecked_fixture(conv, load_set, free_set);
	tcase_add_test(conv, conventions_deepseek_v3);
	tcase_add_test(conv, conventions_stated_rates);
	tcase_add_test(docs, documents_read);
	tcase_add_test(docs, documents_refused);
	tcase_add_checked_fixture(cli, cli_setup, cli_teardown);
	tcase_set_timeout(cli, 120);
	tcase_add_test(cli, cli_step_and_train);
	tcase_add_test(cli, cli_plot_never_overwrites);
	tcase_add_test(cli, cli_scale_document);
	tcase_add_test(cli, cli_bad_input);
	suite_add_tcase(s, arith);
	suite_add_tcase(s, conv);
	suite_add_tcase(s, docs);
	suite_add_tcase(s, cli);
	return s;
}

MB_CHECK_MAIN(report_suite)
