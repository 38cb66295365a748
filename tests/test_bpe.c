/* test_bpe.c - the byte-level BPE tokenizer: hand-worked merges, the trainer against a
 * plain recount-every-merge reference, encode against applying merges one by one,
 * exact round trips, the JSON file and its refusals, and the fortunes corpus. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpe.h"
#include "check_main.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

#define FORTUNES_DIR "/usr/share/games/fortunes"

static char dir[64];
static char why[512];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mb_bpe_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *tmp_path(const char *name)
{
	static char buf[256];
	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static struct bpe *train_str(const char *s, int vocab)
{
	struct bpe *b = NULL;
	ck_assert_int_eq(bpe_train(&b, (const uint8_t *)s, strlen(s), vocab, why, sizeof(why)),
			 MB_OK);
	return b;
}

/* encode_str encodes s and checks the result against want (n tokens). */
static void expect_tokens(const struct bpe *b, const char *s, const int32_t *want, size_t n)
{
	int32_t got[64];
	size_t m;
	ck_assert_int_eq(bpe_encode(b, (const uint8_t *)s, strlen(s), got, &m), MB_OK);
	ck_assert_uint_eq(m, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(got[i], want[i]);
}

static void expect_merge(const struct bpe *b, int r, int32_t x, int32_t y)
{
	int32_t l, rr;
	ck_assert_int_eq(bpe_merge(b, r, &l, &rr), MB_OK);
	ck_assert_int_eq(l, x);
	ck_assert_int_eq(rr, y);
}

START_TEST(hand_worked_corpus)
{
	/* "aaabdaaabac": aa occurs 4 times -> 256. Then (256,a) and (a,b) both occur
	 * twice: the lower pair (97,98) wins -> 257. Then (256,257) twice -> 258 = "aaab".
	 * Every pair left occurs once: training stops at 259 tokens of the 300 asked. */
	struct bpe *b = train_str("aaabdaaabac", 300);
	size_t len;
	ck_assert_int_eq(bpe_vocab_size(b), 259);
	expect_merge(b, 0, 'a', 'a');
	expect_merge(b, 1, 'a', 'b');
	expect_merge(b, 2, 256, 257);
	ck_assert_int_eq(bpe_merge(b, 3, &(int32_t){ 0 }, &(int32_t){ 0 }), MB_ERR_ARG);
	const uint8_t *t = bpe_token_bytes(b, 258, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(memcmp(t, "aaab", 4), 0);
	ck_assert_ptr_null(bpe_token_bytes(b, 259, &len));
	expect_tokens(b, "aaabdaaabac", (int32_t[]){ 258, 'd', 258, 'a', 'c' }, 5);
	expect_tokens(b, "abaa", (int32_t[]){ 257, 256 }, 2);
	bpe_free(b);
	/* No pair occurs twice in a text of fewer than 3 bytes: bytes alone. */
	b = train_str("", 300);
	ck_assert_int_eq(bpe_vocab_size(b), 256);
	expect_tokens(b, "", NULL, 0);
	bpe_free(b);
	/* The vocabulary asked for caps the merges. */
	b = train_str("aaabdaaabac", 257);
	ck_assert_int_eq(bpe_vocab_size(b), 257);
	bpe_free(b);
}
END_TEST

START_TEST(overlapping_runs_merge_left_to_right)
{
	/* Eight a: (a,a) counts 7 overlapping pairs, merges into 4 x 256; (256,256) then
	 * counts 3 and merges into 2 x 257; (257,257) occurs once. */
	struct bpe *b = train_str("aaaaaaaa", 400);
	ck_assert_int_eq(bpe_vocab_size(b), 258);
	expect_merge(b, 0, 'a', 'a');
	expect_merge(b, 1, 256, 256);
	expect_tokens(b, "aaaaaaaa", (int32_t[]){ 257, 257 }, 2);
	expect_tokens(b, "aaaaa", (int32_t[]){ 257, 'a' }, 2);
	expect_tokens(b, "aaa", (int32_t[]){ 256, 'a' }, 2);
	expect_tokens(b, "baaab", (int32_t[]){ 'b', 256, 'a', 'b' }, 4);
	bpe_free(b);
}
END_TEST

/* ---- references: recount every pair per merge, apply merges one by one ---- */

/* ref_train trains by full recount; returns the number of merges written to merges. */
static int ref_train(const uint8_t *text, size_t n, int vocab, int32_t *merges)
{
	int32_t *seq = malloc(n * sizeof(*seq));
	int64_t *count = malloc((size_t)vocab * (size_t)vocab * sizeof(*count));
	int nm = 0;
	for (size_t i = 0; i < n; i++)
		seq[i] = text[i];
	while (256 + nm < vocab) {
		int64_t best = 1;
		int32_t ba = -1, bb = -1;
		memset(count, 0, (size_t)vocab * (size_t)vocab * sizeof(*count));
		for (size_t i = 0; i + 1 < n; i++)
			count[seq[i] * vocab + seq[i + 1]]++;
		for (int32_t a = 0; a < vocab; a++)
			for (int32_t c = 0; c < vocab; c++)
				if (count[a * vocab + c] > best)
					best = count[a * vocab + c], ba = a, bb = c;
		if (ba < 0)
			break;
		merges[2 * nm] = ba;
		merges[2 * nm + 1] = bb;
		size_t w = 0;
		for (size_t i = 0; i < n; i++) {
			if (i + 1 < n && seq[i] == ba && seq[i + 1] == bb)
				seq[w++] = 256 + nm, i++;
			else
				seq[w++] = seq[i];
		}
		n = w;
		nm++;
	}
	free(seq);
	free(count);
	return nm;
}

/* ref_encode applies merges in rank order, each left to right, over the whole text. */
static size_t ref_encode(const struct bpe *b, const uint8_t *text, size_t n, int32_t *seq)
{
	for (size_t i = 0; i < n; i++)
		seq[i] = text[i];
	for (int r = 0; r < bpe_vocab_size(b) - 256; r++) {
		int32_t x, y;
		size_t w = 0;
		bpe_merge(b, r, &x, &y);
		for (size_t i = 0; i < n; i++) {
			if (i + 1 < n && seq[i] == x && seq[i + 1] == y)
				seq[w++] = 256 + r, i++;
			else
				seq[w++] = seq[i];
		}
		n = w;
	}
	return n;
}

/* random_text fills n bytes from an alphabet of k letters (small k: deep merges). */
static void random_text(struct mb_rng *rng, uint8_t *t, size_t n, int k)
{
	for (size_t i = 0; i < n; i++)
		t[i] = (uint8_t)('a' + mb_rng_next(rng) % (uint64_t)k);
}

START_TEST(trainer_matches_recount_reference)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, test_seed(), 1);
	for (int rep = 0; rep < 12; rep++) {
		size_t n = 50 + mb_rng_next(&rng) % 2000;
		int k = 2 + (int)(mb_rng_next(&rng) % 5), vocab = 256 + 48;
		uint8_t *t = malloc(n);
		int32_t merges[2 * 48];
		struct bpe *b = NULL;
		random_text(&rng, t, n, k);
		int nm = ref_train(t, n, vocab, merges);
		ck_assert_int_eq(bpe_train(&b, t, n, vocab, why, sizeof(why)), MB_OK);
		ck_assert_msg(bpe_vocab_size(b) == 256 + nm, "%d merges, reference %d (seed %llu)",
			      bpe_vocab_size(b) - 256, nm, (unsigned long long)test_seed());
		for (int r = 0; r < nm; r++)
			expect_merge(b, r, merges[2 * r], merges[2 * r + 1]);
		bpe_free(b);
		free(t);
	}
}
END_TEST

START_TEST(encode_matches_merges_applied_in_order)
{
	struct mb_rng rng;
	struct bpe *b = NULL;
	uint8_t corpus[3000], text[1500];
	int32_t got[1500], want[1500];
	mb_rng_seed(&rng, test_seed(), 2);
	random_text(&rng, corpus, sizeof(corpus), 4);
	ck_assert_int_eq(bpe_train(&b, corpus, sizeof(corpus), 256 + 200, why, sizeof(why)), MB_OK);
	for (int rep = 0; rep < 20; rep++) {
		size_t n = mb_rng_next(&rng) % sizeof(text), m;
		random_text(&rng, text, n, 2 + rep % 5);
		size_t wn = ref_encode(b, text, n, want);
		ck_assert_int_eq(bpe_encode(b, text, n, got, &m), MB_OK);
		ck_assert_uint_eq(m, wn);
		for (size_t i = 0; i < m; i++)
			ck_assert_int_eq(got[i], want[i]);
	}
	bpe_free(b);
}
END_TEST

/* round_trip encodes and decodes n bytes and checks the bytes come back. */
static void round_trip(const struct bpe *b, const uint8_t *t, size_t n)
{
	int32_t *tok = malloc((n + 1) * sizeof(*tok));
	uint8_t *back = malloc(n + 1);
	size_t m, len;
	ck_assert_int_eq(bpe_encode(b, t, n, tok, &m), MB_OK);
	ck_assert_uint_le(m, n);
	ck_assert_int_eq(bpe_decode(b, tok, m, back, n, &len), MB_OK);
	ck_assert_uint_eq(len, n);
	ck_assert_msg(n == 0 || memcmp(back, t, n) == 0, "round trip differs (seed %llu)",
		      (unsigned long long)test_seed());
	free(tok);
	free(back);
}

static const char prose[] =
	"The quick brown fox jumps over the lazy dog. The dog, being lazy, did not jump\n"
	"over the fox; the fox jumped over the dog again and again, and the dog slept on.\n"
	"\tA tab, some \xc3\xa9 UTF-8, a NUL byte \0 and \xff\xfe bytes that are not text.\n";

START_TEST(round_trip_random_bytes_and_text)
{
	struct mb_rng rng;
	struct bpe *b = NULL;
	uint8_t t[4096];
	mb_rng_seed(&rng, test_seed(), 3);
	ck_assert_int_eq(bpe_train(&b, (const uint8_t *)prose, sizeof(prose) - 1, 320, why,
				   sizeof(why)), MB_OK);
	ck_assert_int_gt(bpe_vocab_size(b), 280);
	round_trip(b, (const uint8_t *)prose, sizeof(prose) - 1);
	round_trip(b, (const uint8_t *)"", 0);
	round_trip(b, (const uint8_t *)"T", 1);
	for (int rep = 0; rep < 50; rep++) {
		size_t n = mb_rng_next(&rng) % sizeof(t);
		for (size_t i = 0; i < n; i++)
			t[i] = (uint8_t)mb_rng_next(&rng);
		/* Splice in prose so that merges apply inside random bytes. */
		if (n > sizeof(prose))
			memcpy(t + mb_rng_next(&rng) % (n - sizeof(prose)), prose, sizeof(prose) - 1);
		round_trip(b, t, n);
	}
	bpe_free(b);
}
END_TEST

START_TEST(decode_refuses_bad_tokens_and_small_buffers)
{
	struct bpe *b = train_str("aaabdaaabac", 300);
	uint8_t out[8];
	size_t len;
	ck_assert_int_eq(bpe_decode(b, (int32_t[]){ 258, 259 }, 2, out, 8, &len), MB_ERR_ARG);
	ck_assert_int_eq(bpe_decode(b, (int32_t[]){ -1 }, 1, out, 8, &len), MB_ERR_ARG);
	ck_assert_int_eq(bpe_decode(b, (int32_t[]){ 258, 258, 'x' }, 3, out, 8, &len), MB_ERR_ARG);
	ck_assert_uint_eq(len, 9);
	ck_assert_int_eq(bpe_decode(b, (int32_t[]){ 258, 258, 'x' }, 3, NULL, 0, &len), MB_OK);
	ck_assert_uint_eq(len, 9);
	bpe_free(b);
}
END_TEST

START_TEST(deterministic)
{
	struct mb_rng rng;
	struct bpe *b1 = NULL, *b2 = NULL;
	uint8_t t[20000];
	mb_rng_seed(&rng, test_seed(), 4);
	random_text(&rng, t, sizeof(t), 6);
	ck_assert_int_eq(bpe_train(&b1, t, sizeof(t), 600, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(bpe_train(&b2, t, sizeof(t), 600, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(bpe_vocab_size(b1), 600);
	ck_assert_int_eq(bpe_vocab_size(b2), 600);
	for (int r = 0; r < 600 - 256; r++) {
		int32_t x, y;
		bpe_merge(b1, r, &x, &y);
		expect_merge(b2, r, x, y);
	}
	bpe_free(b1);
	bpe_free(b2);
}
END_TEST

START_TEST(bad_arguments_refused)
{
	struct bpe *b = (struct bpe *)1;
	ck_assert_int_eq(bpe_train(&b, (const uint8_t *)"ab", 2, 255, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(bpe_train(&b, (const uint8_t *)"ab", 2, BPE_MAX_VOCAB + 1, why,
				   sizeof(why)), MB_ERR_ARG);
	ck_assert_int_eq(bpe_from_merges(&b, (int32_t[]){ 97, 256 }, 1, why, sizeof(why)),
			 MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "merge 0 ([97, 256]) names a token not defined"));
	ck_assert_int_eq(bpe_from_merges(&b, (int32_t[]){ 97, 98, 97, 98 }, 2, why, sizeof(why)),
			 MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "repeats merge 0"));
	ck_assert_int_eq(bpe_from_merges(&b, (int32_t[]){ -1, 98 }, 1, why, sizeof(why)),
			 MB_ERR_PARSE);
	/* Doubling a token eleven times passes BPE_MAX_TOKEN_BYTES (1024). */
	int32_t chain[2 * 11];
	for (int r = 0; r < 11; r++)
		chain[2 * r] = chain[2 * r + 1] = r ? 255 + r : 'a';
	ck_assert_int_eq(bpe_from_merges(&b, chain, 10, why, sizeof(why)), MB_OK);
	bpe_free(b);
	ck_assert_int_eq(bpe_from_merges(&b, chain, 11, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "2048 bytes"));
	ck_assert_ptr_null(b);
}
END_TEST

/* ---- the JSON file ---- */

static void write_text(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(s, 1, n, f), n);
	fclose(f);
}

START_TEST(save_exact_and_load_back)
{
	static const char want[] = "{\"format\":\"moebench-bpe\",\"version\":1,\"vocab_size\":259,"
				   "\"source\":\"hand \\\"corpus\\\"\",\"merges\":[\n[97,97],[97,98],"
				   "[256,257]]}\n";
	struct bpe *b = train_str("aaabdaaabac", 300), *c = NULL;
	char got[512] = "";
	ck_assert_int_eq(bpe_save(b, tmp_path("v.json"), "hand \"corpus\"", why, sizeof(why)), MB_OK);
	FILE *f = fopen(tmp_path("v.json"), "r");
	ck_assert_uint_eq(fread(got, 1, sizeof(got) - 1, f), strlen(want));
	fclose(f);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(bpe_load(&c, tmp_path("v.json"), why, sizeof(why)), MB_OK);
	ck_assert_int_eq(bpe_vocab_size(c), 259);
	expect_merge(c, 2, 256, 257);
	expect_tokens(c, "aaabdaaabac", (int32_t[]){ 258, 'd', 258, 'a', 'c' }, 5);
	bpe_free(b);
	bpe_free(c);
}
END_TEST

START_TEST(save_load_large_round_trip)
{
	struct mb_rng rng;
	struct bpe *b = NULL, *c = NULL;
	uint8_t t[30000];
	mb_rng_seed(&rng, test_seed(), 5);
	random_text(&rng, t, sizeof(t), 8);
	ck_assert_int_eq(bpe_train(&b, t, sizeof(t), 1000, why, sizeof(why)), MB_OK);
	ck_assert_int_eq(bpe_save(b, tmp_path("big.json"), NULL, why, sizeof(why)), MB_OK);
	ck_assert_msg(bpe_load(&c, tmp_path("big.json"), why, sizeof(why)) == MB_OK, "%s", why);
	ck_assert_int_eq(bpe_vocab_size(c), bpe_vocab_size(b));
	for (int r = 0; r < bpe_vocab_size(b) - 256; r++) {
		int32_t x, y;
		bpe_merge(b, r, &x, &y);
		expect_merge(c, r, x, y);
	}
	bpe_free(b);
	bpe_free(c);
}
END_TEST

/* bad_file writes text and expects bpe_load to refuse it with phrase in the message. */
static void bad_file(const char *text, int err, const char *phrase)
{
	struct bpe *b = (struct bpe *)1;
	write_text(tmp_path("bad.json"), text, strlen(text));
	ck_assert_int_eq(bpe_load(&b, tmp_path("bad.json"), why, sizeof(why)), err);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(why, phrase) && strstr(why, "bad.json"), "'%s' not in '%s'", phrase,
		      why);
}

#define HEAD "{\"format\":\"moebench-bpe\",\"version\":1,"

START_TEST(malformed_files_refused)
{
	bad_file("{\"format\":\"moebench-bpe\",", MB_ERR_PARSE, "not a JSON object");
	bad_file("", MB_ERR_PARSE, "not a JSON object");
	bad_file("[1,2]", MB_ERR_PARSE, "not a JSON object");
	bad_file(HEAD "\"vocab_size\":257,\"merges\":[[97,97]]} x", MB_ERR_PARSE, "JSON");
	bad_file("{\"format\":\"gpt2\",\"version\":1,\"vocab_size\":256,\"merges\":[]}",
		 MB_ERR_PARSE, "not a moebench BPE file");
	bad_file("{\"format\":\"moebench-bpe\",\"version\":2,\"vocab_size\":256,\"merges\":[]}",
		 MB_ERR_PARSE, "\"version\" must be 1");
	bad_file(HEAD "\"vocab_size\":258,\"merges\":[[97,97]]}", MB_ERR_PARSE, "= 2 pairs");
	bad_file(HEAD "\"vocab_size\":255,\"merges\":[]}", MB_ERR_PARSE, "vocab_size");
	bad_file(HEAD "\"vocab_size\":257.5,\"merges\":[]}", MB_ERR_PARSE, "vocab_size");
	bad_file(HEAD "\"vocab_size\":257,\"merges\":[[97,257]]}", MB_ERR_PARSE,
		 "merge 0 ([97, 257]) names a token not defined");
	bad_file(HEAD "\"vocab_size\":258,\"merges\":[[97,98],[97,98]]}", MB_ERR_PARSE,
		 "repeats merge 0");
	bad_file(HEAD "\"vocab_size\":257,\"merges\":[[97]]}", MB_ERR_PARSE, "merge 0 is not");
	bad_file(HEAD "\"vocab_size\":257,\"merges\":[[97,-1]]}", MB_ERR_PARSE, "merge 0 is not");
	bad_file(HEAD "\"vocab_size\":257,\"merges\":[[97,\"b\"]]}", MB_ERR_PARSE, "merge 0 is not");
	bad_file(HEAD "\"vocab_size\":256,\"merges\":[],\"extra\":1}", MB_ERR_PARSE,
		 "unknown key \"extra\"");
	bad_file(HEAD "\"vocab_size\":256,\"merges\":[],\"merges\":[]}", MB_ERR_PARSE,
		 "repeated key");
	bad_file(HEAD "\"vocab_size\":256,\"source\":3,\"merges\":[]}", MB_ERR_PARSE, "source");
	static const char nul[] = HEAD "\"vocab_size\":256,\"merges\":[]}\0x";
	write_text(tmp_path("bad.json"), nul, sizeof(nul) - 1);
	struct bpe *b = NULL;
	ck_assert_int_eq(bpe_load(&b, tmp_path("bad.json"), why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "NUL"));
	ck_assert_int_eq(bpe_load(&b, dir, why, sizeof(why)), MB_ERR_IO);
	ck_assert_int_eq(bpe_load(&b, "/dev/zero", why, sizeof(why)), MB_ERR_IO);
	ck_assert_int_eq(bpe_load(&b, tmp_path("missing.json"), why, sizeof(why)), MB_ERR_IO);
	ck_assert_ptr_null(b);
}
END_TEST

START_TEST(fuzz_mutated_files)
{
	static const char chars[] = "[],{}\":0123456789-. ae";
	struct mb_rng rng;
	struct bpe *b = NULL;
	size_t n, loaded = 0;
	char text[65536], orig[65536];
	mb_rng_seed(&rng, test_seed(), 6);
	ck_assert_int_eq(bpe_train(&b, (const uint8_t *)prose, sizeof(prose) - 1, 300, why,
				   sizeof(why)), MB_OK);
	ck_assert_int_eq(bpe_save(b, tmp_path("f.json"), "prose", why, sizeof(why)), MB_OK);
	bpe_free(b);
	FILE *f = fopen(tmp_path("f.json"), "rb");
	n = fread(orig, 1, sizeof(orig), f);
	fclose(f);
	for (int it = 0; it < 1500; it++) {
		size_t m = n;
		memcpy(text, orig, n);
		for (int k = 1 + (int)(mb_rng_next(&rng) % 3); k > 0 && m > 0; k--) {
			size_t at = (size_t)(mb_rng_next(&rng) % m);
			if (mb_rng_next(&rng) % 8 == 0)
				m = at;                 /* truncate */
			else
				text[at] = chars[mb_rng_next(&rng) % (sizeof(chars) - 1)];
		}
		write_text(tmp_path("fz.json"), text, m);
		b = NULL;
		int err = bpe_load(&b, tmp_path("fz.json"), why, sizeof(why));
		if (err) {
			ck_assert_msg(err == MB_ERR_PARSE && !b && strstr(why, "fz.json"),
				      "it %d: %d '%s' (seed %llu)", it, err, why,
				      (unsigned long long)test_seed());
			continue;
		}
		loaded++;
		round_trip(b, (const uint8_t *)prose, sizeof(prose) - 1);
		bpe_free(b);
	}
	ck_assert_uint_gt(loaded, 0);
}
END_TEST

/* ---- the fortunes corpus ---- */

/* read_fortunes concatenates the regular files of FORTUNES_DIR (not the .dat
 * indexes, not the .u8 links); NULL when the folder is absent. */
static uint8_t *read_fortunes(size_t *n)
{
	DIR *d = opendir(FORTUNES_DIR);
	struct dirent *e;
	uint8_t *buf = NULL;
	*n = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		char path[512];
		struct stat st;
		size_t l = strlen(e->d_name);
		snprintf(path, sizeof(path), "%s/%s", FORTUNES_DIR, e->d_name);
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (l > 4 && strcmp(e->d_name + l - 4, ".dat") == 0))
			continue;
		buf = realloc(buf, *n + (size_t)st.st_size);
		FILE *f = fopen(path, "rb");
		ck_assert_ptr_nonnull(f);
		*n += fread(buf + *n, 1, (size_t)st.st_size, f);
		fclose(f);
	}
	closedir(d);
	return buf;
}

START_TEST(fortunes_compress_and_round_trip)
{
	size_t n, m, hn, hm;
	uint8_t *text = read_fortunes(&n);
	struct bpe *b = NULL;
	struct timespec t0, t1;
	if (!text) {
		printf("test_bpe: SKIPPED fortunes_compress_and_round_trip: %s is missing "
		       "(Debian package fortunes; `make deps` installs it)\n", FORTUNES_DIR);
		return;
	}
	ck_assert_uint_gt(n, 1000000);
	/* Train on the first 95%, measure on the held-out 5% too. */
	size_t train = n / 20 * 19;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(bpe_train(&b, text, train, 1024, why, sizeof(why)), MB_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(bpe_vocab_size(b), 1024);
	int32_t *tok = malloc(n * sizeof(*tok));
	ck_assert_int_eq(bpe_encode(b, text, train, tok, &m), MB_OK);
	ck_assert_int_eq(bpe_encode(b, text + train, n - train, tok + m, &hm), MB_OK);
	hn = n - train;
	printf("test_bpe: fortunes %zu bytes, 1024 tokens trained in %.2f s; bytes/token "
	       "%.3f (train) %.3f (held-out)\n", train, (double)(t1.tv_sec - t0.tv_sec) +
	       1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), (double)train / (double)m,
	       (double)hn / (double)hm);
	ck_assert_msg((double)train / (double)m > 2.0, "compression %.3f", (double)train / (double)m);
	ck_assert_msg((double)hn / (double)hm > 1.5, "held-out compression %.3f",
		      (double)hn / (double)hm);
	round_trip(b, text, n);
	free(tok);
	free(text);
	bpe_free(b);
}
END_TEST

static Suite *bpe_suite(void)
{
	Suite *s = suite_create("bpe");
	TCase *core = tcase_create("core");
	tcase_add_test(core, hand_worked_corpus);
	tcase_add_test(core, overlapping_runs_merge_left_to_right);
	tcase_add_test(core, trainer_matches_recount_reference);
	tcase_add_test(core, encode_matches_merges_applied_in_order);
	tcase_add_test(core, round_trip_random_bytes_and_text);
	tcase_add_test(core, decode_refuses_bad_tokens_and_small_buffers);
	tcase_add_test(core, deterministic);
	tcase_add_test(core, bad_arguments_refused);
	suite_add_tcase(s, core);
	TCase *file = tcase_create("file");
	tcase_add_checked_fixture(file, setup, teardown);
	tcase_add_test(file, save_exact_and_load_back);
	tcase_add_test(file, save_load_large_round_trip);
	tcase_add_test(file, malformed_files_refused);
	suite_add_tcase(s, file);
	TCase *fuzz = tcase_create("fuzz");
	tcase_add_checked_fixture(fuzz, setup, teardown);
	tcase_add_test(fuzz, fuzz_mutated_files);
	suite_add_tcase(s, fuzz);
	TCase *corpus = tcase_create("corpus");
	tcase_add_test(corpus, fortunes_compress_and_round_trip);
	suite_add_tcase(s, corpus);
	return s;
}

MB_CHECK_MAIN(bpe_suite)
