/*
 * test_peak.c (GPU) - the CUDA peak kernels against the FP64 host reference, and
 * `moebench peak --backend cuda` end to end. Exits 77 (CTest: skipped) when no CUDA
 * device answers, so a skip never reads as a pass. Runs without fork (CUDA contexts
 * do not survive one).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

#include "backend.h"
#include "peak.h"
#include "status.h"

#include "gpu_main.h"


/* gemm_errors runs one GEMM (or only poisons when run is false) and checks it. */
static struct peak_check gemm_errors(enum peak_dtype dt, int m, int n, int k, uint64_t seed,
				     bool run)
{
	struct peak_gemm_cuda *g = NULL;
	struct peak_check chk;
	ck_assert_int_eq(peak_gemm_cuda_create(&g, dt, m, n, k, seed, stream), MB_OK);
	ck_assert_int_eq(peak_gemm_cuda_poison(g), MB_OK);
	if (run)
		ck_assert_int_eq(peak_gemm_cuda_run(g), MB_OK);
	ck_assert_int_eq(peak_gemm_cuda_check(g, 512, &chk), MB_OK);
	peak_gemm_cuda_destroy(g);
	return chk;
}

START_TEST(bf16_matches_reference_on_odd_shapes)
{
	const int shapes[][3] = { { 128, 256, 64 }, { 100, 70, 33 }, { 1, 513, 1000 }, { 777, 5, 4096 } };
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct peak_check c = gemm_errors(PEAK_BF16, shapes[i][0], shapes[i][1], shapes[i][2],
						  1000 + i, true);
		ck_assert_msg(c.mismatches == 0 && c.max_err <= c.tolerance,
			      "bf16 %dx%dx%d: max_err %g, %ld wrong", shapes[i][0], shapes[i][1],
			      shapes[i][2], c.max_err, c.mismatches);
	}
}
END_TEST

START_TEST(fp8_tensor_scaled_matches_reference)
{
	const int shapes[][3] = { { 256, 512, 128 }, { 128, 64, 4096 }, { 4096, 4096, 4096 } };
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct peak_check c = gemm_errors(PEAK_FP8_E4M3, shapes[i][0], shapes[i][1],
						  shapes[i][2], 2000 + i, true);
		ck_assert_msg(c.mismatches == 0 && c.max_err <= c.tolerance,
			      "fp8 %dx%dx%d: max_err %g, %ld wrong", shapes[i][0], shapes[i][1],
			      shapes[i][2], c.max_err, c.mismatches);
	}
}
END_TEST

START_TEST(poisoned_output_fails_the_check)
{
	struct peak_check c = gemm_errors(PEAK_BF16, 128, 128, 128, 7, false);
	ck_assert_int_eq(c.mismatches, c.samples);
	struct peak_gemm_cuda *g = NULL;
	ck_assert_int_eq(peak_gemm_cuda_create(&g, PEAK_FP8_E4M3, 100, 64, 32, 1, stream), MB_ERR_ARG);
	ck_assert_ptr_null(g);
}
END_TEST

START_TEST(copy_is_exact)
{
	struct peak_copy_cuda *c = NULL;
	struct peak_check chk;
	ck_assert_int_eq(peak_copy_cuda_create(&c, 64 << 20, 3, stream), MB_OK);
	ck_assert_int_eq(peak_copy_cuda_poison(c), MB_OK);
	ck_assert_int_eq(peak_copy_cuda_check(c, &chk), MB_OK);
	ck_assert_int_gt(chk.mismatches, 0);
	ck_assert_int_eq(peak_copy_cuda_run(c), MB_OK);
	ck_assert_int_eq(peak_copy_cuda_check(c, &chk), MB_OK);
	ck_assert_int_eq(chk.mismatches, 0);
	peak_copy_cuda_destroy(c);
}
END_TEST

START_TEST(moebench_peak_on_cuda)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s peak --backend cuda --size 2048 --copy-bytes 64M --iters 5 "
		 "--out /tmp/mb_gpu_peak.json --force --quiet > /dev/null", MOEBENCH_BIN);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("gpu_peak");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, bf16_matches_reference_on_odd_shapes);
	tcase_add_test(tc, fp8_tensor_scaled_matches_reference);
	tcase_add_test(tc, poisoned_output_fails_the_check);
	tcase_add_test(tc, copy_is_exact);
	tcase_add_test(tc, moebench_peak_on_cuda);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return gpu_main(make_suite);
}
