/*
 * test_fuzz.c - generated inputs against every parser of what a user hands moebench:
 * option values (cli_parse), model JSON, hardware JSON, baseline JSON and result files.
 * One `fuzz_*` TCase per parser. Each case is either a structured value whose right
 * answer the test knows (an integer with a suffix, in or out of range) or a mutation of
 * a valid document (a byte flipped, cut, a key dropped or retyped, a value made huge,
 * negative or NaN-like). Every parser must answer with its documented codes, never
 * crash, and whatever it accepts must be valid (in range, passing its validation).
 *
 * MB_FUZZ_CASES sets the cases per TCase (default 2000: five parsers, 10,000 cases, a
 * few seconds); MB_TEST_SEED replays a run. Run it under the sanitizer build
 * (MOEBENCH_SANITIZE=ON) to let AddressSanitizer judge the memory of every case.
 */
#define _GNU_SOURCE
#include <check.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "claims.h"
#include "cli.h"
#include "hardware.h"
#include "model.h"
#include "result.h"
#include "stats.h"
#include "status.h"
#include "test_seed.h"

static uint64_t rng_state;

/* rnd returns the next 64 random bits (xorshift64*). */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static long below(long n)
{
	return (long)(rnd() % (uint64_t)n);
}

/* fuzz_cases is MB_FUZZ_CASES, else 2000. */
static long fuzz_cases(void)
{
	const char *env = getenv("MB_FUZZ_CASES");
	long n = env ? strtol(env, NULL, 10) : 2000;
	return n > 0 ? n : 2000;
}

/* quiet_stderr sends stderr to /dev/null while thousands of cases print their errors
 * (restore with loud_stderr). */
static int saved_fd = -1;
static void quiet_stderr(void)
{
	fflush(stderr);
	saved_fd = dup(2);
	ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
}

/* report prints how many cases a TCase ran (the count the sanitizer run states). */
static void report(long cases, const char *what)
{
	fprintf(stderr, "fuzz %s: %ld cases (seed %#" PRIx64 ")\n", what, cases, test_seed());
}

static void loud_stderr(long cases, const char *what)
{
	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	report(cases, what);
}

/* ---- option values ---- */

static const char *const suffixes[] = { "", "K", "k", "M", "m", "G", "g" };

/* expected_int computes what an integer option with range [lo, hi] must store for
 * sign*mag*mul; false when it must be refused. */
static bool expected_int(bool neg, uint64_t mag, uint64_t mul, int64_t lo, int64_t hi,
			 int64_t *v)
{
	uint64_t m;
	if (__builtin_mul_overflow(mag, mul, &m) || m > (uint64_t)INT64_MAX + (neg ? 1 : 0))
		return false;
	*v = neg ? (int64_t)(0 - m) : (int64_t)m;
	return *v >= lo && *v <= hi;
}

/* random_magnitude draws across scales, with the edges of int and int64 often. */
static uint64_t random_magnitude(void)
{
	static const uint64_t edges[] = { 0, 1, 100, INT_MAX, (uint64_t)INT_MAX + 1,
					  4294967297ULL, INT64_MAX, (uint64_t)INT64_MAX + 1,
					  UINT64_MAX };
	return below(3) == 0 ? edges[below(9)] : rnd() >> below(64);
}

/* garbage writes a random string of option-value characters. */
static void garbage(char *buf, size_t len)
{
	static const char alphabet[] = "0123456789+-.xXkKmMgGeE ,=abz\t";
	size_t n = (size_t)below((long)len - 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = alphabet[below((long)sizeof(alphabet) - 1)];
	buf[n] = '\0';
}

/* run_int_case parses one --n value with cli_parse and checks the answer. */
static void run_int_case(const struct cli_opt *opts, int *n, int64_t *size, long i)
{
	char val[96], *argv[3] = { "fuzz", NULL, val }, *pos[1];
	bool neg = below(2), help, structured = below(4) != 0;
	uint64_t mag = random_magnitude(), mul = 1;
	int npos, which = (int)below(2);
	const char *sfx = suffixes[below(7)];
	int64_t want = 0;

	argv[1] = which ? "--size" : "--n";
	if (structured) {
		snprintf(val, sizeof(val), "%s%" PRIu64 "%s", neg ? "-" : "", mag, sfx);
		static const char letters[] = "kmg";
		mul = sfx[0] ? (uint64_t)1 << (10 * (strchr(letters, sfx[0] | 32) - letters + 1)) : 1;
	} else {
		garbage(val, sizeof(val));
	}
	int st = cli_parse("fuzz", 3, argv, NULL, opts, pos, 0, &npos, &help, "fuzz");
	ck_assert_msg(st == 0 || st == 2, "case %ld '%s': status %d", i, val, st);
	if (structured) {
		bool ok = which ? expected_int(neg, mag, mul, 1, INT64_MAX, &want)
				: expected_int(neg, mag, mul, -1000, INT_MAX, &want);
		ck_assert_msg((st == 0) == ok, "case %ld '%s %s': status %d, expected %s", i,
			      argv[1], val, st, ok ? "accepted" : "refused");
		if (ok)
			ck_assert_msg(which ? *size == want : *n == want, "case %ld '%s': stored "
				      "%d/%" PRId64 ", want %" PRId64, i, val, *n, *size, want);
	} else if (st == 0) {
		ck_assert_msg(which ? *size >= 1 : *n >= -1000, "case %ld '%s': out of range", i, val);
	}
}

START_TEST(fuzz_cli_values)
{
	int n = 0;
	int64_t size = 0;
	double x = 0;
	uint64_t seed = 0;
	const char *str = NULL;
	const struct cli_opt opts[] = {
		{ "n", CLI_INT, &n, "5", "int", -1000, 3e9, NULL },  /* above INT_MAX: the type caps */
		{ "size", CLI_SIZE, &size, "1", "size", 1, 1e19, NULL },
		{ "x", CLI_DOUBLE, &x, "0", "double", -1e6, 1e6, NULL },
		{ "seed", CLI_U64, &seed, "1", "seed", 0, -1, NULL },
		{ "s", CLI_STRING, &str, NULL, "string", 0, -1, NULL },
		CLI_END
	};
	long cases = fuzz_cases();
	rng_state = test_seed();
	quiet_stderr();
	for (long i = 0; i < cases; i++) {
		if (i % 4 != 3) {
			run_int_case(opts, &n, &size, i);
			continue;
		}
		char val[96], *pos[1], *argv[3] = { "fuzz", i % 8 == 3 ? "--x" : "--seed", val };
		bool help;
		int npos;
		garbage(val, sizeof(val));
		int st = cli_parse("fuzz", 3, argv, NULL, opts, pos, 0, &npos, &help, "fuzz");
		ck_assert_msg(st == 0 || st == 2, "case %ld '%s': status %d", i, val, st);
		if (st == 0 && i % 8 == 3)
			ck_assert_msg(isfinite(x) && x >= -1e6 && x <= 1e6, "case %ld '%s'", i, val);
	}
	loud_stderr(cases, "cli values");
	/* n's type limit was applied although the table gives no upper bound */
	ck_assert_int_le(n, INT_MAX);
}
END_TEST

/* ---- JSON documents ---- */

/* random_value returns a hostile replacement value. */
static cJSON *random_value(void)
{
	static const double nums[] = { -1, 0, 0.5, 1e308, -1e308, 4294967297.0, 9.3e18,
				       1e-320, 2147483648.0, 7 };
	switch (below(6)) {
	case 0: return cJSON_CreateNumber(nums[below(10)]);
	case 1: return cJSON_CreateString(below(2) ? "" : "NaN");
	case 2: return cJSON_CreateNull();
	case 3: return cJSON_CreateArray();
	case 4: return cJSON_CreateObject();
	default: return cJSON_CreateBool(below(2));
	}
}

/* mutate_tree changes one random member somewhere in doc: replace, delete, or add. */
static void mutate_tree(cJSON *doc)
{
	cJSON *node = doc;
	for (int depth = 0; depth < 6; depth++) {
		int n = cJSON_GetArraySize(node);
		if (n == 0 || !(cJSON_IsObject(node) || cJSON_IsArray(node)))
			break;
		cJSON *child = cJSON_GetArrayItem(node, (int)below(n));
		if ((cJSON_IsObject(child) || cJSON_IsArray(child)) && below(3) != 0) {
			node = child;
			continue;
		}
		int k = (int)below(n);
		switch (below(3)) {
		case 0:  /* NOTE: an object's member keeps its key, as parsed text would */
			if (cJSON_IsObject(node))
				cJSON_ReplaceItemInObjectCaseSensitive(
					node, cJSON_GetArrayItem(node, k)->string, random_value());
			else
				cJSON_ReplaceItemInArray(node, k, random_value());
			break;
		case 1:
			cJSON_DeleteItemFromArray(node, k);
			break;
		default:
			if (cJSON_IsObject(node))
				cJSON_AddItemToObject(node, below(2) ? "zz_unknown" : "name", random_value());
			else
				cJSON_AddItemToArray(node, random_value());
		}
		return;
	}
}

/* mutate_text prints doc and damages the text: a byte changed, cut, or doubled. */
static char *mutate_text(const cJSON *doc)
{
	char *text = cJSON_PrintUnformatted(doc);
	ck_assert_ptr_nonnull(text);
	size_t len = strlen(text);
	size_t at = len ? (size_t)below((long)len) : 0;
	switch (below(3)) {
	case 0:
		text[at] = "{}[]\",:0-e.\x01\xff"[below(14)];
		break;
	case 1:
		text[at] = '\0';
		break;
	default:
		text = realloc(text, 2 * len + 1);
		ck_assert_ptr_nonnull(text);
		memcpy(text + len, text, len);
		text[2 * len] = '\0';
	}
	return text;
}

/* next_doc returns a mutated copy of base: a tree mutation or three, or text damage
 * parsed back (NULL when it no longer parses: the parser's own error path). */
static cJSON *next_doc(const cJSON *base, long i)
{
	if (i % 3 == 2) {
		char *text = mutate_text(base);
		cJSON *doc = cJSON_Parse(text);
		free(text);
		return doc;
	}
	cJSON *doc = cJSON_Duplicate(base, true);
	for (long k = 0; k <= below(3); k++)
		mutate_tree(doc);
	return doc;
}

START_TEST(fuzz_model_json)
{
	cJSON *base = model_config_to_json(model_preset_find("deepseek-v3"));
	long cases = fuzz_cases(), accepted = 0;
	char why[512];
	ck_assert_ptr_nonnull(base);
	rng_state = test_seed() ^ 1;
	for (long i = 0; i < cases; i++) {
		struct model_config cfg;
		cJSON *doc = next_doc(base, i);
		if (!doc)
			continue;
		int err = model_config_from_json(doc, "fuzz.json", &cfg, why, sizeof(why));
		ck_assert_msg(err == MB_OK || err == MB_ERR_PARSE || err == MB_ERR_ARG,
			      "case %ld: code %d", i, err);
		if (err == MB_OK) {
			accepted++;
			ck_assert_msg(model_config_validate(&cfg, why, sizeof(why)) == MB_OK,
				      "case %ld accepted an invalid config: %s", i, why);
		}
		cJSON_Delete(doc);
	}
	cJSON_Delete(base);
	report(cases, "model JSON");
	ck_assert_int_lt(accepted, cases); /* the mutations did reach the error paths */
}
END_TEST

/* write_text writes text to path (the loaders read files). */
static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(fuzz_hardware_json)
{
	cJSON *base = cJSON_Parse("[{\"key\": \"l40s\", \"names\": [\"NVIDIA L40S\"], "
				  "\"peak_bf16_tflops\": 362, \"peak_fp8_tflops\": 733, "
				  "\"hbm_gb\": null, \"source\": \"my datasheet\"}, {\"key\": "
				  "\"h100-sxm\", \"names\": [\"NVIDIA H100 80GB HBM3\"], "
				  "\"peak_bf16_tflops\": 900, \"source\": \"capped clocks\"}]");
	char path[64], why[512];
	long cases = fuzz_cases();
	snprintf(path, sizeof(path), "/tmp/mb_fuzz_hw_%ld.json", (long)getpid());
	ck_assert_ptr_nonnull(base);
	rng_state = test_seed() ^ 2;
	for (long i = 0; i < cases; i++) {
		char *text;
		if (i % 3 == 2) {
			text = mutate_text(base);
		} else {
			cJSON *doc = cJSON_Duplicate(base, true);
			mutate_tree(doc);
			text = cJSON_Print(doc);
			cJSON_Delete(doc);
		}
		write_text(path, text);
		free(text);
		int err = hardware_load_json(path, why, sizeof(why));
		ck_assert_msg(err == MB_OK || err == MB_ERR_PARSE || err == MB_ERR_ARG ||
			      err == MB_ERR_NOMEM, "case %ld: code %d", i, err);
		if (err == MB_OK)  /* what was accepted is findable by its key */
			ck_assert_msg(hardware_find_key("l40s") || hardware_find_key("h100-sxm"),
				      "case %ld", i);
		hardware_reset_loaded();
	}
	unlink(path);
	cJSON_Delete(base);
	report(cases, "hardware JSON");
}
END_TEST

START_TEST(fuzz_baseline_json)
{
	char path[1024], *text = NULL, why[512];
	snprintf(path, sizeof(path), "%s/results/baselines/deepseek-v3.json", MOEBENCH_SOURCE_DIR);
	ck_assert_int_eq(model_read_file(path, &text, why, sizeof(why)), MB_OK);
	cJSON *base = cJSON_Parse(text);
	long cases = fuzz_cases(), accepted = 0;
	free(text);
	ck_assert_ptr_nonnull(base);
	rng_state = test_seed() ^ 3;
	for (long i = 0; i < cases; i++) {
		struct model_baseline *b = NULL;
		cJSON *doc = next_doc(base, i);
		if (!doc)
			continue;
		int err = model_baseline_from_json(doc, "fuzz.json", &b, why, sizeof(why));
		ck_assert_msg(err == MB_OK || err == MB_ERR_PARSE || err == MB_ERR_ARG,
			      "case %ld: code %d", i, err);
		if (err == MB_OK) {
			accepted++;
			ck_assert_msg(b && b->n_runs >= 1, "case %ld: accepted without runs", i);
			model_baseline_free(b);  /* owns doc */
		} else {
			cJSON_Delete(doc);
		}
	}
	cJSON_Delete(base);
	report(cases, "baseline JSON");
	ck_assert_int_lt(accepted, cases);
}
END_TEST

/* result_base builds a valid result document of three records. */
static cJSON *result_base(void)
{
	cJSON *doc = result_new();
	struct stats st = { 1e-3, 9e-4, 1.2e-3, 1e-3, 1e-4, 0.1, 5e-5, 10 };
	for (int i = 0; i < 3; i++) {
		char name[32];
		snprintf(name, sizeof(name), "case%d", i);
		cJSON *rec = result_add_record(doc, "peak", name, "cpu");
		ck_assert_ptr_nonnull(rec);
		ck_assert_int_eq(result_set_time(rec, &st), MB_OK);
		ck_assert_int_eq(result_set_metric(rec, "gbps", 12.5), MB_OK);
		ck_assert_int_eq(result_set_check(rec, i != 2, 1e-7, 1e-5, "rel", 64, i == 2), MB_OK);
	}
	cJSON_AddStringToObject(result_context(doc), "host", "fuzz");
	return doc;
}

START_TEST(fuzz_result_files)
{
	cJSON *base = result_base();
	char path[64], why[512];
	long cases = fuzz_cases(), accepted = 0;
	snprintf(path, sizeof(path), "/tmp/mb_fuzz_result_%ld.json", (long)getpid());
	rng_state = test_seed() ^ 4;
	for (long i = 0; i < cases; i++) {
		cJSON *doc = NULL;
		int err;
		if (i % 5 == 4) {  /* through the file reader */
			char *text = i % 10 == 9 ? mutate_text(base) : cJSON_Print(base);
			write_text(path, text);
			free(text);
			err = result_read(path, &doc, why, sizeof(why));
		} else {
			doc = next_doc(base, i);
			if (!doc)
				continue;
			err = result_validate(doc, why, sizeof(why));
		}
		ck_assert_msg(err == MB_OK || err == MB_ERR_PARSE || err == MB_ERR_IO,
			      "case %ld: code %d", i, err);
		accepted += err == MB_OK;
		cJSON_Delete(doc);
	}
	unlink(path);
	cJSON_Delete(base);
	report(cases, "result files");
	ck_assert_int_gt(accepted, 0);
	ck_assert_int_lt(accepted, cases);
}
END_TEST

static Suite *fuzz_suite(void)
{
	Suite *s = suite_create("fuzz");
	struct { const char *name; const TTest *test; } t[] = {
		{ "fuzz_cli", fuzz_cli_values }, { "fuzz_model_json", fuzz_model_json },
		{ "fuzz_hardware_json", fuzz_hardware_json },
		{ "fuzz_baseline_json", fuzz_baseline_json },
		{ "fuzz_result_files", fuzz_result_files },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		TCase *tc = tcase_create(t[i].name);
		tcase_set_timeout(tc, 600);
		tcase_add_test(tc, t[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

MB_CHECK_MAIN(fuzz_suite)
