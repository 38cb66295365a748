/*
 * test_train_ops.c (GPU) - every CUDA training operator of kernels/train against its CPU
 * reference on fresh random inputs (MB_TEST_SEED replays), at step-sized shapes off the
 * block sizes, device outputs poisoned (all bits set: NaN) first. Tolerances as in
 * tests/train_emu.cpp, which runs the same kernels on the host in CI: exact for the
 * gathers, scatter-add, loads and bias update; 1e-5 of the largest reference value for
 * FP32 results; 1e-2 for BF16 gradients. Exits 77 (CTest: skipped) when no CUDA device
 * answers; runs without fork (CUDA contexts do not survive one).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

#include "bf16.h"
#include "embedding.h"
#include "moe_bwd.h"
#include "optim.h"
#include "permute.h"
#include "rmsnorm.h"
#include "rng.h"
#include "route.h"
#include "status.h"
#include "swiglu.h"
#include "xent.h"

#include "gpu_main.h"
#include "../test_seed.h"

/* ---- host and device buffers ---- */

/* uniform returns n floats uniform in [lo, hi) from the run's seed and stream. */
static float *uniform(size_t n, float lo, float hi, uint64_t id)
{
	struct mb_rng rng;
	float *x = malloc(n * sizeof(float) + 1);
	ck_assert_ptr_nonnull(x);
	mb_rng_seed(&rng, test_seed(), id);
	mb_rng_fill_uniform_f32(&rng, x, n, lo, hi);
	return x;
}

/* dev_of returns a device copy of bytes at h (h NULL: poisoned, all bits set). */
static void *dev_of(const void *h, size_t bytes)
{
	void *d = NULL;
	ck_assert_int_eq(cudaMalloc(&d, bytes + 16), cudaSuccess);
	if (h)
		ck_assert_int_eq(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
	else
		ck_assert_int_eq(cudaMemset(d, 0xff, bytes + 16), cudaSuccess);
	return d;
}

/* host_of waits for the stream and returns a host copy of bytes at d, freeing d. */
static void *host_of(void *d, size_t bytes)
{
	void *h = malloc(bytes + 1);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(cudaStreamSynchronize(stream), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
	cudaFree(d);
	return h;
}

/* scaled_err returns max |x - ref| / max |ref|; +inf for a non-finite x where ref is
 * finite. */
static double scaled_err(const float *x, const float *ref, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]) && isfinite(ref[i]))
			return INFINITY;
		num = fmax(num, fabs((double)x[i] - ref[i]));
		den = fmax(den, fabs((double)ref[i]));
	}
	return den > 0 ? num / den : num;
}

/* widen_free returns BF16 bits as floats and frees the bits. */
static float *widen_free(uint16_t *b, size_t n)
{
	float *f = malloc(n * sizeof(float) + 1);
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++)
		f[i] = bf16_to_float(b[i]);
	free(b);
	return f;
}

/* expect asserts err <= tol for what, naming the seed; prints the error either way. */
static void expect(const char *what, double err, double tol)
{
	printf("%-40s max err %.3g (tol %.0e)\n", what, err, tol);
	ck_assert_msg(err <= tol, "%s: max err %g > %g (seed %llu)", what, err, tol,
		      (unsigned long long)test_seed());
}

/* ---- embedding ---- */

START_TEST(embedding_matches_cpu)
{
	const long T = 4093;
	const int V = 50021, D = 1000;
	float *table = uniform((size_t)V * D, -1, 1, 1), *dout = uniform((size_t)T * D, -1, 1, 2);
	float *u = uniform((size_t)T, 0, 1, 3), *dt = uniform((size_t)V * D, -1, 1, 4);
	int32_t *ids = malloc((size_t)T * sizeof(int32_t));
	ck_assert_ptr_nonnull(ids);
	for (long t = 0; t < T; t++)   /* a bucket of ~1600 tokens, many empty rows */
		ids[t] = u[t] < 0.4f ? 32 : (int32_t)(u[t] * 1e6f) % V;
	float *ref = malloc((size_t)V * D * sizeof(float));
	ck_assert_ptr_nonnull(ref);
	ck_assert_int_eq(embedding_fwd_cpu(table, V, ids, T, D, ref), MB_OK);
	float *d_table = dev_of(table, (size_t)V * D * 4), *d_out = dev_of(NULL, (size_t)T * D * 4);
	int32_t *d_ids = dev_of(ids, (size_t)T * 4);
	ck_assert_int_eq(embedding_fwd_cuda(d_table, V, d_ids, T, D, d_out, stream), MB_OK);
	float *out = host_of(d_out, (size_t)T * D * 4);
	expect("embedding fwd (exact)", scaled_err(out, ref, (size_t)T * D), 0);
	size_t wb = embedding_bwd_workspace(T, V);
	void *d_work = dev_of(NULL, wb);
	float *d_dout = dev_of(dout, (size_t)T * D * 4), *d_dt = dev_of(dt, (size_t)V * D * 4);
	ck_assert_int_eq(embedding_bwd_cuda(d_dout, d_ids, T, D, V, d_dt, d_work, wb, stream), MB_OK);
	memcpy(ref, dt, (size_t)V * D * sizeof(float));
	ck_assert_int_eq(embedding_bwd_cpu(dout, ids, T, D, V, ref), MB_OK);
	float *got = host_of(d_dt, (size_t)V * D * 4);
	expect("embedding bwd scatter-add (exact)", scaled_err(got, ref, (size_t)V * D), 0);
	cudaFree(d_table), cudaFree(d_ids), cudaFree(d_work), cudaFree(d_dout);
	free(table), free(dout), free(u), free(dt), free(ids), free(ref), free(out), free(got);
}
END_TEST

/* ---- RMSNorm and SwiGLU ---- */

START_TEST(rmsnorm_matches_cpu)
{
	const long R = 4097;
	const int D = 7168;
	const size_t n = (size_t)R * D;
	float *x = uniform(n, -2, 2, 10), *g = uniform(D, 0.5f, 1.5f, 11), *dy = uniform(n, -1, 1, 12);
	float *dg = uniform(D, -1, 1, 13), *y = malloc(n * 4), *r = malloc(R * 4), *dx = malloc(n * 4);
	ck_assert(y && r && dx);
	float *d_x = dev_of(x, n * 4), *d_g = dev_of(g, D * 4), *d_dy = dev_of(dy, n * 4);
	float *d_dg = dev_of(dg, D * 4), *d_y = dev_of(NULL, n * 4), *d_r = dev_of(NULL, R * 4);
	float *d_dx = dev_of(NULL, n * 4);
	size_t wb = rmsnorm_bwd_workspace(R, D);
	void *d_work = dev_of(NULL, wb);
	ck_assert_int_eq(rmsnorm_fwd_cpu(x, g, R, D, 1e-6f, y, r), MB_OK);
	ck_assert_int_eq(rmsnorm_bwd_cpu(dy, x, g, r, R, D, dx, dg), MB_OK);
	ck_assert_int_eq(rmsnorm_fwd_cuda(d_x, d_g, R, D, 1e-6f, d_y, d_r, stream), MB_OK);
	ck_assert_int_eq(rmsnorm_bwd_cuda(d_dy, d_x, d_g, d_r, R, D, d_dx, d_dg, d_work, wb, stream),
			 MB_OK);
	float *gy = host_of(d_y, n * 4), *gr = host_of(d_r, R * 4), *gdx = host_of(d_dx, n * 4);
	float *gdg = host_of(d_dg, D * 4);
	expect("rmsnorm fwd y", scaled_err(gy, y, n), 1e-5);
	expect("rmsnorm fwd rstd", scaled_err(gr, r, R), 1e-5);
	expect("rmsnorm bwd dx", scaled_err(gdx, dx, n), 1e-5);
	expect("rmsnorm bwd dgain (two-level)", scaled_err(gdg, dg, D), 1e-5);
	cudaFree(d_x), cudaFree(d_g), cudaFree(d_dy), cudaFree(d_work);
	free(x), free(g), free(dy), free(dg), free(y), free(r), free(dx);
	free(gy), free(gr), free(gdx), free(gdg);
}
END_TEST

START_TEST(swiglu_matches_cpu)
{
	const long R = 4097, ld = 2 * 2049;
	const int F = 2049;
	const size_t n = (size_t)R * F, nin = (size_t)R * ld;
	float *in = uniform(nin, -4, 4, 20), *dh = uniform(n, -1, 1, 21);
	float *h = malloc(n * 4), *d = malloc(nin * 4);
	ck_assert(h && d);
	ck_assert_int_eq(swiglu_fwd_cpu(in, in + F, R, F, ld, h), MB_OK);
	ck_assert_int_eq(swiglu_bwd_cpu(dh, in, in + F, R, F, ld, d, d + F), MB_OK);
	float *d_in = dev_of(in, nin * 4), *d_dh = dev_of(dh, n * 4), *d_h = dev_of(NULL, n * 4);
	float *d_d = dev_of(NULL, nin * 4);
	ck_assert_int_eq(swiglu_fwd_cuda(d_in, d_in + F, R, F, ld, d_h, stream), MB_OK);
	ck_assert_int_eq(swiglu_bwd_cuda(d_dh, d_in, d_in + F, R, F, ld, d_d, d_d + F, stream), MB_OK);
	float *gh = host_of(d_h, n * 4), *gd = host_of(d_d, nin * 4);
	expect("swiglu fwd (fused gate|up)", scaled_err(gh, h, n), 1e-5);
	expect("swiglu bwd dgate|dup", scaled_err(gd, d, nin), 1e-5);
	cudaFree(d_in), cudaFree(d_dh);
	free(in), free(dh), free(h), free(d), free(gh), free(gd);
}
END_TEST

/* ---- cross-entropy ---- */

/* xent_case compares one dtype at R rows of DeepSeek-V3's vocabulary (row 1 without a
 * target, rows 2 and 3 shifted by +-1000), the BF16 gradient written in place. */
static void xent_case(enum xent_dtype dt)
{
	const long R = 257;
	const int V = 129280;
	const size_t n = (size_t)R * V, es = dt == XENT_BF16 ? 2 : 4;
	float *x = uniform(n, -6, 6, 30), *u = uniform(R, 0, 1, 31), *loss = malloc(R * 4);
	int32_t *tgt = malloc(R * 4);
	void *logits = malloc(n * es), *grad = malloc(n * es);
	ck_assert(loss && tgt && logits && grad);
	for (long r = 0; r < R; r++)
		tgt[r] = r == 1 ? -1 : (int32_t)(u[r] * V) % V;
	for (int v = 0; v < V; v++)
		x[2 * (size_t)V + v] += 1000.0f, x[3 * (size_t)V + v] -= 1000.0f;
	for (size_t i = 0; i < n; i++)
		if (dt == XENT_BF16)
			((uint16_t *)logits)[i] = bf16_from_float(x[i]);
		else
			((float *)logits)[i] = x[i];
	ck_assert_int_eq(xent_cpu(logits, dt, tgt, R, V, 1.0f / (R - 1), loss, grad), MB_OK);
	void *d_x = dev_of(logits, n * es), *d_g = dt == XENT_BF16 ? d_x : dev_of(NULL, n * es);
	int32_t *d_t = dev_of(tgt, R * 4);
	float *d_loss = dev_of(NULL, R * 4);
	ck_assert_int_eq(xent_cuda(d_x, dt, d_t, R, V, 1.0f / (R - 1), d_loss, d_g, stream), MB_OK);
	float *gl = host_of(d_loss, R * 4);
	void *gg = host_of(d_g, n * es);
	float *gf = dt == XENT_BF16 ? widen_free(gg, n) : gg;
	float *rf = dt == XENT_BF16 ? widen_free(grad, n) : grad;
	expect(dt == XENT_BF16 ? "xent bf16 loss" : "xent fp32 loss", scaled_err(gl, loss, R), 1e-5);
	expect(dt == XENT_BF16 ? "xent bf16 dlogits (in place)" : "xent fp32 dlogits",
	       scaled_err(gf, rf, n), dt == XENT_BF16 ? 1e-2 : 1e-5);
	if (d_g != d_x)
		cudaFree(d_x);
	cudaFree(d_t);
	free(x), free(u), free(loss), free(tgt), free(logits), free(gl), free(gf), free(rf);
}

START_TEST(xent_matches_cpu)
{
	xent_case(XENT_FP32);
	xent_case(XENT_BF16);
}
END_TEST

/* ---- optimizer ---- */

START_TEST(adamw_matches_cpu)
{
	const long n = 10000019;
	const struct adamw_segment segs[3] = { { 0, n / 3, 0.1f }, { n / 3, n / 6, 0.0f },
					       { n / 2 + 1000, n - n / 2 - 1000, 0.1f } };
	const struct adamw_config c = { 3e-4f, 0.9f, 0.95f, 1e-8f, 7 };
	float *p = uniform(n, -1, 1, 40), *g = uniform(n, -1, 1, 41), *m = uniform(n, -0.1f, 0.1f, 42);
	float *v = uniform(n, 0, 0.01f, 43);
	const float scale = 0.37f;
	float *d_p = dev_of(p, n * 4), *d_g = dev_of(g, n * 4), *d_m = dev_of(m, n * 4);
	float *d_v = dev_of(v, n * 4), *d_scale = dev_of(&scale, 4);
	uint16_t *d_b = dev_of(NULL, n * 2), *b = malloc(n * 2);
	struct adamw_segment *d_segs = dev_of(segs, sizeof(segs));
	ck_assert_ptr_nonnull(b);
	memset(b, 0xff, n * 2);
	ck_assert_int_eq(adamw_cpu(&c, segs, 3, n, p, g, m, v, scale, b), MB_OK);
	ck_assert_int_eq(adamw_cuda(&c, d_segs, 3, n, d_p, d_g, d_m, d_v, d_scale, d_b, stream), MB_OK);
	float *gp = host_of(d_p, n * 4), *gm = host_of(d_m, n * 4), *gv = host_of(d_v, n * 4);
	float *gb = widen_free(host_of(d_b, n * 2), n), *rb = widen_free(b, n);
	expect("adamw param (3 segments, a gap)", scaled_err(gp, p, n), 1e-6);
	expect("adamw m", scaled_err(gm, m, n), 1e-6);
	expect("adamw v", scaled_err(gv, v, n), 1e-6);
	long gap = 0;
	for (long i = n / 2; i < n / 2 + 1000; i++) {
		gap += !isnan(gb[i]) || !isnan(rb[i]);
		gb[i] = rb[i] = 0;
	}
	expect("adamw bf16 copy", scaled_err(gb, rb, n), 1e-2);
	expect("adamw leaves the gap untouched (count)", (double)gap, 0);
	cudaFree(d_g), cudaFree(d_scale), cudaFree(d_segs);
	free(p), free(g), free(m), free(v), free(gp), free(gm), free(gv), free(gb), free(rb);
}
END_TEST

START_TEST(grad_norm_matches_cpu)
{
	const long n = 50000017;
	float *g = uniform(n, -1, 1, 50), *d_g = dev_of(g, n * 4);
	float *d_norm = dev_of(NULL, 4), *d_scale = dev_of(NULL, 4);
	size_t wb = grad_norm_workspace(n);
	void *d_work = dev_of(NULL, wb);
	const double ref = grad_norm_cpu(g, n);
	ck_assert_int_eq(grad_norm_cuda(d_g, n, (float)(ref / 3), d_norm, d_scale, d_work, wb, stream),
			 MB_OK);
	float *norm = host_of(d_norm, 4), *scale = host_of(d_scale, 4);
	expect("grad norm (relative)", fabs(*norm - ref) / ref, 1e-6);
	expect("clip scale", fabs(*scale - grad_clip_scale(ref, (float)(ref / 3))), 1e-6);
	cudaFree(d_g), cudaFree(d_work);
	free(g), free(norm), free(scale);
}
END_TEST

/* ---- MoE backward and balancing ---- */

static const struct route_config deepseek_v3 = { 256, 8, 8, 4, 8, 4, 2.5f };

/* routed returns T tokens' selection and weights on DeepSeek-V3's gate (Zipf-skewed). */
static void routed(long T, float **logits, int32_t **idx, float **w)
{
	const struct route_config *c = &deepseek_v3;
	*logits = malloc((size_t)T * c->experts * 4);
	*idx = malloc((size_t)T * c->topk * 4);
	*w = malloc((size_t)T * c->topk * 4);
	ck_assert(*logits && *idx && *w);
	route_logits_random(*logits, T, c->experts, 1.0, test_seed(), 60);
	ck_assert_int_eq(route_cpu(c, *logits, NULL, T, *idx, *w), MB_OK);
}

START_TEST(router_bwd_load_bias_match_cpu)
{
	const struct route_config *c = &deepseek_v3;
	const long T = 4099;
	const size_t nl = (size_t)T * c->experts, nk = (size_t)T * c->topk;
	float *logits, *w, *dw = uniform(nk, -1, 1, 61), *dl = malloc(nl * 4);
	float *bias = uniform(c->experts, -0.01f, 0.01f, 62);
	int32_t *idx;
	long load[256] = { 0 };
	ck_assert_ptr_nonnull(dl);
	routed(T, &logits, &idx, &w);
	float *d_logits = dev_of(logits, nl * 4), *d_dw = dev_of(dw, nk * 4), *d_dl = dev_of(NULL, nl * 4);
	float *d_bias = dev_of(bias, c->experts * 4);
	int32_t *d_idx = dev_of(idx, nk * 4), *d_load = dev_of(NULL, c->experts * 4);
	ck_assert_int_eq(moe_router_bwd_cpu(logits, idx, dw, T, c->experts, c->topk, c->route_scale, dl),
			 MB_OK);
	ck_assert_int_eq(moe_router_bwd_cuda(d_logits, d_idx, d_dw, T, c->experts, c->topk,
					     c->route_scale, d_dl, stream), MB_OK);
	ck_assert_int_eq(moe_expert_load_cuda(d_idx, T, c->topk, c->experts, d_load, stream), MB_OK);
	ck_assert_int_eq(moe_bias_update_cuda(d_bias, d_load, c->experts, 1e-3f, stream), MB_OK);
	route_count(idx, T, c->topk, load);
	route_bias_update(bias, load, c->experts, 1e-3f);
	float *gdl = host_of(d_dl, nl * 4), *gb = host_of(d_bias, c->experts * 4);
	int32_t *gload = host_of(d_load, c->experts * 4);
	long diff = 0;
	for (int e = 0; e < c->experts; e++)
		diff += gload[e] != load[e];
	expect("router bwd dlogits (E 256, K 8)", scaled_err(gdl, dl, nl), 1e-5);
	expect("expert load (experts differing)", (double)diff, 0);
	expect("bias update (exact)", scaled_err(gb, bias, c->experts), 0);
	cudaFree(d_logits), cudaFree(d_dw), cudaFree(d_idx);
	free(logits), free(w), free(dw), free(dl), free(bias), free(idx), free(gdl), free(gb), free(gload);
}
END_TEST

START_TEST(combine_bwd_matches_cpu)
{
	const struct route_config *c = &deepseek_v3;
	const long T = 4099;
	const int H = 1000, K = c->topk;
	float *logits, *w;
	int32_t *idx, *meta = malloc((size_t)T * PERMUTE_META_INTS(K) * 4);
	struct permute_experts x;
	ck_assert_ptr_nonnull(meta);
	routed(T, &logits, &idx, &w);
	permute_meta_init(0, idx, w, T, K, meta);
	ck_assert_int_eq(permute_experts_build(meta, T, K, 0, c->experts, &x), MB_OK);
	const size_t P = (size_t)x.rows_padded, ny = P * H, nk = (size_t)T * K;
	float *yf = uniform(ny, -1, 1, 70), *dout = uniform((size_t)T * H, -1, 1, 71), *dw = malloc(nk * 4);
	uint16_t *y = malloc(ny * 2), *dy = malloc(ny * 2);
	ck_assert(dw && y && dy);
	for (size_t i = 0; i < ny; i++)
		y[i] = bf16_from_float(yf[i]);
	ck_assert_int_eq(moe_combine_bwd_cpu(y, dout, x.copy_rows, x.copy_weights, T, K, H, x.row_copy,
					     (long)P, dy, dw), MB_OK);
	uint16_t *d_y = dev_of(y, ny * 2), *d_dy = dev_of(NULL, ny * 2);
	float *d_dout = dev_of(dout, (size_t)T * H * 4), *d_w = dev_of(x.copy_weights, nk * 4);
	float *d_dw = dev_of(NULL, nk * 4);
	int32_t *d_rows = dev_of(x.copy_rows, nk * 4), *d_rc = dev_of(x.row_copy, P * 4);
	ck_assert_int_eq(moe_combine_bwd_cuda(d_y, d_dout, d_rows, d_w, T, K, H, d_rc, (long)P, d_dy,
					      d_dw, stream), MB_OK);
	float *gdy = widen_free(host_of(d_dy, ny * 2), ny), *rdy = widen_free(dy, ny);
	float *gdw = host_of(d_dw, nk * 4);
	expect("combine bwd dy (expert-major, exact)", scaled_err(gdy, rdy, ny), 0);
	expect("combine bwd dw (gating weights)", scaled_err(gdw, dw, nk), 1e-5);
	cudaFree(d_y), cudaFree(d_dout), cudaFree(d_w), cudaFree(d_rows), cudaFree(d_rc);
	permute_experts_free(&x);
	free(logits), free(w), free(idx), free(meta), free(yf), free(dout), free(dw), free(y);
	free(gdy), free(rdy), free(gdw);
}
END_TEST

/* train_ops_suite: one TCase, "core" (what scripts/gpu-check.sh runs under
 * compute-sanitizer's memcheck): every case is a correctness check. */
static Suite *train_ops_suite(void)
{
	Suite *s = suite_create("train_ops_gpu");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, embedding_matches_cpu);
	tcase_add_test(tc, rmsnorm_matches_cpu);
	tcase_add_test(tc, swiglu_matches_cpu);
	tcase_add_test(tc, xent_matches_cpu);
	tcase_add_test(tc, adamw_matches_cpu);
	tcase_add_test(tc, grad_norm_matches_cpu);
	tcase_add_test(tc, router_bwd_load_bias_match_cpu);
	tcase_add_test(tc, combine_bwd_matches_cpu);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	printf("train_ops_gpu: seed %llu (MB_TEST_SEED replays)\n", (unsigned long long)test_seed());
	return gpu_main(train_ops_suite);
}
