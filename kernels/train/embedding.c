/*
 * embedding.c - CPU reference of the token embedding's forward and backward
 * (embedding.h).
 */
#include <string.h>

#include "embedding.h"
#include "status.h"

/* ids_valid is 1 when every id lies in [0, vocab). */
static int ids_valid(const int32_t *ids, long tokens, int vocab)
{
	for (long t = 0; t < tokens; t++)
		if (ids[t] < 0 || ids[t] >= vocab)
			return 0;
	return 1;
}

/* embedding_fwd_cpu: see embedding.h. */
int embedding_fwd_cpu(const float *table, int vocab, const int32_t *ids, long tokens, int dim,
		      float *out)
{
	if (tokens < 0 || dim <= 0 || vocab <= 0 || !ids_valid(ids, tokens, vocab))
		return MB_ERR_ARG;
	for (long t = 0; t < tokens; t++)
		memcpy(out + t * dim, table + (long)ids[t] * dim, (size_t)dim * sizeof(float));
	return MB_OK;
}

/* embedding_bwd_cpu: see embedding.h (token order, one add per element per token). */
int embedding_bwd_cpu(const float *dout, const int32_t *ids, long tokens, int dim, int vocab,
		      float *dtable)
{
	if (tokens < 0 || dim <= 0 || vocab <= 0 || !ids_valid(ids, tokens, vocab))
		return MB_ERR_ARG;
	for (long t = 0; t < tokens; t++) {
		float *row = dtable + (long)ids[t] * dim;
		for (int c = 0; c < dim; c++)
			row[c] += dout[t * dim + c];
	}
	return MB_OK;
}

/* embedding_bwd_workspace: counts, cursors and offsets per id (V + V + V + 1 int32),
 * the bucketed token list and its ordered copy (T + T int32). */
size_t embedding_bwd_workspace(long tokens, int vocab)
{
	if (tokens < 0 || vocab <= 0)
		return 0;
	return ((size_t)3 * (size_t)vocab + 1 + 2 * (size_t)tokens) * sizeof(int32_t);
}
