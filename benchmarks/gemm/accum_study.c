/*
 * accum_study.c - the FP8 accumulation-precision study (see accum_study.h): error of
 * the emulated tensor-core accumulator against K, without and with promotion to FP32.
 *
 *   moebench gemm --accum-study                     # the table, 64x64 outputs per K
 *   gnuplot -e "csv='accum.csv'" plots/fp8_accum.gp  # the figure from its CSV
 */
#include "accum_study.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "context.h"
#include "result.h"
#include "session.h"
#include "rng.h"
#include "stats.h"
#include "status.h"
#include "timer.h"

/* One K of the study: [0] without promotion, [1] with promotion every N_C. */
struct study_row {
	int k;
	struct gemm_err err[2];
	double time_s[2];
};

void accum_study_defaults(struct accum_study_opts *o)
{
	*o = (struct accum_study_opts){ .mn = 64, .k_min = 256, .k_max = 16384, .seed = 1,
					.dist = ACCUM_DIST_UNIFORM, .format = FP8_E4M3,
					.acc = gemm_accum_default() };
}

const char *accum_study_dist_name(enum accum_study_dist d)
{
	switch (d) {
	case ACCUM_DIST_UNIFORM: return "uniform";
	case ACCUM_DIST_ABS_NORMAL: return "abs-normal";
	case ACCUM_DIST_NORMAL: return "normal";
	}
	return "?";
}

int accum_study_dist_parse(const char *name, enum accum_study_dist *d)
{
	for (int i = ACCUM_DIST_UNIFORM; i <= ACCUM_DIST_NORMAL; i++) {
		if (name && strcmp(name, accum_study_dist_name((enum accum_study_dist)i)) == 0) {
			*d = (enum accum_study_dist)i;
			return MB_OK;
		}
	}
	return MB_ERR_PARSE;
}

/* dist_label is the distribution as the table header shows it. */
static const char *dist_label(enum accum_study_dist d)
{
	return d == ACCUM_DIST_UNIFORM ? "uniform[0,1)" :
	       d == ACCUM_DIST_ABS_NORMAL ? "|N(0,1)|" : "N(0,1)";
}

#define ACCUM_HINT "moebench gemm --help shows the --accum-* options"

/* check_opts rejects what the study cannot run, with one error line naming the field. */
static int check_opts(const struct accum_study_opts *o)
{
	const struct gemm_accum *a = &o->acc;
	if (o->mn < 1 || o->k_min < 1 || o->k_max < o->k_min || o->k_max > (1 << 24))
		cli_error(ACCUM_HINT, "accumulation study: need 1 <= M=N, 1 <= k_min <= k_max <= 2^24 "
			  "(got M=N=%d, K %d..%d)", o->mn, o->k_min, o->k_max);
	else if (a->mantissa_bits < 1 || a->mantissa_bits > 23)
		cli_error(ACCUM_HINT, "accumulation study: mantissa bits must be 1..23 (got %d)",
			  a->mantissa_bits);
	else if (a->group < 1 || a->promote < 1 || a->promote % a->group != 0)
		cli_error(ACCUM_HINT, "accumulation study: the promotion interval (%d) must be a "
			  "positive multiple of the group (%d)", a->promote, a->group);
	else
		return MB_OK;
	return MB_ERR_ARG;
}

/* make_operand draws an mn x k matrix from the study's distribution (its own RNG
 * stream) and quantizes it per tensor into m. */
static int make_operand(const struct accum_study_opts *o, int k, uint64_t stream,
			struct fp8_matrix *m)
{
	size_t n = (size_t)o->mn * (size_t)k;
	float *x = malloc(n * sizeof(*x));
	struct mb_rng rng;
	int err = x ? fp8_matrix_alloc(m, o->mn, k, o->format, FP8_PER_TENSOR) : MB_ERR_NOMEM;
	if (err)
		goto out;
	mb_rng_seed(&rng, o->seed, stream);
	for (size_t i = 0; i < n; i++) {
		double v = o->dist == ACCUM_DIST_UNIFORM ? mb_rng_uniform(&rng, 0.0, 1.0) :
			   mb_rng_normal(&rng);
		x[i] = (float)(o->dist == ACCUM_DIST_ABS_NORMAL ? fabs(v) : v);
	}
	err = fp8_quantize(x, m, o->pow2_scales);
out:
	free(x);
	return err;
}

/* measure_k fills one row: reference once, then the accumulator without and with
 * promotion, each timed and compared. */
static int measure_k(const struct accum_study_opts *o, int k, struct study_row *row)
{
	struct fp8_matrix a = { 0 }, b = { 0 };
	size_t n = (size_t)o->mn * (size_t)o->mn;
	double *ref = malloc(n * sizeof(*ref)), *d = malloc(n * sizeof(*d));
	int err = ref && d ? MB_OK : MB_ERR_NOMEM;

	row->k = k;
	if (!err)
		err = make_operand(o, k, 2 * (uint64_t)k, &a);
	if (!err)
		err = make_operand(o, k, 2 * (uint64_t)k + 1, &b);
	if (!err)
		err = gemm_fp8_ref(&a, &b, ref);
	for (int mode = 0; !err && mode < 2; mode++) {
		struct gemm_accum acc = o->acc;
		acc.promote = mode ? o->acc.promote : 0;
		double t0 = timer_now();
		err = gemm_fp8_emulated(&a, &b, &acc, d);
		row->time_s[mode] = timer_now() - t0;
		if (!err)
			gemm_compare(d, 1, ref, n, &row->err[mode]);
	}
	fp8_matrix_free(&a);
	fp8_matrix_free(&b);
	free(ref);
	free(d);
	return err;
}

/* print_header prints the configuration lines and the column names. */
static void print_header(const struct accum_study_opts *o, FILE *out)
{
	char pmax[40], pmean[40];
	snprintf(pmax, sizeof(pmax), "promo%d_max_rel_err", o->acc.promote);
	snprintf(pmean, sizeof(pmean), "promo%d_mean_rel_err", o->acc.promote);
	fprintf(out, "FP8 accumulation study: %s, per-tensor scales%s, M=N=%d, inputs %s, "
		"seed %llu\n", fp8_format_name(o->format), o->pow2_scales ? " (powers of 2)" : "",
		o->mn, dist_label(o->dist), (unsigned long long)o->seed);
	fprintf(out, "accumulator: %s, %d mantissa bits, %d products per step; error vs "
		"gemm_fp8_ref (FP64)\n", gemm_accum_model_name(o->acc.model),
		o->acc.mantissa_bits, o->acc.group);
	fprintf(out, "%7s  %19s  %20s  %21s  %22s\n", "K", "nopromo_max_rel_err",
		"nopromo_mean_rel_err", pmax, pmean);
}

/* print_row prints one K of the table. */
static void print_row(const struct study_row *r, FILE *out)
{
	fprintf(out, "%7d  %19.3e  %20.3e  %21.3e  %22.3e\n", r->k, r->err[0].max_rel,
		r->err[0].mean_rel, r->err[1].max_rel, r->err[1].mean_rel);
	fflush(out);
}

/* print_summary prints how much each max_rel_err grew from the first K to the last. */
static void print_summary(const struct accum_study_opts *o, const struct study_row *rows,
			  int nrows, FILE *out)
{
	const struct study_row *f = &rows[0], *l = &rows[nrows - 1];
	fprintf(out, "K %d -> %d: no promotion max_rel_err x%.2f, promotion every %d x%.2f\n",
		f->k, l->k, l->err[0].max_rel / f->err[0].max_rel, o->acc.promote,
		l->err[1].max_rel / f->err[1].max_rel);
}

/* add_params stores a record's configuration; promote is 0 for no promotion. */
static int add_params(cJSON *rec, const struct accum_study_opts *o, int k, int promote)
{
	cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "params");
	bool ok = p && cJSON_AddNumberToObject(p, "m", o->mn) &&
		  cJSON_AddNumberToObject(p, "n", o->mn) && cJSON_AddNumberToObject(p, "k", k) &&
		  cJSON_AddStringToObject(p, "format", fp8_format_name(o->format)) &&
		  cJSON_AddStringToObject(p, "scaling", fp8_scaling_name(FP8_PER_TENSOR)) &&
		  cJSON_AddStringToObject(p, "dist", accum_study_dist_name(o->dist)) &&
		  cJSON_AddNumberToObject(p, "seed", (double)o->seed) &&
		  cJSON_AddStringToObject(p, "model", gemm_accum_model_name(o->acc.model)) &&
		  cJSON_AddNumberToObject(p, "mantissa_bits", o->acc.mantissa_bits) &&
		  cJSON_AddNumberToObject(p, "group", o->acc.group) &&
		  cJSON_AddNumberToObject(p, "promote", promote) &&
		  cJSON_AddBoolToObject(p, "pow2_scales", o->pow2_scales);
	return ok ? MB_OK : MB_ERR_NOMEM;
}

/* add_records appends the two records of one K to doc. */
static int add_records(cJSON *doc, const struct accum_study_opts *o, const struct study_row *r)
{
	int err = MB_OK;
	for (int mode = 0; !err && mode < 2; mode++) {
		const struct gemm_err *e = &r->err[mode];
		char name[96];
		struct stats st;
		snprintf(name, sizeof(name), mode ? "accum/%s/K%d/promote%d" : "accum/%s/K%d/no-promotion",
			 fp8_format_name(o->format), r->k, o->acc.promote);
		cJSON *rec = result_add_record(doc, "gemm", name, "cpu");
		err = rec ? add_params(rec, o, r->k, mode ? o->acc.promote : 0) : MB_ERR_NOMEM;
		if (!err)
			err = stats_compute(&r->time_s[mode], 1, &st);
		if (!err)
			err = result_set_time(rec, &st);
		if (!err)
			err = result_set_metric(rec, "max_rel_err", e->max_rel);
		if (!err)
			err = result_set_metric(rec, "mean_rel_err", e->mean_rel);
		if (!err)
			err = result_set_check(rec, e->nonfinite == 0, e->max_rel, NAN,
					       "max_rel_err vs gemm_fp8_ref (informational)",
					       (long)o->mn * o->mn, e->nonfinite);
	}
	return err;
}

/* csv_provenance writes the '#' lines: where the numbers come from and how to plot them. */
static void csv_provenance(const struct accum_study_opts *o, FILE *f)
{
	char date[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	fprintf(f, "# moebench FP8 accumulation study; plot: gnuplot -e \"csv='%s'\" "
		"plots/fp8_accum.gp\n", o->csv_path);
	fprintf(f, "# git_commit: %s\n# date: %s\n", moebench_git_commit, date);
	fprintf(f, "# device: cpu (emulated FP8 tensor-core accumulator)\n");
	fprintf(f, "# argv: %s\n", o->argv_line ? o->argv_line : "?");
	fprintf(f, "# config: format=%s scaling=tensor pow2_scales=%d m=%d n=%d dist=%s seed=%llu "
		"model=%s mantissa_bits=%d group=%d promote=%d\n", fp8_format_name(o->format),
		(int)o->pow2_scales, o->mn, o->mn, accum_study_dist_name(o->dist),
		(unsigned long long)o->seed, gemm_accum_model_name(o->acc.model),
		o->acc.mantissa_bits, o->acc.group, o->acc.promote);
}

/* write_csv writes the table to o->csv_path through result_write_atomic, so a failure
 * never leaves half a file. */
static int write_csv(const struct accum_study_opts *o, const struct study_row *rows, int nrows)
{
	char *text = NULL, why[512];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return cli_error(NULL, "accumulation study: out of memory for the CSV"), MB_ERR_NOMEM;
	csv_provenance(o, f);
	fprintf(f, "k,log2_k,nopromo_max_rel_err,nopromo_mean_rel_err,promo_max_rel_err,"
		"promo_mean_rel_err\n");
	for (int i = 0; i < nrows; i++)
		fprintf(f, "%d,%.6g,%.9g,%.9g,%.9g,%.9g\n", rows[i].k, log2((double)rows[i].k),
			rows[i].err[0].max_rel, rows[i].err[0].mean_rel, rows[i].err[1].max_rel,
			rows[i].err[1].mean_rel);
	if (fclose(f) != 0) {
		free(text);
		return cli_error(NULL, "accumulation study: out of memory for the CSV"), MB_ERR_NOMEM;
	}
	int err = result_write_atomic(o->csv_path, text, o->force, why, sizeof(why));
	if (err)
		session_output_error(err, "--accum-csv", why);
	free(text);
	return err;
}

int accum_study_run(const struct accum_study_opts *o, cJSON *doc, FILE *out)
{
	int nrows = 0, err = check_opts(o);
	bool reported = err != MB_OK;   /* check_opts and write_csv print their own line */
	struct study_row *rows = NULL;
	if (err)
		goto out;
	for (long k = o->k_min; k <= o->k_max; k *= 2)
		nrows++;
	rows = calloc((size_t)nrows, sizeof(*rows));
	if (!rows) {
		err = MB_ERR_NOMEM;
		goto out;
	}
	print_header(o, out);
	for (int i = 0; !err && i < nrows; i++) {
		err = measure_k(o, o->k_min << i, &rows[i]);
		if (!err)
			print_row(&rows[i], out);
		if (!err && doc)
			err = add_records(doc, o, &rows[i]);
	}
	if (!err)
		print_summary(o, rows, nrows, out);
	if (!err && fflush(out) != 0)
		err = MB_ERR_IO;
	if (!err && o->csv_path) {
		err = write_csv(o, rows, nrows);
		reported = err != MB_OK;
	}
out:
	if (err && !reported)
		cli_error(NULL, "accumulation study: %s", mb_status_str(err));
	free(rows);
	return err;
}
