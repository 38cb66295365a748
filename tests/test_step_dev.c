/*
 * test_step_dev.c - the host side of `moebench step --backend cuda` (step_dev.c), which
 * CI can reach without a GPU: the options the device step refuses, each with one error
 * line that names it and a hint, and the precisions it takes (fp32, bf16, fp8) (the CLI path to them needs a device: the session stops
 * at "no CUDA device" first, test_cli_train.c), and the routing-bias update it runs
 * through the op table (net_bias_update_f32) against the host's net_bias_update, on
 * fresh random biases and loads.
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
#include "step_dev.h"
#include "test_seed.h"

static char err_text[4096];

/* refused runs step_dev_refuse with stderr caught into err_text; returns its status. */
static int refused(const struct step_dev_opts *o)
{
	struct stderr_catch c;
	stderr_catch_begin(&c);
	int st = step_dev_refuse(o);
	stderr_catch_end(&c, err_text, sizeof(err_text));
	return st;
}

START_TEST(refuses_what_one_rank_does_not_do)
{
	static const char *name[] = { "--tp", "--pp", "--ep", "--etp", "--dp", "--micro-batch",
				      "--zero1", "--sp", "--ep-overlap", "--init-from", "--save",
				      "--dump-batch" };
	const struct step_dev_opts base = { .preset = "v3-tiny", .precision = "bf16", .batch = 4,
					    .seq = 128, .dp = 1, .tp = 1, .pp = 1, .ep = 1, .etp = 1 };
	struct step_dev_opts o = base;
	ck_assert_int_eq(refused(&o), MB_OK);
	ck_assert_str_eq(err_text, "");
	o.dp = 0;              /* the world's ranks: one */
	ck_assert_int_eq(refused(&o), MB_OK);
	o.precision = "fp8";   /* the attention blocks too have a device FP8 path */
	ck_assert_int_eq(refused(&o), MB_OK);
	ck_assert_str_eq(err_text, "");
	o.precision = "fp32";
	ck_assert_int_eq(refused(&o), MB_OK);
	for (int i = 0; i < 12; i++) {
		o = base;
		int64_t *n[5] = { &o.tp, &o.pp, &o.ep, &o.etp, &o.dp };
		if (i < 5)
			*n[i] = 2;
		o.micro = i == 5 ? 2 : 0;
		o.zero1 = i == 6, o.sp = i == 7, o.overlap = i == 8;
		o.init_from = i == 9 ? "a.safetensors" : NULL;
		o.save = i == 10 ? "b.safetensors" : NULL;
		o.dump = i == 11 ? "c.json" : NULL;
		ck_assert_int_eq(refused(&o), MB_ERR_ARG);
		char want[64];
		snprintf(want, sizeof(want), "%s: the device step", name[i]);
		const char *e = strstr(err_text, "moebench: error: ");
		ck_assert_msg(e && strstr(err_text, want), "%s: %s", name[i], err_text);
		ck_assert_msg(!strstr(e + 1, "moebench: error: "), "two error lines: %s", err_text);
		ck_assert_msg(strstr(err_text, "hint: "), "no hint: %s", err_text);
	}
}
END_TEST

START_TEST(bias_update_through_the_table)
{
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m;
	struct mb_rng rng;
	char why[256];
	const long *load[64];
	ck_assert_int_eq(net_layout_build(model_preset_find("v3-tiny"), &L, why, sizeof(why)), MB_OK);
	ck_assert(L.cfg.expert_bias && L.blocks <= 64);
	net_options_default(&o);
	ck_assert_int_eq(net_create_f32(&L, &o, 1, 8, 3, &m), MB_OK);
	int E = (int)L.cfg.routed_experts, moe = 0;
	float *w = net_params_f32(m), *ref = malloc(L.total * sizeof(float));
	long *loads = malloc((size_t)L.blocks * E * sizeof(long));
	mb_rng_seed(&rng, test_seed(), 0xb1a5);
	for (int i = 0; i < L.blocks; i++) {
		load[i] = L.blk[i].moe ? loads + (size_t)i * E : NULL;
		moe += L.blk[i].moe;
		for (int e = 0; L.blk[i].moe && e < E; e++) {
			loads[(size_t)i * E + e] = (long)(mb_rng_next(&rng) % 50);
			w[L.t[L.blk[i].router_bias].off + e] = (float)mb_rng_uniform(&rng, -0.1, 0.1);
		}
	}
	ck_assert_int_gt(moe, 0);
	memcpy(ref, w, L.total * sizeof(float));
	float *orig = malloc(L.total * sizeof(float));
	memcpy(orig, w, L.total * sizeof(float));
	net_bias_update(&L, ref, load, 0.01);
	ck_assert_int_eq(net_bias_update_f32(m, load, 0.01), MB_OK);
	size_t moved = 0, differ = 0;
	for (size_t j = 0; j < L.total; j++) {
		differ += memcmp(&ref[j], &w[j], sizeof(float)) != 0;
		moved += ref[j] != orig[j];
	}
	ck_assert_uint_eq(differ, 0);   /* bit for bit with the host's update */
	ck_assert_uint_gt(moved, 0);    /* and the update did something */
	free(ref);
	free(orig);
	free(loads);
	net_destroy_f32(m);
	net_layout_free(&L);
}
END_TEST

static Suite *step_dev_suite(void)
{
	Suite *s = suite_create("step_dev");
	TCase *c = tcase_create("core");
	tcase_add_test(c, refuses_what_one_rank_does_not_do);
	tcase_add_test(c, bias_update_through_the_table);
	suite_add_tcase(s, c);
	return s;
}

MB_CHECK_MAIN(step_dev_suite)
