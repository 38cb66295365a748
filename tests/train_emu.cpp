/*
 * train_emu.cpp - runs the CUDA training operators of kernels/train (their .cu files,
 * launchers and kernels) on the host and checks every one against its CPU reference on
 * fresh random inputs (MB_TEST_SEED replays a run), sizes off the block sizes, outputs
 * poisoned (NaN) first. Prints one line per check with its measured error.
 *
 * The .cu files are compiled as host C++ with TRAIN_EMULATE: TR_LAUNCH calls emu_run,
 * which runs the kernel with one POSIX thread per CUDA thread of a block (created once per
 * launch) and the grid's blocks one after the other; __syncthreads is a barrier of the
 * block's threads, __shfl_xor_sync an exchange through a per-warp area (two slots
 * alternating, one barrier each), atomicAdd a mutex, __shared__ a static (one block at
 * a time). The launchers run as written: grid sizes, workspace carving, kernel order.
 *
 * What it catches: index math, grid-stride and tail handling, the reductions' lane and
 * warp bookkeeping, workspace layouts, a barrier missing between a shared write and a
 * read in another warp (often, not always: threads race for real), results that depend
 * on atomics' order. What it cannot: device math (expf, sqrtf are the host's here), the
 * memory model beyond barriers, launch limits (registers, shared memory), timing.
 * Exit 0 when all checks pass, 1 otherwise.
 */
#include <cuda_runtime_api.h>
#include <vector_functions.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <vector>

#undef __global__
#undef __device__
#undef __shared__
#undef __forceinline__
#define __global__
#define __device__
#define __shared__ static
#define __forceinline__ inline
#define __restrict__ __restrict

using std::max;
using std::min;

static thread_local uint3 threadIdx, blockIdx;
static thread_local dim3 blockDim, gridDim;
static thread_local unsigned emu_slot;   /* warp collectives this thread has joined */

struct emu_warp {
	pthread_barrier_t bar;
	float x[2][32];
};
static emu_warp emu_warps[32];
static pthread_barrier_t emu_block_bar;
static pthread_mutex_t emu_atomic = PTHREAD_MUTEX_INITIALIZER;

static void __syncthreads(void)
{
	pthread_barrier_wait(&emu_block_bar);
}

static float __shfl_xor_sync(unsigned mask, float v, int off)
{
	(void)mask;
	emu_warp &w = emu_warps[threadIdx.x / 32];
	const unsigned lane = threadIdx.x % 32, s = emu_slot++ & 1;
	w.x[s][lane] = v;
	pthread_barrier_wait(&w.bar);
	return w.x[s][lane ^ off];
}

static int atomicAdd(int *p, int v)
{
	pthread_mutex_lock(&emu_atomic);
	int old = *p;
	*p = old + v;
	pthread_mutex_unlock(&emu_atomic);
	return old;
}

/* One thread of a launch: the kernel body as a function of no arguments (a lambda). */
template <class F> struct emu_thread_arg {
	F *body;
	dim3 grid, block;
	unsigned tid;
};

/* emu_thread runs its thread of every block in grid order, a barrier between blocks. */
template <class F> static void *emu_thread(void *p)
{
	emu_thread_arg<F> *a = (emu_thread_arg<F> *)p;
	threadIdx = make_uint3(a->tid, 0, 0);
	blockDim = a->block;
	gridDim = a->grid;
	emu_slot = 0;
	for (unsigned z = 0; z < a->grid.z; z++)
		for (unsigned y = 0; y < a->grid.y; y++)
			for (unsigned x = 0; x < a->grid.x; x++) {
				blockIdx = make_uint3(x, y, z);
				(*a->body)();
				pthread_barrier_wait(&emu_block_bar);
			}
	return NULL;
}

/* emu_run runs body over grid with block.x threads per block (a multiple of 32). */
template <class F> static void emu_run(F body, dim3 grid, dim3 block)
{
	const unsigned n = block.x;
	std::vector<pthread_t> th(n);
	std::vector<emu_thread_arg<F> > args(n);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_barrier_init(&emu_block_bar, NULL, n);
	for (unsigned w = 0; w < n / 32; w++)
		pthread_barrier_init(&emu_warps[w].bar, NULL, 32);
	for (unsigned t = 0; t < n; t++) {
		args[t] = { &body, grid, block, t };
		if (pthread_create(&th[t], &attr, emu_thread<F>, &args[t])) {
			fprintf(stderr, "train_emu: pthread_create failed\n");
			exit(1);
		}
	}
	for (unsigned t = 0; t < n; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&emu_block_bar);
	for (unsigned w = 0; w < n / 32; w++)
		pthread_barrier_destroy(&emu_warps[w].bar);
	pthread_attr_destroy(&attr);
}

#define TRAIN_EMULATE 1
#include "train_cuda.cuh"
#include "embedding.cu"
#include "rmsnorm.cu"
#include "swiglu.cu"
#include "xent.cu"
#include "optim.cu"
#include "moe_bwd.cu"
#include "netops.cu"
#include "attnblk.cu"
#include "fp8_layout.cu"

extern "C" {
#include "rng.h"
#include "permute.h"
#include "route.h"
#include "net_ops.h"
#include "fp8.h"
}
#include "test_seed.h"

/* ---- inputs and comparisons ---- */

/* uniform returns n values uniform in [lo, hi) from the run's seed and stream. */
static std::vector<float> uniform(size_t n, double lo, double hi, uint64_t stream)
{
	struct mb_rng rng;
	std::vector<float> x(n);
	mb_rng_seed(&rng, test_seed(), stream);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)mb_rng_uniform(&rng, lo, hi);
	return x;
}

/* scaled_err returns max |x - ref| / max |ref| (the absolute error when ref is all
 * zeros); +inf when x holds a non-finite value where ref is finite. */
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

/* widen returns BF16 bits as floats. */
static std::vector<float> widen(const std::vector<uint16_t> &b)
{
	std::vector<float> f(b.size());
	for (size_t i = 0; i < b.size(); i++)
		f[i] = bf16_to_float(b[i]);
	return f;
}

/* check prints one result line; returns 1 when err <= tol and rc is MB_OK. */
static int check(const char *what, int rc, double err, double tol)
{
	const int ok = rc == MB_OK && err <= tol;
	printf("%s %-44s max err %.3g (tol %.0e)%s\n", ok ? "ok  " : "FAIL", what, err, tol,
	       rc == MB_OK ? "" : " launcher failed");
	return ok;
}

/* ---- the checks ---- */

/* embedding_checks: gather and deterministic scatter-add, bit for bit, with one id
 * taking most tokens (a bucket longer than a block) and some ids none. */
static int embedding_checks(long T, int V, int D, uint64_t s)
{
	std::vector<float> table = uniform((size_t)V * D, -1, 1, s), dout = uniform((size_t)T * D, -1, 1, s + 1);
	std::vector<float> u = uniform((size_t)T, 0, 1, s + 2);
	std::vector<int32_t> ids(T);
	for (long t = 0; t < T; t++)
		ids[t] = u[t] < 0.6f ? 5 % V : (int32_t)(u[t] * 1e4f) % (V - V / 4);
	std::vector<float> out(T * D, NAN), ref(T * D);
	int ok = 1, rc = embedding_fwd_cuda(table.data(), V, ids.data(), T, D, out.data(), NULL);
	embedding_fwd_cpu(table.data(), V, ids.data(), T, D, ref.data());
	ok &= check("embedding fwd (exact)", rc, scaled_err(out.data(), ref.data(), out.size()), 0);
	std::vector<float> dt = uniform((size_t)V * D, -1, 1, s + 3), dt_ref = dt;
	std::vector<uint8_t> work(embedding_bwd_workspace(T, V), 0xff);
	rc = embedding_bwd_cuda(dout.data(), ids.data(), T, D, V, dt.data(), work.data(), work.size(), NULL);
	embedding_bwd_cpu(dout.data(), ids.data(), T, D, V, dt_ref.data());
	ok &= check("embedding bwd scatter-add (exact)", rc, scaled_err(dt.data(), dt_ref.data(), dt.size()), 0);
	rc = embedding_bwd_cuda(dout.data(), ids.data(), T, D, V, dt.data(), work.data(), work.size() - 1, NULL);
	ok &= check("embedding bwd refuses a short workspace", rc == MB_ERR_ARG ? MB_OK : rc, 0, 0);
	return ok;
}

/* rmsnorm_checks: forward, backward and the two-level gain gradient. */
static int rmsnorm_checks(long R, int D, uint64_t s)
{
	std::vector<float> x = uniform(R * D, -2, 2, s), g = uniform(D, 0.5, 1.5, s + 1);
	std::vector<float> dy = uniform(R * D, -1, 1, s + 2), dg = uniform(D, -1, 1, s + 3), dg_ref = dg;
	std::vector<float> y(R * D, NAN), r(R, NAN), dx(R * D, NAN), y_ref(R * D), r_ref(R), dx_ref(R * D);
	std::vector<uint8_t> work(rmsnorm_bwd_workspace(R, D), 0xff);
	char what[64];
	int ok = 1, rc = rmsnorm_fwd_cuda(x.data(), g.data(), R, D, 1e-6f, y.data(), r.data(), NULL);
	rmsnorm_fwd_cpu(x.data(), g.data(), R, D, 1e-6f, y_ref.data(), r_ref.data());
	snprintf(what, sizeof(what), "rmsnorm fwd y R%ld D%d", R, D);
	ok &= check(what, rc, scaled_err(y.data(), y_ref.data(), y.size()), 1e-5);
	ok &= check("rmsnorm fwd rstd", rc, scaled_err(r.data(), r_ref.data(), R), 1e-5);
	rc = rmsnorm_bwd_cuda(dy.data(), x.data(), g.data(), r_ref.data(), R, D, dx.data(), dg.data(),
			      work.data(), work.size(), NULL);
	rmsnorm_bwd_cpu(dy.data(), x.data(), g.data(), r_ref.data(), R, D, dx_ref.data(), dg_ref.data());
	ok &= check("rmsnorm bwd dx", rc, scaled_err(dx.data(), dx_ref.data(), dx.size()), 1e-5);
	ok &= check("rmsnorm bwd dgain (two-level)", rc, scaled_err(dg.data(), dg_ref.data(), D), 1e-5);
	return ok;
}

/* swiglu_checks: the fused [R, 2F] layout (up = gate + F, ld = 2F). */
static int swiglu_checks(long R, int F, uint64_t s)
{
	const long ld = 2L * F;
	std::vector<float> in = uniform(R * ld, -4, 4, s), dh = uniform(R * F, -1, 1, s + 1);
	std::vector<float> h(R * F, NAN), h_ref(R * F), d(R * ld, NAN), d_ref(R * ld, NAN);
	int ok = 1, rc = swiglu_fwd_cuda(in.data(), in.data() + F, R, F, ld, h.data(), NULL);
	swiglu_fwd_cpu(in.data(), in.data() + F, R, F, ld, h_ref.data());
	ok &= check("swiglu fwd (fused gate|up layout)", rc, scaled_err(h.data(), h_ref.data(), h.size()), 1e-5);
	rc = swiglu_bwd_cuda(dh.data(), in.data(), in.data() + F, R, F, ld, d.data(), d.data() + F, NULL);
	swiglu_bwd_cpu(dh.data(), in.data(), in.data() + F, R, F, ld, d_ref.data(), d_ref.data() + F);
	ok &= check("swiglu bwd dgate|dup", rc, scaled_err(d.data(), d_ref.data(), d.size()), 1e-5);
	return ok;
}

/* xent_inputs fills logits (one row shifted by +1000, one by -1000: the running max
 * must keep them finite) and targets (row 1 without one). */
static void xent_inputs(long R, int V, uint64_t s, std::vector<float> &x, std::vector<int32_t> &tgt)
{
	x = uniform(R * V, -6, 6, s);
	std::vector<float> u = uniform(R, 0, 1, s + 1);
	tgt.resize(R);
	for (long r = 0; r < R; r++)
		tgt[r] = r == 1 ? -1 : (int32_t)(u[r] * V) % V;
	for (int v = 0; v < V; v++)
		x[2 * V + v] += 1000.0f, x[3 * V + v] -= 1000.0f;
}

/* xent_checks: FP32 and BF16 logits, losses and gradients, the BF16 one in place. */
static int xent_checks(long R, int V, uint64_t s)
{
	std::vector<float> x, loss(R, NAN), loss_ref(R), dx(R * V, NAN), dx_ref(R * V);
	std::vector<int32_t> tgt;
	xent_inputs(R, V, s, x, tgt);
	const float dscale = 1.0f / (float)(R - 1);
	char what[64];
	int ok = 1, rc = xent_cuda(x.data(), XENT_FP32, tgt.data(), R, V, dscale, loss.data(), dx.data(), NULL);
	xent_cpu(x.data(), XENT_FP32, tgt.data(), R, V, dscale, loss_ref.data(), dx_ref.data());
	snprintf(what, sizeof(what), "xent fp32 loss R%ld V%d", R, V);
	ok &= check(what, rc, scaled_err(loss.data(), loss_ref.data(), R), 1e-5);
	ok &= check("xent fp32 dlogits", rc, scaled_err(dx.data(), dx_ref.data(), dx.size()), 1e-5);
	std::vector<uint16_t> xb(R * V), gb_ref(R * V);
	for (size_t i = 0; i < xb.size(); i++)
		xb[i] = bf16_from_float(x[i]);
	std::vector<uint16_t> xb_in = xb;   /* overwritten by its gradient */
	std::fill(loss.begin(), loss.end(), NAN);
	rc = xent_cuda(xb_in.data(), XENT_BF16, tgt.data(), R, V, dscale, loss.data(), xb_in.data(), NULL);
	xent_cpu(xb.data(), XENT_BF16, tgt.data(), R, V, dscale, loss_ref.data(), gb_ref.data());
	ok &= check("xent bf16 loss", rc, scaled_err(loss.data(), loss_ref.data(), R), 1e-5);
	ok &= check("xent bf16 dlogits (in place)", rc,
		    scaled_err(widen(xb_in).data(), widen(gb_ref).data(), xb.size()), 1e-2);
	return ok;
}

/* adamw_checks: three segments with a gap (left untouched), clipping scale read from
 * "device" memory, the BF16 copy. */
static int adamw_checks(long n, uint64_t s)
{
	const struct adamw_segment segs[3] = { { 0, n / 3, 0.1f }, { n / 3, n / 6, 0.0f },
					       { n / 2 + 100, n - n / 2 - 100, 0.1f } };
	const struct adamw_config c = { 1e-3f, 0.9f, 0.95f, 1e-8f, 3 };
	std::vector<float> p = uniform(n, -1, 1, s), g = uniform(n, -1, 1, s + 1);
	std::vector<float> m = uniform(n, -0.1, 0.1, s + 2), v = uniform(n, 0, 0.01, s + 3);
	std::vector<float> p_ref = p, m_ref = m, v_ref = v;
	std::vector<uint16_t> b(n, 0xffff), b_ref(n, 0xffff);
	const float scale = 0.7f;
	int ok = 1, rc = adamw_cuda(&c, segs, 3, n, p.data(), g.data(), m.data(), v.data(), &scale,
				    b.data(), NULL);
	adamw_cpu(&c, segs, 3, n, p_ref.data(), g.data(), m_ref.data(), v_ref.data(), scale, b_ref.data());
	ok &= check("adamw param (3 segments, a gap)", rc, scaled_err(p.data(), p_ref.data(), n), 1e-6);
	ok &= check("adamw m", rc, scaled_err(m.data(), m_ref.data(), n), 1e-6);
	ok &= check("adamw v", rc, scaled_err(v.data(), v_ref.data(), n), 1e-6);
	std::vector<float> bf = widen(b), bf_ref = widen(b_ref);
	double gap = 0;   /* the gap keeps its NaN poison in both */
	for (long i = n / 2; i < n / 2 + 100; i++)
		gap += !isnan(bf[i]) || !isnan(bf_ref[i]);
	for (long i = n / 2; i < n / 2 + 100; i++)
		bf[i] = bf_ref[i] = 0;
	ok &= check("adamw bf16 copy", rc, scaled_err(bf.data(), bf_ref.data(), n), 1e-2);
	ok &= check("adamw leaves the gap untouched (count)", rc, gap, 0);
	return ok;
}

/* grad_norm_checks: the two-pass norm and the clipping scale, clipped and not. */
static int grad_norm_checks(long n, uint64_t s)
{
	std::vector<float> g = uniform(n, -1, 1, s);
	std::vector<uint8_t> work(grad_norm_workspace(n), 0xff);
	const double ref = grad_norm_cpu(g.data(), n);
	float norm = NAN, scale = NAN;
	char what[64];
	int ok = 1, rc = grad_norm_cuda(g.data(), n, (float)(ref / 2), &norm, &scale, work.data(),
					work.size(), NULL);
	snprintf(what, sizeof(what), "grad norm n=%ld (relative)", n);
	ok &= check(what, rc, fabs(norm - ref) / ref, 1e-6);
	ok &= check("clip scale, clipping", rc, fabs(scale - grad_clip_scale(ref, (float)(ref / 2))), 1e-6);
	rc = grad_norm_cuda(g.data(), n, (float)(ref * 2), &norm, &scale, work.data(), work.size(), NULL);
	ok &= check("clip scale, under the limit (exactly 1)", rc, fabs(scale - 1.0f), 0);
	return ok;
}

/* route_some routes T tokens over c with Zipf-skewed logits. */
static void route_some(const struct route_config &c, long T, uint64_t s, std::vector<float> &logits,
		       std::vector<int32_t> &idx, std::vector<float> &w)
{
	logits.resize(T * c.experts);
	idx.resize(T * c.topk);
	w.resize(T * c.topk);
	route_logits_random(logits.data(), T, c.experts, 1.0, test_seed(), s);
	route_cpu(&c, logits.data(), NULL, T, idx.data(), w.data());
}

/* router_checks: the router backward, the expert loads and the bias update. */
static int router_checks(long T, uint64_t s)
{
	const struct route_config c = { 64, 6, 8, 4, 1, 0, 2.5f };
	std::vector<float> logits, w;
	std::vector<int32_t> idx;
	route_some(c, T, s, logits, idx, w);
	std::vector<float> dw = uniform(T * c.topk, -1, 1, s + 1), dl(T * c.experts, NAN), dl_ref(T * c.experts);
	int ok = 1, rc = moe_router_bwd_cuda(logits.data(), idx.data(), dw.data(), T, c.experts, c.topk,
					     c.route_scale, dl.data(), NULL);
	moe_router_bwd_cpu(logits.data(), idx.data(), dw.data(), T, c.experts, c.topk, c.route_scale,
			   dl_ref.data());
	ok &= check("router bwd dlogits (E 64, K 6)", rc, scaled_err(dl.data(), dl_ref.data(), dl.size()), 1e-5);
	std::vector<int32_t> load(c.experts, -1);
	std::vector<long> load_ref(c.experts, 0);
	rc = moe_expert_load_cuda(idx.data(), T, c.topk, c.experts, load.data(), NULL);
	route_count(idx.data(), T, c.topk, load_ref.data());
	double diff = 0;
	for (int e = 0; e < c.experts; e++)
		diff = fmax(diff, fabs((double)load[e] - load_ref[e]));
	ok &= check("expert load (exact)", rc, diff, 0);
	std::vector<float> bias = uniform(c.experts, -0.01, 0.01, s + 2), bias_ref = bias;
	rc = moe_bias_update_cuda(bias.data(), load.data(), c.experts, 1e-3f, NULL);
	route_bias_update(bias_ref.data(), load_ref.data(), c.experts, 1e-3f);
	ok &= check("bias update (exact)", rc, scaled_err(bias.data(), bias_ref.data(), c.experts), 0);
	return ok;
}

/* combine_checks: the combine's backward over permute_experts' expert-major layout. */
static int combine_checks(long T, int H, uint64_t s)
{
	const struct route_config c = { 8, 3, 1, 1, 1, 0, 2.5f };
	std::vector<float> logits, w;
	std::vector<int32_t> idx, meta(T * PERMUTE_META_INTS(c.topk));
	route_some(c, T, s, logits, idx, w);
	permute_meta_init(0, idx.data(), w.data(), T, c.topk, meta.data());
	struct permute_experts x;
	if (permute_experts_build(meta.data(), T, c.topk, 0, c.experts, &x) != MB_OK)
		return check("combine bwd: permute_experts_build", MB_ERR_NOMEM, 0, 0);
	const long P = x.rows_padded;
	std::vector<float> yf = uniform(P * H, -1, 1, s + 1), dout = uniform(T * H, -1, 1, s + 2);
	std::vector<uint16_t> y(P * H), dy(P * H, 0xffff), dy_ref(P * H, 0xffff);
	for (size_t i = 0; i < y.size(); i++)
		y[i] = bf16_from_float(yf[i]);
	std::vector<float> dw(T * c.topk, NAN), dw_ref(T * c.topk);
	for (long t = 0; t < T; t += 5)   /* tokens with fewer rows here (-1 after the last) */
		x.copy_rows[t * c.topk + c.topk - 1] = -1;
	int ok = 1, rc = moe_combine_bwd_cuda(y.data(), dout.data(), x.copy_rows, x.copy_weights, T,
					      c.topk, H, x.row_copy, P, dy.data(), dw.data(), NULL);
	moe_combine_bwd_cpu(y.data(), dout.data(), x.copy_rows, x.copy_weights, T, c.topk, H,
			    x.row_copy, P, dy_ref.data(), dw_ref.data());
	ok &= check("combine bwd dy (expert-major, exact)", rc,
		    scaled_err(widen(dy).data(), widen(dy_ref).data(), dy.size()), 0);
	ok &= check("combine bwd dw (gating weights)", rc, scaled_err(dw.data(), dw_ref.data(), dw.size()), 1e-5);
	permute_experts_free(&x);
	return ok;
}

#include "train_emu_netops.h"
#include "train_emu_attnblk.h"
#include "train_emu_fp8.h"

int main(void)
{
	int ok = 1;
	printf("train_emu: seed 0x%llx (MB_TEST_SEED replays)\n", (unsigned long long)test_seed());
	ok &= embedding_checks(517, 37, 300, 10);
	ok &= rmsnorm_checks(300, 300, 20);
	ok &= rmsnorm_checks(5, 1000, 30);
	ok &= rmsnorm_checks(7, 20, 35);   /* a row narrower than a warp */
	ok &= swiglu_checks(33, 300, 40);
	ok &= xent_checks(9, 1337, 50);
	ok &= xent_checks(5, 100, 55);   /* fewer logits than threads: idle lanes in the max */
	ok &= adamw_checks(3001, 60);
	ok &= grad_norm_checks(300001, 70);
	ok &= grad_norm_checks(1000, 80);
	ok &= router_checks(77, 90);
	ok &= combine_checks(45, 300, 100);
	ok &= netops_checks(110);
	ok &= attnblk_checks(120);
	ok &= fp8_layout_checks(120);
	return ok ? 0 : 1;
}
