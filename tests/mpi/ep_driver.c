/*
 * ep_driver.c - one dispatch/combine round trip on every MPI rank, for test_ep_mpi.c:
 *
 *   mpirun -np R --oversubscribe ep_driver TOKENS HIDDEN EXPERTS TOPK RANKS_PER_NODE
 *          bf16|fp8|f64 ZIPF [corrupt|badexpert]
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
 * f64: the training step's rows (ep_rows.c) instead, FP64 values a function of (rank,
 * token, column): identity experts combined with the weights must give x * sum(weights)
 * within 1e-12 relative (wrong_tokens), and each row's weight put at its top-k position
 * of a K-wide row and combined unweighted must give back every token's weights exactly
 * (wrong_rows: the tables of weights and positions); corrupt adds 1 to the first row.
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
	bool rows;     /* f64: the training step's rows */
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

/* value is the FP64 payload of (rank, token, column): nonzero, of varied magnitude. */
static double value(int rank, long t, int c)
{
	return (1 + rank) * 0.25 + (double)((t * 131 + c * 17) % 97) / 53.0 - 0.9;
}

/* rows_check counts the tokens whose combine of identity experts is off x * sum(w)
 * (wrong[0]) and whose weights do not come back through the K-wide rows (wrong[1]). */
static int rows_check(struct ep *ep, const struct args *a, int rank, const float *w,
		      const double *xe, long rows, long wrong[2])
{
	const float *rw;
	const int32_t *pos;
	size_t T = (size_t)a->tokens, H = (size_t)a->hidden, K = (size_t)a->topk;
	double *out = malloc(T * H * sizeof(double) + 8), *vec = calloc((size_t)rows * K + 1, 8);
	double *back = malloc(T * K * sizeof(double) + 8);
	int err = out && vec && back ? ep_rows_combine(ep, xe, a->hidden, 8, EP_WIRE_SAME, true, out)
				     : MB_ERR_NOMEM;
	ep_rows_tables(ep, &rw, &pos);
	for (long r = 0; !err && r < rows; r++)
		vec[(size_t)r * K + (size_t)pos[r]] = rw[r];
	if (!err)
		err = ep_rows_combine(ep, vec, a->topk, 8, EP_WIRE_SAME, false, back);
	for (size_t t = 0; !err && t < T; t++) {
		double sw = 0, bad = 0;
		for (size_t k = 0; k < K; k++)
			sw += w[t * K + k], wrong[1] += back[t * K + k] != (double)w[t * K + k];
		for (size_t c = 0; c < H; c++) {
			double want = value(rank, (long)t, (int)c) * sw, got = out[t * H + c];
			bad += (got - want) * (got - want) > 1e-24 * (want * want + 1e-30);
		}
		wrong[0] += bad > 0;
	}
	free(out);
	free(vec);
	free(back);
	return err;
}

/* rows_trip is round_trip for the training step's FP64 rows (ep_rows.c). */
static int rows_trip(struct comm *c, const struct args *a, double v[7])
{
	struct ep_config cfg = { a->hidden, a->experts, a->topk, a->rpn, PERMUTE_BF16 };
	struct ep *ep = NULL;
	size_t T = (size_t)a->tokens, H = (size_t)a->hidden;
	int32_t *idx = malloc(T * (size_t)a->topk * 4);
	float *w = malloc(T * (size_t)a->topk * 4);
	double *x = malloc(T * H * sizeof(double)), *xe = NULL;
	long wl = 0, rows = 0, wrong[2] = { 0, 0 };
	int err = idx && w && x ? route_tokens(a, comm_rank(c), idx, w) : MB_ERR_NOMEM;
	for (size_t i = 0; !err && i < T * H; i++)
		x[i] = value(comm_rank(c), (long)(i / H), (int)(i % H));
	if (!err)
		err = ep_create(c, &cfg, NULL, &ep);
	if (!err)
		err = ep_layout(ep, idx, w, a->tokens);
	if (!err)
		err = ep_check_layout(ep, &wl);
	for (int e = 0; !err && e < ep_experts(ep)->experts; e++)
		rows += ep_experts(ep)->rows[e];
	if (!err && !(xe = malloc(((size_t)rows + 1) * H * sizeof(double))))
		err = MB_ERR_NOMEM;
	if (!err)
		err = ep_rows_dispatch(ep, x, a->hidden, 8, EP_WIRE_SAME, xe, &rows, NULL);
	if (!err && a->corrupt && rows > 0 && comm_rank(c) == comm_size(c) - 1)
		xe[0] += 1;
	if (!err)
		err = rows_check(ep, a, comm_rank(c), w, xe, rows, wrong);
	double mine[7] = { (double)wl / comm_size(c), (double)wrong[1], (double)wrong[0],
			   (double)rows, 0, 0, ep && ep_two_hop(ep) ? 1.0 / comm_size(c) : 0 };
	memcpy(v, mine, sizeof(mine));
	if (!err)
		err = comm_host_allreduce_f64(c, v, 7, COMM_SUM);
	ep_free(ep);
	free(idx);
	free(w);
	free(x);
	free(xe);
	return err;
}

/* parse reads the arguments; returns false on a bad command line. */
static bool parse(int argc, char **argv, struct args *a)
{
	if (argc < 8)
		return false;
	*a = (struct args){ atol(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
			    atoi(argv[5]), strcmp(argv[6], "fp8") ? PERMUTE_BF16 : PERMUTE_FP8,
			    strcmp(argv[6], "f64") == 0, atof(argv[7]), argc > 8 && strcmp(argv[8], "corrupt") == 0,
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
		fprintf(stderr, "usage: ep_driver TOKENS HIDDEN EXPERTS TOPK RPN bf16|fp8|f64 ZIPF "
			"[corrupt|badexpert]\n");
		mpi_world_finalize();
		return 2;
	}
	a.tokens += 7L * mpi_world_rank();
	int err = comm_world(&b, 30.0, &c, why, sizeof(why));
	if (!err)
		err = a.rows ? rows_trip(c, &a, v) : round_trip(c, &a, v);
	if (err)
		fprintf(stderr, "ep_driver: rank %d: %s %s\n", mpi_world_rank(), mb_status_str(err), why);
	else if (mpi_world_is_root())
		printf("ep wrong_layout %.0f wrong_rows %.0f wrong_tokens %.0f rows %.0f copies %.0f "
		       "remote %.0f two_hop %.0f\n", v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
	comm_free(c);
	mpi_world_finalize();
	return err || v[0] + v[1] + v[2] > 0 ? 1 : 0;
}
