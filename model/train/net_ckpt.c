/*
 * net_ckpt.c - the trainable model's weights to and from a safetensors file
 * (model/io/safetensors.h), under the Hugging Face names and [out, in] shapes of
 * net_layout.c, so a checkpoint written here loads in the reference PyTorch code
 * (matrices 2-D, norm weights and the routing bias 1-D, F32) and back.
 */
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* read_tensor reads tensor t of L from f: whole, or its slice of the whole tensor. */
static int read_tensor(struct st_file *f, const struct net_tensor *t, float *dst, char *why,
		       size_t why_len)
{
	int64_t shape[2] = { t->full_rows, t->full_cols };
	int nd = t->full_cols == 1 ? 1 : 2;
	if (t->rows == t->full_rows && t->cols == t->full_cols)
		return st_read_f32(f, t->name, dst, shape, nd, why, why_len);
	float *whole = malloc((size_t)(t->full_rows * t->full_cols) * sizeof(float));
	if (!whole)
		return MB_ERR_NOMEM;
	int err = st_read_f32(f, t->name, whole, shape, nd, why, why_len);
	for (int64_t r = 0; r < t->rows && !err; r++)
		memcpy(dst + r * t->cols, whole + (t->row0 + r) * t->full_cols + t->col0,
		       (size_t)t->cols * sizeof(float));
	free(whole);
	return err;
}

int net_load(const struct net_layout *L, float *w, const char *path, char *why,
	     size_t why_len)
{
	struct st_file *f;
	struct net_layout whole;
	const struct net_layout *names = L;
	int err = st_open(&f, path, why, why_len);
	if (err)
		return err;
	/* a part checks the file's names against the whole model's */
	if (!L->whole && (err = net_layout_build(&L->cfg, &whole, why, why_len))) {
		st_close(f);
		return err;
	}
	names = L->whole ? L : &whole;
	for (int i = 0; i < st_count(f) && !err; i++)
		if (net_find(names, st_at(f, i)->name) < 0) {
			snprintf(why, why_len, "%s: tensor '%s' is not in this model (%s)", path,
				 st_at(f, i)->name, L->cfg.name);
			err = MB_ERR_PARSE;
		}
	for (int i = 0; i < L->n && !err; i++)
		err = read_tensor(f, &L->t[i], w + L->t[i].off, why, why_len);
	if (!L->whole)
		net_layout_free(&whole);
	st_close(f);
	return err;
}

int net_place(const struct net_layout *W, float *w, const struct net_layout *P, const float *p)
{
	for (int i = 0; i < P->n; i++) {
		const struct net_tensor *t = &P->t[i];
		int j = net_find(W, t->name);
		if (j < 0 || W->t[j].rows != t->full_rows || W->t[j].cols != t->full_cols)
			return MB_ERR_ARG;
		float *dst = w + W->t[j].off;
		for (int64_t r = 0; r < t->rows; r++)
			memcpy(dst + (t->row0 + r) * t->full_cols + t->col0,
			       p + t->off + (size_t)(r * t->cols), (size_t)t->cols * sizeof(float));
	}
	return MB_OK;
}
