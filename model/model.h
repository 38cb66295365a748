/*
 * model.h - the shape of a transformer language model: DeepSeek-V3's configuration
 * (MLA attention, shared + routed experts, dense-first layers, multi-token prediction)
 * generalised so that dense GQA/MHA models (Llama 3, Qwen2.5, GPT) fit the same struct.
 *
 * A config comes from a built-in preset (model_preset_find) or from a JSON object whose
 * keys are the field names below (model_config_from_json, model_config_load). Every
 * config that reaches the accounting has passed model_config_validate.
 *
 * Which layers are which: layers [0, dense_layers) have a dense FFN of inter_dim; the
 * remaining layers are MoE layers (routed_experts > 0 required). A dense model has
 * routed_experts == 0 and dense_layers == layers. An MTP module (depth d = 1..mtp_depth)
 * is DeepSeek-V3's: two norms, a [2*dim -> dim] projection, one block shaped like the
 * last main layer, and a final norm; it shares the embedding and the output head.
 *
 * Status codes are kernels/common/status.h's: MB_OK, MB_ERR_ARG (invalid config or argument),
 * MB_ERR_PARSE (malformed JSON), MB_ERR_IO (unreadable file), MB_ERR_NOMEM.
 */
#ifndef MB_MODEL_H
#define MB_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define MODEL_NAME_MAX 64
#define MODEL_SOURCE_MAX 512

enum model_attention {
	MODEL_ATTN_GQA,  /* grouped-query attention; MHA is kv_heads == heads */
	MODEL_ATTN_MLA,  /* multi-head latent attention (DeepSeek-V2/V3) */
};

enum model_ffn {
	MODEL_FFN_SWIGLU,  /* three matrices: gate, up, down */
	MODEL_FFN_GELU,    /* two matrices: up, down (GPT) */
};

enum model_norm {
	MODEL_NORM_RMSNORM,    /* one weight vector */
	MODEL_NORM_LAYERNORM,  /* weight and bias vectors */
};

enum model_score_func {
	MODEL_SCORE_SOFTMAX,  /* DeepSeek-V2 */
	MODEL_SCORE_SIGMOID,  /* DeepSeek-V3 */
};

struct model_config {
	char name[MODEL_NAME_MAX];
	char source[MODEL_SOURCE_MAX];  /* where the shapes come from (paper, table, file) */

	/* trunk */
	int64_t vocab;
	int64_t dim;
	int64_t layers;
	int64_t dense_layers;   /* the first dense_layers layers have a dense FFN */
	int64_t inter_dim;      /* hidden size of the dense FFN */
	enum model_ffn ffn;
	enum model_norm norm;
	bool tied_embeddings;   /* output head shares the input embedding matrix */
	int64_t max_positions;  /* learned absolute position embeddings; 0 = rotary (none) */
	bool qkv_bias;          /* bias on the Q, K, V projections (Qwen2.5) */
	bool linear_bias;       /* bias on every linear layer (GPT); implies qkv_bias */

	/* attention */
	enum model_attention attention;
	int64_t heads;
	int64_t kv_heads;          /* GQA only */
	int64_t head_dim;          /* GQA only */
	int64_t q_lora_rank;       /* MLA; 0 = queries not compressed (DeepSeek-V2-Lite) */
	int64_t kv_lora_rank;      /* MLA */
	int64_t qk_nope_head_dim;  /* MLA */
	int64_t qk_rope_head_dim;  /* MLA: the decoupled RoPE query/key part */
	int64_t v_head_dim;        /* MLA */

	/* mixture of experts */
	int64_t routed_experts;     /* 0 = dense model */
	int64_t shared_experts;
	int64_t activated_experts;  /* routed experts per token (top-k) */
	int64_t moe_inter_dim;      /* hidden size of one expert */
	int64_t n_groups;           /* expert groups for group-limited routing */
	int64_t topk_groups;        /* groups kept per token */
	double route_scale;
	enum model_score_func score_func;
	bool expert_bias;           /* per-expert routing bias (auxiliary-loss-free balancing) */

	/* training */
	int64_t mtp_depth;  /* multi-token prediction modules */
	int64_t seq_len;    /* default sequence length */
};

/* ---- presets (presets.c) ---- */

/* model_preset_find returns the built-in preset of that name, or NULL. */
const struct model_config *model_preset_find(const char *name);
/* model_preset_count returns how many presets are built in. */
size_t model_preset_count(void);
/* model_preset_at returns preset i (0 <= i < model_preset_count()), or NULL. */
const struct model_config *model_preset_at(size_t i);
/* model_preset_names writes the preset names, comma separated, into buf (truncated
 * to len, always terminated), for a "hint: known presets are ..." line. */
void model_preset_names(char *buf, size_t len);

/* ---- validation and JSON (config.c) ---- */

/* model_config_validate checks sizes and their consistency. Returns MB_OK, or
 * MB_ERR_ARG with "field: problem" written into why (why may be NULL). Limits, far
 * beyond published models, keep the exact counts inside 64 bits: vocab and seq_len
 * <= 2^22, dim <= 2^17, FFN sizes <= 2^18, heads <= 1024, head sizes <= 4096, LoRA
 * ranks <= 65536, layers <= 1024, routed experts <= 1024, shared <= 64, MTP <= 16. */
int model_config_validate(const struct model_config *cfg, char *why, size_t why_len);

/* model_config_defaults fills cfg with the values a JSON config starts from when it
 * names no preset: name "custom", zero sizes, SwiGLU, RMSNorm, GQA, softmax scores,
 * one group, route_scale 1, seq_len 4096. */
void model_config_defaults(struct model_config *cfg);

/* model_config_from_json reads a config object. Keys are the struct's field names;
 * enumerations are strings ("attention": "mla"|"gqa", "ffn": "swiglu"|"gelu",
 * "norm": "rmsnorm"|"layernorm", "score_func": "softmax"|"sigmoid"). An optional
 * "preset": NAME starts from that preset and the other keys override it; otherwise
 * the defaults apply, and when absent kv_heads = heads, head_dim = dim / heads and,
 * for a dense model, dense_layers = layers. Unknown keys are rejected. The result is
 * validated. Messages read "origin: field: problem" (origin a file name, or NULL for
 * "<json>"), e.g. "m.json: heads: 7 does not divide dim 4096". Returns MB_OK,
 * MB_ERR_PARSE (wrong type, unknown or repeated key) or MB_ERR_ARG (invalid config,
 * unknown preset). */
int model_config_from_json(const cJSON *obj, const char *origin, struct model_config *out,
			   char *why, size_t why_len);

/* model_config_load reads and parses a JSON file with model_config_from_json.
 * Returns also MB_ERR_IO (unreadable) and MB_ERR_NOMEM. */
int model_config_load(const char *path, struct model_config *out, char *why, size_t why_len);

/* The size limit of an input file (model, hardware, baseline JSON, result files). */
#define MODEL_INPUT_MAX_BYTES (64L << 20)

/* model_read_bytes reads a whole regular file of at most limit bytes into a new
 * buffer (free() it) with a NUL after its *len bytes. A FIFO, device or directory is
 * refused without reading (and without blocking). Returns MB_OK, MB_ERR_IO (cannot
 * open or read, not a regular file, over the limit) or MB_ERR_NOMEM, why saying which
 * with the path. (file_read.c) */
int model_read_bytes(const char *path, long limit, char **out, size_t *len, char *why,
		     size_t why_len);
/* model_read_file is model_read_bytes for the JSON inputs, at MODEL_INPUT_MAX_BYTES. */
int model_read_file(const char *path, char **out, char *why, size_t why_len);

/* model_config_to_json returns a new object with every field (the form
 * model_config_from_json reads back to an equal config), or NULL when out of memory. */
cJSON *model_config_to_json(const struct model_config *cfg);

/* model_config_equal tells whether two configs agree in every field. */
bool model_config_equal(const struct model_config *a, const struct model_config *b);

/* Names of the enumerations as they appear in JSON ("?" for an out-of-range value). */
const char *model_attention_name(enum model_attention a);
const char *model_ffn_name(enum model_ffn f);
const char *model_norm_name(enum model_norm n);
const char *model_score_func_name(enum model_score_func s);

#endif
