/*
 * net_ckpt.c - the trainable model's weights to and from a safetensors file
 * (model/io/safetensors.h), under the Hugging Face names and [out, in] shapes of
 * net_layout.c, so a checkpoint written here loads in the reference PyTorch code
 * (matrices 2-D, norm weights and the routing bias 1-D, F32) and back.
 */
#include "net.h"

#include <stdio.h>
#include <stdlib.h>

#include "safetensors.h"
#include "status.h"

/* tensor_shape writes a tensor's checkpoint shape (1-D for vectors); returns ndim. */
static int tensor_shape(const struct net_tensor *t, int64_t shape[2])
{
	shape[0] = t->rows;
	shape[1] = t->cols;
	return t->cols == 1 ? 1 : 2;
}

int net_save(const struct net_layout *L, const float *w, const char *path, char *why,
	     size_t why_len)
{
	struct st_tensor *t = calloc((size_t)L->n, sizeof(*t));
	const char *meta[] = { "format", "pt", "producer", "moebench", "model", L->cfg.name, NULL };
	if (!t)
		return MB_ERR_NOMEM;
	for (int i = 0; i < L->n; i++) {
		t[i].name = L->t[i].name;
		t[i].dtype = ST_F32;
		t[i].ndim = tensor_shape(&L->t[i], t[i].shape);
		t[i].data = w + L->t[i].off;
	}
	int err = st_write(path, t, L->n, meta, why, why_len);
	free(t);
	return err;
}

int net_load(const struct net_layout *L, float *w, const char *path, char *why,
	     size_t why_len)
{
	struct st_file *f;
	int err = st_open(&f, path, why, why_len);
	if (err)
		return err;
	for (int i = 0; i < st_count(f) && !err; i++)
		if (net_find(L, st_at(f, i)->name) < 0) {
			snprintf(why, why_len, "%s: tensor '%s' is not in this model (%s)", path,
				 st_at(f, i)->name, L->cfg.name);
			err = MB_ERR_PARSE;
		}
	for (int i = 0; i < L->n && !err; i++) {
		int64_t shape[2];
		int nd = tensor_shape(&L->t[i], shape);
		err = st_read_f32(f, L->t[i].name, w + L->t[i].off, shape, nd, why, why_len);
	}
	st_close(f);
	return err;
}

int net_slices_copy(const struct net_layout *P, float *wp, const struct net_layout *W,
		    float *ww, bool to_whole)
{
	for (int i = 0; i < P->n; i++) {
		const struct net_tensor *t = &P->t[i];
		int j = net_find(W, t->name);
		if (j < 0 || W->t[j].rows != t->full_rows || W->t[j].cols != t->full_cols)
			return MB_ERR_ARG;
		for (int64_t r = 0; r < t->rows; r++) {
			float *s = wp + t->off + (size_t)(r * t->cols);
			float *d = ww + W->t[j].off + (size_t)((t->row0 + r) * t->full_cols + t->col0);
			for (int64_t c = 0; c < t->cols; c++)
				if (to_whole)
					d[c] = s[c];
				else
					s[c] = d[c];
		}
	}
	return MB_OK;
}
