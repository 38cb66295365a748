/*
 * a2a_kernels.c - the local permutation steps of `moebench a2a` timed alone, on the
 * run's own data (after its layout, dispatch and combine), each a rank-local driver
 * case on the run's backend: the CPU reference functions of kernels/moe/permute.c, or the
 * CUDA kernels of permute.cu on device buffers. One rank is enough:
 *
 *   moebench peak --backend cuda --out peak.json
 *   moebench a2a --backend cuda --measured-peak peak.json
 *
 *   gather   hop 0's send-buffer pack: dst[s] = x_rows[slot_item[s]]   (permute_gather)
 *   arrange  received rows -> expert-major, padded to 128 rows/expert (permute_arrange)
 *   reduce   combine's weighted un-permutation at the experts' rank: one BF16 row per
 *            received copy = sum over its experts of weight x expert output, FP32 fmaf
 *            in list order (permute_reduce with the copies' routing weights)
 *
 * NOTE: the source's own sum (combine's last step) carries no weights: they were
 * applied here, where each copy's experts are known. On one rank it adds one row per
 * token, so the weighted step is the one timed.
 *
 * Bytes come from the shapes (params "bytes_rule"); GB/s against the datasheet HBM
 * bandwidth (pct_peak, known GPUs) and the copy bandwidth of `moebench peak`
 * (pct_measured_peak, --measured-peak). Every case checks its whole output, poisoned
 * first, against a plain recomputation; on CUDA also bit for bit against the CPU
 * function on the same inputs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a_moe.h"
#include "bf16.h"
#include "hardware.h"
#include "result.h"
#include "status.h"

enum kernel { K_GATHER, K_ARRANGE, K_REDUCE };
static const char *kernel_names[] = { "gather", "arrange", "reduce" };

/* One case: host inputs taken from the run, the output, and the device copies. */
struct kcase {
	enum kernel kind;
	bool cuda;
	void *stream;
	struct permute_format fmt;
	const struct permute_plan *plan;     /* gather: hop 0 */
	const struct permute_experts *ex;    /* arrange, reduce */
	int hidden, topk;
	uint8_t *in;                /* host copy of the input rows */
	size_t in_bytes, out_bytes, scale_bytes, idx_bytes, w_bytes;
	const void *idx, *w;        /* host tables (the layout's) */
	uint8_t *out;               /* host output: CPU written here, CUDA downloaded */
	float *scale;               /* arrange FP8: expert-major scales */
	void *d_in, *d_idx, *d_w, *d_out, *d_scale;
};

/* ---- memory ---- */

/* dev_put allocates *d (bytes, never zero) and uploads host into it. */
static int dev_put(struct kcase *k, void **d, const void *host, size_t bytes)
{
	int err = permute_cuda_alloc(d, bytes + 16);
	if (!err && host)
		err = permute_cuda_copy(*d, host, bytes, 0, k->stream);
	return err;
}

/* kcase_upload gives a CUDA case its device inputs, tables and outputs. */
static int kcase_upload(struct kcase *k)
{
	int err = dev_put(k, &k->d_in, k->in, k->in_bytes);
	if (!err)
		err = dev_put(k, &k->d_idx, k->idx, k->idx_bytes);
	if (!err && k->w)
		err = dev_put(k, &k->d_w, k->w, k->w_bytes);
	if (!err)
		err = dev_put(k, &k->d_out, NULL, k->out_bytes);
	if (!err && k->scale_bytes)
		err = dev_put(k, &k->d_scale, NULL, k->scale_bytes);
	return err ? err : permute_cuda_sync(k->stream);
}

static void kcase_destroy(void *state)
{
	struct kcase *k = state;
	if (!k)
		return;
	void *d[] = { k->d_in, k->d_idx, k->d_w, k->d_out, k->d_scale };
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		permute_cuda_free(d[i]);
	free(k->in);
	free(k->out);
	free(k->scale);
	free(k);
}

/* ---- the case's callbacks ---- */

/* poison_out fills the output (and scales) with 0xff: no value a kernel writes. */
static int kcase_poison(void *state)
{
	struct kcase *k = state;
	memset(k->out, 0xff, k->out_bytes);
	if (k->scale_bytes)
		memset(k->scale, 0xff, k->scale_bytes);
	if (!k->cuda)
		return MB_OK;
	int err = permute_cuda_copy(k->d_out, k->out, k->out_bytes, 0, k->stream);
	if (!err && k->scale_bytes)
		err = permute_cuda_copy(k->d_scale, k->scale, k->scale_bytes, 0, k->stream);
	return err ? err : permute_cuda_sync(k->stream);
}

/* kcase_run_cpu runs the CPU reference function into out (and scale). */
static void kcase_run_cpu(const struct kcase *k, uint8_t *out, float *scale)
{
	if (k->kind == K_GATHER)
		permute_gather(k->in, k->plan->slot_item, k->plan->slots, k->fmt.row_bytes, out);
	else if (k->kind == K_ARRANGE)
		permute_arrange(k->in, &k->fmt, k->ex, out, scale);
	else
		permute_reduce((const uint16_t *)k->in, k->hidden, k->ex->copy_rows,
			       k->ex->copy_weights, k->topk, k->ex->copies, (uint16_t *)out);
}

static int kcase_run(void *state)
{
	struct kcase *k = state;
	if (!k->cuda) {
		kcase_run_cpu(k, k->out, k->scale);
		return MB_OK;
	}
	if (k->kind == K_GATHER)
		return permute_gather_cuda(k->d_in, k->d_idx, k->plan->slots, k->fmt.row_bytes,
					   k->d_out, k->stream);
	if (k->kind == K_ARRANGE)
		return permute_arrange_cuda(k->d_in, &k->fmt, k->d_idx, k->ex->rows_padded,
					    k->d_out, k->d_scale, k->stream);
	return permute_reduce_cuda(k->d_in, k->hidden, k->d_idx, k->d_w, k->topk,
				   k->ex->copies, k->d_out, k->stream);
}

/* ---- checks: plain recomputations, row by row ---- */

/* gather_row_ok: dst row s is bit-equal to the source row of its item. */
static bool gather_row_ok(const struct kcase *k, long s, const uint8_t *out)
{
	size_t rb = k->fmt.row_bytes;
	long item = k->plan->slot_item[s];
	return item >= 0 && item < k->plan->items &&
	       memcmp(out + (size_t)s * rb, k->in + (size_t)item * rb, rb) == 0;
}

/* arrange_row_ok: expert-major row r of expert e holds its copy's payload when it is
 * one of the expert's rows[e] first rows, else zeros (FP8: scales 1). */
static bool arrange_row_ok(const struct kcase *k, int e, long r, const uint8_t *out,
			   const float *scale)
{
	const struct permute_format *f = &k->fmt;
	const size_t h = (size_t)f->hidden, sc = (size_t)f->scales;
	const size_t eb = f->payload == PERMUTE_FP8 ? 1 : 2;
	const uint8_t *q = out + (size_t)r * h * eb;
	const float *s = scale + (size_t)r * sc;
	long c = k->ex->row_copy[r];
	if (r - k->ex->offsets[e] < k->ex->rows[e]) {
		if (c < 0 || c >= k->ex->copies)
			return false;
		const uint8_t *src = k->in + (size_t)c * f->row_bytes;
		return memcmp(s, src, 4 * sc) == 0 && memcmp(q, src + 4 * sc, h * eb) == 0;
	}
	bool ok = c == -1;
	for (size_t i = 0; i < h * eb; i++)
		ok = ok && q[i] == 0;
	for (size_t i = 0; i < sc; i++)
		ok = ok && s[i] == 1.0f;
	return ok;
}

/* reduce_row_ok: out row c equals, column by column, BF16(sum_j fmaf(w_j, y_j, acc))
 * over the copy's expert rows in list order. NOTE: fmaf, not a*b+c: the reference and
 * the kernel both fuse, and the check is bit for bit. */
static bool reduce_row_ok(const struct kcase *k, long c, const uint8_t *out)
{
	const uint16_t *y = (const uint16_t *)k->in, *o = (const uint16_t *)out;
	const int32_t *idx = k->ex->copy_rows + c * k->topk;
	const float *w = k->ex->copy_weights + c * k->topk;
	for (int col = 0; col < k->hidden; col++) {
		float acc = 0.0f;
		for (int j = 0; j < k->topk && idx[j] >= 0; j++)
			acc = fmaf(w[j], bf16_to_float(y[(size_t)idx[j] * (size_t)k->hidden + col]), acc);
		if (o[(size_t)c * (size_t)k->hidden + (size_t)col] != bf16_from_float(acc))
			return false;
	}
	return true;
}

/* count_wrong counts the output rows that fail the plain recomputation. */
static long count_wrong(const struct kcase *k, const uint8_t *out, const float *scale,
			long *rows)
{
	long bad = 0;
	if (k->kind == K_GATHER) {
		*rows = k->plan->slots;
		for (long s = 0; s < *rows; s++)
			bad += !gather_row_ok(k, s, out);
	} else if (k->kind == K_ARRANGE) {
		*rows = k->ex->rows_padded;
		for (int e = 0; e < k->ex->experts; e++)
			for (long r = k->ex->offsets[e]; r < k->ex->offsets[e + 1]; r++)
				bad += !arrange_row_ok(k, e, r, out, scale);
	} else {
		*rows = k->ex->copies;
		for (long c = 0; c < *rows; c++)
			bad += !reduce_row_ok(k, c, out);
	}
	return bad;
}

/* download brings a CUDA case's output to the host. */
static int download(struct kcase *k)
{
	int err = permute_cuda_copy(k->out, k->d_out, k->out_bytes, 1, k->stream);
	if (!err && k->scale_bytes)
		err = permute_cuda_copy(k->scale, k->d_scale, k->scale_bytes, 1, k->stream);
	return err ? err : permute_cuda_sync(k->stream);
}

/* differs_from_cpu counts the bytes where a CUDA output differs from the CPU function's
 * on the same inputs (0 on the CPU, where the output is the CPU function's). */
static int differs_from_cpu(const struct kcase *k, long *bytes)
{
	*bytes = 0;
	if (!k->cuda)
		return MB_OK;
	uint8_t *ref = malloc(k->out_bytes + 16);
	float *rs = malloc(k->scale_bytes + 16);
	if (!ref || !rs) {
		free(ref);
		free(rs);
		return MB_ERR_NOMEM;
	}
	kcase_run_cpu(k, ref, rs);
	for (size_t i = 0; i < k->out_bytes; i++)
		*bytes += ref[i] != k->out[i];
	if (k->scale_bytes)
		*bytes += memcmp(rs, k->scale, k->scale_bytes) != 0;
	free(ref);
	free(rs);
	return MB_OK;
}

static int kcase_check(void *state, struct bench_check *chk)
{
	struct kcase *k = state;
	long rows = 0, vs_cpu = 0;
	int err = k->cuda ? download(k) : MB_OK;
	*chk = (struct bench_check){ 0, 0, 0, 0, "output rows differing from a plain recomputation"
				     " (CUDA: + bytes differing from the CPU function)" };
	if (!err)
		chk->mismatches = count_wrong(k, k->out, k->scale, &rows);
	if (!err)
		err = differs_from_cpu(k, &vs_cpu);
	chk->samples = rows;
	chk->mismatches += vs_cpu;
	return err;
}

/* ---- building the cases from the run ---- */

/* expert_rows counts the real (copy, expert) rows of the expert-major layout. */
static long expert_rows(const struct permute_experts *x)
{
	long n = 0;
	for (int e = 0; e < x->experts; e++)
		n += x->rows[e];
	return n;
}

/* kcase_shape sets the case's tables and sizes from the layout; returns its bytes per
 * repetition and the rule that counts them. */
static double kcase_shape(struct kcase *k, struct a2a_moe *m, const char **rule)
{
	const size_t rb = k->fmt.row_bytes, h2 = 2 * (size_t)k->hidden, K = (size_t)k->topk;
	const double L = (double)k->fmt.logical_bytes;
	if (k->kind == K_GATHER) {
		size_t slots = (size_t)k->plan->slots;
		k->in_bytes = (size_t)m->tokens * rb, k->out_bytes = slots * rb;
		k->idx = k->plan->slot_item, k->idx_bytes = slots * 4;
		*rule = "slots x row_bytes read + slots x row_bytes written + slots x 4 (slot index table)";
		return 2.0 * (double)slots * (double)rb + 4.0 * (double)slots;
	}
	size_t padded = (size_t)k->ex->rows_padded, copies = (size_t)k->ex->copies;
	double real = (double)expert_rows(k->ex);
	if (k->kind == K_ARRANGE) {
		k->in_bytes = copies * rb;
		k->out_bytes = padded * (size_t)k->hidden * (k->fmt.payload == PERMUTE_FP8 ? 1 : 2);
		k->scale_bytes = padded * (size_t)k->fmt.scales * 4;
		k->idx = k->ex->row_copy, k->idx_bytes = padded * 4;
		*rule = "real expert rows x payload read + padded rows x payload written (padding "
			"included) + padded rows x 4 (row_copy table); payload = hidden x element "
			"bytes + FP8 scales x 4";
		return real * L + (double)padded * L + 4.0 * (double)padded;
	}
	k->in_bytes = padded * h2, k->out_bytes = copies * h2;
	k->idx = k->ex->copy_rows, k->w = k->ex->copy_weights;
	k->idx_bytes = k->w_bytes = copies * K * 4;
	*rule = "real expert rows x hidden x 2 read (BF16 expert outputs) + copies x hidden x 2 "
		"written (BF16) + copies x topk x 8 (row index and FP32 weight tables)";
	return real * (double)h2 + (double)copies * (double)h2 + 8.0 * (double)(copies * K);
}

/* kcase_input downloads the case's input rows from the run (communicator memory). */
static int kcase_input(struct kcase *k, struct a2a_moe *m)
{
	long copies;
	const void *src = k->kind == K_GATHER ? m->x_rows :
			  k->kind == K_ARRANGE ? (const void *)ep_received_rows(m->ep, &copies) :
			  (const void *)m->y;
	k->in = malloc(k->in_bytes + 16);
	k->out = malloc(k->out_bytes + 16);
	k->scale = malloc(k->scale_bytes + 16);   /* NOTE: never NULL, even for BF16 */
	if (!k->in || !k->out || !k->scale)
		return MB_ERR_NOMEM;
	int err = ep_download(m->ep, k->in, src, k->in_bytes);
	return !err && k->cuda ? kcase_upload(k) : err;
}

/* kcase_params describes the case for its record. */
static cJSON *kcase_params(const struct kcase *k, const struct a2a_moe *m, double bytes,
			   const char *rule)
{
	cJSON *p = cJSON_CreateObject();
	if (!p)
		return NULL;
	long rows = k->kind == K_GATHER ? k->plan->slots :
		    k->kind == K_ARRANGE ? k->ex->rows_padded : k->ex->copies;
	cJSON_AddStringToObject(p, "phase", "kernel");
	cJSON_AddStringToObject(p, "kernel", kernel_names[k->kind]);
	cJSON_AddStringToObject(p, "impl", k->cuda ? "cuda" : "cpu reference");
	cJSON_AddStringToObject(p, "payload", permute_payload_name(k->fmt.payload));
	cJSON_AddNumberToObject(p, "tokens_per_rank", (double)m->tokens);
	cJSON_AddNumberToObject(p, "hidden", m->hidden);
	cJSON_AddNumberToObject(p, "experts", m->experts);
	cJSON_AddNumberToObject(p, "topk", m->topk);
	cJSON_AddNumberToObject(p, "ep", m->size);
	cJSON_AddNumberToObject(p, "row_bytes", (double)k->fmt.row_bytes);
	cJSON_AddNumberToObject(p, "logical_row_bytes", (double)k->fmt.logical_bytes);
	cJSON_AddNumberToObject(p, "output_rows", (double)rows);
	cJSON_AddNumberToObject(p, "expert_rows", k->ex ? (double)expert_rows(k->ex) : 0);
	cJSON_AddNumberToObject(p, "bytes_per_rep", bytes);
	cJSON_AddStringToObject(p, "bytes_rule", rule);
	return p;
}

/* kcase_make builds kernel kind's state on the run's data. */
static int kcase_make(struct run_ctx *ctx, struct a2a_moe *m, enum kernel kind,
		      struct bench_case *c)
{
	struct kcase *k = calloc(1, sizeof(*k));
	const char *rule;
	if (!k)
		return MB_ERR_NOMEM;
	*k = (struct kcase){ .kind = kind, .cuda = ctx->backend->kind == BACKEND_CUDA,
			     .stream = ctx->backend->stream, .fmt = *ep_format(m->ep),
			     .plan = ep_plan(m->ep, 0),
			     .ex = kind == K_GATHER ? NULL : ep_experts(m->ep),
			     .hidden = m->hidden, .topk = m->topk };
	if (kind == K_REDUCE)   /* combine is BF16 whatever the dispatch payload */
		permute_format_of(m->hidden, PERMUTE_BF16, &k->fmt);
	c->state = k;
	c->destroy = kcase_destroy;
	c->bytes = kcase_shape(k, m, &rule);
	c->params = kcase_params(k, m, c->bytes, rule);
	int err = c->params ? kcase_input(k, m) : MB_ERR_NOMEM;
	if (err) {
		cJSON_Delete(c->params);
		kcase_destroy(k);
	}
	return err;
}

/* last_gbps returns the GB/s of the document's last record (NaN without one: a
 * failed check). */
static double last_gbps(cJSON *doc)
{
	cJSON *recs = cJSON_GetObjectItem(doc, "records");
	int n = cJSON_GetArraySize(recs);
	const cJSON *g = n > 0 ? cJSON_GetObjectItem(cJSON_GetObjectItem(
		cJSON_GetArrayItem(recs, n - 1), "metrics"), "gbps") : NULL;
	return cJSON_IsNumber(g) ? g->valuedouble : NAN;
}

/* run_kernel runs one kernel as a rank-local driver case (no comm); *gbps its rate. */
static int run_kernel(struct run_ctx *ctx, struct a2a_moe *m, enum kernel kind,
		      double measured, double *gbps)
{
	const struct hardware_spec *hw = ctx->backend->kind == BACKEND_CUDA ?
					 hardware_match(ctx->backend->dev.name) : NULL;
	struct bench_case c = { .peak = hw ? 1000.0 * hw->hbm_tbps : NAN,
				.peak_source = hw ? hw->source : NULL, .measured_peak = measured,
				.poison = kcase_poison, .run = kcase_run, .check = kcase_check };
	snprintf(c.name, sizeof(c.name), "moe/kernel/%s/%s/T%ld_H%d_E%d_K%d_ep%d%s",
		 kernel_names[kind], permute_payload_name(kind == K_REDUCE ? PERMUTE_BF16 : m->payload),
		 m->tokens, m->hidden, m->experts, m->topk, m->size, ep_two_hop(m->ep) ? "_2hop" : "");
	int err = kcase_make(ctx, m, kind, &c);
	if (!err)
		err = driver_run_case(ctx, &c);
	*gbps = err ? NAN : last_gbps(ctx->doc);
	return err;
}

/* fmt_gbps writes a rate, or n/a. */
static void fmt_gbps(char *buf, size_t len, double v)
{
	if (isfinite(v))
		snprintf(buf, len, "%.2f GB/s", v);
	else
		snprintf(buf, len, "n/a");
}

/* add_line appends the kernels' line (and figures) to the a2a_moe summary. */
static int add_line(struct run_ctx *ctx, const double *gbps, double measured)
{
	char line[256], g[3][32], w[64] = "";
	cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(ctx->doc, "summary"), "a2a_moe");
	cJSON *lines = cJSON_GetObjectItem(s, "lines");
	cJSON *k = s ? cJSON_AddObjectToObject(s, "kernels_GBps") : NULL;
	if (!lines || !k)
		return MB_ERR_NOMEM;
	for (int i = 0; i < 3; i++) {
		fmt_gbps(g[i], sizeof(g[i]), gbps[i]);
		result_set_metric(k, kernel_names[i], gbps[i]);
	}
	if (isfinite(measured) && measured > 0) {
		snprintf(w, sizeof(w), " (measured copy %.2f GB/s)", measured);
		cJSON_AddNumberToObject(k, "measured_copy", measured);
	}
	snprintf(line, sizeof(line), "a2a moe kernels: gather %s | arrange %s | reduce %s%s",
		 g[0], g[1], g[2], w);
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	return MB_OK;
}

int a2a_kernels_run(struct run_ctx *ctx, struct a2a_moe *m, double measured_copy_gbps)
{
	double gbps[3] = { NAN, NAN, NAN };
	int err = MB_OK;
	for (int kind = K_GATHER; kind <= K_REDUCE && !err; kind++)
		err = run_kernel(ctx, m, (enum kernel)kind, measured_copy_gbps, &gbps[kind]);
	return err ? err : add_line(ctx, gbps, measured_copy_gbps);
}

/* ---- --measured-peak ---- */

/* copy_gbps finds the copy record of a `moebench peak` document: d2d_copy (CUDA) or
 * stream_copy (CPU); NaN when there is none. */
static double copy_gbps(const cJSON *doc, const char *op)
{
	const cJSON *rec;
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(doc, "records")) {
		const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "params"), "op");
		const cJSON *g = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), "gbps");
		if (cJSON_IsString(o) && strcmp(o->valuestring, op) == 0 && cJSON_IsNumber(g) &&
		    g->valuedouble > 0)
			return g->valuedouble;
	}
	return NAN;
}

int a2a_measured_copy(struct comm *world, const char *path, bool cuda, double *gbps)
{
	const char *op = cuda ? "d2d_copy" : "stream_copy";
	char why[512] = "";
	double v[2] = { 0, 0 };   /* the bandwidth, a failure */
	*gbps = NAN;
	if (!path)
		return MB_OK;
	/* NOTE: rank 0 alone reads the file (the others may not see it) and shares it. */
	if (comm_rank(world) == 0) {
		cJSON *doc = NULL;
		if (result_read(path, &doc, why, sizeof(why)) == MB_OK) {
			v[0] = copy_gbps(doc, op);
			if (!(v[0] > 0))
				snprintf(why, sizeof(why), "%s: no %s record with gbps", path, op);
		}
		v[1] = v[0] > 0 ? 0 : 1, v[0] = v[0] > 0 ? v[0] : 0;
		cJSON_Delete(doc);
	}
	int err = comm_host_allreduce_f64(world, v, 2, COMM_SUM);
	if (err)
		return err;
	if (v[1] > 0) {
		cli_error_once(cuda ? "pass a file of `moebench peak --backend cuda`" :
				      "pass a file of `moebench peak --backend cpu`",
			       "a2a: --measured-peak: %s", why);
		return MB_ERR_ARG;
	}
	*gbps = v[0];
	return MB_OK;
}
