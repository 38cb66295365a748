/*
 * net_ops_cuda.c - the CUDA op table of the training step (net_ops.h): the context
 * (stream, cuBLASLt, the buffers of a step of the opened sizes, allocated once) and the
 * entries other than the linear layers (net_ops_lin_cuda.c). Each entry is one or a
 * few kernels of kernels/train (embedding, rmsnorm, swiglu, optim, netops) or
 * kernels/moe (route_cuda) on device pointers; host results come back through the
 * pinned buffer with one synchronous copy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "embedding.h"
#include "net_ops_cuda.h"
#include "netops.h"
#include "optim.h"
#include "rmsnorm.h"
#include "route.h"
#include "status.h"
#include "swiglu.h"

struct net_cuda_ctx net_cuda;

int net_cuda_fail(int err)
{
	if (err && !net_cuda.err)
		net_cuda.err = err;
	return err;
}

#define S (net_cuda.stream)

/* to_host copies bytes of device memory into the pinned buffer and waits. */
static int to_host(const void *d, size_t bytes)
{
	if (bytes > net_cuda.host_bytes)
		return MB_ERR_ARG;
	int err = MB_CUDA_CHECK(cudaMemcpyAsync(net_cuda.host, d, bytes, cudaMemcpyDeviceToHost, S));
	return err ? err : MB_CUDA_CHECK(cudaStreamSynchronize(S));
}

/* ---- layout and elementwise ---- */

static int c_zero(float *x, size_t n)
{
	return MB_CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof(float), S));
}

static int c_copy(const float *x, size_t n, float *y)
{
	return MB_CUDA_CHECK(cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, S));
}

static int c_add(float *y, const float *x, size_t n)
{
	return netop_add_cuda(y, x, (long)n, S);
}

static int c_scale(float *y, float s, size_t n)
{
	return netop_scale_cuda(y, s, (long)n, S);
}

static int c_transpose(int rows, int cols, const float *x, float *y)
{
	return netop_transpose_cuda(rows, cols, x, y, 0, S);
}

static int c_add_transposed(int rows, int cols, const float *x, float *y)
{
	return netop_transpose_cuda(rows, cols, x, y, 1, S);
}

static int c_concat(long rows, int n, const float *a, const float *b, float *y)
{
	/* NOTE: the kernel's a and b are written only when splitting */
	return netop_concat_cuda(rows, n, (float *)a, (float *)b, y, 0, S);
}

static int c_split(long rows, int n, const float *y, float *a, float *b)
{
	return netop_concat_cuda(rows, n, a, b, (float *)y, 1, S);
}

/* ---- embedding, norms, SwiGLU ---- */

/* c_embed_fwd: the whole vocabulary only (a TP slice's zeros are not on the device). */
static int c_embed_fwd(const float *table, long row0, long rows, const int32_t *ids,
		       long tokens, int dim, float *out)
{
	if (row0 != 0 || rows > INT32_MAX)
		return MB_ERR_UNSUPPORTED;
	return embedding_fwd_cuda(table, (int)rows, ids, tokens, dim, out, S);
}

static int c_embed_bwd(const float *dout, const int32_t *ids, long tokens, int dim, long row0,
		       long rows, float *dtable)
{
	if (row0 != 0 || rows > INT32_MAX)
		return MB_ERR_UNSUPPORTED;
	if (embedding_bwd_workspace(tokens, (int)rows) > net_cuda.work_bytes)
		return MB_ERR_ARG;
	return embedding_bwd_cuda(dout, ids, tokens, dim, (int)rows, dtable, net_cuda.work,
				  net_cuda.work_bytes, S);
}

static int c_rmsnorm_fwd(const float *x, const float *gain, long rows, int dim, double eps,
			 float *y)
{
	if (rows > net_cuda.z.rows)
		return MB_ERR_ARG;
	return rmsnorm_fwd_cuda(x, gain, rows, dim, (float)eps, y, net_cuda.rstd, S);
}

/* c_rmsnorm_bwd: 1/rms again from x (the forward's is not kept per call site), then the
 * fused backward, which adds into dgain as the table's entry does. */
static int c_rmsnorm_bwd(const float *dy, const float *x, const float *gain, long rows, int dim,
			 double eps, float *dx, float *dgain, float *work)
{
	(void)work;
	if (rows > net_cuda.z.rows || rmsnorm_bwd_workspace(rows, dim) > net_cuda.work_bytes)
		return MB_ERR_ARG;
	int err = netop_rstd_cuda(x, rows, dim, (float)eps, net_cuda.rstd, S);
	return err ? err : rmsnorm_bwd_cuda(dy, x, gain, net_cuda.rstd, rows, dim, dx, dgain,
					    net_cuda.work, net_cuda.work_bytes, S);
}

static int c_swiglu_fwd(const float *gate, const float *up, long rows, int cols, float *h)
{
	return swiglu_fwd_cuda(gate, up, rows, cols, cols, h, S);
}

static int c_swiglu_bwd(const float *dh, const float *gate, const float *up, long rows, int cols,
			float *dgate, float *dup)
{
	return netop_swiglu_bwd_cuda(dh, gate, up, rows, cols, dgate, dup, S);
}

/* ---- cross-entropy ---- */

static int c_ce_max(const float *lg, long rows, long vocab, double *mx)
{
	return netop_ce_max_cuda(lg, rows, vocab, mx, S);
}

static int c_ce_sum(float *lg, long rows, long vocab, long v0, const int32_t *tgt,
		    const double *mx, double *sum, double *ly)
{
	return netop_ce_sum_cuda(lg, rows, vocab, v0, tgt, mx, sum, ly, S);
}

/* c_ce_grad: the rows' losses come back and are summed in row order, as the CPU does. */
static int c_ce_grad(float *lg, long rows, long vocab, long v0, const int32_t *tgt,
		     const double *mx, const double *sum, const double *ly, double wt,
		     double *loss)
{
	if (rows > net_cuda.z.rows)
		return MB_ERR_ARG;
	int err = netop_ce_grad_cuda(lg, rows, vocab, v0, tgt, mx, sum, ly, wt, net_cuda.rowsd, S);
	if (!err)
		err = to_host(net_cuda.rowsd, (size_t)rows * sizeof(double));
	double l = 0;
	for (long r = 0; !err && r < rows; r++)
		l += ((const double *)net_cuda.host)[r];
	*loss = l;
	return err;
}

/* ---- the MoE gate, permutation, balance ---- */

/* c_route: route_cuda selects on the logits (fbuf takes its unused weights), the gate's
 * scores, weights and expert order follow on the device; the offsets come back, and the
 * loads are their differences (the counts route_count gives). */
static int c_route(const struct route_config *rc, long tokens, bool fixed, const float *bias,
		   double route_scale, float *s, float *fbuf, int32_t *idx, float *wts,
		   long *load, int32_t *order, int32_t *eoff)
{
	int E = rc->experts, err = MB_OK;
	if (E > net_cuda.z.experts || tokens > net_cuda.z.tokens)
		return MB_ERR_ARG;
	if (!fixed)
		err = route_cuda(rc, s, bias, tokens, idx, fbuf, S);
	if (!err)
		err = netop_route_post_cuda(s, idx, tokens, E, rc->topk, route_scale, wts, order,
					    net_cuda.load, S);
	if (!err)
		err = to_host(net_cuda.load, (size_t)(E + 1) * sizeof(int32_t));
	const int32_t *h = net_cuda.host;
	for (int e = 0; !err && e <= E; e++) {
		eoff[e] = h[e];
		if (e < E)
			load[e] = h[e + 1] - h[e];
	}
	return err;
}

static int c_balance_fwd(const int32_t *idx, const float *s, int batch, int seq, int experts,
			 int topk, float *fbal, double *loss)
{
	long T = (long)batch * seq;
	if (T > net_cuda.z.rows)
		return MB_ERR_ARG;
	int err = netop_balance_cuda(idx, s, batch, seq, experts, topk, fbal, net_cuda.rowsd, S);
	if (!err)
		err = to_host(net_cuda.rowsd, (size_t)T * sizeof(double));
	double l = 0;
	for (long t = 0; !err && t < T; t++)
		l += ((const double *)net_cuda.host)[t];
	*loss = l;
	return err;
}

static int c_gate_bwd(const float *s, const float *fbal, const int32_t *idx, const float *wts,
		      const float *dw, long tokens, int seq, int experts, int topk,
		      double route_scale, double alpha, float *ds)
{
	return netop_gate_bwd_cuda(s, fbal, idx, wts, dw, tokens, seq, experts, topk, route_scale,
				   alpha, ds, S);
}

static int c_permute_rows(const float *x, const int32_t *order, long rows, int topk, int dim,
			  float *y)
{
	return netop_permute_rows_cuda(x, order, rows, topk, dim, y, S);
}

static int c_unpermute_add(const float *y, const float *w, const int32_t *order, long rows,
			   int topk, int dim, float *out)
{
	if (rows > net_cuda.z.rows)
		return MB_ERR_ARG;
	return netop_unpermute_add_cuda(y, w, order, rows, topk, dim, out, net_cuda.pos, S);
}

static int c_combine_bwd(const float *dout, const float *y, const float *w, const int32_t *order,
			 long rows, int topk, int dim, float *dy, float *dw)
{
	return netop_combine_bwd_cuda(dout, y, w, order, rows, topk, dim, dy, dw, S);
}

/* c_hash_ints: the selection comes back in pieces of the pinned buffer. */
static uint64_t c_hash_ints(const int32_t *x, size_t n, uint64_t h)
{
	size_t step = net_cuda.host_bytes / sizeof(int32_t);
	for (size_t at = 0; at < n; at += step) {
		size_t k = n - at < step ? n - at : step;
		if (net_cuda_fail(to_host(x + at, k * sizeof(int32_t))))
			return 0;
		const int32_t *hx = net_cuda.host;
		for (size_t j = 0; j < k; j++)
			h = (h ^ (uint64_t)(uint32_t)hx[j]) * 1099511628211ull;
	}
	return h;
}

/* ---- the optimizer ---- */

/* c_adamw_step: net_adamw_step on the device: the global norm and the clipping scale
 * (grad_norm_cuda; non-trainable gradients are zero, so summing all of g counts the
 * trainable ones), then AdamW over the trainable tensors as segments (decay on the
 * matrices). Returns the norm before clipping (NAN, error kept, on failure). */
static double c_adamw_step(const struct net_layout *L, const struct net_adamw *a, long t,
			   float *w, float *g, float *m1, float *m2)
{
	struct adamw_segment *hs = net_cuda.host;
	int n = 0, err = MB_OK;
	if ((size_t)L->n * sizeof(*hs) > net_cuda.host_bytes || L->n > net_cuda.z.tensors)
		err = MB_ERR_ARG;
	err = err ? err : grad_norm_cuda(g, (long)L->total, a->clip > 0 ? (float)a->clip : INFINITY,
					 net_cuda.norm, net_cuda.norm + 1, net_cuda.work,
					 net_cuda.work_bytes, S);
	err = err ? err : to_host(net_cuda.norm, sizeof(float));
	double norm = err ? NAN : *(const float *)net_cuda.host;
	for (int i = 0; !err && i < L->n; i++)
		if (L->t[i].trainable)
			hs[n++] = (struct adamw_segment){ (long)L->t[i].off,
							  (long)(L->t[i].rows * L->t[i].cols),
							  L->t[i].decay ? (float)a->weight_decay : 0 };
	if (!err)
		err = MB_CUDA_CHECK(cudaMemcpyAsync(net_cuda.segs, hs, (size_t)n * sizeof(*hs),
						    cudaMemcpyHostToDevice, S));
	struct adamw_config c = { (float)a->lr, (float)a->beta1, (float)a->beta2, (float)a->eps, t };
	if (!err)
		err = adamw_cuda(&c, net_cuda.segs, n, (long)L->total, w, g, m1, m2, net_cuda.norm + 1,
				 NULL, S);
	/* the pinned segments must outlive the copy */
	if (!err)
		err = MB_CUDA_CHECK(cudaStreamSynchronize(S));
	net_cuda_fail(err);
	return err ? NAN : norm;
}

/* c_sync waits for the stream and returns the first error kept since the last call. */
static int c_sync(void)
{
	int err = MB_CUDA_CHECK(cudaStreamSynchronize(S));
	int kept = net_cuda_ops_status();
	return kept ? kept : err;
}

/* ---- memory ---- */

static void *c_mem_alloc(size_t bytes)
{
	void *p = NULL;
	if (MB_CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1)))
		return NULL;
	/* zeroed on the table's stream and waited for: the stream is non-blocking, so a
	 * cudaMemset on the legacy stream would not be ordered before its first use */
	if (MB_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, S)) ||
	    MB_CUDA_CHECK(cudaStreamSynchronize(S))) {
		cudaFree(p);
		return NULL;
	}
	return p;
}

static void c_mem_free(void *p)
{
	if (p)
		cudaFree(p);
}

/* c_upload / c_download: on the table's stream (non-blocking: the legacy stream's
 * cudaMemcpy would not wait for it), then waited for (host memory may be pageable). */
static int c_upload(void *dst, const void *host, size_t bytes)
{
	int err = MB_CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, S));
	return err ? err : MB_CUDA_CHECK(cudaStreamSynchronize(S));
}

static int c_download(void *host, const void *src, size_t bytes)
{
	int err = MB_CUDA_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, S));
	return err ? err : MB_CUDA_CHECK(cudaStreamSynchronize(S));
}

static const struct net_ops_f32 net_cuda_ops_f32 = {
	net_cuda_linear_fwd, net_cuda_linear_bwd, net_cuda_quant_act, net_cuda_quant_weight,
	net_cuda_mla_fwd, net_cuda_mla_bwd, net_cuda_gqa_fwd, net_cuda_gqa_bwd,
	net_cuda_linear_bwd_dx, net_cuda_linear_bwd_dw,
	.zero = c_zero, .copy = c_copy, .add = c_add, .transpose = c_transpose,
	.add_transposed = c_add_transposed, .concat = c_concat, .split = c_split,
	.embed_fwd = c_embed_fwd, .embed_bwd = c_embed_bwd, .rmsnorm_fwd = c_rmsnorm_fwd,
	.rmsnorm_bwd = c_rmsnorm_bwd, .swiglu_fwd = c_swiglu_fwd, .swiglu_bwd = c_swiglu_bwd,
	.ce_max = c_ce_max, .ce_sum = c_ce_sum, .ce_grad = c_ce_grad, .route = c_route,
	.balance_fwd = c_balance_fwd, .gate_bwd = c_gate_bwd, .permute_rows = c_permute_rows,
	.unpermute_add = c_unpermute_add, .combine_bwd = c_combine_bwd,
	.hash_ints = c_hash_ints, .mem_alloc = c_mem_alloc, .mem_free = c_mem_free,
	.upload = c_upload, .download = c_download, .one_thread = true,
	.adamw_step = c_adamw_step, .sync = c_sync, .scale = c_scale,
};

/* ---- the context ---- */

/* ctx_bytes lists the device buffers of the context: pointer and bytes. */
static int ctx_buffers(const struct net_cuda_sizes *z, void ***p, size_t *b)
{
	size_t w1 = rmsnorm_bwd_workspace(z->rows, z->dim);
	size_t w2 = embedding_bwd_workspace(z->tokens, z->vocab);
	size_t w3 = grad_norm_workspace(z->params);
	net_cuda.work_bytes = w1 > w2 ? (w1 > w3 ? w1 : w3) : (w2 > w3 ? w2 : w3);
	void **ptr[] = { &net_cuda.lt_ws, (void **)&net_cuda.bf_a, (void **)&net_cuda.bf_b,
			 (void **)&net_cuda.bf_c, (void **)&net_cuda.rstd, &net_cuda.work,
			 (void **)&net_cuda.pos, (void **)&net_cuda.load,
			 (void **)&net_cuda.rowsd, (void **)&net_cuda.segs,
			 (void **)&net_cuda.norm, &net_cuda.attn };
	size_t bytes[] = { NET_CUDA_LT_BYTES, (size_t)z->max_linear * 2, (size_t)z->max_linear * 2,
			   (size_t)z->max_linear * 2, (size_t)z->rows * 4, net_cuda.work_bytes,
			   (size_t)z->rows * 4, ((size_t)z->experts + 1) * 4,
			   (size_t)z->rows * 8, (size_t)z->tensors * sizeof(struct adamw_segment),
			   2 * sizeof(float), z->attn_bytes };
	int n = (int)(sizeof(bytes) / sizeof(bytes[0]));
	for (int i = 0; i < n; i++)
		p[i] = ptr[i], b[i] = bytes[i] ? bytes[i] : 16;
	return n;
}

int net_cuda_ops_open(const struct net_cuda_sizes *z, const struct net_ops_f32 **out)
{
	void **p[16];
	size_t b[16];
	int devices = 0, err = MB_OK;
	*out = NULL;
	if (net_cuda.open)
		return MB_ERR_ARG;   /* one context a process */
	if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
		return MB_ERR_NODEV;
	memset(&net_cuda, 0, sizeof(net_cuda));
	net_cuda.z = *z;
	net_cuda.attn_bytes = z->attn_bytes;
	net_cuda.open = true;
	int n = ctx_buffers(z, p, b);
	for (int i = 0; i < n && !err; i++)
		err = MB_CUDA_CHECK(cudaMalloc(p[i], b[i]));
	size_t hb = (size_t)z->rows * 8 + (size_t)z->tensors * sizeof(struct adamw_segment) +
		    ((size_t)z->experts + 1) * 4 + (1u << 20);
	if (!err)
		err = MB_CUDA_CHECK(cudaMallocHost(&net_cuda.host, hb));
	net_cuda.host_bytes = err ? 0 : hb;
	if (!err)
		err = MB_CUDA_CHECK(cudaStreamCreateWithFlags(&net_cuda.stream, cudaStreamNonBlocking));
	if (!err)
		err = MB_CUBLAS_CHECK(cublasLtCreate(&net_cuda.lt));
	/* the rows of the widest operand bound every operand's (x [rows, in] or x^T) */
	if (!err && z->fp8)
		err = net_cuda_fp8_reserve((size_t)z->max_linear,
					   (size_t)(z->rows > z->dim ? z->rows : z->dim) * 4);
	if (err) {
		net_cuda_ops_close();
		return err;
	}
	*out = &net_cuda_ops_f32;
	return MB_OK;
}

void net_cuda_ops_close(void)
{
	void **p[16];
	size_t b[16];
	if (!net_cuda.open)
		return;
	net_cuda_plans_free();
	int n = ctx_buffers(&net_cuda.z, p, b);
	for (int i = 0; i < n; i++)
		if (*p[i])
			cudaFree(*p[i]);
	if (net_cuda.host)
		cudaFreeHost(net_cuda.host);
	if (net_cuda.lt)
		cublasLtDestroy(net_cuda.lt);
	if (net_cuda.stream)
		cudaStreamDestroy(net_cuda.stream);
	memset(&net_cuda, 0, sizeof(net_cuda));
}

int net_cuda_ops_status(void)
{
	int err = net_cuda.err;
	net_cuda.err = MB_OK;
	return err;
}

int net_cuda_ops_sync(void)
{
	return net_cuda.open ? MB_CUDA_CHECK(cudaStreamSynchronize(S)) : MB_ERR_ARG;
}
