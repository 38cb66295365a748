/*
 * test_comm.c - the communicators in one process, in every build: element types and
 * reduction names, nccl-tests' sizes and bus-bandwidth factors of `moebench a2a
 * --collective`, the one-rank communicator (collectives are copies), and the driver's
 * collective cases on one rank. The multi-rank runs are in test_comm_mpi.c (mpirun).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "a2a.h"
#include "a2a_collective.h"
#include "check_main.h"
#include "comm.h"
#include "result.h"
#include "status.h"

static struct comm *world;

/* open_world opens the CPU world of a plain process (no launcher: one rank). */
static void open_world(void)
{
	char why[256] = "";
	unsetenv("OMPI_COMM_WORLD_SIZE");
	unsetenv("PMIX_RANK");
	ck_assert_msg(comm_world(NULL, 5.0, &world, why, sizeof(why)) == MB_OK, "%s", why);
}

/* close_world frees it. */
static void close_world(void)
{
	comm_free(world);
	world = NULL;
}

START_TEST(dtype_names_and_sizes)
{
	static const size_t sizes[] = { 1, 2, 4, 8, 4, 8 };
	static const char *const names[] = { "uint8", "bfloat16", "float", "double", "int32",
					     "int64" };
	for (int t = COMM_U8; t <= COMM_I64; t++) {
		ck_assert_uint_eq(comm_dtype_size((enum comm_dtype)t), sizes[t]);
		ck_assert_str_eq(comm_dtype_name((enum comm_dtype)t), names[t]);
	}
	ck_assert_str_eq(comm_redop_name(COMM_SUM), "sum");
	ck_assert_str_eq(comm_redop_name(COMM_MAX), "max");
	ck_assert_str_eq(comm_redop_name(COMM_MIN), "min");
	ck_assert_uint_eq(comm_dtype_size((enum comm_dtype)42), 0);
}
END_TEST

START_TEST(busbw_factors)
{
	ck_assert(a2a_coll_busbw_factor(A2A_ALLREDUCE, 1) == 0.0);
	ck_assert(a2a_coll_busbw_factor(A2A_ALLREDUCE, 4) == 1.5);
	ck_assert(a2a_coll_busbw_factor(A2A_ALLREDUCE, 8) == 1.75);
	ck_assert(a2a_coll_busbw_factor(A2A_ALLTOALL, 4) == 0.75);
	ck_assert(a2a_coll_busbw_factor(A2A_ALLGATHER, 2) == 0.5);
	ck_assert(a2a_coll_busbw_factor(A2A_REDUCESCATTER, 8) == 0.875);
	ck_assert(a2a_coll_busbw_factor(A2A_ALLGATHER, 1) == 0.0);
}
END_TEST

/* expect_shape asserts one sweep step's four integers. */
static void expect_shape(enum a2a_coll k, size_t bytes, enum comm_dtype t, int n, size_t size,
			 size_t count, size_t send, size_t recv)
{
	struct a2a_coll_shape s;
	a2a_coll_shape(k, bytes, t, n, &s);
	ck_assert_msg(s.size_bytes == size && s.count == count && s.send_elems == send &&
		      s.recv_elems == recv, "%s %zu B on %d: %zu %zu %zu %zu", a2a_coll_name(k),
		      bytes, n, s.size_bytes, s.count, s.send_elems, s.recv_elems);
}

/* nccl-tests' conventions (GetCollByteCount in src/all_gather.cu etc.): a step that does not divide
 * evenly loses the remainder, down to whole 16-byte chunks per rank; size(B) is the larger
 * buffer. */
START_TEST(sweep_shapes)
{
	expect_shape(A2A_ALLREDUCE, 1 << 20, COMM_F32, 4, 1 << 20, 1 << 18, 1 << 18, 1 << 18);
	expect_shape(A2A_ALLREDUCE, 10, COMM_F32, 4, 8, 2, 2, 2);
	expect_shape(A2A_ALLGATHER, 1 << 20, COMM_F32, 4, 1 << 20, 1 << 16, 1 << 16, 1 << 18);
	expect_shape(A2A_ALLGATHER, 100, COMM_F32, 3, 96, 8, 8, 24);
	expect_shape(A2A_REDUCESCATTER, 100, COMM_BF16, 3, 96, 16, 48, 16);
	expect_shape(A2A_ALLTOALL, 100, COMM_F64, 3, 96, 4, 12, 12);
	expect_shape(A2A_ALLTOALL, 8, COMM_F32, 4, 0, 0, 0, 0);
	/* the per-rank count in whole 16-byte chunks: 25/4 = 6 floats -> 4; 333 B -> 320 */
	expect_shape(A2A_ALLGATHER, 100, COMM_F32, 4, 64, 4, 4, 16);
	expect_shape(A2A_ALLTOALL, 1000, COMM_U8, 3, 960, 320, 960, 960);
	expect_shape(A2A_REDUCESCATTER, 1000, COMM_F64, 3, 960, 40, 120, 40);
	enum a2a_coll k;
	ck_assert_int_eq(a2a_coll_parse("reducescatter", &k), MB_OK);
	ck_assert_int_eq(k, A2A_REDUCESCATTER);
	ck_assert_int_eq(a2a_coll_parse("all_reduce", &k), MB_ERR_ARG);
}
END_TEST

START_TEST(single_rank_identity)
{
	char lib[64];
	ck_assert_int_eq(comm_rank(world), 0);
	ck_assert_int_eq(comm_size(world), 1);
	ck_assert(!comm_on_device(world));
	comm_library(world, lib, sizeof(lib));
	ck_assert_str_eq(lib, "single rank");
}
END_TEST

/* On one rank every collective returns its input: out of place and in place. */
START_TEST(single_rank_collectives_copy)
{
	float in[37], out[37];
	for (int i = 0; i < 37; i++)
		in[i] = (float)(i * 3 - 50), out[i] = NAN;
	ck_assert_int_eq(comm_allreduce(world, in, out, 37, COMM_F32, COMM_SUM), MB_OK);
	ck_assert_mem_eq(in, out, sizeof(in));
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(comm_reduce_scatter(world, in, out, 37, COMM_F32, COMM_MAX), MB_OK);
	ck_assert_mem_eq(in, out, sizeof(in));
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(comm_allgather(world, in, out, 37, COMM_F32), MB_OK);
	ck_assert_mem_eq(in, out, sizeof(in));
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(comm_alltoall(world, in, out, 37, COMM_F32), MB_OK);
	ck_assert_mem_eq(in, out, sizeof(in));
	ck_assert_int_eq(comm_allreduce(world, out, out, 37, COMM_F32, COMM_MIN), MB_OK);
	ck_assert_mem_eq(in, out, sizeof(in));
	ck_assert_int_eq(comm_barrier(world), MB_OK);
	ck_assert_int_eq(comm_sync(world), MB_OK);
}
END_TEST

/* alltoallv honours both displacements on one rank. */
START_TEST(single_rank_alltoallv_displacements)
{
	int32_t in[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, out[10] = { 0 };
	size_t sc = 4, sd = 3, rc = 4, rd = 5;
	ck_assert_int_eq(comm_alltoallv(world, in, &sc, &sd, out, &rc, &rd, COMM_I32), MB_OK);
	int32_t want[10] = { 0, 0, 0, 0, 0, 3, 4, 5, 6, 0 };
	ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

/* Counts that disagree with themselves end the run with one line (exit 1). */
START_TEST(single_rank_alltoallv_mismatch_aborts)
{
	int32_t in[4] = { 0 }, out[4];
	size_t sc = 4, rc = 3, zero = 0;
	comm_alltoallv(world, in, &sc, &zero, out, &rc, &zero, COMM_I32);
}
END_TEST

START_TEST(single_rank_p2p_split_helpers)
{
	double v[2] = { 1.5, -2.0 };
	long long mine[3] = { 7, 8, 9 }, all[3] = { 0 };
	struct comm *g = NULL;
	ck_assert_int_eq(comm_send(world, v, 1, COMM_F64, 0), MB_ERR_ARG);
	ck_assert_int_eq(comm_recv(world, v, 1, COMM_F64, 1), MB_ERR_ARG);
	ck_assert_int_eq(comm_split(world, -1, 0, &g), MB_OK);
	ck_assert_ptr_null(g);
	ck_assert_int_eq(comm_split(world, 3, 0, &g), MB_OK);
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(comm_size(g), 1);
	comm_set_name(g, "ep");
	comm_free(g);
	ck_assert_int_eq(comm_host_allreduce_f64(world, v, 2, COMM_MAX), MB_OK);
	ck_assert(v[0] == 1.5 && v[1] == -2.0);
	ck_assert_int_eq(comm_host_allgather_i64(world, mine, all, 3), MB_OK);
	ck_assert_mem_eq(mine, all, sizeof(all));
	ck_assert_int_eq(comm_allreduce(world, v, v, 1, (enum comm_dtype)9, COMM_SUM), MB_ERR_ARG);
}
END_TEST

START_TEST(memory_round_trip)
{
	unsigned char in[100], out[100] = { 0 };
	void *p = NULL;
	for (int i = 0; i < 100; i++)
		in[i] = (unsigned char)(i * 7);
	ck_assert_int_eq(comm_mem_alloc(world, sizeof(in), &p), MB_OK);
	ck_assert_int_eq(comm_mem_put(world, p, in, sizeof(in)), MB_OK);
	ck_assert_int_eq(comm_mem_get(world, out, p, sizeof(out)), MB_OK);
	ck_assert_mem_eq(in, out, sizeof(in));
	comm_mem_free(world, p);
}
END_TEST

static struct cli_common opts = { .warmup = 1, .iters = 3, .min_time = 0.0, .quiet = true };

/* run_sweep runs a2a_collective_run on one rank into a fresh document. */
static cJSON *run_sweep(const char *coll, enum comm_dtype t, size_t lo, size_t hi, int *failures)
{
	struct backend cpu = { .kind = BACKEND_CPU };
	cJSON *doc = result_new();
	struct run_ctx ctx = { .benchmark = "a2a", .backend = &cpu, .opts = &opts, .doc = doc };
	struct a2a_coll_opts o = { coll, lo, hi, 2.0, t, COMM_SUM, false };
	ck_assert_int_eq(a2a_collective_run(&ctx, world, &o), MB_OK);
	*failures = ctx.failures;
	return doc;
}

/* A sweep on one rank: one passing record per size, nccl-tests' columns. */
START_TEST(sweep_on_one_rank)
{
	int failures = -1;
	cJSON *doc = run_sweep("allreduce", COMM_BF16, 8, 1024, &failures);
	ck_assert_int_eq(failures, 0);
	cJSON *recs = cJSON_GetObjectItem(doc, "records");
	ck_assert_int_eq(cJSON_GetArraySize(recs), 8);  /* 8, 16, ... 1024 */
	cJSON *last = cJSON_GetArrayItem(recs, 7);
	ck_assert_str_eq(cJSON_GetObjectItem(last, "name")->valuestring, "allreduce/bfloat16/sum/1024B");
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "check"), "status")->valuestring,
			 "pass");
	cJSON *lines = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "summary"),
							       "a2a"), "lines");
	ck_assert_int_eq(cJSON_GetArraySize(lines), 8 + 3);
	ck_assert_ptr_nonnull(strstr(cJSON_GetArrayItem(lines, 1)->valuestring, "busbw(GB/s)"));
	ck_assert_ptr_nonnull(strstr(cJSON_GetArrayItem(lines, 9)->valuestring, "1024          512"));
	cJSON_Delete(doc);
}
END_TEST

/* A collective case whose check finds wrong elements is a failure (one rank). */
static int bad_check(void *state, struct bench_check *chk)
{
	(void)state;
	*chk = (struct bench_check){ 2.0, 0.0, 10, 3, "abs_err" };
	return MB_OK;
}

/* no_op is a repetition that does nothing. */
static int no_op(void *state)
{
	(void)state;
	return MB_OK;
}

START_TEST(wrong_result_counts_as_failure)
{
	struct backend cpu = { .kind = BACKEND_CPU };
	cJSON *doc = result_new();
	struct run_ctx ctx = { .benchmark = "a2a", .backend = &cpu, .opts = &opts, .doc = doc };
	struct bench_case c = { .name = "bad", .run = no_op, .check = bad_check, .comm = world,
				.peak = NAN };
	ck_assert_int_eq(driver_run_case(&ctx, &c), MB_OK);
	ck_assert_int_eq(ctx.failures, 1);
	cJSON *chk = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "records"), 0),
					 "check");
	ck_assert_int_eq(cJSON_GetObjectItem(chk, "mismatches")->valueint, 3);
	cJSON_Delete(doc);
}
END_TEST

static Suite *comm_suite(void)
{
	Suite *s = suite_create("comm");
	TCase *core = tcase_create("core");
	tcase_add_test(core, dtype_names_and_sizes);
	tcase_add_test(core, busbw_factors);
	tcase_add_test(core, sweep_shapes);
	TCase *one = tcase_create("single_rank");
	tcase_add_checked_fixture(one, open_world, close_world);
	tcase_add_test(one, single_rank_identity);
	tcase_add_test(one, single_rank_collectives_copy);
	tcase_add_test(one, single_rank_alltoallv_displacements);
	tcase_add_exit_test(one, single_rank_alltoallv_mismatch_aborts, 1);
	tcase_add_test(one, single_rank_p2p_split_helpers);
	tcase_add_test(one, memory_round_trip);
	tcase_add_test(one, sweep_on_one_rank);
	tcase_add_test(one, wrong_result_counts_as_failure);
	suite_add_tcase(s, core);
	suite_add_tcase(s, one);
	return s;
}

MB_CHECK_MAIN(comm_suite)
