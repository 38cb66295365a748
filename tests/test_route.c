/*
 * test_route.c - Check suite for kernels/moe/route.c: routing against a brute-force
 * reference written here (sort everything, keep the best) on random configurations,
 * hand-worked ties, group and node limits, weights, bias, the bias update on a skewed
 * stream, the Zipf law of the token streams, statistics and configuration errors.
 *
 * Inputs are fresh random draws each run; a failure prints the seed, and
 * MB_TEST_SEED=<n> replays it.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "rng.h"
#include "route.h"
#include "status.h"
#include "test_seed.h"

/* ---- the brute-force reference ---- */

struct scored {
	float v;
	int i;
};

/* by_rank orders best first: higher score, then lower index. */
static int by_rank(const void *pa, const void *pb)
{
	const struct scored *a = pa, *b = pb;
	if (a->v != b->v)
		return a->v > b->v ? -1 : 1;
	return a->i - b->i;
}

/* unit_score sorts the kept b of experts [lo, lo+size) and sums the best n, best first;
 * -INFINITY when none is kept. */
static float unit_score(const float *b, const int *keep, int lo, int size, int n)
{
	struct scored v[64];
	int m = 0;
	float sum = -INFINITY;

	for (int e = lo; e < lo + size; e++)
		if (keep[e])
			v[m++] = (struct scored){ b[e], e };
	qsort(v, (size_t)m, sizeof(v[0]), by_rank);
	for (int j = 0; j < n && j < m; j++)
		sum = j == 0 ? v[j].v : sum + v[j].v;
	return sum;
}

/* limit drops the experts outside the `keep_n` best units of `size` experts. */
static void limit(const float *b, int *keep, int experts, int size, int n, int keep_n)
{
	struct scored u[64];
	int units = experts / size, kept[64] = { 0 };

	for (int g = 0; g < units; g++)
		u[g] = (struct scored){ unit_score(b, keep, g * size, size, n), g };
	qsort(u, (size_t)units, sizeof(u[0]), by_rank);
	for (int j = 0; j < keep_n; j++)
		kept[u[j].i] = 1;
	for (int e = 0; e < experts; e++)
		keep[e] = keep[e] && kept[e / size];
}

/* brute_route routes one token the obvious way (E <= 64). */
static void brute_route(const struct route_config *c, const float *logits, const float *bias,
			int32_t *idx, float *w)
{
	float b[64], s[64], sum = 0.0f;
	int keep[64];
	struct scored all[64];
	int m = 0;

	for (int e = 0; e < c->experts; e++) {
		s[e] = route_sigmoid(logits[e]);
		b[e] = s[e] + (bias ? bias[e] : 0.0f);
		keep[e] = 1;
	}
	if (c->n_groups > 1)
		limit(b, keep, c->experts, c->experts / c->n_groups, 2, c->topk_groups);
	if (c->max_nodes > 0)
		limit(b, keep, c->experts, c->experts / c->nodes, c->topk / c->max_nodes,
		      c->max_nodes);
	for (int e = 0; e < c->experts; e++)
		if (keep[e])
			all[m++] = (struct scored){ b[e], e };
	ck_assert_int_ge(m, c->topk);
	qsort(all, (size_t)m, sizeof(all[0]), by_rank);
	for (int j = 0; j < c->topk; j++) {
		idx[j] = all[j].i;
		sum = j == 0 ? s[all[j].i] : sum + s[all[j].i];
	}
	for (int j = 0; j < c->topk; j++)
		w[j] = s[idx[j]] / sum * c->route_scale;
}

/* ---- helpers ---- */

/* random_divisor returns a random divisor of n that is at most max. */
static int random_divisor(struct mb_rng *rng, int n, int max)
{
	for (;;) {
		int d = 1 + (int)(mb_rng_next(rng) % (uint64_t)max);
		if (n % d == 0)
			return d;
	}
}

/* random_config draws a valid configuration with E in 16..64 and K in 2..8, limits
 * active most of the time. */
static struct route_config random_config(struct mb_rng *rng)
{
	for (int tries = 0; tries < 10000; tries++) {
		struct route_config c = { .experts = 8 * (2 + (int)(mb_rng_next(rng) % 7)),
					  .topk = 2 + (int)(mb_rng_next(rng) % 7),
					  .route_scale = (float)mb_rng_uniform(rng, 0.5, 3.0) };
		c.n_groups = random_divisor(rng, c.experts, 16);
		c.topk_groups = 1 + (int)(mb_rng_next(rng) % (uint64_t)c.n_groups);
		c.nodes = random_divisor(rng, c.experts, 16);
		c.max_nodes = mb_rng_next(rng) % 4 ? random_divisor(rng, c.topk, c.nodes) : 0;
		if (route_config_check(&c, NULL, 0) == MB_OK)
			return c;
	}
	ck_abort_msg("no valid random configuration found");
	return (struct route_config){ 0 };
}

/* random_logits fills n normal logits. */
static void random_logits(struct mb_rng *rng, float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)mb_rng_normal(rng);
}

/* route_one routes one token with route_cpu and asserts success. */
static void route_one(const struct route_config *c, const float *logits, const float *bias,
		      int32_t *idx, float *w)
{
	ck_assert_int_eq(route_cpu(c, logits, bias, 1, idx, w), MB_OK);
}

/* ---- core ---- */

START_TEST(sigmoid_is_accurate)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 1);
	for (int i = 0; i < 100000; i++) {
		float x = (float)mb_rng_uniform(&rng, i % 2 ? -80.0 : -8.0, i % 2 ? 80.0 : 8.0);
		double want = 1.0 / (1.0 + exp(-(double)x));
		ck_assert_msg(fabs(route_sigmoid(x) - want) <= 1e-6 * want,
			      "sigmoid(%a) = %a, want %a (seed %llu)", (double)x,
			      (double)route_sigmoid(x), want, (unsigned long long)test_seed());
	}
	ck_assert_float_eq(route_sigmoid(0.0f), 0.5f);
	ck_assert_float_eq(route_sigmoid(NAN), route_sigmoid(-80.0f));
	ck_assert_float_eq(route_sigmoid(-1e9f), route_sigmoid(-80.0f));
	ck_assert_float_eq(route_sigmoid(INFINITY), route_sigmoid(80.0f));
}
END_TEST

/* Random configurations and tokens, with and without a bias: exactly the brute force. */
START_TEST(matches_brute_force)
{
	struct mb_rng rng;
	enum { T = 64 };
	float logits[T * 64], bias[64], w[T * 8], bw[8];
	int32_t idx[T * 8], bidx[8];

	mb_rng_seed(&rng, test_seed(), 100 + (uint64_t)_i);
	struct route_config c = random_config(&rng);
	random_logits(&rng, logits, (size_t)T * c.experts);
	mb_rng_fill_uniform_f32(&rng, bias, 64, -0.1f, 0.1f);
	const float *b = _i % 2 ? bias : NULL;
	ck_assert_int_eq(route_cpu(&c, logits, b, T, idx, w), MB_OK);
	for (int t = 0; t < T; t++) {
		brute_route(&c, logits + t * c.experts, b, bidx, bw);
		for (int j = 0; j < c.topk; j++) {
			ck_assert_msg(idx[t * c.topk + j] == bidx[j] &&
				      fabsf(w[t * c.topk + j] - bw[j]) <= 1e-6f * c.route_scale,
				      "E=%d K=%d groups %d/%d nodes %d/%d token %d rank %d: %d %g, "
				      "brute force %d %g (seed %llu)", c.experts, c.topk,
				      c.topk_groups, c.n_groups, c.max_nodes, c.nodes, t, j,
				      idx[t * c.topk + j], (double)w[t * c.topk + j], bidx[j],
				      (double)bw[j], (unsigned long long)test_seed());
		}
	}
}
END_TEST

/* Weights are positive, sum to route_scale, come best first, indices distinct. */
START_TEST(weights_sum_to_route_scale)
{
	struct mb_rng rng;
	enum { T = 256 };
	float logits[T * 64], w[T * 8];
	int32_t idx[T * 8];

	mb_rng_seed(&rng, test_seed(), 200 + (uint64_t)_i);
	struct route_config c = random_config(&rng);
	random_logits(&rng, logits, (size_t)T * c.experts);
	ck_assert_int_eq(route_cpu(&c, logits, NULL, T, idx, w), MB_OK);
	for (int t = 0; t < T; t++) {
		double sum = 0.0;
		for (int j = 0; j < c.topk; j++) {
			int e = idx[t * c.topk + j];
			ck_assert(e >= 0 && e < c.experts && w[t * c.topk + j] > 0.0f);
			for (int i = 0; i < j; i++)
				ck_assert_int_ne(idx[t * c.topk + i], e);
			if (j > 0)   /* no bias: the weights follow the selection order */
				ck_assert(w[t * c.topk + j] <= w[t * c.topk + j - 1]);
			sum += w[t * c.topk + j];
		}
		ck_assert_msg(fabs(sum - c.route_scale) <= 1e-5 * c.route_scale,
			      "token %d: weights sum to %g, route_scale %g", t, sum,
			      (double)c.route_scale);
	}
}
END_TEST

/* A bias moves the selection, but each weight stays the unbiased score's share. */
START_TEST(bias_changes_selection_not_weights)
{
	struct mb_rng rng;
	struct route_config c = { 32, 4, 1, 1, 1, 0, 2.5f };
	enum { T = 128 };
	float logits[T * 32], bias[32] = { 0 }, w0[T * 4], w1[T * 4];
	int32_t i0[T * 4], i1[T * 4];
	int moved = 0;

	mb_rng_seed(&rng, test_seed(), 3);
	random_logits(&rng, logits, sizeof(logits) / sizeof(logits[0]));
	bias[7] = 1.0f;   /* expert 7 wins every token */
	ck_assert_int_eq(route_cpu(&c, logits, NULL, T, i0, w0), MB_OK);
	ck_assert_int_eq(route_cpu(&c, logits, bias, T, i1, w1), MB_OK);
	for (int t = 0; t < T; t++) {
		float sum = 0.0f;
		ck_assert_int_eq(i1[t * 4], 7);
		moved += memcmp(i0 + t * 4, i1 + t * 4, sizeof(int32_t) * 4) != 0;
		for (int j = 0; j < 4; j++)
			sum += route_sigmoid(logits[t * 32 + i1[t * 4 + j]]);
		for (int j = 0; j < 4; j++) {
			float s = route_sigmoid(logits[t * 32 + i1[t * 4 + j]]);
			ck_assert_float_eq_tol(w1[t * 4 + j], s / sum * 2.5f, 1e-6f);
		}
	}
	/* unchanged only where expert 7 was already the best, 1/32 of the tokens */
	ck_assert_int_ge(moved, T * 3 / 4);
}
END_TEST

/* A NaN or infinite bias still yields K distinct experts in range. */
START_TEST(wild_bias_still_routes)
{
	struct route_config c = { 16, 4, 4, 2, 4, 2, 1.0f };
	float logits[16], bias[16], w[4];
	int32_t idx[4];

	for (int e = 0; e < 16; e++) {
		logits[e] = (float)e - 8.0f;
		bias[e] = e % 3 == 0 ? NAN : e % 3 == 1 ? INFINITY : -INFINITY;
	}
	route_one(&c, logits, bias, idx, w);
	for (int j = 0; j < 4; j++) {
		ck_assert(idx[j] >= 0 && idx[j] < 16 && isfinite(w[j]));
		for (int i = 0; i < j; i++)
			ck_assert_int_ne(idx[i], idx[j]);
	}
}
END_TEST

/* ---- hand-worked cases ---- */

/* Equal logits: every tie goes to the lower index, weights are equal. */
START_TEST(ties_go_to_lower_index)
{
	struct route_config c = { 16, 4, 4, 2, 1, 0, 2.0f };
	float logits[16], w[4];
	int32_t idx[4];

	for (int e = 0; e < 16; e++)
		logits[e] = 0.25f;
	route_one(&c, logits, NULL, idx, w);
	for (int j = 0; j < 4; j++) {
		ck_assert_int_eq(idx[j], j);
		ck_assert_float_eq(w[j], 0.5f);
	}
	logits[13] = logits[9] = 1.0f;   /* two equal winners in groups 3 and 2 */
	route_one(&c, logits, NULL, idx, w);
	ck_assert_int_eq(idx[0], 9);
	ck_assert_int_eq(idx[1], 13);
	ck_assert_int_eq(idx[2], 8);     /* then group 2 (lower) before group 3 */
	ck_assert_int_eq(idx[3], 10);
}
END_TEST

/* Group limit: expert 0 is the best expert, but its group (top-2 sum) is not kept. */
START_TEST(group_limit_drops_best_expert)
{
	/* groups of 2: {3, -3} sums 0.953 + 0.047 = 1.0; {1, 1} 1.462; {0.9, 0.9} 1.42;
	 * {-1, -1} 0.54: groups 1 and 2 are kept */
	struct route_config c = { 8, 2, 4, 2, 1, 0, 1.0f };
	float logits[8] = { 3, -3, 1, 1, 0.9f, 0.9f, -1, -1 }, w[2];
	int32_t idx[2];

	route_one(&c, logits, NULL, idx, w);
	ck_assert_int_eq(idx[0], 2);
	ck_assert_int_eq(idx[1], 3);
	ck_assert_float_eq_tol(w[0], 0.5f, 1e-7f);
	c.topk_groups = 4;   /* no limit: expert 0 comes first */
	route_one(&c, logits, NULL, idx, w);
	ck_assert_int_eq(idx[0], 0);
	ck_assert_int_eq(idx[1], 2);
}
END_TEST

/* Node limit: the token's four best experts sit on four nodes; M = 2 keeps the two
 * nodes with the best top-2 (K/M) sums. */
START_TEST(node_limit_keeps_best_nodes)
{
	/* nodes of 2: n0 {3, -5} 0.959; n1 {2.9, 2.5} 1.872; n2 {2.8, -5} 0.949;
	 * n3 {2.7, 2.6} 1.868 */
	struct route_config c = { 8, 4, 1, 1, 4, 2, 1.0f };
	float logits[8] = { 3, -5, 2.9f, 2.5f, 2.8f, -5, 2.7f, 2.6f }, w[4];
	int32_t idx[4], want[4] = { 2, 6, 7, 3 }, free_want[4] = { 0, 2, 4, 6 };
	struct route_stats st;

	route_one(&c, logits, NULL, idx, w);
	for (int j = 0; j < 4; j++)
		ck_assert_int_eq(idx[j], want[j]);
	route_stats_of(idx, 1, 4, 8, 4, 4, &st);
	ck_assert_double_eq(st.nodes_per_token, 2.0);
	c.max_nodes = 0;
	route_one(&c, logits, NULL, idx, w);
	for (int j = 0; j < 4; j++)
		ck_assert_int_eq(idx[j], free_want[j]);
	route_stats_of(idx, 1, 4, 8, 4, 4, &st);
	ck_assert_double_eq(st.nodes_per_token, 4.0);
}
END_TEST

/* Both limits: groups of 2 inside nodes of 4; the node limit ranks nodes by what the
 * group limit left. */
START_TEST(node_limit_after_group_limit)
{
	/* groups: g0 {2, 2} g1 {-4, -4} | g2 {1.5, 1.5} g3 {1.4, 1.4} | g4.. {0, 0};
	 * keep 3 groups: g0, g2, g3; nodes (K/M = 2): n0 sees only g0 (2, 2),
	 * n1 sees (1.5, 1.5): keep n0 alone -> experts 0 and 1 */
	struct route_config c = { 16, 2, 8, 3, 4, 1, 1.0f };
	float logits[16] = { 2, 2, -4, -4, 1.5f, 1.5f, 1.4f, 1.4f }, w[2];
	int32_t idx[2];

	route_one(&c, logits, NULL, idx, w);
	ck_assert_int_eq(idx[0], 0);
	ck_assert_int_eq(idx[1], 1);
	logits[0] = -3.0f;   /* n0 now scores s(2) + s(-3) < 2 s(1.5): node 1 wins */
	route_one(&c, logits, NULL, idx, w);
	ck_assert_int_eq(idx[0], 4);
	ck_assert_int_eq(idx[1], 5);
}
END_TEST

/* ---- balancing ---- */

START_TEST(bias_update_follows_the_mean)
{
	float bias[5] = { 0, 0, 0, 0, 0.5f };
	long load[5] = { 3, 1, 2, 2, 2 };   /* mean 2 */

	route_bias_update(bias, load, 5, 0.25f);
	ck_assert_float_eq(bias[0], -0.25f);
	ck_assert_float_eq(bias[1], 0.25f);
	ck_assert_float_eq(bias[2], 0.0f);
	ck_assert_float_eq(bias[4], 0.5f);
}
END_TEST

/* The bias update on a Zipf-skewed stream (S = 1) at DeepSeek-like limits: the
 * max/mean expert load of a batch falls by at least BALANCE_DROP and ends below
 * BALANCE_END. Measured over seeds: about 6.4-7.1 at first, 1.2-1.3 after 100 steps
 * of gamma = 0.01 (1024 tokens each). */
#define BALANCE_DROP 3.0
#define BALANCE_END 1.75
START_TEST(bias_update_balances_a_skewed_stream)
{
	struct route_config c = { 64, 8, 8, 4, 8, 4, 2.5f };
	enum { T = 1024, ITERS = 100 };
	float *logits = malloc(sizeof(float) * T * 64 * (ITERS + 1)), bias[64] = { 0 };
	float *w = malloc(sizeof(float) * T * 8);
	int32_t *idx = malloc(sizeof(int32_t) * T * 8);
	struct route_stats first, last;

	ck_assert(logits && w && idx);
	route_logits_random(logits, (long)T * (ITERS + 1), 64, 1.0, test_seed(), 0);
	for (int it = 0; it <= ITERS; it++) {
		long load[64] = { 0 };
		ck_assert_int_eq(route_cpu(&c, logits + (size_t)it * T * 64, bias, T, idx, w), MB_OK);
		route_count(idx, T, 8, load);
		route_stats_of(idx, T, 8, 64, 8, 8, it == 0 ? &first : &last);
		route_bias_update(bias, load, 64, 0.01f);
	}
	ck_assert_msg(last.imbalance_experts * BALANCE_DROP <= first.imbalance_experts &&
		      last.imbalance_experts <= BALANCE_END,
		      "max/mean load %.2f -> %.2f (seed %llu)", first.imbalance_experts,
		      last.imbalance_experts, (unsigned long long)test_seed());
	free(logits);
	free(w);
	free(idx);
}
END_TEST

/* ---- token streams ---- */

/* zipf_exponents: the exponent of run _i of zipf_stream_follows_the_law. */
static const double zipf_exponents[] = { 0.8, 1.2 };

/* sort_desc sorts n counts in decreasing order (insertion sort: n is small). */
static void sort_desc(long *x, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && x[j] > x[j - 1]; j--) {
			long tmp = x[j];
			x[j] = x[j - 1];
			x[j - 1] = tmp;
		}
}

/* At K = 1 with no limits, the r-th largest expert load is T r^-S / H(E, S) within
 * 5 sigma. The loads are sorted because the ranking is a hidden random permutation. */
START_TEST(zipf_stream_follows_the_law)
{
	enum { T = 50000, E = 48 };
	struct route_config c = { E, 1, 1, 1, 1, 0, 1.0f };
	double s = zipf_exponents[_i], h = 0.0;
	float *logits = malloc(sizeof(float) * T * E), *w = malloc(sizeof(float) * T);
	int32_t *idx = malloc(sizeof(int32_t) * T);
	long load[E] = { 0 };

	ck_assert(logits && w && idx);
	for (int r = 1; r <= E; r++)
		h += pow(r, -s);
	route_logits_random(logits, T, E, s, test_seed() + (uint64_t)_i, 0);
	ck_assert_int_eq(route_cpu(&c, logits, NULL, T, idx, w), MB_OK);
	route_count(idx, T, 1, load);
	sort_desc(load, E);
	for (int r = 1; r <= E; r++) {
		double p = pow(r, -s) / h, sd = sqrt(T * p * (1 - p));
		ck_assert_msg(fabs((double)load[r - 1] - T * p) <= 5 * sd + 1,
			      "S=%g rank %d: %ld tokens, law %.0f +- %.0f (seed %llu)", s, r,
			      load[r - 1], T * p, sd, (unsigned long long)test_seed());
	}
	free(logits);
	free(w);
	free(idx);
}
END_TEST

/* hottest returns the expert that is most often a token's best logit. */
static int hottest(const float *logits, int tokens, int experts)
{
	int count[64] = { 0 }, best = 0;

	for (int t = 0; t < tokens; t++) {
		int top = 0;
		for (int e = 1; e < experts; e++)
			top = logits[(size_t)t * experts + e] > logits[(size_t)t * experts + top] ? e : top;
		count[top]++;
	}
	for (int e = 1; e < experts; e++)
		best = count[e] > count[best] ? e : best;
	return best;
}

/* A stream is a pure function of its seed, a longer one extends a shorter one (same
 * ranking), and zipf = 0 gives standard normal logits. */
START_TEST(streams_are_seeded_and_normal)
{
	enum { T = 4000, E = 32 };
	float *a = malloc(sizeof(float) * T * E), *b = malloc(sizeof(float) * T * E);
	double sum = 0.0, sq = 0.0;
	size_t n = (size_t)T * E;

	ck_assert(a && b);
	route_logits_random(a, T, E, 1.0, test_seed(), 0);
	route_logits_random(b, T / 2, E, 1.0, test_seed(), 0);
	ck_assert_mem_eq(a, b, sizeof(float) * n / 2);
	route_logits_random(b, T, E, 1.0, test_seed() + 2, 0);
	ck_assert(memcmp(a, b, sizeof(float) * n) != 0);
	/* another stream of the same seed: other values, the same hottest expert */
	route_logits_random(b, T, E, 1.0, test_seed(), 5);
	ck_assert(memcmp(a, b, sizeof(float) * n) != 0);
	ck_assert_int_eq(hottest(a, T, E), hottest(b, T, E));
	route_logits_random(a, T, E, 0.0, test_seed(), 0);
	for (size_t i = 0; i < n; i++) {
		sum += a[i];
		sq += (double)a[i] * a[i];
	}
	ck_assert_msg(fabs(sum / n) < 5.0 / sqrt((double)n), "mean %g", sum / n);
	ck_assert_msg(fabs(sq / n - 1.0) < 5.0 * sqrt(2.0 / n), "variance %g", sq / n);
	free(a);
	free(b);
}
END_TEST

/* ---- statistics ---- */

/* 8 experts on 4 ranks (2 each) on 2 nodes (2 ranks each), 3 tokens, K = 2. */
START_TEST(stats_by_hand)
{
	const int32_t idx[6] = { 0, 1,   0, 4,   0, 7 };
	long load[8] = { 0 };
	struct route_stats st;

	route_count(idx, 3, 2, load);
	ck_assert_int_eq(load[0], 3);
	ck_assert_int_eq(load[7], 1);
	ck_assert_int_eq(load[2], 0);
	route_stats_of(idx, 3, 2, 8, 4, 2, &st);
	ck_assert_double_eq_tol(st.imbalance_experts, 3.0 / (6.0 / 8.0), 1e-12);
	ck_assert_double_eq_tol(st.imbalance_ranks, 4.0 / (6.0 / 4.0), 1e-12);
	ck_assert_double_eq_tol(st.nodes_per_token, 5.0 / 3.0, 1e-12);
	ck_assert_double_eq_tol(st.experts_per_node, 6.0 / 5.0, 1e-12);
}
END_TEST

/* ---- configuration errors ---- */

struct bad_config {
	struct route_config c;
	const char *why;   /* a piece of the expected message */
};

static const struct bad_config bad_configs[] = {
	{ { 250, 8, 8, 4, 1, 0, 1.0f }, "not divisible by n_groups" },
	{ { 256, 8, 8, 4, 6, 2, 1.0f }, "not divisible by nodes" },
	{ { 256, 8, 8, 4, 8, 3, 1.0f }, "topk (8) not divisible by max_nodes (3)" },
	{ { 256, 8, 8, 9, 8, 4, 1.0f }, "topk_groups" },
	{ { 256, 8, 8, 4, 8, 9, 1.0f }, "max_nodes" },
	{ { 16, 17, 1, 1, 1, 0, 1.0f }, "topk (17)" },
	{ { 16, 0, 1, 1, 1, 0, 1.0f }, "topk (0)" },
	{ { 16, 6, 8, 2, 1, 0, 1.0f }, "larger than the 4 experts" },
	{ { 32, 10, 8, 4, 8, 2, 1.0f }, "topk (10) larger than the 8 experts" },
	{ { 24, 2, 4, 2, 6, 1, 1.0f }, "do not nest" },
	{ { 16, 2, 1, 1, 1, 0, 0.0f }, "route_scale" },
	{ { 16, 2, 1, 1, 1, 0, NAN }, "route_scale" },
};

START_TEST(config_errors_are_rejected)
{
	const struct bad_config *b = &bad_configs[_i];
	char why[160];
	float logits[256] = { 0 }, w[32];
	int32_t idx[32];

	ck_assert_int_eq(route_config_check(&b->c, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_msg(strstr(why, b->why) && !strchr(why, '\n'), "message \"%s\"", why);
	ck_assert_int_eq(route_cpu(&b->c, logits, NULL, 1, idx, w), MB_ERR_ARG);
}
END_TEST

START_TEST(deepseek_v3_config_is_valid)
{
	struct route_config c = { 256, 8, 8, 4, 8, 4, 2.5f };
	char why[160] = "untouched";
	float logits[4];
	int32_t idx[8];

	ck_assert_int_eq(route_config_check(&c, why, sizeof(why)), MB_OK);
	ck_assert_str_eq(why, "");
	ck_assert_int_eq(route_cpu(&c, logits, NULL, 0, idx, NULL), MB_OK);
	ck_assert_int_eq(route_cpu(&c, logits, NULL, -1, idx, NULL), MB_ERR_ARG);
	ck_assert_int_eq(route_cpu(NULL, logits, NULL, 1, idx, NULL), MB_ERR_ARG);
	c.topk = 9;
	ck_assert_int_eq(route_config_check(&c, NULL, 0), MB_ERR_ARG);
}
END_TEST

static Suite *route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *core = tcase_create("core"), *hand = tcase_create("hand");
	TCase *balance = tcase_create("balance"), *streams = tcase_create("streams");
	TCase *limits = tcase_create("limits");

	tcase_add_test(core, sigmoid_is_accurate);
	tcase_add_loop_test(core, matches_brute_force, 0, 60);
	tcase_add_loop_test(core, weights_sum_to_route_scale, 0, 10);
	tcase_add_test(core, bias_changes_selection_not_weights);
	tcase_add_test(core, wild_bias_still_routes);
	tcase_add_test(hand, ties_go_to_lower_index);
	tcase_add_test(hand, group_limit_drops_best_expert);
	tcase_add_test(hand, node_limit_keeps_best_nodes);
	tcase_add_test(hand, node_limit_after_group_limit);
	tcase_add_test(hand, stats_by_hand);
	tcase_add_test(balance, bias_update_follows_the_mean);
	tcase_add_test(balance, bias_update_balances_a_skewed_stream);
	tcase_add_loop_test(streams, zipf_stream_follows_the_law, 0, 2);
	tcase_add_test(streams, streams_are_seeded_and_normal);
	tcase_add_loop_test(limits, config_errors_are_rejected, 0,
			    (int)(sizeof(bad_configs) / sizeof(bad_configs[0])));
	tcase_add_test(limits, deepseek_v3_config_is_valid);
	suite_add_tcase(s, core);
	suite_add_tcase(s, hand);
	suite_add_tcase(s, balance);
	suite_add_tcase(s, streams);
	suite_add_tcase(s, limits);
	return s;
}

MB_CHECK_MAIN(route_suite)
