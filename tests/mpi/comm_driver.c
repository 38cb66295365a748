/*
 * comm_driver.c - every operation of the CPU communicators (harness/parallel/comm.h) checked
 * against MPI's own collectives on fresh random data, for test_comm_mpi.c:
 *
 *   mpirun -np P --oversubscribe comm_driver check
 *   mpirun -np P --oversubscribe comm_driver hang OP [timeout_s]
 *   mpirun -np P --oversubscribe comm_driver sweep
 *
 * check: allreduce (sum, max, min; every type; in place), reduce_scatter, allgather,
 * alltoall, alltoallv with uneven per-peer counts including zeros (and under a wait
 * hook that tests the request in flight until it completes), send/recv around a
 * ring, barrier (nobody leaves before the last arrives), comm_split groups, the host
 * helpers and the node-local rank. Values are small integers, so every sum is exact
 * in every type and the results are compared byte for byte. Rank 0 prints
 * "comm_driver: N checks, F failed on P ranks" after one "FAIL ..." line per failure;
 * exit status 0 only when none failed.
 * hang: the last rank never joins OP (allreduce, alltoallv, barrier, split, or
 * group-allreduce: on a group in reverse rank order); the others must end the run
 * within the timeout with a line naming the operation, the waiting rank and the silent
 * one (its world rank and pid).
 * sweep: the driver's collective cases: `moebench a2a --collective` (a2a_collective_run)
 * for every collective in two types, exact on every rank; a case whose ranks take
 * different times records the slowest rank's, with the same repetitions everywhere; one
 * rank's wrong elements fail the case on every rank. Same summary line and exit status.
 */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "a2a.h"
#include "bf16.h"
#include "comm.h"
#include "mpi_world.h"
#include "result.h"
#include "status.h"
#include "timer.h"

static int checks, failures;
static unsigned seed;

/* expect counts one check; a failure prints what and where. */
static void expect(int ok, const char *what, int detail)
{
	checks++;
	if (ok)
		return;
	failures++;
	printf("FAIL rank %d: %s (%d)\n", mpi_world_rank(), what, detail);
}

/* small returns a random integer in [lo, hi]. */
static int small(int lo, int hi)
{
	return lo + (int)(rand_r(&seed) % (unsigned)(hi - lo + 1));
}

/* fill writes n random small integers of type t: in [0, 60] for uint8 (a sum over 4
 * ranks stays below 256), else in [-8, 8]. Also returns them as floats in f. */
static void fill(void *buf, float *f, size_t n, enum comm_dtype t)
{
	for (size_t i = 0; i < n; i++) {
		int v = t == COMM_U8 ? small(0, 60) : small(-8, 8);
		f[i] = (float)v;
		switch (t) {
		case COMM_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
		case COMM_BF16: ((uint16_t *)buf)[i] = bf16_from_float((float)v); break;
		case COMM_F32: ((float *)buf)[i] = (float)v; break;
		case COMM_F64: ((double *)buf)[i] = v; break;
		case COMM_I32: ((int32_t *)buf)[i] = v; break;
		case COMM_I64: ((int64_t *)buf)[i] = v; break;
		}
	}
}

/* mpi_of is MPI's type for t; BF16 is reduced as float and converted (bf16_of). */
static MPI_Datatype mpi_of(enum comm_dtype t)
{
	static const MPI_Datatype m[] = { MPI_UINT8_T, MPI_FLOAT, MPI_FLOAT, MPI_DOUBLE,
					  MPI_INT32_T, MPI_INT64_T };
	return m[t];
}

static MPI_Op mpi_op_of(enum comm_redop op)
{
	return op == COMM_SUM ? MPI_SUM : op == COMM_MAX ? MPI_MAX : MPI_MIN;
}

/* reference returns what MPI's buffer means in type t: BF16 from MPI's floats. */
static void *reference(void *mpi_buf, const float *f, size_t n, enum comm_dtype t)
{
	if (t != COMM_BF16)
		return mpi_buf;
	uint16_t *h = malloc(n * 2 + 2);
	for (size_t i = 0; i < n; i++)
		h[i] = bf16_from_float(f[i]);
	return h;
}

/* same_count makes every rank use rank 0's random count. */
static size_t same_count(int lo, int hi)
{
	int n = small(lo, hi);
	MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
	return (size_t)n;
}

/* check_allreduce: one type and reduction, out of place and in place. */
static void check_allreduce(struct comm *c, enum comm_dtype t, enum comm_redop op)
{
	size_t n = same_count(0, 300), w = comm_dtype_size(t);
	float *f = malloc(n * 4 + 4), *g = malloc(n * 4 + 4);
	char *in = malloc(n * w + 8), *out = malloc(n * w + 8), *ref = malloc(n * 8 + 8);
	fill(in, f, n, t);
	const void *src = t == COMM_BF16 ? (void *)f : (void *)in;
	MPI_Allreduce(src, t == COMM_BF16 ? (void *)g : (void *)ref, (int)n, mpi_of(t),
		      mpi_op_of(op), MPI_COMM_WORLD);
	void *want = reference(ref, g, n, t);
	expect(comm_allreduce(c, in, out, n, t, op) == MB_OK && !memcmp(out, want, n * w),
	       "allreduce out of place", (int)t);
	expect(comm_allreduce(c, in, in, n, t, op) == MB_OK && !memcmp(in, want, n * w),
	       "allreduce in place", (int)t);
	if (want != ref)
		free(want);
	free(f), free(g), free(in), free(out), free(ref);
}

/* check_reduce_scatter: each rank gets its block of the element-wise sum. */
static void check_reduce_scatter(struct comm *c, enum comm_dtype t)
{
	int p = comm_size(c);
	size_t n = same_count(1, 100), w = comm_dtype_size(t), all = n * (size_t)p;
	float *f = malloc(all * 4), *g = malloc(n * 4);
	char *in = malloc(all * w), *out = malloc(n * w), *ref = malloc(n * w);
	fill(in, f, n * (size_t)p, t);
	MPI_Reduce_scatter_block(t == COMM_BF16 ? (void *)f : (void *)in,
				 t == COMM_BF16 ? (void *)g : (void *)ref, (int)n, mpi_of(t),
				 MPI_SUM, MPI_COMM_WORLD);
	void *want = reference(ref, g, n, t);
	expect(comm_reduce_scatter(c, in, out, n, t, COMM_SUM) == MB_OK &&
	       !memcmp(out, want, n * w), "reduce_scatter", (int)t);
	if (want != ref)
		free(want);
	free(f), free(g), free(in), free(out), free(ref);
}

/* check_gather_exchange: allgather and alltoall of a random count, against MPI's. */
static void check_gather_exchange(struct comm *c, enum comm_dtype t)
{
	size_t p = (size_t)comm_size(c), n = same_count(0, 200), w = comm_dtype_size(t);
	float *f = malloc(n * p * 4 + 4);
	char *in = malloc(n * p * w + 8), *out = malloc(n * p * w + 8), *ref = malloc(n * p * w + 8);
	fill(in, f, n * p, t);
	MPI_Datatype b = MPI_BYTE;
	MPI_Allgather(in, (int)(n * w), b, ref, (int)(n * w), b, MPI_COMM_WORLD);
	expect(comm_allgather(c, in, out, n, t) == MB_OK && !memcmp(out, ref, n * p * w),
	       "allgather", (int)t);
	MPI_Alltoall(in, (int)(n * w), b, ref, (int)(n * w), b, MPI_COMM_WORLD);
	expect(comm_alltoall(c, in, out, n, t) == MB_OK && !memcmp(out, ref, n * p * w),
	       "alltoall", (int)t);
	free(f), free(in), free(out), free(ref);
}

/* pair_count is how many elements rank s sends rank r this round: 0 to 5, about a
 * third of them zero, the same formula on every rank. */
static int pair_count(unsigned round, int s, int r)
{
	unsigned h = round * 2654435761u ^ (unsigned)(s * 31 + r * 17 + 7) * 40503u;
	int k = (int)(h % 9u);
	return k < 3 ? 0 : k - 3;
}

/* check_alltoallv: uneven counts with zeros, gaps between blocks, against MPI's. */
static void check_alltoallv(struct comm *c, unsigned round)
{
	int p = comm_size(c), me = comm_rank(c);
	size_t sc[64], sd[64], rc[64], rd[64], st = 0, rt = 0;
	int isc[64], isd[64], irc[64], ird[64];
	for (int q = 0; q < p; q++) {
		sc[q] = (size_t)pair_count(round, me, q), rc[q] = (size_t)pair_count(round, q, me);
		sd[q] = st, rd[q] = rt + 1;  /* one element gap before each received block */
		st += sc[q], rt += rc[q] + 1;
		isc[q] = (int)sc[q], isd[q] = (int)sd[q], irc[q] = (int)rc[q], ird[q] = (int)rd[q];
	}
	float *f = malloc(st * 4 + 4);
	int32_t *in = malloc(st * 4 + 4), *out = calloc(rt + 1, 4), *ref = calloc(rt + 1, 4);
	fill(in, f, st, COMM_I32);
	MPI_Alltoallv(in, isc, isd, MPI_INT32_T, ref, irc, ird, MPI_INT32_T, MPI_COMM_WORLD);
	expect(comm_alltoallv(c, in, sc, sd, out, rc, rd, COMM_I32) == MB_OK &&
	       !memcmp(out, ref, rt * 4), "alltoallv", (int)round);
	free(f), free(in), free(out), free(ref);
}

/* A wait hook's record: its calls, and whether the request it was handed completed. */
struct hook_seen {
	int calls, done;
};

/* hook_poll is a wait hook that tests the posted request until it completes (the work
 * the training step's overlap does between posting and waiting). */
static void hook_poll(void *ctx, struct comm_req *r)
{
	struct hook_seen *h = ctx;
	double end = timer_now() + 10;
	h->calls++;
	while (!h->done && timer_now() < end)
		h->done = comm_req_test(r);
}

/* check_wait_hook: the hook runs once per operation with the request in flight, sees it
 * complete by testing it, the result is MPI's, and a removed hook is not called. */
static void check_wait_hook(struct comm *c)
{
	struct hook_seen h = { 0, 0 };
	comm_set_wait_hook(c, hook_poll, &h);
	check_alltoallv(c, 3);
	expect(h.calls == 1 && h.done, "wait hook once, its request completed by tests",
	       h.calls);
	comm_set_wait_hook(c, NULL, NULL);
	check_alltoallv(c, 4);
	expect(h.calls == 1, "a removed wait hook is not called", h.calls);
}

/* check_ring sends a random block to the next rank, receives from the previous one:
 * rank 0 sends first, the others receive first, so no two wait on each other. */
static void check_ring(struct comm *c)
{
	int p = comm_size(c), me = comm_rank(c), next = (me + 1) % p, prev = (me + p - 1) % p;
	size_t n = same_count(1, 20000);
	float *f = malloc(n * 4);
	double *mine = malloc(n * 8), *got = malloc(n * 8), *ref = malloc(n * 8);
	fill(mine, f, n, COMM_F64);
	MPI_Sendrecv(mine, (int)n, MPI_DOUBLE, next, 99, ref, (int)n, MPI_DOUBLE, prev, 99,
		     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	int err = MB_OK;
	if (me == 0)
		err = comm_send(c, mine, n, COMM_F64, next);
	if (!err)
		err = comm_recv(c, got, n, COMM_F64, prev);
	if (!err && me != 0)
		err = comm_send(c, mine, n, COMM_F64, next);
	expect(!err && !memcmp(got, ref, n * 8), "send/recv ring", (int)n);
	expect(comm_send(c, mine, 1, COMM_F64, me) == MB_ERR_ARG, "send to self refused", me);
	free(f), free(mine), free(got), free(ref);
}

/* check_barrier: ranks arrive at staggered times; nobody may leave before the last
 * arrival (one node, one CLOCK_MONOTONIC for all ranks). */
static void check_barrier(struct comm *c)
{
	double t[2], all[128];
	struct timespec nap = { 0, 20000000L * comm_rank(c) };
	nanosleep(&nap, NULL);
	t[0] = timer_now();
	int err = comm_barrier(c);
	t[1] = timer_now();
	MPI_Allgather(t, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, MPI_COMM_WORLD);
	double last_in = 0, first_out = 1e300;
	for (int q = 0; q < comm_size(c); q++) {
		last_in = all[2 * q] > last_in ? all[2 * q] : last_in;
		first_out = all[2 * q + 1] < first_out ? all[2 * q + 1] : first_out;
	}
	expect(!err && first_out >= last_in, "barrier: a rank left before the last arrived", 0);
}

/* check_split: groups by parity in reverse rank order, as MPI_Comm_split makes them;
 * a sum over each group; the last rank in no group. */
static void check_split(struct comm *c)
{
	int me = comm_rank(c), p = comm_size(c), color = me == p - 1 && p > 2 ? -1 : me % 2;
	struct comm *g = NULL;
	MPI_Comm ref;
	MPI_Comm_split(MPI_COMM_WORLD, color < 0 ? MPI_UNDEFINED : color, -me, &ref);
	int err = comm_split(c, color, -me, &g);
	expect(!err && (g == NULL) == (ref == MPI_COMM_NULL), "split membership", color);
	if (!g || ref == MPI_COMM_NULL)
		return;
	int r = 0, s = 0;
	MPI_Comm_rank(ref, &r);
	MPI_Comm_size(ref, &s);
	expect(comm_rank(g) == r && comm_size(g) == s, "split rank and size", comm_rank(g));
	int64_t v = me, sum = -1, want = 0;
	MPI_Allreduce(&v, &want, 1, MPI_INT64_T, MPI_SUM, ref);
	expect(comm_allreduce(g, &v, &sum, 1, COMM_I64, COMM_SUM) == MB_OK && sum == want,
	       "allreduce on a split group", (int)sum);
	comm_free(g);
	MPI_Comm_free(&ref);
}

/* check_helpers: the host helpers, the library's name, the node-local rank. */
static void check_helpers(struct comm *c)
{
	int p = comm_size(c), me = comm_rank(c);
	double v[2] = { me + 0.5, -me }, mx[2];
	long long mine[2] = { 10LL * me, 1LL << 40 }, all[256];
	char lib[128];
	MPI_Allreduce(v, mx, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
	expect(comm_host_allreduce_f64(c, v, 2, COMM_MAX) == MB_OK && !memcmp(v, mx, sizeof(v)),
	       "host allreduce max", 0);
	expect(comm_host_allgather_i64(c, mine, all, 2) == MB_OK && all[2 * (p - 1)] ==
	       10LL * (p - 1) && all[1] == 1LL << 40, "host allgather", 0);
	comm_library(c, lib, sizeof(lib));
	expect(!strncmp(lib, "MPI ", 4) && !comm_on_device(c), "library is MPI, host memory", 0);
	expect(mpi_world_local_rank() == me && mpi_world_local_size() == p,
	       "node-local rank on one node", mpi_world_local_rank());
}

/* run_checks runs every check; returns the failures over all ranks. */
static int run_checks(struct comm *c)
{
	static const enum comm_dtype types[] = { COMM_U8, COMM_BF16, COMM_F32, COMM_F64,
						 COMM_I32, COMM_I64 };
	for (int k = 0; k < 6; k++)
		for (int op = COMM_SUM; op <= COMM_MIN; op++)
			check_allreduce(c, types[k], (enum comm_redop)op);
	for (int k = 0; k < 6; k++) {
		check_reduce_scatter(c, types[k]);
		check_gather_exchange(c, types[k]);
	}
	for (unsigned round = 0; round < 8; round++)
		check_alltoallv(c, round);
	check_wait_hook(c);
	check_ring(c);
	check_barrier(c);
	check_split(c);
	check_helpers(c);
	int total = 0;
	MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (mpi_world_is_root())
		printf("comm_driver: %d checks, %d failed on %d ranks\n", checks, total,
		       comm_size(c));
	return total;
}

static struct cli_common opts = { .warmup = 1, .iters = 4, .min_time = 0.0, .quiet = true };

/* record_number reads rec[a][b] (or rec[a] when b is NULL) as a number, NaN if absent. */
static double record_number(const cJSON *rec, const char *a, const char *b, const char *c)
{
	const cJSON *x = cJSON_GetObjectItem(rec, a);
	if (b)
		x = cJSON_GetObjectItem(x, b);
	if (c)
		x = cJSON_GetObjectItem(x, c);
	return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* check_sweeps runs every collective's sweep and expects every size to pass. */
static void check_sweeps(struct comm *c, struct run_ctx *ctx)
{
	static const char *const colls[] = { "alltoall", "allreduce", "allgather",
					     "reducescatter" };
	for (int k = 0; k < 4; k++)
		for (int t = 0; t < 2; t++) {
			struct a2a_coll_opts o = { colls[k], 8, 64 << 10, 4.0,
						   t ? COMM_BF16 : COMM_F32, t ? COMM_MAX : COMM_SUM,
						   false };
			int before = ctx->failures;
			expect(a2a_collective_run(ctx, c, &o) == MB_OK && ctx->failures == before,
			       colls[k], t);
			if (mpi_world_is_root() && k == 1 && t == 0) {
				const cJSON *l, *lines = cJSON_GetObjectItem(cJSON_GetObjectItem(
					cJSON_GetObjectItem(ctx->doc, "summary"), "a2a"), "lines");
				cJSON_ArrayForEach(l, lines)
					printf("%s\n", l->valuestring);
			}
		}
}

/* A case whose ranks take different times: sleep naps x 2 ms, report wrong elements. */
struct skew {
	int naps;
	long wrong;
};

/* skew_run naps the rank's share. */
static int skew_run(void *state)
{
	const struct skew *k = state;
	struct timespec nap = { 0, 2000000L * k->naps };
	nanosleep(&nap, NULL);
	return MB_OK;
}

/* skew_check reports the rank's wrong elements. */
static int skew_check(void *state, struct bench_check *chk)
{
	const struct skew *k = state;
	*chk = (struct bench_check){ 0.0, 0.0, 10, k->wrong, "abs_err" };
	return MB_OK;
}

/* last_record is the record driver_run_case appended last. */
static const cJSON *last_record(const struct run_ctx *ctx)
{
	const cJSON *recs = cJSON_GetObjectItem(ctx->doc, "records");
	return cJSON_GetArrayItem(recs, cJSON_GetArraySize(recs) - 1);
}

/* check_driver_agreement: rank 1's wrong elements fail the case on every rank; with
 * rank r taking r x 2 ms, every rank records the slowest rank's time, and all ranks ran
 * the same number of repetitions. */
static void check_driver_agreement(struct comm *c, struct run_ctx *ctx)
{
	int me = comm_rank(c), p = comm_size(c);
	struct skew k = { 0, me == 1 ? 3 : 0 };
	struct bench_case bc = { .name = "wrong", .run = skew_run, .check = skew_check,
				 .state = &k, .peak = NAN, .comm = c };
	int before = ctx->failures;
	expect(driver_run_case(ctx, &bc) == MB_OK && ctx->failures == before + 1,
	       "a wrong element on one rank fails the case everywhere", ctx->failures - before);
	expect(record_number(last_record(ctx), "check", "mismatches", NULL) == (p > 1 ? 3 : 0),
	       "mismatches summed over ranks", me);
	k = (struct skew){ me, 0 };
	bc = (struct bench_case){ .name = "skew", .run = skew_run, .check = skew_check,
				  .state = &k, .peak = NAN, .comm = c };
	expect(driver_run_case(ctx, &bc) == MB_OK, "skewed case runs", me);
	double med = record_number(last_record(ctx), "metrics", "time_s", "median");
	double n = record_number(last_record(ctx), "metrics", "time_s", "n"), all_n[128];
	expect(med >= 2e-3 * (p - 1), "time is the slowest rank's", (int)(1e6 * med));
	MPI_Allgather(&n, 1, MPI_DOUBLE, all_n, 1, MPI_DOUBLE, MPI_COMM_WORLD);
	for (int q = 0; q < p; q++)
		expect(all_n[q] == n && n >= 4, "same repetitions on every rank", (int)all_n[q]);
}

/* run_sweep_checks: the driver's collective cases; returns the failures over ranks. */
static int run_sweep_checks(struct comm *c)
{
	struct backend cpu = { .kind = BACKEND_CPU };
	struct run_ctx ctx = { .benchmark = "a2a", .backend = &cpu, .opts = &opts,
			       .doc = result_new() };
	check_sweeps(c, &ctx);
	check_driver_agreement(c, &ctx);
	cJSON_Delete(ctx.doc);
	int total = 0;
	MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (mpi_world_is_root())
		printf("comm_driver: %d checks, %d failed on %d ranks\n", checks, total, comm_size(c));
	return total;
}

/* hang: the last rank skips op and sleeps; the others must be ended by the timeout.
 * group-allreduce: an allreduce on a group of every rank in reverse order, so that the
 * silent one is rank 0 of the group and the last of the world. */
static void hang(struct comm *c, const char *op)
{
	int32_t v = 1, w = 0;
	size_t one[64], zero[64] = { 0 };
	struct comm *g = NULL;
	for (int q = 0; q < 64; q++)
		one[q] = 1;
	if (!strcmp(op, "group-allreduce")) {
		comm_split(c, 0, comm_size(c) - 1 - comm_rank(c), &g);
		c = g;
	}
	if (comm_rank(c) == 0 && g) {
		sleep(30);
		return;
	}
	if (!g && comm_rank(c) == comm_size(c) - 1) {
		sleep(30);
		return;
	}
	if (!strcmp(op, "allreduce") || !strcmp(op, "group-allreduce"))
		comm_allreduce(c, &v, &w, 1, COMM_I32, COMM_SUM);
	else if (!strcmp(op, "alltoallv"))
		comm_alltoallv(c, &v, one, zero, &w, one, zero, COMM_I32);
	else if (!strcmp(op, "barrier"))
		comm_barrier(c);
	else
		comm_split(c, 0, 0, &g);
	printf("rank %d: %s returned though a rank never joined\n", comm_rank(c), op);
}

int main(int argc, char **argv)
{
	struct comm *c = NULL;
	char why[256];
	if (mpi_world_init(&argc, &argv) || argc < 2) {
		fprintf(stderr, "usage: comm_driver check | sweep | hang OP [timeout_s]\n");
		return 2;
	}
	double timeout = argc > 3 ? atof(argv[3]) : 20.0;
	if (comm_world(NULL, timeout, &c, why, sizeof(why))) {
		fprintf(stderr, "comm_driver: %s\n", why);
		return 1;
	}
	seed = (unsigned)time(NULL) * 7919u + 131u * (unsigned)mpi_world_rank();
	int bad = 1;
	if (!strcmp(argv[1], "check"))
		bad = run_checks(c);
	else if (!strcmp(argv[1], "sweep"))
		bad = run_sweep_checks(c);
	else if (argc > 2 && !strcmp(argv[1], "hang"))
		hang(c, argv[2]);
	comm_free(c);
	mpi_world_finalize();
	return bad ? 1 : 0;
}
