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
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accounting.h"
#include "bf16.h"
#include "check_main.h"
#include "fp8.h"
#include "net.h"
#include "net_ops.h"
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

/* fd_direction draws a unit direction u over tensor t and writes the fourth-order
 * central difference of the loss along it, (8 (L(h) - L(-h)) - (L(2h) - L(-2h))) / 12h,
 * and the backward's g0 . u. Returns false when +-h or +-2h changes the selection
 * (hash differs from the unperturbed one), where the loss is not differentiable. */
static bool fd_direction(struct net_f64 *m, const struct net_tensor *t, const int32_t *tok,
			 const double *g0, uint64_t hash, struct mb_rng *rng, double *fd, double *an)
{
	size_t n = (size_t)(t->rows * t->cols);
	double *w = net_params_f64(m), *u = malloc(n * sizeof(double)), norm = 0, h = 1e-3;
	double l[4], step[4] = { h, -h, 2 * h, -2 * h };
	struct net_stats sp;
	bool same = true;
	for (size_t j = 0; j < n; j++)
		u[j] = mb_rng_uniform(rng, -1, 1), norm += u[j] * u[j];
	*an = 0;
	for (size_t j = 0; j < n; j++)
		u[j] /= sqrt(norm), *an += u[j] * g0[t->off + j];
	for (int k = 0; k < 4; k++) {
		for (size_t j = 0; j < n; j++)
			w[t->off + j] += step[k] * u[j];
		ck_assert_int_eq(net_forward_f64(m, tok, &sp), MB_OK);
		for (size_t j = 0; j < n; j++)
			w[t->off + j] -= step[k] * u[j];
		l[k] = sp.loss;
		same = same && sp.route_hash == hash;
	}
	*fd = (8 * (l[0] - l[1]) - (l[2] - l[3])) / (12 * h);
	free(u);
	return same;
}

/* fd_check compares every trainable tensor's gradient (or only those whose name
 * contains only) with finite differences along a random direction (up to four tries
 * per tensor for a direction that keeps the selection); returns the worst relative
 * error, or -1 when the selection flips on every try (a near-tie at this draw). */
static double fd_check(struct net_f64 *m, const struct net_layout *L, const int32_t *tok,
		       const char *only)
{
	struct net_stats st;
	double worst = 0, fd = 0, an = 0;
	int idle = 0, checked = 0;
	struct mb_rng rng;
	ck_assert_int_eq(net_forward_f64(m, tok, &st), MB_OK);
	ck_assert_int_eq(net_backward_f64(m), MB_OK);
	double *g0 = malloc(L->total * sizeof(double));
	memcpy(g0, net_grads_f64(m), L->total * sizeof(double));
	mb_rng_seed(&rng, test_seed(), 99);
	for (int i = 0; i < L->n && worst >= 0; i++) {
		const struct net_tensor *t = &L->t[i];
		if (!t->trainable || (only && !strstr(t->name, only)))
			continue;
		bool ok = false;
		for (int tries = 0; tries < 4 && !ok; tries++)
			ok = fd_direction(m, t, tok, g0, st.route_hash, &rng, &fd, &an);
		if (!ok) {
			worst = -1;
			break;
		}
		/* NOTE: an expert no token chose has a zero gradient, and so must the
		 * finite difference be; every other tensor must have a gradient */
		if (fabs(an) <= 1e-12 && fabs(fd) <= 1e-9 && strstr(t->name, ".experts.")) {
			idle++;
			continue;
		}
		/* NOTE: relative to the larger of the two, floored at 1e-4: a directional
		 * gradient below it (a rarely chosen expert) is held to 1e-10 absolute, the
		 * loss's own rounding (~1e-16 x 4 / h) being ~1e-12 of it */
		double rel = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), 1e-4);
		ck_assert_msg(fabs(an) > 1e-9, "%s: gradient %g along a random direction",
			      t->name, an);
		ck_assert_msg(rel <= 1e-6, "%s: fd %.12g vs backward %.12g, rel %.3g (seed %llu)",
			      t->name, fd, an, rel, (unsigned long long)test_seed());
		worst = fmax(worst, rel);
		checked++;
	}
	free(g0);
	ck_assert_msg(worst < 0 || idle * 4 < checked, "%d idle experts, %d tensors checked",
		      idle, checked);
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


/* check_tensor asserts that tensor name exists with shape [rows, cols]. */
static void check_tensor(const struct net_layout *L, const char *name, int64_t rows,
			 int64_t cols)
{
	int i = net_find(L, name);
	ck_assert_msg(i >= 0, "%s missing", name);
	ck_assert_msg(L->t[i].rows == rows && L->t[i].cols == cols, "%s: [%lld, %lld]", name,
		      (long long)L->t[i].rows, (long long)L->t[i].cols);
}

START_TEST(names_and_shapes_are_the_checkpoints)
{
	struct net_layout L;
	struct model_params p;
	const struct model_config *c = model_preset_find("v3-tiny");
	ck_assert_int_eq(net_layout_build(c, &L, NULL, 0), MB_OK);
	check_tensor(&L, "model.embed_tokens.weight", 4096, 256);
	check_tensor(&L, "model.layers.0.mlp.gate_proj.weight", 768, 256);
	check_tensor(&L, "model.layers.3.self_attn.q_a_proj.weight", 128, 256);
	check_tensor(&L, "model.layers.3.self_attn.q_b_proj.weight", 4 * 48, 128);
	check_tensor(&L, "model.layers.3.self_attn.kv_a_proj_with_mqa.weight", 64 + 16, 256);
	check_tensor(&L, "model.layers.3.self_attn.kv_b_proj.weight", 4 * 64, 64);
	check_tensor(&L, "model.layers.3.self_attn.o_proj.weight", 256, 4 * 32);
	check_tensor(&L, "model.layers.2.mlp.experts.7.down_proj.weight", 256, 128);
	check_tensor(&L, "model.layers.1.mlp.gate.weight", 8, 256);
	check_tensor(&L, "model.layers.1.mlp.gate.e_score_correction_bias", 8, 1);
	check_tensor(&L, "model.layers.1.mlp.shared_experts.gate_proj.weight", 128, 256);
	check_tensor(&L, "model.layers.4.eh_proj.weight", 256, 512);
	check_tensor(&L, "model.layers.4.enorm.weight", 256, 1);
	check_tensor(&L, "model.layers.4.shared_head.norm.weight", 256, 1);
	check_tensor(&L, "model.layers.4.mlp.experts.0.up_proj.weight", 128, 256);
	check_tensor(&L, "lm_head.weight", 4096, 256);
	ck_assert(!L.t[net_find(&L, "model.layers.1.mlp.gate.e_score_correction_bias")].trainable);
	ck_assert_int_eq(net_find(&L, "model.layers.0.mlp.gate.weight"), -1);
	/* the same count as the accounting `moebench model` prints */
	ck_assert_int_eq(model_params_count(c, c->mtp_depth, &p), MB_OK);
	ck_assert_uint_eq(L.total, p.sum_total + p.sum_mtp_total);
	/* packed: the non-expert tensors in order, then the routed experts' matrices */
	size_t at = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < L.n; i++)
			if (L.t[i].expert == (pass == 1)) {
				ck_assert_uint_eq(L.t[i].off, at);
				ck_assert_int_eq(L.t[i].gid, i);
				at += (size_t)(L.t[i].rows * L.t[i].cols);
			}
	ck_assert_uint_eq(at, L.total);
	ck_assert(L.whole && L.dense_total < L.total);
	net_layout_free(&L);
	ck_assert_int_eq(net_layout_build(model_preset_find("llama3-tiny"), &L, NULL, 0), MB_OK);
	check_tensor(&L, "model.layers.3.self_attn.k_proj.weight", 64, 256);
	check_tensor(&L, "model.layers.3.self_attn.q_proj.weight", 256, 256);
	check_tensor(&L, "model.layers.3.mlp.down_proj.weight", 256, 896);
	net_layout_free(&L);
	char why[128] = "";
	ck_assert_int_eq(net_layout_build(model_preset_find("gpt-22b"), &L, why, sizeof(why)),
			 MB_ERR_ARG);
	ck_assert(strlen(why) > 0);
}
END_TEST

/* rel_norm returns |a - b| / |b| over n elements (float a, double b). */
static double rel_norm(const float *a, const double *b, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++)
		num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
	return sqrt(num / (den > 0 ? den : 1e-300));
}

START_TEST(float_model_matches_double)
{
	struct model_config c = tiny_moe();
	struct net_layout L;
	struct net_options o;
	struct net_f32 *mf;
	struct net_f64 *md;
	struct net_stats sf, sd;
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	net_options_default(&o);
	o.init_std = 0.2;
	ck_assert_int_eq(net_create_f32(&L, &o, TB, TS, test_seed(), &mf), MB_OK);
	ck_assert_int_eq(net_create_f64(&L, &o, TB, TS, test_seed(), &md), MB_OK);
	for (size_t i = 0; i < L.total; i++)
		net_params_f64(md)[i] = net_params_f32(mf)[i];
	int32_t *tok = tokens(&c, TB, TS, 3);
	ck_assert_int_eq(net_forward_f32(mf, tok, &sf), MB_OK);
	ck_assert_int_eq(net_forward_f64(md, tok, &sd), MB_OK);
	ck_assert_msg(fabs(sf.loss - sd.loss) <= 1e-5 * sd.loss, "%.9g vs %.9g", sf.loss, sd.loss);
	ck_assert_int_eq(net_backward_f32(mf), MB_OK);
	ck_assert_int_eq(net_backward_f64(md), MB_OK);
	for (int i = 0; i < L.n; i++) {
		size_t n = (size_t)(L.t[i].rows * L.t[i].cols), off = L.t[i].off;
		double e = rel_norm(net_grads_f32(mf) + off, net_grads_f64(md) + off, n);
		ck_assert_msg(e <= 1e-3 || !L.t[i].trainable, "%s: rel %g", L.t[i].name, e);
	}
	free(tok);
	net_destroy_f32(mf);
	net_destroy_f64(md);
	net_layout_free(&L);
}
END_TEST

/* run_once: loss and gradients of one forward and backward of c with the routed
 * experts side by side (serial false) or one after another. */
static void run_once(struct model_config *c, bool serial, struct net_stats *st, float *g)
{
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m;
	ck_assert_int_eq(net_layout_build(c, &L, NULL, 0), MB_OK);
	net_options_default(&o);
	o.init_std = 0.2;
	o.experts_serial = serial;
	ck_assert_int_eq(net_create_f32(&L, &o, TB, TS, test_seed(), &m), MB_OK);
	int32_t *tok = tokens(c, TB, TS, 5);
	ck_assert_int_eq(net_forward_f32(m, tok, st), MB_OK);
	ck_assert_int_eq(net_backward_f32(m), MB_OK);
	memcpy(g, net_grads_f32(m), L.total * sizeof(float));
	free(tok);
	net_destroy_f32(m);
	net_layout_free(&L);
}

/* The experts run side by side on two BLAS threads (forced here) give the loss, the
 * selection and every gradient of the serial order: each writes only its own rows and
 * gradients (a race or a shared buffer would show). */
START_TEST(parallel_experts_equal_serial)
{
	struct model_config c = tiny_moe();
	c.dim = 64, c.moe_inter_dim = 48, c.routed_experts = 16, c.n_groups = 4;
	c.activated_experts = 4;
	struct net_layout L;
	struct net_stats sp, ss;
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	float *gp = malloc(L.total * sizeof(float)), *gs = malloc(L.total * sizeof(float));
	int threads = openblas_get_num_threads();
	openblas_set_num_threads(2);
	run_once(&c, false, &sp, gp);
	run_once(&c, true, &ss, gs);
	openblas_set_num_threads(threads);
	ck_assert(sp.route_hash == ss.route_hash);
	ck_assert_msg(fabs(sp.loss - ss.loss) <= 1e-6 * ss.loss, "%.9g vs %.9g", sp.loss, ss.loss);
	double num = 0, den = 0;
	for (size_t i = 0; i < L.total; i++)
		num += ((double)gp[i] - gs[i]) * ((double)gp[i] - gs[i]), den += (double)gs[i] * gs[i];
	ck_assert_msg(den > 0 && sqrt(num / den) <= 1e-6, "gradients differ: rel %g", sqrt(num / den));
	free(gp);
	free(gs);
	net_layout_free(&L);
}
END_TEST

/* init_loss returns the main loss at initialisation of preset name (vocab 256). */
static double init_loss(const char *name, enum net_precision p)
{
	struct model_config c = *model_preset_find(name);
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m;
	struct net_stats st;
	c.vocab = 256;
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	net_options_default(&o);
	o.precision = p;
	ck_assert_int_eq(net_create_f32(&L, &o, 2, 32, test_seed(), &m), MB_OK);
	int32_t *tok = tokens(&c, 2, 32, 4);
	ck_assert_int_eq(net_forward_f32(m, tok, &st), MB_OK);
	ck_assert(isfinite(st.mtp_loss) && st.balance_loss >= 0);
	free(tok);
	net_destroy_f32(m);
	net_layout_free(&L);
	return st.main_loss;
}

START_TEST(loss_at_init_is_log_vocab)
{
	const char *names[2] = { "v3-tiny", "llama3-tiny" };
	for (int i = 0; i < 2; i++)
		for (int p = NET_FP32; p <= NET_FP8; p++) {
			double l = init_loss(names[i], (enum net_precision)p);
			ck_assert_msg(fabs(l - log(256.0)) < 0.1, "%s %s: %g", names[i],
				      net_precision_name((enum net_precision)p), l);
		}
}
END_TEST

START_TEST(adamw_equals_hand_computation)
{
	struct model_config c = tiny_gqa();
	struct net_layout L;
	struct net_adamw a;
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	float *w = malloc(4 * L.total * sizeof(float)), *g = w + L.total, *m = g + L.total;
	float *v = m + L.total;
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 5);
	mb_rng_fill_uniform_f32(&rng, w, 2 * L.total, -0.01f, 0.01f);
	memset(m, 0, 2 * L.total * sizeof(float));
	net_adamw_default(&a);
	a.clip = 0;
	int mat = net_find(&L, "model.layers.1.mlp.up_proj.weight");
	int vec = net_find(&L, "model.layers.1.input_layernorm.weight");
	size_t jm = L.t[mat].off + 7, jv = L.t[vec].off + 3;
	double wm = w[jm], wv = w[jv], gm = g[jm], gv = g[jv];
	net_adamw_step(&L, &a, 1, w, g, m, v);
	/* step 1: m = 0.1 g, v = 0.05 g^2, bias-corrected to g and g^2: w -= lr (sign(g) + wd w) */
	double em = wm - a.lr * (gm / (fabs(gm) + a.eps) + a.weight_decay * wm);
	double ev = wv - a.lr * (gv / (fabs(gv) + a.eps));
	/* NOTE: FP32 tolerance on the operands (|w| + lr), the difference may cancel */
	ck_assert_msg(fabs(w[jm] - em) <= 1e-6 * (fabs(wm) + a.lr), "%.9g vs %.9g", w[jm], em);
	ck_assert_msg(fabs(w[jv] - ev) <= 1e-6 * (fabs(wv) + a.lr), "%.9g vs %.9g", w[jv], ev);
	/* step 2 with a new gradient: the moments by hand */
	double m1 = 0.1 * gm, v1 = 0.05 * gm * gm, g2 = -0.003, w1 = w[jm];
	g[jm] = (float)g2;
	net_adamw_step(&L, &a, 2, w, g, m, v);
	double m2 = 0.9 * m1 + 0.1 * g2, v2 = 0.95 * v1 + 0.05 * g2 * g2;
	double mh = m2 / (1 - 0.81), vh = v2 / (1 - 0.95 * 0.95);
	double e2 = w1 - a.lr * (mh / (sqrt(vh) + a.eps) + a.weight_decay * w1);
	ck_assert_msg(fabs(w[jm] - e2) <= 1e-6 * (fabs(w1) + a.lr), "%.9g vs %.9g", w[jm], e2);
	/* and not the plain Adam step: the decay is there */
	ck_assert(fabs(w[jm] - (e2 + a.lr * a.weight_decay * w1)) > 1e-7 * fabs(w1));
	free(w);
	net_layout_free(&L);
}
END_TEST

START_TEST(clipping_scales_to_the_global_norm)
{
	struct model_config c = tiny_moe();
	struct net_layout L;
	struct net_adamw a;
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	float *w = calloc(4 * L.total, sizeof(float)), *g = w + L.total;
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 6);
	mb_rng_fill_uniform_f32(&rng, g, L.total, -1, 1);
	double before = net_grad_norm(&L, g);
	ck_assert(before > 1.0);
	net_adamw_default(&a);
	double got = net_adamw_step(&L, &a, 1, w, g, g + L.total, g + 2 * L.total);
	ck_assert_double_eq_tol(got, before, 1e-9 * before);
	ck_assert_double_eq_tol(net_grad_norm(&L, g), 1.0, 1e-5);
	/* below the threshold: untouched */
	float keep = g[5];
	a.clip = 10.0;
	net_adamw_step(&L, &a, 2, w, g, g + L.total, g + 2 * L.total);
	ck_assert(g[5] == keep);
	free(w);
	net_layout_free(&L);
}
END_TEST

START_TEST(learning_rate_warms_up_then_decays)
{
	ck_assert_double_eq_tol(net_lr_at(0, 10, 100, 1e-3, 1e-4), 1e-4, 1e-15);
	ck_assert_double_eq_tol(net_lr_at(9, 10, 100, 1e-3, 1e-4), 1e-3, 1e-15);
	ck_assert_double_eq_tol(net_lr_at(10, 10, 100, 1e-3, 1e-4), 1e-3, 1e-15);
	ck_assert_double_eq_tol(net_lr_at(55, 10, 100, 1e-3, 1e-4), 5.5e-4, 1e-12);
	ck_assert_double_eq_tol(net_lr_at(100, 10, 100, 1e-3, 1e-4), 1e-4, 1e-15);
	ck_assert(net_lr_at(30, 10, 100, 1e-3, 1e-4) > net_lr_at(31, 10, 100, 1e-3, 1e-4));
}
END_TEST

START_TEST(bias_update_lowers_imbalance)
{
	struct model_config c = tiny_moe();
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m;
	struct net_stats st;
	c.layers = 2, c.mtp_depth = 0;
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	net_options_default(&o);
	o.init_std = 0.1;
	ck_assert_int_eq(net_create_f32(&L, &o, 4, 16, test_seed(), &m), MB_OK);
	/* skew: every token shares a direction (a common offset of the embedding) and
	 * experts 0 and 1's gate rows point along it */
	float *w = net_params_f32(m);
	const struct net_tensor *et = &L.t[L.embed];
	for (size_t j = 0; j < (size_t)(et->rows * et->cols); j++)
		w[et->off + j] += 0.1f;
	const struct net_tensor *gt = &L.t[L.blk[1].router];
	for (int e = 0; e < 2; e++)
		for (int j = 0; j < c.dim; j++)
			w[gt->off + (size_t)e * c.dim + j] = 2.0f;
	int32_t *tok = tokens(&c, 4, 16, 7);
	const long *load[2] = { NULL, net_expert_load_f32(m, 1) };
	ck_assert_ptr_nonnull(load[1]);
	ck_assert_int_eq(net_forward_f32(m, tok, &st), MB_OK);
	double first = st.load_max_mean;
	ck_assert_msg(first > 2.0, "stream not skewed: %g", first);
	/* NOTE: the sign rule makes the biases oscillate around the balance: the mean
	 * imbalance over the last 100 updates is compared */
	double late = 0;
	for (int it = 0; it < 400; it++) {
		net_bias_update(&L, w, load, 0.01);
		ck_assert_int_eq(net_forward_f32(m, tok, &st), MB_OK);
		late += it >= 300 ? st.load_max_mean / 100 : 0;
	}
	ck_assert_msg(late < 0.6 * first, "%g -> %g", first, late);
	free(tok);
	net_destroy_f32(m);
	net_layout_free(&L);
}
END_TEST

/* train3 runs three AdamW steps of a fresh model from seed and returns the losses. */
static void train3(uint64_t seed, double loss[3])
{
	struct model_config c = tiny_moe();
	struct net_layout L;
	struct net_options o;
	struct net_adamw a;
	struct net_f32 *m;
	struct net_stats st;
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	net_options_default(&o);
	net_adamw_default(&a);
	ck_assert_int_eq(net_create_f32(&L, &o, TB, TS, seed, &m), MB_OK);
	int32_t *tok = tokens(&c, TB, TS, 8);
	for (int s = 0; s < 3; s++) {
		ck_assert_int_eq(net_forward_f32(m, tok, &st), MB_OK);
		ck_assert_int_eq(net_backward_f32(m), MB_OK);
		net_adamw_step(&L, &a, s + 1, net_params_f32(m), net_grads_f32(m),
			       net_moment1_f32(m), net_moment2_f32(m));
		loss[s] = st.loss;
	}
	free(tok);
	net_destroy_f32(m);
	net_layout_free(&L);
}

START_TEST(same_seed_same_losses)
{
	double a[3], b[3], c[3];
	train3(test_seed(), a);
	train3(test_seed(), b);
	train3(test_seed() + 2, c);
	ck_assert(memcmp(a, b, sizeof(a)) == 0);
	ck_assert(memcmp(a, c, sizeof(a)) != 0);
	ck_assert_msg(a[2] < a[0], "no descent: %g -> %g", a[0], a[2]);
}
END_TEST

START_TEST(save_then_load_gives_the_same_model)
{
	struct model_config c = tiny_moe();
	struct net_layout L, L2;
	struct net_options o;
	struct net_f32 *a, *b;
	struct net_stats sa, sb;
	char path[64], why[512];
	snprintf(path, sizeof(path), "/tmp/mb_ckpt_%llu.safetensors",
		 (unsigned long long)test_seed());
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	net_options_default(&o);
	o.init_std = 0.1;
	ck_assert_int_eq(net_create_f32(&L, &o, TB, TS, test_seed(), &a), MB_OK);
	ck_assert_int_eq(net_create_f32(&L, &o, TB, TS, test_seed() + 1, &b), MB_OK);
	ck_assert_int_eq(net_save(&L, net_params_f32(a), path, why, sizeof(why)), MB_OK);
	ck_assert(memcmp(net_params_f32(a), net_params_f32(b), L.total * sizeof(float)) != 0);
	ck_assert_msg(net_load(&L, net_params_f32(b), path, why, sizeof(why)) == MB_OK, "%s", why);
	ck_assert(memcmp(net_params_f32(a), net_params_f32(b), L.total * sizeof(float)) == 0);
	int32_t *tok = tokens(&c, TB, TS, 9);
	ck_assert_int_eq(net_forward_f32(a, tok, &sa), MB_OK);
	ck_assert_int_eq(net_forward_f32(b, tok, &sb), MB_OK);
	ck_assert(sa.loss == sb.loss);
	/* another configuration: refused, the tensor named */
	c.moe_inter_dim = 12;
	ck_assert_int_eq(net_layout_build(&c, &L2, NULL, 0), MB_OK);
	ck_assert_int_ne(net_load(&L2, net_params_f32(b), path, why, sizeof(why)), MB_OK);
	ck_assert_msg(strstr(why, "shared_experts.gate_proj.weight"), "%s", why);
	net_layout_free(&L2);
	c = tiny_moe();
	c.mtp_depth = 0;
	ck_assert_int_eq(net_layout_build(&c, &L2, NULL, 0), MB_OK);
	ck_assert_int_ne(net_load(&L2, net_params_f32(b), path, why, sizeof(why)), MB_OK);
	ck_assert_msg(strstr(why, "model.layers.3."), "%s", why);
	net_layout_free(&L2);
	remove(path);
	free(tok);
	net_destroy_f32(a);
	net_destroy_f32(b);
	net_layout_free(&L);
}
END_TEST

/* qdq_ref returns dequant(quant(x)) of x [r, c] (FP8 E4M3 at scaling s, or BF16). */
static float *qdq_ref(const float *x, int r, int c, enum net_precision p, enum fp8_scaling s)
{
	float *y = malloc((size_t)r * c * sizeof(float));
	struct fp8_matrix m;
	if (p == NET_BF16) {
		for (size_t i = 0; i < (size_t)r * c; i++)
			y[i] = bf16_round(x[i]);
		return y;
	}
	ck_assert_int_eq(fp8_matrix_alloc(&m, r, c, FP8_E4M3, s), MB_OK);
	ck_assert_int_eq(fp8_quantize(x, &m, false), MB_OK);
	fp8_dequantize(&m, y);
	fp8_matrix_free(&m);
	return y;
}

/* max_rel returns max |a - ref| / max |ref| over n. */
static double max_rel(const float *a, const double *ref, size_t n)
{
	double e = 0, r = 0;
	for (size_t i = 0; i < n; i++)
		e = fmax(e, fabs(a[i] - ref[i])), r = fmax(r, fabs(ref[i]));
	return e / r;
}

START_TEST(low_precision_linear_is_the_recipe)
{
	enum { T = 7, IN = 200, OUT = 130 };   /* not multiples of the 128 tiles */
	struct mb_rng rng;
	float x[T * IN], w[OUT * IN], y[T * OUT], y32[T * OUT];
	double ref[T * OUT];
	mb_rng_seed(&rng, test_seed(), 10);
	mb_rng_fill_uniform_f32(&rng, x, T * IN, -2, 2);
	mb_rng_fill_uniform_f32(&rng, w, OUT * IN, -0.1f, 0.1f);
	net_cpu_ops_f32.linear_fwd(NET_FP32, true, T, IN, OUT, x, w, y32);
	for (int p = NET_BF16; p <= NET_FP8; p++) {
		float *xq = qdq_ref(x, T, IN, (enum net_precision)p, FP8_PER_1X128);
		float *wq = qdq_ref(w, OUT, IN, (enum net_precision)p, FP8_PER_128X128);
		for (int i = 0; i < T; i++)
			for (int o = 0; o < OUT; o++) {
				double sum = 0;
				for (int k = 0; k < IN; k++)
					sum += (double)xq[i * IN + k] * wq[o * IN + k];
				ref[i * OUT + o] = sum;
			}
		net_cpu_ops_f32.linear_fwd((enum net_precision)p, true, T, IN, OUT, x, w, y);
		ck_assert_msg(max_rel(y, ref, T * OUT) < 1e-5, "%d: %g", p, max_rel(y, ref, T * OUT));
		/* the rounding is really applied: far from the FP32 product */
		ck_assert(max_rel(y32, ref, T * OUT) > 1e-4);
		/* a high-precision layer (gate, head) ignores the run's precision */
		net_cpu_ops_f32.linear_fwd((enum net_precision)p, false, T, IN, OUT, x, w, y);
		ck_assert(memcmp(y, y32, sizeof(y)) == 0);
		free(xq);
		free(wq);
	}
}
END_TEST

/* A pipeline stage's and an expert shard's layouts hold their tensors alone, under the
 * whole model's names, initialised to the whole model's values. */
START_TEST(parts_hold_their_tensors_with_the_whole_values)
{
	const struct model_config *c = model_preset_find("v3-tiny");
	struct net_layout W, P;
	ck_assert_int_eq(net_layout_build(c, &W, NULL, 0), MB_OK);
	float *w = malloc(W.total * sizeof(float)), *p = NULL;
	net_init_f32(&W, w, 0.02, 77);
	struct net_part part;
	net_part_whole(&part);
	part.ep = 2;
	part.ep_rank = 1;
	part.n_ranges = 1;
	part.lo[0] = 1;
	part.hi[0] = (int)c->layers;
	part.embed = false;
	ck_assert_int_eq(net_layout_build_part(c, &part, &P, NULL, 0), MB_OK);
	ck_assert(!P.whole && P.embed == -1 && P.head >= 0 && !P.blk[0].held && P.blk[1].held);
	ck_assert_int_eq(P.expert_lo, (int)c->routed_experts / 2);
	p = malloc(P.total * sizeof(float));
	net_init_f32(&P, p, 0.02, 77);
	size_t n_exp = 0;
	for (int i = 0; i < P.n; i++) {
		const struct net_tensor *t = &P.t[i];
		int j = net_find(&W, t->name);
		ck_assert_int_ge(j, 0);
		ck_assert_int_eq(t->gid, j);
		ck_assert(t->rows == W.t[j].rows && t->cols == W.t[j].cols && t->expert == W.t[j].expert);
		ck_assert(memcmp(p + t->off, w + W.t[j].off, (size_t)(t->rows * t->cols) * 4) == 0);
		n_exp += t->expert ? (size_t)(t->rows * t->cols) : 0;
		ck_assert(strstr(t->name, "layers.0.") == NULL);
	}
	ck_assert_uint_eq(n_exp, P.total - P.dense_total);
	/* a part loads its tensors from the whole model's file, and places back into it */
	char why[256] = "", path[] = "/tmp/mb_part_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(path);
	ck_assert_int_eq(net_save(&W, w, path, why, sizeof(why)), MB_OK);
	memset(p, 0, P.total * sizeof(float));
	ck_assert_int_eq(net_load(&P, p, path, why, sizeof(why)), MB_OK);
	unlink(path);
	float *back = calloc(W.total, sizeof(float));
	ck_assert_int_eq(net_place(&W, back, &P, p), MB_OK);
	for (int i = 0; i < P.n; i++) {
		const struct net_tensor *t = &W.t[net_find(&W, P.t[i].name)];
		ck_assert(memcmp(back + t->off, w + t->off, (size_t)(t->rows * t->cols) * 4) == 0);
	}
	free(back);
	ck_assert_int_lt(net_find(&P, "model.layers.2.mlp.experts.0.up_proj.weight"), 0);
	ck_assert_int_ge(net_find(&P, "model.layers.2.mlp.experts.7.up_proj.weight"), 0);
	net_layout_free(&P);
	part.ep = 3;
	ck_assert_int_eq(net_layout_build_part(c, &part, &P, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "divide"));
	free(w);
	free(p);
	net_layout_free(&W);
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
	tcase_add_test(fd, float_model_matches_double);
	tcase_add_test(fd, parallel_experts_equal_serial);
	suite_add_tcase(s, fd);
	TCase *st = tcase_create("structure");
	tcase_set_timeout(st, 120);
	tcase_add_test(st, names_and_shapes_are_the_checkpoints);
	tcase_add_test(st, parts_hold_their_tensors_with_the_whole_values);
	tcase_add_test(st, loss_at_init_is_log_vocab);
	tcase_add_test(st, save_then_load_gives_the_same_model);
	tcase_add_test(st, low_precision_linear_is_the_recipe);
	suite_add_tcase(s, st);
	TCase *opt = tcase_create("training");
	tcase_set_timeout(opt, 120);
	tcase_add_test(opt, adamw_equals_hand_computation);
	tcase_add_test(opt, clipping_scales_to_the_global_norm);
	tcase_add_test(opt, learning_rate_warms_up_then_decays);
	tcase_add_test(opt, bias_update_lowers_imbalance);
	tcase_add_test(opt, same_seed_same_losses);
	suite_add_tcase(s, opt);
	return s;
}

MB_CHECK_MAIN(train_model_suite)
