/*
 * bpe_internal.h - what bpe.c, bpe_train.c and bpe_json.c share (not a public API):
 * the tokenizer's layout and a hash map from token pairs to 32-bit values.
 */
#ifndef MB_MODEL_BPE_INTERNAL_H
#define MB_MODEL_BPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Open addressing, linear probing; a key of 0 marks an empty slot. */
struct bpe_map {
	uint64_t *keys;
	int32_t *vals;
	size_t cap, n;
};

struct bpe {
	int n_merges;
	int32_t *merges;        /* 2 per merge: left, right */
	uint32_t *off, *len;    /* per token: its bytes in pool */
	uint8_t *pool;
	struct bpe_map ranks;   /* (left, right) -> merge rank */
};

/* bpe_map_init sizes an empty map for about expect entries. MB_OK or MB_ERR_NOMEM. */
int bpe_map_init(struct bpe_map *m, size_t expect);
/* bpe_map_get returns the value of pair (a, b), or -1 when absent. */
int32_t bpe_map_get(const struct bpe_map *m, int32_t a, int32_t b);
/* bpe_map_put sets the value of (a, b), growing the map. MB_OK or MB_ERR_NOMEM. */
int bpe_map_put(struct bpe_map *m, int32_t a, int32_t b, int32_t v);
void bpe_map_free(struct bpe_map *m);

#endif
