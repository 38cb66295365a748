/* test_layout.c - the parallel layout against hand-worked examples and its invariants. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "layout.h"
#include "status.h"

/* make builds and checks a layout; returns layout_init's status. */
static int make(struct parallel_layout *l, int world, int tp, int cp, int pp, int ep, int etp,
		int experts, int rpn, char *why)
{
	memset(l, 0, sizeof(*l));
	l->world = world, l->tp = tp, l->cp = cp, l->pp = pp, l->ep = ep, l->etp = etp;
	l->experts = experts, l->ranks_per_node = rpn;
	return layout_init(l, why, 256);
}

/* expect_group asserts that r's group along g is exactly the listed ranks. */
static void expect_group(const struct parallel_layout *l, enum layout_group g, int r,
			 const int *want, int n)
{
	int got[64];
	ck_assert_int_eq(layout_group_ranks(l, g, r, got, NULL), n);
	for (int i = 0; i < n; i++)
		ck_assert_msg(got[i] == want[i], "%s group of rank %d: member %d is %d, want %d",
			      layout_group_name(g), r, i, got[i], want[i]);
}

/* Megatron-LM's own example (parallel_state.initialize_model_parallel docstring): 16
 * GPUs, TP 2, PP 4 -> DP 2; TP [g0,g1], DP [g0,g2], PP [g0,g4,g8,g12]. */
START_TEST(megatron_16_gpus_tp2_pp4)
{
	struct parallel_layout l;
	char why[256];
	ck_assert_int_eq(make(&l, 16, 2, 1, 4, 1, 1, 0, 8, why), MB_OK);
	ck_assert_int_eq(l.dp, 2);
	expect_group(&l, LAYOUT_TP, 0, (int[]){ 0, 1 }, 2);
	expect_group(&l, LAYOUT_TP, 7, (int[]){ 6, 7 }, 2);
	expect_group(&l, LAYOUT_DP, 0, (int[]){ 0, 2 }, 2);
	expect_group(&l, LAYOUT_DP, 13, (int[]){ 13, 15 }, 2);
	expect_group(&l, LAYOUT_PP, 0, (int[]){ 0, 4, 8, 12 }, 4);
	expect_group(&l, LAYOUT_PP, 6, (int[]){ 2, 6, 10, 14 }, 4);
	struct layout_coords c;
	layout_coords_of(&l, 11, &c);
	ck_assert_int_eq(c.tp, 1);
	ck_assert_int_eq(c.dp, 1);
	ck_assert_int_eq(c.pp, 2);
	ck_assert_int_eq(c.node, 1);
	ck_assert_int_eq(c.local_rank, 3);
}
END_TEST

/* 16 ranks, TP 2, PP 2, EP 4: DP 4 and EDP 2 per stage of 8 ranks; the expert grid
 * is etp-ep-edp inside each stage. */
START_TEST(expert_grid_carved_from_dp)
{
	struct parallel_layout l;
	char why[256];
	ck_assert_int_eq(make(&l, 16, 2, 1, 2, 4, 1, 256, 8, why), MB_OK);
	ck_assert_int_eq(l.dp, 4);
	ck_assert_int_eq(l.edp, 2);
	expect_group(&l, LAYOUT_DP, 5, (int[]){ 1, 3, 5, 7 }, 4);
	expect_group(&l, LAYOUT_EP, 5, (int[]){ 4, 5, 6, 7 }, 4);
	expect_group(&l, LAYOUT_EDP, 5, (int[]){ 1, 5 }, 2);
	expect_group(&l, LAYOUT_EDP, 13, (int[]){ 9, 13 }, 2);
	expect_group(&l, LAYOUT_PP, 13, (int[]){ 5, 13 }, 2);
	struct layout_coords c;
	layout_coords_of(&l, 13, &c);
	ck_assert_int_eq(c.ep, 1);
	ck_assert_int_eq(c.edp, 1);
	ck_assert_int_eq(c.pp, 1);
	ck_assert_int_eq(c.dp, 2);
}
END_TEST

/* Expert tensor parallelism: 8 ranks, ETP 2, EP 2 -> EDP 2. */
START_TEST(expert_tensor_parallel)
{
	struct parallel_layout l;
	char why[256];
	ck_assert_int_eq(make(&l, 8, 1, 1, 1, 2, 2, 64, 8, why), MB_OK);
	ck_assert_int_eq(l.edp, 2);
	expect_group(&l, LAYOUT_ETP, 3, (int[]){ 2, 3 }, 2);
	expect_group(&l, LAYOUT_EP, 3, (int[]){ 1, 3 }, 2);
	expect_group(&l, LAYOUT_EDP, 3, (int[]){ 3, 7 }, 2);
	expect_group(&l, LAYOUT_DP, 3, (int[]){ 0, 1, 2, 3, 4, 5, 6, 7 }, 8);
}
END_TEST

/* Every dimension's groups partition the world, and members share one color. */
START_TEST(groups_partition_the_world)
{
	const int cases[][6] = { /* world tp cp pp ep etp */
		{ 24, 2, 1, 3, 2, 1 }, { 32, 2, 2, 2, 4, 2 }, { 12, 1, 1, 1, 3, 1 }, { 1, 1, 1, 1, 1, 1 },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const int *p = cases[k];
		struct parallel_layout l;
		char why[256];
		ck_assert_int_eq(make(&l, p[0], p[1], p[2], p[3], p[4], p[5], 0, 1, why), MB_OK);
		for (int g = 0; g < LAYOUT_N_GROUPS; g++) {
			int seen[64] = { 0 }, members[64], color, color2;
			for (int r = 0; r < l.world; r++) {
				int n = layout_group_ranks(&l, g, r, members, &color);
				int in = 0;
				for (int i = 0; i < n; i++) {
					in += members[i] == r;
					layout_group_ranks(&l, g, members[i], members + 32, &color2);
					ck_assert_int_eq(color2, color);
				}
				ck_assert_int_eq(in, 1);
				if (members[0] == r)
					for (int i = 0; i < n; i++)
						seen[members[i]]++;
			}
			for (int r = 0; r < l.world; r++)
				ck_assert_msg(seen[r] == 1, "%s: rank %d in %d groups",
					      layout_group_name(g), r, seen[r]);
		}
	}
}
END_TEST

/* expect_bad asserts MB_ERR_ARG with the message naming what. */
static void expect_bad(int world, int tp, int pp, int ep, int experts, int rpn, const char *what)
{
	struct parallel_layout l;
	char why[256] = "";
	ck_assert_int_eq(make(&l, world, tp, 1, pp, ep, 1, experts, rpn, why), MB_ERR_ARG);
	ck_assert_msg(strstr(why, what), "'%s' lacks '%s'", why, what);
}

START_TEST(impossible_layouts_rejected)
{
	expect_bad(6, 4, 1, 1, 0, 1, "--tp 4 x --cp 1 x --pp 1 = 4 does not divide the 6 ranks");
	expect_bad(8, 1, 1, 3, 0, 1, "--etp 1 x --ep 3 x --pp 1 = 3 does not divide the 8 ranks");
	expect_bad(12, 1, 1, 3, 256, 1, "--ep 3 does not divide 256 experts");
	expect_bad(8, 1, 1, 1, 0, 3, "--ranks-per-node 3 does not divide the 8 ranks");
	expect_bad(8, 0, 1, 1, 0, 1, "--tp 0 must be >= 1");
	struct parallel_layout l;
	char why[256];
	memset(&l, 0, sizeof(l));
	l.world = 8, l.tp = 2, l.cp = 1, l.pp = 1, l.ep = 1, l.etp = 1, l.dp = 3;
	l.ranks_per_node = 1;
	ck_assert_int_eq(layout_init(&l, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "--dp 3 does not match"));
}
END_TEST

static Suite *layout_suite(void)
{
	Suite *s = suite_create("layout");
	TCase *core = tcase_create("core");
	tcase_add_test(core, megatron_16_gpus_tp2_pp4);
	tcase_add_test(core, expert_grid_carved_from_dp);
	tcase_add_test(core, expert_tensor_parallel);
	tcase_add_test(core, groups_partition_the_world);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, impossible_layouts_rejected);
	suite_add_tcase(s, limits);
	return s;
}

MB_CHECK_MAIN(layout_suite)
