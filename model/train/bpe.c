/*
 * bpe.c - the byte-level BPE tokenizer: its tables, encode and decode (see bpe.h).
 * Training is bpe_train.c; the JSON file is bpe_json.c.
 */
#include "bpe.h"
#include "bpe_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* pair_key packs a pair into a non-zero 64-bit key. */
static uint64_t pair_key(int32_t a, int32_t b)
{
	return ((uint64_t)(uint32_t)a + 1) << 32 | (uint32_t)b;
}

/* slot_of hashes a key to its first probe slot (splitmix64's finaliser). */
static size_t slot_of(uint64_t k, size_t cap)
{
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ull;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebull;
	k ^= k >> 31;
	return (size_t)k & (cap - 1);
}

int bpe_map_init(struct bpe_map *m, size_t expect)
{
	size_t cap = 64;
	while (cap < 2 * expect)
		cap *= 2;
	m->keys = calloc(cap, sizeof(*m->keys));
	m->vals = malloc(cap * sizeof(*m->vals));
	m->cap = cap;
	m->n = 0;
	if (!m->keys || !m->vals) {
		bpe_map_free(m);
		return MB_ERR_NOMEM;
	}
	return MB_OK;
}

int32_t bpe_map_get(const struct bpe_map *m, int32_t a, int32_t b)
{
	uint64_t k = pair_key(a, b);
	for (size_t s = slot_of(k, m->cap);; s = (s + 1) & (m->cap - 1)) {
		if (m->keys[s] == k)
			return m->vals[s];
		if (!m->keys[s])
			return -1;
	}
}

/* insert places key k with value v, the map having room. */
static void insert(struct bpe_map *m, uint64_t k, int32_t v)
{
	size_t s = slot_of(k, m->cap);
	while (m->keys[s] && m->keys[s] != k)
		s = (s + 1) & (m->cap - 1);
	if (!m->keys[s])
		m->n++;
	m->keys[s] = k;
	m->vals[s] = v;
}

int bpe_map_put(struct bpe_map *m, int32_t a, int32_t b, int32_t v)
{
	/* NOTE: grow at half full, so probes stay short. */
	if (2 * (m->n + 1) > m->cap) {
		struct bpe_map g;
		if (bpe_map_init(&g, m->cap) != MB_OK)
			return MB_ERR_NOMEM;
		for (size_t s = 0; s < m->cap; s++)
			if (m->keys[s])
				insert(&g, m->keys[s], m->vals[s]);
		bpe_map_free(m);
		*m = g;
	}
	insert(m, pair_key(a, b), v);
	return MB_OK;
}

void bpe_map_free(struct bpe_map *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->n = 0;
}

/* check_merge refuses merge r when it names an undefined token, repeats a pair or
 * makes a token longer than BPE_MAX_TOKEN_BYTES. */
static int check_merge(const struct bpe *b, int r, char *why, size_t why_len)
{
	int32_t x = b->merges[2 * r], y = b->merges[2 * r + 1];
	if (x < 0 || y < 0 || x >= BPE_BYTE_TOKENS + r || y >= BPE_BYTE_TOKENS + r) {
		snprintf(why, why_len, "merge %d ([%d, %d]) names a token not defined before it "
			 "(tokens 0..%d)", r, (int)x, (int)y, BPE_BYTE_TOKENS + r - 1);
		return MB_ERR_PARSE;
	}
	if (bpe_map_get(&b->ranks, x, y) >= 0) {
		snprintf(why, why_len, "merge %d ([%d, %d]) repeats merge %d", r, (int)x, (int)y,
			 (int)bpe_map_get(&b->ranks, x, y));
		return MB_ERR_PARSE;
	}
	if (b->len[x] + b->len[y] > BPE_MAX_TOKEN_BYTES) {
		snprintf(why, why_len, "merge %d makes a token of %u bytes (limit %d)", r,
			 b->len[x] + b->len[y], BPE_MAX_TOKEN_BYTES);
		return MB_ERR_PARSE;
	}
	return MB_OK;
}

/* build_tables fills the token byte strings and the rank map from b->merges. */
static int build_tables(struct bpe *b, char *why, size_t why_len)
{
	int vocab = BPE_BYTE_TOKENS + b->n_merges, err = MB_OK;
	size_t pool_len = BPE_BYTE_TOKENS;
	b->off = malloc((size_t)vocab * sizeof(*b->off));
	b->len = malloc((size_t)vocab * sizeof(*b->len));
	b->pool = malloc(pool_len);
	if (!b->off || !b->len || !b->pool || bpe_map_init(&b->ranks, (size_t)b->n_merges))
		return MB_ERR_NOMEM;
	for (int t = 0; t < BPE_BYTE_TOKENS; t++) {
		b->pool[t] = (uint8_t)t;
		b->off[t] = (uint32_t)t;
		b->len[t] = 1;
	}
	for (int r = 0; r < b->n_merges && !err; r++) {
		int32_t x = b->merges[2 * r], y = b->merges[2 * r + 1], t = BPE_BYTE_TOKENS + r;
		err = check_merge(b, r, why, why_len);
		if (err)
			break;
		uint8_t *pool = realloc(b->pool, pool_len + b->len[x] + b->len[y]);
		if (!pool)
			return MB_ERR_NOMEM;
		b->pool = pool;
		if (bpe_map_put(&b->ranks, x, y, r) != MB_OK)
			return MB_ERR_NOMEM;
		b->off[t] = (uint32_t)pool_len;
		b->len[t] = b->len[x] + b->len[y];
		memcpy(pool + pool_len, pool + b->off[x], b->len[x]);
		memcpy(pool + pool_len + b->len[x], pool + b->off[y], b->len[y]);
		pool_len += b->len[t];
	}
	return err;
}

int bpe_from_merges(struct bpe **out, const int32_t *merges, int n_merges, char *why,
		    size_t why_len)
{
	struct bpe *b = calloc(1, sizeof(*b));
	int err = MB_OK;
	*out = NULL;
	if (n_merges < 0 || n_merges > BPE_MAX_VOCAB - BPE_BYTE_TOKENS) {
		snprintf(why, why_len, "%d merges: want 0..%d", n_merges,
			 BPE_MAX_VOCAB - BPE_BYTE_TOKENS);
		free(b);
		return MB_ERR_ARG;
	}
	if (!b || !(b->merges = malloc(((size_t)n_merges + 1) * 2 * sizeof(int32_t)))) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	b->n_merges = n_merges;
	if (n_merges)
		memcpy(b->merges, merges, (size_t)n_merges * 2 * sizeof(int32_t));
	err = build_tables(b, why, why_len);
out:
	if (err == MB_ERR_NOMEM)
		snprintf(why, why_len, "out of memory");
	if (err)
		bpe_free(b);
	else
		*out = b;
	return err;
}

void bpe_free(struct bpe *b)
{
	if (!b)
		return;
	free(b->merges);
	free(b->off);
	free(b->len);
	free(b->pool);
	bpe_map_free(&b->ranks);
	free(b);
}

int bpe_vocab_size(const struct bpe *b)
{
	return BPE_BYTE_TOKENS + b->n_merges;
}

int bpe_merge(const struct bpe *b, int r, int32_t *left, int32_t *right)
{
	if (r < 0 || r >= b->n_merges)
		return MB_ERR_ARG;
	*left = b->merges[2 * r];
	*right = b->merges[2 * r + 1];
	return MB_OK;
}

const uint8_t *bpe_token_bytes(const struct bpe *b, int32_t token, size_t *len)
{
	if (token < 0 || token >= bpe_vocab_size(b))
		return NULL;
	*len = b->len[token];
	return b->pool + b->off[token];
}

int bpe_decode(const struct bpe *b, const int32_t *tokens, size_t n, uint8_t *out, size_t cap,
	       size_t *out_len)
{
	size_t need = 0;
	int vocab = bpe_vocab_size(b);
	for (size_t i = 0; i < n; i++) {
		if (tokens[i] < 0 || tokens[i] >= vocab) {
			*out_len = 0;
			return MB_ERR_ARG;
		}
		need += b->len[tokens[i]];
	}
	*out_len = need;
	if (!out)
		return MB_OK;
	if (need > cap)
		return MB_ERR_ARG;
	for (size_t i = 0, at = 0; i < n; i++) {
		memcpy(out + at, b->pool + b->off[tokens[i]], b->len[tokens[i]]);
		at += b->len[tokens[i]];
	}
	return MB_OK;
}
