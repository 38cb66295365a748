/*
 * route.c - DeepSeek-V3's MoE routing (route.h), CPU reference: the gate of T tokens
 * over E experts, the auxiliary-loss-free bias update, token streams of gate logits and
 * the load statistics the all-to-all cares about.
 *
 * Shapes: logits [T, E] row-major; bias [E]; topk_idx, topk_w [T, K], best first.
 * Every selection (groups, nodes, experts) is "the n best by score, ties to the lower
 * index", done as n passes that each take the best element ranked after the previous
 * pick. That order is total, so the result is unique, and route.cu runs the same passes
 * with a warp and the same float operations in the same order: bit-identical output.
 */
#include "route.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "status.h"

/* ---- the sigmoid shared with route.cu ---- */

/* Cody-Waite split of ln 2: ROUTE_LN2_HI has 15 significant bits, so n * ROUTE_LN2_HI
 * is exact for |n| < 2^9. NOTE: hex literals, the same in route.cu, so no compiler's
 * decimal conversion or constant folding can make host and device differ. */
#define ROUTE_LOG2E 0x1.715476p+0f
#define ROUTE_LN2_HI 0x1.62e4p-1f
#define ROUTE_LN2_LO 0x1.7f7d1cp-20f
#define ROUTE_C7 0x1.a01a02p-13f    /* 1/7! .. 1/3! rounded to float */
#define ROUTE_C6 0x1.6c16c2p-10f
#define ROUTE_C5 0x1.111112p-7f
#define ROUTE_C4 0x1.555556p-5f
#define ROUTE_C3 0x1.555556p-3f
/* Biased scores are clamped to +-ROUTE_SCORE_MAX: a sum of E of them stays finite. */
#define ROUTE_SCORE_MAX 1e30f

/* route_sigmoid computes 1 / (1 + exp(-x)) with exp(t) = 2^n * p(r), t = n ln2 + r,
 * |r| <= ln2/2, p the degree-7 Taylor polynomial (truncation below 6e-9 relative).
 * NOTE: every operation is a separate IEEE +, -, * or /, never fused: ISO C mode keeps
 * GCC from contracting them (-ffp-contract=off), and route.cu spells each one with
 * __fmul_rn & co. The clamp to [-80, 80] keeps every value normal (no FTZ question). */
float route_sigmoid(float x)
{
	float t = x >= -80.0f ? (x <= 80.0f ? -x : -80.0f) : 80.0f;   /* NaN -> 80 */
	float k = t * ROUTE_LOG2E;
	int n = (int)(k >= 0.0f ? k + 0.5f : k - 0.5f);
	float nf = (float)n;
	float r = (t - nf * ROUTE_LN2_HI) - nf * ROUTE_LN2_LO;
	float p = ROUTE_C7;
	uint32_t bits = (uint32_t)(n + 127) << 23;
	float two_n;

	p = p * r + ROUTE_C6;
	p = p * r + ROUTE_C5;
	p = p * r + ROUTE_C4;
	p = p * r + ROUTE_C3;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	memcpy(&two_n, &bits, sizeof(two_n));
	return 1.0f / (1.0f + p * two_n);
}

/* ---- configuration ---- */

/* experts_left returns how many experts the group and node limits leave a token in the
 * worst case (route_config_check has made sure groups and nodes nest). */
static int experts_left(const struct route_config *c)
{
	int gs = c->experts / c->n_groups, ns = c->experts / c->nodes;
	int left = c->topk_groups * gs;

	if (c->max_nodes > 0 && c->max_nodes < c->nodes) {
		/* the kept groups may be spread so that each kept node holds as few kept
		 * experts as possible: one group (groups inside nodes) or one node */
		int per_node = gs < ns ? gs : ns;
		if (c->max_nodes * per_node < left)
			left = c->max_nodes * per_node;
	}
	return left;
}

/* config_shape_error writes the first problem with the sizes into why, or returns 0. */
static int config_shape_error(const struct route_config *c, char *why, size_t len)
{
	if (c->experts < 1 || c->topk < 1 || c->topk > c->experts)
		return snprintf(why, len, "topk (%d) must be in 1..experts (%d)", c->topk,
				c->experts), 1;
	if (c->n_groups < 1 || c->experts % c->n_groups)
		return snprintf(why, len, "experts (%d) not divisible by n_groups (%d)",
				c->experts, c->n_groups), 1;
	if (c->topk_groups < 1 || c->topk_groups > c->n_groups)
		return snprintf(why, len, "topk_groups (%d) must be in 1..n_groups (%d)",
				c->topk_groups, c->n_groups), 1;
	if (c->nodes < 1 || c->experts % c->nodes)
		return snprintf(why, len, "experts (%d) not divisible by nodes (%d)",
				c->experts, c->nodes), 1;
	if (c->max_nodes < 0 || c->max_nodes > c->nodes)
		return snprintf(why, len, "max_nodes (%d) must be in 0..nodes (%d)",
				c->max_nodes, c->nodes), 1;
	if (c->max_nodes > 0 && c->topk % c->max_nodes)
		return snprintf(why, len, "topk (%d) not divisible by max_nodes (%d)", c->topk,
				c->max_nodes), 1;
	if (!(c->route_scale > 0.0f) || isinf(c->route_scale))
		return snprintf(why, len, "route_scale (%g) must be positive and finite",
				(double)c->route_scale), 1;
	return 0;
}

int route_config_check(const struct route_config *c, char *why, size_t why_len)
{
	char sink[1];
	int gs, ns;

	if (!why || !why_len) {
		why = sink;
		why_len = sizeof(sink);
	}
	why[0] = '\0';
	if (!c)
		return snprintf(why, why_len, "no routing configuration"), MB_ERR_ARG;
	if (config_shape_error(c, why, why_len))
		return MB_ERR_ARG;
	gs = c->experts / c->n_groups;
	ns = c->experts / c->nodes;
	if (c->n_groups > 1 && c->max_nodes > 0 && c->max_nodes < c->nodes && gs % ns && ns % gs)
		return snprintf(why, why_len, "groups of %d experts and nodes of %d experts do not "
				"nest (one size must divide the other)", gs, ns), MB_ERR_ARG;
	if (experts_left(c) < c->topk)
		return snprintf(why, why_len, "topk (%d) larger than the %d experts the group and "
				"node limits may leave", c->topk, experts_left(c)), MB_ERR_ARG;
	return MB_OK;
}

/* ---- one token ---- */

/* A candidate: its score and index; i < 0 means none. */
struct route_pick {
	float v;
	int i;
};

/* ranks_before says whether (v, i) ranks before (pv, pi): higher score, then lower index. */
static int ranks_before(float v, int i, float pv, int pi)
{
	return v > pv || (v == pv && i < pi);
}

/* next_best returns the best of v[lo, hi), kept ones only when keep is given, among those
 * ranked after prev (all of them when prev.i < 0); i < 0 when there is none. */
static struct route_pick next_best(const float *v, const unsigned char *keep, int lo, int hi,
				   struct route_pick prev)
{
	struct route_pick best = { 0.0f, -1 };

	for (int i = lo; i < hi; i++) {
		if ((keep && !keep[i]) || (prev.i >= 0 && !ranks_before(prev.v, prev.i, v[i], i)))
			continue;
		if (best.i < 0 || ranks_before(v[i], i, best.v, best.i))
			best = (struct route_pick){ v[i], i };
	}
	return best;
}

/* top_sum returns the sum, best first, of the n best kept v[lo, hi) (fewer if fewer are
 * kept); -INFINITY when none is kept, so such a group or node ranks last. */
static float top_sum(const float *v, const unsigned char *keep, int lo, int hi, int n)
{
	struct route_pick p = { 0.0f, -1 };
	float sum = -INFINITY;

	for (int j = 0; j < n; j++) {
		p = next_best(v, keep, lo, hi, p);
		if (p.i < 0)
			break;
		sum = j == 0 ? p.v : sum + p.v;
	}
	return sum;
}

/* keep_best sets keep[u] = 1 for the n best of score[0, units) and 0 for the others. */
static void keep_best(const float *score, int units, int n, unsigned char *keep)
{
	struct route_pick p = { 0.0f, -1 };

	memset(keep, 0, (size_t)units);
	for (int j = 0; j < n; j++) {
		p = next_best(score, NULL, 0, units, p);
		keep[p.i] = 1;
	}
}

/* Per-token work space of route_cpu. */
struct route_scratch {
	float *b, *unit_score;           /* biased scores [E]; group or node scores */
	unsigned char *keep, *unit_keep; /* experts still allowed [E]; kept groups/nodes */
};

/* limit_units applies one limit: units of `size` experts, scored by the sum of their
 * top `n` kept b, keep the `m` best; experts of the other units are dropped. */
static void limit_units(const struct route_config *c, struct route_scratch *w, int size,
			int n, int m)
{
	int units = c->experts / size;

	for (int u = 0; u < units; u++)
		w->unit_score[u] = top_sum(w->b, w->keep, u * size, (u + 1) * size, n);
	keep_best(w->unit_score, units, m, w->unit_keep);
	for (int e = 0; e < c->experts; e++)
		w->keep[e] = w->keep[e] && w->unit_keep[e / size];
}

/* route_token routes one token: scores, group limit, node limit, top-K, weights. */
static void route_token(const struct route_config *c, const float *logits, const float *bias,
			struct route_scratch *w, int32_t *idx, float *wt)
{
	struct route_pick p = { 0.0f, -1 };
	float sum = 0.0f;

	for (int e = 0; e < c->experts; e++) {
		/* NOTE: the clamp (NaN -> -1e30) keeps every score and sum ordered, so each
		 * pass finds an expert whatever the bias holds */
		float b = route_sigmoid(logits[e]) + (bias ? bias[e] : 0.0f);
		w->b[e] = fminf(fmaxf(b, -ROUTE_SCORE_MAX), ROUTE_SCORE_MAX);
		w->keep[e] = 1;
	}
	if (c->n_groups > 1 && c->topk_groups < c->n_groups)
		limit_units(c, w, c->experts / c->n_groups, 2, c->topk_groups);
	if (c->max_nodes > 0 && c->max_nodes < c->nodes)
		limit_units(c, w, c->experts / c->nodes, c->topk / c->max_nodes, c->max_nodes);
	for (int j = 0; j < c->topk; j++) {
		p = next_best(w->b, w->keep, 0, c->experts, p);
		idx[j] = p.i;
		wt[j] = route_sigmoid(logits[p.i]);   /* weights use the unbiased score */
		sum = j == 0 ? wt[j] : sum + wt[j];
	}
	for (int j = 0; j < c->topk; j++)
		wt[j] = wt[j] / sum * c->route_scale;
}

int route_cpu(const struct route_config *c, const float *logits, const float *bias,
	      long tokens, int32_t *topk_idx, float *topk_w)
{
	struct route_scratch w = { 0 };
	int err = route_config_check(c, NULL, 0);
	size_t e;

	if (err)
		return err;
	if (tokens < 0 || (tokens > 0 && (!logits || !topk_idx || !topk_w)))
		return MB_ERR_ARG;
	e = (size_t)c->experts;
	w.b = malloc(e * sizeof(float));
	w.unit_score = malloc(e * sizeof(float));   /* at most E groups or nodes */
	w.keep = malloc(e);
	w.unit_keep = malloc(e);
	if (!w.b || !w.unit_score || !w.keep || !w.unit_keep) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	for (long t = 0; t < tokens; t++)
		route_token(c, logits + (size_t)t * e, bias, &w, topk_idx + (size_t)t * c->topk,
			    topk_w + (size_t)t * c->topk);
out:
	free(w.b);
	free(w.unit_score);
	free(w.keep);
	free(w.unit_keep);
	return err;
}

/* ---- balancing ---- */

/* NOTE: load[e] > mean is load[e] * E > total, compared in integers: no rounding can
 * move an expert at exactly the mean. DeepSeek-V3 report 2.1.2, bias update speed gamma. */
void route_bias_update(float *bias, const long *load, int experts, float gamma)
{
	long long total = 0;

	for (int e = 0; e < experts; e++)
		total += load[e];
	for (int e = 0; e < experts; e++) {
		long long scaled = (long long)load[e] * experts;
		if (scaled > total)
			bias[e] -= gamma;
		else if (scaled < total)
			bias[e] += gamma;
	}
}

/* ---- token streams ---- */

/* zipf_ranks fills rank[e] (1-based) from a seeded random permutation (Fisher-Yates):
 * expert e is the rank[e]-th most popular. */
static int zipf_ranks(int *rank, int experts, struct mb_rng *rng)
{
	int *perm = malloc((size_t)experts * sizeof(int));

	if (!perm)
		return MB_ERR_NOMEM;
	for (int i = 0; i < experts; i++)
		perm[i] = i;
	for (int i = experts - 1; i > 0; i--) {
		int j = (int)(mb_rng_next(rng) % (uint64_t)(i + 1)), tmp = perm[i];
		perm[i] = perm[j];
		perm[j] = tmp;
	}
	for (int i = 0; i < experts; i++)
		rank[perm[i]] = i + 1;
	free(perm);
	return MB_OK;
}

/* gumbel returns a standard Gumbel deviate, -log(-log(u)), u uniform in (0, 1). */
static double gumbel(struct mb_rng *rng)
{
	double u = mb_rng_uniform(rng, 0.0, 1.0);

	if (u < 0x1p-53)
		u = 0x1p-53;
	return -log(-log(u));
}

/* route_logits_random: zipf == 0 gives standard normal logits. zipf > 0 gives logit
 * -zipf * ln(rank[e]) + G, G standard Gumbel: by the Gumbel-max trick each token's best
 * expert is e with probability exactly rank[e]^-zipf / sum_r r^-zipf, and its top-K is
 * a draw of K experts without replacement from that law (Plackett-Luce), so the shares
 * of top-K routing follow the law at K = 1 and flatten the head as K grows (an expert
 * counts once per token). Ranks: stream 0 of the seed; values: stream 1 + stream. */
void route_logits_random(float *logits, long tokens, int experts, double zipf,
			 uint64_t seed, uint64_t stream)
{
	struct mb_rng rng_rank, rng;
	int *rank = zipf > 0.0 ? malloc((size_t)experts * sizeof(int)) : NULL;
	double *log_pop = zipf > 0.0 ? malloc((size_t)experts * sizeof(double)) : NULL;

	mb_rng_seed(&rng_rank, seed, 0);
	mb_rng_seed(&rng, seed, 1 + stream);
	/* NOTE: out of memory falls back to the unskewed stream (this returns no error) */
	if (zipf > 0.0 && (!rank || !log_pop || zipf_ranks(rank, experts, &rng_rank)))
		zipf = 0.0;
	for (int e = 0; zipf > 0.0 && e < experts; e++)
		log_pop[e] = -zipf * log((double)rank[e]);
	for (size_t i = 0; i < (size_t)tokens * (size_t)experts; i++)
		logits[i] = zipf > 0.0 ? (float)(log_pop[i % (size_t)experts] + gumbel(&rng))
				       : (float)mb_rng_normal(&rng);
	free(rank);
	free(log_pop);
}

/* ---- statistics ---- */

void route_count(const int32_t *topk_idx, long tokens, int topk, long *load)
{
	for (size_t i = 0; i < (size_t)tokens * (size_t)topk; i++)
		load[topk_idx[i]]++;
}

/* max_over_mean returns max(x) / mean(x) over n counts (0 when all are 0). */
static double max_over_mean(const long *x, int n)
{
	long max = 0, total = 0;

	for (int i = 0; i < n; i++) {
		total += x[i];
		max = x[i] > max ? x[i] : max;
	}
	return total ? (double)max * n / (double)total : 0.0;
}

/* route_stats_of: experts e lives on rank e / (E / ranks), node rank / (ranks / nodes).
 * Needs E % ranks == 0 and ranks % nodes == 0; all zero for no tokens or bad sizes. */
void route_stats_of(const int32_t *topk_idx, long tokens, int topk, int experts, int ranks,
		    int nodes, struct route_stats *out)
{
	long *load = calloc((size_t)experts + (size_t)ranks, sizeof(long)), pairs = 0;
	unsigned char *seen = calloc((size_t)nodes, 1);

	*out = (struct route_stats){ 0 };
	if (!load || !seen || tokens <= 0 || ranks < 1 || nodes < 1 || experts % ranks ||
	    ranks % nodes)
		goto out;
	route_count(topk_idx, tokens, topk, load);
	for (int e = 0; e < experts; e++)
		load[experts + e / (experts / ranks)] += load[e];
	for (long t = 0; t < tokens; t++) {
		memset(seen, 0, (size_t)nodes);
		for (int j = 0; j < topk; j++) {
			int node = topk_idx[t * topk + j] / (experts / ranks) / (ranks / nodes);
			pairs += !seen[node];
			seen[node] = 1;
		}
	}
	out->imbalance_experts = max_over_mean(load, experts);
	out->imbalance_ranks = max_over_mean(load + experts, ranks);
	out->nodes_per_token = (double)pairs / (double)tokens;
	out->experts_per_node = (double)tokens * topk / (double)pairs;
out:
	free(load);
	free(seen);
}
