/*
 * netops.cu - the FP32 device kernels of the training step's CUDA op table (netops.h):
 * grid-stride elementwise kernels, one block per row for the row reductions, one
 * thread per token or expert where the CPU's order is kept.
 */
#include "train_cuda.cuh"

extern "C" {
#include "netops.h"
}

#define NETOP_THREADS 256

/* ---- elementwise and layout ---- */

__global__ void netop_add_kernel(float *y, const float *x, long n)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x)
		y[i] += x[i];
}

/* netop_scale_kernel: y *= s, element by element (one rounding each, as the CPU's). */
__global__ void netop_scale_kernel(float *y, float s, long n)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x)
		y[i] *= s;
}

/* netop_transpose_kernel: i runs over the output in its own order (coalesced writes). */
__global__ void netop_transpose_kernel(int rows, int cols, const float *x, float *y, int add)
{
	const long n = (long)rows * cols;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		if (add) {
			const long r = i / cols, c = i % cols;
			y[i] += x[c * rows + r];
		} else {
			const long c = i / rows, r = i % rows;
			y[i] = x[r * cols + c];
		}
	}
}

__global__ void netop_concat_kernel(long rows, int n, float *a, float *b, float *y, int back)
{
	const long total = rows * 2 * n;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
	     i += (long)gridDim.x * blockDim.x) {
		const long r = i / (2 * n), c = i % (2 * n);
		float *h = c < n ? a + r * n + c : b + r * n + (c - n);
		if (back)
			*h = y[i];
		else
			y[i] = *h;
	}
}

__global__ void netop_permute_kernel(const float *x, const int32_t *order, long rows, int topk,
				     int dim, float *y)
{
	const long n = rows * dim;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long r = i / dim, j = i % dim;
		y[i] = x[(long)(order[r] / topk) * dim + j];
	}
}

/* netop_pos_kernel inverts the expert order: pos[order[r]] = r. */
__global__ void netop_pos_kernel(const int32_t *order, long rows, int32_t *pos)
{
	for (long r = (long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
	     r += (long)gridDim.x * blockDim.x)
		pos[order[r]] = (int32_t)r;
}

/* netop_unpermute_kernel: one thread per (token, column) adds the token's K rows. */
__global__ void netop_unpermute_kernel(const float *y, const float *w, const int32_t *pos,
				       long tokens, int topk, int dim, float *out)
{
	const long n = tokens * dim;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const long t = i / dim, j = i % dim;
		float acc = out[i];
		for (int k = 0; k < topk; k++) {
			const long r = pos[t * topk + k];
			acc += (w ? w[t * topk + k] : 1.0f) * y[r * dim + j];
		}
		out[i] = acc;
	}
}

/* netop_combine_bwd_kernel: one block per row r. */
__global__ void netop_combine_bwd_kernel(const float *dout, const float *y, const float *w,
					 const int32_t *order, int topk, int dim, float *dy,
					 float *dw)
{
	__shared__ float scratch[32];
	const long r = blockIdx.x;
	const int32_t item = order[r];
	const float *g = dout + (long)(item / topk) * dim, *yr = y + r * dim;
	const float wt = w[item];
	float dot = 0.0f;
	for (int j = threadIdx.x; j < dim; j += blockDim.x) {
		dy[r * dim + j] = wt * g[j];
		dot += g[j] * yr[j];
	}
	dot = tr_block_sum(dot, scratch);
	if (threadIdx.x == 0)
		dw[item] = dot;
}

/* netop_swiglu_bwd_kernel: no __restrict__, dh may be dup (read before written). */
__global__ void netop_swiglu_bwd_kernel(const float *dh, const float *gate, const float *up,
					long n, float *dgate, float *dup)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const float a = gate[i], u = up[i], g = dh[i];
		const float s = 1.0f / (1.0f + expf(-a));
		dgate[i] = g * u * s * (1.0f + a * (1.0f - s));
		dup[i] = g * a * s;
	}
}

/* ---- the cross-entropy, one block per row ---- */

__global__ void netop_ce_max_kernel(const float *lg, long vocab, double *mx)
{
	__shared__ float scratch[32];
	const float *r = lg + (long)blockIdx.x * vocab;
	float m = -INFINITY;
	for (long v = threadIdx.x; v < vocab; v += blockDim.x)
		m = fmaxf(m, r[v]);
	m = tr_block_max(m, scratch);
	if (threadIdx.x == 0)
		mx[blockIdx.x] = m;
}

__global__ void netop_ce_sum_kernel(float *lg, long vocab, long v0, const int32_t *tgt,
				    const double *mx, double *sum, double *ly)
{
	__shared__ float scratch[32];
	const long t = blockIdx.x;
	float *r = lg + t * vocab;
	const long y = (long)tgt[t] - v0;
	const float m = (float)mx[t];
	if (threadIdx.x == 0)
		ly[t] = y >= 0 && y < vocab ? r[y] : 0;
	__syncthreads();   /* the target's logit is read before its exp replaces it */
	float s = 0.0f;
	for (long v = threadIdx.x; v < vocab; v += blockDim.x) {
		const float e = expf(r[v] - m);
		r[v] = e;
		s += e;
	}
	s = tr_block_sum(s, scratch);
	if (threadIdx.x == 0)
		sum[t] = s;
}

__global__ void netop_ce_grad_kernel(float *lg, long vocab, long v0, const int32_t *tgt,
				     const double *mx, const double *sum, const double *ly,
				     double wt, double *loss)
{
	const long t = blockIdx.x;
	float *r = lg + t * vocab;
	const long y = (long)tgt[t] - v0;
	const float k = (float)(wt / sum[t]);
	for (long v = threadIdx.x; v < vocab; v += blockDim.x)
		r[v] = r[v] * k - (v == y ? (float)wt : 0.0f);
	if (threadIdx.x == 0)
		loss[t] = log(sum[t]) + mx[t] - ly[t];
}

/* ---- the gate ---- */

/* netop_gate_bwd_kernel: net_ops_model_impl.h's op_gate_bwd, one thread per token. */
__global__ void netop_gate_bwd_kernel(const float *s_all, const float *fbal, const int32_t *idx_all,
				      const float *wts, const float *dw, long tokens, int seq,
				      int E, int K, double rs, double alpha, float *ds)
{
	for (long t = (long)blockIdx.x * blockDim.x + threadIdx.x; t < tokens;
	     t += (long)gridDim.x * blockDim.x) {
		const float *s = s_all + t * E, *f = fbal + (t / seq) * E;
		const int32_t *idx = idx_all + t * K;
		float *g = ds + t * E;
		double sel = 0, dot = 0, all = 0, bdot = 0;
		for (int k = 0; k < K; k++)
			sel += s[idx[k]], dot += (double)dw[t * K + k] * wts[t * K + k];
		for (int e = 0; e < E; e++)
			all += s[e], bdot += alpha * f[e] * s[e];
		for (int e = 0; e < E; e++)
			g[e] = (float)((alpha * f[e] - bdot / all) / all);
		for (int k = 0; k < K; k++)
			g[idx[k]] += (float)((rs * dw[t * K + k] - dot) / sel);
		for (int e = 0; e < E; e++)
			g[e] = (float)(g[e] * s[e] * (1.0 - s[e]));
	}
}

/* netop_balance_f_kernel: one thread per (sequence, expert), adding in (p, k) order. */
__global__ void netop_balance_f_kernel(const int32_t *idx, int batch, int seq, int E, int K,
				       float *fbal)
{
	const float unit = (float)((double)E / ((double)K * seq));
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (long)batch * E;
	     i += (long)gridDim.x * blockDim.x) {
		const long b = i / E;
		const int e = (int)(i % E);
		float f = 0;
		for (int p = 0; p < seq; p++)
			for (int k = 0; k < K; k++)
				if (idx[(b * seq + p) * K + k] == e)
					f += unit;
		fbal[i] = f;
	}
}

/* netop_balance_rows_kernel: one thread per position. */
__global__ void netop_balance_rows_kernel(const float *s_all, const float *fbal, long tokens,
					  int seq, int E, double *rows)
{
	for (long t = (long)blockIdx.x * blockDim.x + threadIdx.x; t < tokens;
	     t += (long)gridDim.x * blockDim.x) {
		const float *s = s_all + t * E, *f = fbal + (t / seq) * E;
		double sum = 0, dot = 0;
		for (int e = 0; e < E; e++)
			sum += s[e], dot += (double)f[e] * s[e];
		rows[t] = dot / sum / seq;
	}
}

/* netop_route_w_kernel: sigmoid of the token's E logits, then its K weights. */
__global__ void netop_route_w_kernel(float *s_all, const int32_t *idx, long tokens, int E,
				     int K, double rs, float *wts)
{
	for (long t = (long)blockIdx.x * blockDim.x + threadIdx.x; t < tokens;
	     t += (long)gridDim.x * blockDim.x) {
		float *s = s_all + t * E;
		for (int e = 0; e < E; e++)
			s[e] = 1.0f / (1.0f + expf(-s[e]));
		double sum = 0;
		for (int k = 0; k < K; k++)
			sum += s[idx[t * K + k]];
		for (int k = 0; k < K; k++)
			wts[t * K + k] = (float)(rs * s[idx[t * K + k]] / sum);
	}
}

/* netop_order_kernel: one block; each thread counts its experts' rows, thread 0 makes
 * the offsets, each thread lists its experts' rows in increasing row order. */
__global__ void netop_order_kernel(const int32_t *idx, long n, int E, int32_t *order,
				   int32_t *eoff)
{
	for (int e = threadIdx.x; e < E; e += blockDim.x) {
		int32_t c = 0;
		for (long j = 0; j < n; j++)
			c += idx[j] == e;
		eoff[e + 1] = c;
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		eoff[0] = 0;
		for (int e = 0; e < E; e++)
			eoff[e + 1] += eoff[e];
	}
	__syncthreads();
	for (int e = threadIdx.x; e < E; e += blockDim.x) {
		int32_t at = eoff[e];
		for (long j = 0; j < n; j++)
			if (idx[j] == e)
				order[at++] = (int32_t)j;
	}
}

__global__ void netop_rstd_kernel(const float *x, int dim, float eps, float *rstd)
{
	__shared__ float scratch[32];
	const float *r = x + (long)blockIdx.x * dim;
	float ss = 0.0f;
	for (int c = threadIdx.x; c < dim; c += blockDim.x)
		ss += r[c] * r[c];
	ss = tr_block_sum(ss, scratch);
	if (threadIdx.x == 0)
		rstd[blockIdx.x] = 1.0f / sqrtf(ss / dim + eps);
}

__global__ void netop_bf16_kernel(const float *x, long n, float *y, uint16_t *bits)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (long)gridDim.x * blockDim.x) {
		const uint16_t h = tr_bf16_store(x[i]);
		if (bits)
			bits[i] = h;
		else
			y[i] = tr_bf16_load(h);
	}
}

/* ---- launchers ---- */

/* netop_grid returns the blocks of a grid-stride launch over n items. */
static unsigned netop_grid(long n)
{
	return tr_blocks(tr_cdiv(n, NETOP_THREADS));
}

extern "C" int netop_add_cuda(float *d_y, const float *d_x, long n, void *stream)
{
	if (n < 0)
		return MB_ERR_ARG;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(netop_add_kernel, netop_grid(n), NETOP_THREADS, stream, d_y, d_x, n);
	return TR_LAUNCHED();
}

extern "C" int netop_scale_cuda(float *d_y, float s, long n, void *stream)
{
	if (n < 0)
		return MB_ERR_ARG;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(netop_scale_kernel, netop_grid(n), NETOP_THREADS, stream, d_y, s, n);
	return TR_LAUNCHED();
}

extern "C" int netop_transpose_cuda(int rows, int cols, const float *d_x, float *d_y, int add,
				    void *stream)
{
	if (rows < 0 || cols < 0)
		return MB_ERR_ARG;
	if ((long)rows * cols == 0)
		return MB_OK;
	TR_LAUNCH(netop_transpose_kernel, netop_grid((long)rows * cols), NETOP_THREADS, stream,
		  rows, cols, d_x, d_y, add);
	return TR_LAUNCHED();
}

extern "C" int netop_concat_cuda(long rows, int n, float *d_a, float *d_b, float *d_y, int back,
				 void *stream)
{
	if (rows < 0 || n <= 0)
		return MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	TR_LAUNCH(netop_concat_kernel, netop_grid(rows * 2 * n), NETOP_THREADS, stream, rows, n,
		  d_a, d_b, d_y, back);
	return TR_LAUNCHED();
}

extern "C" int netop_permute_rows_cuda(const float *d_x, const int32_t *d_order, long rows,
				       int topk, int dim, float *d_y, void *stream)
{
	if (rows < 0 || topk <= 0 || dim <= 0)
		return MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	TR_LAUNCH(netop_permute_kernel, netop_grid(rows * dim), NETOP_THREADS, stream, d_x,
		  d_order, rows, topk, dim, d_y);
	return TR_LAUNCHED();
}

extern "C" int netop_unpermute_add_cuda(const float *d_y, const float *d_w,
					const int32_t *d_order, long rows, int topk, int dim,
					float *d_out, int32_t *d_pos, void *stream)
{
	if (rows < 0 || topk <= 0 || dim <= 0 || rows % topk)
		return MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	TR_LAUNCH(netop_pos_kernel, netop_grid(rows), NETOP_THREADS, stream, d_order, rows, d_pos);
	int err = TR_LAUNCHED();
	if (err)
		return err;
	TR_LAUNCH(netop_unpermute_kernel, netop_grid(rows / topk * dim), NETOP_THREADS, stream, d_y,
		  d_w, d_pos, rows / topk, topk, dim, d_out);
	return TR_LAUNCHED();
}

extern "C" int netop_combine_bwd_cuda(const float *d_dout, const float *d_y, const float *d_w,
				      const int32_t *d_order, long rows, int topk, int dim,
				      float *d_dy, float *d_dw, void *stream)
{
	if (rows < 0 || topk <= 0 || dim <= 0 || rows > TR_MAX_BLOCKS)
		return rows > TR_MAX_BLOCKS ? MB_ERR_UNSUPPORTED : MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	TR_LAUNCH(netop_combine_bwd_kernel, (unsigned)rows, NETOP_THREADS, stream, d_dout, d_y, d_w,
		  d_order, topk, dim, d_dy, d_dw);
	return TR_LAUNCHED();
}

extern "C" int netop_swiglu_bwd_cuda(const float *d_dh, const float *d_gate, const float *d_up,
				     long rows, int cols, float *d_dgate, float *d_dup,
				     void *stream)
{
	if (rows < 0 || cols <= 0)
		return MB_ERR_ARG;
	if (rows == 0)
		return MB_OK;
	TR_LAUNCH(netop_swiglu_bwd_kernel, netop_grid(rows * cols), NETOP_THREADS, stream, d_dh,
		  d_gate, d_up, rows * cols, d_dgate, d_dup);
	return TR_LAUNCHED();
}

/* netop_rows_ok: a launch of one block per row fits the grid. */
static int netop_rows_ok(long rows, long width)
{
	if (rows < 0 || width <= 0)
		return MB_ERR_ARG;
	return rows > TR_MAX_BLOCKS ? MB_ERR_UNSUPPORTED : MB_OK;
}

extern "C" int netop_ce_max_cuda(const float *d_lg, long rows, long vocab, double *d_mx,
				 void *stream)
{
	int err = netop_rows_ok(rows, vocab);
	if (err || rows == 0)
		return err;
	TR_LAUNCH(netop_ce_max_kernel, (unsigned)rows, NETOP_THREADS, stream, d_lg, vocab, d_mx);
	return TR_LAUNCHED();
}

extern "C" int netop_ce_sum_cuda(float *d_lg, long rows, long vocab, long v0,
				 const int32_t *d_tgt, const double *d_mx, double *d_sum,
				 double *d_ly, void *stream)
{
	int err = netop_rows_ok(rows, vocab);
	if (err || rows == 0)
		return err;
	TR_LAUNCH(netop_ce_sum_kernel, (unsigned)rows, NETOP_THREADS, stream, d_lg, vocab, v0,
		  d_tgt, d_mx, d_sum, d_ly);
	return TR_LAUNCHED();
}

extern "C" int netop_ce_grad_cuda(float *d_lg, long rows, long vocab, long v0,
				  const int32_t *d_tgt, const double *d_mx, const double *d_sum,
				  const double *d_ly, double wt, double *d_loss, void *stream)
{
	int err = netop_rows_ok(rows, vocab);
	if (err || rows == 0)
		return err;
	TR_LAUNCH(netop_ce_grad_kernel, (unsigned)rows, NETOP_THREADS, stream, d_lg, vocab, v0,
		  d_tgt, d_mx, d_sum, d_ly, wt, d_loss);
	return TR_LAUNCHED();
}

extern "C" int netop_gate_bwd_cuda(const float *d_s, const float *d_fbal, const int32_t *d_idx,
				   const float *d_wts, const float *d_dw, long tokens, int seq,
				   int experts, int topk, double route_scale, double alpha,
				   float *d_ds, void *stream)
{
	if (tokens < 0 || seq <= 0 || experts <= 0 || topk <= 0)
		return MB_ERR_ARG;
	if (tokens == 0)
		return MB_OK;
	TR_LAUNCH(netop_gate_bwd_kernel, netop_grid(tokens), NETOP_THREADS, stream, d_s, d_fbal,
		  d_idx, d_wts, d_dw, tokens, seq, experts, topk, route_scale, alpha, d_ds);
	return TR_LAUNCHED();
}

extern "C" int netop_balance_cuda(const int32_t *d_idx, const float *d_s, int batch, int seq,
				  int experts, int topk, float *d_fbal, double *d_rows,
				  void *stream)
{
	if (batch <= 0 || seq <= 0 || experts <= 0 || topk <= 0)
		return MB_ERR_ARG;
	TR_LAUNCH(netop_balance_f_kernel, netop_grid((long)batch * experts), NETOP_THREADS, stream,
		  d_idx, batch, seq, experts, topk, d_fbal);
	int err = TR_LAUNCHED();
	if (err)
		return err;
	TR_LAUNCH(netop_balance_rows_kernel, netop_grid((long)batch * seq), NETOP_THREADS, stream,
		  d_s, d_fbal, (long)batch * seq, seq, experts, d_rows);
	return TR_LAUNCHED();
}

extern "C" int netop_route_post_cuda(float *d_s, const int32_t *d_idx, long tokens, int experts,
				     int topk, double route_scale, float *d_wts,
				     int32_t *d_order, int32_t *d_eoff, void *stream)
{
	if (tokens < 0 || experts <= 0 || topk <= 0)
		return MB_ERR_ARG;
	if (tokens > 0) {
		TR_LAUNCH(netop_route_w_kernel, netop_grid(tokens), NETOP_THREADS, stream, d_s, d_idx,
			  tokens, experts, topk, route_scale, d_wts);
		int err = TR_LAUNCHED();
		if (err)
			return err;
	}
	TR_LAUNCH(netop_order_kernel, 1, NETOP_THREADS, stream, d_idx, tokens * topk, experts,
		  d_order, d_eoff);
	return TR_LAUNCHED();
}

extern "C" int netop_rstd_cuda(const float *d_x, long rows, int dim, float eps, float *d_rstd,
			       void *stream)
{
	int err = netop_rows_ok(rows, dim);
	if (err || rows == 0)
		return err;
	TR_LAUNCH(netop_rstd_kernel, (unsigned)rows, NETOP_THREADS, stream, d_x, dim, eps, d_rstd);
	return TR_LAUNCHED();
}

extern "C" int netop_round_bf16_cuda(const float *d_x, long n, float *d_y, uint16_t *d_bits,
				     void *stream)
{
	if (n < 0 || (!d_y && !d_bits))
		return MB_ERR_ARG;
	if (n == 0)
		return MB_OK;
	TR_LAUNCH(netop_bf16_kernel, netop_grid(n), NETOP_THREADS, stream, d_x, n, d_y, d_bits);
	return TR_LAUNCHED();
}
