/*
 * net_data.c - byte-level training text (net_data.h).
 */
#include "net_data.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bpe.h"
#include "status.h"

#define SYNTHETIC_BYTES (4u << 20)

/* append_file adds a whole file's bytes to c. */
static int append_file(struct net_corpus *c, const char *path, char *why, size_t len)
{
	FILE *f = fopen(path, "rb");
	int err = MB_ERR_IO;
	if (!f) {
		snprintf(why, len, "cannot read %s", path);
		return err;
	}
	if (fseek(f, 0, SEEK_END) == 0) {
		long sz = ftell(f);
		uint8_t *p = sz >= 0 ? realloc(c->bytes, c->n + (size_t)sz + 1) : NULL;
		err = p ? MB_OK : MB_ERR_NOMEM;
		if (p) {
			c->bytes = p;
			rewind(f);
			if (fread(p + c->n, 1, (size_t)sz, f) != (size_t)sz)
				err = MB_ERR_IO, snprintf(why, len, "short read of %s", path);
			else
				c->n += (size_t)sz, c->files++;
		}
	}
	fclose(f);
	return err;
}

/* cmp_names orders file names (qsort). */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* skipped tells whether a folder entry is one of fortune's index files. */
static int skipped(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' || (n > 4 && strcmp(name + n - 4, ".dat") == 0) ||
	       (n > 3 && strcmp(name + n - 3, ".u8") == 0);
}

/* append_dir adds the regular files of a folder in name order. */
static int append_dir(struct net_corpus *c, const char *dir, char *why, size_t len)
{
	DIR *d = opendir(dir);
	char **names = NULL, path[4096];
	size_t n = 0;
	int err = MB_OK;
	struct dirent *e;
	if (!d)
		return snprintf(why, len, "cannot open folder %s", dir), MB_ERR_IO;
	while (!err && (e = readdir(d))) {
		if (skipped(e->d_name))
			continue;
		char **p = realloc(names, (n + 1) * sizeof(*names));
		if (!p)
			err = MB_ERR_NOMEM;
		else if (names = p, !(p[n] = strdup(e->d_name)))
			err = MB_ERR_NOMEM;
		else
			n++;
	}
	if (err)
		snprintf(why, len, "out of memory listing %s", dir);
	closedir(d);
	if (names)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n && !err; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			err = append_file(c, path, why, len);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return err;
}

/* synthetic fills c with uniform random bytes from seed. */
static int synthetic(struct net_corpus *c, uint64_t seed)
{
	struct mb_rng rng;
	c->bytes = malloc(SYNTHETIC_BYTES);
	if (!c->bytes)
		return MB_ERR_NOMEM;
	mb_rng_seed(&rng, seed, 0x5eed);
	for (size_t i = 0; i < SYNTHETIC_BYTES; i++)
		c->bytes[i] = (uint8_t)(mb_rng_next(&rng) >> 56);
	c->n = SYNTHETIC_BYTES;
	return MB_OK;
}

int net_corpus_load(const char *spec, uint64_t seed, struct net_corpus *c, char *why,
		    size_t why_len)
{
	struct stat st;
	int err;
	char sink[8];
	if (!why || !why_len)
		why = sink, why_len = sizeof(sink);
	memset(c, 0, sizeof(*c));
	if (!spec || strcmp(spec, "fortunes") == 0)
		spec = NET_FORTUNES_DIR;
	snprintf(c->source, sizeof(c->source), "%s", spec);
	if (strcmp(spec, "synthetic") == 0)
		err = synthetic(c, seed);
	else if (stat(spec, &st) != 0)
		err = MB_ERR_IO, snprintf(why, why_len, "%s: no such file or folder", spec);
	else if (S_ISDIR(st.st_mode))
		err = append_dir(c, spec, why, why_len);
	else
		err = append_file(c, spec, why, why_len);
	if (!err && c->n < 4096)
		err = MB_ERR_ARG, snprintf(why, why_len, "%s: %zu bytes of text, 4096 needed",
					    spec, c->n);
	if (err) {
		net_corpus_free(c);
		return err;
	}
	c->n_train = c->n - c->n / 20;
	return net_corpus_tokenize(c, NULL);
}

int net_corpus_tokenize(struct net_corpus *c, const struct bpe *b)
{
	size_t nt = 0, nv = 0;
	int32_t *tok = malloc((c->n ? c->n : 1) * sizeof(int32_t));
	int err = tok ? MB_OK : MB_ERR_NOMEM;
	if (!err && !b)
		for (size_t i = 0; i < c->n; i++)
			tok[i] = c->bytes[i];
	if (!err && !b)
		nt = c->n_train, nv = c->n - c->n_train;
	if (!err && b)
		err = bpe_encode(b, c->bytes, c->n_train, tok, &nt);
	if (!err && b)
		err = bpe_encode(b, c->bytes + c->n_train, c->n - c->n_train, tok + nt, &nv);
	if (err) {
		free(tok);
		return err;
	}
	free(c->tok);
	c->tok = tok;
	c->ntok = nt + nv;
	c->ntok_train = nt;
	c->vocab = b ? bpe_vocab_size(b) : 256;
	return MB_OK;
}

void net_corpus_free(struct net_corpus *c)
{
	free(c->bytes);
	free(c->tok);
	c->bytes = NULL;
	c->tok = NULL;
	c->n = c->n_train = c->ntok = c->ntok_train = 0;
}

void net_batch_train(const struct net_corpus *c, struct mb_rng *rng, int batch, int len,
		     int32_t *tok)
{
	size_t span = c->ntok_train > (size_t)len ? c->ntok_train - (size_t)len : 1;
	for (int b = 0; b < batch; b++) {
		size_t off = (size_t)(mb_rng_next(rng) % span);
		for (int i = 0; i < len; i++)
			tok[(size_t)b * len + i] = c->tok[(off + (size_t)i) % c->ntok_train];
	}
}

int net_val_batches(const struct net_corpus *c, int batch, int len, int cap)
{
	size_t nval = c->ntok - c->ntok_train, per = (size_t)batch * (size_t)len;
	size_t k = nval / per;
	k = k < 1 ? 1 : k;
	return k > (size_t)cap ? cap : (int)k;
}

void net_batch_val(const struct net_corpus *c, int i, int batch, int len, int32_t *tok)
{
	size_t nval = c->ntok - c->ntok_train;
	for (int b = 0; b < batch; b++) {
		size_t off = ((size_t)i * batch + (size_t)b) * (size_t)len;
		for (int j = 0; j < len; j++)
			tok[(size_t)b * len + j] = c->tok[c->ntok_train + (off + (size_t)j) % nval];
	}
}
