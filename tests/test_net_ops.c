/*
 * test_net_ops.c - the op table as the model's one way to its backend (net_ops.h): a
 * table that is not the CPU's (a copy of it with its own allocator, so the model takes
 * the paths a device table takes: weights drawn on the host and uploaded, experts one
 * at a time, tokens uploaded) gives the CPU model's losses and gradients bit for bit;
 * an entry's error reaches net_forward's caller; the CUDA table answers MB_ERR_NODEV
 * where no device is (every CI machine). Fresh random tokens (MB_TEST_SEED replays).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "net.h"
#include "net_ops.h"
#include "rng.h"
#include "status.h"

#include "check_main.h"
#include "test_seed.h"

static size_t shadow_bytes;   /* what the shadow table's allocator handed out */

static void *shadow_alloc(size_t bytes)
{
	shadow_bytes += bytes;
	return calloc(1, bytes ? bytes : 1);
}

static int failing_norm(const float *x, const float *gain, long rows, int dim, double eps,
			float *y)
{
	(void)x, (void)gain, (void)rows, (void)dim, (void)eps, (void)y;
	return MB_ERR_CUDA;
}

/* tokens_of fills the batch's tokens (S + 1 + D per sequence) from the run's seed. */
static int32_t *tokens_of(const struct net_layout *L, int B, int S)
{
	size_t n = (size_t)B * (S + 1 + L->cfg.mtp_depth);
	int32_t *t = malloc(n * sizeof(int32_t));
	struct mb_rng r;
	ck_assert_ptr_nonnull(t);
	mb_rng_seed(&r, test_seed(), 7);
	for (size_t j = 0; j < n; j++)
		t[j] = (int32_t)(mb_rng_next(&r) % (uint64_t)L->cfg.vocab);
	return t;
}

static const char *const presets[] = { "v3-tiny", "llama3-tiny" };

START_TEST(another_table_same_step)
{
	enum { B = 2, S = 24 };
	struct net_layout L;
	struct net_options o;
	struct net_f32 *a, *b;
	struct net_stats sa, sb;
	struct net_adamw opt;
	char why[256];
	struct model_config c = *model_preset_find(presets[_i]);
	c.vocab = 256;
	ck_assert_int_eq(net_layout_build(&c, &L, why, sizeof(why)), MB_OK);
	net_options_default(&o);
	net_adamw_default(&opt);
	struct net_ops_f32 sh = net_cpu_ops_f32;
	sh.mem_alloc = shadow_alloc;
	sh.one_thread = true;
	shadow_bytes = 0;
	ck_assert_int_eq(net_create_f32(&L, &o, B, S, 5, &a), MB_OK);
	ck_assert_int_eq(net_create_f32_ops(&L, &o, B, S, 5, &sh, &b), MB_OK);
	/* parameters, gradients and both moments went through the table's allocator */
	ck_assert_uint_ge(shadow_bytes, 4 * L.total * sizeof(float));
	int32_t *tok = tokens_of(&L, B, S);
	for (long t = 1; t <= 2; t++) {
		ck_assert_int_eq(net_forward_f32(a, tok, &sa), MB_OK);
		ck_assert_int_eq(net_forward_f32(b, tok, &sb), MB_OK);
		ck_assert_msg(sa.loss == sb.loss, "step %ld: %.17g != %.17g", t, sa.loss, sb.loss);
		ck_assert_uint_eq(sa.route_hash, sb.route_hash);
		ck_assert_int_eq(net_backward_f32(a), MB_OK);
		ck_assert_int_eq(net_backward_f32(b), MB_OK);
		ck_assert_int_eq(memcmp(net_grads_f32(a), net_grads_f32(b), L.total * sizeof(float)), 0);
		net_adam_step_f32(a, &opt, t);
		net_adam_step_f32(b, &opt, t);
	}
	float *w = malloc(L.total * sizeof(float));
	ck_assert_int_eq(net_download_f32(b, false, w), MB_OK);
	ck_assert_int_eq(memcmp(net_params_f32(a), w, L.total * sizeof(float)), 0);
	free(w);
	free(tok);
	net_destroy_f32(a);
	net_destroy_f32(b);
	net_layout_free(&L);
}
END_TEST

START_TEST(an_entry_error_reaches_the_caller)
{
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m;
	struct net_stats st;
	char why[256];
	struct model_config c = *model_preset_find("v3-tiny");
	c.vocab = 256;
	ck_assert_int_eq(net_layout_build(&c, &L, why, sizeof(why)), MB_OK);
	net_options_default(&o);
	struct net_ops_f32 bad = net_cpu_ops_f32;
	bad.rmsnorm_fwd = failing_norm;
	ck_assert_int_eq(net_create_f32_ops(&L, &o, 1, 8, 5, &bad, &m), MB_OK);
	int32_t *tok = tokens_of(&L, 1, 8);
	ck_assert_int_eq(net_forward_f32(m, tok, &st), MB_ERR_CUDA);
	free(tok);
	net_destroy_f32(m);
	net_layout_free(&L);
}
END_TEST

START_TEST(no_device_no_cuda_table)
{
	const struct net_ops_f32 *t = NULL;
	struct net_cuda_sizes z = { 64, 256, 64, 8, 256, 1 << 16, 64, 1 << 16, 0, false };
	int err = net_cuda_ops_open(&z, &t);
	if (err == MB_OK) {   /* a CUDA build on a machine with a device */
		net_cuda_ops_close();
		return;
	}
	ck_assert_int_eq(err, MB_ERR_NODEV);
	ck_assert_ptr_null(t);
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m = (struct net_f32 *)&z;
	char why[256];
	ck_assert_int_eq(net_layout_build(model_preset_find("v3-tiny"), &L, why, sizeof(why)), MB_OK);
	net_options_default(&o);
	ck_assert_int_eq(net_create_f32_cuda(&L, &o, 1, 8, 5, &m), MB_ERR_NODEV);
	ck_assert_ptr_null(m);
	net_layout_free(&L);
}
END_TEST

static Suite *net_ops_suite(void)
{
	Suite *s = suite_create("net_ops");
	TCase *c = tcase_create("table");
	tcase_set_timeout(c, 60);
	tcase_add_loop_test(c, another_table_same_step, 0, 2);
	tcase_add_test(c, an_entry_error_reaches_the_caller);
	tcase_add_test(c, no_device_no_cuda_table);
	suite_add_tcase(s, c);
	return s;
}

MB_CHECK_MAIN(net_ops_suite)
