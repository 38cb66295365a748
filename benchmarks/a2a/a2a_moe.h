/*
 * a2a_moe.h - the state of `moebench a2a`'s MoE dispatch/combine (a2a_moe.c) shared with
 * its accounting and report (a2a_moe_report.c). Not an interface.
 */
#ifndef MB_BENCH_A2A_MOE_H
#define MB_BENCH_A2A_MOE_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "a2a.h"
#include "ep.h"

struct a2a_moe {
	struct comm *comm;
	struct ep *ep;
	int rank, size, hidden, experts, topk, rpn;
	long tokens;                  /* this rank's */
	double zipf;
	enum permute_payload payload;
	uint64_t seed;
	bool on_device;
	void *stream;
	int32_t *idx;                 /* [T, K] host routing */
	float *w;
	void *x_rows;                 /* payload rows [T] (communicator memory) */
	uint16_t *y, *out;            /* expert outputs, combined tokens */
	long wrong[3];                /* this rank's: layout, rows, tokens */
	/* accounting over all ranks (a2a_moe_account) */
	double tokens_total;
	double alltoall_bytes[3];     /* per rank (mean): bytes each phase's all-to-alls send */
	double logical_bytes[3];      /* per rank (mean): DeepEP's per (token, rank) copy bytes */
	double node_bytes[3];         /* per rank (mean): per (token, node) copy bytes (RDMA) */
	double copies_per_token, nodes_per_token, node_copies_per_token;
	double imbalance_experts, imbalance_ranks;
	double *expert_load;          /* [experts]: token copies each expert receives, all ranks */
};

/* a2a_kernels_run times the local permutation steps alone on this rank's data of the
 * run (a2a_kernels.c): gather (hop 0's send pack), arrange (expert-major) and reduce
 * (combine's weighted un-permutation), each a rank-local driver case checked against a
 * plain recomputation, and adds their summary line. measured_copy_gbps: the copy
 * bandwidth of --measured-peak, NaN when none. Returns MB_OK or an error. */
int a2a_kernels_run(struct run_ctx *ctx, struct a2a_moe *m, double measured_copy_gbps);
/* a2a_moe_account fills the accounting from the layout (collective). */
int a2a_moe_account(struct a2a_moe *m);
/* a2a_moe_params describes phase (0 layout, 1 dispatch, 2 combine) for its record. */
cJSON *a2a_moe_params(const struct a2a_moe *m, int phase);
/* a2a_moe_report adds the bandwidths and rates to the phases' records and the
 * summary lines (collective: sums #wrong over ranks). */
int a2a_moe_report(struct run_ctx *ctx, struct a2a_moe *m);

#endif
