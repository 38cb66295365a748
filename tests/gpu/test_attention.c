/*
 * test_attention.c (GPU) - the CUDA attention kernels v1 (attention.cu,
 * attention_bwd.cu, attention_decode.cu) against the CPU reference (attention.c) on
 * fresh random BF16 inputs, outputs poisoned (0xFF bytes: BF16 and FP32 NaN) first:
 * forward O and lse, backward dQ, dK, dV, decode O and lse. Shapes: MLA 192/128, MHA
 * 128/128, GQA (8 heads, 2 kv heads; batch 2 at 192/128), 64/64, the presets' 48/32 and
 * 96/64, and pairs on the square tiles (80/48, 32/32, 160/144, 256/256); sequence lengths on
 * and off the tile sizes (1, 17, 64, 127, 128, 130, 300), causal and not; decode at
 * context 1, 1000 and 4096, strided caches, groups above 16 heads, and MLA's absorbed
 * form (576/512, G = 1, v == k). Exits 77 (CTest: skipped) when no CUDA device answers.
 *
 * Errors are max |x - ref| / max |ref| per tensor: BF16 outputs carry 2^-9 relative
 * rounding, the products round P (and dS) to BF16, so 1e-2 of the output's scale
 * for O and 2e-2 for the gradients; lse is FP32 throughout (1e-3).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

#include "attention.h"
#include "bf16.h"
#include "rng.h"
#include "status.h"

#include "gpu_main.h"

#define OUT_TOL 1e-2
#define GRAD_TOL 2e-2
#define LSE_TOL 1e-3

/* A host tensor of BF16 values: the bits for the GPU, the same values as floats. */
struct tensor {
	uint16_t *bits;
	float *f;
	size_t n;
};

/* tensor_random draws n values uniform in [-amp, amp), rounded to BF16. */
static struct tensor tensor_random(size_t n, double amp, uint64_t seed, uint64_t rng_stream)
{
	struct tensor t = { malloc(n * sizeof(uint16_t)), malloc(n * sizeof(float)), n };
	struct mb_rng rng;
	ck_assert(t.bits && t.f);
	mb_rng_seed(&rng, seed, rng_stream);
	for (size_t i = 0; i < n; i++) {
		t.bits[i] = bf16_from_float((float)mb_rng_uniform(&rng, -amp, amp));
		t.f[i] = bf16_to_float(t.bits[i]);
	}
	return t;
}

static void tensor_free(struct tensor *t)
{
	free(t->bits);
	free(t->f);
}

/* upload copies a host buffer into new device memory. */
static void *upload(const void *h, size_t bytes)
{
	void *d = NULL;
	ck_assert_int_eq(cudaMalloc(&d, bytes), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
	return d;
}

/* poisoned returns new device memory with every byte 0xFF (NaN as BF16 and FP32). */
static void *poisoned(size_t bytes)
{
	void *d = NULL;
	ck_assert_int_eq(cudaMalloc(&d, bytes), cudaSuccess);
	ck_assert_int_eq(cudaMemset(d, 0xff, bytes), cudaSuccess);
	return d;
}

/* download_bf16 waits for the stream and returns n device BF16 values as floats. */
static float *download_bf16(const void *d, size_t n)
{
	uint16_t *h = malloc(n * sizeof(uint16_t));
	float *f = malloc(n * sizeof(float));
	ck_assert(h && f);
	ck_assert_int_eq(cudaStreamSynchronize(stream), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(h, d, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
	for (size_t i = 0; i < n; i++)
		f[i] = bf16_to_float(h[i]);
	free(h);
	return f;
}

/* download_f32 waits for the stream and returns n device floats. */
static float *download_f32(const void *d, size_t n)
{
	float *f = malloc(n * sizeof(float));
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(cudaStreamSynchronize(stream), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(f, d, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
	return f;
}

/* scaled_err returns max |x - ref| / max |ref| (+inf if x has a non-finite value). */
static double scaled_err(const float *x, const float *ref, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]))
			return INFINITY;
		num = fmax(num, fabs((double)x[i] - ref[i]));
		den = fmax(den, fabs((double)ref[i]));
	}
	return den > 0 ? num / den : num;
}

/* lse_err returns max |x - ref| / max(1, |ref|) (+inf if x has a non-finite value). */
static double lse_err(const float *x, const float *ref, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]))
			return INFINITY;
		e = fmax(e, fabs((double)x[i] - ref[i]) / fmax(1.0, fabs((double)ref[i])));
	}
	return e;
}

/* The sizes of one training-shape problem. */
struct sizes {
	size_t q, k, v, o, lse;
};

static struct sizes sizes_of(const struct attn_shape *s)
{
	size_t bs = (size_t)s->batch * s->seq;
	return (struct sizes){ bs * s->heads * s->d_qk, bs * s->kv_heads * s->d_qk,
			       bs * s->kv_heads * s->d_v, bs * s->heads * s->d_v, bs * s->heads };
}

/* Errors of one forward (out, lse) or backward (dq, dk, dv) comparison. */
struct errs {
	double e[3];
};

/* fwd_errors runs the forward on fresh inputs (or only poisons, when run is false)
 * and measures O and lse against attn_fwd_cpu. */
static struct errs fwd_errors(struct attn_shape s, uint64_t seed, bool run)
{
	struct sizes z = sizes_of(&s);
	struct tensor q = tensor_random(z.q, 2.0, seed, 1), k = tensor_random(z.k, 1.0, seed, 2),
		      v = tensor_random(z.v, 1.0, seed, 3);
	float *o_ref = malloc(z.o * sizeof(float)), *lse_ref = malloc(z.lse * sizeof(float));
	ck_assert(o_ref && lse_ref);
	ck_assert_int_eq(attn_fwd_cpu(&s, q.f, k.f, v.f, o_ref, lse_ref), MB_OK);
	void *d_q = upload(q.bits, z.q * 2), *d_k = upload(k.bits, z.k * 2),
	     *d_v = upload(v.bits, z.v * 2), *d_o = poisoned(z.o * 2), *d_lse = poisoned(z.lse * 4);
	if (run)
		ck_assert_int_eq(attn_fwd_cuda(&s, d_q, d_k, d_v, d_o, d_lse, stream), MB_OK);
	float *o = download_bf16(d_o, z.o), *lse = download_f32(d_lse, z.lse);
	struct errs e = { { scaled_err(o, o_ref, z.o), lse_err(lse, lse_ref, z.lse), 0 } };
	cudaFree(d_q), cudaFree(d_k), cudaFree(d_v), cudaFree(d_o), cudaFree(d_lse);
	tensor_free(&q), tensor_free(&k), tensor_free(&v);
	free(o_ref), free(lse_ref), free(o), free(lse);
	return e;
}

/* bwd_errors runs forward and backward on the GPU and measures dQ, dK, dV against
 * attn_bwd_cpu given the CPU forward's O and lse (each side its own forward). */
static struct errs bwd_errors(struct attn_shape s, uint64_t seed)
{
	struct sizes z = sizes_of(&s);
	struct tensor q = tensor_random(z.q, 2.0, seed, 1), k = tensor_random(z.k, 1.0, seed, 2),
		      v = tensor_random(z.v, 1.0, seed, 3), dout = tensor_random(z.o, 1.0, seed, 4);
	float *ref = malloc((z.o + z.lse + z.q + z.k + z.v) * sizeof(float));
	ck_assert_ptr_nonnull(ref);
	float *o = ref, *lse = o + z.o, *dq = lse + z.lse, *dk = dq + z.q, *dv = dk + z.k;
	ck_assert_int_eq(attn_fwd_cpu(&s, q.f, k.f, v.f, o, lse), MB_OK);
	ck_assert_int_eq(attn_bwd_cpu(&s, q.f, k.f, v.f, o, dout.f, lse, dq, dk, dv), MB_OK);
	void *d_q = upload(q.bits, z.q * 2), *d_k = upload(k.bits, z.k * 2),
	     *d_v = upload(v.bits, z.v * 2), *d_do = upload(dout.bits, z.o * 2),
	     *d_o = poisoned(z.o * 2), *d_lse = poisoned(z.lse * 4), *d_dq = poisoned(z.q * 2),
	     *d_dk = poisoned(z.k * 2), *d_dv = poisoned(z.v * 2),
	     *d_work = poisoned(attn_bwd_cuda_workspace(&s));
	ck_assert_int_eq(attn_fwd_cuda(&s, d_q, d_k, d_v, d_o, d_lse, stream), MB_OK);
	ck_assert_int_eq(attn_bwd_cuda(&s, d_q, d_k, d_v, d_o, d_do, d_lse, d_dq, d_dk, d_dv,
				       d_work, stream), MB_OK);
	float *g_dq = download_bf16(d_dq, z.q), *g_dk = download_bf16(d_dk, z.k),
	      *g_dv = download_bf16(d_dv, z.v);
	struct errs e = { { scaled_err(g_dq, dq, z.q), scaled_err(g_dk, dk, z.k),
			    scaled_err(g_dv, dv, z.v) } };
	cudaFree(d_q), cudaFree(d_k), cudaFree(d_v), cudaFree(d_do), cudaFree(d_o);
	cudaFree(d_lse), cudaFree(d_dq), cudaFree(d_dk), cudaFree(d_dv), cudaFree(d_work);
	tensor_free(&q), tensor_free(&k), tensor_free(&v), tensor_free(&dout);
	free(ref), free(g_dq), free(g_dk), free(g_dv);
	return e;
}

/* Training shapes: batch, seq, heads, kv_heads, d_qk, d_v, causal. */
static const int cases[][7] = {
	{ 1, 1, 4, 4, 192, 128, 1 },   { 1, 17, 4, 4, 192, 128, 1 },  { 1, 64, 4, 4, 192, 128, 1 },
	{ 1, 127, 4, 4, 192, 128, 1 }, { 1, 128, 4, 4, 192, 128, 1 }, { 1, 300, 4, 4, 192, 128, 1 },
	{ 2, 100, 2, 2, 192, 128, 0 }, { 2, 17, 2, 2, 128, 128, 1 },  { 2, 128, 2, 2, 128, 128, 1 },
	{ 2, 300, 2, 2, 128, 128, 1 }, { 1, 127, 2, 2, 128, 128, 0 }, { 1, 64, 8, 2, 128, 128, 1 },
	{ 1, 300, 8, 2, 128, 128, 1 }, { 1, 200, 8, 2, 192, 128, 0 }, { 1, 1, 3, 1, 64, 64, 1 },
	{ 1, 100, 3, 1, 64, 64, 1 },    { 2, 130, 4, 2, 192, 128, 1 },
	/* the presets' head dims (v3-tiny 48/32, v3-small 96/64), and pairs with no exact
	 * instantiation, run on a square tile (max dim rounded up to 64) */
	{ 1, 130, 4, 4, 48, 32, 1 },    { 2, 77, 4, 2, 48, 32, 0 },    { 1, 300, 4, 4, 96, 64, 1 },
	{ 2, 64, 4, 2, 96, 64, 1 },     { 1, 70, 4, 2, 80, 48, 1 },    { 1, 100, 2, 2, 32, 32, 0 },
	{ 1, 130, 2, 1, 160, 144, 1 },  { 1, 65, 2, 2, 256, 256, 1 },
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static struct attn_shape shape_of(const int *c)
{
	return (struct attn_shape){ c[0], c[1], c[2], c[3], c[4], c[5], c[6] != 0,
				    (float)(1.0 / sqrt(c[4])) };
}

START_TEST(forward_matches_reference)
{
	struct attn_shape s = shape_of(cases[_i]);
	struct errs e = fwd_errors(s, 100 + _i, true);
	printf("fwd B%d S%d H%d G%d %d/%d causal %d: o %.3g lse %.3g\n", s.batch, s.seq, s.heads,
	       s.kv_heads, s.d_qk, s.d_v, s.causal, e.e[0], e.e[1]);
	ck_assert_msg(e.e[0] <= OUT_TOL && e.e[1] <= LSE_TOL, "case %d: o %g lse %g", _i, e.e[0],
		      e.e[1]);
}
END_TEST

START_TEST(backward_matches_reference)
{
	struct attn_shape s = shape_of(cases[_i]);
	struct errs e = bwd_errors(s, 200 + _i);
	printf("bwd B%d S%d H%d G%d %d/%d causal %d: dq %.3g dk %.3g dv %.3g\n", s.batch, s.seq,
	       s.heads, s.kv_heads, s.d_qk, s.d_v, s.causal, e.e[0], e.e[1], e.e[2]);
	ck_assert_msg(e.e[0] <= GRAD_TOL && e.e[1] <= GRAD_TOL && e.e[2] <= GRAD_TOL,
		      "case %d: dq %g dk %g dv %g", _i, e.e[0], e.e[1], e.e[2]);
}
END_TEST

START_TEST(poisoned_output_fails_the_check)
{
	struct errs e = fwd_errors(shape_of(cases[3]), 7, false);
	ck_assert(isinf(e.e[0]) && isinf(e.e[1]));
}
END_TEST

/* decode_errors runs decode on a fresh cache (shared: v is k, MLA's absorbed form)
 * and measures O and lse against attn_decode_cpu. */
static struct errs decode_errors(struct attn_decode_shape s, bool shared, uint64_t seed)
{
	size_t nq = (size_t)s.batch * s.heads * s.d_qk, no = (size_t)s.batch * s.heads * s.d_v;
	size_t rows = (size_t)s.batch * s.ctx * s.kv_heads, nl = (size_t)s.batch * s.heads;
	struct tensor q = tensor_random(nq, 2.0, seed, 1), k = tensor_random(rows * s.k_stride, 1.0, seed, 2),
		      v = tensor_random(shared ? 1 : rows * s.v_stride, 1.0, seed, 3);
	float *o_ref = malloc(no * sizeof(float)), *lse_ref = malloc(nl * sizeof(float));
	ck_assert(o_ref && lse_ref);
	ck_assert_int_eq(attn_decode_cpu(&s, q.f, k.f, shared ? k.f : v.f, o_ref, lse_ref), MB_OK);
	void *d_q = upload(q.bits, nq * 2), *d_k = upload(k.bits, k.n * 2);
	void *d_v = shared ? d_k : upload(v.bits, v.n * 2);
	void *d_o = poisoned(no * 2), *d_lse = poisoned(nl * 4);
	size_t ws = attn_decode_cuda_workspace(&s);
	ck_assert_uint_gt(ws, 0);
	void *d_ws = poisoned(ws);   /* partials poisoned too: a split left unwritten shows */
	ck_assert_int_eq(attn_decode_cuda(&s, d_q, d_k, d_v, d_o, d_lse, d_ws, ws, stream), MB_OK);
	float *o = download_bf16(d_o, no), *lse = download_f32(d_lse, nl);
	struct errs e = { { scaled_err(o, o_ref, no), lse_err(lse, lse_ref, nl), 0 } };
	cudaFree(d_q), cudaFree(d_k), cudaFree(d_o), cudaFree(d_lse), cudaFree(d_ws);
	if (!shared)
		cudaFree(d_v);
	tensor_free(&q), tensor_free(&k), tensor_free(&v);
	free(o_ref), free(lse_ref), free(o), free(lse);
	return e;
}

/* Decode shapes: batch, ctx, heads, kv_heads, d_qk, d_v, k_stride, v_stride, shared. */
static const int dec_cases[][9] = {
	{ 2, 1, 8, 8, 128, 128, 192, 160, 0 },     { 2, 1000, 8, 8, 128, 128, 192, 160, 0 },
	{ 2, 4096, 8, 8, 128, 128, 128, 128, 0 },  { 1, 1000, 32, 2, 128, 128, 128, 128, 0 },
	{ 1, 1000, 40, 1, 64, 64, 64, 72, 0 },     { 1, 500, 4, 4, 192, 128, 192, 128, 0 },
	{ 2, 1, 16, 1, 576, 512, 576, 576, 1 },    { 2, 1000, 16, 1, 576, 512, 576, 576, 1 },
	{ 2, 4096, 16, 1, 576, 512, 576, 576, 1 }, { 1, 1000, 128, 1, 576, 512, 576, 576, 1 },
	{ 1, 333, 16, 1, 576, 512, 576, 512, 0 },
};
#define NDEC ((int)(sizeof(dec_cases) / sizeof(dec_cases[0])))

START_TEST(decode_matches_reference)
{
	const int *c = dec_cases[_i];
	struct attn_decode_shape s = { c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
				       (float)(1.0 / sqrt(c[4])) };
	struct errs e = decode_errors(s, c[8] != 0, 300 + _i);
	printf("decode B%d ctx%d H%d G%d %d/%d shared %d: o %.3g lse %.3g\n", s.batch, s.ctx,
	       s.heads, s.kv_heads, s.d_qk, s.d_v, c[8], e.e[0], e.e[1]);
	ck_assert_msg(e.e[0] <= OUT_TOL && e.e[1] <= LSE_TOL, "decode case %d: o %g lse %g", _i,
		      e.e[0], e.e[1]);
}
END_TEST

START_TEST(rejects_what_v1_does_not_take)
{
	uint16_t *d = poisoned(1 << 20);
	float *l = poisoned(1 << 16);
	struct attn_shape s = { 1, 64, 4, 4, 88, 96, true, 0.1f };   /* 88: not a multiple of 16 */
	ck_assert_int_eq(attn_fwd_cuda(&s, d, d, d, d, l, stream), MB_ERR_UNSUPPORTED);
	s.d_qk = 272;   /* over 256 */
	ck_assert_int_eq(attn_fwd_cuda(&s, d, d, d, d, l, stream), MB_ERR_UNSUPPORTED);
	s.d_qk = s.d_v = 64;
	s.kv_heads = 3;
	ck_assert_int_eq(attn_fwd_cuda(&s, d, d, d, d, l, stream), MB_ERR_ARG);
	s.kv_heads = 2;
	ck_assert_int_eq(attn_fwd_cuda(&s, d + 1, d, d, d, l, stream), MB_ERR_ARG);
	ck_assert_int_eq(attn_bwd_cuda(&s, d, d, d, d, d, l, d, d, d, NULL, stream), MB_ERR_ARG);
	ck_assert_uint_eq(attn_bwd_cuda_workspace(&s), (size_t)64 * 4 * (64 + 1) * 4);
	struct attn_decode_shape ds = { 1, 10, 4, 1, 576, 128, 576, 576, 0.1f };
	ck_assert_int_eq(attn_decode_cuda(&ds, d, d, d, d, l, d, 1 << 20, stream),
			 MB_ERR_UNSUPPORTED);
	ds.d_v = 512;
	ds.k_stride = 580;
	ck_assert_int_eq(attn_decode_cuda(&ds, d, d, d, d, l, d, 1 << 20, stream), MB_ERR_ARG);
	cudaFree(d);
	cudaFree(l);
}
END_TEST

/* The decode workspace: whole rows of B * H * splits partials (d_v + 2 floats each),
 * 0 for a shape decode refuses, and a call with less than it asks, a NULL or a
 * misaligned one is MB_ERR_ARG before any launch. */
START_TEST(decode_workspace_is_checked)
{
	struct attn_decode_shape ds = { 2, 1000, 16, 1, 576, 512, 576, 576, 0.05f };
	size_t ws = attn_decode_cuda_workspace(&ds), row = (size_t)(512 + 2) * sizeof(float);
	ck_assert_uint_gt(ws, 0);
	ck_assert_uint_eq(ws % (2 * 16 * row), 0);
	ck_assert_uint_le(ws / (2 * 16 * row), 1000 / 32 + 1);   /* at most one split a tile */
	uint16_t *d = poisoned(1 << 22);
	float *l = poisoned(1 << 12);
	void *w = poisoned(ws + 16);
	ck_assert_int_eq(attn_decode_cuda(&ds, d, d, d, d, l, w, ws - 4, stream), MB_ERR_ARG);
	ck_assert_int_eq(attn_decode_cuda(&ds, d, d, d, d, l, NULL, ws, stream), MB_ERR_ARG);
	ck_assert_int_eq(attn_decode_cuda(&ds, d, d, d, d, l, (char *)w + 4, ws, stream),
			 MB_ERR_ARG);
	ds.kv_heads = 3;
	ck_assert_uint_eq(attn_decode_cuda_workspace(&ds), 0);
	cudaFree(d), cudaFree(l), cudaFree(w);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("gpu_attention");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 600);
	tcase_add_loop_test(core, forward_matches_reference, 0, NCASES);
	tcase_add_loop_test(core, backward_matches_reference, 0, NCASES);
	tcase_add_loop_test(core, decode_matches_reference, 0, NDEC);
	tcase_add_test(core, poisoned_output_fails_the_check);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, rejects_what_v1_does_not_take);
	tcase_add_test(limits, decode_workspace_is_checked);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	return gpu_main(make_suite);
}
