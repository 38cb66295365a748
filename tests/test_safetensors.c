/* test_safetensors.c - the safetensors reader and writer: round trips on fresh random
 * data, the exact bytes of a hand-built file, every malformed case refused, a fuzz of
 * mutated files, and a cross-check with Python readers and writers. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bf16.h"
#include "check_main.h"
#include "rng.h"
#include "safetensors.h"
#include "status.h"
#include "test_seed.h"

static char dir[64];
static char why[1024];

/* tmp_path returns a path named name in this run's temporary folder. */
static const char *tmp_path(const char *name)
{
	static char buf[4][256];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mb_st_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* write_bytes writes n bytes to path. */
static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* read_bytes returns the content of path (malloc'ed) and its size in *n. */
static unsigned char *read_bytes(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc(*n + 1);
	ck_assert_uint_eq(fread(p, 1, *n, f), *n);
	fclose(f);
	return p;
}

/* A random tensor set: up to 6 tensors of 0..4 dims, F32 and BF16 mixed. */
struct set {
	int n;
	struct st_tensor t[6];
	char names[6][48];
	float *data[6];
};

static void make_set(struct set *s, struct mb_rng *rng)
{
	s->n = 1 + (int)(mb_rng_next(rng) % 6);
	for (int i = 0; i < s->n; i++) {
		struct st_tensor *t = &s->t[i];
		int64_t numel = 1;
		snprintf(s->names[i], sizeof(s->names[i]), "model.layers.%d.mlp.w%d.weight", i,
			 (int)(mb_rng_next(rng) % 1000));
		t->name = s->names[i];
		t->dtype = mb_rng_next(rng) % 2 ? ST_BF16 : ST_F32;
		t->ndim = (int)(mb_rng_next(rng) % 5);
		for (int d = 0; d < t->ndim; d++) {
			t->shape[d] = 1 + (int64_t)(mb_rng_next(rng) % 9);
			numel *= t->shape[d];
		}
		s->data[i] = malloc((size_t)numel * sizeof(float));
		mb_rng_fill_uniform_f32(rng, s->data[i], (size_t)numel, -3.0f, 3.0f);
		t->data = s->data[i];
	}
}

static void free_set(struct set *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->data[i]);
}

static int64_t numel_of(const struct st_tensor *t)
{
	int64_t n = 1;
	for (int d = 0; d < t->ndim; d++)
		n *= t->shape[d];
	return n;
}

/* check_against reads every tensor of s from path and compares it with the data
 * written (BF16 ones against their rounding: the round trip is exact). */
static void check_against(const char *path, const struct set *s, int all_f32)
{
	struct st_file *f = NULL;
	ck_assert_msg(st_open(&f, path, why, sizeof(why)) == MB_OK, "%s (seed %llu)", why,
		      (unsigned long long)test_seed());
	ck_assert_int_eq(st_count(f), s->n);
	for (int i = 0; i < s->n; i++) {
		const struct st_tensor *t = &s->t[i];
		const struct st_entry *e = st_find(f, t->name);
		int64_t n = numel_of(t);
		ck_assert_ptr_nonnull(e);
		ck_assert_int_eq(e->dtype, all_f32 ? ST_F32 : t->dtype);
		ck_assert_int_eq(e->ndim, t->ndim);
		ck_assert_int_eq(e->numel, n);
		float *got = malloc((size_t)(n ? n : 1) * sizeof(float));
		ck_assert_int_eq(st_read_f32(f, t->name, got, t->shape, t->ndim, why, sizeof(why)),
				 MB_OK);
		for (int64_t j = 0; j < n; j++) {
			float want = t->dtype == ST_BF16 ? bf16_round(t->data[j]) : t->data[j];
			ck_assert_msg(got[j] == want, "%s[%lld]: %.9g != %.9g (seed %llu)", t->name,
				      (long long)j, got[j], want, (unsigned long long)test_seed());
			ck_assert(fabsf(got[j] - t->data[j]) <= fabsf(t->data[j]) * 0x1p-8f);
		}
		free(got);
	}
	st_close(f);
}

START_TEST(round_trip_random)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 1);
	for (int rep = 0; rep < 20; rep++) {
		struct set s;
		make_set(&s, &rng);
		ck_assert_int_eq(st_write(tmp_path("rt.safetensors"), s.t, s.n, NULL, why,
					  sizeof(why)), MB_OK);
		check_against(tmp_path("rt.safetensors"), &s, 0);
		free_set(&s);
	}
}
END_TEST

START_TEST(round_trip_across_chunks)
{
	/* 200003 values: more than three of the reader's and writer's 65536-value chunks,
	 * and not a multiple of one. */
	struct mb_rng rng;
	struct set s = { .n = 2 };
	mb_rng_seed(&rng, test_seed(), 4);
	for (int i = 0; i < 2; i++) {
		snprintf(s.names[i], sizeof(s.names[i]), "big.%d", i);
		s.data[i] = malloc(200003 * sizeof(float));
		mb_rng_fill_uniform_f32(&rng, s.data[i], 200003, -1e3f, 1e3f);
		s.t[i] = (struct st_tensor){ .name = s.names[i], .dtype = i ? ST_BF16 : ST_F32,
					     .ndim = 1, .shape = { 200003 }, .data = s.data[i] };
	}
	ck_assert_int_eq(st_write(tmp_path("big.safetensors"), s.t, 2, NULL, why, sizeof(why)),
			 MB_OK);
	check_against(tmp_path("big.safetensors"), &s, 0);
	free_set(&s);
}
END_TEST

START_TEST(metadata_and_order_kept)
{
	const char *meta[] = { "format", "pt", "moebench.config", "{\"d\":\"q\\\"x\"}\n", NULL };
	float a[3] = { 1.5f, -2.25f, 3.0f }, b[1] = { 7.0f };
	struct st_tensor t[2] = {
		{ .name = "z.last", .dtype = ST_F32, .ndim = 1, .shape = { 3 }, .data = a },
		{ .name = "a.first", .dtype = ST_BF16, .ndim = 0, .data = b },
	};
	struct st_file *f = NULL;
	ck_assert_int_eq(st_write(tmp_path("m.safetensors"), t, 2, meta, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(st_open(&f, tmp_path("m.safetensors"), why, sizeof(why)), MB_OK);
	ck_assert_str_eq(st_meta(f, "format"), "pt");
	ck_assert_str_eq(st_meta(f, "moebench.config"), meta[3]);
	ck_assert_ptr_null(st_meta(f, "absent"));
	ck_assert_str_eq(st_at(f, 0)->name, "z.last");
	ck_assert_str_eq(st_at(f, 1)->name, "a.first");
	ck_assert_ptr_null(st_at(f, 2));
	ck_assert_int_eq(st_at(f, 1)->ndim, 0);
	ck_assert_int_eq(st_at(f, 1)->numel, 1);
	ck_assert_ptr_null(st_find(f, "a.firs"));
	st_close(f);
}
END_TEST

/* The hand-built file: header text and offsets as the format defines them. */
START_TEST(exact_bytes)
{
	static const char header[] =
		"{\"__metadata__\":{\"format\":\"pt\"},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		"\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[8,12]}}";
	static const unsigned char data[12] = { 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,
						0x80, 0x3f, 0x00, 0x3f };
	const char *meta[] = { "format", "pt", NULL };
	float a[2] = { 1.0f, -2.0f }, b[2] = { 1.0f, 0.5f };
	struct st_tensor t[2] = {
		{ .name = "a", .dtype = ST_F32, .ndim = 1, .shape = { 2 }, .data = a },
		{ .name = "b", .dtype = ST_BF16, .ndim = 2, .shape = { 1, 2 }, .data = b },
	};
	size_t n, hl = strlen(header), padded = (hl + 7) / 8 * 8;
	ck_assert_int_eq(st_write(tmp_path("x.safetensors"), t, 2, meta, why, sizeof(why)), MB_OK);
	unsigned char *p = read_bytes(tmp_path("x.safetensors"), &n);
	ck_assert_uint_eq(hl, 142);
	ck_assert_uint_eq(n, 8 + padded + 12);
	ck_assert_uint_eq(p[0], padded);
	for (int i = 1; i < 8; i++)
		ck_assert_uint_eq(p[i], 0);
	ck_assert_int_eq(memcmp(p + 8, header, hl), 0);
	for (size_t i = 8 + hl; i < 8 + padded; i++)
		ck_assert_uint_eq(p[i], ' ');
	ck_assert_int_eq(memcmp(p + 8 + padded, data, 12), 0);
	free(p);
}
END_TEST

START_TEST(header_padded_to_8)
{
	float v[3] = { 0.1f, 0.2f, 0.3f };
	char name[40];
	for (int len = 1; len < 24; len++) {
		memset(name, 'n', (size_t)len);
		name[len] = '\0';
		struct st_tensor t = { .name = name, .dtype = ST_F32, .ndim = 1, .shape = { 3 },
				       .data = v };
		size_t n;
		ck_assert_int_eq(st_write(tmp_path("p.safetensors"), &t, 1, NULL, why, sizeof(why)),
				 MB_OK);
		unsigned char *p = read_bytes(tmp_path("p.safetensors"), &n);
		size_t hl = p[0] | (size_t)p[1] << 8;
		ck_assert_uint_eq(hl % 8, 0);
		ck_assert_uint_eq(n, 8 + hl + 12);
		size_t spaces = 0;
		while (p[8 + hl - 1 - spaces] == ' ')
			spaces++;
		ck_assert_uint_lt(spaces, 8);
		ck_assert_uint_eq(p[8 + hl - 1 - spaces], '}');
		free(p);
	}
}
END_TEST

START_TEST(bf16_rounds_to_nearest_even)
{
	/* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even one, 1.
	 * 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6. */
	float v[4] = { 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -0.0f };
	float want[4] = { 1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -0.0f }, got[4];
	struct st_tensor t = { .name = "r", .dtype = ST_BF16, .ndim = 1, .shape = { 4 }, .data = v };
	struct st_file *f = NULL;
	ck_assert_int_eq(st_write(tmp_path("r.safetensors"), &t, 1, NULL, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(st_open(&f, tmp_path("r.safetensors"), why, sizeof(why)), MB_OK);
	ck_assert_int_eq(st_read_f32(f, "r", got, NULL, 0, why, sizeof(why)), MB_OK);
	for (int i = 0; i < 4; i++)
		ck_assert_float_eq(got[i], want[i]);
	ck_assert(signbit(got[3]));
	st_close(f);
}
END_TEST

START_TEST(shape_mismatch_named)
{
	float v[6] = { 1, 2, 3, 4, 5, 6 }, got[6];
	struct st_tensor t = { .name = "model.embed_tokens.weight", .dtype = ST_F32, .ndim = 2,
			       .shape = { 2, 3 }, .data = v };
	int64_t want[2] = { 3, 2 };
	struct st_file *f = NULL;
	ck_assert_int_eq(st_write(tmp_path("s.safetensors"), &t, 1, NULL, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(st_open(&f, tmp_path("s.safetensors"), why, sizeof(why)), MB_OK);
	ck_assert_int_eq(st_read_f32(f, t.name, got, want, 2, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "'model.embed_tokens.weight' has shape [2, 3], expected [3, 2]"));
	ck_assert_ptr_nonnull(strstr(why, "s.safetensors"));
	ck_assert_int_eq(st_read_f32(f, t.name, got, want, 1, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_int_eq(st_read_f32(f, "model.norm.weight", got, NULL, 0, why, sizeof(why)),
			 MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "no tensor 'model.norm.weight'"));
	st_close(f);
}
END_TEST

START_TEST(writer_refuses_bad_lists_and_keeps_old_file)
{
	float v[2] = { 1, 2 };
	struct st_tensor t[2] = {
		{ .name = "w", .dtype = ST_F32, .ndim = 1, .shape = { 2 }, .data = v },
		{ .name = "w", .dtype = ST_F32, .ndim = 1, .shape = { 2 }, .data = v },
	};
	const char *path = tmp_path("w.safetensors");
	size_t n0, n1;
	ck_assert_int_eq(st_write(path, t, 1, NULL, why, sizeof(why)), MB_OK);
	unsigned char *before = read_bytes(path, &n0);
	ck_assert_int_eq(st_write(path, t, 2, NULL, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "'w' given twice"));
	t[1].name = "__metadata__";
	ck_assert_int_eq(st_write(path, t, 2, NULL, why, sizeof(why)), MB_ERR_ARG);
	t[1].name = "";
	ck_assert_int_eq(st_write(path, t, 2, NULL, why, sizeof(why)), MB_ERR_ARG);
	t[1].name = "x";
	t[1].shape[0] = -2;
	ck_assert_int_eq(st_write(path, t, 2, NULL, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_int_eq(st_write(tmp_path("no/such/dir.st"), t, 1, NULL, why, sizeof(why)), MB_ERR_IO);
	unsigned char *after = read_bytes(path, &n1);
	ck_assert_uint_eq(n0, n1);
	ck_assert_int_eq(memcmp(before, after, n0), 0);
	free(before);
	free(after);
	/* No temporary file left behind: the folder holds w.safetensors alone. */
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test \"$(ls '%s' | wc -l)\" = 1", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- malformed files ---- */

/* write_raw writes an 8-byte length hlen, the header text and data_len bytes. */
static const char *write_raw(const char *header, uint64_t hlen, size_t data_len)
{
	size_t hl = strlen(header);
	unsigned char *p = calloc(1, 8 + hl + data_len);
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(hlen >> (8 * i));
	memcpy(p + 8, header, hl);
	for (size_t i = 0; i < data_len; i++)
		p[8 + hl + i] = (unsigned char)(i * 37 + 1);
	write_bytes(tmp_path("bad.safetensors"), p, 8 + hl + data_len);
	free(p);
	return tmp_path("bad.safetensors");
}

/* refused opens path, expects err and a message holding phrase. */
static void refused(const char *path, int err, const char *phrase)
{
	struct st_file *f = (struct st_file *)1;
	ck_assert_int_eq(st_open(&f, path, why, sizeof(why)), err);
	ck_assert_ptr_null(f);
	ck_assert_msg(strstr(why, phrase) != NULL, "'%s' not in '%s'", phrase, why);
}

/* bad_header writes header with its true length and data_len bytes, expects refusal. */
static void bad_header(const char *header, size_t data_len, const char *phrase)
{
	refused(write_raw(header, strlen(header), data_len), MB_ERR_PARSE, phrase);
}

#define E(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape \
	",\"data_offsets\":[" #b "," #e "]}"

START_TEST(good_raw_file_accepted)
{
	/* The baseline the malformed cases below depart from: it must open. */
	struct st_file *f = NULL;
	const char *h = "{" E("a", "F32", "[2]", 0, 8) "," E("b", "BF16", "[3]", 8, 14) "}   ";
	const char *p = write_raw(h, strlen(h), 14);
	ck_assert_msg(st_open(&f, p, why, sizeof(why)) == MB_OK, "%s", why);
	ck_assert_int_eq(st_count(f), 2);
	st_close(f);
}
END_TEST

START_TEST(truncated_and_bad_lengths)
{
	const char *h = "{" E("a", "F32", "[2]", 0, 8) "}";
	size_t hl = strlen(h);
	write_bytes(tmp_path("bad.safetensors"), "", 0);
	refused(tmp_path("bad.safetensors"), MB_ERR_PARSE, "truncated");
	write_bytes(tmp_path("bad.safetensors"), "\x10\0\0", 3);
	refused(tmp_path("bad.safetensors"), MB_ERR_PARSE, "truncated");
	refused(write_raw(h, hl + 9, 8), MB_ERR_PARSE, "header length");
	refused(write_raw(h, 1ull << 62, 8), MB_ERR_PARSE, "header length");
	refused(write_raw(h, ST_MAX_HEADER + 1, 8), MB_ERR_PARSE, "header length");
	refused(write_raw(h, 1, 8), MB_ERR_PARSE, "header length");
	refused(write_raw(h, hl, 7), MB_ERR_PARSE, "run past the end");
	refused(write_raw(h, hl - 1, 8), MB_ERR_PARSE, "JSON");
	refused(write_raw(h, hl, 9), MB_ERR_PARSE, "1 trailing bytes");
}
END_TEST

START_TEST(bad_offsets_refused)
{
	bad_header("{" E("a", "F32", "[2]", 0, 8) "," E("b", "F32", "[2]", 4, 12) "}", 12,
		   "overlap");
	bad_header("{" E("a", "F32", "[2]", 0, 8) "," E("b", "F32", "[2]", 0, 8) "}", 8,
		   "overlap");
	bad_header("{" E("a", "F32", "[2]", 0, 8) "," E("b", "F32", "[2]", 12, 20) "}", 20,
		   "gap");
	bad_header("{" E("a", "F32", "[2]", 4, 12) "}", 12, "gap");
	bad_header("{" E("a", "F32", "[2]", 8, 0) "}", 8, "begin <= end");
	bad_header("{" E("a", "F32", "[2]", -1, 7) "}", 8, "data_offsets");
	bad_header("{" E("a", "F32", "[2]", 0, 8.5) "}", 8, "data_offsets");
	bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
		   "data_offsets");
	bad_header("{" E("a", "F32", "[2]", 0, 9007199254740994) "}", 8, "data_offsets");
}
END_TEST

START_TEST(bad_entries_refused)
{
	bad_header("{" E("a", "F16", "[2]", 0, 4) "}", 4, "dtype 'F16' is not supported");
	bad_header("{" E("a", "I8", "[2]", 0, 2) "}", 2, "not supported");
	bad_header("{\"a\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
	bad_header("{" E("a", "F32", "[3]", 0, 8) "}", 8, "12 bytes, data_offsets span 8");
	bad_header("{" E("a", "BF16", "[2,3]", 0, 8) "}", 8, "12 bytes, data_offsets span 8");
	bad_header("{" E("a", "F32", "[2]", 0, 8) "," E("a", "F32", "[2]", 8, 16) "}", 16,
		   "'a' appears twice");
	bad_header("{" E("a", "F32", "[1,1,1,1,1,1,1,1,2]", 0, 8) "}", 8, "at most 8");
	bad_header("{" E("a", "F32", "[-2]", 0, 8) "}", 8, "shape[0]");
	bad_header("{" E("a", "F32", "[2.5]", 0, 8) "}", 8, "shape[0]");
	bad_header("{" E("a", "F32", "{}", 0, 8) "}", 8, "shape");
	bad_header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "no 'shape'");
	bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[2],\"data_offsets\":[0,8]}}",
		   8, "repeated key");
	bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
		   "unknown key");
	bad_header("{\"a\":[1,2]}", 0, "not an object");
	bad_header("{" E("", "F32", "[2]", 0, 8) "}", 8, "empty name");
	bad_header("{\"__metadata__\":{\"k\":1}," E("a", "F32", "[2]", 0, 8) "}", 8,
		   "__metadata__");
	bad_header("{\"__metadata__\":[]," E("a", "F32", "[2]", 0, 8) "}", 8, "__metadata__");
	bad_header("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "twice");
}
END_TEST

START_TEST(bad_json_refused)
{
	bad_header("[1,2,3]  ", 0, "JSON object");
	bad_header("{\"a\":", 0, "well-formed JSON");
	bad_header("{} x", 0, "well-formed JSON");
	bad_header("{}{}", 0, "well-formed JSON");
	bad_header("{\"\xff\":{}}", 0, "UTF-8");
	write_bytes(tmp_path("bad.safetensors"), "\x04\0\0\0\0\0\0\0{}\0 ", 12);
	refused(tmp_path("bad.safetensors"), MB_ERR_PARSE, "JSON object");
	/* An empty object is a valid file of no tensors. */
	struct st_file *f = NULL;
	ck_assert_int_eq(st_open(&f, write_raw("{}      ", 8, 0), why, sizeof(why)), MB_OK);
	ck_assert_int_eq(st_count(f), 0);
	st_close(f);
}
END_TEST

START_TEST(not_a_regular_file)
{
	const char *fifo = tmp_path("fifo");
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	/* NOTE: a reader that opened the FIFO blocking would hang here: no writer exists. */
	refused(fifo, MB_ERR_IO, "not a regular file");
	refused("/dev/zero", MB_ERR_IO, "not a regular file");
	refused(dir, MB_ERR_IO, "not a regular file");
	refused(tmp_path("missing.safetensors"), MB_ERR_IO, "cannot open");
}
END_TEST

/* ---- fuzz: mutated files must be refused or read, never crash ---- */

/* mutate changes p (n bytes, room for cap) in one of several ways; returns the size. */
static size_t mutate(unsigned char *p, size_t n, size_t cap, size_t hl, struct mb_rng *rng)
{
	static const char json_chars[] = "{}[]\",:-.0123456789 eE\\a";
	size_t at = (size_t)(mb_rng_next(rng) % n);
	size_t in_header = 8 + (size_t)(mb_rng_next(rng) % hl);
	switch (mb_rng_next(rng) % 7) {
	case 0: p[at] = (unsigned char)mb_rng_next(rng); break;
	case 1: p[in_header] = (unsigned char)json_chars[mb_rng_next(rng) % (sizeof(json_chars) - 1)]; break;
	case 2: return at;                                      /* truncate */
	case 3: p[(size_t)(mb_rng_next(rng) % 8)] = (unsigned char)mb_rng_next(rng); break;
	case 4:                                                 /* delete a header byte */
		memmove(p + in_header, p + in_header + 1, n - in_header - 1);
		return n - 1;
	case 5:                                                 /* duplicate a header span */
		if (n + 16 <= cap) {
			memmove(p + in_header + 16, p + in_header, n - in_header);
			return n + 16;
		}
		break;
	default:                                                /* a digit of an offset */
		if (p[in_header] >= '0' && p[in_header] <= '9')
			p[in_header] = (unsigned char)('0' + mb_rng_next(rng) % 10);
	}
	return n;
}

START_TEST(fuzz_mutated_files)
{
	struct mb_rng rng;
	struct set s;
	size_t n0, opened = 0;
	mb_rng_seed(&rng, test_seed(), 2);
	make_set(&s, &rng);
	const char *meta[] = { "format", "pt", NULL };
	ck_assert_int_eq(st_write(tmp_path("f0"), s.t, s.n, meta, why, sizeof(why)), MB_OK);
	unsigned char *orig = read_bytes(tmp_path("f0"), &n0);
	size_t hl = orig[0] | (size_t)orig[1] << 8, cap = n0 + 64;
	unsigned char *p = malloc(cap);
	for (int it = 0; it < 3000; it++) {
		size_t n = n0;
		memcpy(p, orig, n0);
		for (int k = 1 + (int)(mb_rng_next(&rng) % 3); k > 0 && n > 8; k--)
			n = mutate(p, n, cap, hl < n - 8 ? hl : n - 8, &rng);
		write_bytes(tmp_path("fz"), p, n);
		struct st_file *f = NULL;
		why[0] = '\0';
		int err = st_open(&f, tmp_path("fz"), why, sizeof(why));
		if (err) {
			ck_assert_msg(err == MB_ERR_PARSE && f == NULL && strlen(why) > 10,
				      "it %d: err %d '%s' (seed %llu)", it, err, why,
				      (unsigned long long)test_seed());
			continue;
		}
		opened++;
		uint64_t span = 0;
		for (int i = 0; i < st_count(f); i++) {
			const struct st_entry *e = st_at(f, i);
			float *dst = malloc((size_t)e->numel * sizeof(float) + 1);
			ck_assert_int_eq(st_read_f32(f, e->name, dst, NULL, 0, why, sizeof(why)), MB_OK);
			span += e->end - e->begin;
			free(dst);
		}
		ck_assert_uint_le(span, n);
		st_close(f);
	}
	/* Some mutations (a digit of a value, a byte of data) keep the file valid. */
	ck_assert_uint_gt(opened, 0);
	free(p);
	free(orig);
	free_set(&s);
}
END_TEST

/* ---- cross-check with Python readers and writers ---- */

/* crosscheck runs st_crosscheck.py MODE on a random file; returns its exit status. */
static int crosscheck(const char *mode)
{
	struct mb_rng rng;
	struct set s;
	char cmd[1024];
	const char *py = getenv("MOEBENCH_PYTHON") ? getenv("MOEBENCH_PYTHON") : "python3";
	const char *meta[] = { "format", "pt", "note", "caf\xc3\xa9 \"q\"", NULL };
	mb_rng_seed(&rng, test_seed(), 3);
	make_set(&s, &rng);
	ck_assert_int_eq(st_write(tmp_path("c.in"), s.t, s.n, meta, why, sizeof(why)), MB_OK);
	snprintf(cmd, sizeof(cmd), "%s '%s/tests/st_crosscheck.py' %s '%s' '%s'", py,
		 MOEBENCH_SOURCE_DIR, mode, tmp_path("c.in"), tmp_path("c.out"));
	int rc = system(cmd);
	rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
	if (rc == 0) {
		struct st_file *f = NULL;
		check_against(tmp_path("c.out"), &s, 1);
		ck_assert_int_eq(st_open(&f, tmp_path("c.out"), why, sizeof(why)), MB_OK);
		ck_assert_str_eq(st_meta(f, "reader"), mode);
		ck_assert_str_eq(st_meta(f, "note"), meta[3]);
		st_close(f);
	}
	free_set(&s);
	return rc;
}

START_TEST(python_stdlib_both_ways)
{
	ck_assert_int_eq(crosscheck("stdlib"), 0);
}
END_TEST

/* same_bytes_as_reference writes the set as F32 (BF16 ones rounded first, as the
 * reference read them) in name order and compares with the reference writer's file. */
static void same_bytes_as_reference(const char *ref)
{
	struct mb_rng rng;
	struct set s;
	const char *meta[] = { "format", "pt", NULL };
	size_t n_ref, n_ours;
	mb_rng_seed(&rng, test_seed(), 3);
	make_set(&s, &rng);
	for (int i = 0; i < s.n; i++) {
		for (int64_t j = 0; j < numel_of(&s.t[i]) && s.t[i].dtype == ST_BF16; j++)
			s.data[i][j] = bf16_round(s.data[i][j]);
		s.t[i].dtype = ST_F32;
	}
	ck_assert_int_eq(st_write(tmp_path("c.ours"), s.t, s.n, meta, why, sizeof(why)), MB_OK);
	unsigned char *a = read_bytes(ref, &n_ref), *b = read_bytes(tmp_path("c.ours"), &n_ours);
	ck_assert_uint_eq(n_ref, n_ours);
	ck_assert_msg(memcmp(a, b, n_ref) == 0, "bytes differ from the reference writer's");
	free(a);
	free(b);
	free_set(&s);
}

START_TEST(python_safetensors_both_ways)
{
	int rc = crosscheck("safetensors");
	if (rc == 77) {
		printf("test_safetensors: SKIPPED python_safetensors_both_ways: the Python "
		       "modules safetensors and numpy are not installed\n");
		return;
	}
	ck_assert_int_eq(rc, 0);
	same_bytes_as_reference(tmp_path("c.out.ref"));
}
END_TEST

static Suite *safetensors_suite(void)
{
	Suite *s = suite_create("safetensors");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_test(core, round_trip_random);
	tcase_add_test(core, round_trip_across_chunks);
	tcase_add_test(core, metadata_and_order_kept);
	tcase_add_test(core, exact_bytes);
	tcase_add_test(core, header_padded_to_8);
	tcase_add_test(core, bf16_rounds_to_nearest_even);
	tcase_add_test(core, shape_mismatch_named);
	tcase_add_test(core, writer_refuses_bad_lists_and_keeps_old_file);
	suite_add_tcase(s, core);
	TCase *bad = tcase_create("malformed");
	tcase_add_checked_fixture(bad, setup, teardown);
	tcase_add_test(bad, good_raw_file_accepted);
	tcase_add_test(bad, truncated_and_bad_lengths);
	tcase_add_test(bad, bad_offsets_refused);
	tcase_add_test(bad, bad_entries_refused);
	tcase_add_test(bad, bad_json_refused);
	tcase_add_test(bad, not_a_regular_file);
	suite_add_tcase(s, bad);
	TCase *fuzz = tcase_create("fuzz");
	tcase_add_checked_fixture(fuzz, setup, teardown);
	tcase_add_test(fuzz, fuzz_mutated_files);
	suite_add_tcase(s, fuzz);
	TCase *py = tcase_create("python");
	tcase_add_checked_fixture(py, setup, teardown);
	tcase_add_test(py, python_stdlib_both_ways);
	tcase_add_test(py, python_safetensors_both_ways);
	suite_add_tcase(s, py);
	return s;
}

MB_CHECK_MAIN(safetensors_suite)
