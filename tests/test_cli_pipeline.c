/*
 * test_cli_pipeline.c - `moebench pipeline` as a user meets it: the JSON keys and the
 * closed forms reproduced, the side-by-side table, the timeline CSV and its figure, the
 * sweep CSV and its figure, `moebench run` carrying the pipeline case, every schedule
 * executed under mpirun on 2 ranks with its measured timeline respecting the
 * dependencies (MPI builds; the suite fails when mpirun is missing), and bad input
 * (a schedule's constraint, --execute without one rank per device) exiting 2 with one
 * "moebench: error:" line, a hint, and no file left behind.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "check_main.h"
#include "cli_harness.h"

#define RUN_FAST "--backend cpu --iters 2 --warmup 0 --min-time 0 --quiet"
#define PY "python3 -c '"

/* expect_has checks that the last output contains text. */
static void expect_has(const char *text)
{
	ck_assert_msg(strstr(out, text), "output lacks '%s':\n%s", text, out);
}

START_TEST(json_has_every_schedule_and_its_closed_form)
{
	ck_assert_int_eq(sh("$MB pipeline --json > p.json"), 0);
	ck_assert_int_eq(sh(PY "import json; d=json.load(open(\"p.json\")); s=d[\"schedules\"]; "
			    "k=[\"step_time\",\"bubble_time_max\",\"bubble_time_mean\",\"bubble_fraction\","
			    "\"closed_form_bubble\"]; print(len(s), all(all(x in e for x in k) for e in s), "
			    "all(abs(e[\"bubble_time_max\"]-e[\"closed_form_bubble\"])<1e-9 for e in s), "
			    "[e[\"param_copies\"] for e in s], [e[\"peak_activations\"] for e in s])'"), 0);
	ck_assert_str_eq(out, "6 True True [1, 1, 1, 1, 2, 1] [8, 4, 5.5, 4, 5, 4.5]\n");
	/* F = B = W = 1, PP = 4, m = 8: 1F1B 3 x 3 = 9, ZB-H1 3 x 1 = 3, DualPipe 1 x 2. */
	ck_assert_int_eq(sh(PY "import json; d=json.load(open(\"p.json\")); "
			    "print([e[\"closed_form_bubble\"] for e in d[\"schedules\"]])'"), 0);
	ck_assert_str_eq(out, "[9, 9, 4.5, 3, 2, 3]\n");
}
END_TEST

START_TEST(text_table_side_by_side)
{
	ck_assert_int_eq(sh("$MB pipeline --schedule all --pp 8 --microbatches 16 --fb 2"), 0);
	for (const char *const *n = (const char *const[]){ "gpipe ", "1f1b ", "interleaved ",
			"zb-h1 ", "dualpipe ", "dualpipev ", NULL }; *n; n++)
		expect_has(*n);
	expect_has("(PP/2-1)(F&B+B-3W) = 3: reproduced");
	expect_has("(PP-1)(F+B-2W) = 7: reproduced");
	ck_assert_int_eq(sh("$MB pipeline --schedule zb-h1 --pp 4 --w 2"), 0);
	expect_has("zb-h1 per device:");
	expect_has("exact only when w <= min(f, b)");
	ck_assert_int_eq(sh("$MB pipeline --help"), 0);
	expect_has("--b is the backward for inputs and --w the backward for weights");
}
END_TEST

START_TEST(timeline_csv_has_one_row_per_operation)
{
	ck_assert_int_eq(sh("$MB pipeline --schedule dualpipe --pp 8 --microbatches 16 --fb 2 "
			    "--timeline t.csv --json > p.json"), 0);
	ck_assert_int_eq(sh(PY "import json; d=json.load(open(\"p.json\"))[\"schedules\"][0]; "
			    "L=open(\"t.csv\").read().splitlines(); c=[l for l in L if not l.startswith(\"#\")]; "
			    "h=c[0].split(\",\"); r=[dict(zip(h,l.split(\",\"))) for l in c[1:]]; "
			    "print(L[0][0], h[:7], len(r)==d[\"operations\"], sorted(set(x[\"kind\"] for x in r)), "
			    "max(float(x[\"end\"]) for x in r)==d[\"step_time\"])'"), 0);
	ck_assert_str_eq(out, "# ['device', 'microbatch', 'microbatch2', 'chunk', 'kind', 'start', "
			 "'end'] True ['B', 'BW', 'F', 'FB', 'W'] True\n");
	ck_assert_int_eq(sh("grep -c '^# git_commit: ' t.csv"), 0);
}
END_TEST

START_TEST(figures_render)
{
	ck_assert_int_eq(sh("$MB pipeline --schedule 1f1b --pp 8 --microbatches 16 --timeline t.csv "
			    "> /dev/null && gnuplot -c $SRC/plots/pipeline.gp t.csv fig 'title' && "
			    "$MB pipeline --pp 4 --sweep 4,8,16 --out s.csv > /dev/null && "
			    "gnuplot -c $SRC/plots/pipeline_sweep.gp s.csv sweep"), 0);
	ck_assert_int_eq(sh(PY "f=lambda p: open(p,\"rb\").read(); print(f(\"fig.png\")[:4]==b\"\\x89PNG\", "
			    "len(f(\"fig.png\"))>20000, f(\"fig.pdf\")[:4]==b\"%%PDF\", f(\"sweep.png\")[:4]==b\"\\x89PNG\", "
			    "f(\"sweep.pdf\")[:4]==b\"%%PDF\")'"), 0);
	ck_assert_str_eq(out, "True True True True True\n");
}
END_TEST

START_TEST(sweep_csv_rows_and_rejected_sizes)
{
	ck_assert_int_eq(sh("$MB pipeline --pp 8 --sweep 8,16,32 --out s.csv"), 0);
	expect_has("dualpipe needs micro-batches >= 2 x PP (8 < 16)");
	ck_assert_int_eq(sh(PY "L=[l for l in open(\"s.csv\").read().splitlines() if not l.startswith(\"#\")]; "
			    "print(L[0]); print(len(L)-1, [l for l in L if l.startswith(\"dualpipe,8,8,\")])'"), 0);
	ck_assert_str_eq(out, "schedule,pp,microbatches,chunks,step_time,bubble_time_max,"
			 "bubble_fraction,closed_form_bubble,closed_form_fraction\n"
			 "18 ['dualpipe,8,8,,,,,,']\n");
}
END_TEST

START_TEST(run_includes_the_pipeline_case)
{
	ck_assert_int_eq(sh("$MB run " RUN_FAST " --out r.json"), 0);
	expect_has("pipeline/cpu/pipeline_sim/all_pp4_m8");
	ck_assert_int_eq(sh(PY "import json; d=json.load(open(\"r.json\")); "
			    "r=[x for x in d[\"records\"] if x[\"benchmark\"]==\"pipeline\"]; "
			    "print(len(r), r[0][\"check\"][\"status\"], r[0][\"check\"][\"max_err\"])'"), 0);
	ck_assert_str_eq(out, "1 pass 0\n");
}
END_TEST

START_TEST(bad_input_exits_2)
{
	expect_error("$MB pipeline --schedule dualpipe --pp 3", "even number of devices");
	expect_error("$MB pipeline --schedule dualpipe --pp 4 --microbatches 6", "micro-batches >= 2 x PP");
	expect_error("$MB pipeline --schedule interleaved --chunks 1", "chunks per device");
	expect_error("$MB pipeline --schedule interleaved --pp 4 --microbatches 6", "multiple of PP");
	expect_error("$MB pipeline --schedule nope", "unknown schedule 'nope'");
	expect_error("$MB pipeline --timeline t.csv", "--timeline draws one schedule");
	expect_error("$MB pipeline --schedule dualpipe --pp 4 --microbatches 6 --timeline t.csv",
		     "micro-batches >= 2 x PP");
	ck_assert_int_eq(sh("test -e t.csv"), 1); /* nothing written */
	expect_error("$MB pipeline --sweep 8,x", "--sweep: '8,x'");
	expect_error("$MB pipeline --out s.csv", "--out applies only with --sweep or --execute");
	expect_error("$MB pipeline --schedule 1f1b --simulate --execute", "exclude each other");
	expect_error("$MB pipeline --execute", "--execute runs one schedule");
	expect_error("$MB pipeline --f -1", "--f");
}
END_TEST

START_TEST(execute_needs_one_rank_per_device)
{
	/* Not under mpirun: one rank, four devices asked for. */
	expect_error("$MB pipeline --schedule 1f1b --pp 4 --execute",
		     MOEBENCH_HAVE_MPI ? "1 rank for --pp 4" : "needs MPI");
	expect_has(MOEBENCH_HAVE_MPI ? "hint: mpirun -np 4 moebench pipeline --execute" : "mpirun");
}
END_TEST

/* The dependency check of a measured timeline: every forward starts after the forward
 * of the previous stage ended, every backward after the next stage's backward, on the
 * devices' common clock (the executor's offset estimate: 20 us slack). */
static const char check_deps_py[] =
	"import csv,sys\n"
	"rows=[r for r in csv.DictReader(l for l in open(sys.argv[1]) if not l.startswith('#'))]\n"
	"I=lambda r,k: int(r[k]); T=lambda r,k: float(r[k])\n"
	"fe={}; be={}\n"
	"for r in rows:\n"
	"  k=r['kind']\n"
	"  if k in ('F','FB'): fe[(I(r,'microbatch'),I(r,'stage'))]=T(r,'end')\n"
	"  if k in ('B','BW'): be[(I(r,'microbatch'),I(r,'stage'))]=T(r,'end')\n"
	"  if k=='FB': be[(I(r,'microbatch2'),I(r,'stage2'))]=T(r,'end')\n"
	"bad=0\n"
	"for r in rows:\n"
	"  k=r['kind']; s=T(r,'start')\n"
	"  if k in ('F','FB'): bad+=s < fe.get((I(r,'microbatch'),I(r,'stage')-1),0)-20e-6\n"
	"  if k in ('B','BW'): bad+=s < be.get((I(r,'microbatch'),I(r,'stage')+1),0)-20e-6\n"
	"  if k=='FB': bad+=s < be.get((I(r,'microbatch2'),I(r,'stage2')+1),0)-20e-6\n"
	"print(len(rows), len(fe), len(be), bad)\n";

START_TEST(execute_every_schedule_under_mpirun)
{
	const char *names[] = { "gpipe", "1f1b", "interleaved", "zb-h1", "dualpipe", "dualpipev" };
	char want[64], path[128];
	int ops, stages;
	FILE *f;

	if (!MOEBENCH_HAVE_MPI)
		return;  /* the error path is execute_needs_one_rank_per_device's */
	ck_assert_msg(sh("command -v mpirun") == 0, "mpirun not on PATH: install openmpi-bin");
	ck_assert_int_eq(sh("$MB pipeline --schedule %s --pp 2 --microbatches 4 --json | " PY
			    "import json,sys; e=json.load(sys.stdin)[\"schedules\"][0]; "
			    "print(e[\"operations\"], e[\"stages\"])'", names[_i]), 0);
	ck_assert_int_eq(sscanf(out, "%d %d", &ops, &stages), 2);
	/* every op a row; every (micro-batch, stage) one forward and one backward end */
	snprintf(want, sizeof(want), "%d %d %d 0\n", ops, 4 * stages, 4 * stages);
	ck_assert_int_eq(sh("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
			    "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np 2 "
			    "$MB pipeline --schedule %s --pp 2 --microbatches 4 --execute "
			    "--steps 2 --timeline m.csv --json --quiet > m.json", names[_i]), 0);
	ck_assert_int_eq(sh(PY "import json; d=json.load(open(\"m.json\")); m=d[\"measured\"]; "
			    "print(m[\"step_time\"] > 0, len(m[\"per_device\"]), "
			    "d[\"simulated\"][\"schedules\"][0][\"step_time\"] > 0)'"), 0);
	ck_assert_str_eq(out, "True 2 True\n");
	snprintf(path, sizeof(path), "%s/chk.py", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(check_deps_py, f);
	fclose(f);
	ck_assert_int_eq(sh("python3 chk.py m.csv"), 0);
	ck_assert_str_eq(out, want);
}
END_TEST

static Suite *cli_pipeline_suite(void)
{
	Suite *s = suite_create("cli_pipeline");
	TCase *sim = tcase_create("simulate");
	TCase *files = tcase_create("files");
	TCase *bad = tcase_create("bad_input");

	tcase_add_checked_fixture(sim, cli_setup, cli_teardown);
	tcase_add_test(sim, json_has_every_schedule_and_its_closed_form);
	tcase_add_test(sim, text_table_side_by_side);
	tcase_add_test(sim, run_includes_the_pipeline_case);
	tcase_set_timeout(sim, 120);
	tcase_add_checked_fixture(files, cli_setup, cli_teardown);
	tcase_add_test(files, timeline_csv_has_one_row_per_operation);
	tcase_add_test(files, sweep_csv_rows_and_rejected_sizes);
	tcase_add_test(files, figures_render);
	tcase_add_checked_fixture(bad, cli_setup, cli_teardown);
	tcase_add_test(bad, bad_input_exits_2);
	tcase_add_test(bad, execute_needs_one_rank_per_device);
	tcase_add_loop_test(files, execute_every_schedule_under_mpirun, 0, 6);
	suite_add_tcase(s, sim);
	suite_add_tcase(s, files);
	suite_add_tcase(s, bad);
	return s;
}

MB_CHECK_MAIN(cli_pipeline_suite)
