/*
 * train_split.h - the training step's time split by cause, per rank and for the slowest
 * rank, under the names `moebench project` gives the same terms in its split_s (so a
 * measured step and a projected one read side by side):
 *
 *   attention_block   the attention block (projections and core: the CPU step cannot
 *                     part them; the projection's attn_core is the core alone)
 *   routing_permute   the gate, top-k, permutation and the weighted combine
 *   expert_gemm       the routed and shared experts' GEMMs
 *   dense_gemm        dense FFN, head and MTP projection GEMMs
 *   loss, optimizer, other
 *   tp_comm_total     tensor-parallel collectives
 *   ep_comm_exposed   expert dispatch/combine the rank waited for
 *   ep_comm_hidden    dispatch/combine overlapped with computation (not in the sum)
 *   bubble            pipeline idle time measured by the executor
 *   bubble_simulated  the pipeline simulator's bubble for this run's measured op times
 *                     (a prediction beside the measurement; not in the sum)
 *   dp_comm           data-parallel gradient reduction, ZeRO-1 gathers, loads
 *
 * Seconds over the timed steps; rank 0 gathers every rank's.
 */
#ifndef MB_TRAIN_SPLIT_H
#define MB_TRAIN_SPLIT_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "comm.h"
#include "net.h"

enum train_cause {
	TC_ATTENTION, TC_ROUTING, TC_EXPERT_GEMM, TC_DENSE_GEMM, TC_LOSS, TC_OPTIMIZER, TC_OTHER,
	TC_TP_COMM, TC_EP_EXPOSED, TC_EP_HIDDEN, TC_BUBBLE, TC_BUBBLE_SIM, TC_DP_COMM, TC_COUNT
};

struct train_split {
	double s[TC_COUNT];
};

/* train_cause_name: the key of a cause (project's split_s naming). */
const char *train_cause_name(enum train_cause c);
/* train_cause_summed: whether a cause is wall time of its own (hidden communication and
 * the simulated bubble are not). */
bool train_cause_summed(enum train_cause c);
/* train_split_phases adds a model profile's phases into the compute causes. */
void train_split_phases(struct train_split *s, const struct net_profile *p);
/* train_split_total returns the sum of the summed causes. */
double train_split_total(const struct train_split *s);
/* train_split_gather collects every rank's split into all[world] on every rank (world may
 * be NULL: one rank). MB_OK or the collective's error. */
int train_split_gather(struct comm *world, const struct train_split *mine,
		       struct train_split *all, int n);
/* train_split_json returns {"slowest_rank", "split_s" (the slowest rank's), "by_rank"}:
 * the slowest rank is the one with the largest summed time. */
cJSON *train_split_json(const struct train_split *all, int n);
/* train_split_line writes "cause pct% ..." of one split (causes above 0 only). */
void train_split_line(const struct train_split *s, char *buf, size_t len);

#endif
