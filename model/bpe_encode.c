/*
 * bpe_encode.c - encoding by merge rank: every adjacent pair that has a merge sits in
 * a min-heap keyed by (rank, position); the smallest is merged and the pairs it forms
 * with its neighbours are pushed. Entries made stale by an earlier merge are skipped
 * when popped. A merge only forms pairs of higher rank (a token's merges come after
 * the merge that defines it), so each rank is applied everywhere, left to right,
 * before the next: the segmentation training produced.
 */
#include "bpe.h"
#include "bpe_internal.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

struct enc_item {
	int32_t rank, pos;
};

struct enc_heap {
	struct enc_item *a;
	size_t n, cap;
};

/* item_less orders by rank, then position (left first). */
static int item_less(struct enc_item x, struct enc_item y)
{
	return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos);
}

/* heap_push adds an item; MB_ERR_NOMEM when the heap cannot grow. */
static int heap_push(struct enc_heap *h, struct enc_item it)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 1024;
		struct enc_item *a = realloc(h->a, cap * sizeof(*a));
		if (!a)
			return MB_ERR_NOMEM;
		h->a = a;
		h->cap = cap;
	}
	size_t i = h->n++;
	while (i > 0 && item_less(it, h->a[(i - 1) / 2])) {
		h->a[i] = h->a[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->a[i] = it;
	return MB_OK;
}

/* heap_pop removes the smallest item (the heap is not empty). */
static struct enc_item heap_pop(struct enc_heap *h)
{
	struct enc_item top = h->a[0], last = h->a[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && item_less(h->a[c + 1], h->a[c]))
			c++;
		if (!item_less(h->a[c], last))
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	if (h->n)
		h->a[i] = last;
	return top;
}

/* push_pair pushes the pair starting at pos when it has a merge. */
static int push_pair(const struct bpe *b, struct enc_heap *h, const int32_t *tok,
		     const int32_t *next, int32_t pos)
{
	if (pos < 0 || next[pos] < 0)
		return MB_OK;
	int32_t r = bpe_map_get(&b->ranks, tok[pos], tok[next[pos]]);
	return r < 0 ? MB_OK : heap_push(h, (struct enc_item){ r, pos });
}

/* merge_all applies the merges to the linked token list tok/next/prev. */
static int merge_all(const struct bpe *b, int32_t *tok, int32_t *next, int32_t *prev,
		     int32_t n, struct enc_heap *h)
{
	int err = MB_OK;
	for (int32_t i = 0; i + 1 < n && !err; i++)
		err = push_pair(b, h, tok, next, i);
	while (h->n && !err) {
		struct enc_item it = heap_pop(h);
		int32_t i = it.pos, j = next[i];
		/* NOTE: stale when i was absorbed (tok -1) or a neighbour changed. */
		if (tok[i] != b->merges[2 * it.rank] || j < 0 ||
		    tok[j] != b->merges[2 * it.rank + 1])
			continue;
		tok[i] = BPE_BYTE_TOKENS + it.rank;
		tok[j] = -1;
		next[i] = next[j];
		if (next[j] >= 0)
			prev[next[j]] = i;
		err = push_pair(b, h, tok, next, prev[i]);
		if (!err)
			err = push_pair(b, h, tok, next, i);
	}
	return err;
}

int bpe_encode(const struct bpe *b, const uint8_t *text, size_t len, int32_t *tokens,
	       size_t *n_tokens)
{
	struct enc_heap h = { 0 };
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
	err = merge_all(b, tok, next, prev, n, &h);
	for (int32_t i = 0; i >= 0 && !err; i = next[i])
		tokens[(*n_tokens)++] = tok[i];
out:
	free(h.a);
	free(tok);
	free(next);
	free(prev);
	return err;
}
