/*
 * test_attention_tiles.c - Check suite for kernels/attention/attention_tiles.h, the index math
 * the CUDA attention kernels use, on the host (no GPU needed): the key tiles a query
 * tile visits cover every visible (query, key) pair and skip only fully masked tiles;
 * the backward's first query tile loses no pair; decode splits cover the context once
 * with no empty split; the mma.sync fragment maps cover their tiles exactly once; and
 * the score fragments reused as the A operand of the next product land where the A
 * layout expects them.
 */
#include <check.h>
#include <string.h>

#include "attention_tiles.h"
#include "check_main.h"

static const int seqs[] = { 1, 2, 17, 63, 64, 65, 127, 128, 129, 300 };
#define NSEQ ((int)(sizeof(seqs) / sizeof(seqs[0])))

/* tile_has_visible says whether any query of [q0, q0+bm) sees a key of [k0, k0+bn). */
static int tile_has_visible(int q0, int bm, int k0, int bn, int seq, int causal)
{
	for (int q = q0; q < q0 + bm; q++)
		for (int k = k0; k < k0 + bn; k++)
			if (att_visible(q, k, seq, causal))
				return 1;
	return 0;
}

START_TEST(forward_key_tiles_cover_visible_pairs)
{
	const int bm = 64, bn = 64;
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < NSEQ; i++) {
			int seq = seqs[i];
			for (int q0 = 0; q0 < seq; q0 += bm) {
				int n = att_fwd_key_tiles(q0, bm, seq, bn, c);
				ck_assert_int_ge(n, 1);
				ck_assert_int_le(n, att_cdiv(seq, bn));
				for (int t = 0; t < att_cdiv(seq, bn); t++)
					ck_assert_msg(tile_has_visible(q0, bm, t * bn, bn, seq, c) == (t < n),
						      "seq %d causal %d q0 %d tile %d of %d", seq, c, q0, t, n);
			}
		}
}
END_TEST

START_TEST(backward_first_query_tile_loses_nothing)
{
	const int bm = 32, bn = 64;
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < NSEQ; i++) {
			int seq = seqs[i];
			for (int k0 = 0; k0 < seq; k0 += bn) {
				int first = att_bwd_first_query_tile(k0, bm, c);
				for (int qt = 0; qt < first; qt++)
					ck_assert(!tile_has_visible(qt * bm, bm, k0, bn, seq, c));
				ck_assert(tile_has_visible(first * bm, bm, k0, bn, seq, c));
			}
		}
}
END_TEST

START_TEST(decode_splits_cover_the_context_once)
{
	const int ctxs[] = { 1, 31, 32, 33, 1000, 4096, 4097 }, wants[] = { 0, 1, 3, 7, 64, 264, 100000 };
	const int dn = 32;
	for (size_t i = 0; i < sizeof(ctxs) / sizeof(ctxs[0]); i++)
		for (size_t w = 0; w < sizeof(wants) / sizeof(wants[0]); w++) {
			int tiles = att_cdiv(ctxs[i], dn);
			int per = att_decode_tiles_per_split(tiles, wants[w]);
			int splits = att_cdiv(tiles, per), chunk = per * dn, covered = 0;
			ck_assert_int_ge(per, 1);
			for (int s = 0; s < splits; s++) {
				int beg = s * chunk, end = beg + chunk < ctxs[i] ? beg + chunk : ctxs[i];
				ck_assert_msg(end > beg, "ctx %d want %d: split %d empty", ctxs[i], wants[w], s);
				ck_assert_int_eq(beg, covered);
				covered = end;
			}
			ck_assert_int_eq(covered, ctxs[i]);
			if (wants[w] >= 1 && wants[w] <= tiles)
				ck_assert_int_le(splits, wants[w]);
		}
}
END_TEST

START_TEST(fragments_cover_their_tiles_once)
{
	int a[16][16], b[16][8], c[16][8];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(c, 0, sizeof(c));
	for (int lane = 0; lane < 32; lane++) {
		for (int r = 0; r < 4; r++)
			for (int e = 0; e < 2; e++)
				a[att_a_row(lane, r)][att_a_col(lane, r) + e]++;
		for (int r = 0; r < 2; r++)
			for (int e = 0; e < 2; e++)
				b[att_b_k(lane, r) + e][att_b_n(lane)]++;
		for (int i = 0; i < 4; i++)
			c[att_c_row(lane, i)][att_c_col(lane, i)]++;
	}
	for (int r = 0; r < 16; r++) {
		for (int col = 0; col < 16; col++)
			ck_assert_int_eq(a[r][col], 1);
		for (int n = 0; n < 8; n++) {
			ck_assert_int_eq(b[r][n], 1);
			ck_assert_int_eq(c[r][n], 1);
		}
	}
}
END_TEST

/* The C fragment of n tile att_p_tile(kk, r), elements att_p_elem(r) and +1, must hold
 * the A elements (a_row, kk*16 + a_col) and (a_row, kk*16 + a_col + 1) of register r. */
START_TEST(score_fragments_reused_as_a_operand)
{
	for (int kk = 0; kk < 4; kk++)
		for (int lane = 0; lane < 32; lane++)
			for (int r = 0; r < 4; r++)
				for (int e = 0; e < 2; e++) {
					int i = att_p_elem(r) + e;
					ck_assert_int_eq(att_c_row(lane, i), att_a_row(lane, r));
					ck_assert_int_eq(att_p_tile(kk, r) * 8 + att_c_col(lane, i),
							 kk * 16 + att_a_col(lane, r) + e);
				}
}
END_TEST

/* Every multiple of 16 up to 256 is taken, nothing else; the square tile of a pair
 * covers both dims, is a multiple of 64 and wastes less than 64 columns. */
START_TEST(training_head_dims_and_their_tile)
{
	for (int dqk = -16; dqk <= 300; dqk++)
		for (int dv = 0; dv <= 300; dv += 8) {
			const int want = dqk >= 16 && dv >= 16 && dqk <= 256 && dv <= 256 &&
					 dqk % 16 == 0 && dv % 16 == 0;
			ck_assert_int_eq(att_train_dims_ok(dqk, dv), want);
			if (!want)
				continue;
			const int t = att_train_tile(dqk, dv), d = dqk > dv ? dqk : dv;
			ck_assert(t % 64 == 0 && t >= d && t - d < 64 && t <= ATT_TRAIN_MAX_DIM);
		}
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("attention_tiles");
	TCase *core = tcase_create("core");
	tcase_add_test(core, forward_key_tiles_cover_visible_pairs);
	tcase_add_test(core, backward_first_query_tile_loses_nothing);
	tcase_add_test(core, decode_splits_cover_the_context_once);
	tcase_add_test(core, training_head_dims_and_their_tile);
	suite_add_tcase(s, core);
	TCase *frag = tcase_create("fragments");
	tcase_add_test(frag, fragments_cover_their_tiles_once);
	tcase_add_test(frag, score_fragments_reused_as_a_operand);
	suite_add_tcase(s, frag);
	return s;
}

MB_CHECK_MAIN(make_suite)
