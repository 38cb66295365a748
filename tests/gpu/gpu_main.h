/*
 * gpu_main.h - the main() every GPU suite shares: probe the CUDA device and exit 77
 * (CTest: skipped, never a pass) when none answers, create the stream the tests use,
 * run the suite without fork (a CUDA context does not survive one), exit 1 on any
 * failure. Include once per suite, after <check.h>.
 */
#ifndef MB_TESTS_GPU_MAIN_H
#define MB_TESTS_GPU_MAIN_H

#include <check.h>
#include <stdio.h>
#include <cuda_runtime_api.h>

#include "backend.h"
#include "status.h"

static cudaStream_t stream;  /* the stream every test of the suite enqueues on */

/* gpu_main runs the suite made by make_suite as described above. */
static int gpu_main(Suite *(*make_suite)(void))
{
	struct device_info devs[4];
	char why[256];
	int n = 0;
	if (backend_cuda_devices(devs, 4, &n, why, sizeof(why)) != MB_OK) {
		printf("skipped: %s\n", why);
		return 77;
	}
	if (cudaStreamCreate(&stream) != cudaSuccess)
		return 1;
	SRunner *sr = srunner_create(make_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cudaStreamDestroy(stream);
	return failed ? 1 : 0;
}

#endif
