/*
 * net_data.h - training text for the trainable model (net.h): byte-level tokens
 * (vocabulary 256) from the Debian package `fortunes` (/usr/share/games/fortunes, the
 * .dat and .u8 index files skipped), any file or folder, or a random byte stream; the
 * last 5% held out for validation; optionally BPE tokens (model/train/bpe.h); batches of B
 * sequences of len tokens.
 *
 * Functions return MB_OK, MB_ERR_ARG (nothing to read, corpus too small) with the
 * reason in why, MB_ERR_IO or MB_ERR_NOMEM.
 */
#ifndef MB_NET_DATA_H
#define MB_NET_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define NET_FORTUNES_DIR "/usr/share/games/fortunes"

struct net_corpus {
	uint8_t *bytes;
	size_t n, n_train;     /* bytes; train: [0, n_train), validation: [n_train, n) */
	int32_t *tok;          /* the tokens (net_corpus_tokenize), split at the same byte */
	size_t ntok, ntok_train;
	int vocab;
	int files;
	char source[256];
};

struct bpe;

/* net_corpus_load reads spec: "fortunes" (or NULL), "synthetic" (4 MiB of uniform
 * random bytes from seed), a file, or a folder (its regular files, in name order). */
int net_corpus_load(const char *spec, uint64_t seed, struct net_corpus *c, char *why,
		    size_t why_len);
void net_corpus_free(struct net_corpus *c);
/* net_corpus_tokenize turns the bytes into tokens: the bytes themselves when b is NULL
 * (vocabulary 256), else b's encoding of the training and the validation part each. */
int net_corpus_tokenize(struct net_corpus *c, const struct bpe *b);
/* net_batch_train fills tok [B, len] with B windows at random offsets of the training
 * part. */
void net_batch_train(const struct net_corpus *c, struct mb_rng *rng, int batch, int len,
		     int32_t *tok);
/* net_val_batches returns how many distinct validation batches of B x len exist (at
 * least 1 once the corpus loaded with that len), capped at cap. */
int net_val_batches(const struct net_corpus *c, int batch, int len, int cap);
/* net_batch_val fills tok with validation batch i (consecutive windows). */
void net_batch_val(const struct net_corpus *c, int i, int batch, int len, int32_t *tok);

#endif
