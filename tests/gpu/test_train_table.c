/*
 * test_train_table.c (GPU) - the CUDA op table of the training step (net_cuda_ops_open,
 * model/train/net_ops_cuda.c) entry by entry against the CPU table (net_cpu_ops_f32): the
 * same fresh random inputs (MB_TEST_SEED replays) through both, at step-sized shapes off
 * the block sizes, device outputs poisoned first. Tolerances: exact for gathers, copies,
 * the selection and the expert order; 1e-5 of the largest reference value for FP32; 1e-4
 * for BF16 linear layers (both sides round the operands the same way; only the order of
 * the FP32 sums differs).
 * Then the whole step: the model in device memory on the CUDA table (net_create_f32_cuda)
 * against the CPU model, same weights and batch: loss within 1e-4 (FP32) / 1e-2 (BF16)
 * relative, every trainable tensor's gradient within 1e-3 / 1e-2 relative (L2), three
 * AdamW steps' losses tracking. The MLA / GQA blocks (net_ops_attn_cuda.c) run on the
 * device with the CUDA attention core on BF16 operands (FP32 accumulation), where the CPU
 * core is FP32: the blocks and the whole step are held to BF16 tolerances (3e-2 for a
 * block, 1e-2 for the step) under fp32 too. Under fp8 (every projection, the blocks'
 * too, through cuBLASLt block scaling) the core's BF16 rounding moves inputs of the next
 * E4M3 quantisation across its ties, so the device and the CPU differ by FP8 steps of a
 * few elements: a block within 0.15 (attn_block_emu measures up to 7e-2 for the same
 * mix), the step at the device step's FP8 tolerances (loss 5e-2, gradients 0.25).
 * Exits 77 without a device.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

#include "mla.h"
#include "model.h"
#include "net.h"
#include "net_ops.h"
#include "rng.h"
#include "route.h"
#include "status.h"

#include "gpu_main.h"
#include "../test_seed.h"

enum { TB = 2, TS = 37, TT = TB * TS, TD = 200, TE = 32, TK = 4, TV = 300 };

static const struct net_ops_f32 *cu;
static const struct net_ops_f32 *cpu = &net_cpu_ops_f32;

/* The attention blocks of the attention_blocks test: MLA at v3-tiny's head dims (48/32,
 * an exact instantiation of the core) with and without the q latent, and GQA (4 query
 * heads on 2 kv heads of 48: the core's square 64 tile), at T = 74 (off the 64 tile). */
static struct mla_config tmla[2] = { { TD, 4, 64, 48, 32, 16, 32, 10000, 1e-6, NULL },
				     { TD, 2, 0, 40, 32, 16, 32, 10000, 1e-6, NULL } };
static struct gqa_config tgqa = { TD, 4, 2, 48, true, 10000, NULL };

static void open_table(void)
{
	size_t a = net_cuda_attn_bytes(&tmla[0], &tgqa, TB, TS);
	size_t b = net_cuda_attn_bytes(&tmla[1], NULL, TB, TS);
	struct net_cuda_sizes z = { TT, TT * TK, TD, TE, TV, 1L << 21, 4096, 8L << 20,
				    a > b ? a : b, true };
	ck_assert_int_eq(net_cuda_ops_open(&z, &cu), MB_OK);
}

static void close_table(void)
{
	net_cuda_ops_close();
}

/* uniform returns n floats uniform in [lo, hi) from the run's seed and stream id. */
static float *uniform(size_t n, float lo, float hi, uint64_t id)
{
	struct mb_rng rng;
	float *x = malloc(n * sizeof(float) + 1);
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, test_seed(), id);
	mb_rng_fill_uniform_f32(&rng, x, n, lo, hi);
	return x;
}

/* dev returns a device copy of bytes at h (NULL: poisoned, all bits set). */
static void *dev(const void *h, size_t bytes)
{
	void *d = NULL;
	ck_assert_int_eq(cudaMalloc(&d, bytes + 16), cudaSuccess);
	if (h)
		ck_assert_int_eq(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
	else
		ck_assert_int_eq(cudaMemset(d, 0xff, bytes + 16), cudaSuccess);
	/* the table's stream is non-blocking: these legacy-stream copies must be done first */
	ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
	return d;
}

/* back waits for the table's stream and returns a host copy of d, freeing d. */
static void *back(void *d, size_t bytes)
{
	void *h = malloc(bytes + 1);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(net_cuda_ops_sync(), MB_OK);
	ck_assert_int_eq(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
	cudaFree(d);
	return h;
}

/* expect_close compares n floats of the device result d (freed) with ref. */
static void expect_close(const char *what, void *d, const float *ref, size_t n, double tol)
{
	float *x = back(d, n * sizeof(float));
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		num = isfinite(x[i]) || !isfinite(ref[i]) ? fmax(num, fabs((double)x[i] - ref[i]))
							  : INFINITY;
		den = fmax(den, fabs((double)ref[i]));
	}
	double err = den > 0 ? num / den : num;
	printf("%-44s max err %.3g (tol %.2g)\n", what, err, tol);
	ck_assert_msg(err <= tol, "%s: max err %g > %g (seed %llu)", what, err, tol,
		      (unsigned long long)test_seed());
	free(x);
}

/* expect_ints compares n ints of the device result d (freed) with ref, exactly. */
static void expect_ints(const char *what, void *d, const int32_t *ref, size_t n)
{
	int32_t *x = back(d, n * sizeof(int32_t));
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += x[i] != ref[i];
	printf("%-44s %zu of %zu differ\n", what, bad, n);
	ck_assert_msg(bad == 0, "%s: %zu differ (seed %llu)", what, bad,
		      (unsigned long long)test_seed());
	free(x);
}

#define FB(n) ((n) * sizeof(float))

/* lin_case: one linear layer's three GEMMs at precision p on both tables. */
static void lin_case(enum net_precision p, int t, int in, int out, uint64_t id, double tol)
{
	float *x = uniform((size_t)t * in, -1, 1, id), *w = uniform((size_t)out * in, -1, 1, id + 1);
	float *dy = uniform((size_t)t * out, -1, 1, id + 2), *dx = uniform((size_t)t * in, -1, 1, id + 3);
	float *dw = uniform((size_t)out * in, -1, 1, id + 4), *y = malloc(FB((size_t)t * out));
	void *dx_, *dw_, *x_ = dev(x, FB((size_t)t * in)), *w_ = dev(w, FB((size_t)out * in));
	void *dy_ = dev(dy, FB((size_t)t * out)), *y_ = dev(NULL, FB((size_t)t * out));
	dx_ = dev(dx, FB((size_t)t * in));
	dw_ = dev(dw, FB((size_t)out * in));
	cpu->linear_fwd(p, true, t, in, out, x, w, y);
	cu->linear_fwd(p, true, t, in, out, x_, w_, y_);
	cpu->linear_bwd(p, true, t, in, out, x, w, dy, dx, true, dw);
	cu->linear_bwd(p, true, t, in, out, x_, w_, dy_, dx_, true, dw_);
	ck_assert_int_eq(net_cuda_ops_status(), MB_OK);
	char what[3][64];
	snprintf(what[0], sizeof(what[0]), "linear fwd %s", net_precision_name(p));
	snprintf(what[1], sizeof(what[1]), "linear dgrad (acc) %s", net_precision_name(p));
	snprintf(what[2], sizeof(what[2]), "linear wgrad (added) %s", net_precision_name(p));
	expect_close(what[0], y_, y, (size_t)t * out, tol);
	expect_close(what[1], dx_, dx, (size_t)t * in, tol);
	expect_close(what[2], dw_, dw, (size_t)out * in, tol);
	cudaFree(x_), cudaFree(w_), cudaFree(dy_);
	free(x), free(w), free(dy), free(dx), free(dw), free(y);
}

START_TEST(linear_layers)
{
	lin_case(NET_FP32, TT, TD, 130, 10, 1e-5);
	lin_case(NET_BF16, TT, TD, 130, 20, 1e-4);
	lin_case(NET_FP32, TT * TK - 3, 2 * TD, TD, 30, 1e-5);
	/* fp8 on cuBLASLt's block scaling against the CPU's emulation: the same codes (the
	 * quantisation is bit-equal), FP32 sums in another order; K off 16 and 128 (130
	 * outputs: Dgrad's K) and expert-like row counts (Wgrad's K) */
	lin_case(NET_FP8, TT, TD, 130, 50, 1e-4);
	lin_case(NET_FP8, TT * TK - 3, 2 * TD, TD, 60, 1e-4);
	/* the round trips the attention blocks consume: codes times scales, exactly */
	float *x = uniform(5 * 300, -4, 4, 40), *r = malloc(FB(5 * 300));
	void *x_ = dev(x, FB(5 * 300)), *y_ = dev(NULL, FB(5 * 300));
	cu->quant_act(NET_FP8, 5, 300, x_, y_);
	cpu->quant_act(NET_FP8, 5, 300, x, r);
	expect_close("quant_act fp8 (1x128)", y_, r, 5 * 300, 0);
	y_ = dev(NULL, FB(5 * 300));
	cu->quant_weight(NET_FP8, 5, 300, x_, y_);
	cpu->quant_weight(NET_FP8, 5, 300, x, r);
	expect_close("quant_weight fp8 (128x128)", y_, r, 5 * 300, 0);
	ck_assert_int_eq(net_cuda_ops_status(), MB_OK);
	cudaFree(x_), free(x), free(r);
}
END_TEST

START_TEST(norm_swiglu_embedding)
{
	size_t n = (size_t)TT * TD;
	float *x = uniform(n, -2, 2, 100), *g = uniform(TD, 0.5f, 1.5f, 101), *dy = uniform(n, -1, 1, 102);
	float *dg = uniform(TD, -1, 1, 103), *y = malloc(FB(n)), *dx = malloc(FB(n)), *wk = malloc(FB(TD));
	void *x_ = dev(x, FB(n)), *g_ = dev(g, FB(TD)), *dy_ = dev(dy, FB(n)), *dg_ = dev(dg, FB(TD));
	void *y_ = dev(NULL, FB(n)), *dx_ = dev(NULL, FB(n));
	ck_assert_int_eq(cpu->rmsnorm_fwd(x, g, TT, TD, 1e-6, y), MB_OK);
	ck_assert_int_eq(cu->rmsnorm_fwd(x_, g_, TT, TD, 1e-6, y_), MB_OK);
	ck_assert_int_eq(cpu->rmsnorm_bwd(dy, x, g, TT, TD, 1e-6, dx, dg, wk), MB_OK);
	ck_assert_int_eq(cu->rmsnorm_bwd(dy_, x_, g_, TT, TD, 1e-6, dx_, dg_, NULL), MB_OK);
	expect_close("rmsnorm fwd", y_, y, n, 1e-5);
	expect_close("rmsnorm bwd dx", dx_, dx, n, 1e-5);
	expect_close("rmsnorm bwd dgain (added)", dg_, dg, TD, 1e-5);
	/* SwiGLU: x as gate, dy as up; backward in place as the model calls it */
	void *h_ = dev(NULL, FB(n)), *da_ = dev(NULL, FB(n));
	void *db_ = dev(y, FB(n));
	cpu->swiglu_fwd(x, dy, TT, TD, dx);
	ck_assert_int_eq(cu->swiglu_fwd(x_, dy_, TT, TD, h_), MB_OK);
	expect_close("swiglu fwd", h_, dx, n, 1e-5);
	cpu->swiglu_bwd(y, x, dy, TT, TD, dx, y);
	ck_assert_int_eq(cu->swiglu_bwd(db_, x_, dy_, TT, TD, da_, db_), MB_OK);
	expect_close("swiglu bwd dgate", da_, dx, n, 1e-5);
	expect_close("swiglu bwd dup (in place)", db_, y, n, 1e-5);
	/* embedding over the whole vocabulary (ids with repeats) */
	float *tab = uniform((size_t)TV * TD, -1, 1, 104), *u = uniform(TT, 0, 1, 105);
	int32_t ids[TT];
	for (int t = 0; t < TT; t++)
		ids[t] = t % 5 == 0 ? 7 : (int32_t)(u[t] * TV);
	void *tab_ = dev(tab, FB((size_t)TV * TD)), *ids_ = dev(ids, sizeof(ids)), *e_ = dev(NULL, FB(n));
	cpu->embed_fwd(tab, 0, TV, ids, TT, TD, y);
	ck_assert_int_eq(cu->embed_fwd(tab_, 0, TV, ids_, TT, TD, e_), MB_OK);
	expect_close("embedding fwd (exact)", e_, y, n, 0);
	cpu->embed_bwd(dy, ids, TT, TD, 0, TV, tab);
	ck_assert_int_eq(cu->embed_bwd(dy_, ids_, TT, TD, 0, TV, tab_), MB_OK);
	expect_close("embedding bwd (added)", tab_, tab, (size_t)TV * TD, 1e-6);
	cudaFree(x_), cudaFree(g_), cudaFree(dy_), cudaFree(ids_);
	free(x), free(g), free(dy), free(dg), free(y), free(dx), free(wk), free(tab), free(u);
}
END_TEST

START_TEST(cross_entropy)
{
	const long V = 1337, v0 = 0;
	float *lg = uniform((size_t)TT * V, -6, 6, 200), *u = uniform(TT, 0, 1, 201);
	int32_t tgt[TT];
	for (int t = 0; t < TT; t++)
		tgt[t] = (int32_t)(u[t] * V);
	void *lg_ = dev(lg, FB((size_t)TT * V)), *tgt_ = dev(tgt, sizeof(tgt));
	void *ce_ = dev(NULL, 3 * TT * sizeof(double));
	double ce[3 * TT], l = 0, l_ref = 0;
	double *c = ce_;
	cpu->ce_max(lg, TT, V, ce);
	cpu->ce_sum(lg, TT, V, v0, tgt, ce, ce + TT, ce + 2 * TT);
	cpu->ce_grad(lg, TT, V, v0, tgt, ce, ce + TT, ce + 2 * TT, 1.0 / TT, &l_ref);
	ck_assert_int_eq(cu->ce_max(lg_, TT, V, c), MB_OK);
	ck_assert_int_eq(cu->ce_sum(lg_, TT, V, v0, tgt_, c, c + TT, c + 2 * TT), MB_OK);
	ck_assert_int_eq(cu->ce_grad(lg_, TT, V, v0, tgt_, c, c + TT, c + 2 * TT, 1.0 / TT, &l), MB_OK);
	printf("%-44s %.9g vs %.9g\n", "cross-entropy summed loss", l, l_ref);
	ck_assert_double_le(fabs(l - l_ref), 1e-5 * fabs(l_ref));
	expect_close("cross-entropy gradient", lg_, lg, (size_t)TT * V, 1e-5);
	cudaFree(tgt_), cudaFree(ce_), free(lg), free(u);
}
END_TEST

/* moe_route runs the gate on both tables (with a bias, selection not fixed) and checks
 * the selection, scores, weights, loads and expert order; leaves the device copies. */
static void moe_route(const struct route_config *rc, float *s, int32_t *idx, float *wts,
		      int32_t *order, void **s_, void **idx_, void **wts_, void **order_)
{
	float *bias = uniform(TE, -0.05f, 0.05f, 301), *fb = malloc(FB(TT * (TE + TK) + TE + 1));
	long load[TE], dload[TE];
	int32_t eoff[TE + 1], deoff[TE + 1];
	void *bias_ = dev(bias, FB(TE)), *fb_ = dev(NULL, FB(TT * (TE + TK) + TE + 1));
	*s_ = dev(s, FB(TT * TE));
	*idx_ = dev(NULL, TT * TK * 4), *wts_ = dev(NULL, FB(TT * TK)), *order_ = dev(NULL, TT * TK * 4);
	ck_assert_int_eq(cpu->route(rc, TT, false, bias, 2.5, s, fb, idx, wts, load, order, eoff), MB_OK);
	ck_assert_int_eq(cu->route(rc, TT, false, bias_, 2.5, *s_, fb_, *idx_, *wts_, dload, *order_,
				   deoff), MB_OK);
	for (int e = 0; e < TE; e++)
		ck_assert_int_eq(load[e], dload[e]);
	for (int e = 0; e <= TE; e++)
		ck_assert_int_eq(eoff[e], deoff[e]);
	expect_ints("route selection (exact)", *idx_, idx, TT * TK);
	expect_ints("route expert order (exact)", *order_, order, TT * TK);
	*idx_ = dev(idx, TT * TK * 4);
	float *hs = back(*s_, FB(TT * TE)), *hw = back(*wts_, FB(TT * TK));
	double es = 0, ew = 0;
	for (int j = 0; j < TT * TE; j++)
		es = fmax(es, fabs((double)hs[j] - s[j]));
	for (int j = 0; j < TT * TK; j++)
		ew = fmax(ew, fabs((double)hw[j] - wts[j]) / 2.5);
	printf("%-44s scores %.3g, weights %.3g; loads, offsets exact\n", "route", es, ew);
	ck_assert_double_le(es, 1e-6);
	ck_assert_double_le(ew, 1e-6);
	/* what follows uses the CPU's scores and weights on both sides */
	*s_ = dev(s, FB(TT * TE)), *wts_ = dev(wts, FB(TT * TK)), *order_ = dev(order, TT * TK * 4);
	cudaFree(bias_), cudaFree(fb_), free(bias), free(fb), free(hs), free(hw);
}

START_TEST(moe_gate_and_permutation)
{
	struct route_config rc = { TE, TK, 4, 2, 1, 0, 2.5f };
	float *s = uniform(TT * TE, -3, 3, 300), wts[TT * TK];
	int32_t idx[TT * TK], order[TT * TK];
	void *s_, *idx_, *wts_, *order_;
	moe_route(&rc, s, idx, wts, order, &s_, &idx_, &wts_, &order_);
	float f[TB * TE], ds[TT * TE];
	double l = 0, l_ref = 0;
	void *f_ = dev(NULL, FB(TB * TE)), *ds_ = dev(NULL, FB(TT * TE));
	cpu->balance_fwd(idx, s, TB, TS, TE, TK, f, &l_ref);
	ck_assert_int_eq(cu->balance_fwd(idx_, s_, TB, TS, TE, TK, f_, &l), MB_OK);
	printf("%-44s %.12g vs %.12g\n", "balance loss", l, l_ref);
	ck_assert_double_le(fabs(l - l_ref), 1e-6 * fabs(l_ref));
	float *dw = uniform(TT * TK, -1, 1, 302);
	void *dw_ = dev(dw, FB(TT * TK));
	cpu->gate_bwd(s, f, idx, wts, dw, TT, TS, TE, TK, 2.5, 1e-3, ds);
	ck_assert_int_eq(cu->gate_bwd(s_, f_, idx_, wts_, dw_, TT, TS, TE, TK, 2.5, 1e-3, ds_), MB_OK);
	expect_close("balance f (exact)", f_, f, TB * TE, 0);
	expect_close("gate bwd ds", ds_, ds, TT * TE, 1e-5);
	size_t nx = (size_t)TT * TD, nr = (size_t)TT * TK * TD;
	float *x = uniform(nx, -1, 1, 303), *y = uniform(nr, -1, 1, 304), *xp = malloc(FB(nr));
	float *out = uniform(nx, -1, 1, 305), *dy = malloc(FB(nr)), dwo[TT * TK];
	void *x_ = dev(x, FB(nx)), *y_ = dev(y, FB(nr)), *xp_ = dev(NULL, FB(nr));
	cpu->permute_rows(x, order, TT * TK, TK, TD, xp);
	ck_assert_int_eq(cu->permute_rows(x_, order_, TT * TK, TK, TD, xp_), MB_OK);
	expect_close("permute rows (exact)", xp_, xp, nr, 0);
	for (int wtd = 0; wtd < 2; wtd++) {
		void *o_ = dev(out, FB(nx));
		cpu->unpermute_add(y, wtd ? wts : NULL, order, TT * TK, TK, TD, out);
		ck_assert_int_eq(cu->unpermute_add(y_, wtd ? wts_ : NULL, order_, TT * TK, TK, TD, o_),
				 MB_OK);
		expect_close(wtd ? "unpermute add (weighted)" : "unpermute add (plain)", o_, out, nx, 1e-5);
	}
	void *dy_ = dev(NULL, FB(nr)), *dwo_ = dev(NULL, FB(TT * TK));
	cpu->combine_bwd(x, y, wts, order, TT * TK, TK, TD, dy, dwo);
	ck_assert_int_eq(cu->combine_bwd(x_, y_, wts_, order_, TT * TK, TK, TD, dy_, dwo_), MB_OK);
	expect_close("combine bwd dy (exact)", dy_, dy, nr, 0);
	expect_close("combine bwd dw", dwo_, dwo, TT * TK, 1e-5);
	uint64_t h = cpu->hash_ints(idx, TT * TK, 1469598103934665603ull);
	ck_assert_uint_eq(cu->hash_ints(idx_, TT * TK, 1469598103934665603ull), h);
	cudaFree(s_), cudaFree(idx_), cudaFree(wts_), cudaFree(order_), cudaFree(dw_);
	cudaFree(x_), cudaFree(y_);
	free(s), free(dw), free(x), free(y), free(xp), free(out), free(dy);
}
END_TEST

START_TEST(layout_entries)
{
	const int R = 77, C = 130;
	size_t n = (size_t)R * C;
	float *x = uniform(n, -1, 1, 400), *y = uniform(n, -1, 1, 401), *t = malloc(FB(n));
	float *cat = malloc(FB(2 * n));
	void *x_ = dev(x, FB(n)), *y_ = dev(y, FB(n)), *t_ = dev(NULL, FB(n)), *c_ = dev(NULL, FB(2 * n));
	cpu->transpose(R, C, x, t);
	ck_assert_int_eq(cu->transpose(R, C, x_, t_), MB_OK);
	expect_close("transpose (exact)", t_, t, n, 0);
	t_ = dev(t, FB(n));
	cpu->add_transposed(R, C, t, y);
	ck_assert_int_eq(cu->add_transposed(R, C, t_, y_), MB_OK);
	expect_close("add transposed (exact)", y_, y, n, 0);
	y_ = dev(y, FB(n));
	cpu->concat(R, C / 2, x, y, cat);
	ck_assert_int_eq(cu->concat(R, C / 2, x_, y_, c_), MB_OK);
	void *a_ = dev(NULL, FB(n / 2)), *b_ = dev(NULL, FB(n / 2));
	ck_assert_int_eq(cu->split(R, C / 2, c_, a_, b_), MB_OK);
	expect_close("split (exact)", a_, x, (size_t)R * (C / 2), 0);
	expect_close("concat (exact)", c_, cat, (size_t)R * C, 0);
	cpu->add(y, x, n);
	ck_assert_int_eq(cu->add(y_, x_, n), MB_OK);
	ck_assert_int_eq(cu->copy(y_, n, t_), MB_OK);
	ck_assert_int_eq(cu->zero(x_, n), MB_OK);
	memset(x, 0, FB(n));
	expect_close("add, copy (exact)", t_, y, n, 0);
	expect_close("zero (exact)", x_, x, n, 0);
	cudaFree(y_), cudaFree(b_), free(x), free(y), free(t), free(cat);
}
END_TEST

/* AdamW with clipping over v3-tiny's layout: the norm and the updated weights and
 * moments (non-trainable gradients zero, as the backward leaves them). */
START_TEST(adamw_step)
{
	struct net_layout L;
	char why[256];
	ck_assert_int_eq(net_layout_build(model_preset_find("v3-tiny"), &L, why, sizeof(why)), MB_OK);
	size_t P = L.total;
	ck_assert_uint_le(P, 8u << 20);
	float *w = malloc(FB(P)), *g = uniform(P, -1e-3f, 1e-3f, 500), *m1 = calloc(P, 4), *m2 = calloc(P, 4);
	net_init_f32(&L, w, 0.006, 501);
	for (int i = 0; i < L.n; i++)
		if (!L.t[i].trainable)
			memset(g + L.t[i].off, 0, FB((size_t)(L.t[i].rows * L.t[i].cols)));
	void *w_ = dev(w, FB(P)), *g_ = dev(g, FB(P)), *m1_ = dev(m1, FB(P)), *m2_ = dev(m2, FB(P));
	struct net_adamw a;
	net_adamw_default(&a);
	a.lr = 1e-3;
	a.clip = 0.5;   /* the random gradient's norm is above it: clipping applies */
	double n_ref = cpu->adamw_step(&L, &a, 1, w, g, m1, m2);
	double n = cu->adamw_step(&L, &a, 1, w_, g_, m1_, m2_);
	printf("%-44s %.9g vs %.9g\n", "adamw grad norm", n, n_ref);
	ck_assert_int_eq(net_cuda_ops_status(), MB_OK);
	ck_assert_double_le(fabs(n - n_ref), 1e-5 * n_ref);
	ck_assert_double_gt(n_ref, a.clip);
	expect_close("adamw weights", w_, w, P, 1e-5);
	expect_close("adamw first moment", m1_, m1, P, 1e-5);
	expect_close("adamw second moment", m2_, m2, P, 1e-5);
	cudaFree(g_), free(w), free(g), free(m1), free(m2);
	net_layout_free(&L);
}
END_TEST

/* attn_round_mats rounds w0's weight matrices into w (fp8: each matrix's own 128x128
 * blocks, as net_pack rounds them; the norm gains copied). */
static void attn_round_mats(bool mla, const void *cfg, size_t nw, const float *w0, float *w)
{
	size_t m[5][3] = { { 0 } };
	if (mla) {
		const struct mla_config *c = cfg;
		struct mla_layout L;
		mla_layout_of(c, &L);
		size_t d = (size_t)c->dim, ql = (size_t)c->q_lora_rank, kvl = (size_t)c->kv_lora_rank;
		size_t H = (size_t)c->heads, hq = H * (c->nope + c->rope);
		size_t v[5][3] = { { L.wq_a, ql ? d : 0, ql }, { L.wq_b, ql ? ql : d, hq },
				   { L.wkv_a, d, kvl + c->rope },
				   { L.wkv_b, kvl, H * (c->nope + c->v_dim) },
				   { L.wo, H * c->v_dim, d } };
		memcpy(m, v, sizeof(m));
	} else {
		const struct gqa_config *c = cfg;
		struct gqa_layout G;
		gqa_layout_of(c, &G);
		size_t d = (size_t)c->dim, q = (size_t)c->heads * c->head_dim;
		size_t kv = (size_t)c->kv_heads * c->head_dim;
		size_t v[5][3] = { { G.wq, d, q }, { G.wk, d, kv }, { G.wv, d, kv }, { G.wo, q, d } };
		memcpy(m, v, sizeof(m));
	}
	memcpy(w, w0, FB(nw));
	for (int i = 0; i < 5; i++)
		if (m[i][1])
			cpu->quant_weight(NET_FP8, (int)m[i][1], (int)m[i][2], w0 + m[i][0], w + m[i][0]);
}

/* attn_case: one attention block (mla or gqa, config cfg) forward and backward on both
 * tables at precision p (bf16, fp8: the weights arrive rounded, as net_pack gives them): y,
 * dx and the whole dw. norms: the [offset, n] of the block's norm gains (set near 1). */
static void attn_case(const char *name, bool mla, void *cfg, enum net_precision p,
		      size_t norms[2][2], uint64_t id, double tol)
{
	struct mla_layout ml;
	struct gqa_layout gl;
	const struct attn_round **round = mla ? &((struct mla_config *)cfg)->round
					      : &((struct gqa_config *)cfg)->round;
	*round = net_attn_round(p);
	size_t nw = mla ? (mla_layout_of(cfg, &ml), ml.total) : (gqa_layout_of(cfg, &gl), gl.total);
	size_t nws = mla ? mla_workspace_count(cfg, TB, TS) : gqa_workspace_count(cfg, TB, TS);
	size_t nx = (size_t)TT * TD;
	float *w0 = uniform(nw, -0.2f, 0.2f, id), *w = malloc(FB(nw)), *x = uniform(nx, -1, 1, id + 1);
	float *dy = uniform(nx, -1, 1, id + 2), *y = malloc(FB(nx)), *dx = malloc(FB(nx));
	float *ws = malloc(FB(nws)), *dw = malloc(FB(nw));
	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < norms[i][1]; j++)
			w0[norms[i][0] + j] = 1.0f + w0[norms[i][0] + j];
	if (p == NET_FP8)
		attn_round_mats(mla, cfg, nw, w0, w);
	else
		cpu->quant_weight(p, 1, (int)nw, w0, w);
	void *w_ = dev(w, FB(nw)), *x_ = dev(x, FB(nx)), *dy_ = dev(dy, FB(nx)), *y_ = dev(NULL, FB(nx));
	void *ws_ = dev(NULL, FB(nws)), *dx_ = dev(NULL, FB(nx)), *dw_ = dev(NULL, FB(nw));
	ck_assert_int_eq(mla ? cpu->mla_fwd(cfg, TB, TS, w, x, y, ws) : cpu->gqa_fwd(cfg, TB, TS, w, x, y, ws), MB_OK);
	ck_assert_int_eq(mla ? cpu->mla_bwd(cfg, TB, TS, w, x, ws, dy, dx, dw)
			     : cpu->gqa_bwd(cfg, TB, TS, w, x, ws, dy, dx, dw), MB_OK);
	ck_assert_int_eq(mla ? cu->mla_fwd(cfg, TB, TS, w_, x_, y_, ws_)
			     : cu->gqa_fwd(cfg, TB, TS, w_, x_, y_, ws_), MB_OK);
	ck_assert_int_eq(mla ? cu->mla_bwd(cfg, TB, TS, w_, x_, ws_, dy_, dx_, dw_)
			     : cu->gqa_bwd(cfg, TB, TS, w_, x_, ws_, dy_, dx_, dw_), MB_OK);
	ck_assert_int_eq(net_cuda_ops_status(), MB_OK);
	char what[3][64];
	snprintf(what[0], 64, "%s %s fwd y", name, net_precision_name(p));
	snprintf(what[1], 64, "%s %s bwd dx", name, net_precision_name(p));
	snprintf(what[2], 64, "%s %s bwd dw (every weight)", name, net_precision_name(p));
	expect_close(what[0], y_, y, nx, tol);
	expect_close(what[1], dx_, dx, nx, tol);
	expect_close(what[2], dw_, dw, nw, tol);
	cudaFree(w_), cudaFree(x_), cudaFree(dy_), cudaFree(ws_);
	free(w0), free(w), free(x), free(dy), free(y), free(dx), free(ws), free(dw);
	*round = NULL;
}

/* The attention entries against the CPU table's: BF16 tolerance (the device core's
 * operands are BF16, the CPU core's FP32), fp32 and bf16 projections; fp8's 0.15 (see
 * the top). */
START_TEST(attention_blocks)
{
	for (int p = 0; p < 3; p++) {
		enum net_precision pr = p == 2 ? NET_FP8 : p ? NET_BF16 : NET_FP32;
		double tol = p == 2 ? 0.15 : 3e-2;
		for (int i = 0; i < 2; i++) {
			struct mla_layout L;
			mla_layout_of(&tmla[i], &L);
			size_t norms[2][2] = { { L.q_norm, (size_t)tmla[i].q_lora_rank },
					       { L.kv_norm, (size_t)tmla[i].kv_lora_rank } };
			attn_case(i ? "mla (no q lora)" : "mla", true, &tmla[i], pr, norms,
				  700 + 10 * i + 100 * p, tol);
		}
		size_t none[2][2] = { { 0, 0 }, { 0, 0 } };
		attn_case("gqa", false, &tgqa, pr, none, 740 + 100 * p, tol);
	}
}
END_TEST

/* step_models makes the CPU and the CUDA model of v3-tiny (or preset) at precision p with
 * the same seed, and random tokens. */
static void step_models(const char *preset, enum net_precision p, struct net_layout *L,
			struct net_f32 **cm, struct net_f32 **gm, int32_t *tok, int B, int S)
{
	struct net_options o;
	char why[256];
	ck_assert_int_eq(net_layout_build(model_preset_find(preset), L, why, sizeof(why)), MB_OK);
	net_options_default(&o);
	o.precision = p;
	ck_assert_int_eq(net_create_f32(L, &o, B, S, 11, cm), MB_OK);
	ck_assert_int_eq(net_create_f32_cuda(L, &o, B, S, 11, gm), MB_OK);
	float *u = uniform((size_t)B * (S + 1 + L->cfg.mtp_depth), 0, 1, 600);
	for (size_t j = 0; j < (size_t)B * (S + 1 + L->cfg.mtp_depth); j++)
		tok[j] = (int32_t)(u[j] * L->cfg.vocab);
	free(u);
}

/* grad_errors asserts every tensor's gradient within tol (relative L2) of the CPU's. */
static void grad_errors(const struct net_layout *L, struct net_f32 *cm, struct net_f32 *gm,
			double tol)
{
	float *g = malloc(L->total * sizeof(float) + 1);
	const float *ref = net_grads_f32(cm);
	double worst = 0;
	int wi = -1;
	ck_assert_int_eq(net_download_f32(gm, true, g), MB_OK);
	for (int i = 0; i < L->n; i++) {
		const struct net_tensor *t = &L->t[i];
		double num = 0, den = 0;
		for (size_t j = t->off; j < t->off + (size_t)(t->rows * t->cols); j++)
			num += ((double)g[j] - ref[j]) * ((double)g[j] - ref[j]),
			den += (double)ref[j] * ref[j];
		double e = den > 0 ? sqrt(num / den) : sqrt(num);
		if (t->trainable && e > worst)
			worst = e, wi = i;
	}
	printf("%-44s worst %.3g (%s) (tol %.2g)\n", "step gradients, every tensor", worst,
	       wi >= 0 ? L->t[wi].name : "-", tol);
	ck_assert_msg(worst <= tol, "gradient of %s: %g > %g", wi >= 0 ? L->t[wi].name : "-", worst, tol);
	free(g);
}

/* step_case: one forward and backward on both, then three AdamW steps' losses. */
static void step_case(const char *preset, enum net_precision p, double ltol, double gtol)
{
	enum { B = 2, S = 32 };
	struct net_layout L;
	struct net_f32 *cm, *gm;
	struct net_stats a, b;
	int32_t tok[B * (S + 1 + 16)];
	step_models(preset, p, &L, &cm, &gm, tok, B, S);
	struct net_adamw opt;
	net_adamw_default(&opt);
	for (long t = 1; t <= 3; t++) {
		ck_assert_int_eq(net_forward_f32(cm, tok, &a), MB_OK);
		ck_assert_int_eq(net_forward_f32(gm, tok, &b), MB_OK);
		printf("%s %s step %ld: loss %.7f (CPU %.7f), route hash %s\n", preset,
		       net_precision_name(p), t, b.loss, a.loss,
		       a.route_hash == b.route_hash ? "equal" : "DIFFERS");
		ck_assert_double_le(fabs(b.loss - a.loss), ltol * a.loss);
		ck_assert_int_eq(net_backward_f32(cm), MB_OK);
		ck_assert_int_eq(net_backward_f32(gm), MB_OK);
		if (t == 1)
			grad_errors(&L, cm, gm, gtol);
		net_adam_step_f32(cm, &opt, t);
		net_adam_step_f32(gm, &opt, t);
		ck_assert_int_eq(net_cuda_ops_status(), MB_OK);
	}
	net_destroy_f32(gm);
	net_destroy_f32(cm);
	net_cuda_ops_close();
	net_layout_free(&L);
}

/* The whole step on the CUDA table against the CPU step: loss, every gradient, three
 * steps' losses. NOTE: the device attention core takes BF16 operands, so under fp32 the
 * step agrees to BF16 tolerance (it was 1e-4 / 1e-3 while the blocks ran on the host). */
START_TEST(whole_step_fp32)
{
	step_case("v3-tiny", NET_FP32, 1e-2, 1e-2);
	step_case("llama3-tiny", NET_FP32, 1e-2, 1e-2);
}
END_TEST

START_TEST(whole_step_bf16)
{
	step_case("v3-tiny", NET_BF16, 1e-2, 1e-2);
}
END_TEST

/* fp8: every projection block-scaled on both sides, at the device step's FP8
 * tolerances (see the top); both attention blocks (MLA in v3-tiny, GQA in llama3-tiny) */
START_TEST(whole_step_fp8)
{
	step_case("v3-tiny", NET_FP8, 5e-2, 0.25);
	step_case("llama3-tiny", NET_FP8, 5e-2, 0.25);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("train_table");
	TCase *c = tcase_create("core");
	tcase_add_unchecked_fixture(c, open_table, close_table);
	tcase_set_timeout(c, 120);
	tcase_add_test(c, linear_layers);
	tcase_add_test(c, norm_swiglu_embedding);
	tcase_add_test(c, cross_entropy);
	tcase_add_test(c, moe_gate_and_permutation);
	tcase_add_test(c, layout_entries);
	tcase_add_test(c, adamw_step);
	tcase_add_test(c, attention_blocks);
	suite_add_tcase(s, c);
	TCase *w = tcase_create("step");   /* makes its own context: after "core" closed it */
	tcase_set_timeout(w, 300);
	tcase_add_test(w, whole_step_fp32);
	tcase_add_test(w, whole_step_bf16);
	tcase_add_test(w, whole_step_fp8);
	suite_add_tcase(s, w);
	return s;
}

int main(void)
{
	return gpu_main(make_suite);
}
