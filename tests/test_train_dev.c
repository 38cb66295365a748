/*
 * test_train_dev.c - the host side of `moebench train --backend cuda` (train_dev.c), which
 * CI can reach without a GPU (the CLI path needs a device: the session stops at "no CUDA
 * device" first, test_cli_train.c): the options the device loop refuses, each with one
 * error line naming it and a hint; and its optimizer step run on the CPU table (the loop
 * is written against the model's table, not against CUDA) against the same step spelled
 * out with the host's functions, bit for bit, over three steps of fresh random tokens,
 * with one micro-batch and with several (their gradients summed and averaged in table
 * memory); the weights' host copy there and back.
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "model.h"
#include "net.h"
#include "rng.h"
#include "status.h"
#include "stderr_catch.h"
#include "test_seed.h"
#include "train_state.h"

static char err_text[4096];

/* refused runs train_dev_refuse with stderr caught into err_text; returns its status. */
static int refused(const struct train_opts *o, int world)
{
	struct stderr_catch c;
	stderr_catch_begin(&c);
	int st = train_dev_refuse(o, world);
	stderr_catch_end(&c, err_text, sizeof(err_text));
	return st;
}

START_TEST(refuses_what_one_rank_does_not_do)
{
	static const char *name[] = { "--tp", "--pp", "--ep", "--etp", "--dp", "--zero1", "--sp",
				      "--ep-overlap", "--replicas", "2 ranks" };
	const struct train_opts base = { .preset = "v3-tiny", .precision = "bf16", .batch = 8,
					 .seq = 128, .tp = 1, .pp = 1, .ep = 1, .etp = 1,
					 .replicas = 1 };
	struct train_opts o = base;
	ck_assert_int_eq(refused(&o, 1), MB_OK);
	ck_assert_str_eq(err_text, "");
	o.micro = 2;   /* micro-batches in turn */
	o.dp = 1;
	ck_assert_int_eq(refused(&o, 1), MB_OK);
	for (int i = 0; i < 10; i++) {
		o = base;
		int64_t *n[5] = { &o.tp, &o.pp, &o.ep, &o.etp, &o.dp };
		if (i < 5)
			*n[i] = 2;
		o.zero1 = i == 5, o.sp = i == 6, o.overlap = i == 7;
		o.replicas = i == 8 ? 2 : 1;
		ck_assert_int_eq(refused(&o, i == 9 ? 2 : 1), MB_ERR_ARG);
		const char *e = strstr(err_text, "moebench: error: train --backend cuda: ");
		ck_assert_msg(e && strstr(err_text, name[i]), "%s: %s", name[i], err_text);
		ck_assert_msg(!strstr(e + 1, "moebench: error: "), "two error lines: %s", err_text);
		ck_assert_msg(strstr(err_text, "hint: "), "no hint: %s", err_text);
	}
}
END_TEST

/* host_step is train_dev_step spelled out with the host's own functions: each
 * micro-batch's gradients summed in order, times 1/n, AdamW, the loads summed, the bias
 * update. */
static double host_step(const struct net_layout *L, struct net_f32 *m, const struct net_adamw *a,
			long step, const int32_t *tok, int n, int rows, double gamma, double *loss)
{
	struct net_stats st;
	const long *load[64];
	int E = (int)L->cfg.routed_experts;
	long *sum = calloc((size_t)L->blocks * E, sizeof(long));
	float *acc = malloc(L->total * sizeof(float)), *g = net_grads_f32(m);
	*loss = 0;
	for (int k = 0; k < n; k++) {
		ck_assert_int_eq(net_forward_f32(m, tok + (size_t)k * rows, &st), MB_OK);
		ck_assert_int_eq(net_backward_f32(m), MB_OK);
		for (size_t j = 0; j < L->total; j++)
			acc[j] = k ? acc[j] + g[j] : g[j];
		for (int b = 0; b < L->blocks; b++) {
			const long *l = net_expert_load_f32(m, b);
			for (int e = 0; l && e < E; e++)
				sum[(size_t)b * E + e] += l[e];
			load[b] = l ? sum + (size_t)b * E : NULL;
		}
		*loss += st.loss / n;
	}
	for (size_t j = 0; n > 1 && j < L->total; j++)
		g[j] = acc[j] * (1.0f / (float)n);
	double norm = net_adamw_step(L, a, step + 1, net_params_f32(m), g, net_moment1_f32(m),
				     net_moment2_f32(m));
	net_bias_update(L, net_params_f32(m), load, gamma);
	free(acc);
	free(sum);
	return norm;
}

/* dev_vs_host runs three steps of train_dev_step on the CPU table with n micro-batches of
 * two sequences, and the host's spelled-out step, from the same weights: equal bit for
 * bit (losses, norms, weights); then the weights' host copy there and back. */
static void dev_vs_host(int n)
{
	enum { B = 2, S = 24, STEPS = 3 };
	struct trainer t;
	struct train_opts o = { .steps = STEPS, .gamma = 0.01 };
	struct net_f32 *ref;
	struct mb_rng rng;
	char why[256];
	memset(&t, 0, sizeof(t));
	t.o = &o;
	t.cfg = *model_preset_find("v3-tiny");
	t.cfg.vocab = 256;
	t.cfg.seq_len = S;
	ck_assert_int_eq(net_layout_build(&t.cfg, &t.L, why, sizeof(why)), MB_OK);
	ck_assert(t.L.blocks <= 64 && t.cfg.expert_bias);
	t.moe = true;
	t.micro = B;
	t.n_micro = n;
	t.len = S + 1 + (int)t.cfg.mtp_depth;
	net_options_default(&t.no);
	net_adamw_default(&t.adam);
	uint64_t seed = test_seed();
	ck_assert_int_eq(net_create_f32(&t.L, &t.no, B, S, seed, &t.m), MB_OK);
	ck_assert_int_eq(net_create_f32(&t.L, &t.no, B, S, seed, &ref), MB_OK);
	ck_assert_int_eq(train_dev_attach(&t), MB_OK);
	size_t ntok = (size_t)n * B * t.len;
	int32_t *tok = malloc(ntok * sizeof(int32_t));
	mb_rng_seed(&rng, seed, 0x7d + (uint64_t)n);
	for (long s = 0; s < STEPS; s++) {
		double x[6], norm, loss;
		const long *load[64];
		for (size_t j = 0; j < ntok; j++)
			tok[j] = (int32_t)(mb_rng_next(&rng) % 256);
		t.adam.lr = 1e-2 * (double)(s + 1);
		ck_assert_int_eq(train_dev_step(&t, s, tok, x, &norm, load), MB_OK);
		double want = host_step(&t.L, ref, &t.adam, s, tok, n, B * t.len, o.gamma, &loss);
		ck_assert(isfinite(loss) && loss > 0);
		ck_assert_double_eq(x[2], loss);
		ck_assert_double_eq(norm, want);
		ck_assert(x[3] > 0 && x[4] == 0 && x[5] == 0);
		ck_assert_int_eq(memcmp(net_params_f32(t.m), net_params_f32(ref),
					t.L.total * sizeof(float)), 0);
	}
	/* the weights moved, and their host copy goes there and back */
	float *h = train_dev_host(&t);
	ck_assert_int_eq(train_dev_params(&t, false), MB_OK);
	ck_assert_int_eq(memcmp(h, net_params_f32(ref), t.L.total * sizeof(float)), 0);
	h[t.L.total / 2] += 1.0f;
	ck_assert_int_eq(train_dev_params(&t, true), MB_OK);
	ck_assert_float_eq(net_params_f32(t.m)[t.L.total / 2], h[t.L.total / 2]);
	train_dev_close(&t);
	ck_assert_ptr_null(t.dev);
	free(tok);
	net_destroy_f32(ref);
	net_destroy_f32(t.m);
	net_layout_free(&t.L);
}

START_TEST(step_on_the_cpu_table_equals_the_host_step)
{
	dev_vs_host(1);
}
END_TEST

START_TEST(micro_batches_on_the_cpu_table_equal_the_host_step)
{
	dev_vs_host(2);
	dev_vs_host(3);
}
END_TEST

static Suite *train_dev_suite(void)
{
	Suite *s = suite_create("train_dev");
	TCase *c = tcase_create("core");
	tcase_add_test(c, refuses_what_one_rank_does_not_do);
	tcase_add_test(c, step_on_the_cpu_table_equals_the_host_step);
	tcase_add_test(c, micro_batches_on_the_cpu_table_equal_the_host_step);
	suite_add_tcase(s, c);
	return s;
}

MB_CHECK_MAIN(train_dev_suite)
