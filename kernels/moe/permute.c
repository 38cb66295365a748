/*
 * permute.c - CPU reference of the dispatch/combine permutations (see permute.h): hop
 * plans, meta rows, payload packing (BF16 or FP8 1x128), the gather into send order,
 * the expert-major padded arrangement and the weighted un-permutation.
 */
#include "permute.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "fp8.h"
#include "status.h"

int permute_format_of(int hidden, enum permute_payload payload, struct permute_format *fmt)
{
	if (hidden <= 0 || (payload != PERMUTE_BF16 && payload != PERMUTE_FP8))
		return MB_ERR_ARG;
	fmt->hidden = hidden;
	fmt->payload = payload;
	fmt->scales = payload == PERMUTE_FP8 ? (hidden + FP8_TILE - 1) / FP8_TILE : 0;
	fmt->logical_bytes = payload == PERMUTE_FP8 ? (size_t)hidden + 4 * (size_t)fmt->scales
						    : 2 * (size_t)hidden;
	/* NOTE: 16-byte rows keep the scales, BF16 values and vector copies aligned. */
	fmt->row_bytes = (fmt->logical_bytes + 15) / 16 * 16;
	return MB_OK;
}

const char *permute_payload_name(enum permute_payload p)
{
	return p == PERMUTE_FP8 ? "fp8" : "bf16";
}

/* first_in_group tells whether expert j of a meta row is the first (in j order) of
 * its group, so an item sends one copy per group. */
static int first_in_group(const int32_t *ex, int j, int epg)
{
	for (int i = 0; i < j; i++)
		if (ex[i] >= 0 && ex[i] / epg == ex[j] / epg)
			return 0;
	return 1;
}

/* plan_count counts copies per group and checks the experts' range. */
static int plan_count(const int32_t *meta, long items, int topk, int epg, int groups,
		      long *counts)
{
	for (long i = 0; i < items; i++) {
		const int32_t *ex = meta + i * PERMUTE_META_INTS(topk) + 2;
		for (int j = 0; j < topk; j++) {
			if (ex[j] < 0)
				continue;
			if (ex[j] >= groups * epg)
				return MB_ERR_ARG;
			counts[ex[j] / epg] += first_in_group(ex, j, epg);
		}
	}
	return MB_OK;
}

int permute_plan_build(const int32_t *meta, long items, int topk, int experts_per_group,
		       int groups, struct permute_plan *p)
{
	memset(p, 0, sizeof(*p));
	if (topk <= 0 || experts_per_group <= 0 || groups <= 0 || items < 0)
		return MB_ERR_ARG;
	p->groups = groups, p->topk = topk, p->items = items;
	p->counts = calloc((size_t)groups, sizeof(long));
	p->offsets = calloc((size_t)groups + 1, sizeof(long));
	p->item_slots = malloc(((size_t)items * (size_t)topk + 1) * sizeof(int32_t));
	long *cursor = calloc((size_t)groups, sizeof(long));
	int err = p->counts && p->offsets && p->item_slots && cursor ? MB_OK : MB_ERR_NOMEM;
	if (!err)
		err = plan_count(meta, items, topk, experts_per_group, groups, p->counts);
	for (int g = 0; !err && g < groups; g++)
		p->offsets[g + 1] = p->offsets[g] + p->counts[g];
	p->slots = err ? 0 : p->offsets[groups];
	p->slot_item = malloc(((size_t)p->slots + 1) * sizeof(int32_t));
	p->slot_group = malloc(((size_t)p->slots + 1) * sizeof(int32_t));
	if (!err && (!p->slot_item || !p->slot_group))
		err = MB_ERR_NOMEM;
	for (int g = 0; !err && g < groups; g++)
		cursor[g] = p->offsets[g];
	for (long i = 0; !err && i < items; i++) {
		const int32_t *ex = meta + i * PERMUTE_META_INTS(topk) + 2;
		int32_t *mine = p->item_slots + i * topk, n = 0;
		for (int j = 0; j < topk; j++)
			if (ex[j] >= 0 && first_in_group(ex, j, experts_per_group)) {
				long s = cursor[ex[j] / experts_per_group]++;
				p->slot_item[s] = (int32_t)i;
				p->slot_group[s] = ex[j] / experts_per_group;
				mine[n++] = (int32_t)s;
			}
		for (int j = n; j < topk; j++)
			mine[j] = -1;
	}
	free(cursor);
	if (err)
		permute_plan_free(p);
	return err;
}

void permute_plan_free(struct permute_plan *p)
{
	free(p->counts);
	free(p->offsets);
	free(p->slot_item);
	free(p->slot_group);
	free(p->item_slots);
	memset(p, 0, sizeof(*p));
}

void permute_meta_init(int src_rank, const int32_t *topk_idx, const float *topk_w,
		       long tokens, int topk, int32_t *meta)
{
	for (long t = 0; t < tokens; t++) {
		int32_t *m = meta + t * PERMUTE_META_INTS(topk);
		m[0] = src_rank;
		m[1] = (int32_t)t;
		memcpy(m + 2, topk_idx + t * topk, (size_t)topk * sizeof(int32_t));
		memcpy(m + 2 + topk, topk_w + t * topk, (size_t)topk * sizeof(float));
	}
}

void permute_meta_gather(const int32_t *meta, const struct permute_plan *p,
			 int experts_per_group, int32_t *out)
{
	const int mi = PERMUTE_META_INTS(p->topk);
	for (long s = 0; s < p->slots; s++) {
		int32_t *o = out + s * mi;
		memcpy(o, meta + (long)p->slot_item[s] * mi, (size_t)mi * sizeof(int32_t));
		for (int j = 0; j < p->topk; j++)
			if (o[2 + j] >= 0 && o[2 + j] / experts_per_group != p->slot_group[s]) {
				o[2 + j] = -1;
				o[2 + p->topk + j] = 0;   /* +0.0f */
			}
	}
}

/* pack_fp8 quantizes x [T, H] as one matrix (1x128 tiles are row-local, so the bits
 * are those of any quantization of the same rows) and interleaves scales and codes. */
static int pack_fp8(const uint16_t *x, long tokens, const struct permute_format *f,
		    uint8_t *rows)
{
	struct fp8_matrix m = { 0 };
	size_t n = (size_t)tokens * (size_t)f->hidden;
	float *xf = malloc(n * sizeof(float) + 1);
	int err = xf ? fp8_matrix_alloc(&m, (int)tokens, f->hidden, FP8_E4M3, FP8_PER_1X128)
		     : MB_ERR_NOMEM;
	for (size_t i = 0; !err && i < n; i++)
		xf[i] = bf16_to_float(x[i]);
	if (!err)
		err = fp8_quantize(xf, &m, false);
	for (long t = 0; !err && t < tokens; t++) {
		uint8_t *r = rows + (size_t)t * f->row_bytes;
		memset(r, 0, f->row_bytes);
		memcpy(r, m.scale + (size_t)t * (size_t)f->scales, 4 * (size_t)f->scales);
		memcpy(r + 4 * (size_t)f->scales, m.q + (size_t)t * (size_t)f->hidden,
		       (size_t)f->hidden);
	}
	if (m.q)
		fp8_matrix_free(&m);
	free(xf);
	return err;
}

int permute_pack(const uint16_t *x, long tokens, const struct permute_format *fmt,
		 uint8_t *rows)
{
	if (tokens == 0)
		return MB_OK;
	if (fmt->payload == PERMUTE_FP8)
		return pack_fp8(x, tokens, fmt, rows);
	for (long t = 0; t < tokens; t++) {
		uint8_t *r = rows + (size_t)t * fmt->row_bytes;
		memset(r, 0, fmt->row_bytes);
		memcpy(r, x + (size_t)t * (size_t)fmt->hidden, 2 * (size_t)fmt->hidden);
	}
	return MB_OK;
}

void permute_gather(const uint8_t *src, const int32_t *slot_item, long slots,
		    size_t row_bytes, uint8_t *dst)
{
	for (long s = 0; s < slots; s++)
		memcpy(dst + (size_t)s * row_bytes, src + (size_t)slot_item[s] * row_bytes,
		       row_bytes);
}

/* experts_count counts the rows of each local expert and checks the range. */
static int experts_count(const int32_t *meta, struct permute_experts *x)
{
	for (long c = 0; c < x->copies; c++) {
		const int32_t *ex = meta + c * PERMUTE_META_INTS(x->topk) + 2;
		for (int j = 0; j < x->topk; j++) {
			int e = ex[j] - x->first_expert;
			if (ex[j] < 0)
				continue;
			if (e < 0 || e >= x->experts)
				return MB_ERR_ARG;
			x->rows[e]++;
		}
	}
	return MB_OK;
}

/* experts_fill places every (copy, expert) in its expert's next row. */
static void experts_fill(const int32_t *meta, struct permute_experts *x, long *cursor)
{
	const int k = x->topk;
	for (long r = 0; r < x->rows_padded; r++)
		x->row_copy[r] = -1;
	for (long c = 0; c < x->copies; c++) {
		const int32_t *ex = meta + c * PERMUTE_META_INTS(k) + 2;
		int n = 0;
		for (int j = 0; j < k; j++) {
			if (ex[j] < 0)
				continue;
			long r = cursor[ex[j] - x->first_expert]++;
			x->row_copy[r] = (int32_t)c;
			x->copy_rows[c * k + n] = (int32_t)r;
			memcpy(&x->copy_weights[c * k + n], &ex[k + j], sizeof(float));
			n++;
		}
		for (; n < k; n++)
			x->copy_rows[c * k + n] = -1, x->copy_weights[c * k + n] = 0.0f;
	}
}

int permute_experts_build(const int32_t *meta, long copies, int topk, int first_expert,
			  int experts, struct permute_experts *x)
{
	memset(x, 0, sizeof(*x));
	if (experts <= 0 || topk <= 0 || copies < 0)
		return MB_ERR_ARG;
	*x = (struct permute_experts){ .experts = experts, .first_expert = first_expert,
				       .topk = topk, .copies = copies };
	size_t ck = (size_t)copies * (size_t)topk + 1;
	x->rows = calloc((size_t)experts, sizeof(long));
	x->offsets = calloc((size_t)experts + 1, sizeof(long));
	x->copy_rows = malloc(ck * sizeof(int32_t));
	x->copy_weights = malloc(ck * sizeof(float));
	long *cursor = calloc((size_t)experts, sizeof(long));
	int err = x->rows && x->offsets && x->copy_rows && x->copy_weights && cursor
		  ? experts_count(meta, x) : MB_ERR_NOMEM;
	for (int e = 0; !err && e < experts; e++) {
		long pad = (x->rows[e] + PERMUTE_ALIGN_ROWS - 1) / PERMUTE_ALIGN_ROWS;
		x->offsets[e + 1] = x->offsets[e] + pad * PERMUTE_ALIGN_ROWS;
		cursor[e] = x->offsets[e];
	}
	x->rows_padded = err ? 0 : x->offsets[experts];
	x->row_copy = malloc(((size_t)x->rows_padded + 1) * sizeof(int32_t));
	if (!err && !x->row_copy)
		err = MB_ERR_NOMEM;
	if (!err)
		experts_fill(meta, x, cursor);
	free(cursor);
	if (err)
		permute_experts_free(x);
	return err;
}

void permute_experts_free(struct permute_experts *x)
{
	free(x->rows);
	free(x->offsets);
	free(x->row_copy);
	free(x->copy_rows);
	free(x->copy_weights);
	memset(x, 0, sizeof(*x));
}

void permute_arrange(const uint8_t *rows, const struct permute_format *fmt,
		     const struct permute_experts *x, void *xe, float *xe_scale)
{
	const size_t h = (size_t)fmt->hidden, sc = (size_t)fmt->scales;
	for (long r = 0; r < x->rows_padded; r++) {
		const uint8_t *src = x->row_copy[r] >= 0 ?
				     rows + (size_t)x->row_copy[r] * fmt->row_bytes : NULL;
		if (fmt->payload == PERMUTE_BF16) {
			uint16_t *d = (uint16_t *)xe + (size_t)r * h;
			if (src)
				memcpy(d, src, 2 * h);
			else
				memset(d, 0, 2 * h);
			continue;
		}
		uint8_t *q = (uint8_t *)xe + (size_t)r * h;
		float *s = xe_scale + (size_t)r * sc;
		if (src) {
			memcpy(s, src, 4 * sc);
			memcpy(q, src + 4 * sc, h);
			continue;
		}
		memset(q, 0, h);
		for (size_t i = 0; i < sc; i++)
			s[i] = 1.0f;
	}
}

void permute_identity_experts(const struct permute_format *fmt, long rows, const void *xe,
			      const float *xe_scale, uint16_t *y)
{
	const size_t h = (size_t)fmt->hidden, n = (size_t)rows * h;
	if (fmt->payload == PERMUTE_BF16) {
		memcpy(y, xe, 2 * n);
		return;
	}
	const uint8_t *q = xe;
	for (size_t i = 0; i < n; i++) {
		size_t r = i / h, c = i % h;
		float s = xe_scale[r * (size_t)fmt->scales + c / FP8_TILE];
		y[i] = bf16_from_float(fp8_decode(q[i], FP8_E4M3) * s);
	}
}

/* NOTE: without the FMA instruction set (x86-64's baseline) fmaf is a libm call per
 * element; a clone built for FMA runs where the CPU has it. fmaf is exactly rounded
 * either way: both clones give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("fma", "default")))
#endif
void permute_reduce(const uint16_t *in, int hidden, const int32_t *idx, const float *w,
		    int k, long n_out, uint16_t *out)
{
	enum { CHUNK = 256 };
	float acc[CHUNK];
	for (long i = 0; i < n_out; i++)
		for (int c0 = 0; c0 < hidden; c0 += CHUNK) {
			int n = hidden - c0 < CHUNK ? hidden - c0 : CHUNK;
			memset(acc, 0, sizeof(acc));
			/* NOTE: j outermost, but each element still sums in j order with fmaf, as
			 * the CUDA kernel does: the same bits. */
			for (int j = 0; j < k && idx[i * k + j] >= 0; j++) {
				const uint16_t *row = in + (size_t)idx[i * k + j] * (size_t)hidden + c0;
				float wj = w ? w[i * k + j] : 1.0f;
				for (int c = 0; c < n; c++)
					acc[c] = w ? fmaf(wj, bf16_to_float(row[c]), acc[c])
						   : acc[c] + bf16_to_float(row[c]);
			}
			for (int c = 0; c < n; c++)
				out[(size_t)i * (size_t)hidden + (size_t)(c0 + c)] = bf16_from_float(acc[c]);
		}
}
