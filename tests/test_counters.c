/* test_counters.c - PAPI counters: unavailable events are recorded, never fatal; a
 * listed name PAPI cannot resolve is refused, named (without PAPI nothing resolves:
 * it is recorded unavailable). */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "counters.h"
#include "status.h"

/* A name no PAPI component can know. */
#define BOGUS "MOEBENCH_NO_SUCH_EVENT"

START_TEST(unknown_event_is_recorded_unavailable)
{
	struct counters *c = NULL;
	char why[128];
	int err = counters_open(BOGUS ",PAPI_TOT_CYC", &c, why, sizeof(why));
	if (err == MB_ERR_ARG) {
		/* PAPI answered: a typo is named, not silently kept */
		ck_assert_ptr_nonnull(counters_papi_version());
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(why, "'" BOGUS "'"));
		return;
	}
	/* no PAPI (or PAPI unusable here): kept, unavailable with a reason */
	ck_assert_int_eq(err, MB_OK);
	ck_assert_ptr_nonnull(c);
	counters_start(c);
	volatile double x = 0;
	for (int i = 0; i < 100000; i++)
		x += i;
	counters_stop(c);
	cJSON *rec = cJSON_CreateObject();
	ck_assert_int_eq(counters_record(c, 10, rec), MB_OK);
	const cJSON *ev = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "counters"), BOGUS);
	ck_assert_ptr_nonnull(ev);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(ev, "available")));
	const cJSON *reason = cJSON_GetObjectItem(ev, "reason");
	ck_assert(cJSON_IsString(reason) && strlen(reason->valuestring) > 0);
	/* The second event is either counted or unavailable with a reason, never absent. */
	const cJSON *cyc = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "counters"), "PAPI_TOT_CYC");
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(cyc, "value")) ||
		  cJSON_IsString(cJSON_GetObjectItem(cyc, "reason")));
	cJSON_Delete(rec);
	counters_close(c);
}
END_TEST

START_TEST(none_and_default)
{
	struct counters *c = (struct counters *)1;
	char why[128];
	ck_assert_int_eq(counters_open("none", &c, why, sizeof(why)), MB_OK);
	ck_assert_ptr_null(c);
	counters_start(c); /* NULL is a valid "no counters" */
	counters_stop(c);
	ck_assert_int_eq(counters_open("default", &c, why, sizeof(why)), MB_OK);
	cJSON *rec = cJSON_CreateObject();
	ck_assert_int_eq(counters_record(c, 1, rec), MB_OK);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(rec, "counters")), 3);
	cJSON_Delete(rec);
	counters_close(c);
}
END_TEST

START_TEST(empty_event_name_is_a_user_error)
{
	struct counters *c = NULL;
	char why[128];
	ck_assert_int_eq(counters_open("PAPI_TOT_CYC,,X", &c, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(why, "--counters"));
}
END_TEST

static Suite *counters_suite(void)
{
	Suite *s = suite_create("counters");
	TCase *core = tcase_create("core");
	tcase_add_test(core, unknown_event_is_recorded_unavailable);
	tcase_add_test(core, none_and_default);
	tcase_add_test(core, empty_event_name_is_a_user_error);
	suite_add_tcase(s, core);
	return s;
}

MB_CHECK_MAIN(counters_suite)
