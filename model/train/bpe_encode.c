/*
 * bpe_encode.c - encoding by merge rank: every adjacent pair that has a merge is filed
 * in its rank's bucket of positions; ranks are applied in order, each bucket sorted
 * and merged left to right, and the pairs a merge forms with its neighbours are filed
 * in turn. A merge only forms pairs of higher rank (a token's merges come after the
 * merge that defines it), so a bucket is complete when its rank comes up: each rank
 * is applied everywhere, left to right, before the next, which is the segmentation
 * training produced. Positions made stale by an earlier merge are skipped.
 */
#include "bpe.h"
#include "bpe_internal.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

struct enc_bucket {
	int32_t *pos;
	int32_t n, cap;
};

/* push_pair files the pair starting at pos under its merge rank, if it has one. */
static int push_pair(const struct bpe *b, struct enc_bucket *buckets, const int32_t *tok,
		     const int32_t *next, int32_t pos)
{
	if (pos < 0 || next[pos] < 0)
		return MB_OK;
	int32_t r = bpe_map_get(&b->ranks, tok[pos], tok[next[pos]]);
	if (r < 0)
		return MB_OK;
	struct enc_bucket *k = &buckets[r];
	if (k->n == k->cap) {
		int32_t cap = k->cap ? 2 * k->cap : 16;
		int32_t *p = realloc(k->pos, (size_t)cap * sizeof(*p));
		if (!p)
			return MB_ERR_NOMEM;
		k->pos = p;
		k->cap = cap;
	}
	k->pos[k->n++] = pos;
	return MB_OK;
}

static int cmp_pos(const void *x, const void *y)
{
	int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
	return (a > b) - (a < b);
}

/* sort_bucket puts a bucket's positions in increasing order (left to right). */
static void sort_bucket(struct enc_bucket *k)
{
	for (int32_t i = 1; i < k->n; i++) {
		if (k->pos[i - 1] > k->pos[i]) {
			qsort(k->pos, (size_t)k->n, sizeof(*k->pos), cmp_pos);
			return;
		}
	}
}

/* merge_rank merges every current occurrence of merge r, left to right. */
static int merge_rank(const struct bpe *b, struct enc_bucket *buckets, int32_t r,
		      int32_t *tok, int32_t *next, int32_t *prev)
{
	struct enc_bucket *k = &buckets[r];
	int err = MB_OK;
	sort_bucket(k);
	for (int32_t x = 0; x < k->n && !err; x++) {
		int32_t i = k->pos[x], j = next[i];
		/* NOTE: stale when i was absorbed (tok -1) or a neighbour changed. */
		if (tok[i] != b->merges[2 * r] || j < 0 || tok[j] != b->merges[2 * r + 1])
			continue;
		tok[i] = BPE_BYTE_TOKENS + r;
		tok[j] = -1;
		next[i] = next[j];
		if (next[j] >= 0)
			prev[next[j]] = i;
		err = push_pair(b, buckets, tok, next, prev[i]);
		if (!err)
			err = push_pair(b, buckets, tok, next, i);
	}
	free(k->pos);
	k->pos = NULL;
	k->n = k->cap = 0;
	return err;
}

/* merge_all applies the merges to the linked token list tok/next/prev. */
static int merge_all(const struct bpe *b, int32_t *tok, int32_t *next, int32_t *prev,
		     int32_t n)
{
	struct enc_bucket *buckets = calloc((size_t)b->n_merges + 1, sizeof(*buckets));
	int err = buckets ? MB_OK : MB_ERR_NOMEM;
	for (int32_t i = 0; i + 1 < n && !err; i++)
		err = push_pair(b, buckets, tok, next, i);
	for (int32_t r = 0; r < b->n_merges && !err; r++)
		if (buckets[r].n)
			err = merge_rank(b, buckets, r, tok, next, prev);
	for (int32_t r = 0; buckets && r < b->n_merges; r++)
		free(buckets[r].pos);
	free(buckets);
	return err;
}

int bpe_encode(const struct bpe *b, const uint8_t *text, size_t len, int32_t *tokens,
	       size_t *n_tokens)
{
	int32_t n = (int32_t)len, *tok = NULL, *next = NULL, *prev = NULL;
	int err = MB_OK;
	*n_tokens = 0;
	if (len > BPE_MAX_TEXT)
		return MB_ERR_ARG;
	if (len == 0)
		return MB_OK;
	tok = malloc(len * sizeof(*tok));
	next = malloc(len * sizeof(*next));
	prev = malloc(len * sizeof(*prev));
	if (!tok || !next || !prev) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	for (int32_t i = 0; i < n; i++) {
		tok[i] = text[i];
		next[i] = i + 1 < n ? i + 1 : -1;
		prev[i] = i - 1;
	}
	err = merge_all(b, tok, next, prev, n);
	for (int32_t i = 0; i >= 0 && !err; i = next[i])
		tokens[(*n_tokens)++] = tok[i];
out:
	free(tok);
	free(next);
	free(prev);
	return err;
}
