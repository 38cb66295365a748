/*
 * test_train_tp.c - Check suite for tensor parallelism in the trainable model
 * (net_layout.c's slices, net_impl.h's collectives): tp ranks run as threads of one
 * process, their TP collectives a barrier-synchronised sum / maximum over the threads'
 * buffers, and each rank's loss and every gradient of its part (slices read at their
 * row0/col0) must equal the whole model's: within 1e-10 relative per tensor in FP64,
 * 1e-4 in FP32 (other summation orders), on an MLA + MoE + MTP config (tp2: heads,
 * dense, shared and expert widths, vocabulary) and on GQA configs whose kv heads the TP
 * size divides (k/v sliced) or does not (tp4 over 2 kv heads, tp2 over 1: k/v whole,
 * gradients summed). Also: the layout slices as documented, the clip-norm sum counts
 * replicated tensors once, and a part refuses a TP size not dividing the heads.
 *
 * Inputs are fresh random draws each run; a failure prints the seed, and
 * MB_TEST_SEED=<n> replays it.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "net.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

enum { TB = 2, TS = 12, MAXTP = 4 };

/* The TP group of the threads: each call publishes its buffer, every rank sums the
 * ranks' buffers in rank order (so all get the same bits), then writes its own. */
struct group {
	pthread_barrier_t bar;
	void *slot[MAXTP];
	int n;
};

struct rank_ctx {
	struct group *g;
	int rank;
};

static int reduce(void *ctx, void *x, size_t n, bool dbl, bool max)
{
	struct rank_ctx *c = ctx;
	struct group *g = c->g;
	size_t sz = dbl ? sizeof(double) : sizeof(float);
	char *tmp = malloc(n ? n * sz : 1);
	if (!tmp)
		return MB_ERR_NOMEM;
	g->slot[c->rank] = x;
	pthread_barrier_wait(&g->bar);
	for (size_t j = 0; j < n; j++) {
		double s = 0;
		for (int r = 0; r < g->n; r++) {
			double v = dbl ? ((double *)g->slot[r])[j] : ((float *)g->slot[r])[j];
			s = r == 0 ? v : max ? fmax(s, v) : s + v;
		}
		if (dbl)
			((double *)tmp)[j] = s;
		else
			((float *)tmp)[j] = (float)s;
	}
	pthread_barrier_wait(&g->bar);
	memcpy(x, tmp, n * sz);
	free(tmp);
	return MB_OK;
}

static int sum_f32(void *ctx, float *x, size_t n)
{
	return reduce(ctx, x, n, false, false);
}

static int sum_f64(void *ctx, double *x, size_t n)
{
	return reduce(ctx, x, n, true, false);
}

static int max_f64(void *ctx, double *x, size_t n)
{
	return reduce(ctx, x, n, true, true);
}

/* One rank's run: its part, model, loss and gradients (as doubles). */
struct rank_run {
	struct rank_ctx ctx;
	const struct model_config *cfg;
	const int32_t *tok;
	bool f64;
	struct net_layout L;
	double loss, *g;
	int err;
};

static void *rank_main(void *arg)
{
	struct rank_run *r = arg;
	struct net_part p;
	struct net_options o;
	struct net_stats st;
	struct net_tp_comm comm = { &r->ctx, sum_f32, sum_f64, max_f64, NULL, NULL, NULL, NULL };
	net_part_whole(&p);
	p.tp = r->ctx.g->n;
	p.tp_rank = r->ctx.rank;
	net_options_default(&o);
	r->err = net_layout_build_part(r->cfg, &p, &r->L, NULL, 0);
	if (r->err)
		return NULL;
	r->g = malloc(r->L.total * sizeof(double));
	if (r->f64) {
		struct net_f64 *m;
		if ((r->err = net_create_f64(&r->L, &o, TB, TS, 11, &m)))
			return NULL;
		net_tp_set_f64(m, &comm);
		r->err = net_forward_f64(m, r->tok, &st);
		r->err = r->err ? r->err : net_backward_f64(m);
		memcpy(r->g, net_grads_f64(m), r->L.total * sizeof(double));
		net_destroy_f64(m);
	} else {
		struct net_f32 *m;
		if ((r->err = net_create_f32(&r->L, &o, TB, TS, 11, &m)))
			return NULL;
		net_tp_set_f32(m, &comm);
		r->err = net_forward_f32(m, r->tok, &st);
		r->err = r->err ? r->err : net_backward_f32(m);
		for (size_t j = 0; j < r->L.total; j++)
			r->g[j] = net_grads_f32(m)[j];
		net_destroy_f32(m);
	}
	r->loss = st.loss;
	return NULL;
}

/* tensor_error is ||slice of whole - part|| / ||slice of whole|| of tensor i of P. */
static double tensor_error(const struct net_layout *P, int i, const double *gp,
			   const struct net_layout *W, const double *gw)
{
	const struct net_tensor *t = &P->t[i];
	const struct net_tensor *u = &W->t[net_find(W, t->name)];
	double num = 0, den = 0;
	for (int64_t r = 0; r < t->rows; r++)
		for (int64_t c = 0; c < t->cols; c++) {
			double a = gw[u->off + (size_t)((t->row0 + r) * u->cols + t->col0 + c)];
			double b = gp[t->off + (size_t)(r * t->cols + c)];
			num += (a - b) * (a - b), den += a * a;
		}
	return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* expect_tp runs cfg on one rank and on tp thread-ranks and compares. */
static void expect_tp(const struct model_config *cfg, int tp, bool f64, double tol)
{
	size_t ntok = (size_t)TB * (size_t)(TS + 1 + cfg->mtp_depth);
	int32_t *tok = malloc(ntok * sizeof(*tok));
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 0x7e);
	for (size_t j = 0; j < ntok; j++)
		tok[j] = (int32_t)(mb_rng_next(&rng) % (uint64_t)cfg->vocab);
	struct group g1 = { .n = 1 }, g = { .n = tp };
	pthread_barrier_init(&g1.bar, NULL, 1);
	pthread_barrier_init(&g.bar, NULL, (unsigned)tp);
	struct rank_run whole = { .ctx = { &g1, 0 }, .cfg = cfg, .tok = tok, .f64 = f64 };
	struct rank_run part[MAXTP];
	pthread_t th[MAXTP];
	rank_main(&whole);
	ck_assert_int_eq(whole.err, MB_OK);
	for (int r = 0; r < tp; r++) {
		part[r] = (struct rank_run){ .ctx = { &g, r }, .cfg = cfg, .tok = tok, .f64 = f64 };
		ck_assert_int_eq(pthread_create(&th[r], NULL, rank_main, &part[r]), 0);
	}
	for (int r = 0; r < tp; r++)
		pthread_join(th[r], NULL);
	for (int r = 0; r < tp; r++) {
		ck_assert_int_eq(part[r].err, MB_OK);
		ck_assert_msg(fabs(part[r].loss - whole.loss) <= tol * fabs(whole.loss),
			      "%s tp%d rank %d: loss %.17g vs %.17g (seed %llu)", cfg->name, tp, r,
			      part[r].loss, whole.loss, (unsigned long long)test_seed());
		for (int i = 0; i < part[r].L.n; i++) {
			double e = tensor_error(&part[r].L, i, part[r].g, &whole.L, whole.g);
			ck_assert_msg(e <= tol, "%s tp%d rank %d: %s gradient off by %.3g (seed %llu)",
				      cfg->name, tp, r, part[r].L.t[i].name, e,
				      (unsigned long long)test_seed());
		}
		free(part[r].g);
		net_layout_free(&part[r].L);
	}
	free(whole.g);
	net_layout_free(&whole.L);
	pthread_barrier_destroy(&g1.bar);
	pthread_barrier_destroy(&g.bar);
	free(tok);
}

/* tiny_moe: MLA with both LoRA ranks, dense-first, shared + routed experts, MTP. */
static struct model_config tiny_moe(void)
{
	struct model_config c = *model_preset_find("v3-tiny");
	snprintf(c.name, sizeof(c.name), "tp-moe");
	c.vocab = 32, c.dim = 16, c.layers = 3, c.dense_layers = 1, c.inter_dim = 24;
	c.heads = 2, c.q_lora_rank = 8, c.kv_lora_rank = 8, c.qk_nope_head_dim = 4;
	c.qk_rope_head_dim = 4, c.v_head_dim = 4;
	c.routed_experts = 8, c.shared_experts = 1, c.activated_experts = 2;
	c.moe_inter_dim = 8, c.n_groups = 4, c.topk_groups = 2, c.seq_len = TS;
	return c;
}

/* tiny_gqa: Llama's shape, kv heads given. */
static struct model_config tiny_gqa(int kv_heads)
{
	struct model_config c = *model_preset_find("llama3-tiny");
	snprintf(c.name, sizeof(c.name), "tp-gqa-kv%d", kv_heads);
	c.vocab = 32, c.dim = 16, c.layers = 2, c.dense_layers = 2, c.inter_dim = 24;
	c.heads = 4, c.kv_heads = kv_heads, c.head_dim = 4, c.seq_len = TS;
	return c;
}

START_TEST(mla_moe_mtp_tp2_equals_whole)
{
	struct model_config c = tiny_moe();
	expect_tp(&c, 2, true, 1e-10);
	expect_tp(&c, 2, false, 1e-4);
	c.q_lora_rank = 0;   /* q_proj straight from x, sliced by head */
	expect_tp(&c, 2, true, 1e-10);
}
END_TEST

START_TEST(gqa_tp_equals_whole)
{
	struct model_config c2 = tiny_gqa(2), c1 = tiny_gqa(1);
	expect_tp(&c2, 2, true, 1e-10);   /* kv heads sliced */
	expect_tp(&c2, 4, true, 1e-10);   /* k/v whole on each rank, gradients summed */
	expect_tp(&c1, 2, true, 1e-10);
	expect_tp(&c2, 4, false, 1e-4);
}
END_TEST

/* tensor_of returns layer 0's tensor of that kind. */
static const struct net_tensor *tensor_of(const struct net_layout *L, const char *kind)
{
	char name[NET_NAME_MAX];
	snprintf(name, sizeof(name), "model.layers.0.%s.weight", kind);
	int i = net_find(L, name);
	ck_assert_msg(i >= 0, "%s", name);
	return &L->t[i];
}

START_TEST(layout_slices_and_counts_replicas_once)
{
	struct model_config c = tiny_moe();
	struct net_part p;
	struct net_layout L[2], W, bad;
	net_part_whole(&p);
	ck_assert_int_eq(net_layout_build(&c, &W, NULL, 0), MB_OK);
	float *g[2];
	double ss = 0;
	for (int r = 0; r < 2; r++) {
		p.tp = 2, p.tp_rank = r;
		ck_assert_int_eq(net_layout_build_part(&c, &p, &L[r], NULL, 0), MB_OK);
		const struct net_tensor *qb = tensor_of(&L[r], "self_attn.q_b_proj");
		const struct net_tensor *o = tensor_of(&L[r], "self_attn.o_proj");
		const struct net_tensor *e = &L[r].t[net_find(&L[r], "model.embed_tokens.weight")];
		const struct net_tensor *qa = tensor_of(&L[r], "self_attn.q_a_proj");
		ck_assert(qb->rows * 2 == qb->full_rows && qb->row0 == r * qb->rows);
		ck_assert(o->cols * 2 == o->full_cols && o->col0 == r * o->cols && o->rows == c.dim);
		ck_assert(e->rows == c.vocab / 2 && e->row0 == r * c.vocab / 2);
		ck_assert(qa->rows == qa->full_rows && qa->tp_partial);
		g[r] = malloc(L[r].total * sizeof(float));
		for (size_t j = 0; j < L[r].total; j++)
			g[r][j] = 1.0f;
		ss += net_grad_sumsq_range(&L[r], g[r], 0, L[r].total);
	}
	/* ones everywhere: the sum over both ranks counts each whole-model element once */
	double want = 0;
	for (int i = 0; i < W.n; i++)
		want += W.t[i].trainable ? (double)(W.t[i].rows * W.t[i].cols) : 0;
	ck_assert_double_eq_tol(ss, want, 0.5);
	p.tp = 4, p.tp_rank = 0;
	char why[128] = "";
	ck_assert_int_eq(net_layout_build_part(&c, &p, &bad, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_msg(strstr(why, "heads"), "%s", why);
	for (int r = 0; r < 2; r++) {
		free(g[r]);
		net_layout_free(&L[r]);
	}
	net_layout_free(&W);
}
END_TEST

static Suite *tp_suite(void)
{
	Suite *s = suite_create("train_tp");
	TCase *t = tcase_create("tp");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, mla_moe_mtp_tp2_equals_whole);
	tcase_add_test(t, gqa_tp_equals_whole);
	tcase_add_test(t, layout_slices_and_counts_replicas_once);
	suite_add_tcase(s, t);
	return s;
}

MB_CHECK_MAIN(tp_suite)
