/*
 * a2a_collective.c - `moebench a2a --collective NAME -b MIN -e MAX -f FACTOR`: one
 * collective (alltoall, allreduce, allgather, reducescatter) over a communicator for
 * every size of the sweep, laid out like nccl-tests' *_perf programs:
 *
 *   mpirun -np 4 moebench a2a --collective allreduce -b 8 -e 1M -f 2
 *
 * Each size is one driver case with bench_case.comm set: the same repetitions on every
 * rank, started together, a repetition's time the slowest rank's. Inputs are small
 * integers derived from (rank, index), so every reduction is exact in every type
 * (bfloat16 included) and each result is compared element by element with the value it
 * must have: a wrong element is counted in #wrong, and a size with any is a failure.
 *
 * Sizes and bandwidths follow nccl-tests (src/common.cu setupArgs, the *GetCollByteCount
 * and *GetBw of src/all_reduce.cu, all_gather.cu, reduce_scatter.cu, alltoall.cu; the
 * factors in doc/PERFORMANCE.md): the sweep's size S gives count = S / sizeof(type)
 * elements; allreduce moves count elements per rank; the others split it over the n
 * ranks in per = count/n elements rounded down to whole 16 bytes: allgather sends per
 * and gathers per*n; reducescatter reduces per*n into per; alltoall sends per to each
 * peer. size(B) is the larger of the send and receive buffers, the
 * count column the operation's count argument, algbw = size(B) / time, and
 * busbw = algbw * 2(n-1)/n for allreduce, * (n-1)/n for the others.
 * NOTE: time is the median over repetitions (docs/ARCHITECTURE.md), where nccl-tests averages.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a.h"
#include "a2a_collective.h"
#include "bf16.h"
#include "cli.h"
#include "status.h"

#define MAX_STEPS 128

static const char *const coll_names[] = { "alltoall", "allreduce", "allgather",
					  "reducescatter" };

int a2a_coll_parse(const char *name, enum a2a_coll *out)
{
	for (int k = 0; k < 4; k++)
		if (name && !strcmp(name, coll_names[k])) {
			*out = (enum a2a_coll)k;
			return MB_OK;
		}
	return MB_ERR_ARG;
}

const char *a2a_coll_name(enum a2a_coll k)
{
	return (unsigned)k < 4 ? coll_names[k] : "?";
}

void a2a_coll_shape(enum a2a_coll k, size_t bytes, enum comm_dtype t, int n,
		    struct a2a_coll_shape *out)
{
	/* NOTE: nccl-tests rounds the per-rank count down to whole 16-byte chunks for the
	 * collectives that split the buffer over ranks ((count/n) & -(16/eltSize)), and
	 * leaves allreduce's count as it is. */
	size_t w = comm_dtype_size(t), count = bytes / w;
	size_t per = (count / (size_t)n) & ~(16 / w - 1);
	size_t all = per * (size_t)n;
	switch (k) {
	case A2A_ALLREDUCE:
		*out = (struct a2a_coll_shape){ count * w, count, count, count };
		break;
	case A2A_ALLGATHER:
		*out = (struct a2a_coll_shape){ all * w, per, per, all };
		break;
	case A2A_REDUCESCATTER:
		*out = (struct a2a_coll_shape){ all * w, per, all, per };
		break;
	case A2A_ALLTOALL:
		*out = (struct a2a_coll_shape){ all * w, per, all, all };
		break;
	}
}

double a2a_coll_busbw_factor(enum a2a_coll k, int n)
{
	if (n < 1)
		return 0.0;
	double f = (double)(n - 1) / (double)n;
	return k == A2A_ALLREDUCE ? 2.0 * f : f;
}

/* ---- one size: a driver case ---- */

struct coll_case {
	struct comm *c;
	enum a2a_coll kind;
	bool nonblocking;
	enum comm_dtype t;
	enum comm_redop op;
	struct a2a_coll_shape sh;
	int rank, n;
	void *d_send, *d_recv;            /* the communicator's memory */
	unsigned char *h_recv, *h_want;   /* host copies: result, expected */
};

/* reduces says whether the collective combines values (and so has a redop). */
static bool reduces(enum a2a_coll k)
{
	return k == A2A_ALLREDUCE || k == A2A_REDUCESCATTER;
}

/* value is element i of rank r's send buffer. For reductions it is in {-1, 0, 1}
 * ({0, 1, 2} for uint8), so any partial sum over up to 256 ranks is an integer bfloat16
 * holds exactly (8 significant bits), whatever order the library adds in; for data
 * movement it spans a wider range, so a block put in the wrong place shows. */
static long long value(const struct coll_case *cc, int r, size_t i)
{
	size_t ur = (size_t)r;
	if (reduces(cc->kind))
		return (long long)((ur * 7 + i * 5 + i / 7) % 3) - (cc->t == COMM_U8 ? 0 : 1);
	size_t m = cc->t == COMM_U8 ? 251 : cc->t == COMM_BF16 ? 256 : (size_t)1 << 24;
	return (long long)((ur * 1031 + i) % m);
}

/* store writes v as element i of a buffer of type t (uint8 sums wrap, as NCCL's and
 * MPI's do). */
static void store(enum comm_dtype t, void *buf, size_t i, long long v)
{
	switch (t) {
	case COMM_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
	case COMM_BF16: ((uint16_t *)buf)[i] = bf16_from_float((float)v); break;
	case COMM_F32: ((float *)buf)[i] = (float)v; break;
	case COMM_F64: ((double *)buf)[i] = (double)v; break;
	case COMM_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
	case COMM_I64: ((int64_t *)buf)[i] = (int64_t)v; break;
	}
}

/* load reads element i of a buffer of type t as a double. */
static double load(enum comm_dtype t, const void *buf, size_t i)
{
	switch (t) {
	case COMM_U8: return ((const uint8_t *)buf)[i];
	case COMM_BF16: return bf16_to_float(((const uint16_t *)buf)[i]);
	case COMM_F32: return ((const float *)buf)[i];
	case COMM_F64: return ((const double *)buf)[i];
	case COMM_I32: return ((const int32_t *)buf)[i];
	case COMM_I64: return (double)((const int64_t *)buf)[i];
	}
	return NAN;
}

/* reduced combines element i of every rank's send buffer with the case's redop. */
static long long reduced(const struct coll_case *cc, size_t i)
{
	long long acc = value(cc, 0, i);
	for (int r = 1; r < cc->n; r++) {
		long long v = value(cc, r, i);
		acc = cc->op == COMM_SUM ? acc + v : cc->op == COMM_MAX ? (v > acc ? v : acc)
									: (v < acc ? v : acc);
	}
	return acc;
}

/* expected is element j of this rank's receive buffer. */
static long long expected(const struct coll_case *cc, size_t j)
{
	size_t count = cc->sh.count, me = (size_t)cc->rank;
	switch (cc->kind) {
	case A2A_ALLREDUCE: return reduced(cc, j);
	case A2A_REDUCESCATTER: return reduced(cc, me * count + j);
	case A2A_ALLGATHER: return value(cc, (int)(j / count), j % count);
	case A2A_ALLTOALL: return value(cc, (int)(j / count), me * count + j % count);
	}
	return 0;
}

/* coll_call enqueues (NCCL) or performs (MPI) the collective once. */
static int coll_call(struct coll_case *cc)
{
	const struct a2a_coll_shape *s = &cc->sh;
	switch (cc->kind) {
	case A2A_ALLREDUCE:
		return comm_allreduce(cc->c, cc->d_send, cc->d_recv, s->count, cc->t, cc->op);
	case A2A_REDUCESCATTER:
		return comm_reduce_scatter(cc->c, cc->d_send, cc->d_recv, s->count, cc->t, cc->op);
	case A2A_ALLGATHER:
		return comm_allgather(cc->c, cc->d_send, cc->d_recv, s->count, cc->t);
	case A2A_ALLTOALL:
		return comm_alltoall(cc->c, cc->d_send, cc->d_recv, s->count, cc->t);
	}
	return MB_ERR_ARG;
}

/* coll_run runs the collective as the case times it: MPI's blocking call unless
 * nonblocking was asked. NOTE: only this call: the driver's barriers and statistics
 * stay nonblocking, so a rank that stops answering there is named. */
static int coll_run(void *state)
{
	struct coll_case *cc = state;
	comm_set_blocking(cc->c, !cc->nonblocking);
	int err = coll_call(cc);
	comm_set_blocking(cc->c, false);
	return err;
}

/* coll_poison fills the receive buffer with all-ones bytes (NaN for the float types,
 * values no check expects for the integer ones) so an element never written shows. */
static int coll_poison(void *state)
{
	struct coll_case *cc = state;
	size_t bytes = cc->sh.recv_elems * comm_dtype_size(cc->t);
	memset(cc->h_recv, 0xff, bytes);
	return comm_mem_put(cc->c, cc->d_recv, cc->h_recv, bytes);
}

/* coll_check compares every received element with its expected value, exactly. */
static int coll_check(void *state, struct bench_check *chk)
{
	struct coll_case *cc = state;
	size_t w = comm_dtype_size(cc->t), n = cc->sh.recv_elems;
	int err = comm_mem_get(cc->c, cc->h_recv, cc->d_recv, n * w);
	chk->max_err = 0.0;
	chk->tolerance = 0.0;
	chk->samples = (long)n;
	chk->mismatches = 0;
	chk->metric = "abs_err (exact)";
	for (size_t j = 0; j < n && !err; j++) {
		if (!memcmp(cc->h_recv + j * w, cc->h_want + j * w, w))
			continue;
		double d = fabs(load(cc->t, cc->h_recv, j) - load(cc->t, cc->h_want, j));
		chk->mismatches++;
		chk->max_err = fmax(chk->max_err, isfinite(d) ? d : DBL_MAX);
	}
	return err;
}

/* coll_destroy frees a case's buffers. */
static void coll_destroy(void *state)
{
	struct coll_case *cc = state;
	if (!cc)
		return;
	comm_mem_free(cc->c, cc->d_send);
	comm_mem_free(cc->c, cc->d_recv);
	free(cc->h_recv);
	free(cc->h_want);
	free(cc);
}

/* coll_fill allocates the buffers, writes the send buffer and the expected result. */
static int coll_fill(struct coll_case *cc)
{
	size_t w = comm_dtype_size(cc->t), ns = cc->sh.send_elems, nr = cc->sh.recv_elems;
	unsigned char *h_send = malloc(ns * w + 1);
	cc->h_recv = malloc(nr * w + 1);
	cc->h_want = malloc(nr * w + 1);
	int err = h_send && cc->h_recv && cc->h_want ? MB_OK : MB_ERR_NOMEM;
	if (!err)
		err = comm_mem_alloc(cc->c, ns * w, &cc->d_send);
	if (!err)
		err = comm_mem_alloc(cc->c, nr * w, &cc->d_recv);
	for (size_t i = 0; i < ns && !err; i++)
		store(cc->t, h_send, i, value(cc, cc->rank, i));
	for (size_t j = 0; j < nr && !err; j++)
		store(cc->t, cc->h_want, j, expected(cc, j));
	if (!err)
		err = comm_mem_put(cc->c, cc->d_send, h_send, ns * w);
	free(h_send);
	return err;
}

/* coll_params describes a case as nccl-tests' line header does. */
static cJSON *coll_params(const struct coll_case *cc)
{
	cJSON *p = cJSON_CreateObject();
	if (!p)
		return NULL;
	cJSON_AddStringToObject(p, "collective", a2a_coll_name(cc->kind));
	cJSON_AddNumberToObject(p, "size_bytes", (double)cc->sh.size_bytes);
	cJSON_AddNumberToObject(p, "count", (double)cc->sh.count);
	cJSON_AddStringToObject(p, "type", comm_dtype_name(cc->t));
	cJSON_AddStringToObject(p, "redop", reduces(cc->kind) ? comm_redop_name(cc->op) : "none");
	cJSON_AddNumberToObject(p, "root", -1);
	cJSON_AddNumberToObject(p, "ranks", cc->n);
	cJSON_AddNumberToObject(p, "busbw_factor", a2a_coll_busbw_factor(cc->kind, cc->n));
	if (!comm_on_device(cc->c))
		cJSON_AddStringToObject(p, "calls", cc->nonblocking ? "nonblocking" : "blocking");
	return p;
}

/* coll_case_init fills the driver case of one sweep step (state owned by the case). */
static int coll_case_init(struct comm *c, const struct a2a_coll_opts *o, enum a2a_coll k,
			  size_t bytes, struct bench_case *bc)
{
	struct coll_case *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return MB_ERR_NOMEM;
	*cc = (struct coll_case){ .c = c, .kind = k, .t = o->dtype, .op = o->op,
				  .nonblocking = o->nonblocking,
				  .rank = comm_rank(c), .n = comm_size(c) };
	a2a_coll_shape(k, bytes, o->dtype, cc->n, &cc->sh);
	int err = coll_fill(cc);
	memset(bc, 0, sizeof(*bc));
	bc->params = err ? NULL : coll_params(cc);
	if (!err && !bc->params)
		err = MB_ERR_NOMEM;
	if (err) {
		coll_destroy(cc);
		return err;
	}
	snprintf(bc->name, sizeof(bc->name), "%s/%s/%s/%zuB", a2a_coll_name(k),
		 comm_dtype_name(o->dtype), reduces(k) ? comm_redop_name(o->op) : "none",
		 cc->sh.size_bytes);
	bc->bytes = (double)cc->sh.size_bytes;
	bc->peak = NAN;
	bc->measured_peak = NAN;
	bc->state = cc;
	bc->poison = coll_poison;
	bc->run = coll_run;
	bc->check = coll_check;
	bc->destroy = coll_destroy;
	bc->comm = c;
	return MB_OK;
}

/* ---- the sweep and its summary ---- */

/* One summary row: the step's shape and what its record says. */
struct coll_row {
	struct a2a_coll_shape sh;
	double median_s;      /* NaN when the check failed */
	long wrong;
};

/* read_record takes the median time and #wrong of the record named name (the last
 * record of the document, which driver_run_case just appended), and adds nccl-tests'
 * algbw and busbw to its metrics, so the result file carries them per size too. */
static void read_record(cJSON *doc, const char *name, double busbw_factor,
			struct coll_row *row)
{
	cJSON *recs = cJSON_GetObjectItem(doc, "records");
	cJSON *rec = recs && cJSON_GetArraySize(recs) > 0 ?
		     cJSON_GetArrayItem(recs, cJSON_GetArraySize(recs) - 1) : NULL;
	const cJSON *nm = cJSON_GetObjectItem(rec, "name");
	row->median_s = NAN;
	row->wrong = -1;
	if (!cJSON_IsString(nm) || strcmp(nm->valuestring, name))
		return;
	const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), "time_s");
	const cJSON *med = cJSON_GetObjectItem(t, "median");
	const cJSON *bad = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "check"), "mismatches");
	if (cJSON_IsNumber(med))
		row->median_s = med->valuedouble;
	if (cJSON_IsNumber(bad))
		row->wrong = (long)bad->valuedouble;
	cJSON *metrics = cJSON_GetObjectItem(rec, "metrics");
	if (metrics && row->median_s > 0 && row->wrong == 0) {
		double algbw = (double)row->sh.size_bytes / row->median_s / 1e9;
		cJSON_AddNumberToObject(metrics, "algbw_GBps", algbw);
		cJSON_AddNumberToObject(metrics, "busbw_GBps", algbw * busbw_factor);
	}
}

/* row_line writes one nccl-tests line and adds its figures to rows. */
static void row_line(const struct coll_row *r, const struct a2a_coll_opts *o,
		     enum a2a_coll k, int n, cJSON *lines, cJSON *rows)
{
	char line[256];
	double algbw = (double)r->sh.size_bytes / r->median_s / 1e9;
	double busbw = algbw * a2a_coll_busbw_factor(k, n);
	const char *redop = reduces(k) ? comm_redop_name(o->op) : "none";
	if (isfinite(r->median_s))
		snprintf(line, sizeof(line), "%12zu %12zu %9s %6s %5d %11.2f %11.2f %11.2f %7ld",
			 r->sh.size_bytes, r->sh.count, comm_dtype_name(o->dtype), redop, -1,
			 1e6 * r->median_s, algbw, busbw, r->wrong);
	else
		snprintf(line, sizeof(line), "%12zu %12zu %9s %6s %5d %11s %11s %11s %7ld",
			 r->sh.size_bytes, r->sh.count, comm_dtype_name(o->dtype), redop, -1,
			 "n/a", "n/a", "n/a", r->wrong);
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	cJSON *f = cJSON_CreateObject();
	cJSON_AddNumberToObject(f, "size_bytes", (double)r->sh.size_bytes);
	cJSON_AddNumberToObject(f, "count", (double)r->sh.count);
	if (isfinite(r->median_s)) {
		cJSON_AddNumberToObject(f, "time_us", 1e6 * r->median_s);
		cJSON_AddNumberToObject(f, "algbw_GBps", algbw);
		cJSON_AddNumberToObject(f, "busbw_GBps", busbw);
	}
	cJSON_AddNumberToObject(f, "wrong", (double)r->wrong);
	cJSON_AddItemToArray(rows, f);
}

/* summarize adds doc["summary"]["a2a"]: nccl-tests' table, then the average busbw
 * over the sizes that passed (nccl-tests' "Avg bus bandwidth"). */
static int summarize(cJSON *doc, struct comm *c, const struct a2a_coll_opts *o,
		     enum a2a_coll k, const struct coll_row *rows, int n_rows)
{
	char lib[96], line[256];
	cJSON *summary = cJSON_GetObjectItem(doc, "summary");
	if (!summary)
		summary = cJSON_AddObjectToObject(doc, "summary");
	cJSON_DeleteItemFromObjectCaseSensitive(summary, "a2a");
	cJSON *s = cJSON_AddObjectToObject(summary, "a2a");
	cJSON *lines = cJSON_AddArrayToObject(s, "lines"), *figs = cJSON_AddArrayToObject(s, "rows");
	if (!s || !lines || !figs)
		return MB_ERR_NOMEM;
	comm_library(c, lib, sizeof(lib));
	snprintf(line, sizeof(line), "%s on %d ranks (%s%s); time: median of the slowest rank's "
		 "repetitions", a2a_coll_name(k), comm_size(c), lib, comm_on_device(c) ? "" :
		 o->nonblocking ? ", nonblocking calls polled" : ", blocking calls");
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	snprintf(line, sizeof(line), "%12s %12s %9s %6s %5s %11s %11s %11s %7s", "size(B)", "count",
		 "type", "redop", "root", "time(us)", "algbw(GB/s)", "busbw(GB/s)", "#wrong");
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	double sum = 0;
	int passed = 0;
	for (int i = 0; i < n_rows; i++) {
		row_line(&rows[i], o, k, comm_size(c), lines, figs);
		if (isfinite(rows[i].median_s) && rows[i].median_s > 0) {
			sum += (double)rows[i].sh.size_bytes / rows[i].median_s / 1e9 *
			       a2a_coll_busbw_factor(k, comm_size(c));
			passed++;
		}
	}
	snprintf(line, sizeof(line), "avg busbw (GB/s): %.3f over %d of %d sizes", passed ?
		 sum / passed : 0.0, passed, n_rows);
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	cJSON_AddNumberToObject(s, "avg_busbw_GBps", passed ? sum / passed : 0.0);
	return MB_OK;
}

/* next_size is the sweep's step after size: times the factor, at least one byte more. */
static size_t next_size(size_t size, double factor)
{
	double next = (double)size * factor;
	return next > (double)size + 1.0 ? (size_t)next : size + 1;
}

int a2a_collective_run(struct run_ctx *ctx, struct comm *c, const struct a2a_coll_opts *o)
{
	enum a2a_coll k;
	struct coll_row rows[MAX_STEPS];
	int n_rows = 0, err = MB_OK;
	if (a2a_coll_parse(o->collective, &k)) {
		cli_error_once("--collective alltoall|allreduce|allgather|reducescatter",
			  "unknown collective '%s'", o->collective ? o->collective : "");
		return MB_ERR_ARG;
	}
	if (!(o->factor > 1.0) || o->min_bytes > o->max_bytes) {
		cli_error_once("-f must exceed 1 and -b must not exceed -e", "bad size sweep: -b %zu "
			  "-e %zu -f %g", o->min_bytes, o->max_bytes, o->factor);
		return MB_ERR_ARG;
	}
	int steps = 0;
	for (size_t size = o->min_bytes; size <= o->max_bytes; size = next_size(size, o->factor))
		steps++;
	if (steps > MAX_STEPS) {
		cli_error_once("a larger -f, or a narrower -b .. -e", "size sweep of %d steps: at "
			       "most %d", steps, MAX_STEPS);
		return MB_ERR_ARG;
	}
	for (size_t size = o->min_bytes; size <= o->max_bytes && n_rows < MAX_STEPS && !err;
	     size = next_size(size, o->factor)) {
		struct bench_case bc;
		err = coll_case_init(c, o, k, size, &bc);
		if (!err)
			err = driver_run_case(ctx, &bc);
		if (!err) {
			a2a_coll_shape(k, size, o->dtype, comm_size(c), &rows[n_rows].sh);
			read_record(ctx->doc, bc.name, a2a_coll_busbw_factor(k, comm_size(c)),
				    &rows[n_rows++]);
		}
	}
	return err ? err : summarize(ctx->doc, c, o, k, rows, n_rows);
}
