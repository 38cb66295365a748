/*
 * test_train_memory.c - Check suite for the training step's memory (model/train
 * net_memory.c, net_alloc in net_impl.h, model/memory.c): the terms taken from the
 * model's allocations equal its own accounting exactly (parameters, gradients and
 * moments from the layout's tensor count; saved activations from the structure, block
 * by block, with the attention kernels' workspace counts; the terms summing to every
 * byte the model holds), and model/memory.c's activation prediction is within 10% of
 * what the model keeps for v3-tiny and llama3-tiny at two batch x sequence sizes
 * (exactly equal for the dense llama3-tiny); a parallel part's prediction
 * (net_memory_predict_part) equals its allocation's weights, gradients and moments and,
 * for llama3-tiny, its activations.
 *
 * Presets and sizes are drawn from a fixed list; accounting tests use exact values.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "accounting.h"
#include "check_main.h"
#include "mla.h"
#include "net.h"
#include "status.h"

/* The step's cases: preset, precision, batch, seq (vocabulary 256 as `step` uses). */
static const struct {
	const char *preset;
	enum net_precision prec;
	int batch, seq;
} cases[] = {
	{ "v3-tiny", NET_FP32, 2, 64 },     { "v3-tiny", NET_FP32, 4, 128 },
	{ "llama3-tiny", NET_FP32, 2, 64 }, { "llama3-tiny", NET_FP32, 4, 128 },
	{ "v3-tiny", NET_BF16, 2, 64 },     { "llama3-tiny", NET_FP8, 4, 128 },
};

/* byte_config is the preset at vocabulary 256 and the case's sequence. */
static struct model_config byte_config(int i)
{
	struct model_config c = *model_preset_find(cases[i].preset);
	c.vocab = 256;
	c.seq_len = cases[i].seq;
	return c;
}

/* kept_elements counts, by hand from the structure net.h states, the activation
 * elements a forward keeps: per block its input (first and MTP blocks; the others reuse
 * the previous output), the two norms' outputs, the residual, the output, the attention
 * input's low-precision copy (bf16 and fp8), the attention kernel's saved workspace, and
 * the FFN's (SwiGLU: gate, up, product; MoE: scores, gating weights, per-sequence
 * loads, the shared hidden, and each routed copy's input, hidden and output); per MTP
 * depth the embedding, its two normed halves and their concatenation; per head pass the
 * final norm's output and the logits. */
static double kept_elements(const struct model_config *c, enum net_precision p, int B, int S)
{
	double T = (double)B * S, d = (double)c->dim, K = (double)c->activated_experts;
	double E = (double)c->routed_experts, im = (double)c->moe_inter_dim;
	double is = im * (double)c->shared_experts, D = (double)c->mtp_depth, n = 0;
	struct mla_config mc = { (int)c->dim, (int)c->heads, (int)c->q_lora_rank,
				 (int)c->kv_lora_rank, (int)c->qk_nope_head_dim,
				 (int)c->qk_rope_head_dim, (int)c->v_head_dim, 1e4, 1e-6, NULL };
	struct gqa_config gc = { (int)c->dim, (int)c->heads, (int)c->kv_heads, (int)c->head_dim,
				 true, 1e4, NULL };
	double ws = c->attention == MODEL_ATTN_MLA ? (double)mla_workspace_count(&mc, B, S)
						   : (double)gqa_workspace_count(&gc, B, S);
	ck_assert(ws > 0);
	for (int64_t i = 0; i < c->layers + c->mtp_depth; i++) {
		bool mtp = i >= c->layers, moe = mtp ? c->dense_layers < c->layers
						     : i >= c->dense_layers;
		n += (i == 0 || mtp ? T * d : 0) + 4 * T * d + (p != NET_FP32 ? T * d : 0) + ws;
		if (moe)
			n += T * E + T * K + B * E + 3 * T * is + T * K * (2 * d + 3 * im);
		else
			n += 3 * T * (double)c->inter_dim;
	}
	n += D * 5 * T * d;
	return n + (1 + D) * T * (d + (double)c->vocab);
}

START_TEST(allocation_terms_equal_the_models_accounting)
{
	struct model_config c = byte_config(_i);
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m = NULL;
	struct net_memory mem;
	char why[256];
	ck_assert_msg(net_layout_build(&c, &L, why, sizeof(why)) == MB_OK, "%s", why);
	net_options_default(&o);
	o.precision = cases[_i].prec;
	ck_assert_int_eq(net_create_f32(&L, &o, cases[_i].batch, cases[_i].seq, 7, &m), MB_OK);
	net_memory_f32(m, &mem);
	double P = (double)L.total;
	ck_assert_double_eq((double)mem.weights, 4 * P);
	ck_assert_double_eq((double)mem.grads, 4 * P);
	ck_assert_double_eq((double)mem.optimizer, 8 * P);
	ck_assert_double_eq((double)mem.activations,
			    4 * kept_elements(&c, cases[_i].prec, cases[_i].batch, cases[_i].seq));
	ck_assert_uint_gt(mem.scratch, 0);
	ck_assert_uint_eq(mem.total, mem.weights + mem.grads + mem.optimizer + mem.activations +
					     mem.scratch);
	ck_assert_uint_eq(net_bytes_f32(m), mem.total);
	net_destroy_f32(m);
	net_layout_free(&L);
}
END_TEST

START_TEST(memory_model_predicts_the_kept_activations)
{
	struct model_config c = byte_config(_i);
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m = NULL;
	struct net_memory mem;
	struct model_memory pred;
	double ratio[NET_MEM_TERMS];
	ck_assert_int_eq(net_layout_build(&c, &L, NULL, 0), MB_OK);
	net_options_default(&o);
	ck_assert_int_eq(net_create_f32(&L, &o, cases[_i].batch, cases[_i].seq, 7, &m), MB_OK);
	net_memory_f32(m, &mem);
	ck_assert_int_eq(net_memory_predict(&c, cases[_i].batch, cases[_i].seq, 1, false, &pred), MB_OK);
	net_memory_ratios(&mem, &pred, ratio);
	/* weights, gradients and moments: the same parameter count, 4 bytes each */
	for (int t = 0; t < 3; t++)
		ck_assert_double_eq(ratio[t], 1.0);
	ck_assert_msg(fabs(ratio[3] - 1.0) <= 0.10, "%s b%d s%d: activations %.0f kept, %.0f "
		      "predicted (ratio %.4f)", cases[_i].preset, cases[_i].batch, cases[_i].seq,
		      (double)mem.activations, pred.activation_bytes, ratio[3]);
	if (c.attention == MODEL_ATTN_GQA)
		ck_assert_double_eq((double)mem.activations, pred.activation_bytes);
	ck_assert(isnan(ratio[4]));
	net_destroy_f32(m);
	net_layout_free(&L);
}
END_TEST

/* Parts of a parallel layout (net_part) and their parameters counted by hand for
 * v3-tiny at vocabulary 256 (dim 256, 4 layers, the first dense, MTP depth 1): a layer's
 * attention and norms 127680 (MLA: q_a 32768 + its norm 128, q_b 24576, kv_a 20480 + its
 * norm 64, kv_b 16384, o 32768; norms 512), the dense FFN 589824, an MoE block's router
 * 2056 (with the bias), shared expert 98304 and routed experts 8 x 98304, embedding and
 * head 65536 each, final norm 256, the MTP module an MoE block plus its norms and
 * projection 131840. 0: not counted by hand. */
static const struct {
	const char *preset;
	struct net_part part;
	double params;
} parts[] = {
	/* pp2 stage 0: the embedding and layers 0-1 */
	{ "v3-tiny", { 1, 0, 1, 0, 1, { 0 }, { 2 }, true, false }, 1797512 },
	/* pp2 stage 1: layers 2-3, the head, MTP and the embedding's copy */
	{ "v3-tiny", { 1, 0, 1, 0, 1, { 2 }, { 4 }, true, true }, 3306584 },
	/* ep2 rank 1: the whole model with 4 of the 8 experts of each MoE block */
	{ "v3-tiny", { 1, 0, 2, 1, 0, { 0 }, { 0 }, true, true }, 3465696 },
	/* tp2 rank 0 (experts sliced too) and ep2 x pp2 */
	{ "v3-tiny", { 2, 0, 1, 0, 0, { 0 }, { 0 }, true, true }, 0 },
	{ "v3-tiny", { 1, 0, 2, 0, 1, { 2 }, { 4 }, true, true }, 0 },
	/* interleaved: two ranges on one rank */
	{ "llama3-tiny", { 1, 0, 1, 0, 2, { 0, 2 }, { 1, 3 }, true, false }, 0 },
	{ "llama3-tiny", { 1, 0, 1, 0, 1, { 2 }, { 4 }, false, true }, 0 },
	{ "llama3-tiny", { 2, 1, 1, 0, 0, { 0 }, { 0 }, true, true }, 0 },
};

/* A part's prediction (net_memory_predict_part, memory.c's model_memory_part): the
 * weights, gradients and moments exactly the part's allocation (its parameter count
 * by hand where given); the saved activations exactly equal for the dense GQA model
 * (including a stage's output buffer and an interleaved rank's two ranges) and within
 * 10% for v3-tiny, whose EP part allocates its routed rows for the worst case. */
START_TEST(part_prediction_is_the_parts_allocation)
{
	struct model_config c = *model_preset_find(parts[_i].preset);
	struct net_layout L;
	struct net_options o;
	struct net_f32 *m = NULL;
	struct net_memory mem;
	struct model_memory pred;
	char why[256];
	int B = 2, S = 64;
	c.vocab = 256;
	c.seq_len = S;
	ck_assert_msg(net_layout_build_part(&c, &parts[_i].part, &L, why, sizeof(why)) == MB_OK,
		      "%s", why);
	if (parts[_i].params > 0)
		ck_assert_double_eq((double)L.total, parts[_i].params);
	net_options_default(&o);
	ck_assert_int_eq(net_create_f32(&L, &o, B, S, 7, &m), MB_OK);
	net_memory_f32(m, &mem);
	/* memory.c carves EP out of the data-parallel ranks: dp = ep */
	int dp = parts[_i].part.ep;
	ck_assert_int_eq(net_memory_predict_part(&c, &parts[_i].part, B, S, dp, false, 1, &pred),
			 MB_OK);
	ck_assert_double_eq(pred.weight_bytes, (double)mem.weights);
	ck_assert_double_eq(pred.grad_bytes, (double)mem.grads);
	ck_assert_double_eq(pred.optimizer_bytes, (double)mem.optimizer);
	ck_assert_double_eq(pred.weight_bytes, 4.0 * (double)L.total);
	double r = (double)mem.activations / pred.activation_bytes;
	if (c.attention == MODEL_ATTN_GQA && parts[_i].part.tp == 1)
		ck_assert_double_eq((double)mem.activations, pred.activation_bytes);
	ck_assert_msg(fabs(r - 1) <= 0.10, "part %d: activations %.0f kept, %.0f predicted", _i,
		      (double)mem.activations, pred.activation_bytes);
	/* the micro-batches in flight multiply the activations alone */
	struct model_memory three;
	ck_assert_int_eq(net_memory_predict_part(&c, &parts[_i].part, B, S, dp, false, 3, &three),
			 MB_OK);
	ck_assert_double_eq(three.activation_bytes, 3 * pred.activation_bytes);
	ck_assert_double_eq(three.weight_bytes, pred.weight_bytes);
	net_destroy_f32(m);
	net_layout_free(&L);
}
END_TEST

/* memory.c's whole-model answer under PP places the embedding's copy on the last stage
 * for MTP (v3-tiny, as `train --pp` keeps it). */
START_TEST(pipeline_last_stage_keeps_the_embedding_copy_for_mtp)
{
	struct model_config v3 = *model_preset_find("v3-tiny");
	struct model_layout lay;
	struct model_memory m1;
	model_layout_default(&lay, &v3);
	lay.pp = 2;
	ck_assert_int_eq(model_memory_per_gpu(&v3, &lay, &m1, NULL, 0), MB_OK);
	/* stage 1 (fullest): layers 2-3 (MoE), head, MTP, the 4096 x 256 table's copy */
	ck_assert_int_eq(m1.stage, 1);
	ck_assert_uint_eq(m1.params_dense, 2 * 228040 + 256 + 4096 * 256 + 359880 + 4096 * 256);
}
END_TEST

/* The micro-batches in flight per schedule: GPipe all, 1F1B up to pp - stage. */
START_TEST(micro_batches_in_flight_follow_the_schedule)
{
	ck_assert_int_eq(net_memory_in_flight("1f1b", 4, 0, 8), 4);
	ck_assert_int_eq(net_memory_in_flight("1f1b", 4, 3, 8), 1);
	ck_assert_int_eq(net_memory_in_flight("1f1b", 4, 0, 2), 2);
	ck_assert_int_eq(net_memory_in_flight("gpipe", 4, 3, 8), 8);
	ck_assert_int_eq(net_memory_in_flight("gpipe", 1, 0, 1), 1);
	ck_assert_int_eq(net_memory_in_flight("1f1b", 1, 0, 1), 1);
}
END_TEST

static Suite *train_memory_suite(void)
{
	Suite *s = suite_create("train_memory");
	TCase *acc = tcase_create("accounting");
	tcase_add_loop_test(acc, allocation_terms_equal_the_models_accounting, 0,
			    (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, acc);
	TCase *pred = tcase_create("prediction");
	tcase_add_loop_test(pred, memory_model_predicts_the_kept_activations, 0, 4);
	tcase_add_loop_test(pred, part_prediction_is_the_parts_allocation, 0,
			    (int)(sizeof(parts) / sizeof(parts[0])));
	tcase_add_test(pred, pipeline_last_stage_keeps_the_embedding_copy_for_mtp);
	tcase_add_test(pred, micro_batches_in_flight_follow_the_schedule);
	suite_add_tcase(s, pred);
	return s;
}

MB_CHECK_MAIN(train_memory_suite)
