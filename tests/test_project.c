/*
 * test_project.c - `moebench project`: the arithmetic on hand-computed cases (one GEMM,
 * the nearest measured shape, one ring all-reduce and one all-to-all, node-limited
 * routing's node count, one pipeline's bubble against 1F1B's closed form with its
 * messages), the step's split adding up, the memory verdict both ways, and the real
 * program: the DeepSeek-V3 projection beside its claim, --validate, --json, --sweep,
 * and bad input exiting 2 with one error line and a hint.
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_harness.h"
#include "project.h"
#include "pipeline.h"
#include "project_step.h"
#include "status.h"

/* ---- arithmetic ---- */

START_TEST(gemm_compute_bound)
{
	/* 4096^3 at 0.5 of 1000 TFLOP/s: 2 * 4096^3 / 5e14 s; the traffic (3 x 4096^2
	 * BF16 elements over 0.9 of 3.35 TB/s = 33 us) is below it. */
	double t = proj_gemm_time(4096, 4096, 4096, 0.5, 1000, 2, 2, 3.35, 0.9);
	ck_assert_double_eq_tol(t, 137438953472.0 / 5e14, 1e-18);
}
END_TEST

START_TEST(gemm_memory_bound)
{
	/* one row: (4096 + 4096^2) inputs and 4096 outputs, BF16, over 0.9 x 3.35 TB/s */
	double t = proj_gemm_time(1, 4096, 4096, 0.5, 1000, 2, 2, 3.35, 0.9);
	ck_assert_double_eq_tol(t, 33570816.0 / 3.015e12, 1e-18);
	ck_assert(isnan(proj_gemm_time(1, 1, 1, 0, 1000, 2, 2, 3.35, 0.9)));
}
END_TEST

START_TEST(gemm_nearest_shape)
{
	const struct proj_gemm_point pts[] = { { 128, 4096, 7168, 0.28 },
					       { 4096, 4096, 7168, 0.72 } };
	/* distance in log2: 8192 is 1 from 4096 and 6 from 128; 256 is 1 from 128 */
	ck_assert_double_eq(proj_gemm_efficiency(pts, 2, 8192, 4096, 7168, 0.5), 0.72);
	ck_assert_double_eq(proj_gemm_efficiency(pts, 2, 256, 4096, 7168, 0.5), 0.28);
	ck_assert_double_eq(proj_gemm_efficiency(pts, 0, 256, 4096, 7168, 0.5), 0.5);
}
END_TEST

START_TEST(ring_all_reduce)
{
	const struct proj_tier t = { 450, 0.8, 3.4, 8.4 };
	/* 8 ranks, 1 GB: 2*7 steps of latency and 2*7/8 of the buffer at 360 GB/s */
	double want = (8.4 + 14 * 3.4) * 1e-6 + 14.0 / 8.0 * 1e9 / 360e9;
	ck_assert_double_eq_tol(proj_collective_time(PROJ_ALL_REDUCE, 8, 1e9, &t), want, 1e-15);
	want = (8.4 + 7 * 3.4) * 1e-6 + 7.0 / 8.0 * 1e9 / 360e9;
	ck_assert_double_eq_tol(proj_collective_time(PROJ_REDUCE_SCATTER, 8, 1e9, &t), want, 1e-15);
	ck_assert_double_eq(proj_collective_time(PROJ_ALL_REDUCE, 1, 1e9, &t), 0.0);
}
END_TEST

START_TEST(all_to_all_and_nodes)
{
	const struct proj_tier t = { 50, 0.86, 14, 8.4 };
	double want = (8.4 + 14) * 1e-6 + 63.0 / 64.0 * 1e8 / 43e9;
	ck_assert_double_eq_tol(proj_collective_time(PROJ_ALL_TO_ALL, 64, 1e8, &t), want, 1e-15);
	/* DeepSeek-V3: 8 experts over 8 nodes, at most 4: 4 (1 - (3/4)^8) */
	ck_assert_double_eq_tol(proj_nodes_per_token(8, 8, 4), 4.0 * (1 - pow(0.75, 8)), 1e-12);
	ck_assert_double_eq_tol(proj_nodes_per_token(8, 8, 0), 8.0 * (1 - pow(0.875, 8)), 1e-12);
	ck_assert_double_eq(proj_nodes_per_token(8, 1, 0), 1.0);
}
END_TEST

/* input_llama8b: Llama 3 8B on `gpus` H100s without calibration, tp 1. */
static struct proj_input input_llama8b(int64_t gpus, int pp, int64_t seq)
{
	struct proj_input in = { 0 };
	in.cfg = model_preset_find("llama3-8b");
	in.hw = hardware_find_key("h100-sxm");
	in.gpus = gpus;
	in.tp = in.cp = in.etp = in.ep = in.vp = 1;
	in.pp = pp;
	in.dp = (int)(gpus / pp);
	in.schedule = PIPE_1F1B;
	in.seq = seq;
	in.micro_batch = 1;
	in.global_batch = 8 * in.dp;
	return in;
}

/* sim_bubble runs the simulator on a projection's op times, with or without its
 * stage-to-stage messages, and returns the worst device's bubble. */
static double sim_bubble(const struct proj_result *r, bool messages)
{
	struct pipe_plan plan;
	struct pipe_sim sim;
	struct pipe_times t;
	char why[256];
	double f = r->share.f_exposed, b = r->share.b_exposed, w = 0;

	for (int i = 0; i < PROJ_N_CLASSES; i++) {
		f += r->share.f[i];
		b += r->share.b[i];
		w += r->share.w[i];
	}
	pipe_times_default(&t);
	t.f = f;
	t.b = b;
	t.w = w;
	if (messages) {  /* the network entry of h100-sxm, PP across nodes */
		t.latency = (14.0 + 8.4) * 1e-6;
		t.bandwidth = 50 * 0.86e9;
		t.msg_bytes = r->share.p2p_bytes;
	}
	ck_assert_int_eq(pipe_plan_build(PIPE_1F1B, r->in.pp, r->microbatches, 1, &plan, why,
					 sizeof(why)), 0);
	ck_assert_int_eq(pipe_simulate(&plan, &t, &sim, why, sizeof(why)), 0);
	double bubble = sim.bubble_max;
	pipe_sim_free(&sim);
	pipe_plan_free(&plan);
	return bubble;
}

START_TEST(pipeline_bubble_1f1b)
{
	struct proj_input in = input_llama8b(32, 4, 2048);
	struct proj_result r;
	char why[256];

	ck_assert_int_eq(proj_step(&in, &r, why, sizeof(why)), 0);
	ck_assert_int_eq(r.microbatches, 8);
	/* the projection's bubble is the simulator's on its op times and messages */
	ck_assert_double_eq_tol(r.bubble_s, sim_bubble(&r, true), 1e-12);
	/* without messages, 1F1B's closed form: (PP-1)(F+B), F and B the op times
	 * (compute plus exposed communication), B = b + w */
	double fbw = r.share.f_exposed + r.share.b_exposed;
	for (int i = 0; i < PROJ_N_CLASSES; i++)
		fbw += r.share.f[i] + r.share.b[i] + r.share.w[i];
	ck_assert_double_eq_tol(sim_bubble(&r, false), 3 * fbw, 1e-12);
	ck_assert(r.bubble_s > 3 * fbw);  /* messages only add idle time */
	/* the split adds up to the step */
	double sum = r.comm_exposed_s + r.bubble_s + r.dp_exposed_s + r.optimizer_s;
	for (int i = 0; i < PROJ_N_CLASSES; i++)
		sum += r.compute_s[i];
	ck_assert_double_eq_tol(sum, r.step_s, 1e-12);
	ck_assert(!r.calibrated);
	/* uncalibrated GEMMs run at 0.5 of the 989 TFLOP/s peak, less where memory-bound */
	double t = r.share.f[PROJ_DENSE_GEMM] + r.share.b[PROJ_DENSE_GEMM] + r.share.w[PROJ_DENSE_GEMM];
	double rate = r.share.flops[PROJ_DENSE_GEMM] / t / 1e12;
	ck_assert_msg(rate <= 494.5 + 1e-9 && rate > 480, "dense GEMM rate %g", rate);
}
END_TEST

START_TEST(memory_verdict)
{
	struct proj_input in = input_llama8b(8, 1, 2048);
	struct proj_result r;
	char why[256];

	ck_assert_int_eq(proj_step(&in, &r, why, sizeof(why)), 0);
	ck_assert(r.fits);
	ck_assert(r.mem_total_bytes < 80e9);
	/* DeepSeek-V3 on one node: 671B parameters cannot fit in 8 x 80 GB */
	in.cfg = model_preset_find("deepseek-v3");
	in.ep = 8;
	in.seq = 4096;
	in.mtp_depth = 1;
	ck_assert_int_eq(proj_step(&in, &r, why, sizeof(why)), 0);
	ck_assert(!r.fits);
	ck_assert(r.mem.weight_bytes > 80e9);
}
END_TEST

/* input_dsv3 is DeepSeek-V3 on 256 H800s, EP 64 over 8 nodes, DualPipe, FP8. */
static struct proj_input input_dsv3(void)
{
	struct proj_input in = { 0 };
	in.cfg = model_preset_find("deepseek-v3");
	in.hw = hardware_find_key("h800-sxm");
	in.gpus = 256;
	in.tp = in.cp = in.etp = in.vp = 1;
	in.pp = 4;
	in.dp = 64;
	in.ep = 64;
	in.schedule = PIPE_DUALPIPE;
	in.fp8 = true;
	in.seq = 4096;
	in.micro_batch = 1;
	in.global_batch = 512;
	in.mtp_depth = 1;
	return in;
}

START_TEST(stages_and_dispatch)
{
	struct proj_input in = input_dsv3();
	struct proj_result even, bal, a2a;
	char why[256];

	in.stages = PROJ_STAGES_EVEN_LAYERS;
	ck_assert_int_eq(proj_step(&in, &even, why, sizeof(why)), 0);
	in.stages = PROJ_STAGES_BALANCED;
	ck_assert_int_eq(proj_step(&in, &bal, why, sizeof(why)), 0);
	/* the fullest device of an even split carries more than the mean share */
	ck_assert(even.imbalance > 1.0);
	ck_assert_double_eq_tol(even.imbalance, bal.imbalance, 1e-12);
	ck_assert(even.step_s > bal.step_s);
	/* a plain all-to-all sends every routed copy: more EP traffic than DeepEP's one copy
	 * per node (3.6 nodes per token against 8 copies) */
	in.dispatch = PROJ_DISPATCH_ALLTOALL;
	ck_assert_int_eq(proj_step(&in, &a2a, why, sizeof(why)), 0);
	ck_assert(a2a.comm_s[PROJ_COMM_EP] > 1.5 * bal.comm_s[PROJ_COMM_EP]);
	ck_assert_double_eq_tol(bal.nodes_per_token, 4.0 * (1 - pow(0.75, 8)), 1e-12);
	ck_assert_int_eq(bal.ep_nodes, 8);
}
END_TEST

START_TEST(dualpipe_hides_ep)
{
	struct proj_input in = input_dsv3();
	struct proj_result dual, plain;
	char why[256];

	in.stages = PROJ_STAGES_BALANCED;
	ck_assert_int_eq(proj_step(&in, &dual, why, sizeof(why)), 0);
	in.schedule = PIPE_1F1B;
	ck_assert_int_eq(proj_step(&in, &plain, why, sizeof(why)), 0);
	/* 1F1B exposes every all-to-all; DualPipe's F&B pairs hide them behind compute */
	ck_assert_double_eq_tol(plain.comm_hidden_s, 0.0, 1e-9 * plain.step_s);
	ck_assert_double_eq_tol(plain.comm_exposed_s, plain.comm_s[PROJ_COMM_EP], 1e-9 * plain.step_s);
	ck_assert(dual.comm_hidden_s > 0.1 * dual.comm_s[PROJ_COMM_EP]);
	ck_assert_double_eq_tol(dual.comm_s[PROJ_COMM_EP], plain.comm_s[PROJ_COMM_EP], 1e-12);
}
END_TEST

START_TEST(layout_rejected)
{
	struct proj_input in = input_llama8b(32, 4, 2048);
	struct proj_result r;
	char why[256];

	in.dp = 7;
	ck_assert_int_eq(proj_step(&in, &r, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "not --gpus 32"));
}
END_TEST

/* ---- the program ---- */

#define DSV3 "$MB project --preset deepseek-v3 --hardware h800-sxm --gpus 2048 " \
	     "--layout pp=16,ep=64,dp=128 --schedule dualpipe --precision fp8"

/* expect_has checks that the last output contains text. */
static void expect_has(const char *text)
{
	ck_assert_msg(strstr(out, text), "output lacks '%s':\n%s", text, out);
}

START_TEST(cli_deepseek_v3)
{
	ck_assert_int_eq(sh(DSV3), 0);
	expect_has("step split (per GPU, one step)");
	expect_has("pipeline bubble (simulated)");
	expect_has("node-limited routing to at most 4: 3.60 nodes per token");
	expect_has("for 14.8T tokens:");
	expect_has("claimed: 2.664M GPU-hours");
	expect_has("calibration: ");
	ck_assert_int_eq(sh(DSV3 " --calibration none"), 0);
	expect_has("calibration: none for h800-sxm");
}
END_TEST

START_TEST(cli_json_sweep_validate)
{
	ck_assert_int_eq(sh(DSV3 " --json | python3 -c 'import json,sys; d=json.load(sys.stdin); "
			    "print(d[\"microbatches\"], d[\"claimed_gpu_hours\"], d[\"step_s\"] > 0)'"), 0);
	ck_assert_str_eq(out, "120 2664000 True\n");
	ck_assert_int_eq(sh("$MB project --preset llama3-8b --gpus 64 --layout pp=4 --global-batch 256 "
			    "--sweep gpus=32,64 | wc -l"), 0);
	ck_assert_str_eq(out, "3\n");
	ck_assert_int_eq(sh("$MB project --preset llama3-8b --gpus 64 --global-batch 256 --search "
			    "--top 2"), 0);
	expect_has("layouts run and fit; the best 2");
	ck_assert_int_eq(sh("$MB project --preset llama3-8b --gpus 64 --global-batch 256 --search "
			    "--top 2 | tail -n +3 | wc -l"), 0);
	ck_assert_str_eq(out, "2\n");
	ck_assert_int_eq(sh("$MB project --validate"), 0);
	expect_has("llama3-405b/table4-16384-gpus-cp16");
	expect_has("DP printed 4, derived 8");
	expect_has("mean |err|");
}
END_TEST

START_TEST(cli_bad_input)
{
	expect_error("$MB project --preset deepseek-v3 --gpus 2048 --layout pp=16,ep=64,dp=100",
		     "not --gpus 2048");
	expect_error("$MB project --preset deepseek-v3 --gpus 2048 --layout tp=3,pp=16",
		     "does not divide --gpus 2048");
	expect_error("$MB project --preset deepseek-v3 --hardware h900 --gpus 8", "unknown key 'h900'");
	expect_error("$MB project --preset deepseek-v4 --gpus 8", "unknown model 'deepseek-v4'");
	expect_error("$MB project --preset deepseek-v3 --hardware h800-sxm --gpus 2040 "
		     "--layout pp=15,ep=8 --global-batch 4080 --schedule dualpipe",
		     "dualpipe needs an even number of devices");
	expect_error("$MB project --preset deepseek-v3 --gpus 8 --layout ep=3", "ep=3 does not divide");
	expect_error("$MB project --preset llama3-8b --hardware mi300x --gpus 8",
		     "lacks its scale-up or scale-out");
	expect_error("$MB project --preset llama3-8b --gpus 8 --layout vp=2", "needs --schedule "
		     "interleaved");
}
END_TEST

static Suite *project_suite(void)
{
	Suite *s = suite_create("project");
	TCase *arith = tcase_create("arithmetic");
	TCase *step = tcase_create("step");
	TCase *cli = tcase_create("cli");

	tcase_add_test(arith, gemm_compute_bound);
	tcase_add_test(arith, gemm_memory_bound);
	tcase_add_test(arith, gemm_nearest_shape);
	tcase_add_test(arith, ring_all_reduce);
	tcase_add_test(arith, all_to_all_and_nodes);
	tcase_add_test(step, pipeline_bubble_1f1b);
	tcase_add_test(step, memory_verdict);
	tcase_add_test(step, layout_rejected);
	tcase_add_test(step, stages_and_dispatch);
	tcase_add_test(step, dualpipe_hides_ep);
	tcase_add_checked_fixture(cli, cli_setup, cli_teardown);
	tcase_set_timeout(cli, 120);
	tcase_add_test(cli, cli_deepseek_v3);
	tcase_add_test(cli, cli_json_sweep_validate);
	tcase_add_test(cli, cli_bad_input);
	suite_add_tcase(s, arith);
	suite_add_tcase(s, step);
	suite_add_tcase(s, cli);
	return s;
}

MB_CHECK_MAIN(project_suite)
