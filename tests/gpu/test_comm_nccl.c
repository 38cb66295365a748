/*
 * test_comm_nccl.c - the CUDA backend's communicator on one rank (NCCL with a single
 * rank, device buffers, the suite's stream): identity, collectives that return their
 * input, all-to-all-v with displacements, and `moebench a2a --collective` sweeps of
 * every collective checked exactly. Built without NCCL, the world must be refused.
 * Exits 77 (skipped) without a device. Multi-rank NCCL needs one GPU per rank: run
 * `mpirun -np N moebench a2a --collective ...` on such a machine.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "a2a.h"
#include "build_info.h"
#include "comm.h"
#include "gpu_main.h"
#include "result.h"

static struct backend b;
static struct comm *world;

/* open_world opens the CUDA world of a plain process on device 0 and the suite's
 * stream (no launcher: one rank). */
static void open_world(void)
{
	struct device_info devs[4];
	char why[256] = "";
	int n = 0;
	ck_assert_int_eq(backend_cuda_devices(devs, 4, &n, why, sizeof(why)), MB_OK);
	b = (struct backend){ .kind = BACKEND_CUDA, .dev = devs[0], .stream = stream };
	int err = comm_world(&b, 10.0, &world, why, sizeof(why));
	if (!MOEBENCH_HAVE_NCCL) {
		ck_assert_int_eq(err, MB_ERR_UNSUPPORTED);
		ck_assert_ptr_nonnull(strstr(why, "NCCL"));
		return;
	}
	ck_assert_msg(err == MB_OK, "%s", why);
}

/* close_world frees it. */
static void close_world(void)
{
	comm_free(world);
	world = NULL;
}

START_TEST(identity_on_device)
{
	char lib[64];
	if (!world)
		return;
	ck_assert(comm_on_device(world));
	ck_assert_int_eq(comm_size(world), 1);
	comm_library(world, lib, sizeof(lib));
	ck_assert_msg(!strncmp(lib, "NCCL 2.", 7), "library '%s'", lib);
}
END_TEST

/* One rank: allreduce and alltoallv on device buffers return the input. */
START_TEST(collectives_on_device)
{
	int32_t in[64], out[64], want[64] = { 0 };
	void *d_in = NULL, *d_out = NULL;
	size_t sc = 40, sd = 10, rc = 40, rd = 20;
	if (!world)
		return;
	for (int i = 0; i < 64; i++)
		in[i] = i * 5 - 100;
	ck_assert_int_eq(comm_mem_alloc(world, sizeof(in), &d_in), MB_OK);
	ck_assert_int_eq(comm_mem_alloc(world, sizeof(out), &d_out), MB_OK);
	ck_assert_int_eq(comm_mem_put(world, d_in, in, sizeof(in)), MB_OK);
	ck_assert_int_eq(comm_allreduce(world, d_in, d_out, 64, COMM_I32, COMM_SUM), MB_OK);
	ck_assert_int_eq(comm_sync(world), MB_OK);
	ck_assert_int_eq(comm_mem_get(world, out, d_out, sizeof(out)), MB_OK);
	ck_assert_mem_eq(in, out, sizeof(in));
	ck_assert_int_eq(comm_mem_put(world, d_out, want, sizeof(want)), MB_OK);
	ck_assert_int_eq(comm_alltoallv(world, d_in, &sc, &sd, d_out, &rc, &rd, COMM_I32), MB_OK);
	ck_assert_int_eq(comm_mem_get(world, out, d_out, sizeof(out)), MB_OK);
	memcpy(want + 20, in + 10, 40 * sizeof(int32_t));
	ck_assert_mem_eq(out, want, sizeof(want));
	comm_mem_free(world, d_in);
	comm_mem_free(world, d_out);
}
END_TEST

/* Every collective's sweep, checked exactly, timed with events. */
START_TEST(sweeps_on_device)
{
	static const char *const colls[] = { "alltoall", "allreduce", "allgather",
					     "reducescatter" };
	struct cli_common opts = { .warmup = 1, .iters = 3, .min_time = 0.0, .quiet = true };
	if (!world)
		return;
	for (int k = 0; k < 4; k++) {
		cJSON *doc = result_new();
		struct run_ctx ctx = { .benchmark = "a2a", .backend = &b, .opts = &opts, .doc = doc };
		struct a2a_coll_opts o = { colls[k], 8, 1 << 20, 8.0, COMM_BF16, COMM_SUM, false };
		ck_assert_int_eq(a2a_collective_run(&ctx, world, &o), MB_OK);
		ck_assert_msg(ctx.failures == 0, "%s: %d sizes wrong", colls[k], ctx.failures);
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "records")), 6);  /* 8 B to 256 KiB */
		cJSON_Delete(doc);
	}
}
END_TEST

static Suite *comm_nccl_suite(void)
{
	Suite *s = suite_create("comm_nccl");
	TCase *one = tcase_create("core");
	tcase_add_checked_fixture(one, open_world, close_world);
	tcase_set_timeout(one, 120);
	tcase_add_test(one, identity_on_device);
	tcase_add_test(one, collectives_on_device);
	tcase_add_test(one, sweeps_on_device);
	suite_add_tcase(s, one);
	return s;
}

int main(void)
{
	return gpu_main(comm_nccl_suite);
}
