/* test_stats.c - summary statistics on arrays with known answers. */
#include <check.h>
#include <math.h>

#include "check_main.h"
#include "stats.h"
#include "status.h"

START_TEST(odd_count)
{
	const double x[] = { 5, 1, 4, 2, 3 };
	struct stats s;
	ck_assert_int_eq(stats_compute(x, 5, &s), MB_OK);
	ck_assert_double_eq(s.median, 3);
	ck_assert_double_eq(s.min, 1);
	ck_assert_double_eq(s.max, 5);
	ck_assert_double_eq(s.mean, 3);
	/* sample variance of 1..5 is 2.5 */
	ck_assert_double_eq_tol(s.stddev, sqrt(2.5), 1e-15);
	ck_assert_double_eq_tol(s.cv, sqrt(2.5) / 3, 1e-15);
	ck_assert_int_eq(s.n, 5);
	ck_assert_double_eq(s.mad, 1); /* |x - 3| = 2,2,1,1,0 */
	ck_assert_double_eq(x[0], 5); /* input untouched */
}
END_TEST

START_TEST(even_count_median_is_midpoint)
{
	const double x[] = { 10, 2, 8, 4 };
	struct stats s;
	ck_assert_int_eq(stats_compute(x, 4, &s), MB_OK);
	ck_assert_double_eq(s.median, 6);
}
END_TEST

START_TEST(outlier_moves_stddev_not_mad)
{
	const double x[] = { 1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00, 9.00 };
	struct stats s;
	ck_assert_int_eq(stats_compute(x, 8, &s), MB_OK);
	ck_assert(s.cv > 1.0);
	ck_assert_double_eq_tol(s.mad, 0.01, 1e-12);
}
END_TEST

START_TEST(single_sample)
{
	const double x[] = { 0.25 };
	struct stats s;
	ck_assert_int_eq(stats_compute(x, 1, &s), MB_OK);
	ck_assert_double_eq(s.median, 0.25);
	ck_assert_double_eq(s.stddev, 0);
	ck_assert_double_eq(s.cv, 0);
}
END_TEST

START_TEST(tiny_spread_keeps_digits)
{
	/* A naive sum-of-squares variance loses all digits here. */
	const double x[] = { 1e9 + 1, 1e9 + 2, 1e9 + 3 };
	struct stats s;
	ck_assert_int_eq(stats_compute(x, 3, &s), MB_OK);
	ck_assert_double_eq_tol(s.stddev, 1.0, 1e-9);
}
END_TEST

START_TEST(empty_is_an_error)
{
	struct stats s;
	ck_assert_int_eq(stats_compute(NULL, 0, &s), MB_ERR_ARG);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *core = tcase_create("core");
	tcase_add_test(core, odd_count);
	tcase_add_test(core, even_count_median_is_midpoint);
	tcase_add_test(core, single_sample);
	tcase_add_test(core, outlier_moves_stddev_not_mad);
	tcase_add_test(core, tiny_spread_keeps_digits);
	TCase *lim = tcase_create("limits");
	tcase_add_test(lim, empty_is_an_error);
	suite_add_tcase(s, core);
	suite_add_tcase(s, lim);
	return s;
}

MB_CHECK_MAIN(stats_suite)
