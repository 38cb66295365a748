/*
 * route.h - DeepSeek-V3's MoE routing (gate): which experts each token goes to, and
 * with what weight. CPU reference in route.c; CUDA in route.cu (moe_nocuda.c
 * returns MB_ERR_UNSUPPORTED without CUDA).
 *
 * For T tokens and E routed experts, from gate logits [T, E]:
 *   s = sigmoid(logits)                    (affinity scores)
 *   b = s + bias                           (bias: auxiliary-loss-free balancing; only
 *                                           selection uses it, never the weights)
 *   group-limited: E experts in n_groups groups of E/n_groups; a group's score is the
 *     sum of its top-2 b; keep the topk_groups best groups
 *   node-limited: experts on nodes of E/nodes each; a node's score is the sum of its
 *     top (K / max_nodes) b; keep the max_nodes best nodes (0 = no node limit)
 *   top-K of b among the kept experts -> topk_idx; weights w = s / sum(s) * route_scale
 * Ties break toward the lower index everywhere, so CPU and CUDA agree exactly.
 * (DeepSeek-V3 Technical Report 2.1.2, and its inference/model.py Gate.)
 *
 * Output per token t: topk_idx[t*K + j] (ascending by rank of b: j = 0 is the best) and
 * topk_w[t*K + j].
 */
#ifndef MB_ROUTE_H
#define MB_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct route_config {
	int experts;        /* E */
	int topk;           /* K */
	int n_groups;       /* 1 = no group limit */
	int topk_groups;
	int nodes;          /* nodes the experts are spread over (EP ranks / ranks per node) */
	int max_nodes;      /* M: at most M nodes per token; 0 = no limit */
	float route_scale;
};

/* route_config_check returns MB_OK or MB_ERR_ARG with the problem in why (one line;
 * why may be NULL). Besides the divisibility and range rules it needs groups and nodes
 * to nest when both limits are on (one's expert count divides the other's), and K no
 * larger than the experts the limits may leave a token in the worst case. */
int route_config_check(const struct route_config *c, char *why, size_t why_len);

/* route_sigmoid is the sigmoid both route_cpu and route_cuda use: IEEE +, -, *, / only,
 * so host and device agree bit for bit and so select the same experts. Logits are
 * clamped to [-80, 80] (a NaN counts as -80); relative error below 1e-6 there. */
float route_sigmoid(float x);

/* route_cpu routes T tokens (bias may be NULL = zeros). Biased scores are clamped to
 * +-1e30 (NaN to -1e30), so any bias yields K distinct experts. Returns MB_OK,
 * MB_ERR_ARG (configuration, T < 0, NULL buffer) or MB_ERR_NOMEM. */
int route_cpu(const struct route_config *c, const float *logits, const float *bias,
	      long tokens, int32_t *topk_idx, float *topk_w);
/* route_cuda: the same on the device (device pointers; stream is a cudaStream_t),
 * asynchronous, bit-identical to route_cpu. Returns MB_OK, MB_ERR_ARG, MB_ERR_CUDA, or
 * MB_ERR_UNSUPPORTED without CUDA or when E is too large for shared memory (~2300). */
int route_cuda(const struct route_config *c, const float *d_logits, const float *d_bias,
	       long tokens, int32_t *d_topk_idx, float *d_topk_w, void *stream);

/* route_bias_update: DeepSeek-V3's auxiliary-loss-free balancing step: for each expert,
 * bias -= gamma if its load is above the mean load, += gamma if below. */
void route_bias_update(float *bias, const long *load, int experts, float gamma);

/* Token streams of gate logits: standard normal (zipf == 0), or skewed so that expert
 * popularity follows a Zipf law with exponent zipf over a seeded random ranking:
 * logit = -zipf * ln(rank) + standard Gumbel noise, so each token's best expert is the
 * rank-r one with probability exactly r^-zipf / sum r^-zipf (Gumbel-max), and its top-K
 * a draw without replacement from that law (shares flatten at the head as K grows).
 * The ranking depends on the seed only, the values on the seed and the stream (e.g. an
 * MPI rank: every rank then draws its own tokens over the same hot experts); a longer
 * stream extends a shorter one. */
void route_logits_random(float *logits, long tokens, int experts, double zipf,
			 uint64_t seed, uint64_t stream);

struct route_stats {
	double imbalance_experts;   /* max over experts of tokens / mean */
	double imbalance_ranks;     /* max over ranks of token copies / mean */
	double nodes_per_token;     /* average distinct nodes a token goes to */
	double experts_per_node;    /* average experts per (token, node it goes to) */
};

/* route_count adds the token copies each expert receives into load[E]. */
void route_count(const int32_t *topk_idx, long tokens, int topk, long *load);
/* route_stats_of computes the statistics for experts spread over ranks (E/ranks each)
 * and nodes (ranks/nodes ranks each). */
void route_stats_of(const int32_t *topk_idx, long tokens, int topk, int experts, int ranks,
		    int nodes, struct route_stats *out);

#ifdef __cplusplus
}
#endif

#endif
