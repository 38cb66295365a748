/*
 * test_mpi_world.c - the single-process side of the MPI world and the pipeline
 * executor, in every build: launcher detection from the environment, a plain run that
 * stays one rank without touching MPI, the executor's program checks and its work.
 * The multi-rank runs are in test_pipeline_mpi.c (mpirun).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "check_main.h"
#include "mpi_world.h"
#include "pipeline_exec_impl.h"
#include "status.h"

static const char *const vars[] = {
	"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS",
	"MV2_COMM_WORLD_SIZE", "SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS",
};

/* clear_launcher removes every launcher variable: the test process starts plain. */
static void clear_launcher(void)
{
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

START_TEST(launcher_from_environment)
{
	clear_launcher();
	ck_assert(!mpi_world_launched());
	setenv(vars[_i], "4", 1);
	ck_assert_msg(mpi_world_launched(), "%s=4 is not a launch", vars[_i]);
	setenv(vars[_i], "", 1);
	ck_assert(!mpi_world_launched());
}
END_TEST

START_TEST(slurm_step_counts_with_several_tasks)
{
	clear_launcher();
	setenv("SLURM_STEP_ID", "0", 1);
	setenv("SLURM_STEP_NUM_TASKS", "1", 1);
	ck_assert(!mpi_world_launched());
	setenv("SLURM_STEP_NUM_TASKS", "4", 1);
	ck_assert(mpi_world_launched());
	unsetenv("SLURM_STEP_ID");
	ck_assert(!mpi_world_launched());
}
END_TEST

/* A plain run is rank 0 of 1, MPI untouched, and the executor says it cannot run. */
START_TEST(plain_run_is_one_rank)
{
	int argc = 1;
	char arg0[] = "moebench", *args[] = { arg0, NULL }, **argv = args;
	struct pipe_exec_program p = { 0, 0, NULL };
	struct pipe_exec_opts o = { 8, 8, 64, 1, 1.0, NULL };
	struct pipe_exec_result r;
	clear_launcher();
	ck_assert_int_eq(mpi_world_init(&argc, &argv), MB_OK);
	ck_assert(!mpi_world_active());
	ck_assert_int_eq(mpi_world_rank(), 0);
	ck_assert_int_eq(mpi_world_size(), 1);
	ck_assert(mpi_world_is_root());
	ck_assert_int_eq(pipe_execute(&p, &o, &r), MB_ERR_UNSUPPORTED);
	ck_assert_ptr_null(r.events);
	mpi_world_finalize();
}
END_TEST

/* ops writes a valid two-op program for rank 1 of 2 into p. */
static void two_ops(struct pipe_exec_program *p, struct pipe_exec_op *ops)
{
	ops[0] = (struct pipe_exec_op){ .kind = 'F', .mb = 0, .mb2 = -1, .n_recv = 1,
					.recv = { { 0, 0 } }, .work = 1.0 };
	ops[1] = (struct pipe_exec_op){ .kind = 'B', .mb = 0, .mb2 = -1, .n_send = 1,
					.send = { { 0, 1 } }, .work = 1.5 };
	*p = (struct pipe_exec_program){ 1, 2, ops };
}

START_TEST(bad_programs_rejected)
{
	struct pipe_exec_op ops[2];
	struct pipe_exec_program p;
	struct pipe_exec_opts o = { 8, 8, 64, 1, 1.0, NULL };
	char why[256];
	two_ops(&p, ops);
	ck_assert_int_eq(pipe_exec_check(&p, &o, 1, 2, 32767, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(pipe_exec_check(&p, &o, 0, 2, 32767, why, sizeof(why)), MB_ERR_ARG);
	ops[1].send[0].peer = 2;
	ck_assert_int_eq(pipe_exec_check(&p, &o, 1, 2, 32767, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_str_eq(why, "op 1: send peer rank 2 is not one of the 2 ranks");
	two_ops(&p, ops);
	ops[0].recv[0].tag = 40000;
	ck_assert_int_eq(pipe_exec_check(&p, &o, 1, 2, 32767, why, sizeof(why)), MB_ERR_ARG);
	two_ops(&p, ops);
	ops[0].kind = 'Z';
	ck_assert_int_eq(pipe_exec_check(&p, &o, 1, 2, 32767, why, sizeof(why)), MB_ERR_ARG);
	two_ops(&p, ops);
	ops[1].n_send = 3;
	ck_assert_int_eq(pipe_exec_check(&p, &o, 1, 2, 32767, why, sizeof(why)), MB_ERR_ARG);
	two_ops(&p, ops);
	ops[1].work = NAN;
	ck_assert_int_eq(pipe_exec_check(&p, &o, 1, 2, 32767, why, sizeof(why)), MB_ERR_ARG);
	two_ops(&p, ops);
	o.timeout_s = 0.0;
	ck_assert_int_eq(pipe_exec_check(&p, &o, 1, 2, 32767, why, sizeof(why)), MB_ERR_ARG);
}
END_TEST

/* The work is real: a unit changes the activation, a message round-trips through it,
 * and a long chain keeps unit RMS (neither overflow nor denormals). */
START_TEST(work_is_a_stable_gemm_chain)
{
	struct pipe_work w;
	float msg[40], back[40];
	ck_assert_int_eq(pipe_work_init(&w, 5, 8, 7), MB_OK);
	pipe_work_store(&w, msg, 40);
	pipe_work_gemm(&w, 1.0);
	pipe_work_store(&w, back, 40);
	ck_assert(back[0] != msg[0] && back[39] != msg[39]);
	pipe_work_load(&w, msg, 40, false);
	pipe_work_store(&w, back, 40);
	ck_assert_float_eq(back[17], msg[17]);
	pipe_work_gemm(&w, 0.4);           /* 2 of 5 rows */
	pipe_work_store(&w, back, 40);
	ck_assert(back[0] != msg[0]);
	ck_assert_float_eq(back[39], msg[39]);
	for (int i = 0; i < 2000; i++)
		pipe_work_gemm(&w, 1.0);
	pipe_work_store(&w, back, 40);
	double ss = 0.0;
	for (int i = 0; i < 40; i++)
		ss += (double)back[i] * back[i];
	ck_assert_msg(fabs(ss / 40 - 1.0) < 1e-3, "mean square %g after 2000 units", ss / 40);
	pipe_work_free(&w);
}
END_TEST

static Suite *mpi_world_suite(void)
{
	Suite *s = suite_create("mpi_world");
	TCase *world = tcase_create("world");
	tcase_add_loop_test(world, launcher_from_environment, 0, 6);
	tcase_add_test(world, slurm_step_counts_with_several_tasks);
	tcase_add_test(world, plain_run_is_one_rank);
	TCase *exec = tcase_create("executor");
	tcase_add_test(exec, bad_programs_rejected);
	tcase_add_test(exec, work_is_a_stable_gemm_chain);
	suite_add_tcase(s, world);
	suite_add_tcase(s, exec);
	return s;
}

MB_CHECK_MAIN(mpi_world_suite)
