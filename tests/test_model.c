/*
 * test_model.c - model presets, config validation and the JSON form of a config.
 * Accounting is in test_model_accounting.c, baselines and claims in
 * test_model_claims.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "model.h"
#include "status.h"

START_TEST(every_preset_is_valid_and_named_once)
{
	char why[256] = "";
	const struct model_config *c = model_preset_at(_i);

	ck_assert_ptr_nonnull(c);
	ck_assert_msg(model_config_validate(c, why, sizeof(why)) == MB_OK, "%s: %s", c->name,
		      why);
	ck_assert_ptr_eq(model_preset_find(c->name), c);
	ck_assert_msg(strlen(c->source) > 20, "%s has no source", c->name);
	for (size_t j = 0; j < model_preset_count(); j++)
		if (j != (size_t)_i)
			ck_assert_str_ne(model_preset_at(j)->name, c->name);
}
END_TEST

START_TEST(required_presets_exist)
{
	const char *need[] = { "deepseek-v3", "deepseek-v2", "llama3-8b", "llama3-70b",
			       "llama3-405b", "qwen2.5-72b", "gpt-22b", "gpt-175b", "gpt-1t",
			       "v3-tiny", "v3-small" };
	char names[512];

	model_preset_names(names, sizeof(names));
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		ck_assert_msg(model_preset_find(need[i]) != NULL, "missing %s", need[i]);
		ck_assert_msg(strstr(names, need[i]) != NULL, "%s not listed", need[i]);
	}
	ck_assert_ptr_null(model_preset_find("deepseek-v4"));
	ck_assert_ptr_null(model_preset_find(NULL));
	ck_assert_ptr_null(model_preset_at(model_preset_count()));
}
END_TEST

START_TEST(preset_names_truncate_safely)
{
	char small[8];

	memset(small, 'x', sizeof(small));
	model_preset_names(small, sizeof(small));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_str_eq(small, "deepsee");
}
END_TEST

START_TEST(proxies_keep_deepseek_v3_structure)
{
	const char *proxies[] = { "v3-tiny", "v3-small" };

	for (int i = 0; i < 2; i++) {
		const struct model_config *c = model_preset_find(proxies[i]);
		ck_assert_int_eq(c->attention, MODEL_ATTN_MLA);
		ck_assert_int_gt(c->q_lora_rank, 0);
		ck_assert_int_gt(c->dense_layers, 0);
		ck_assert_int_lt(c->dense_layers, c->layers);
		ck_assert_int_gt(c->shared_experts, 0);
		ck_assert_int_gt(c->n_groups, c->topk_groups);
		ck_assert_int_eq(c->score_func, MODEL_SCORE_SIGMOID);
		ck_assert(c->expert_bias);
		ck_assert_int_ge(c->mtp_depth, 1);
	}
}
END_TEST

/* One invalid override of a preset and the words the error must contain. */
static const struct {
	const char *preset;
	const char *json;    /* members added to {"preset": ...} */
	const char *field;   /* the field the message must name first */
	const char *words;
} bad[] = {
	{ "llama3-8b", "\"heads\": 7, \"kv_heads\": 7", "heads", "does not divide dim" },
	{ "llama3-8b", "\"kv_heads\": 3", "kv_heads", "does not divide heads" },
	{ "llama3-8b", "\"kv_heads\": 64", "kv_heads", "exceeds" },
	{ "v3-tiny", "\"activated_experts\": 9", "activated_experts", "exceeds" },
	{ "v3-tiny", "\"n_groups\": 3", "n_groups", "does not divide routed_experts" },
	{ "v3-tiny", "\"topk_groups\": 5", "topk_groups", "exceeds" },
	{ "v3-tiny", "\"topk_groups\": 1, \"activated_experts\": 3", "activated_experts",
	  "kept groups" },
	{ "v3-tiny", "\"dim\": -256", "dim", "at least 1" },
	{ "v3-tiny", "\"vocab\": 0", "vocab", "at least 1" },
	{ "v3-tiny", "\"q_lora_rank\": -1", "q_lora_rank", "negative" },
	{ "v3-tiny", "\"kv_lora_rank\": 0", "kv_lora_rank", "at least 1" },
	{ "v3-tiny", "\"head_dim\": 64", "head_dim", "unused with MLA" },
	{ "v3-tiny", "\"dense_layers\": 4", "dense_layers", "never used" },
	{ "v3-tiny", "\"route_scale\": 0", "route_scale", "positive" },
	{ "v3-tiny", "\"mtp_depth\": -1", "mtp_depth", "negative" },
	{ "v3-tiny", "\"seq_len\": 0", "seq_len", "at least 1" },
	{ "v3-tiny", "\"layers\": 5000", "layers", "limit" },
	{ "llama3-8b", "\"q_lora_rank\": 512", "q_lora_rank", "unused with GQA" },
	{ "llama3-8b", "\"dense_layers\": 16", "dense_layers", "every layer must be dense" },
	{ "llama3-8b", "\"moe_inter_dim\": 512", "moe_inter_dim", "no routed experts" },
	{ "gpt-22b", "\"seq_len\": 4096", "seq_len", "exceeds max_positions" },
	{ "deepseek-v3", "\"qkv_bias\": true", "qkv_bias", "not modelled for MLA" },
};

START_TEST(invalid_config_names_file_and_field)
{
	char text[512], why[512] = "", expect[128];
	struct model_config c;
	cJSON *doc;

	snprintf(text, sizeof(text), "{\"preset\": \"%s\", %s}", bad[_i].preset, bad[_i].json);
	doc = cJSON_Parse(text);
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(model_config_from_json(doc, "bad.json", &c, why, sizeof(why)),
			 MB_ERR_ARG);
	snprintf(expect, sizeof(expect), "bad.json: %s: ", bad[_i].field);
	ck_assert_msg(strncmp(why, expect, strlen(expect)) == 0, "'%s' lacks '%s'", why, expect);
	ck_assert_msg(strstr(why, bad[_i].words) != NULL, "'%s' lacks '%s'", why, bad[_i].words);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(validate_checks_structs_directly)
{
	struct model_config c = *model_preset_find("deepseek-v3");
	char why[256];

	c.topk_groups = 9;
	ck_assert_int_eq(model_config_validate(&c, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "topk_groups"));
	c = *model_preset_find("deepseek-v3");
	c.attention = (enum model_attention)7;
	ck_assert_int_eq(model_config_validate(&c, why, sizeof(why)), MB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(why, "attention"));
	c = *model_preset_find("deepseek-v3");
	c.name[0] = '\0';
	ck_assert_int_eq(model_config_validate(&c, NULL, 0), MB_ERR_ARG);
	ck_assert_int_eq(model_config_validate(NULL, why, sizeof(why)), MB_ERR_ARG);
}
END_TEST

START_TEST(json_round_trip_of_every_preset)
{
	const struct model_config *c = model_preset_at(_i);
	struct model_config back;
	char why[256] = "";
	cJSON *obj = model_config_to_json(c);
	char *text = cJSON_Print(obj);
	cJSON *parsed = cJSON_Parse(text);

	ck_assert_ptr_nonnull(parsed);
	ck_assert_msg(model_config_from_json(parsed, "rt.json", &back, why, sizeof(why)) == MB_OK,
		      "%s", why);
	ck_assert(model_config_equal(c, &back));
	back.route_scale += 0.5;
	ck_assert(!model_config_equal(c, &back));
	cJSON_Delete(parsed);
	cJSON_free(text);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(json_without_preset_derives_absent_fields)
{
	const char *text = "{\"name\": \"mha\", \"vocab\": 1000, \"dim\": 512, \"layers\": 2, "
			   "\"inter_dim\": 1024, \"heads\": 8, \"ffn\": \"gelu\"}";
	cJSON *doc = cJSON_Parse(text);
	struct model_config c;
	char why[256] = "";

	ck_assert_msg(model_config_from_json(doc, NULL, &c, why, sizeof(why)) == MB_OK, "%s", why);
	ck_assert_int_eq(c.kv_heads, 8);
	ck_assert_int_eq(c.head_dim, 64);
	ck_assert_int_eq(c.dense_layers, 2);
	ck_assert_int_eq(c.ffn, MODEL_FFN_GELU);
	ck_assert_int_eq(c.norm, MODEL_NORM_RMSNORM);
	ck_assert_int_eq(c.seq_len, 4096);
	cJSON_Delete(doc);
}
END_TEST

/* Malformed members and the message each must give. */
static const struct {
	const char *json;
	const char *words;
} malformed[] = {
	{ "{\"preset\": \"v3-tiny\", \"hedas\": 4}", "t.json: hedas: unknown field" },
	{ "{\"preset\": \"v3-tiny\", \"heads\": \"four\"}", "t.json: heads: expected an integer" },
	{ "{\"preset\": \"v3-tiny\", \"heads\": 4.5}", "t.json: heads: expected an integer" },
	{ "{\"preset\": \"v3-tiny\", \"attention\": \"mqa\"}", "attention: expected one of" },
	{ "{\"preset\": \"v3-tiny\", \"tied_embeddings\": 1}", "tied_embeddings: expected true" },
	{ "{\"preset\": \"v3-tiny\", \"heads\": 4, \"heads\": 4}", "heads: given twice" },
	{ "{\"preset\": \"v3-huge\"}", "known: deepseek-v3" },
	{ "{\"preset\": 3}", "t.json: preset: expected a string" },
	{ "[1, 2]", "t.json: expected a JSON object" },
};

START_TEST(malformed_json_is_rejected_with_field)
{
	cJSON *doc = cJSON_Parse(malformed[_i].json);
	struct model_config c;
	char why[512] = "";
	int err;

	ck_assert_ptr_nonnull(doc);
	err = model_config_from_json(doc, "t.json", &c, why, sizeof(why));
	ck_assert(err == MB_ERR_PARSE || err == MB_ERR_ARG);
	ck_assert_msg(strstr(why, malformed[_i].words) != NULL, "'%s' lacks '%s'", why,
		      malformed[_i].words);
	cJSON_Delete(doc);
}
END_TEST

/* write_temp writes text to a new temporary file and returns its path (static). */
static const char *write_temp(const char *text)
{
	static char path[64];
	int fd;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/test_model_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

START_TEST(load_reads_files_and_names_them)
{
	struct model_config c;
	char why[512] = "";
	const char *path = write_temp("{\"preset\": \"deepseek-v3\", \"name\": \"v3-30l\", "
				      "\"layers\": 30}");

	ck_assert_msg(model_config_load(path, &c, why, sizeof(why)) == MB_OK, "%s", why);
	ck_assert_str_eq(c.name, "v3-30l");
	ck_assert_int_eq(c.layers, 30);
	ck_assert_int_eq(c.kv_lora_rank, 512);
	unlink(path);

	path = write_temp("{\"preset\": \"deepseek-v3\",");
	ck_assert_int_eq(model_config_load(path, &c, why, sizeof(why)), MB_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, path));
	ck_assert_ptr_nonnull(strstr(why, "not valid JSON"));
	unlink(path);

	ck_assert_int_eq(model_config_load("/nonexistent/m.json", &c, why, sizeof(why)),
			 MB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(why, "/nonexistent/m.json"));
}
END_TEST

START_TEST(enum_names_match_json_spellings)
{
	ck_assert_str_eq(model_attention_name(MODEL_ATTN_MLA), "mla");
	ck_assert_str_eq(model_attention_name(MODEL_ATTN_GQA), "gqa");
	ck_assert_str_eq(model_ffn_name(MODEL_FFN_GELU), "gelu");
	ck_assert_str_eq(model_norm_name(MODEL_NORM_LAYERNORM), "layernorm");
	ck_assert_str_eq(model_score_func_name(MODEL_SCORE_SIGMOID), "sigmoid");
	ck_assert_str_eq(model_attention_name((enum model_attention)9), "?");
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *presets = tcase_create("presets");
	TCase *limits = tcase_create("validation");
	TCase *json = tcase_create("json");
	int n = (int)model_preset_count();

	tcase_add_loop_test(presets, every_preset_is_valid_and_named_once, 0, n);
	tcase_add_test(presets, required_presets_exist);
	tcase_add_test(presets, preset_names_truncate_safely);
	tcase_add_test(presets, proxies_keep_deepseek_v3_structure);
	tcase_add_loop_test(limits, invalid_config_names_file_and_field, 0,
			    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(limits, validate_checks_structs_directly);
	tcase_add_loop_test(json, json_round_trip_of_every_preset, 0, n);
	tcase_add_test(json, json_without_preset_derives_absent_fields);
	tcase_add_loop_test(json, malformed_json_is_rejected_with_field, 0,
			    (int)(sizeof(malformed) / sizeof(malformed[0])));
	tcase_add_test(json, load_reads_files_and_names_them);
	tcase_add_test(json, enum_names_match_json_spellings);
	suite_add_tcase(s, presets);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, json);
	return s;
}

MB_CHECK_MAIN(model_suite)
