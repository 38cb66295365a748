/*
 * cmd_model.c - `moebench model`: what a model costs, from its configuration alone:
 * parameters (total, activated per token, embedding and head, per component), training
 * FLOPs per token as Megatron-LM's labelled terms beside 6N and the non-causal count,
 * forward-only FLOPs, KV-cache bytes per token and, for a parallel layout, memory per
 * GPU. The arithmetic is model/accounting.h's; this file only presents it.
 *
 *   moebench model                                   # deepseek-v3, the claims' model
 *   moebench model --preset llama3-405b --seq 8192 --json
 *   moebench model --preset deepseek-v3 --layout tp=1,pp=16,ep=64,dp=128
 *   moebench model --model my.json --kv-dtype fp8    # {"preset": "v3-tiny", "layers": 8}
 *   moebench model --list
 *
 * Without --preset or --model the model is deepseek-v3: the model whose claims
 * `moebench claims` checks (v3-tiny is the default of small training runs, not of
 * accounting, which costs nothing at any size). Exit 0, or 2 on bad input.
 */
#include "commands.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "cli.h"
#include "status.h"

#define MODEL_DEFAULT_PRESET "deepseek-v3"
#define SEQ_UNSET INT64_MIN
#define MTP_UNSET INT_MIN

struct model_cli {
	const char *preset, *file, *kv_dtype, *layout;
	int64_t seq;
	int mtp;
	bool json, list;
};

/* Everything the command shows, computed once. */
struct model_view {
	struct model_config cfg;
	struct model_summary sum;
	struct model_params params;
	struct model_flops train, noncausal, fwd;
	int64_t kv_elem_bytes;
	uint64_t kv_bytes;
	bool has_layout;
	struct model_layout lay;
	struct model_memory mem;
};

/* fmt_int writes v with thousands separators ("671,026,419,200"). */
static const char *fmt_int(char *buf, size_t len, uint64_t v)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v), o = 0;

	for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* print_list prints the presets with their size and source. */
static void print_list(void)
{
	struct model_summary s;
	char t[32], a[32];

	printf("%-12s %22s %22s  %-4s  %s\n", "preset", "params_total", "params_active", "attn",
	       "source");
	for (size_t i = 0; i < model_preset_count(); i++) {
		const struct model_config *c = model_preset_at(i);
		if (model_summarize(c, c->seq_len, 0, &s))
			continue;
		printf("%-12s %22s %22s  %-4s  %s\n", c->name,
		       fmt_int(t, sizeof(t), s.params_total),
		       fmt_int(a, sizeof(a), s.params_active), model_attention_name(c->attention),
		       c->source);
	}
	printf("(MTP modules not counted; moebench model --preset NAME shows them)\n");
}

/* layout_set stores one "key=value" of --layout into lay. */
static int layout_set(struct model_layout *lay, const char *item)
{
	const char *hint = "--layout takes tp=N,pp=N,ep=N,dp=N[,mb=N] (N >= 1; a missing "
			   "degree is 1; mb: sequences per micro-batch)";
	const char *keys[] = { "tp", "pp", "ep", "dp", "mb" };
	int64_t *dst[] = { &lay->tp, &lay->pp, &lay->ep, &lay->dp, &lay->micro_batch };
	const char *eq = strchr(item, '=');

	for (int k = 0; eq && k < 5; k++) {
		if (strlen(keys[k]) != (size_t)(eq - item) || strncmp(item, keys[k], 2) != 0)
			continue;
		int64_t v;
		if (cli_parse_int(eq + 1, 1, 1 << 20, &v))
			return cli_error(hint, "--layout: %s: '%s' is not a whole number from 1 "
					 "to 1048576", keys[k], eq + 1);
		*dst[k] = v;
		return 0;
	}
	return cli_error(hint, "--layout: '%s' is not one of tp=, pp=, ep=, dp=, mb=", item);
}

/* layout_parse reads --layout ("tp=8,pp=16,...") into lay, over the defaults. */
static int layout_parse(const char *text, struct model_layout *lay)
{
	char buf[256], *save = NULL;
	int st = 0;

	if (strlen(text) >= sizeof(buf))
		return cli_error("--layout takes tp=N,pp=N,ep=N,dp=N[,mb=N]", "--layout: too long");
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *it = strtok_r(buf, ",", &save); it && !st; it = strtok_r(NULL, ",", &save))
		st = layout_set(lay, it);
	return st;
}

/* resolve_config picks the model: --model FILE, --preset NAME, or the default. */
static int resolve_config(const struct model_cli *o, struct model_config *cfg)
{
	char names[512], hint[600], why[512];

	if (o->preset && o->file)
		return cli_error("give one: --preset NAME or --model FILE", "--preset and "
				 "--model both given");
	if (o->file) {
		if (model_config_load(o->file, cfg, why, sizeof(why)) == MB_OK)
			return 0;
		return cli_error("a model file is a JSON object of model/model.h's field names, "
				 "e.g. {\"preset\": \"v3-tiny\", \"layers\": 8}", "%s", why);
	}
	const char *name = o->preset ? o->preset : MODEL_DEFAULT_PRESET;
	const struct model_config *p = model_preset_find(name);
	if (!p) {
		model_preset_names(names, sizeof(names));
		snprintf(hint, sizeof(hint), "known presets are %s", names);
		return cli_error(hint, "--preset: unknown preset '%s'", name);
	}
	*cfg = *p;
	return 0;
}

/* check_seq_mtp applies the defaults and bounds of --seq and --mtp. */
static int check_seq_mtp(const struct model_cli *o, const struct model_config *c,
			 int64_t *seq, int64_t *mtp)
{
	*seq = o->seq == SEQ_UNSET ? c->seq_len : o->seq;
	*mtp = o->mtp == MTP_UNSET ? c->mtp_depth : o->mtp;
	if (*seq <= 0 || *seq > (1 << 22))
		return cli_error("--seq takes a sequence length from 1 to 4M tokens", "--seq: %"
				 PRId64 " is not a positive sequence length up to 4194304", *seq);
	if (c->max_positions > 0 && *seq > c->max_positions)
		return cli_error("the model has learned positions up to max_positions", "--seq: "
				 "%" PRId64 " exceeds %s's max_positions %" PRId64, *seq, c->name,
				 c->max_positions);
	if (*mtp < 0 || *mtp > 16)
		return cli_error("--mtp takes a depth from 0 (no MTP) to 16", "--mtp: %" PRId64
				 " is not an MTP depth from 0 to 16", *mtp);
	return 0;
}

/* compute fills the view: summary, parts, FLOP terms, KV cache and memory. */
static int compute(const struct model_cli *o, struct model_view *v)
{
	char why[512];
	int64_t seq, mtp;
	int st = check_seq_mtp(o, &v->cfg, &seq, &mtp);

	if (st)
		return st;
	v->kv_elem_bytes = strcmp(o->kv_dtype, "fp8") == 0 ? 1 :
			   strcmp(o->kv_dtype, "fp32") == 0 ? 4 : 2;
	if (model_summarize(&v->cfg, seq, mtp, &v->sum) ||
	    model_params_count(&v->cfg, mtp, &v->params) ||
	    model_flops_per_token(&v->cfg, seq, mtp, 0, &v->train) ||
	    model_flops_per_token(&v->cfg, seq, mtp, MODEL_FLOPS_NONCAUSAL, &v->noncausal) ||
	    model_flops_per_token(&v->cfg, seq, mtp, MODEL_FLOPS_FORWARD, &v->fwd) ||
	    model_kv_cache_bytes_per_token(&v->cfg, v->kv_elem_bytes, &v->kv_bytes))
		return cli_error("a smaller --seq or --mtp, or moebench model --list for the presets",
				 "%s: the accounting failed for seq %" PRId64 ", MTP %" PRId64,
				 v->cfg.name, seq, mtp);
	if (!o->layout)
		return 0;
	model_layout_default(&v->lay, &v->cfg);
	v->lay.seq = seq;
	v->lay.mtp_depth = mtp;
	if ((st = layout_parse(o->layout, &v->lay)))
		return st;
	if (model_memory_per_gpu(&v->cfg, &v->lay, &v->mem, why, sizeof(why)))
		return cli_error("tp must divide heads, ep the routed experts and tp*dp; pp at "
				 "most the layers", "--layout: %s", why);
	v->has_layout = true;
	return 0;
}

/* print_header describes the model in two lines. */
static void print_header(const struct model_view *v)
{
	const struct model_config *c = &v->cfg;

	printf("model %s: %s\n", c->name, c->source);
	printf("  %s attention, %" PRId64 " heads, dim %" PRId64 ", %" PRId64 " layers",
	       c->attention == MODEL_ATTN_MLA ? "MLA" : "GQA", c->heads, c->dim, c->layers);
	if (c->routed_experts)
		printf(" (%" PRId64 " dense-first), %" PRId64 " routed + %" PRId64 " shared experts, "
		       "%" PRId64 " activated", c->dense_layers, c->routed_experts,
		       c->shared_experts, c->activated_experts);
	printf(", vocab %" PRId64 "\n  counted at seq %" PRId64 " with %" PRId64 " MTP module%s\n\n",
	       c->vocab, v->sum.seq, v->sum.mtp_depth, v->sum.mtp_depth == 1 ? "" : "s");
}

/* print_params prints parameters per component, then the sums. */
static void print_params(const struct model_view *v)
{
	const struct model_params *p = &v->params;
	char a[32], b[32], c[32], d[32];

	printf("%-18s %19s %19s %17s %17s\n", "parameters", "total", "active", "mtp_total",
	       "mtp_active");
	for (int i = 0; i < MODEL_PARAM_PARTS; i++)
		printf("  %-16s %19s %19s %17s %17s\n", model_param_part_name(i),
		       fmt_int(a, 32, p->total[i]), fmt_int(b, 32, p->active[i]),
		       fmt_int(c, 32, p->mtp_total[i]), fmt_int(d, 32, p->mtp_active[i]));
	printf("  %-16s %19s %19s %17s %17s\n", "sum", fmt_int(a, 32, p->sum_total),
	       fmt_int(b, 32, p->sum_active), fmt_int(c, 32, p->sum_mtp_total),
	       fmt_int(d, 32, p->sum_mtp_active));
	printf("  main model: %.2f B total, %.2f B active (embedding %.2f B and head %.2f B "
	       "included); MTP modules share both and add %.2f B\n\n", 1e-9 * (double)p->sum_total,
	       1e-9 * (double)p->sum_active, 1e-9 * (double)v->sum.params_embedding,
	       1e-9 * (double)v->sum.params_head, 1e-9 * (double)p->sum_mtp_total);
}

/* print_flops prints the training FLOP terms and the alternative counts. */
static void print_flops(const struct model_view *v)
{
	const struct model_flops *f = &v->train;
	char a[32];

	printf("training FLOPs per token (3 x forward: fwd + dgrad + wgrad; 2 per multiply-add; "
	       "causal core halved)\n");
	printf("  %-16s %14s %14s %14s\n", "term", "main_gflop", "mtp_gflop", "sum_gflop");
	for (int i = 0; i < MODEL_FLOP_TERMS; i++)
		printf("  %-16s %14.3f %14.3f %14.3f\n", model_flop_term_name(i),
		       1e-9 * (double)f->main[i], 1e-9 * (double)f->mtp[i],
		       1e-9 * (double)(f->main[i] + f->mtp[i]));
	printf("  %-16s %14.3f %14.3f %14.3f  = %s FLOP\n", "sum", 1e-9 * (double)f->sum_main,
	       1e-9 * (double)f->sum_mtp, 1e-9 * (double)f->total, fmt_int(a, 32, f->total));
	printf("  %-32s %31.3f\n", "non-causal (full attention core)",
	       1e-9 * (double)v->noncausal.total);
	printf("  %-32s %31.3f\n", "6N (N = active incl. MTP)",
	       1e-9 * (double)v->sum.flops_per_token_6n);
	printf("  %-32s %31.3f\n\n", "forward only (causal)", 1e-9 * (double)v->fwd.total);
}

/* print_kv prints the KV cache per token and per sequence. */
static void print_kv(const struct model_view *v, const char *dtype)
{
	const struct model_config *c = &v->cfg;
	char a[32];
	int64_t per_layer = c->attention == MODEL_ATTN_MLA ?
		c->kv_lora_rank + c->qk_rope_head_dim : 2 * c->kv_heads * c->head_dim;

	printf("KV cache per token (%s): %s bytes = %" PRId64 " elements x %" PRId64 " bytes x %"
	       PRId64 " layers (%s)\n", dtype, fmt_int(a, 32, v->kv_bytes), per_layer,
	       v->kv_elem_bytes, c->layers, c->attention == MODEL_ATTN_MLA ?
	       "MLA: latent + RoPE key" : "GQA: keys and values of the KV heads");
	printf("  per sequence of %" PRId64 " tokens: %.1f MiB\n", v->sum.seq,
	       (double)v->kv_bytes * (double)v->sum.seq / 1048576.0);
}

/* print_memory prints the memory of the fullest GPU under the layout. */
static void print_memory(const struct model_view *v)
{
	const struct model_layout *l = &v->lay;
	const struct model_memory *m = &v->mem;
	const double gib = 1073741824.0;
	char a[32], b[32];

	printf("\nmemory per GPU, layout tp=%" PRId64 " pp=%" PRId64 " ep=%" PRId64 " dp=%" PRId64
	       " (%" PRId64 " GPUs), micro-batch %" PRId64 " x %" PRId64 " tokens\n", l->tp, l->pp,
	       l->ep, l->dp, l->tp * l->pp * l->dp, l->micro_batch, l->seq);
	printf("  fullest GPU: stage %" PRId64 " (%" PRId64 " layers), %s dense + %s expert "
	       "parameters\n", m->stage, m->stage_layers, fmt_int(a, 32, m->params_dense),
	       fmt_int(b, 32, m->params_expert));
	printf("  %-12s %9.2f GiB  (BF16 working copy)\n", "weights", m->weight_bytes / gib);
	printf("  %-12s %9.2f GiB  (FP32, not sharded)\n", "gradients", m->grad_bytes / gib);
	printf("  %-12s %9.2f GiB  (FP32 master + 2 Adam moments, ZeRO-1 over DP)\n", "optimizer",
	       m->optimizer_bytes / gib);
	printf("  %-12s %9.2f GiB  (%.2f GiB per micro-batch x %" PRId64 " in flight, 1F1B)\n",
	       "activations", m->activation_bytes / gib, m->activation_bytes_per_microbatch / gib,
	       m->microbatches_in_flight);
	printf("  %-12s %9.2f GiB  (buffers and fragmentation not counted: expect 10-30%% more;"
	       " model/memory.c)\n", "total", m->total_bytes / gib);
}

/* add_u64s adds {name: count} for n named counts to obj. */
static void add_u64s(cJSON *obj, const char *key, const uint64_t *v, int n,
		     const char *(*name)(int))
{
	cJSON *o = cJSON_AddObjectToObject(obj, key);

	for (int i = 0; o && i < n; i++)
		cJSON_AddNumberToObject(o, name(i), (double)v[i]);
}

/* part_name and term_name adapt the accounting's names to add_u64s. */
static const char *part_name(int i)
{
	return model_param_part_name((enum model_param_part)i);
}

static const char *term_name(int i)
{
	return model_flop_term_name((enum model_flop_term)i);
}

/* view_json builds the --json object: the summary's keys, then the details. */
static cJSON *view_json(const struct model_view *v, const char *dtype)
{
	cJSON *o = model_summary_to_json(&v->sum);

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "model", v->cfg.name);
	cJSON_AddStringToObject(o, "kv_cache_dtype", dtype);
	cJSON_AddNumberToObject(o, "kv_cache_bytes_per_token_at_dtype", (double)v->kv_bytes);
	cJSON *p = cJSON_AddObjectToObject(o, "params_parts");
	add_u64s(p, "total", v->params.total, MODEL_PARAM_PARTS, part_name);
	add_u64s(p, "active", v->params.active, MODEL_PARAM_PARTS, part_name);
	add_u64s(p, "mtp_total", v->params.mtp_total, MODEL_PARAM_PARTS, part_name);
	add_u64s(p, "mtp_active", v->params.mtp_active, MODEL_PARAM_PARTS, part_name);
	cJSON *f = cJSON_AddObjectToObject(o, "flops_terms_train");
	add_u64s(f, "main", v->train.main, MODEL_FLOP_TERMS, term_name);
	add_u64s(f, "mtp", v->train.mtp, MODEL_FLOP_TERMS, term_name);
	if (v->has_layout) {
		const struct model_layout *l = &v->lay;
		const struct model_memory *m = &v->mem;
		cJSON *mem = cJSON_AddObjectToObject(o, "memory_per_gpu");
		const struct { const char *k; double x; } r[] = {
			{ "tp", (double)l->tp }, { "pp", (double)l->pp }, { "ep", (double)l->ep },
			{ "dp", (double)l->dp }, { "micro_batch", (double)l->micro_batch },
			{ "stage", (double)m->stage }, { "weight_bytes", m->weight_bytes },
			{ "grad_bytes", m->grad_bytes }, { "optimizer_bytes", m->optimizer_bytes },
			{ "activation_bytes", m->activation_bytes }, { "total_bytes", m->total_bytes },
		};
		for (size_t i = 0; mem && i < sizeof(r) / sizeof(r[0]); i++)
			cJSON_AddNumberToObject(mem, r[i].k, r[i].x);
	}
	cJSON_AddItemToObject(o, "config", model_config_to_json(&v->cfg));
	return o;
}

/* cmd_model parses the options, picks the model, computes and prints. */
int cmd_model(int argc, char **argv)
{
	struct model_cli o = { .seq = SEQ_UNSET, .mtp = MTP_UNSET };
	struct model_view *v = NULL;
	char *pos[1];
	int npos, st;
	bool help;
	const struct cli_opt opts[] = {
		{ "preset", CLI_STRING, &o.preset, NULL, "built-in model (--list shows them; default " MODEL_DEFAULT_PRESET ")", 0, -1, NULL },
		{ "model", CLI_STRING, &o.file, NULL, "JSON model file (model/model.h's field names; \"preset\" to start from one)", 0, -1, NULL },
		{ "seq", CLI_SIZE, &o.seq, NULL, "sequence length the FLOPs are counted at (default: the model's)", 1, -1, NULL },
		{ "mtp", CLI_INT, &o.mtp, NULL, "MTP modules counted (default: the model's)", 1, -1, NULL },
		{ "kv-dtype", CLI_CHOICE, &o.kv_dtype, "bf16", "KV-cache element type of the text table", 0, -1, "bf16|fp8|fp32" },
		{ "layout", CLI_STRING, &o.layout, NULL, "tp=N,pp=N,ep=N,dp=N[,mb=N]: also memory per GPU", 0, -1, NULL },
		{ "json", CLI_FLAG, &o.json, NULL, "print one JSON object", 0, -1, NULL },
		{ "list", CLI_FLAG, &o.list, NULL, "list the built-in presets", 0, -1, NULL },
		CLI_END
	};
	st = cli_parse("model", argc, argv, NULL, opts, pos, 0, &npos, &help,
		       "moebench model [--preset NAME | --model FILE] [--seq N] [--mtp D] "
		       "[--kv-dtype bf16|fp8|fp32] [--layout tp=..,pp=..,ep=..,dp=..] "
		       "[--format text|json] | --list");
	if (st || help)
		return st;
	if (o.list) {
		print_list();
		return 0;
	}
	if (!(v = calloc(1, sizeof(*v))))
		return cli_error(NULL, "out of memory");
	if ((st = resolve_config(&o, &v->cfg)) || (st = compute(&o, v)))
		goto out;
	if (o.json) {
		cJSON *j = view_json(v, o.kv_dtype);
		char *t = j ? cJSON_Print(j) : NULL;
		st = t ? 0 : cli_error(NULL, "out of memory");
		if (t)
			puts(t);
		free(t);
		cJSON_Delete(j);
		goto out;
	}
	print_header(v);
	print_params(v);
	print_flops(v);
	print_kv(v, o.kv_dtype);
	if (v->has_layout)
		print_memory(v);
out:
	free(v);
	return st;
}
