/*
 * test_route.c (GPU) - route_cuda against route_cpu on fresh random logits: DeepSeek-V3
 * size (E = 256, K = 8, 8 groups keep 4, 8 nodes at most 4 per token) at T = 4096 and
 * an odd T, with and without a bias, on a Zipf-skewed stream, on logits full of ties,
 * past one grid sweep, and small configurations. Exits 77 (CTest: skipped) when no
 * CUDA device answers; runs without fork (CUDA contexts do not survive one).
 *
 * Expert indices must equal the CPU's exactly. Weights are computed with the same
 * float operations in the same order and are expected bit-identical; the check allows
 * WEIGHT_TOL * route_scale (a few FP32 ulps) so that it states the contract, not the
 * implementation. The outputs are poisoned (all bits set: index -1, weight NaN) first.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cuda_runtime_api.h>

#include "rng.h"
#include "route.h"
#include "status.h"

#include "gpu_main.h"
#include "../test_seed.h"

#define WEIGHT_TOL 0x1p-22f

static const struct route_config deepseek_v3 = { 256, 8, 8, 4, 8, 4, 2.5f };

/* The inputs of one comparison. */
struct route_case {
	struct route_config c;
	long tokens;
	double zipf;       /* token stream skew; 0 = normal logits */
	int bias;          /* 1: random bias in [-0.05, 0.05] */
	int ties;          /* 1: logits rounded to multiples of 1/4 */
	uint64_t id;       /* random stream of this case */
};

/* run_gpu routes logits (and bias) on the device into idx and w, poisoned first. */
static void run_gpu(const struct route_case *k, const float *logits, const float *bias,
		    int32_t *idx, float *w)
{
	size_t nl = (size_t)k->tokens * k->c.experts, no = (size_t)k->tokens * k->c.topk;
	float *d_logits, *d_bias = NULL, *d_w;
	int32_t *d_idx;

	ck_assert_int_eq(cudaMalloc((void **)&d_logits, nl * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(cudaMalloc((void **)&d_idx, no * sizeof(int32_t)), cudaSuccess);
	ck_assert_int_eq(cudaMalloc((void **)&d_w, no * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(d_logits, logits, nl * sizeof(float), cudaMemcpyHostToDevice),
			 cudaSuccess);
	if (bias) {
		size_t nb = (size_t)k->c.experts * sizeof(float);
		ck_assert_int_eq(cudaMalloc((void **)&d_bias, nb), cudaSuccess);
		ck_assert_int_eq(cudaMemcpy(d_bias, bias, nb, cudaMemcpyHostToDevice), cudaSuccess);
	}
	ck_assert_int_eq(cudaMemset(d_idx, 0xff, no * sizeof(int32_t)), cudaSuccess);
	ck_assert_int_eq(cudaMemset(d_w, 0xff, no * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(route_cuda(&k->c, d_logits, d_bias, k->tokens, d_idx, d_w, stream), MB_OK);
	ck_assert_int_eq(cudaStreamSynchronize(stream), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(idx, d_idx, no * sizeof(int32_t), cudaMemcpyDeviceToHost),
			 cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(w, d_w, no * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
	cudaFree(d_logits);
	cudaFree(d_bias);
	cudaFree(d_idx);
	cudaFree(d_w);
}

/* make_inputs fills the case's logits and bias (NULL when the case has none). */
static void make_inputs(const struct route_case *k, float *logits, float **bias)
{
	size_t nl = (size_t)k->tokens * k->c.experts;
	struct mb_rng rng;

	mb_rng_seed(&rng, test_seed(), k->id);
	route_logits_random(logits, k->tokens, k->c.experts, k->zipf, mb_rng_next(&rng), 0);
	for (size_t i = 0; k->ties && i < nl; i++)
		logits[i] = roundf(logits[i] * 4.0f) / 4.0f;
	*bias = NULL;
	if (k->bias) {
		*bias = malloc((size_t)k->c.experts * sizeof(float));
		ck_assert_ptr_nonnull(*bias);
		mb_rng_fill_uniform_f32(&rng, *bias, (size_t)k->c.experts, -0.05f, 0.05f);
	}
}

/* compare_case routes one case on both sides and asserts the contract above; returns
 * how many weights differ in any bit (expected 0, reported). */
static long compare_case(const struct route_case *k)
{
	size_t nl = (size_t)k->tokens * k->c.experts, no = (size_t)k->tokens * k->c.topk;
	float *logits = malloc(nl * sizeof(float)), *bias, *w = malloc(no * sizeof(float));
	float *gw = malloc(no * sizeof(float));
	int32_t *idx = malloc(no * sizeof(int32_t)), *gidx = malloc(no * sizeof(int32_t));
	long differ = 0;

	ck_assert(logits && w && gw && idx && gidx);
	make_inputs(k, logits, &bias);
	ck_assert_int_eq(route_cpu(&k->c, logits, bias, k->tokens, idx, w), MB_OK);
	run_gpu(k, logits, bias, gidx, gw);
	for (size_t i = 0; i < no; i++) {
		ck_assert_msg(gidx[i] == idx[i] && fabsf(gw[i] - w[i]) <= WEIGHT_TOL * k->c.route_scale,
			      "E=%d K=%d T=%ld token %zu rank %zu: gpu %d %a, cpu %d %a (seed %llu)",
			      k->c.experts, k->c.topk, k->tokens, i / k->c.topk, i % k->c.topk,
			      gidx[i], (double)gw[i], idx[i], (double)w[i],
			      (unsigned long long)test_seed());
		differ += memcmp(&gw[i], &w[i], sizeof(float)) != 0;
	}
	if (differ)
		printf("route E=%d T=%ld: %ld weights not bit-identical (within tolerance)\n",
		       k->c.experts, k->tokens, differ);
	free(logits);
	free(bias);
	free(w);
	free(gw);
	free(idx);
	free(gidx);
	return differ;
}

START_TEST(deepseek_v3_at_4096_tokens)
{
	struct route_case k = { deepseek_v3, 4096, 0.0, 0, 0, 1 };
	compare_case(&k);
	k.bias = 1;
	k.id = 2;
	compare_case(&k);
}
END_TEST

START_TEST(deepseek_v3_at_odd_tokens)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 3);
	struct route_case k = { deepseek_v3, 2 * (long)(mb_rng_next(&rng) % 3000) + 1, 0.0, 1, 0, 4 };
	compare_case(&k);
	k.tokens = 1;
	compare_case(&k);
}
END_TEST

START_TEST(deepseek_v3_skewed_and_tied)
{
	struct route_case k = { deepseek_v3, 4096, 1.2, 1, 0, 5 };
	compare_case(&k);
	k.zipf = 0.0;
	k.ties = 1;   /* many exact ties: the lower index must win on both sides */
	k.id = 6;
	compare_case(&k);
}
END_TEST

/* 300001 tokens: more than one sweep of the grid (65536 CTAs of 4 warps). */
START_TEST(past_one_grid_sweep)
{
	struct route_case k = { deepseek_v3, 300001, 0.0, 1, 0, 7 };
	compare_case(&k);
}
END_TEST

/* Small and unusual shapes: no limits, groups only, nodes inside groups, K > 32. */
START_TEST(small_configurations)
{
	const struct route_config cs[] = {
		{ 16, 2, 1, 1, 1, 0, 1.0f }, { 64, 6, 8, 3, 1, 0, 2.0f },
		{ 64, 4, 4, 2, 16, 2, 1.0f }, { 48, 6, 6, 4, 3, 2, 1.5f },
		{ 160, 40, 1, 1, 5, 4, 1.0f }, { 1024, 8, 16, 4, 64, 8, 2.5f },
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		struct route_case k = { cs[i], 1001, 0.0, (int)(i % 2), (int)(i == 3), 10 + i };
		ck_assert_int_eq(route_config_check(&cs[i], NULL, 0), MB_OK);
		compare_case(&k);
	}
}
END_TEST

/* Errors: a bad configuration, a shape beyond shared memory, and no tokens at all. */
START_TEST(errors_and_empty)
{
	struct route_config bad = deepseek_v3, huge = { 8192, 8, 1, 1, 1, 0, 1.0f };
	float *d = NULL;
	int32_t *d_idx = NULL;

	bad.max_nodes = 3;
	ck_assert_int_eq(cudaMalloc((void **)&d, 8192 * sizeof(float)), cudaSuccess);
	ck_assert_int_eq(cudaMalloc((void **)&d_idx, 8 * sizeof(int32_t)), cudaSuccess);
	ck_assert_int_eq(route_cuda(&bad, d, NULL, 1, d_idx, d, stream), MB_ERR_ARG);
	ck_assert_int_eq(route_cuda(&huge, d, NULL, 1, d_idx, d, stream), MB_ERR_UNSUPPORTED);
	ck_assert_int_eq(route_cuda(&deepseek_v3, d, NULL, 0, d_idx, d, stream), MB_OK);
	ck_assert_int_eq(route_cuda(&deepseek_v3, d, NULL, -1, d_idx, d, stream), MB_ERR_ARG);
	ck_assert_int_eq(cudaStreamSynchronize(stream), cudaSuccess);
	cudaFree(d);
	cudaFree(d_idx);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("gpu_route");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 600);
	tcase_add_test(core, deepseek_v3_at_4096_tokens);
	tcase_add_test(core, deepseek_v3_at_odd_tokens);
	tcase_add_test(core, deepseek_v3_skewed_and_tied);
	tcase_add_test(core, past_one_grid_sweep);
	tcase_add_test(core, small_configurations);
	tcase_add_test(core, errors_and_empty);
	suite_add_tcase(s, core);
	return s;
}

int main(void)
{
	return gpu_main(make_suite);
}
