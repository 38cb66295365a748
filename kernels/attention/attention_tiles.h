/*
 * attention_tiles.h - the index math of the CUDA attention kernels (attention*.cu),
 * callable from the host too, so that tests/test_attention_tiles.c checks it on a
 * machine without a GPU: which key tiles a query tile visits, which query tiles a key
 * tile visits in the backward pass, how decode splits the context, and where an
 * element of an mma.sync m16n8k16 fragment sits in its tile.
 *
 * Fragment layouts of mma.sync.m16n8k16 with 16-bit A/B and FP32 C (PTX ISA,
 * "Matrix Fragments for mma.m16n8k16"), lane = 4 * group + quad:
 *   A (16x16, row-major)  register r (0..3) holds two elements (row, col), (row, col+1)
 *                         with row = group + 8 (r % 2), col = 2 quad + 8 (r / 2)
 *   B (16x8, "col")       register r (0..1) holds (k, n), (k+1, n):
 *                         k = 2 quad + 8 r, n = group
 *   C (16x8)              element i (0..3): row = group + 8 (i / 2), col = 2 quad + i % 2
 * The lower 16 bits of a register hold the element of the lower column (or k).
 */
#ifndef MB_ATTENTION_TILES_H
#define MB_ATTENTION_TILES_H

#ifdef __CUDACC__
#define ATT_HD __host__ __device__ __forceinline__
#else
#define ATT_HD static inline
#endif

/* att_cdiv returns ceil(a / b) for a >= 0, b > 0. */
ATT_HD int att_cdiv(int a, int b)
{
	return (a + b - 1) / b;
}

/* att_visible says whether query position q sees key position k. */
ATT_HD int att_visible(int q, int k, int seq, int causal)
{
	return k < seq && q < seq && (!causal || k <= q);
}

#define ATT_TRAIN_MAX_DIM 256   /* the widest head dim the training kernels run */

/* att_train_dims_ok says whether the training kernels (forward, backward) run head dims
 * d_qk, d_v: each a multiple of 16 in [16, ATT_TRAIN_MAX_DIM]. */
ATT_HD int att_train_dims_ok(int dqk, int dv)
{
	return dqk >= 16 && dv >= 16 && dqk <= ATT_TRAIN_MAX_DIM && dv <= ATT_TRAIN_MAX_DIM &&
	       dqk % 16 == 0 && dv % 16 == 0;
}

/* att_train_tile is the width of the square tile instantiation that runs head dims
 * with no exact one: max(d_qk, d_v) rounded up to a multiple of 64 (64 .. 256); the
 * columns past each dim are zeros in shared memory and never stored. */
ATT_HD int att_train_tile(int dqk, int dv)
{
	const int d = dqk > dv ? dqk : dv;
	return (d + 63) / 64 * 64;
}

/* att_fwd_key_tiles returns how many key tiles of bn (from key 0) the query tile at q0
 * of bm rows visits: all of them, or with causal those up to its last row's diagonal;
 * the rest are fully masked. */
ATT_HD int att_fwd_key_tiles(int q0, int bm, int seq, int bn, int causal)
{
	int end = causal && q0 + bm < seq ? q0 + bm : seq;
	return att_cdiv(end, bn);
}

/* att_bwd_first_query_tile returns the first query tile of bm rows that the key tile
 * at k0 meets: 0, or with causal the tile holding query k0 (earlier ones see no key of
 * the tile). */
ATT_HD int att_bwd_first_query_tile(int k0, int bm, int causal)
{
	return causal ? k0 / bm : 0;
}

/* att_decode_tiles_per_split spreads tiles key tiles over about `want` splits and
 * returns the tiles of one split; att_cdiv(tiles, that) splits, none empty. */
ATT_HD int att_decode_tiles_per_split(int tiles, int want)
{
	if (want < 1)
		want = 1;
	if (want > tiles)
		want = tiles;
	return att_cdiv(tiles, want);
}

/* Fragment element positions (see the file header); group = lane / 4, quad = lane % 4. */
ATT_HD int att_a_row(int lane, int r)
{
	return lane / 4 + 8 * (r % 2);
}

ATT_HD int att_a_col(int lane, int r)
{
	return 2 * (lane % 4) + 8 * (r / 2);
}

ATT_HD int att_b_k(int lane, int r)
{
	return 2 * (lane % 4) + 8 * r;
}

ATT_HD int att_b_n(int lane)
{
	return lane / 4;
}

ATT_HD int att_c_row(int lane, int i)
{
	return lane / 4 + 8 * (i / 2);
}

ATT_HD int att_c_col(int lane, int i)
{
	return 2 * (lane % 4) + i % 2;
}

/* att_p_tile and att_p_elem say where the accumulator of A register r of K step kk
 * comes from when a score tile held as C fragments (n tiles of 8 columns) is reused
 * as the A operand (16 columns per K step) of the next product, the FlashAttention-2
 * register trick: n tile 2 kk + r / 2, elements 2 (r % 2) and 2 (r % 2) + 1. */
ATT_HD int att_p_tile(int kk, int r)
{
	return 2 * kk + r / 2;
}

ATT_HD int att_p_elem(int r)
{
	return 2 * (r % 2);
}

#endif
