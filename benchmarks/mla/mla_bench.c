/*
 * mla.c - `moebench mla`: Multi-head Latent Attention against MHA and GQA of the same
 * model width, in training (forward and backward of the attention core, and of the
 * whole block) and in decode (one token against a KV cache of --ctx positions, MLA in
 * its absorbed form reading only the latent cache), each case checked against the FP64
 * path on the same inputs; the summary compares KV-cache bytes per token and decode
 * traffic for every preset given.
 *
 *   moebench mla                                       # v3-small, seq 256, CPU
 *   moebench mla --preset deepseek-v3,v3-small --seq 128 --compare mha,gqa:8
 *   moebench mla --preset deepseek-v3 --mode decode --ctx 4096 --batch 4
 *   moebench mla --preset llama3-8b                   # GQA preset: its GQA and MHA
 *
 * FLOP convention (the issue's): core forward 2*B*H*nnz*(d_qk+d_v), nnz = S(S+1)/2
 * (causal), backward 2.5x forward; the block adds 2 FLOPs per weight per token forward
 * and 4 backward; decode 2*B*H*ctx*(d_qk+d_v). Decode is judged by bytes: every cache
 * row read once per step, GB/s against the measured copy bandwidth (`moebench peak`'s
 * stream_copy with --measured-peak, else a copy measured here).
 * The comparison points: MHA = H heads of v_head_dim (DeepSeek-V2's MHA baseline shape:
 * 128 heads of 128 for V3), GQA:G = the same with G key/value heads; RoPE on the whole
 * head. --impl cuda times attention.cu's v1 kernels (BF16, FP32 accumulation) on the
 * core and decode, checked against the FP64 CPU core on the same BF16-rounded inputs
 * (NOTE: at DeepSeek-V3's full shape that reference takes minutes on the host), and
 * (--block on) the whole MLA block (mla_cuda.h: cuBLASLt projections around the same
 * core), checked against the CPU f32 block, on a prefix of one sequence where the
 * full-size reference would be too slow (the record's check_scope says which). The
 * MHA/GQA block runs on the CPU only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "backend.h"
#include "mla_bench.h"
#include "model.h"
#include "peak.h"
#include "result.h"
#include "status.h"
#include "timer.h"

#define MAX_PRESETS 8
#define MAX_VARIANTS 6

static struct {
	const char *presets, *mode, *compare, *impl, *block, *peak_file;
	int64_t seq, ctx;
	int batch;
} opt;

static const struct cli_opt mla_opts[] = {
	{ "preset", CLI_STRING, &opt.presets, "auto", "model presets, comma-separated (auto: v3-small on the CPU, deepseek-v3 on CUDA)", 0, -1, NULL },
	{ "seq", CLI_SIZE, &opt.seq, "0", "sequence length, train mode (0: 256 on the CPU, 4096 on CUDA; suite 64)", 0, 1 << 20, NULL },
	{ "batch", CLI_INT, &opt.batch, "1", "sequences", 1, 4096, NULL },
	{ "mode", CLI_CHOICE, &opt.mode, "train", "train: forward and backward; decode: one token", 0, -1, "train|decode" },
	{ "ctx", CLI_SIZE, &opt.ctx, "4096", "cached positions, decode mode", 1, 1 << 22, NULL },
	{ "compare", CLI_STRING, &opt.compare, "auto", "mha,gqa:G,mla or none (auto: mha and gqa:8, or gqa:H/2 when 8 does not fit)", 0, -1, NULL },
	{ "impl", CLI_STRING, &opt.impl, "auto", "cpu,cuda (auto: cpu on the CPU, cuda on CUDA)", 0, -1, NULL },
	{ "block", CLI_CHOICE, &opt.block, "on", "train mode: also the whole block (projections, norms, RoPE)", 0, -1, "on|off" },
	{ "measured-peak", CLI_STRING, &opt.peak_file, NULL, "a `moebench peak` result: sgemm/bf16_gemm TFLOP/s and stream_copy/d2d_copy GB/s as measured peaks", 0, -1, NULL },
	CLI_END
};

static const struct cli_opt *mla_options(void)
{
	return mla_opts;
}

/* One preset's plan: the model and its variants. */
struct preset_plan {
	const struct model_config *m;
	struct mla_variant v[MAX_VARIANTS];
	int n;
};

/* The run's plan, kept for the summary. */
static struct {
	struct preset_plan p[MAX_PRESETS];
	int n, batch, seq, ctx;
	bool decode, cpu, cuda;
} plan;

/* What each case measured, in the order run, for the summary's measured lines. */
#define MAX_MEASURED 512
static struct measured {
	const char *preset, *variant;
	enum mla_op op;
	bool cuda;
	struct bench_outcome out;
} measured[MAX_MEASURED];
static int n_measured;

/* mha_variant makes the MHA/GQA variant of H heads of hd with G key/value heads. */
static struct mla_variant mha_variant(const struct model_config *m, int hd, int g)
{
	struct mla_variant v = { .is_mla = false };
	v.gqa = (struct gqa_config){ (int)m->dim, (int)m->heads, g, hd, true, 10000, NULL };
	if (g == m->heads)
		snprintf(v.name, sizeof(v.name), "mha");
	else
		snprintf(v.name, sizeof(v.name), "gqa%d", g);
	return v;
}

/* own_variant makes the preset's own attention. */
static struct mla_variant own_variant(const struct model_config *m)
{
	if (m->attention != MODEL_ATTN_MLA)
		return mha_variant(m, (int)m->head_dim, (int)m->kv_heads);
	struct mla_variant v = { .name = "mla", .is_mla = true };
	v.mla = (struct mla_config){ (int)m->dim, (int)m->heads, (int)m->q_lora_rank,
				     (int)m->kv_lora_rank, (int)m->qk_nope_head_dim,
				     (int)m->qk_rope_head_dim, (int)m->v_head_dim, 10000, 1e-6,
				     NULL };
	return v;
}

/* add_variant appends v unless a variant of that name is there; 2 when G is invalid. */
static int add_variant(struct preset_plan *pp, struct mla_variant v)
{
	char why[160];
	if (!v.is_mla && gqa_check(&v.gqa, why, sizeof(why)))
		return cli_error("G must divide the preset's heads, e.g. --compare mha,gqa:8",
				 "--compare: %s for %s (%d heads): %s", v.name, pp->m->name,
				 (int)pp->m->heads, why);
	for (int i = 0; i < pp->n; i++)
		if (!strcmp(pp->v[i].name, v.name))
			return 0;
	if (pp->n == MAX_VARIANTS)
		return cli_error("e.g. --compare mha,gqa:8", "--compare: more than %d variants",
				 MAX_VARIANTS);
	pp->v[pp->n++] = v;
	return 0;
}

/* auto_groups picks GQA's G for --compare auto: 8 when it divides fewer heads, else
 * half the heads. */
static int auto_groups(const struct model_config *m)
{
	return (m->heads > 8 && m->heads % 8 == 0) ? 8 : m->heads > 1 ? (int)m->heads / 2 : 1;
}

/* add_compare adds one --compare word to a preset's variants; 2 on bad input. */
static int add_compare(struct preset_plan *pp, const char *w, size_t len)
{
	const struct model_config *m = pp->m;
	int hd = m->attention == MODEL_ATTN_MLA ? (int)m->v_head_dim : (int)m->head_dim;
	int g = 0, used = 0;
	if (len == 3 && !strncmp(w, "mla", 3)) {
		if (m->attention != MODEL_ATTN_MLA)
			return cli_error("MLA presets: deepseek-v3, deepseek-v2, v3-tiny, v3-small",
					 "--compare mla: preset %s has no MLA (it is %s)", m->name,
					 model_attention_name(m->attention));
		return 0;
	}
	if (len == 3 && !strncmp(w, "mha", 3))
		return add_variant(pp, mha_variant(m, hd, (int)m->heads));
	if (sscanf(w, "gqa:%d%n", &g, &used) == 1 && (size_t)used == len && g >= 1)
		return add_variant(pp, mha_variant(m, hd, g));
	return cli_error("--compare takes mha, gqa:G, mla or none, comma-separated",
			 "--compare: cannot read '%.*s'", (int)len, w);
}

/* plan_preset resolves one preset name and its variants; 2 on bad input. */
static int plan_preset(struct preset_plan *pp, const char *name, size_t len)
{
	char n[64], known[480], hint[600];
	snprintf(n, sizeof(n), "%.*s", (int)(len < 63 ? len : 63), name);
	pp->m = model_preset_find(n);
	if (!pp->m) {
		model_preset_names(known, sizeof(known));
		snprintf(hint, sizeof(hint), "known presets: %s", known);
		return cli_error(hint, "--preset: unknown preset '%s'", n);
	}
	pp->n = 0;
	int st = add_variant(pp, own_variant(pp->m));
	if (!st && !strcmp(opt.compare, "auto")) {
		int hd = pp->m->attention == MODEL_ATTN_MLA ? (int)pp->m->v_head_dim : (int)pp->m->head_dim;
		st = add_variant(pp, mha_variant(pp->m, hd, (int)pp->m->heads));
		if (!st)
			st = add_variant(pp, mha_variant(pp->m, hd, auto_groups(pp->m)));
		return st;
	}
	if (!strcmp(opt.compare, "none"))
		return st;
	for (const char *p = opt.compare; !st && *p;) {
		size_t l = strcspn(p, ",");
		st = add_compare(pp, p, l);
		p += l + (p[l] == ',');
	}
	return st;
}

/* check_fit refuses a case whose buffers would take more than half of the memory. */
static int check_fit(const struct mla_case_spec *s)
{
	struct cpu_info ci;
	backend_cpu_info(&ci);
	double need = mla_case_bytes(s), have = (double)ci.mem_bytes;
	int len = s->op == MLA_OP_DECODE ? s->ctx : s->seq;
	if ((double)s->batch * len > (double)(1 << 24) || (have > 0 && need > have / 2))
		return cli_error("lower --seq, --ctx or --batch",
				 "%s %s %s at batch %d, %s %d needs about %.1f GiB, more than half of "
				 "this machine's %.1f GiB", s->preset, s->v->name, mla_op_name(s->op),
				 s->batch, s->op == MLA_OP_DECODE ? "ctx" : "seq", len, need / 1073741824.0,
				 have / 1073741824.0);
	return 0;
}

/* peak_of returns a metric of the first record of op in a `moebench peak` result. */
static double peak_of(const cJSON *doc, const char *op, const char *metric)
{
	const cJSON *rec;
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(doc, "records")) {
		const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "params"), "op");
		const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"), metric);
		if (cJSON_IsString(o) && !strcmp(o->valuestring, op) && cJSON_IsNumber(v))
			return v->valuedouble;
	}
	return NAN;
}

/* copy_gbps measures this machine's copy bandwidth (STREAM copy of 2 x 32 MiB, best of
 * three) for decode's GB/s when no --measured-peak is given. */
static double copy_gbps(uint64_t seed)
{
	struct peak_stream_cpu *s = NULL;
	double best = INFINITY;
	if (peak_stream_cpu_create(&s, PEAK_STREAM_COPY, (size_t)4 << 20, seed))
		return NAN;
	peak_stream_cpu_run(s);
	for (int i = 0; i < 3; i++) {
		double t0 = timer_now();
		peak_stream_cpu_run(s);
		best = fmin(best, timer_now() - t0);
	}
	double gbps = (double)peak_stream_cpu_bytes(s) / best / 1e9;
	peak_stream_cpu_destroy(s);
	return gbps;
}

/* check_impl reads --impl into plan.cpu and plan.cuda; 2 on bad input. */
static int check_impl(const struct run_ctx *ctx)
{
	bool on_cuda = ctx->backend->kind == BACKEND_CUDA;
	const char *impl = strcmp(opt.impl, "auto") ? opt.impl : on_cuda && !ctx->suite ? "cuda" : "cpu";
	plan.cpu = plan.cuda = false;
	for (const char *p = impl; *p;) {
		size_t l = strcspn(p, ",");
		if (l == 4 && !strncmp(p, "cuda", 4))
			plan.cuda = true;
		else if (l == 3 && !strncmp(p, "cpu", 3))
			plan.cpu = true;
		else
			return cli_error("--impl takes cpu, cuda or both", "--impl: unknown value '%.*s'", (int)l, p);
		p += l + (p[l] == ',');
	}
	if (plan.cuda && !on_cuda)
		return cli_error("use --impl cpu, or --backend cuda on a machine with a GPU",
				 "--impl cuda needs the CUDA backend");
	if (!plan.cpu && !plan.cuda)
		return cli_error("--impl takes cpu, cuda or both", "--impl: empty");
	return 0;
}

/* resolve fills the plan from the options; returns 0 or 2 (reported). */
static int resolve(struct run_ctx *ctx)
{
	bool on_cuda = ctx->backend->kind == BACKEND_CUDA && !ctx->suite;
	const char *presets = strcmp(opt.presets, "auto") ? opt.presets : ctx->suite ? "v3-tiny" :
			      on_cuda ? "deepseek-v3" : "v3-small";
	int st = check_impl(ctx);
	plan.n = 0;
	plan.batch = opt.batch;
	plan.decode = !strcmp(opt.mode, "decode") && !ctx->suite;
	plan.seq = opt.seq > 0 ? (int)opt.seq : ctx->suite ? 64 : on_cuda ? 4096 : 256;
	plan.ctx = ctx->suite ? 64 : (int)opt.ctx;
	for (const char *p = presets; !st && *p;) {
		size_t l = strcspn(p, ",");
		if (plan.n == MAX_PRESETS)
			return cli_error("give at most 8 presets", "--preset: too many presets");
		st = plan_preset(&plan.p[plan.n++], p, l);
		p += l + (p[l] == ',');
	}
	if (!st && plan.n == 0)
		st = cli_error("example: --preset deepseek-v3", "--preset: no preset given");
	return st;
}

/* ops_of lists the operations of the run; returns their count. */
static int ops_of(bool suite, enum mla_op *ops)
{
	int n = 0;
	if (plan.decode) {
		ops[n++] = MLA_OP_DECODE;
		return n;
	}
	ops[n++] = MLA_OP_CORE_FWD;
	ops[n++] = MLA_OP_CORE_BWD;
	if (!strcmp(opt.block, "on") && !suite) {
		ops[n++] = MLA_OP_BLOCK_FWD;
		ops[n++] = MLA_OP_BLOCK_BWD;
	}
	return n;
}

/* copy_run is one device-to-device copy, for timer_reps. */
static int copy_run(void *state)
{
	return peak_copy_cuda_run(state);
}

/* copy_gbps_cuda measures the device's copy bandwidth (1 GiB read + written, median of
 * five) for CUDA decode's GB/s when no --measured-peak is given. */
static double copy_gbps_cuda(struct run_ctx *ctx)
{
	struct peak_copy_cuda *c = NULL;
	double t[5], gbps = NAN;
	size_t bytes = (size_t)1 << 30;
	if (peak_copy_cuda_create(&c, bytes, ctx->opts->seed, ctx->backend->stream))
		return NAN;
	if (!timer_reps(ctx->backend, copy_run, c, 5, false, t)) {
		for (int i = 1; i < 5; i++)  /* insertion sort: five samples */
			for (int k = i; k > 0 && t[k] < t[k - 1]; k--) {
				double x = t[k];
				t[k] = t[k - 1], t[k - 1] = x;
			}
		gbps = 2.0 * (double)bytes / t[2] / 1e9;
	}
	peak_copy_cuda_destroy(c);
	return gbps;
}

/* measured_peak returns the measured peak a run's cases are held against: the peak
 * file's record when given, else (decode only) a copy measured now. */
static double measured_peak(struct run_ctx *ctx, const cJSON *peak_doc, bool cuda)
{
	if (plan.decode && peak_doc)
		return peak_of(peak_doc, cuda ? "d2d_copy" : "stream_copy", "gbps");
	if (plan.decode)
		return cuda ? copy_gbps_cuda(ctx) : copy_gbps(ctx->opts->seed);
	return peak_doc ? peak_of(peak_doc, cuda ? "bf16_gemm" : "sgemm", "tflops") : NAN;
}

/* run_impl runs every (preset, variant, op) of one implementation; with dry_run it only
 * checks that each fits (2 on bad input, reported). */
static int run_impl(struct run_ctx *ctx, bool cuda, double mp, bool dry_run)
{
	enum mla_op ops[4];
	int nops = ops_of(ctx->suite, ops), err = MB_OK;
	for (int i = 0; i < plan.n && !err; i++)
		for (int j = 0; j < plan.p[i].n && !err; j++)
			for (int k = 0; k < nops && !err; k++) {
				struct mla_case_spec s = { plan.p[i].m->name, &plan.p[i].v[j], ops[k],
							   plan.batch, plan.seq, plan.ctx, cuda, mp };
				/* NOTE: only the MLA block has a CUDA version (mla_cuda.h). */
				if (cuda && !plan.p[i].v[j].is_mla &&
				    (ops[k] == MLA_OP_BLOCK_FWD || ops[k] == MLA_OP_BLOCK_BWD))
					continue;
				if (dry_run) {
					err = check_fit(&s);
					continue;
				}
				ctx->last.recorded = false;
				err = mla_run_case(ctx, &s);
				/* NOTE: a case the kernels do not take leaves no record (and no tally). */
				if (!err && ctx->last.recorded && n_measured < MAX_MEASURED)
					measured[n_measured++] = (struct measured){ s.preset, s.v->name,
						s.op, cuda, ctx->last };
			}
	return err;
}

static int mla_run(struct run_ctx *ctx)
{
	char why[512];
	cJSON *peak_doc = NULL;
	if (resolve(ctx))
		return MB_ERR_ARG;
	/* NOTE: every size is checked before the first case runs: bad input writes nothing. */
	if ((plan.cpu && run_impl(ctx, false, NAN, true)) || (plan.cuda && run_impl(ctx, true, NAN, true)))
		return MB_ERR_ARG;
	if (opt.peak_file && !ctx->suite && result_read(opt.peak_file, &peak_doc, why, sizeof(why))) {
		cli_error("pass a result file written by `moebench peak`", "--measured-peak: %s", why);
		return MB_ERR_ARG;
	}
	int err = MB_OK;
	n_measured = 0;
	if (plan.cuda)
		err = run_impl(ctx, true, measured_peak(ctx, peak_doc, true), false);
	if (!err && plan.cpu)
		err = run_impl(ctx, false, measured_peak(ctx, peak_doc, false), false);
	cJSON_Delete(peak_doc);
	return err;
}

/* ---- the summary ---- */

/* commas writes n with thousands separators. */
static void commas(uint64_t n, char *buf, size_t len)
{
	char raw[32];
	int l = snprintf(raw, sizeof(raw), "%llu", (unsigned long long)n), o = 0;
	for (int i = 0; i < l && (size_t)o + 2 < len; i++) {
		if (i && (l - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
}

/* kv_per_pos returns a variant's cache bytes per position per layer in BF16. */
static uint64_t kv_per_pos(const struct mla_variant *v)
{
	return v->is_mla ? mla_kv_bytes_per_pos(&v->mla, 2) : gqa_kv_bytes_per_pos(&v->gqa, 2);
}

/* kv_lines adds a preset's KV-cache and decode-traffic comparison (text and figures). */
static void kv_lines(const struct preset_plan *pp, cJSON *lines, cJSON *figs)
{
	char line[1024], num[32];
	uint64_t layers = (uint64_t)pp->m->layers, own = kv_per_pos(&pp->v[0]) * layers;
	int n = snprintf(line, sizeof(line), "%s KV cache per token (BF16, %llu layers):", pp->m->name,
			 (unsigned long long)layers);
	for (int i = 0; i < pp->n && n < (int)sizeof(line); i++) {
		uint64_t b = kv_per_pos(&pp->v[i]) * layers;
		commas(b, num, sizeof(num));
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s %s %s B (%.2fx %s)", i ? " |" : "",
			      pp->v[i].name, num, (double)b / (double)own, pp->v[0].name);
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "preset", pp->m->name);
		cJSON_AddStringToObject(f, "variant", pp->v[i].name);
		cJSON_AddNumberToObject(f, "kv_bytes_per_token_bf16", (double)b);
		cJSON_AddNumberToObject(f, "decode_bytes_per_step_per_layer_bf16",
					(double)kv_per_pos(&pp->v[i]) * plan.ctx * plan.batch);
		cJSON_AddItemToArray(figs, f);
	}
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	n = snprintf(line, sizeof(line), "%s decode step at ctx %d, batch %d, cache read per layer (BF16):",
		     pp->m->name, plan.ctx, plan.batch);
	for (int i = 0; i < pp->n && n < (int)sizeof(line); i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s %s %.2f MB", i ? " |" : "",
			      pp->v[i].name, 1e-6 * (double)kv_per_pos(&pp->v[i]) * plan.ctx * plan.batch);
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
}

/* measured_line adds one line of a preset's measured cases (median time and rate). */
static void measured_line(const char *preset, cJSON *lines)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s measured:", preset), cases = 0;
	for (int i = 0; i < n_measured && n < (int)sizeof(line); i++) {
		const struct measured *m = &measured[i];
		const struct bench_outcome *o = &m->out;
		if (strcmp(m->preset, preset))
			continue;
		const char *sep = cases ? " |" : "", *op = mla_op_name(m->op);
		const char *impl = m->cuda ? "cuda" : "cpu";
		size_t room = sizeof(line) - (size_t)n;
		if (!o->pass)
			n += snprintf(line + n, room, "%s %s %s/%s FAILED", sep, m->variant, op, impl);
		else if (isfinite(o->tflops))
			n += snprintf(line + n, room, "%s %s %s/%s %.3f ms %.4f TFLOP/s", sep, m->variant,
				      op, impl, 1e3 * o->median_s, o->tflops);
		else if (isfinite(o->gbps))
			n += snprintf(line + n, room, "%s %s %s/%s %.3f ms %.2f GB/s%s%.0f%s", sep,
				      m->variant, op, impl, 1e3 * o->median_s, o->gbps,
				      isfinite(o->pct_measured_peak) ? " (" : "",
				      isfinite(o->pct_measured_peak) ? o->pct_measured_peak : 0,
				      isfinite(o->pct_measured_peak) ? "% of copy)" : "");
		cases++;
	}
	if (cases && n < (int)sizeof(line))
		cJSON_AddItemToArray(lines, cJSON_CreateString(line));
}

static int mla_summarize(cJSON *doc)
{
	cJSON *summary = cJSON_GetObjectItem(doc, "summary");
	if (!summary)
		summary = cJSON_AddObjectToObject(doc, "summary");
	cJSON *g = cJSON_AddObjectToObject(summary, "mla");
	cJSON *lines = cJSON_AddArrayToObject(g, "lines");
	cJSON *figs = cJSON_AddArrayToObject(g, "kv_cache");
	if (!lines || !figs)
		return MB_ERR_NOMEM;
	cJSON_AddStringToObject(g, "flop_convention", "core fwd 2*B*H*nnz*(d_qk+d_v), nnz = S(S+1)/2 "
				"causal; bwd 2.5x fwd; decode 2*B*H*ctx*(d_qk+d_v)");
	cJSON_AddStringToObject(g, "comparison", "MHA: H heads of v_head_dim (MLA presets) or "
				"head_dim; GQA:G the same with G key/value heads");
	for (int i = 0; i < plan.n; i++) {
		kv_lines(&plan.p[i], lines, figs);
		measured_line(plan.p[i].m->name, lines);
	}
	return MB_OK;
}

const struct bench_desc bench_mla = {
	.name = "mla",
	.summary = "MLA attention vs MHA/GQA: train fwd/bwd, absorbed decode, KV cache, checked",
	.usage = "moebench mla [--preset LIST] [--seq S] [--batch B] [--mode train|decode] "
		 "[--ctx N] [--compare mha,gqa:G] [--impl cpu,cuda] [options]",
	.warmup = "1",
	.iters = "3",
	.min_time = "0",
	.options = mla_options,
	.run = mla_run,
	.summarize = mla_summarize,
};
