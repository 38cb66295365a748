/*
 * net_ops_model_impl.h - the CPU entries of NET_OPS_MODEL (net_ops.h), once per
 * precision: net_ops.c defines REAL, SFX(name), GEMM (block_real.h) and EXP and includes
 * this file twice. Each entry is the loop the model (net_impl.h, net_moe_impl.h,
 * net_bwd_impl.h) ran inline before the table held it, moved unchanged, so the CPU
 * step is the same bit for bit.
 */

static int SFX(op_zero)(REAL *x, size_t n)
{
	memset(x, 0, n * sizeof(REAL));
	return MB_OK;
}

static int SFX(op_copy)(const REAL *x, size_t n, REAL *y)
{
	memcpy(y, x, n * sizeof(REAL));
	return MB_OK;
}

static int SFX(op_add)(REAL *y, const REAL *x, size_t n)
{
	for (size_t j = 0; j < n; j++)
		y[j] += x[j];
	return MB_OK;
}

static int SFX(op_transpose)(int rows, int cols, const REAL *x, REAL *y)
{
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++)
			y[(size_t)c * rows + r] = x[(size_t)r * cols + c];
	return MB_OK;
}

static int SFX(op_add_transposed)(int rows, int cols, const REAL *x, REAL *y)
{
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++)
			y[(size_t)r * cols + c] += x[(size_t)c * rows + r];
	return MB_OK;
}

static int SFX(op_concat)(long rows, int n, const REAL *a, const REAL *b, REAL *y)
{
	for (long r = 0; r < rows; r++) {
		memcpy(y + (size_t)r * 2 * n, a + (size_t)r * n, (size_t)n * sizeof(REAL));
		memcpy(y + (size_t)r * 2 * n + n, b + (size_t)r * n, (size_t)n * sizeof(REAL));
	}
	return MB_OK;
}

static int SFX(op_split)(long rows, int n, const REAL *y, REAL *a, REAL *b)
{
	for (long r = 0; r < rows; r++) {
		memcpy(a + (size_t)r * n, y + (size_t)r * 2 * n, (size_t)n * sizeof(REAL));
		memcpy(b + (size_t)r * n, y + (size_t)r * 2 * n + n, (size_t)n * sizeof(REAL));
	}
	return MB_OK;
}

static int SFX(op_embed_fwd)(const REAL *table, long row0, long rows, const int32_t *ids,
			     long tokens, int dim, REAL *out)
{
	for (long t = 0; t < tokens; t++) {
		int64_t v = (int64_t)ids[t] - row0;
		REAL *dst = out + (size_t)t * dim;
		if (v >= 0 && v < rows)
			memcpy(dst, table + (size_t)v * dim, (size_t)dim * sizeof(REAL));
		else
			memset(dst, 0, (size_t)dim * sizeof(REAL));
	}
	return MB_OK;
}

static int SFX(op_embed_bwd)(const REAL *dout, const int32_t *ids, long tokens, int dim,
			     long row0, long rows, REAL *dtable)
{
	for (long t = 0; t < tokens; t++) {
		int64_t v = (int64_t)ids[t] - row0;
		if (v < 0 || v >= rows)
			continue;   /* another TP rank's row */
		REAL *row = dtable + (size_t)v * dim;
		const REAL *src = dout + (size_t)t * dim;
		for (int j = 0; j < dim; j++)
			row[j] += src[j];
	}
	return MB_OK;
}

static int SFX(op_rmsnorm_fwd)(const REAL *x, const REAL *gain, long rows, int dim, double eps,
			       REAL *y)
{
	SFX(rmsnorm_fwd)((int)rows, dim, x, dim, gain, eps, y);
	return MB_OK;
}

/* op_rmsnorm_bwd: the kernel overwrites its dg (work); the model adds every gradient
 * (a pipeline step's micro-batches accumulate into one). */
static int SFX(op_rmsnorm_bwd)(const REAL *dy, const REAL *x, const REAL *gain, long rows,
			       int dim, double eps, REAL *dx, REAL *dgain, REAL *work)
{
	SFX(rmsnorm_bwd)((int)rows, dim, x, dim, gain, eps, dy, dx, dim, work);
	for (int j = 0; j < dim; j++)
		dgain[j] += work[j];
	return MB_OK;
}

/* op_sigmoid returns 1 / (1 + exp(-x)). */
static inline REAL SFX(op_sigmoid)(REAL x)
{
	return 1 / (1 + EXP(-x));
}

/* op_silu returns x * sigmoid(x). */
static inline REAL SFX(op_silu)(REAL x)
{
	return x / (1 + EXP(-x));
}

static int SFX(op_swiglu_fwd)(const REAL *gate, const REAL *up, long rows, int cols, REAL *h)
{
	size_t n = (size_t)rows * cols;
	for (size_t j = 0; j < n; j++)
		h[j] = SFX(op_silu)(gate[j]) * up[j];
	return MB_OK;
}

static int SFX(op_swiglu_bwd)(const REAL *dh, const REAL *gate, const REAL *up, long rows,
			      int cols, REAL *dgate, REAL *dup)
{
	size_t n = (size_t)rows * cols;
	for (size_t j = 0; j < n; j++) {
		REAL sg = SFX(op_sigmoid)(gate[j]), dact = dh[j];
		dgate[j] = dact * up[j] * sg * (1 + gate[j] * (1 - sg));
		dup[j] = dact * gate[j] * sg;
	}
	return MB_OK;
}

static int SFX(op_ce_max)(const REAL *lg, long rows, long vocab, double *mx)
{
	for (long t = 0; t < rows; t++) {
		const REAL *r = lg + (size_t)t * vocab;
		mx[t] = r[0];
		for (long v = 1; v < vocab; v++)
			mx[t] = r[v] > mx[t] ? r[v] : mx[t];
	}
	return MB_OK;
}

static int SFX(op_ce_sum)(REAL *lg, long rows, long vocab, long v0, const int32_t *tgt,
			  const double *mx, double *sum, double *ly)
{
	for (long t = 0; t < rows; t++) {
		REAL *r = lg + (size_t)t * vocab;
		int64_t y = (int64_t)tgt[t] - v0;
		ly[t] = y >= 0 && y < vocab ? r[y] : 0;
		sum[t] = 0;
		for (long v = 0; v < vocab; v++)
			sum[t] += (r[v] = EXP(r[v] - (REAL)mx[t]));
	}
	return MB_OK;
}

static int SFX(op_ce_grad)(REAL *lg, long rows, long vocab, long v0, const int32_t *tgt,
			   const double *mx, const double *sum, const double *ly, double wt,
			   double *loss)
{
	double l = 0;
	for (long t = 0; t < rows; t++) {
		REAL *r = lg + (size_t)t * vocab;
		int64_t y = (int64_t)tgt[t] - v0;
		l += log(sum[t]) + mx[t] - ly[t];
		for (long v = 0; v < vocab; v++)
			r[v] = (REAL)(r[v] / sum[t] * wt);
		if (y >= 0 && y < vocab)
			r[y] -= (REAL)wt;
	}
	*loss = l;
	return MB_OK;
}

/* op_route: route_cpu selects on float copies (the selection is not differentiated). */
static int SFX(op_route)(const struct route_config *rc, long tokens, bool fixed,
			 const REAL *bias, double route_scale, REAL *s, float *fbuf, int32_t *idx, REAL *wts,
			 long *load, int32_t *order, int32_t *eoff)
{
	int E = rc->experts, K = rc->topk;
	size_t TE = (size_t)tokens * E, TK = (size_t)tokens * K;
	float *fl = fbuf, *fw = fl + TE, *fb = fw + TK;
	for (size_t j = 0; j < TE; j++) {
		fl[j] = (float)s[j];
		s[j] = (REAL)SFX(op_sigmoid)(s[j]);
	}
	for (int e = 0; bias && e < E; e++)
		fb[e] = (float)bias[e];
	int err = fixed ? MB_OK : route_cpu(rc, fl, bias ? fb : NULL, tokens, idx, fw);
	if (err)
		return err;
	for (long t = 0; t < tokens; t++) {
		double sum = 0;
		for (int k = 0; k < K; k++)
			sum += s[(size_t)t * E + idx[(size_t)t * K + k]];
		for (int k = 0; k < K; k++)
			wts[(size_t)t * K + k] = (REAL)(route_scale *
				s[(size_t)t * E + idx[(size_t)t * K + k]] / sum);
	}
	memset(load, 0, (size_t)E * sizeof(long));
	route_count(idx, tokens, K, load);
	size_t n = 0;
	eoff[0] = 0;
	for (int e = 0; e < E; e++) {
		for (size_t j = 0; j < TK; j++)
			if (idx[j] == e)
				order[n++] = (int32_t)j;
		eoff[e + 1] = (int32_t)n;
	}
	return MB_OK;
}

static int SFX(op_balance_fwd)(const int32_t *idx, const REAL *s, int batch, int seq,
			       int experts, int topk, REAL *fbal, double *loss)
{
	int E = experts, K = topk, S = seq;
	double l = 0;
	for (int b = 0; b < batch; b++) {
		REAL *f = fbal + (size_t)b * E;
		memset(f, 0, (size_t)E * sizeof(REAL));
		for (int p = 0; p < S; p++)
			for (int k = 0; k < K; k++)
				f[idx[((size_t)b * S + p) * K + k]] += (REAL)((double)E / ((double)K * S));
		for (int p = 0; p < S; p++) {
			const REAL *sc = s + ((size_t)b * S + p) * E;
			double sum = 0, dot = 0;
			for (int e = 0; e < E; e++)
				sum += sc[e], dot += (double)f[e] * sc[e];
			l += dot / sum / S;
		}
	}
	*loss = l;
	return MB_OK;
}

static int SFX(op_gate_bwd)(const REAL *s_all, const REAL *fbal, const int32_t *idx_all,
			    const REAL *wts, const REAL *dw, long tokens, int seq, int experts,
			    int topk, double route_scale, double alpha, REAL *ds)
{
	int E = experts, K = topk;
	double rs = route_scale;
	for (long t = 0; t < tokens; t++) {
		const REAL *s = s_all + (size_t)t * E, *f = fbal + (size_t)(t / seq) * E;
		const int32_t *idx = idx_all + (size_t)t * K;
		REAL *g = ds + (size_t)t * E;
		double sel = 0, dot = 0, all = 0, bdot = 0;
		for (int k = 0; k < K; k++)
			sel += s[idx[k]], dot += (double)dw[(size_t)t * K + k] * wts[(size_t)t * K + k];
		for (int e = 0; e < E; e++)
			all += s[e], bdot += alpha * f[e] * s[e];
		for (int e = 0; e < E; e++)
			g[e] = (REAL)((alpha * f[e] - bdot / all) / all);
		for (int k = 0; k < K; k++)
			g[idx[k]] += (REAL)((rs * dw[(size_t)t * K + k] - dot) / sel);
		for (int e = 0; e < E; e++)
			g[e] = (REAL)(g[e] * s[e] * (1.0 - s[e]));
	}
	return MB_OK;
}

static int SFX(op_permute_rows)(const REAL *x, const int32_t *order, long rows, int topk,
				int dim, REAL *y)
{
	for (long r = 0; r < rows; r++)
		memcpy(y + (size_t)r * dim, x + (size_t)(order[r] / topk) * dim,
		       (size_t)dim * sizeof(REAL));
	return MB_OK;
}

/* op_unpermute_add: without weights the rows are added as they are (the backward's
 * input gradients), not multiplied by 1. */
static int SFX(op_unpermute_add)(const REAL *y, const REAL *w, const int32_t *order, long rows,
				 int topk, int dim, REAL *out)
{
	for (long r = 0; r < rows; r++) {
		REAL *o = out + (size_t)(order[r] / topk) * dim;
		const REAL *src = y + (size_t)r * dim;
		if (!w) {
			for (int j = 0; j < dim; j++)
				o[j] += src[j];
			continue;
		}
		REAL wt = w[order[r]];
		for (int j = 0; j < dim; j++)
			o[j] += wt * src[j];
	}
	return MB_OK;
}

static int SFX(op_combine_bwd)(const REAL *dout, const REAL *y, const REAL *w,
			       const int32_t *order, long rows, int topk, int dim, REAL *dy,
			       REAL *dw)
{
	for (long r = 0; r < rows; r++) {
		const REAL *g = dout + (size_t)(order[r] / topk) * dim, *yr = y + (size_t)r * dim;
		REAL wt = w[order[r]];
		double dot = 0;
		for (int j = 0; j < dim; j++)
			dy[(size_t)r * dim + j] = wt * g[j], dot += (double)g[j] * yr[j];
		dw[order[r]] = (REAL)dot;
	}
	return MB_OK;
}

static uint64_t SFX(op_hash_ints)(const int32_t *x, size_t n, uint64_t h)
{
	for (size_t j = 0; j < n; j++)
		h = (h ^ (uint64_t)(uint32_t)x[j]) * 1099511628211ull;
	return h;
}

static void *SFX(op_mem_alloc)(size_t bytes)
{
	return calloc(1, bytes ? bytes : 1);
}

static void SFX(op_mem_free)(void *p)
{
	free(p);
}

static int SFX(op_copy_bytes)(void *dst, const void *src, size_t bytes)
{
	memcpy(dst, src, bytes);
	return MB_OK;
}

#define NET_OPS_MODEL_CPU \
	.zero = SFX(op_zero), .copy = SFX(op_copy), .add = SFX(op_add), \
	.transpose = SFX(op_transpose), .add_transposed = SFX(op_add_transposed), \
	.concat = SFX(op_concat), .split = SFX(op_split), .embed_fwd = SFX(op_embed_fwd), \
	.embed_bwd = SFX(op_embed_bwd), .rmsnorm_fwd = SFX(op_rmsnorm_fwd), \
	.rmsnorm_bwd = SFX(op_rmsnorm_bwd), .swiglu_fwd = SFX(op_swiglu_fwd), \
	.swiglu_bwd = SFX(op_swiglu_bwd), .ce_max = SFX(op_ce_max), .ce_sum = SFX(op_ce_sum), \
	.ce_grad = SFX(op_ce_grad), .route = SFX(op_route), \
	.balance_fwd = SFX(op_balance_fwd), .gate_bwd = SFX(op_gate_bwd), \
	.permute_rows = SFX(op_permute_rows), .unpermute_add = SFX(op_unpermute_add), \
	.combine_bwd = SFX(op_combine_bwd), .hash_ints = SFX(op_hash_ints), \
	.mem_alloc = SFX(op_mem_alloc), .mem_free = SFX(op_mem_free), \
	.upload = SFX(op_copy_bytes), .download = SFX(op_copy_bytes), .one_thread = false
