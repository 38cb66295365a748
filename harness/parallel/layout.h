/*
 * layout.h - the parallel layout of a run: which rank holds which slice of the model.
 *
 * Megatron-LM's rank order for the dense part is tp-cp-dp-pp (TP ranks adjacent, PP
 * furthest apart; the order string it documents is tp-cp-ep-dp-pp), and the expert grid
 * is carved out of the same ranks as etp-ep-edp-pp, with
 *   DP  = world / (TP*CP*PP)
 *   EDP = world / (ETP*EP*PP)      (the expert-data-parallel size)
 * Pure C: it computes coordinates and group members; harness/parallel/comm.h builds the groups.
 */
#ifndef MB_HARNESS_LAYOUT_H
#define MB_HARNESS_LAYOUT_H

#include <stddef.h>
#include <stdio.h>

enum layout_group {
	LAYOUT_TP, LAYOUT_CP, LAYOUT_DP, LAYOUT_PP,  /* dense grid */
	LAYOUT_ETP, LAYOUT_EP, LAYOUT_EDP,           /* expert grid (PP shared) */
	LAYOUT_N_GROUPS
};

struct parallel_layout {
	int world;
	int tp, cp, dp, pp;
	int etp, ep, edp;
	int experts;          /* routed experts of the model; 0 = no MoE check */
	int ranks_per_node;   /* for the node of a rank; >= 1 */
};

struct layout_coords {
	int rank, node, local_rank;
	int tp, cp, dp, pp;   /* this rank's index in each dense dimension */
	int etp, ep, edp;     /* and in the expert dimensions */
};

/* layout_init checks and completes a layout: world, tp, cp, pp, ep, etp given (dp and
 * edp derived; dp = 0 on input means "derive", else it must match). Rejects sizes < 1,
 * a world the products do not divide, experts not divisible by ep, ranks_per_node not
 * dividing world. Returns MB_OK, or MB_ERR_ARG with the problem in why (one line, e.g.
 * "--ep 3 does not divide 256 experts"). */
int layout_init(struct parallel_layout *l, char *why, size_t why_len);
/* layout_coords_of fills the coordinates of rank r. */
void layout_coords_of(const struct parallel_layout *l, int r, struct layout_coords *c);
/* layout_group_ranks writes the ranks of g's group that contains rank r, in group
 * order, into ranks (room for the group's size); returns the group size. The color of
 * that group (same for all its members, distinct between groups) goes to *color when
 * color is not NULL: comm_split(world, color, index in group). */
int layout_group_ranks(const struct parallel_layout *l, enum layout_group g, int r,
		       int *ranks, int *color);
/* layout_group_name: "tp", "cp", "dp", "pp", "etp", "ep", "edp". */
const char *layout_group_name(enum layout_group g);
/* layout_print writes one line per rank: coordinates and every group's members. */
void layout_print(FILE *f, const struct parallel_layout *l);

#endif
