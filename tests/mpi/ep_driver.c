/*
 * ep_driver.c - one dispatch/combine round trip on every MPI rank, for test_ep_mpi.c:
 *
 *   mpirun -np R --oversubscribe ep_driver TOKENS HIDDEN EXPERTS TOPK RANKS_PER_NODE
 *          bf16|fp8 ZIPF [corrupt|badexpert]
 *
 * Routes each rank's tokens (DeepSeek-V3 gate on random logits, Zipf-skewed when ZIPF >
 * 0; rank r's tokens are TOKENS + 7 r, so ranks differ), dispatches deterministic
 * payloads, checks layout and every received row, runs identity experts, combines and
 * checks x * sum(weights). corrupt: the last rank flips an exponent bit of its first
 * received row after dispatch (the check must see it). badexpert: the last rank routes
 * its first token to an expert that does not exist, so its layout fails and every rank
 * must say so and fail (not wait for it until the timeout). Rank 0 prints
 *   "ep wrong_layout A wrong_rows B wrong_tokens C rows D copies E remote F two_hop G"
 * (sums over ranks). Exit 0 when all wrong counts are 0, 1 otherwise or on an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "comm.h"
#include "ep.h"
#include "mpi_world.h"
#include "route.h"
#include "status.h"

struct args {
	long tokens;
	int hidden, experts, topk, rpn;
	enum permute_payload payload;
	double zipf;
	bool corrupt, bad_expert;
};

/* route_tokens routes this rank's tokens on seeded random logits. */
static int route_tokens(const struct args *a, int rank, int32_t *idx, float *w)
{
	struct route_config rc = { a->experts, a->topk, 1, 1, 1, 0, 2.5f };
	float *logits = malloc((size_t)a->tokens * (size_t)a->experts * sizeof(float));
	int err = logits ? MB_OK : MB_ERR_NOMEM;
	if (!err) {
		route_logits_random(logits, a->tokens, a->experts, a->zipf, 1234, (uint64_t)rank);
		err = route_cpu(&rc, logits, NULL, a->tokens, idx, w);
	}
	free(logits);
	return err;
}

/* corrupt_first_row flips an exponent bit of the first value of the first real
 * expert-major row: a change the row check and the combine check must both see. */
static void corrupt_first_row(struct ep *ep)
{
	const struct permute_experts *x = ep_experts(ep);
	float *scale;
	uint8_t *xe = ep_expert_input(ep, &scale);
	for (long r = 0; r < x->rows_padded; r++)
		if (x->row_copy[r] >= 0) {
			bool bf16 = ep_format(ep)->payload == PERMUTE_BF16;
			xe[r * ep_format(ep)->hidden * (bf16 ? 2 : 1) + bf16] ^= bf16 ? 0x20 : 0x40;
			return;
		}
}

/* round_trip runs layout, dispatch, identity experts and combine, with their checks. */
static int round_trip(struct comm *c, const struct args *a, double v[7])
{
	struct ep_config cfg = { a->hidden, a->experts, a->topk, a->rpn, a->payload };
	struct ep *ep = NULL;
	struct ep_traffic tr;
	int32_t *idx = malloc((size_t)a->tokens * (size_t)a->topk * 4);
	float *w = malloc((size_t)a->tokens * (size_t)a->topk * 4);
	void *x = NULL, *out = NULL;
	uint16_t *y;
	long wl = 0, wr = 0, wt = 0;
	int err = idx && w ? route_tokens(a, comm_rank(c), idx, w) : MB_ERR_NOMEM;
	if (!err && a->bad_expert && comm_rank(c) == comm_size(c) - 1)
		idx[0] = a->experts;
	if (!err)
		err = ep_create(c, &cfg, NULL, &ep);
	if (!err)
		err = ep_alloc(ep, &x, (size_t)a->tokens * ep_format(ep)->row_bytes);
	if (!err)
		err = ep_alloc(ep, &out, (size_t)a->tokens * (size_t)a->hidden * 2);
	if (!err)
		err = ep_token_rows(ep, 99, a->tokens, x);
	if (!err)
		err = ep_layout(ep, idx, w, a->tokens);
	if (!err)
		err = ep_check_layout(ep, &wl);
	if (!err)
		err = ep_dispatch(ep, x);
	if (!err && a->corrupt && comm_rank(c) == comm_size(c) - 1)
		corrupt_first_row(ep);
	if (!err)
		err = ep_check_dispatch(ep, 99, &wr);
	if (!err)
		err = ep_identity_experts(ep, &y);
	if (!err)
		err = ep_combine(ep, y, out);
	if (!err)
		err = ep_check_combine(ep, 99, w, out, &wt);
	if (!err) {
		ep_traffic_of(ep, &tr);
		double mine[7] = { (double)wl / comm_size(c), (double)wr, (double)wt,
				   (double)tr.expert_rows, (double)tr.rank_copies,
				   (double)tr.hop1_remote, ep_two_hop(ep) ? 1.0 / comm_size(c) : 0 };
		memcpy(v, mine, sizeof(mine));
		err = comm_host_allreduce_f64(c, v, 7, COMM_SUM);
	}
	if (ep)
		ep_release(ep, x), ep_release(ep, out);
	ep_free(ep);
	free(idx);
	free(w);
	return err;
}

/* parse reads the arguments; returns false on a bad command line. */
static bool parse(int argc, char **argv, struct args *a)
{
	if (argc < 8)
		return false;
	*a = (struct args){ atol(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
			    atoi(argv[5]), strcmp(argv[6], "fp8") ? PERMUTE_BF16 : PERMUTE_FP8,
			    atof(argv[7]), argc > 8 && strcmp(argv[8], "corrupt") == 0,
			    argc > 8 && strcmp(argv[8], "badexpert") == 0 };
	return a->tokens > 0 && a->hidden > 0 && a->experts > 0 && a->topk > 0 && a->rpn > 0;
}

int main(int argc, char **argv)
{
	struct backend b = { .kind = BACKEND_CPU };
	struct comm *c = NULL;
	struct args a;
	char why[256] = "";
	double v[7] = { 0 };
	if (mpi_world_init(&argc, &argv))
		return 1;
	if (!parse(argc, argv, &a)) {
		fprintf(stderr, "usage: ep_driver TOKENS HIDDEN EXPERTS TOPK RPN bf16|fp8 ZIPF [corrupt|badexpert]\n");
		mpi_world_finalize();
		return 2;
	}
	a.tokens += 7L * mpi_world_rank();
	int err = comm_world(&b, 30.0, &c, why, sizeof(why));
	if (!err)
		err = round_trip(c, &a, v);
	if (err)
		fprintf(stderr, "ep_driver: rank %d: %s %s\n", mpi_world_rank(), mb_status_str(err), why);
	else if (mpi_world_is_root())
		printf("ep wrong_layout %.0f wrong_rows %.0f wrong_tokens %.0f rows %.0f copies %.0f "
		       "remote %.0f two_hop %.0f\n", v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
	comm_free(c);
	mpi_world_finalize();
	return err || v[0] + v[1] + v[2] > 0 ? 1 : 0;
}
