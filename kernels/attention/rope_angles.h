/*
 * rope_angles.h - the cos and sin of RoPE's angles, kept per thread.
 *
 * rope_rows (block_real.h) rotates every row of a block by its position's angles; the
 * table of those angles depends on the positions, the rotated width and theta alone,
 * so a step's attention blocks (every layer, forward and backward) would each compute
 * the same pow, cos and sin again: ~2% of the CPU step's time in the profile
 * (REPRODUCE.md). rope_angles computes the table once per thread and arguments.
 */
#ifndef MB_ROPE_ANGLES_H
#define MB_ROPE_ANGLES_H

#ifdef __cplusplus
extern "C" {
#endif

/* rope_angles returns cos [npos][dr / 2] followed by sin [npos][dr / 2] of the angles
 * (pos0 + p) * theta^(-2 i / dr), with the expressions of rope (block_real.h), so a
 * rotation by the table is rope's to the bit. The table is the calling thread's and
 * stays valid until its next call with other arguments; NULL without memory. */
const double *rope_angles(int npos, int pos0, int dr, double theta);

#ifdef __cplusplus
}
#endif

#endif
