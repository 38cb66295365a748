/*
 * layout.c - the parallel layout (see layout.h): Megatron-LM's rank order, checked.
 *
 * A rank is a mixed-radix number whose digits are its coordinates, fastest first:
 *   dense   rank = tp + TP*(cp + CP*(dp + DP*pp))
 *   expert  rank = etp + ETP*(ep + EP*(edp + EDP*pp))
 * (Megatron-LM core/parallel_state.py, RankGenerator with order "tp-cp-ep-dp-pp": the
 * dense generator has ep = 1, the expert one tp = etp, cp = 1 and dp = edp.) PP is the
 * slowest digit of both, so a pipeline stage owns the same block of ranks in both grids.
 * A group of dimension g holds the ranks that differ from r only in digit g.
 */
#include "layout.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static const char *const group_names[LAYOUT_N_GROUPS] = {
	"tp", "cp", "dp", "pp", "etp", "ep", "edp",
};

const char *layout_group_name(enum layout_group g)
{
	return (unsigned)g < LAYOUT_N_GROUPS ? group_names[g] : "?";
}

/* check_sizes rejects sizes below 1 and products that do not divide the world. */
static int check_sizes(struct parallel_layout *l, char *why, size_t why_len)
{
	const struct { const char *name; int v; } sz[] = {
		{ "--tp", l->tp }, { "--cp", l->cp }, { "--pp", l->pp }, { "--ep", l->ep },
		{ "--etp", l->etp }, { "--ranks-per-node", l->ranks_per_node },
	};
	if (l->world < 1)
		return snprintf(why, why_len, "world size %d must be >= 1", l->world), MB_ERR_ARG;
	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++)
		if (sz[i].v < 1)
			return snprintf(why, why_len, "%s %d must be >= 1", sz[i].name, sz[i].v),
			       MB_ERR_ARG;
	long dense = (long)l->tp * l->cp * l->pp, expert = (long)l->etp * l->ep * l->pp;
	if (l->world % dense)
		return snprintf(why, why_len, "--tp %d x --cp %d x --pp %d = %ld does not divide "
				"the %d ranks", l->tp, l->cp, l->pp, dense, l->world), MB_ERR_ARG;
	if (l->world % expert)
		return snprintf(why, why_len, "--etp %d x --ep %d x --pp %d = %ld does not divide "
				"the %d ranks", l->etp, l->ep, l->pp, expert, l->world), MB_ERR_ARG;
	if (l->world % l->ranks_per_node)
		return snprintf(why, why_len, "--ranks-per-node %d does not divide the %d ranks",
				l->ranks_per_node, l->world), MB_ERR_ARG;
	return MB_OK;
}

/* layout_init checks a layout and derives dp and edp (see layout.h). */
int layout_init(struct parallel_layout *l, char *why, size_t why_len)
{
	int err = check_sizes(l, why, why_len);
	if (err)
		return err;
	int dp = l->world / (l->tp * l->cp * l->pp);
	if (l->dp != 0 && l->dp != dp)
		return snprintf(why, why_len, "--dp %d does not match %d ranks / (tp %d x cp %d x "
				"pp %d) = %d", l->dp, l->world, l->tp, l->cp, l->pp, dp), MB_ERR_ARG;
	if (l->experts > 0 && l->experts % l->ep)
		return snprintf(why, why_len, "--ep %d does not divide %d experts", l->ep,
				l->experts), MB_ERR_ARG;
	l->dp = dp;
	l->edp = l->world / (l->etp * l->ep * l->pp);
	return MB_OK;
}

/* digits returns the radices of a grid (fastest first) and fills the coordinates of r. */
static void dense_digits(const struct parallel_layout *l, int r, int rad[4], int dig[4])
{
	rad[0] = l->tp, rad[1] = l->cp, rad[2] = l->dp, rad[3] = l->pp;
	for (int i = 0; i < 4; i++)
		dig[i] = r % rad[i], r /= rad[i];
}

static void expert_digits(const struct parallel_layout *l, int r, int rad[3], int dig[3])
{
	int rest = r % (l->world / l->pp);
	rad[0] = l->etp, rad[1] = l->ep, rad[2] = l->edp;
	for (int i = 0; i < 3; i++)
		dig[i] = rest % rad[i], rest /= rad[i];
}

void layout_coords_of(const struct parallel_layout *l, int r, struct layout_coords *c)
{
	int rad[4], dig[4], erad[3], edig[3];
	dense_digits(l, r, rad, dig);
	expert_digits(l, r, erad, edig);
	c->rank = r;
	c->node = r / l->ranks_per_node;
	c->local_rank = r % l->ranks_per_node;
	c->tp = dig[0], c->cp = dig[1], c->dp = dig[2], c->pp = dig[3];
	c->etp = edig[0], c->ep = edig[1], c->edp = edig[2];
}

/* stride_of returns the rank distance between neighbours along g and g's size. */
static void stride_of(const struct parallel_layout *l, enum layout_group g, int *stride,
		      int *size)
{
	const int stage = l->world / l->pp;
	switch (g) {
	case LAYOUT_TP: *stride = 1, *size = l->tp; break;
	case LAYOUT_CP: *stride = l->tp, *size = l->cp; break;
	case LAYOUT_DP: *stride = l->tp * l->cp, *size = l->dp; break;
	case LAYOUT_PP: *stride = stage, *size = l->pp; break;
	case LAYOUT_ETP: *stride = 1, *size = l->etp; break;
	case LAYOUT_EP: *stride = l->etp, *size = l->ep; break;
	case LAYOUT_EDP: *stride = l->etp * l->ep, *size = l->edp; break;
	default: *stride = 1, *size = 1; break;
	}
}

/* layout_group_ranks lists r's group along g; its first member is the color. */
int layout_group_ranks(const struct parallel_layout *l, enum layout_group g, int r,
		       int *ranks, int *color)
{
	int stride, size;
	stride_of(l, g, &stride, &size);
	int index = (r / stride) % size;
	int first = r - index * stride;
	for (int i = 0; i < size; i++)
		ranks[i] = first + i * stride;
	if (color)
		*color = first;
	return size;
}

/* fmt_ranks writes a group's members compactly: "4", "0-7", "0,8..56" (an arithmetic
 * progression as first, second .. last), or a plain list. */
static void fmt_ranks(char *buf, size_t len, const int *r, int n)
{
	if (n == 1)
		snprintf(buf, len, "%d", r[0]);
	else if (r[n - 1] - r[0] == n - 1)
		snprintf(buf, len, "%d-%d", r[0], r[n - 1]);
	else if (n > 2)
		snprintf(buf, len, "%d,%d..%d", r[0], r[1], r[n - 1]);
	else
		snprintf(buf, len, "%d,%d", r[0], r[1]);
}

/* layout_print writes the sizes, then one line per rank with its coordinates and the
 * members of each of its groups. */
void layout_print(FILE *f, const struct parallel_layout *l)
{
	fprintf(f, "# layout: world %d = tp %d x cp %d x dp %d x pp %d; experts: etp %d x ep %d "
		"x edp %d x pp %d; %d ranks per node; order tp-cp-ep-dp-pp\n", l->world, l->tp,
		l->cp, l->dp, l->pp, l->etp, l->ep, l->edp, l->pp, l->ranks_per_node);
	fprintf(f, "%6s %5s %5s %3s %3s %3s %3s %4s %4s %4s  groups\n", "rank", "node", "local",
		"tp", "cp", "dp", "pp", "etp", "ep", "edp");
	int *members = malloc(sizeof(int) * (size_t)l->world);
	if (!members)
		return;
	for (int r = 0; r < l->world; r++) {
		struct layout_coords c;
		layout_coords_of(l, r, &c);
		fprintf(f, "%6d %5d %5d %3d %3d %3d %3d %4d %4d %4d ", r, c.node, c.local_rank,
			c.tp, c.cp, c.dp, c.pp, c.etp, c.ep, c.edp);
		for (int g = 0; g < LAYOUT_N_GROUPS; g++) {
			char list[64];
			int n = layout_group_ranks(l, (enum layout_group)g, r, members, NULL);
			fmt_ranks(list, sizeof(list), members, n);
			fprintf(f, " %s[%s]", group_names[g], list);
		}
		fputc('\n', f);
	}
	free(members);
}
