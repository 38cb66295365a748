/*
 * test_pipeline.c - the pipeline schedule generator, simulator, closed forms and
 * lowering (harness/pipeline/pipeline.h): every micro-batch gets one F, B and W per stage, no
 * operation starts before its inputs exist, the published closed forms hold to 1e-9
 * over a grid of PP, micro-batches and durations where their conditions hold (and
 * fail where they do not), peak activations and parameter copies match the DualPipe
 * table, invalid sizes are rejected with the constraint named, and the lowering's
 * messages pair up.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "pipeline.h"
#include "status.h"

#define TOL 1e-9
#define N_SCHED PIPE_N_SCHEDULES

/* Duration sets (f, b, w, fb; NaN: f + b + w) that meet every closed form's condition,
 * and the grid they run over. */
static const double exact_sets[][4] = {
	{ 1, 1, 1, NAN }, { 1, 1, 1, 2 }, { 1, 1, 0.5, 2 }, { 2, 2, 0.5, 3 },
	{ 1, 1, 0.25, 1.25 }, { 0.5, 0.5, 0.5, 1.2 },
};
#define N_SETS (int)(sizeof(exact_sets) / sizeof(exact_sets[0]))
static const int pps[] = { 2, 4, 8, 16 };
static const int mult[] = { 1, 2, 4, 8 };

/* times_of fills t from a duration set. */
static void times_of(const double *d, struct pipe_times *t)
{
	pipe_times_default(t);
	t->f = d[0];
	t->b = d[1];
	t->w = d[2];
	t->fb = d[3];
}

/* build_or_skip builds a plan; false when the schedule rejects the size. */
static bool build_or_skip(enum pipe_schedule s, int pp, int m, int v, struct pipe_plan *p)
{
	char why[256];
	int err = pipe_plan_build(s, pp, m, v, p, why, sizeof(why));

	ck_assert_msg(err == MB_OK || err == MB_ERR_ARG, "%s", why);
	return err == MB_OK;
}

/* simulate runs the simulator, failing the test on any error. */
static void simulate(const struct pipe_plan *p, const struct pipe_times *t, struct pipe_sim *r)
{
	char why[256];

	ck_assert_msg(pipe_simulate(p, t, r, why, sizeof(why)) == MB_OK, "%s", why);
}

/* cell_counts counts, per (micro-batch, stage), its F, B and W (an F&B as its halves,
 * a full backward as B and W), into n[cell * 3 + kind]. */
static void cell_counts(const struct pipe_plan *p, int *n)
{
	for (long i = 0; i < p->n_ops; i++) {
		const struct pipe_op *op = &p->ops[i];
		long c = (long)op->mb * p->stages + op->stage;
		long c2 = (long)op->mb2 * p->stages + op->stage2;
		n[c * 3] += op->kind == PIPE_OP_F || op->kind == PIPE_OP_FB;
		n[c * 3 + 1] += op->kind == PIPE_OP_B;
		n[c * 3 + 2] += op->kind == PIPE_OP_W || (op->kind == PIPE_OP_B && op->with_w);
		if (op->kind == PIPE_OP_FB) {
			n[c2 * 3 + 1]++;
			n[c2 * 3 + 2] += op->with_w;
		}
	}
}

/* every_cell_once checks one F, B, W per (micro-batch, stage), each on the device the
 * stage maps to. */
static void every_cell_once(const struct pipe_plan *p)
{
	int *n = calloc((size_t)p->microbatches * p->stages * 3, sizeof(int));

	ck_assert_ptr_nonnull(n);
	cell_counts(p, n);
	for (long c = 0; c < (long)p->microbatches * p->stages * 3; c++)
		ck_assert_msg(n[c] == 1, "%s pp %d m %d: micro-batch %ld stage %ld has %d %c",
			      pipe_schedule_name(p->schedule), p->pp, p->microbatches,
			      c / 3 / p->stages, c / 3 % p->stages, n[c], "FBW"[c % 3]);
	for (int d = 0; d < p->pp; d++)
		for (long i = p->first[d]; i < p->first[d + 1]; i++) {
			const struct pipe_op *op = &p->ops[i];
			ck_assert_int_eq(pipe_stage_device(p, op->mb, op->stage), d);
			if (op->kind == PIPE_OP_FB)
				ck_assert_int_eq(pipe_stage_device(p, op->mb2, op->stage2), d);
		}
	free(n);
}

START_TEST(one_f_b_w_per_microbatch_stage_and_chunk)
{
	struct pipe_plan p;

	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 4; k++)
			for (int v = 2; v <= 3; v++) {
				if (!build_or_skip((enum pipe_schedule)_i, pps[i], pps[i] * mult[k], v, &p))
					continue;
				every_cell_once(&p);
				pipe_plan_free(&p);
			}
}
END_TEST

/* Each (micro-batch, stage)'s forward and backward end, read back from a simulation. */
struct ends {
	double *f, *b;
};

/* read_ends records when every forward and backward ended. */
static void read_ends(const struct pipe_plan *p, const struct pipe_sim *r, struct ends *e)
{
	size_t cells = (size_t)p->microbatches * p->stages;

	e->f = calloc(cells, sizeof(double));
	e->b = calloc(cells, sizeof(double));
	ck_assert(e->f && e->b);
	for (long i = 0; i < p->n_ops; i++) {
		const struct pipe_op *op = &p->ops[i];
		long c = (long)op->mb * p->stages + op->stage;
		if (op->kind == PIPE_OP_F || op->kind == PIPE_OP_FB)
			e->f[c] = r->end[i];
		if (op->kind == PIPE_OP_B)
			e->b[c] = r->end[i];
		if (op->kind == PIPE_OP_FB)
			e->b[(long)op->mb2 * p->stages + op->stage2] = r->end[i];
	}
}

/* input_time is when (mb, stage)'s forward (grad = 0) or backward input had arrived. */
static double input_time(const struct pipe_plan *p, const struct ends *e, double comm,
			 int mb, int stage, int grad)
{
	long c = (long)mb * p->stages + stage;
	int src = grad ? stage + 1 : stage - 1;
	double own = grad ? e->f[c] : 0, in;

	if (src < 0 || src >= p->stages)
		return own;
	in = (grad ? e->b[c + 1] : e->f[c - 1]) +
	     (pipe_stage_device(p, mb, src) == pipe_stage_device(p, mb, stage) ? 0 : comm);
	return fmax(in, own);
}

/* respects_dependencies checks no op starts before its inputs, each device runs its
 * ops in order without overlap, and each op lasts its duration. */
static void respects_dependencies(const struct pipe_plan *p, const struct pipe_times *t,
				  const struct pipe_sim *r)
{
	struct ends e;

	read_ends(p, r, &e);
	for (int d = 0; d < p->pp; d++)
		for (long i = p->first[d]; i < p->first[d + 1]; i++) {
			const struct pipe_op *op = &p->ops[i];
			double need = 0;
			if (op->kind == PIPE_OP_F || op->kind == PIPE_OP_FB)
				need = input_time(p, &e, t->latency, op->mb, op->stage, 0);
			if (op->kind == PIPE_OP_B)
				need = input_time(p, &e, t->latency, op->mb, op->stage, 1);
			if (op->kind == PIPE_OP_FB)
				need = fmax(need, input_time(p, &e, t->latency, op->mb2, op->stage2, 1));
			if (op->kind == PIPE_OP_W)
				need = e.b[(long)op->mb * p->stages + op->stage];
			ck_assert_msg(r->start[i] >= need - TOL, "%s device %d op %ld starts %g before "
				      "its input at %g", pipe_schedule_name(p->schedule), d,
				      i - p->first[d], r->start[i], need);
			ck_assert(i == p->first[d] || r->start[i] >= r->end[i - 1] - TOL);
			ck_assert_double_eq_tol(r->end[i] - r->start[i], pipe_op_duration(p, op, t), TOL);
		}
	free(e.f);
	free(e.b);
}

START_TEST(no_operation_starts_before_its_inputs)
{
	static const double sets[][5] = { { 1, 1, 1, NAN, 0 }, { 1, 2, 0.5, 2.5, 0.3 },
					  { 2, 1, 3, 1, 0.05 } };
	struct pipe_plan p;
	struct pipe_sim r;
	struct pipe_times t;

	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 3; i++) {
			times_of(sets[k], &t);
			t.latency = sets[k][4];
			if (!build_or_skip((enum pipe_schedule)_i, pps[i], 4 * pps[i], 3, &p))
				continue;
			simulate(&p, &t, &r);
			respects_dependencies(&p, &t, &r);
			pipe_sim_free(&r);
			pipe_plan_free(&p);
		}
}
END_TEST

/* closed_gap simulates one size and returns simulated minus closed-form bubble. */
static double closed_gap(enum pipe_schedule s, int pp, int m, int v, const struct pipe_times *t,
			 bool *ran, struct pipe_closed *c)
{
	struct pipe_plan p;
	struct pipe_sim r;
	double gap;

	*ran = build_or_skip(s, pp, m, v, &p);
	if (!*ran)
		return 0;
	simulate(&p, t, &r);
	pipe_closed_form(&p, t, c);
	gap = r.bubble_max - c->bubble;
	ck_assert_double_eq_tol(r.fraction_max, r.bubble_max / (m * (t->f + t->b + t->w)), TOL);
	pipe_sim_free(&r);
	pipe_plan_free(&p);
	return gap;
}

START_TEST(closed_forms_hold_over_the_grid)
{
	struct pipe_times t;
	struct pipe_closed c;
	int runs = 0;
	bool ran;

	for (int set = 0; set < N_SETS; set++)
		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 4; k++) {
				int pp = pps[i], m = pp * mult[k];
				double gap;
				times_of(exact_sets[set], &t);
				gap = closed_gap((enum pipe_schedule)_i, pp, m, 2, &t, &ran, &c);
				if (!ran)
					continue;
				ck_assert_msg(c.exact, "set %d meets %s", set, c.condition);
				ck_assert_msg(fabs(gap) <= TOL * fmax(1, c.bubble), "%s pp %d m %d set %d: "
					      "simulated - %s = %g", pipe_schedule_name(_i), pp, m, set,
					      c.formula, gap);
				runs++;
			}
	ck_assert_int_ge(runs, N_SETS * 10);  /* dualpipe(v) skip m < 2PP only */
}
END_TEST

START_TEST(interleaved_fraction_is_p_minus_1_over_v_m)
{
	struct pipe_times t;
	struct pipe_closed c;
	bool ran;

	for (int v = 2; v <= 4; v++)
		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 4; k++) {
				int pp = pps[i], m = pp * mult[k];
				struct pipe_plan p;
				struct pipe_sim r;
				times_of(exact_sets[(v + i + k) % N_SETS], &t);
				ck_assert(build_or_skip(PIPE_INTERLEAVED, pp, m, v, &p));
				simulate(&p, &t, &r);
				ck_assert_double_eq_tol(r.fraction_max, (pp - 1.0) / ((double)v * m), TOL);
				pipe_sim_free(&r);
				pipe_plan_free(&p);
				ck_assert_double_eq_tol(closed_gap(PIPE_INTERLEAVED, pp, m, v, &t, &ran, &c),
							0, TOL * fmax(1, c.bubble));
			}
}
END_TEST

START_TEST(closed_forms_fail_outside_their_conditions)
{
	/* zb-h1 with w > f; dualpipe(v) with f != b; 1f1b with a message latency. */
	static const struct { enum pipe_schedule s; double d[4], latency; } cases[] = {
		{ PIPE_ZBH1, { 1, 1, 1.5, NAN }, 0 }, { PIPE_DUALPIPE, { 2, 1, 1, 3 }, 0 },
		{ PIPE_DUALPIPEV, { 1, 2, 1, 3 }, 0 }, { PIPE_1F1B, { 1, 1, 1, NAN }, 0.1 },
		{ PIPE_DUALPIPE, { 1, 1, 1, 1.5 }, 0 },
	};
	struct pipe_times t;
	struct pipe_closed c;
	bool ran;
	double gap;

	times_of(cases[_i].d, &t);
	t.latency = cases[_i].latency;
	gap = closed_gap(cases[_i].s, 8, 32, 2, &t, &ran, &c);
	ck_assert(ran);
	ck_assert_msg(!c.exact, "%s: durations outside '%s' marked exact",
		      pipe_schedule_name(cases[_i].s), c.condition);
	ck_assert_msg(fabs(gap) > 0.1, "%s: the closed form held outside its condition",
		      pipe_schedule_name(cases[_i].s));
}
END_TEST

START_TEST(peak_activations_and_parameter_copies)
{
	/* DualPipe table: 1F1B and ZB1P PP, DualPipe PP+1, over 2PP half-size stages for
	 * DualPipeV ((2PP+1)/2 in device shares); GPipe holds all m; Megatron interleaved
	 * (2(p-1) + (v-1)p + 1) chunks of 1/v on its first device. */
	int pp = pps[_i % 4], m = pp * 4, v = 2;
	double want[N_SCHED] = { m, pp, (2.0 * (pp - 1) + (v - 1) * pp + 1) / v, pp, pp + 1,
				 pp + 0.5 };
	struct pipe_times t;
	struct pipe_plan p;
	struct pipe_sim r;

	pipe_times_default(&t);
	for (int s = 0; s < N_SCHED; s++) {
		ck_assert(build_or_skip((enum pipe_schedule)s, pp, m, v, &p));
		simulate(&p, &t, &r);
		ck_assert_msg(r.peak_act_max == want[s], "%s pp %d: peak %g, want %g",
			      pipe_schedule_name(s), pp, r.peak_act_max, want[s]);
		ck_assert_int_eq(p.param_copies, s == PIPE_DUALPIPE ? 2 : 1);
		pipe_sim_free(&r);
		pipe_plan_free(&p);
	}
}
END_TEST

START_TEST(invalid_sizes_name_their_constraint)
{
	static const struct { enum pipe_schedule s; int pp, m, v; const char *what; } bad[] = {
		{ PIPE_DUALPIPE, 3, 12, 2, "even number of devices" },
		{ PIPE_DUALPIPE, 4, 9, 2, "even number of micro-batches" },
		{ PIPE_DUALPIPE, 4, 6, 2, "micro-batches >= 2 x PP" },
		{ PIPE_DUALPIPEV, 4, 7, 2, "dualpipev needs micro-batches >= 2 x PP" },
		{ PIPE_INTERLEAVED, 4, 8, 1, "chunks per device" },
		{ PIPE_INTERLEAVED, 4, 10, 2, "multiple of PP" },
		{ PIPE_1F1B, 0, 8, 2, "--pp 0 out of range" },
		{ PIPE_ZBH1, 4, 0, 2, "--microbatches 0 out of range" },
		{ PIPE_GPIPE, 4096, 1 << 20, 2, "too many operations" },
	};
	struct pipe_plan p;
	char why[256] = "";

	ck_assert_int_eq(pipe_plan_check(bad[_i].s, bad[_i].pp, bad[_i].m, bad[_i].v, why,
					 sizeof(why)), MB_ERR_ARG);
	ck_assert_msg(strstr(why, bad[_i].what), "'%s' does not name '%s'", why, bad[_i].what);
	ck_assert_int_eq(pipe_plan_build(bad[_i].s, bad[_i].pp, bad[_i].m, bad[_i].v, &p, why,
					 sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_null(p.ops);
}
END_TEST

START_TEST(a_broken_order_is_reported_as_deadlock)
{
	struct pipe_plan p;
	struct pipe_sim r;
	struct pipe_times t;
	struct pipe_op tmp;
	char why[256] = "";
	long a, z;

	pipe_times_default(&t);
	ck_assert(build_or_skip((enum pipe_schedule)_i, 4, 8, 2, &p));
	a = p.first[1];
	z = p.first[2] - 1;
	tmp = p.ops[a];  /* device 1 runs its last operation first */
	p.ops[a] = p.ops[z];
	p.ops[z] = tmp;
	ck_assert_int_eq(pipe_simulate(&p, &t, &r, why, sizeof(why)), MB_ERR_CHECK);
	ck_assert_msg(strstr(why, "deadlock") && strstr(why, "device"), "%s", why);
	ck_assert_ptr_null(r.start);
	pipe_plan_free(&p);
}
END_TEST

/* One message as seen from its sender or its receiver: (from, to, tag). */
struct msg3 {
	int from, to, tag;
};

/* msg_cmp orders messages for pairing. */
static int msg_cmp(const void *a, const void *b)
{
	const struct msg3 *x = a, *y = b;

	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return (x->to > y->to) - (x->to < y->to);
}

/* check_op_shape checks one lowered op against its plan op: kind, micro-batches,
 * work units, and no messages for W. */
static void check_op_shape(const struct pipe_op *op, const struct pipe_exec_op *e)
{
	ck_assert_int_eq(e->kind, "FBWX"[op->kind]);
	ck_assert_int_eq(e->mb, op->mb);
	ck_assert_int_eq(e->mb2, op->kind == PIPE_OP_FB ? op->mb2 : -1);
	ck_assert(e->n_recv <= PIPE_EXEC_MAX_MSGS && e->n_send <= PIPE_EXEC_MAX_MSGS);
	if (op->kind == PIPE_OP_W)
		ck_assert(e->n_recv == 0 && e->n_send == 0 && e->work == 1);
	if (op->kind == PIPE_OP_F)
		ck_assert(e->work == 1);
	if (op->kind == PIPE_OP_B)
		ck_assert(e->work == 1 + op->with_w);
	if (op->kind == PIPE_OP_FB)
		ck_assert(e->work == 2 + op->with_w);
}

/* lower_all lowers every rank, collecting sends and receives. Returns their count. */
static long lower_all(const struct pipe_plan *p, struct msg3 *sends, struct msg3 *recvs,
		      long *n_recv)
{
	long ns = 0;

	*n_recv = 0;
	for (int d = 0; d < p->pp; d++) {
		struct pipe_exec_program prog;
		ck_assert_int_eq(pipe_lower(p, d, &prog), MB_OK);
		ck_assert_int_eq(prog.n_ops, p->first[d + 1] - p->first[d]);
		for (int i = 0; i < prog.n_ops; i++) {
			const struct pipe_exec_op *e = &prog.ops[i];
			check_op_shape(&p->ops[p->first[d] + i], e);
			for (int k = 0; k < e->n_send; k++)
				sends[ns++] = (struct msg3){ d, e->send[k].peer, e->send[k].tag };
			for (int k = 0; k < e->n_recv; k++)
				recvs[(*n_recv)++] = (struct msg3){ e->recv[k].peer, d, e->recv[k].tag };
		}
		pipe_exec_program_free(&prog);
	}
	return ns;
}

START_TEST(lowered_messages_pair_up)
{
	struct pipe_plan p;

	for (int i = 0; i < 3; i++) {
		long cap, ns, nr, hops = 0;
		struct msg3 *s, *r;
		if (!build_or_skip((enum pipe_schedule)_i, pps[i], 2 * pps[i], 3, &p))
			continue;
		cap = 4 * (long)p.microbatches * p.stages;
		s = malloc((size_t)cap * sizeof(*s));
		r = malloc((size_t)cap * sizeof(*r));
		ck_assert(s && r);
		ns = lower_all(&p, s, r, &nr);
		for (int mb = 0; mb < p.microbatches; mb++)
			for (int st = 1; st < p.stages; st++)
				hops += pipe_stage_device(&p, mb, st) != pipe_stage_device(&p, mb, st - 1);
		ck_assert_int_eq(ns, 2 * hops);  /* an activation and a gradient per hop */
		ck_assert_int_eq(nr, ns);
		qsort(s, (size_t)ns, sizeof(*s), msg_cmp);
		qsort(r, (size_t)nr, sizeof(*r), msg_cmp);
		for (long k = 0; k < ns; k++) {
			ck_assert_msg(msg_cmp(&s[k], &r[k]) == 0, "send %d->%d tag %d unmatched",
				      s[k].from, s[k].to, s[k].tag);
			ck_assert(k == 0 || s[k].tag != s[k - 1].tag);  /* tags unique */
			ck_assert(s[k].from != s[k].to);
		}
		free(s);
		free(r);
		pipe_plan_free(&p);
	}
}
END_TEST

START_TEST(lowering_rejects_a_rank_outside_the_plan)
{
	struct pipe_plan p;
	struct pipe_exec_program prog;

	ck_assert(build_or_skip(PIPE_1F1B, 4, 8, 2, &p));
	ck_assert_int_eq(pipe_lower(&p, 4, &prog), MB_ERR_ARG);
	ck_assert_int_eq(pipe_lower(&p, -1, &prog), MB_ERR_ARG);
	ck_assert_ptr_null(prog.ops);
	pipe_plan_free(&p);
}
END_TEST

START_TEST(schedule_names_round_trip)
{
	enum pipe_schedule s;

	ck_assert_int_eq(pipe_schedule_parse(pipe_schedule_name(_i), &s), MB_OK);
	ck_assert_int_eq(s, _i);
	ck_assert(strstr(pipe_schedule_names(), pipe_schedule_name(_i)));
	ck_assert_int_eq(pipe_schedule_parse("zb-h2", &s), MB_ERR_ARG);
}
END_TEST

static Suite *pipeline_suite(void)
{
	Suite *s = suite_create("pipeline");
	TCase *core = tcase_create("core");
	TCase *closed = tcase_create("closed_forms");
	TCase *limits = tcase_create("limits");
	TCase *lower = tcase_create("lowering");

	tcase_add_loop_test(core, one_f_b_w_per_microbatch_stage_and_chunk, 0, N_SCHED);
	tcase_add_loop_test(core, no_operation_starts_before_its_inputs, 0, N_SCHED);
	tcase_add_loop_test(core, peak_activations_and_parameter_copies, 0, 4);
	tcase_add_loop_test(core, schedule_names_round_trip, 0, N_SCHED);
	tcase_add_loop_test(closed, closed_forms_hold_over_the_grid, 0, N_SCHED);
	tcase_add_test(closed, interleaved_fraction_is_p_minus_1_over_v_m);
	tcase_add_loop_test(closed, closed_forms_fail_outside_their_conditions, 0, 5);
	tcase_add_loop_test(limits, invalid_sizes_name_their_constraint, 0, 9);
	tcase_add_loop_test(limits, a_broken_order_is_reported_as_deadlock, 0, N_SCHED);
	tcase_add_loop_test(lower, lowered_messages_pair_up, 0, N_SCHED);
	tcase_add_test(lower, lowering_rejects_a_rank_outside_the_plan);
	suite_add_tcase(s, core);
	suite_add_tcase(s, closed);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, lower);
	return s;
}

MB_CHECK_MAIN(pipeline_suite)
