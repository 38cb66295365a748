/*
 * test_permute.c - the dispatch/combine permutations on one process (kernels/moe/permute.c):
 * plans and counts against a direct count, the gather and expert-major arrangement
 * against the token rows bit for bit (FP8 against fp8_quantize), padding to 128, and
 * the round trip dispatch -> identity experts -> weighted combine = x * sum(weights),
 * with R ranks simulated by slicing the send buffer.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "check_main.h"
#include "fp8.h"
#include "permute.h"
#include "rng.h"
#include "status.h"

struct routing {
	long tokens;
	int experts, topk, ranks;
	int32_t *idx;
	float *w;
	uint16_t *x;     /* [T, H] BF16 */
	int32_t *meta;
};

/* routing_make draws distinct experts per token (the first `crowd` tokens pick
 * experts 0..K-1, several on rank 0), positive weights and random BF16 rows. */
static void routing_make(struct routing *r, long tokens, int experts, int topk, int ranks,
			 int hidden, uint64_t seed, long crowd)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, 1);
	*r = (struct routing){ tokens, experts, topk, ranks, malloc(tokens * topk * 4 + 4),
			       malloc(tokens * topk * 4 + 4), malloc(tokens * hidden * 2 + 2),
			       malloc(tokens * PERMUTE_META_INTS(topk) * 4 + 4) };
	for (long t = 0; t < tokens; t++)
		for (int j = 0; j < topk; j++) {
			int e, dup;
			do {
				e = t < crowd ? j : (int)(mb_rng_next(&rng) % (uint64_t)experts);
				dup = 0;
				for (int i = 0; i < j; i++)
					dup |= r->idx[t * topk + i] == e;
			} while (dup);
			r->idx[t * topk + j] = e;
			r->w[t * topk + j] = (float)mb_rng_uniform(&rng, 0.05, 1.0);
		}
	for (long i = 0; i < tokens * hidden; i++)
		r->x[i] = bf16_from_float((float)mb_rng_normal(&rng));
	permute_meta_init(3, r->idx, r->w, tokens, topk, r->meta);
}

static void routing_free(struct routing *r)
{
	free(r->idx);
	free(r->w);
	free(r->x);
	free(r->meta);
}

/* Counts and order: one copy per (token, rank holding one of its experts), slots
 * rank-major and ascending by token within a rank, item_slots the inverse. */
START_TEST(plan_counts_and_order)
{
	struct routing r;
	struct permute_plan p;
	routing_make(&r, 333, 32, 6, 4, 8, 11 + (uint64_t)_i, 5);
	int epg = r.experts / r.ranks;
	ck_assert_int_eq(permute_plan_build(r.meta, r.tokens, r.topk, epg, r.ranks, &p), MB_OK);
	long total = 0;
	for (int g = 0; g < r.ranks; g++) {
		long want = 0;
		for (long t = 0; t < r.tokens; t++) {
			int hit = 0;
			for (int j = 0; j < r.topk; j++)
				hit |= r.idx[t * r.topk + j] / epg == g;
			want += hit;
		}
		ck_assert_int_eq(p.counts[g], want);
		ck_assert_int_eq(p.offsets[g], total);
		total += want;
		for (long s = p.offsets[g] + 1; s < p.offsets[g] + p.counts[g]; s++)
			ck_assert_int_lt(p.slot_item[s - 1], p.slot_item[s]);
	}
	ck_assert_int_eq(p.slots, total);
	ck_assert_int_eq(p.counts[0] >= 5, 1);
	for (long t = 0; t < r.tokens; t++)
		for (int j = 0; j < r.topk && p.item_slots[t * r.topk + j] >= 0; j++)
			ck_assert_int_eq(p.slot_item[p.item_slots[t * r.topk + j]], t);
	permute_plan_free(&p);
	routing_free(&r);
}
END_TEST

/* An expert outside the ranks' range is an error, not a silent drop. */
START_TEST(plan_rejects_unknown_expert)
{
	struct routing r;
	struct permute_plan p;
	routing_make(&r, 10, 16, 2, 2, 8, 5, 0);
	r.meta[PERMUTE_META_INTS(2) * 4 + 2] = 16;
	ck_assert_int_eq(permute_plan_build(r.meta, r.tokens, r.topk, 8, 2, &p), MB_ERR_ARG);
	routing_free(&r);
}
END_TEST

/* dispatch_rank gathers the rows and metas for group g, arranges them expert-major and
 * checks every row against the source token (BF16 bits, or FP8 codes and scales equal
 * to fp8_quantize of the token's row), the padding, and the offsets. */
static void dispatch_rank(const struct routing *r, const struct permute_format *f,
			  const struct permute_plan *p, const uint8_t *send, const int32_t *smeta,
			  int g, struct permute_experts *x, uint16_t *y)
{
	int epg = r->experts / r->ranks, mi = PERMUTE_META_INTS(r->topk);
	long first = p->offsets[g], n = p->counts[g];
	ck_assert_int_eq(permute_experts_build(smeta + first * mi, n, r->topk, g * epg, epg, x), MB_OK);
	void *xe = malloc(x->rows_padded * (size_t)f->hidden * 2 + 2);
	float *xs = malloc(x->rows_padded * (size_t)(f->scales + 1) * 4);
	permute_arrange(send + first * f->row_bytes, f, x, xe, xs);
	struct fp8_matrix m;
	float row[512];
	ck_assert_int_eq(fp8_matrix_alloc(&m, 1, f->hidden, FP8_E4M3, FP8_PER_1X128), MB_OK);
	for (int e = 0; e < epg; e++) {
		ck_assert_int_eq(x->offsets[e] % PERMUTE_ALIGN_ROWS, 0);
		ck_assert_int_ge(x->offsets[e + 1] - x->offsets[e], x->rows[e]);
		ck_assert_int_lt(x->offsets[e + 1] - x->offsets[e], x->rows[e] + PERMUTE_ALIGN_ROWS);
	}
	for (long row_i = 0; row_i < x->rows_padded; row_i++) {
		int32_t c = x->row_copy[row_i];
		long t = c >= 0 ? smeta[(first + c) * mi + 1] : -1;
		for (int i = 0; i < f->hidden; i++)
			row[i] = t >= 0 ? bf16_to_float(r->x[t * f->hidden + i]) : 0.0f;
		if (f->payload == PERMUTE_BF16) {
			uint16_t *d = (uint16_t *)xe + row_i * f->hidden;
			for (int i = 0; i < f->hidden; i++)
				ck_assert_uint_eq(d[i], bf16_from_float(row[i]));
			continue;
		}
		ck_assert_int_eq(fp8_quantize(row, &m, false), MB_OK);
		ck_assert_mem_eq((uint8_t *)xe + row_i * f->hidden, m.q, (size_t)f->hidden);
		ck_assert_mem_eq(xs + row_i * f->scales, m.scale, 4 * (size_t)f->scales);
	}
	permute_identity_experts(f, x->rows_padded, xe, xs, y);
	fp8_matrix_free(&m);
	free(xe);
	free(xs);
}

/* round_trip dispatches over R simulated ranks, runs identity experts, reduces with the
 * weights per copy, then per token, and compares with x_seen * sum(weights). */
static void round_trip(enum permute_payload payload, int hidden, long tokens, uint64_t seed)
{
	struct routing r;
	struct permute_format f;
	struct permute_plan p;
	routing_make(&r, tokens, 32, 8, 4, hidden, seed, 7);
	ck_assert_int_eq(permute_format_of(hidden, payload, &f), MB_OK);
	int epg = r.experts / r.ranks, mi = PERMUTE_META_INTS(r.topk);
	ck_assert_int_eq(permute_plan_build(r.meta, r.tokens, r.topk, epg, r.ranks, &p), MB_OK);
	uint8_t *rows = malloc(tokens * f.row_bytes), *send = malloc(p.slots * f.row_bytes);
	int32_t *smeta = malloc(p.slots * mi * 4);
	uint16_t *partial = malloc(p.slots * hidden * 2), *out = malloc(tokens * hidden * 2);
	uint16_t *back = malloc(tokens * hidden * 2);
	ck_assert_int_eq(permute_pack(r.x, tokens, &f, rows), MB_OK);
	permute_gather(rows, p.slot_item, p.slots, f.row_bytes, send);
	permute_meta_gather(r.meta, &p, epg, smeta);
	for (int g = 0; g < r.ranks; g++) {
		struct permute_experts x;
		uint16_t *y = malloc(((size_t)p.counts[g] * r.topk + 128 * (size_t)epg) * hidden * 2);
		dispatch_rank(&r, &f, &p, send, smeta, g, &x, y);
		permute_reduce(y, hidden, x.copy_rows, x.copy_weights, r.topk, x.copies,
			       partial + p.offsets[g] * hidden);
		permute_experts_free(&x);
		free(y);
	}
	permute_reduce(partial, hidden, p.item_slots, NULL, r.topk, tokens, out);
	/* x_seen: what the experts saw (the FP8 rows dequantized, rounded to BF16). */
	long bad = 0;
	for (long t = 0; t < tokens; t++) {
		double sw = 0;
		for (int j = 0; j < r.topk; j++)
			sw += r.w[t * r.topk + j];
		void *xe = malloc(hidden * 2 + 8);
		float xs[8];
		struct permute_experts one = { .rows_padded = 1, .row_copy = (int32_t[]){ (int32_t)t } };
		permute_arrange(rows, &f, &one, xe, xs);
		permute_identity_experts(&f, 1, xe, xs, back + t * hidden);
		for (int c = 0; c < hidden; c++) {
			double ref = bf16_to_float(back[t * hidden + c]) * sw;
			double got = bf16_to_float(out[t * hidden + c]);
			bad += !(fabs(got - ref) <= 4.0 * 0x1p-8 * fabs(ref));
		}
		free(xe);
	}
	ck_assert_msg(bad == 0, "%s: %ld combined values off", permute_payload_name(payload), bad);
	permute_plan_free(&p);
	free(rows), free(send), free(smeta), free(partial), free(out), free(back);
	routing_free(&r);
}

START_TEST(round_trip_bf16)
{
	round_trip(PERMUTE_BF16, 256, 97 + 64 * _i, 21 + (uint64_t)_i);
}
END_TEST

START_TEST(round_trip_fp8_odd_hidden)
{
	/* NOTE: 200 is no multiple of 128: the last scale tile covers 72 columns. */
	round_trip(PERMUTE_FP8, 200, 131, 31 + (uint64_t)_i);
}
END_TEST

/* The reduction sums in FP32 with the weights: hand-worked values. */
START_TEST(reduce_weights_by_hand)
{
	uint16_t in[3 * 2] = { bf16_from_float(1.0f), bf16_from_float(-2.0f),
			       bf16_from_float(0.5f), bf16_from_float(4.0f),
			       bf16_from_float(8.0f), bf16_from_float(1.0f) };
	int32_t idx[2 * 2] = { 2, 0, 1, -1 };
	float w[2 * 2] = { 0.25f, 2.0f, 3.0f, 100.0f };
	uint16_t out[2 * 2];
	permute_reduce(in, 2, idx, w, 2, 2, out);
	ck_assert_float_eq(bf16_to_float(out[0]), 0.25f * 8.0f + 2.0f * 1.0f);
	ck_assert_float_eq(bf16_to_float(out[1]), 0.25f * 1.0f + 2.0f * -2.0f);
	ck_assert_float_eq(bf16_to_float(out[2]), 1.5f);
	ck_assert_float_eq(bf16_to_float(out[3]), 12.0f);
}
END_TEST

/* A token whose K experts all live on one rank sends one copy there, in K rows. */
START_TEST(several_experts_on_one_rank)
{
	int32_t meta[PERMUTE_META_INTS(3)] = { 0, 0, 5, 4, 6, 0, 0, 0 };
	struct permute_plan p;
	struct permute_experts x;
	ck_assert_int_eq(permute_plan_build(meta, 1, 3, 4, 2, &p), MB_OK);
	ck_assert_int_eq(p.counts[0], 0);
	ck_assert_int_eq(p.counts[1], 1);
	ck_assert_int_eq(permute_experts_build(meta, 1, 3, 4, 4, &x), MB_OK);
	ck_assert_int_eq(x.rows_padded, 3 * PERMUTE_ALIGN_ROWS);
	ck_assert_int_eq(x.rows[0] + x.rows[1] + x.rows[2] + x.rows[3], 3);
	ck_assert_int_eq(x.copy_rows[0], PERMUTE_ALIGN_ROWS);   /* expert 5 */
	ck_assert_int_eq(x.copy_rows[1], 0);                    /* expert 4 */
	ck_assert_int_eq(x.copy_rows[2], 2 * PERMUTE_ALIGN_ROWS);
	permute_experts_free(&x);
	permute_plan_free(&p);
}
END_TEST

static Suite *permute_suite(void)
{
	Suite *s = suite_create("permute");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, plan_counts_and_order, 0, 3);
	tcase_add_test(core, plan_rejects_unknown_expert);
	tcase_add_test(core, reduce_weights_by_hand);
	tcase_add_test(core, several_experts_on_one_rank);
	TCase *trip = tcase_create("round_trip");
	tcase_add_loop_test(trip, round_trip_bf16, 0, 3);
	tcase_add_loop_test(trip, round_trip_fp8_odd_hidden, 0, 2);
	suite_add_tcase(s, core);
	suite_add_tcase(s, trip);
	return s;
}

MB_CHECK_MAIN(permute_suite)
