/*
 * gemm.c - `moebench gemm`: the GEMMs of a model layer (or explicit shapes) in BF16,
 * FP8 per-tensor and FP8 fine-grained (1x128 activations, 128x128 weights), by the CPU,
 * cuBLASLt and our own kernel v1, each checked against FP64 references with two
 * errors (arithmetic, quantization), plus a per-layer summary of BF16 vs FP8 time.
 *
 *   moebench gemm                                   # CPU: v3-tiny, CUDA: deepseek-v3
 *   moebench gemm --shapes deepseek-v3:tokens=4096 --dtype bf16,fp8-block
 *   moebench gemm --shapes 4096x7168x2048,128x4096x7168 --impl cublaslt,v1
 *   moebench gemm --measured-peak results/runs/h100-sxm/peak.json
 *
 * Shapes: D[M,N] = A[M,K] B[N,K]^T; a preset's layer lists come from the accounting
 * (model_gemm_shapes): forward, dgrad and wgrad of every weight GEMM, routed experts at
 * their average tokens per expert (count = experts).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "gemm_bench.h"
#include "model.h"
#include "result.h"
#include "session.h"
#include "status.h"

#define MAX_SHAPES 128

static struct {
	const char *shapes, *dtypes, *impls, *passes, *fast, *layers, *peak_file;
	const char *accum_csv, *accum_dist;
	bool accum_study;
	int samples, pad, grouped;
} opt;

static const struct cli_opt gemm_opts[] = {
	{ "shapes", CLI_STRING, &opt.shapes, "auto", "PRESET[:tokens=N] or MxNxK[,MxNxK...] (auto: v3-tiny:tokens=256 on the CPU, deepseek-v3:tokens=4096 on CUDA)", 0, -1, NULL },
	{ "dtype", CLI_STRING, &opt.dtypes, "bf16,fp8-tensor,fp8-block", "GEMM kinds, comma-separated", 0, -1, NULL },
	{ "impl", CLI_STRING, &opt.impls, "auto", "cpu,cublaslt,v1 (auto: cpu on the CPU, cublaslt,v1 on CUDA)", 0, -1, NULL },
	{ "pass", CLI_STRING, &opt.passes, "fwd,dgrad,wgrad", "passes of a preset's layer GEMMs", 0, -1, NULL },
	{ "layer", CLI_STRING, &opt.layers, "moe,dense", "which layers of a preset", 0, -1, NULL },
	{ "fast-accum", CLI_CHOICE, &opt.fast, "off", "FP8 fast accumulation (no promotion)", 0, -1, "off|on|both" },
	{ "samples", CLI_INT, &opt.samples, "1024", "output elements checked against FP64", 2, 1 << 20, NULL },
	{ "grouped", CLI_INT, &opt.grouped, "0", "also run the routed experts' fwd/dgrad as grouped FP8-block GEMMs over G local experts (0: off)", 0, 4096, NULL },
	{ "pad", CLI_INT, &opt.pad, "0", "zero-pad every shape to multiples of N (0: only FP8 shapes an implementation rejects, to 128)", 0, 4096, NULL },
	{ "measured-peak", CLI_STRING, &opt.peak_file, NULL, "a `moebench peak` result file: adds pct_measured_peak", 0, -1, NULL },
	{ "accum-study", CLI_FLAG, &opt.accum_study, NULL, "instead of shapes: FP8 accumulation error vs K (CPU emulation; on CUDA also cuBLASLt and v1)", 0, -1, NULL },
	{ "accum-csv", CLI_STRING, &opt.accum_csv, NULL, "with --accum-study: write the emulation table as CSV for plots/fp8_accum.gp", 0, -1, NULL },
	{ "accum-dist", CLI_STRING, &opt.accum_dist, "uniform", "with --accum-study: inputs uniform, abs-normal or normal", 0, -1, NULL },
	CLI_END
};

static const struct cli_opt *gemm_options(void)
{
	return gemm_opts;
}

/* in_list tells whether word is one of a comma-separated list. */
static bool in_list(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

/* check_list verifies every word of list is one of allowed ("a|b|c"). */
static int check_list(const char *opt_name, const char *list, const char *allowed)
{
	char word[64], hint[160];
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		snprintf(word, sizeof(word), "%.*s", (int)(len < 63 ? len : 63), p);
		if (len == 0 || len > 63 || !cli_choice_ok(allowed, word)) {
			snprintf(hint, sizeof(hint), "--%s takes a comma-separated list of %s", opt_name, allowed);
			return cli_error(hint, "--%s: unknown value '%s'", opt_name, word);
		}
		p += len + (p[len] == ',');
	}
	return 0;
}

/* parse_explicit reads "MxNxK[,MxNxK...]" into shapes. Returns the count, or -1. */
static int parse_explicit(const char *spec, struct gemm_shape *out, int cap)
{
	int n = 0;
	for (const char *p = spec; *p && n < cap;) {
		long m, nn, k;
		int used = 0;
		if (sscanf(p, "%ldx%ldx%ld%n", &m, &nn, &k, &used) != 3 || m < 1 || nn < 1 || k < 1 ||
		    m > 1 << 20 || nn > 1 << 20 || k > 1 << 20 || (p[used] && p[used] != ','))
			return -1;
		struct gemm_shape *s = &out[n++];
		memset(s, 0, sizeof(*s));
		snprintf(s->label, sizeof(s->label), "M%ld_N%ld_K%ld", m, nn, k);
		snprintf(s->layer, sizeof(s->layer), "explicit");
		s->m = (int)m, s->n = (int)nn, s->k = (int)k, s->count = 1;
		p += used + (p[used] == ',');
	}
	return n;
}

/* add_layer appends a preset layer's GEMMs of the selected passes. */
static int add_layer(const struct model_config *cfg, bool moe, int64_t tokens,
		     struct gemm_shape *out, int n, int cap)
{
	struct model_gemm g[MODEL_GEMM_MAX];
	size_t count = 0;
	if (model_gemm_shapes(cfg, moe, tokens, g, MODEL_GEMM_MAX, &count))
		return -1;
	for (size_t i = 0; i < count && n < cap; i++) {
		const char *pass = model_pass_name(g[i].pass);
		if (!in_list(opt.passes, pass))
			continue;
		struct gemm_shape *s = &out[n++];
		memset(s, 0, sizeof(*s));
		snprintf(s->label, sizeof(s->label), "%s/%s", g[i].name, pass);
		snprintf(s->layer, sizeof(s->layer), "%s", moe ? "moe" : "dense");
		snprintf(s->pass, sizeof(s->pass), "%s", pass);
		s->m = (int)g[i].m, s->n = (int)g[i].n, s->k = (int)g[i].k;
		s->count = g[i].count;
	}
	return n;
}

/* parse_preset reads "NAME[:tokens=N]" into a preset and token count. */
static int parse_preset(const char *spec, const struct model_config **cfg, int64_t *tokens)
{
	char name[64], hint[600], known[480];
	size_t len = strcspn(spec, ":");
	snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63), spec);
	*cfg = model_preset_find(name);
	*tokens = 4096;
	if (!*cfg) {
		model_preset_names(known, sizeof(known));
		snprintf(hint, sizeof(hint), "known presets: %s; or explicit shapes like 4096x7168x2048", known);
		return cli_error(hint, "--shapes: unknown preset '%s'", name);
	}
	if (spec[len] == '\0')
		return 0;
	long t;
	int used = 0;
	if (sscanf(spec + len, ":tokens=%ld%n", &t, &used) != 1 || spec[len + (size_t)used] ||
	    t < 1 || t > (1L << 24))
		return cli_error("example: --shapes deepseek-v3:tokens=4096", "--shapes: bad suffix '%s'",
				 spec + len);
	*tokens = t;
	return 0;
}

/* make_shapes turns the --shapes spec into a list; returns the count or -1 (reported). */
static int make_shapes(const char *spec, struct gemm_shape *out, int cap)
{
	const struct model_config *cfg;
	int64_t tokens;
	if (spec[0] >= '0' && spec[0] <= '9') {
		int n = parse_explicit(spec, out, cap);
		if (n < 1)
			cli_error("explicit shapes are MxNxK[,MxNxK...], each in 1..1048576", "--shapes: cannot read '%s'", spec);
		return n < 1 ? -1 : n;
	}
	if (parse_preset(spec, &cfg, &tokens))
		return -1;
	int n = 0;
	if (in_list(opt.layers, "moe") && cfg->routed_experts > 0)
		n = add_layer(cfg, true, tokens, out, n, cap);
	if (n >= 0 && in_list(opt.layers, "dense") && (cfg->dense_layers > 0 || cfg->routed_experts == 0))
		n = add_layer(cfg, false, tokens, out, n, cap);
	if (n < 1)
		cli_error("--layer moe,dense and --pass fwd,dgrad,wgrad choose among a preset's GEMMs",
			  "--shapes %s: no GEMM selected", spec);
	return n < 1 ? -1 : n;
}

/* measured_peak returns the TFLOP/s of the peak record matching the case's math in a
 * `moebench peak` result (NaN when absent). */
static double measured_peak(const cJSON *peak_doc, bool cuda, enum gemm_kind kind)
{
	const char *op = !cuda ? "sgemm" : kind == GEMM_BF16 ? "bf16_gemm" : "fp8_tensor_gemm";
	const cJSON *rec;
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(peak_doc, "records")) {
		const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "params"), "op");
		const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), "tflops");
		if (cJSON_IsString(o) && strcmp(o->valuestring, op) == 0 && cJSON_IsNumber(t))
			return t->valuedouble;
	}
	return NAN;
}

/* The selection a run works through, resolved against the backend. */
struct gemm_plan {
	const char *spec, *impls;
	bool cuda;
	cJSON *peak_doc;
	struct gemm_shape shapes[MAX_SHAPES];
	int n_shapes;
};

static char summary_spec[128];

/* is_grouped_shape tells whether a shape is a routed expert's fwd or dgrad GEMM. */
static bool is_grouped_shape(const struct gemm_shape *s)
{
	return !strncmp(s->label, "moe.expert.", 11) && strcmp(s->pass, "wgrad") != 0;
}

/* check_grouped verifies --grouped G against the shapes: routed experts present, and
 * G dividing their number. Returns 0 or 2 (reported). */
static int check_grouped(const struct gemm_plan *p)
{
	for (int i = 0; i < p->n_shapes; i++) {
		const struct gemm_shape *s = &p->shapes[i];
		if (!is_grouped_shape(s))
			continue;
		if (s->count % opt.grouped)
			return cli_error("G is the experts per GPU: a divisor of the routed experts",
					 "--grouped %d does not divide the %lld routed experts", opt.grouped,
					 (long long)s->count);
		return 0;
	}
	return cli_error("use a preset with routed experts, e.g. --shapes deepseek-v3:tokens=4096 --layer moe",
			 "--grouped: no routed-expert GEMM among the shapes");
}

/* resolve checks the options against the backend; returns 0 or 2 (reported). */
static int resolve(struct run_ctx *ctx, struct gemm_plan *p)
{
	char why[512];
	p->cuda = ctx->backend->kind == BACKEND_CUDA;
	p->spec = strcmp(opt.shapes, "auto") ? opt.shapes :
		  ctx->suite ? (p->cuda ? "v3-small:tokens=1024" : "v3-tiny:tokens=128") :
		  (p->cuda ? "deepseek-v3:tokens=4096" : "v3-tiny:tokens=256");
	if (ctx->suite && !p->cuda)
		opt.passes = "fwd";
	p->impls = strcmp(opt.impls, "auto") ? opt.impls : p->cuda ? "cublaslt,v1" : "cpu";
	if (check_list("dtype", opt.dtypes, "bf16|fp8-tensor|fp8-block") ||
	    check_list("impl", p->impls, "cpu|cublaslt|v1") ||
	    check_list("pass", opt.passes, "fwd|dgrad|wgrad") ||
	    check_list("layer", opt.layers, "moe|dense"))
		return 2;
	if (!p->cuda && (in_list(p->impls, "cublaslt") || in_list(p->impls, "v1")))
		return cli_error("use --impl cpu, or --backend cuda on a machine with a GPU",
				 "--impl %s needs the CUDA backend", p->impls);
	p->n_shapes = make_shapes(p->spec, p->shapes, MAX_SHAPES);
	if (p->n_shapes < 0)
		return 2;
	if (opt.grouped > 0 && check_grouped(p))
		return 2;
	if (opt.peak_file && result_read(opt.peak_file, &p->peak_doc, why, sizeof(why)))
		return cli_error("pass a result file written by `moebench peak`", "--measured-peak: %s", why);
	snprintf(summary_spec, sizeof(summary_spec), "%s, passes %s", p->spec, opt.passes);
	return 0;
}


/* The per-layer summary's tallies (below): reset at the start of a run, added to after
 * every measured case. */
static void tally_reset(void);
static void tally(const char *layer, const char *dtype, const char *impl, bool fast,
		  double count, const struct bench_outcome *o);

/* run_grouped measures a routed-expert shape as grouped GEMMs, per implementation. */
static int run_grouped(struct run_ctx *ctx, const struct gemm_plan *p, int index)
{
	static const enum gemm_impl impls[] = { GEMM_IMPL_CPU, GEMM_IMPL_CUBLASLT, GEMM_IMPL_V1 };
	const struct gemm_shape *s = &p->shapes[index];
	bool skipped;
	int err = MB_OK;
	if (!is_grouped_shape(s) || !in_list(opt.dtypes, "fp8-block"))
		return MB_OK;
	double mp = p->peak_doc ? measured_peak(p->peak_doc, p->cuda, GEMM_FP8_BLOCK) : NAN;
	for (int ii = 0; ii < 3 && !err; ii++) {
		if (!in_list(p->impls, gemm_impl_name(impls[ii])))
			continue;
		ctx->last.recorded = false;
		err = gemm_run_grouped(ctx, s, opt.grouped, impls[ii], opt.samples, mp, &skipped);
		/* NOTE: count is how many such groups make the layer's routed experts. */
		if (!err && !skipped && ctx->last.recorded)
			tally("moe.grouped", gemm_kind_name(GEMM_FP8_BLOCK), gemm_impl_name(impls[ii]),
			      false, (double)(s->count / opt.grouped), &ctx->last);
	}
	return err;
}

/* run_shape measures every selected kind and implementation on one shape. */
static int run_shape(struct run_ctx *ctx, const struct gemm_plan *p, int index)
{
	static const enum gemm_kind kinds[] = { GEMM_BF16, GEMM_FP8_TENSOR, GEMM_FP8_BLOCK };
	static const enum gemm_impl impls[] = { GEMM_IMPL_CPU, GEMM_IMPL_CUBLASLT, GEMM_IMPL_V1 };
	struct gemm_shape_data sd;
	bool skipped;
	int err = gemm_shape_data_make(&sd, &p->shapes[index], ctx->opts->seed, (uint64_t)index,
				       in_list(opt.dtypes, "fp8-tensor"), in_list(opt.dtypes, "fp8-block"));
	for (int ki = 0; ki < 3 && !err; ki++) {
		if (!in_list(opt.dtypes, gemm_kind_name(kinds[ki])))
			continue;
		double mp = p->peak_doc ? measured_peak(p->peak_doc, p->cuda, kinds[ki]) : NAN;
		for (int ii = 0; ii < 3 && !err; ii++) {
			/* NOTE: v1 is an FP8 kernel: BF16 there is not a case, not a skip. */
			if (!in_list(p->impls, gemm_impl_name(impls[ii])) ||
			    (kinds[ki] == GEMM_BF16 && impls[ii] == GEMM_IMPL_V1))
				continue;
			/* NOTE: fast accumulation is an FP8 tensor-core mode; BF16 and the CPU
			 * path accumulate in FP32 either way. */
			bool fp8_gpu = kinds[ki] != GEMM_BF16 && impls[ii] != GEMM_IMPL_CPU;
			for (int f = 0; f < 2 && !err; f++) {
				bool fast = f == 1;
				bool want = fast ? (fp8_gpu && strcmp(opt.fast, "off")) :
						   (!fp8_gpu || strcmp(opt.fast, "on"));
				if (!want)
					continue;
				err = gemm_run_case(ctx, &sd, kinds[ki], impls[ii], fast,
						    opt.samples, mp, opt.pad, &skipped);
				if (!err && !skipped && ctx->last.recorded)
					tally(sd.shape->layer, gemm_kind_name(kinds[ki]),
					      gemm_impl_name(impls[ii]), fast, (double)sd.shape->count,
					      &ctx->last);
			}
		}
	}
	gemm_shape_data_free(&sd);
	if (!err && opt.grouped > 0)
		err = run_grouped(ctx, p, index);
	return err;
}

/* gemm_check_output checks, before the study runs, that --accum-csv can be written.
 * Returns 0, or 2 after printing the error. */
static int gemm_check_output(const char *path, bool force)
{
	char why[512];
	int err = result_output_check(path, force, why, sizeof(why));

	return err ? session_output_error(err, "--accum-csv", why) : 0;
}

static int gemm_run(struct run_ctx *ctx)
{
	struct gemm_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return MB_ERR_NOMEM;
	if (cli_only_with(&opt.accum_csv, "accum-csv", opt.accum_study, "--accum-study") ||
	    cli_only_with(&opt.accum_dist, "accum-dist", opt.accum_study, "--accum-study") ||
	    (opt.accum_csv && !ctx->suite && gemm_check_output(opt.accum_csv, ctx->opts->force))) {
		free(p);
		return MB_ERR_ARG;
	}
	if (opt.accum_study && !ctx->suite) {
		free(p);
		return gemm_accum_study(ctx, opt.accum_csv, opt.accum_dist);
	}
	int err = resolve(ctx, p) ? MB_ERR_ARG : MB_OK;
	tally_reset();
	for (int i = 0; i < p->n_shapes && !err; i++) {
		cli_note(ctx->opts->quiet, "gemm: shape %d of %d: %s/%s", i + 1, p->n_shapes,
			 p->shapes[i].layer, p->shapes[i].label);
		err = run_shape(ctx, p, i);
	}
	cJSON_Delete(p->peak_doc);
	free(p);
	return err;
}

/* ---- the per-layer summary ---- */

struct layer_total {
	char layer[32], dtype[16], impl[16];
	bool fast;
	double time_s;        /* sum of median x count over the layer's GEMMs */
	int cases, failed;
	char missing[48];     /* ", N of M GEMMs missing" when incomplete */
};

struct totals {
	struct layer_total t[64];
	int n;
};

/* total_for finds or adds the total of (layer, dtype, impl, fast). */
static struct layer_total *total_for(struct totals *tt, const char *layer, const char *dtype,
				     const char *impl, bool fast)
{
	for (int i = 0; i < tt->n; i++) {
		struct layer_total *t = &tt->t[i];
		if (!strcmp(t->layer, layer) && !strcmp(t->dtype, dtype) && !strcmp(t->impl, impl) &&
		    t->fast == fast)
			return t;
	}
	if (tt->n == 64)
		return NULL;
	struct layer_total *t = &tt->t[tt->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->layer, sizeof(t->layer), "%s", layer);
	snprintf(t->dtype, sizeof(t->dtype), "%s", dtype);
	snprintf(t->impl, sizeof(t->impl), "%s", impl);
	t->fast = fast;
	return t;
}

/* The run's layer totals, filled case by case (tally) and read by the summary. */
static struct totals run_totals;

static void tally_reset(void)
{
	run_totals.n = 0;
}

/* tally adds one measured case's median x count to its layer total. */
static void tally(const char *layer, const char *dtype, const char *impl, bool fast,
		  double count, const struct bench_outcome *o)
{
	struct layer_total *t = total_for(&run_totals, layer, dtype, impl, fast);
	if (!t)
		return;
	t->cases++;
	if (o->pass && isfinite(o->median_s))
		t->time_s += o->median_s * count;
	else
		t->failed++;
}

/* bf16_base returns the BF16 total a kind is compared with: same impl, else any. */
static const struct layer_total *bf16_base(const struct totals *tt, const struct layer_total *t)
{
	const struct layer_total *any = NULL;
	for (int i = 0; i < tt->n; i++) {
		const struct layer_total *b = &tt->t[i];
		if (strcmp(b->layer, t->layer) || strcmp(b->dtype, "bf16") || b->failed)
			continue;
		if (!strcmp(b->impl, t->impl))
			return b;
		if (!any || !strcmp(b->impl, "cublaslt"))
			any = b;
	}
	return any;
}

/* layer_gemms returns the number of GEMM shapes of a layer: the most cases any one
 * (dtype, impl) total has (the CPU and cuBLASLt BF16 paths take every shape). */
static int layer_gemms(const struct totals *tt, const char *layer)
{
	int most = 0;
	for (int i = 0; i < tt->n; i++)
		if (!strcmp(tt->t[i].layer, layer) && tt->t[i].cases > most)
			most = tt->t[i].cases;
	return most;
}

/* total_text describes one total: "fp8-block/cublaslt 7.12 ms (1.73x vs bf16/cublaslt)". */
static void total_text(const struct layer_total *t, const struct layer_total *b, double speedup,
		       char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s%s ", t->dtype, t->impl, t->fast ? "+fast" : "");
	if (n < 0 || (size_t)n >= len)
		return;
	if (t->failed)
		snprintf(buf + n, len - (size_t)n, "n/a (%d of %d failed)", t->failed, t->cases);
	else if (isfinite(speedup))
		snprintf(buf + n, len - (size_t)n, "%.3f ms (%.2fx vs bf16/%s)", 1e3 * t->time_s,
			 speedup, b->impl);
	else
		snprintf(buf + n, len - (size_t)n, "%.3f ms%s%s%s", 1e3 * t->time_s,
			 t->missing[0] ? " (" : "", t->missing[0] ? t->missing + 2 : "",
			 t->missing[0] ? ": not comparable)" : "");
}

/* total_json returns one total's figures. */
static cJSON *total_json(const struct layer_total *t, double speedup)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "layer", t->layer);
	cJSON_AddStringToObject(o, "dtype", t->dtype);
	cJSON_AddStringToObject(o, "impl", t->impl);
	cJSON_AddBoolToObject(o, "fast_accum", t->fast);
	cJSON_AddNumberToObject(o, "gemms", t->cases);
	if (t->failed)
		cJSON_AddNullToObject(o, "time_s");
	else
		cJSON_AddNumberToObject(o, "time_s", t->time_s);
	if (isfinite(speedup))
		cJSON_AddNumberToObject(o, "speedup_vs_bf16", speedup);
	return o;
}

/* layer_line writes one layer's summary line and its JSON figures. */
static void layer_line(struct totals *tt, const char *layer, cJSON *lines, cJSON *figs)
{
	char line[2048], part[160];
	size_t used = (size_t)snprintf(line, sizeof(line), "layer %s (%s):", layer, summary_spec);
	const char *sep = " ";
	for (int i = 0; i < tt->n && used < sizeof(line); i++) {
		struct layer_total *t = &tt->t[i];
		if (strcmp(t->layer, layer))
			continue;
		const struct layer_total *b = bf16_base(tt, t);
		int gemms = layer_gemms(tt, layer);
		/* NOTE: a total missing some of the layer's GEMMs (a shape an implementation
		 * did not take) is not comparable: no speed-up, and the line says so. */
		bool complete = t->cases == gemms && (!b || b->cases == gemms);
		double speedup = (b && complete && !t->failed && strcmp(t->dtype, "bf16")) ?
				 b->time_s / t->time_s : NAN;
		cJSON *fig = total_json(t, speedup);
		cJSON_AddNumberToObject(fig, "layer_gemms", gemms);
		cJSON_AddBoolToObject(fig, "complete", t->cases == gemms);
		cJSON_AddItemToArray(figs, fig);
		if (t->cases < gemms)
			snprintf(t->missing, sizeof(t->missing), ", %d of %d GEMMs missing",
				 gemms - t->cases, gemms);
		total_text(t, b, speedup, part, sizeof(part));
		used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s", sep, part);
		sep = " | ";
	}
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
}

static int gemm_summarize(cJSON *doc)
{
	struct totals *tt = &run_totals;
	cJSON *summary = cJSON_GetObjectItem(doc, "summary");
	if (!summary)
		summary = cJSON_AddObjectToObject(doc, "summary");
	cJSON *g = cJSON_AddObjectToObject(summary, "gemm");
	cJSON *lines = cJSON_AddArrayToObject(g, "lines");
	cJSON *figs = cJSON_AddArrayToObject(g, "layers");
	cJSON_AddStringToObject(g, "rule", "layer time = sum over its GEMMs of median time x count "
				"(routed experts run one after another); speed-up = BF16 time / this time");
	const char *layers[] = { "moe", "moe.grouped", "dense", "explicit" };
	for (int l = 0; l < 4; l++)
		for (int i = 0; i < tt->n; i++)
			if (!strcmp(tt->t[i].layer, layers[l])) {
				layer_line(tt, layers[l], lines, figs);
				break;
			}
	return MB_OK;
}

const struct bench_desc bench_gemm = {
	.name = "gemm",
	.summary = "BF16 / FP8 tensor / FP8 block-scaled GEMMs of a model layer, checked",
	.usage = "moebench gemm [--shapes SPEC] [--dtype LIST] [--impl LIST] [--pass LIST] [options]",
	.warmup = "2",
	.iters = "10",
	.min_time = "0.1",
	.options = gemm_options,
	.run = gemm_run,
	.summarize = gemm_summarize,
};
