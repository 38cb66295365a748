/*
 * bpe_train.c - BPE training with incremental pair counts (see bpe.h for the rule).
 *
 * The corpus is a doubly linked list of tokens (a merge absorbs the right token into
 * the left one, so a position is the index of the left token's first byte). Each pair
 * keeps its exact count and the positions where it was formed; entries of the list go
 * stale as neighbours merge and are checked when the pair is merged. After a merge,
 * every pair whose count changed is pushed into a max-heap with its new count; heap
 * entries whose count is no longer the pair's are skipped when popped. A merge thus
 * costs its occurrences and the pairs it touched, not a recount of the corpus.
 */
#include "bpe.h"
#include "bpe_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

struct pair {
	int32_t a, b;
	int64_t count;
	int32_t *pos;           /* where the pair was formed, some stale */
	int32_t npos, cap;
	int dirty, banned;
};

struct heap_item {
	int64_t count;
	int32_t pair;
};

struct trainer {
	int32_t *tok, *next, *prev;
	uint32_t *tok_len;      /* bytes of each token id */
	struct pair *pairs;
	int32_t n_pairs, cap_pairs;
	struct bpe_map index;   /* (a, b) -> pair id */
	struct heap_item *heap;
	size_t heap_n, heap_cap;
	int32_t *dirty;         /* pairs changed by the current merge */
	int32_t n_dirty, cap_dirty;
	int oom;
};

/* grow_array makes room for one more element in *p (n used, *cap allocated). */
static int grow_array(void **p, int32_t n, int32_t *cap, size_t size)
{
	if (n < *cap)
		return 1;
	int32_t c = *cap ? 2 * *cap : 16;
	void *q = realloc(*p, (size_t)c * size);
	if (!q)
		return 0;
	*p = q;
	*cap = c;
	return 1;
}

/* item_before: a higher count first; on a tie, the lower pair (left, then right). */
static int item_before(const struct trainer *t, struct heap_item x, struct heap_item y)
{
	if (x.count != y.count)
		return x.count > y.count;
	const struct pair *p = &t->pairs[x.pair], *q = &t->pairs[y.pair];
	return p->a < q->a || (p->a == q->a && p->b < q->b);
}

static void heap_push(struct trainer *t, struct heap_item it)
{
	if (t->heap_n == t->heap_cap) {
		size_t cap = t->heap_cap ? 2 * t->heap_cap : 4096;
		struct heap_item *h = realloc(t->heap, cap * sizeof(*h));
		if (!h) {
			t->oom = 1;
			return;
		}
		t->heap = h;
		t->heap_cap = cap;
	}
	size_t i = t->heap_n++;
	while (i > 0 && item_before(t, it, t->heap[(i - 1) / 2])) {
		t->heap[i] = t->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	t->heap[i] = it;
}

static struct heap_item heap_pop(struct trainer *t)
{
	struct heap_item top = t->heap[0], last = t->heap[--t->heap_n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->heap_n)
			break;
		if (c + 1 < t->heap_n && item_before(t, t->heap[c + 1], t->heap[c]))
			c++;
		if (!item_before(t, t->heap[c], last))
			break;
		t->heap[i] = t->heap[c];
		i = c;
	}
	if (t->heap_n)
		t->heap[i] = last;
	return top;
}

/* pair_id returns the id of pair (a, b), creating it; -1 when out of memory. */
static int32_t pair_id(struct trainer *t, int32_t a, int32_t b)
{
	int32_t id = bpe_map_get(&t->index, a, b);
	if (id >= 0)
		return id;
	if (!grow_array((void **)&t->pairs, t->n_pairs, &t->cap_pairs, sizeof(*t->pairs)) ||
	    bpe_map_put(&t->index, a, b, t->n_pairs) != MB_OK) {
		t->oom = 1;
		return -1;
	}
	t->pairs[t->n_pairs] = (struct pair){ .a = a, .b = b };
	return t->n_pairs++;
}

/* change adds delta to the count of pair (a, b); a positive change records pos. */
static void change(struct trainer *t, int32_t a, int32_t b, int delta, int32_t pos)
{
	int32_t id = pair_id(t, a, b);
	if (id < 0)
		return;
	struct pair *p = &t->pairs[id];
	p->count += delta;
	if (delta > 0) {
		if (!grow_array((void **)&p->pos, p->npos, &p->cap, sizeof(*p->pos))) {
			t->oom = 1;
			return;
		}
		p->pos[p->npos++] = pos;
	}
	if (!p->dirty) {
		if (!grow_array((void **)&t->dirty, t->n_dirty, &t->cap_dirty, sizeof(*t->dirty))) {
			t->oom = 1;
			return;
		}
		p->dirty = 1;
		t->dirty[t->n_dirty++] = id;
	}
}

/* flush_dirty pushes every changed pair with its new count. */
static void flush_dirty(struct trainer *t)
{
	for (int32_t i = 0; i < t->n_dirty; i++) {
		struct pair *p = &t->pairs[t->dirty[i]];
		p->dirty = 0;
		if (p->count > 0 && !p->banned)
			heap_push(t, (struct heap_item){ p->count, t->dirty[i] });
	}
	t->n_dirty = 0;
}

static int cmp_pos(const void *x, const void *y)
{
	int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
	return (a > b) - (a < b);
}

/* apply_merge replaces every occurrence of pair id, left to right, by token nt. */
static void apply_merge(struct trainer *t, int32_t id, int32_t nt)
{
	struct pair pr = t->pairs[id];
	/* NOTE: positions were appended as pairs formed; sorted, the merge goes left to
	 * right, so in "aaa" the first two a merge, as the encoder does. */
	qsort(pr.pos, (size_t)pr.npos, sizeof(*pr.pos), cmp_pos);
	for (int32_t k = 0; k < pr.npos; k++) {
		int32_t i = pr.pos[k], j = t->next[i];
		if (t->tok[i] != pr.a || j < 0 || t->tok[j] != pr.b)
			continue;
		int32_t p = t->prev[i], q = t->next[j];
		if (p >= 0)
			change(t, t->tok[p], pr.a, -1, 0);
		if (q >= 0)
			change(t, pr.b, t->tok[q], -1, 0);
		change(t, pr.a, pr.b, -1, 0);
		t->tok[i] = nt;
		t->tok[j] = -1;
		t->next[i] = q;
		if (q >= 0)
			t->prev[q] = i;
		if (p >= 0)
			change(t, t->tok[p], nt, +1, p);
		if (q >= 0)
			change(t, nt, t->tok[q], +1, i);
	}
	/* pair_id may have moved the array: reload before freeing the positions. */
	free(t->pairs[id].pos);
	t->pairs[id].pos = NULL;
	t->pairs[id].npos = t->pairs[id].cap = 0;
}

/* next_pair pops the most frequent mergeable pair, or -1 when none occurs twice. */
static int32_t next_pair(struct trainer *t)
{
	while (t->heap_n) {
		struct heap_item it = heap_pop(t);
		struct pair *p = &t->pairs[it.pair];
		if (it.count != p->count || p->banned)
			continue;
		if (p->count < 2)
			return -1;
		if (t->tok_len[p->a] + t->tok_len[p->b] > BPE_MAX_TOKEN_BYTES) {
			p->banned = 1;
			continue;
		}
		return it.pair;
	}
	return -1;
}

/* setup loads the corpus as byte tokens and counts its pairs. */
static int setup(struct trainer *t, const uint8_t *text, int32_t n, int vocab_size)
{
	t->tok = malloc((size_t)n * sizeof(int32_t) + 1);
	t->next = malloc((size_t)n * sizeof(int32_t) + 1);
	t->prev = malloc((size_t)n * sizeof(int32_t) + 1);
	t->tok_len = malloc((size_t)vocab_size * sizeof(uint32_t));
	if (!t->tok || !t->next || !t->prev || !t->tok_len ||
	    bpe_map_init(&t->index, 65536) != MB_OK)
		return MB_ERR_NOMEM;
	for (int32_t i = 0; i < n; i++) {
		t->tok[i] = text[i];
		t->next[i] = i + 1 < n ? i + 1 : -1;
		t->prev[i] = i - 1;
	}
	for (int i = 0; i < BPE_BYTE_TOKENS; i++)
		t->tok_len[i] = 1;
	for (int32_t i = 0; i + 1 < n && !t->oom; i++)
		change(t, t->tok[i], t->tok[i + 1], +1, i);
	flush_dirty(t);
	return t->oom ? MB_ERR_NOMEM : MB_OK;
}

static void trainer_free(struct trainer *t)
{
	for (int32_t i = 0; i < t->n_pairs; i++)
		free(t->pairs[i].pos);
	free(t->pairs);
	free(t->tok);
	free(t->next);
	free(t->prev);
	free(t->tok_len);
	free(t->heap);
	free(t->dirty);
	bpe_map_free(&t->index);
}

int bpe_train(struct bpe **out, const uint8_t *text, size_t len, int vocab_size, char *why,
	      size_t why_len)
{
	struct trainer t = { 0 };
	int32_t *merges = NULL;
	int n_merges = 0, err = MB_OK;
	*out = NULL;
	if (vocab_size < BPE_BYTE_TOKENS || vocab_size > BPE_MAX_VOCAB || len > BPE_MAX_TEXT) {
		snprintf(why, why_len, "BPE training: vocabulary %d (want %d..%d) or text of %zu "
			 "bytes out of range", vocab_size, BPE_BYTE_TOKENS, BPE_MAX_VOCAB, len);
		return MB_ERR_ARG;
	}
	merges = malloc(((size_t)(vocab_size - BPE_BYTE_TOKENS) + 1) * 2 * sizeof(int32_t));
	err = merges ? setup(&t, text, (int32_t)len, vocab_size) : MB_ERR_NOMEM;
	while (!err && BPE_BYTE_TOKENS + n_merges < vocab_size) {
		int32_t id = next_pair(&t), nt = BPE_BYTE_TOKENS + n_merges;
		if (id < 0)
			break;
		merges[2 * n_merges] = t.pairs[id].a;
		merges[2 * n_merges + 1] = t.pairs[id].b;
		t.tok_len[nt] = t.tok_len[t.pairs[id].a] + t.tok_len[t.pairs[id].b];
		n_merges++;
		apply_merge(&t, id, nt);
		flush_dirty(&t);
		err = t.oom ? MB_ERR_NOMEM : MB_OK;
	}
	if (!err)
		err = bpe_from_merges(out, merges, n_merges, why, why_len);
	else
		snprintf(why, why_len, "BPE training: out of memory");
	free(merges);
	trainer_free(&t);
	return err;
}
