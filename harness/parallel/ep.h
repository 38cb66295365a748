/*
 * ep.h - expert-parallel dispatch and combine over a communicator (the EP group): every
 * rank holds experts/size consecutive experts; tokens go to the ranks holding their
 * experts and their outputs come back summed with the routing weights.
 *
 *   layout    plans from the routing (kernels/moe/permute.h), exchange of the per-peer copy
 *             counts (all-gather) and of the copies' expert lists and weights
 *             (all-to-all-v of meta rows); on the two-hop path also the relay's plan
 *   dispatch  the token payload all-to-all-v (BF16, or FP8 E4M3 codes + 1x128 FP32
 *             scales), arranged expert-major with each expert padded to 128 rows
 *   combine   each rank sums its experts' BF16 outputs per received copy with the
 *             weights, sends one BF16 row per copy back, the source sums (FP32) -> BF16
 *
 * Two-hop (node-limited) path, when ranks_per_node > 1 and there is more than one node
 * (DeepSeek-V3's IB-then-NVLink): a token crosses to each destination NODE once, to the
 * rank with the same local rank there, which fans it out inside the node to the ranks
 * holding its experts; combine reduces inside the node first and sends one partial sum
 * per node back. Otherwise one copy per destination rank.
 *
 * Buffers are host memory for an MPI (or single-rank) communicator and device memory
 * for an NCCL one (comm_on_device): x_rows, y and out below live there. The routing
 * passed to ep_layout is on the host either way. Ranks need not have equal tokens.
 *
 * The checks (ep_check.c) rely on token payloads that are a function of (seed, source
 * rank, token, column): ep_token_rows writes them.
 */
#ifndef MB_HARNESS_EP_H
#define MB_HARNESS_EP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comm.h"
#include "permute.h"

struct ep_config {
	int hidden, experts, topk;
	int ranks_per_node;            /* 1: single hop */
	enum permute_payload payload;
};

/* What this rank moved in the last layout and dispatch (copies are payload rows). */
struct ep_traffic {
	long tokens;
	long hop1_copies, hop1_remote;  /* first all-to-all: rows sent (to itself too) and to others */
	long hop2_copies, hop2_remote;  /* relay all-to-all inside the node (two-hop only) */
	long rank_copies;               /* (token, destination rank) pairs of this rank's tokens */
	long node_copies;               /* (token, destination node) pairs of this rank's tokens */
	long recv_copies;               /* copies that reached this rank's experts */
	long expert_rows, rows_padded;  /* expert-major rows, real and padded */
	double layout_bytes;            /* counts and meta rows this rank sent */
};

struct ep;  /* opaque */

/* ep_create prepares dispatch/combine over c. stream is the backend's cudaStream_t for
 * a device communicator (NULL otherwise). Returns MB_OK, MB_ERR_ARG (experts not
 * divisible by the ranks, ranks not by ranks_per_node, a bad format) or MB_ERR_NOMEM. */
int ep_create(struct comm *c, const struct ep_config *cfg, void *stream, struct ep **out);
void ep_free(struct ep *ep);

bool ep_two_hop(const struct ep *ep);
const struct permute_format *ep_format(const struct ep *ep);

/* ep_layout plans the dispatch of tokens routed by topk_idx/topk_w [T, K] (host).
 * Collective. Returns MB_OK, MB_ERR_ARG (an expert id out of range), or an error of
 * the communicator or the allocation. */
int ep_layout(struct ep *ep, const int32_t *topk_idx, const float *topk_w, long tokens);
/* ep_dispatch sends the payload rows x_rows [T, fmt.row_bytes] (ep_token_rows or
 * permute_pack) as laid out; the expert-major input is then at ep_expert_input. */
int ep_dispatch(struct ep *ep, const uint8_t *x_rows);
/* ep_experts describes the expert-major arrangement of the last layout (host). */
const struct permute_experts *ep_experts(const struct ep *ep);
/* ep_plan returns the plan of hop 0 (this rank's tokens to their first destinations)
 * or hop 1 (the relay's fan-out; two-hop only) of the last layout (host tables). */
const struct permute_plan *ep_plan(const struct ep *ep, int hop);
/* ep_received_rows returns the payload rows [*copies] that reached this rank's experts
 * in the last dispatch (communicator memory): permute_arrange's input. */
const uint8_t *ep_received_rows(struct ep *ep, long *copies);
/* ep_expert_input returns the expert-major input: BF16 [rows_padded, H], or FP8 codes
 * [rows_padded, H] with *scale [rows_padded, ceil(H/128)]. */
void *ep_expert_input(struct ep *ep, float **scale);
/* ep_identity_experts writes the outputs of experts that return their input (BF16,
 * dequantized) into an internal buffer and returns it in *y. */
int ep_identity_experts(struct ep *ep, uint16_t **y);
/* ep_combine returns expert outputs y [rows_padded, H] (BF16) to their tokens: out
 * [T, H] BF16 = sum over the token's experts of weight * y, FP32 accumulation. */
int ep_combine(struct ep *ep, const uint16_t *y, uint16_t *out);
void ep_traffic_of(const struct ep *ep, struct ep_traffic *t);

/* ---- rows of the training step (ep_rows.c): host communicators only ----
 * Rows of width elements of es bytes (4: FP32, 8: FP64) travel as themselves, as BF16
 * (rounded) or, dispatch only, as DeepSeek-V3's FP8 (E4M3 codes with an FP32 scale per
 * 1x128 tile, fp8_quantize's, dequantized on arrival). MB_ERR_ARG on a device
 * communicator, a rounding wire with es != 4, or FP8 to combine. Collective, after
 * ep_layout. */
enum ep_wire { EP_WIRE_SAME, EP_WIRE_BF16, EP_WIRE_FP8 };
/* ep_rows_dispatch sends x [T, width] of this rank's tokens as laid out; the rows that
 * reached this rank's experts land expert-major without padding in xe [*rows, width],
 * counts[e] (may be NULL) rows for each local expert, in received copy order. */
int ep_rows_dispatch(struct ep *ep, const void *x, int width, size_t es, enum ep_wire wire,
		     void *xe, long *rows, long *counts);
/* ep_rows_combine returns y [rows, width] (ep_rows_dispatch's order) to the tokens: out
 * [T, width] = the sum over the token's rows of (weighted: routing weight *) y, summed
 * at the experts' rank, the relay, then the source, in double. */
int ep_rows_combine(struct ep *ep, const void *y, int width, size_t es, enum ep_wire wire,
		    bool weighted, void *out);
/* ep_rows_tables gives, per row of the last ep_rows_dispatch, its routing weight and
 * the position (0..K-1) of its expert in its token's top-k list. */
void ep_rows_tables(const struct ep *ep, const float **w, const int32_t **pos);

/* ep_alloc / ep_release / ep_upload / ep_download: memory where the communicator
 * wants it (host or device), for x_rows, y and out. */
int ep_alloc(struct ep *ep, void **p, size_t bytes);
void ep_release(struct ep *ep, void *p);
int ep_upload(struct ep *ep, void *dst, const void *host, size_t bytes);
int ep_download(struct ep *ep, void *host, const void *src, size_t bytes);

/* ep_token_row writes token's row [H] of rank: BF16 values that are a function of
 * (seed, rank, token, column), nonzero, of varied magnitude. */
void ep_token_row(uint64_t seed, int rank, long token, int hidden, uint16_t *row);
/* ep_token_rows writes the payload rows [T] (packed as fmt) of this rank's tokens into
 * x_rows (communicator memory). Returns MB_OK or an error. */
int ep_token_rows(struct ep *ep, uint64_t seed, long tokens, uint8_t *x_rows);

/* ep_check_layout counts the conservation errors of the last layout (copies sent ==
 * copies received, expert rows over all ranks == the sum of T*K): 0 when right.
 * Collective; the count is the same on every rank. */
int ep_check_layout(struct ep *ep, long *wrong);
/* ep_check_dispatch compares every expert-major row with the payload of the source
 * rank and token its meta row names, bit for bit (FP8: against fp8_quantize of the
 * regenerated row), and every padding row with zeros; *wrong counts bad rows (this
 * rank's). */
int ep_check_dispatch(struct ep *ep, uint64_t seed, long *wrong);
/* ep_check_combine compares out [T, H] of identity experts with x_seen * sum(weights)
 * (x_seen: the token as the experts saw it), within 4 BF16 half-ulps relative;
 * *wrong counts bad tokens (this rank's). */
int ep_check_combine(struct ep *ep, uint64_t seed, const float *topk_w, const uint16_t *out,
		     long *wrong);

#endif
