/*
 * ep_check.c - the always-on checks of dispatch and combine (ep.h): deterministic token
 * payloads, every received row compared bit for bit with the row of the source rank
 * and token it claims to be, conservation of copies, and combine of identity experts
 * against x * sum(weights).
 */
#include "ep_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "fp8.h"
#include "status.h"

/* mix64 is splitmix64's finaliser: a good 64-bit hash of x. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void ep_token_row(uint64_t seed, int rank, long token, int hidden, uint16_t *row)
{
	uint64_t base = mix64(seed ^ mix64(((uint64_t)(uint32_t)rank << 40) ^ (uint64_t)token));
	for (int c = 0; c < hidden; c++) {
		uint64_t h = mix64(base + (uint64_t)c);
		/* NOTE: +-(1 + m/128) * 2^e has 7 fraction bits: exact in BF16. */
		float v = ldexpf(1.0f + (float)(h & 127) / 128.0f, (int)((h >> 8) % 9) - 4);
		row[c] = bf16_from_float((h >> 16) & 1 ? -v : v);
	}
}

int ep_token_rows(struct ep *ep, uint64_t seed, long tokens, uint8_t *x_rows)
{
	size_t h = (size_t)ep->cfg.hidden, n = (size_t)tokens;
	uint16_t *x = malloc(n * h * 2 + 2);
	uint8_t *rows = malloc(n * ep->fmt.row_bytes + 1);
	int err = x && rows ? MB_OK : MB_ERR_NOMEM;
	for (size_t t = 0; !err && t < n; t++)
		ep_token_row(seed, ep->rank, (long)t, (int)h, x + t * h);
	if (!err)
		err = permute_pack(x, tokens, &ep->fmt, rows);
	if (!err)
		err = ep_upload(ep, x_rows, rows, n * ep->fmt.row_bytes);
	if (!err && ep->dev)
		err = permute_cuda_sync(ep->stream);
	free(x);
	free(rows);
	return err;
}

int ep_check_layout(struct ep *ep, long *wrong)
{
	double v[6] = { (double)ep->hop[0].plan.slots, (double)ep->hop[0].received, 0, 0, 0,
			(double)ep->tokens * ep->cfg.topk };
	if (ep->two_hop)
		v[2] = (double)ep->hop[1].plan.slots, v[3] = (double)ep->hop[1].received;
	for (int e = 0; e < ep->ex.experts; e++)
		v[4] += (double)ep->ex.rows[e];
	int err = comm_host_allreduce_f64(ep->c, v, 6, COMM_SUM);
	*wrong = err ? 0 : (v[0] != v[1]) + (v[2] != v[3]) + (v[4] != v[5]);
	return err;
}

/* expected_row writes the payload the experts must see for (src, token): the BF16 row,
 * or its FP8 codes and scales as fp8_quantize makes them. */
static int expected_row(const struct ep *ep, uint64_t seed, int src, long token, uint16_t *row,
			float *tmp, struct fp8_matrix *m)
{
	ep_token_row(seed, src, token, ep->cfg.hidden, row);
	if (ep->fmt.payload == PERMUTE_BF16)
		return MB_OK;
	for (int c = 0; c < ep->cfg.hidden; c++)
		tmp[c] = bf16_to_float(row[c]);
	return fp8_quantize(tmp, m, false);
}

/* row_ok compares expert-major row r with the expected payload (NULL: padding). */
static bool row_ok(const struct ep *ep, const uint8_t *xe, const float *xs, long r,
		   const uint16_t *row, const struct fp8_matrix *m)
{
	const size_t h = (size_t)ep->cfg.hidden, sc = (size_t)ep->fmt.scales;
	bool ok = true;
	if (ep->fmt.payload == PERMUTE_BF16) {
		const uint16_t *got = (const uint16_t *)xe + (size_t)r * h;
		for (size_t c = 0; c < h; c++)
			ok &= got[c] == (row ? row[c] : 0);
		return ok;
	}
	const uint8_t *q = xe + (size_t)r * h;
	const float *s = xs + (size_t)r * sc;
	for (size_t c = 0; c < h; c++)
		ok &= q[c] == (row ? m->q[c] : 0);
	for (size_t i = 0; i < sc; i++)
		ok &= row ? memcmp(&s[i], &m->scale[i], 4) == 0 : s[i] == 1.0f;
	return ok;
}

/* download_input brings the expert-major input to the host (a copy on the device). */
static int download_input(struct ep *ep, uint8_t **xe, float **xs, bool *owned)
{
	size_t rows = (size_t)ep->ex.rows_padded, h = (size_t)ep->cfg.hidden;
	size_t nxe = rows * h * (ep->fmt.payload == PERMUTE_FP8 ? 1 : 2);
	size_t nxs = rows * (size_t)ep->fmt.scales * 4;
	*owned = ep->dev;
	if (!ep->dev) {
		*xe = ep->xe.p, *xs = ep->xs.p;
		return MB_OK;
	}
	*xe = malloc(nxe + 1), *xs = malloc(nxs + 4);
	int err = *xe && *xs ? ep_download(ep, *xe, ep->xe.p, nxe) : MB_ERR_NOMEM;
	return err ? err : ep_download(ep, *xs, ep->xs.p, nxs);
}

int ep_check_dispatch(struct ep *ep, uint64_t seed, long *wrong)
{
	const int mi = PERMUTE_META_INTS(ep->cfg.topk);
	const int32_t *meta = ep_last_hop(ep)->meta;
	struct fp8_matrix m = { 0 };
	uint16_t *row = malloc((size_t)ep->cfg.hidden * 2);
	float *tmp = malloc((size_t)ep->cfg.hidden * 4);
	uint8_t *xe = NULL;
	float *xs = NULL;
	bool owned = false;
	int err = row && tmp ? download_input(ep, &xe, &xs, &owned) : MB_ERR_NOMEM;
	if (!err && ep->fmt.payload == PERMUTE_FP8)
		err = fp8_matrix_alloc(&m, 1, ep->cfg.hidden, FP8_E4M3, FP8_PER_1X128);
	*wrong = 0;
	for (long r = 0; !err && r < ep->ex.rows_padded; r++) {
		int32_t c = ep->ex.row_copy[r];
		int src = c >= 0 ? meta[(size_t)c * mi] : -1;
		long token = c >= 0 ? meta[(size_t)c * mi + 1] : -1;
		if (c >= 0 && (src < 0 || src >= ep->size || token < 0)) {
			(*wrong)++;
			continue;
		}
		if (c >= 0)
			err = expected_row(ep, seed, src, token, row, tmp, &m);
		*wrong += !err && !row_ok(ep, xe, xs, r, c >= 0 ? row : NULL, &m);
	}
	if (m.q)
		fp8_matrix_free(&m);
	if (owned)
		free(xe), free(xs);
	free(row);
	free(tmp);
	return err;
}

/* seen_row writes the token row as the experts saw it (FP8: dequantized to BF16). */
static int seen_row(const struct ep *ep, uint64_t seed, long t, uint16_t *row, float *tmp,
		    struct fp8_matrix *m)
{
	int err = expected_row(ep, seed, ep->rank, t, row, tmp, m);
	for (int c = 0; !err && ep->fmt.payload == PERMUTE_FP8 && c < ep->cfg.hidden; c++)
		row[c] = bf16_from_float(fp8_decode(m->q[c], FP8_E4M3) *
					 m->scale[c / FP8_TILE]);
	return err;
}

int ep_check_combine(struct ep *ep, uint64_t seed, const float *topk_w, const uint16_t *out,
		     long *wrong)
{
	const size_t h = (size_t)ep->cfg.hidden, n = (size_t)ep->tokens;
	const int k = ep->cfg.topk;
	struct fp8_matrix m = { 0 };
	uint16_t *row = malloc(h * 2), *got = malloc(n * h * 2 + 2);
	float *tmp = malloc(h * 4);
	int err = row && got && tmp ? ep_download(ep, got, out, n * h * 2) : MB_ERR_NOMEM;
	if (!err && ep->fmt.payload == PERMUTE_FP8)
		err = fp8_matrix_alloc(&m, 1, (int)h, FP8_E4M3, FP8_PER_1X128);
	*wrong = 0;
	for (size_t t = 0; !err && t < n; t++) {
		double sw = 0;
		for (int j = 0; j < k; j++)
			sw += topk_w[t * (size_t)k + (size_t)j];
		err = seen_row(ep, seed, (long)t, row, tmp, &m);
		bool ok = true;
		/* NOTE: positive weights, so no cancellation: each of the (at most three)
		 * BF16 roundings on the way costs at most half an ulp, 2^-8 relative. */
		for (size_t c = 0; !err && c < h; c++) {
			double ref = (double)bf16_to_float(row[c]) * sw;
			ok &= fabs((double)bf16_to_float(got[t * h + c]) - ref) <= 4 * 0x1p-8 * fabs(ref);
		}
		*wrong += !ok;
	}
	if (m.q)
		fp8_matrix_free(&m);
	free(row), free(got), free(tmp);
	return err;
}
