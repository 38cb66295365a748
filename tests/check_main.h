/*
 * check_main.h - the main() every Check suite shares: run one suite, print Check's
 * summary line, exit 1 on any failure. Include it once, after defining the suite.
 */
#ifndef MB_TESTS_CHECK_MAIN_H
#define MB_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define MB_CHECK_MAIN(make_suite)                                   \
	int main(void)                                              \
	{                                                           \
		SRunner *sr = srunner_create(make_suite());         \
		srunner_run_all(sr, CK_NORMAL);                     \
		int failed = srunner_ntests_failed(sr);             \
		srunner_free(sr);                                   \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;        \
	}

#endif
