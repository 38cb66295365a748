/*
 * embedding.cu - CUDA kernels of the token embedding (embedding.h):
 *   fwd     one block per token (grid-stride): the table row, or zeros for a bad id
 *   bwd     count ids (integer atomics) -> exclusive scan (one block) -> bucket the
 *           tokens (integer atomics: any order) -> per id, one block orders its bucket by
 *           token index (rank = number of smaller entries) and adds the rows in that
 *           order: deterministic, bit for bit embedding_bwd_cpu
 */
#include "train_cuda.cuh"

extern "C" {
#include "embedding.h"
}

#define EMB_THREADS 256
#define EMB_SCAN_THREADS 1024

/* ---- GPU kernels ---- */

/* emb_fwd_kernel: block t copies table row ids[t] into out row t. */
__global__ void emb_fwd_kernel(const float *__restrict__ table, int vocab,
			       const int32_t *__restrict__ ids, long tokens, int dim,
			       float *__restrict__ out)
{
	for (long t = blockIdx.x; t < tokens; t += gridDim.x) {
		const int32_t id = ids[t];
		const bool ok = id >= 0 && id < vocab;
		for (int c = threadIdx.x; c < dim; c += blockDim.x)
			out[t * dim + c] = ok ? table[(long)id * dim + c] : 0.0f;
	}
}

/* emb_count_kernel: counts[id] += 1 per valid token (integer atomics: exact). */
__global__ void emb_count_kernel(const int32_t *__restrict__ ids, long tokens, int vocab,
				 int32_t *counts)
{
	for (long t = (long)blockIdx.x * blockDim.x + threadIdx.x; t < tokens;
	     t += (long)gridDim.x * blockDim.x)
		if (ids[t] >= 0 && ids[t] < vocab)
			atomicAdd(&counts[ids[t]], 1);
}

/* emb_scan_kernel (one block): offsets = exclusive scan of counts, offsets[V] = total,
 * cursor = offsets[0..V). Thread i scans a contiguous chunk; the chunks' totals are
 * scanned across the block (Hillis-Steele in shared memory). */
__global__ void emb_scan_kernel(const int32_t *__restrict__ counts, int vocab,
				int32_t *__restrict__ offsets, int32_t *__restrict__ cursor)
{
	__shared__ int32_t part[EMB_SCAN_THREADS];
	const int chunk = (int)((vocab + blockDim.x - 1) / blockDim.x);
	const int lo = min(vocab, (int)threadIdx.x * chunk), hi = min(vocab, lo + chunk);
	int32_t sum = 0;
	for (int v = lo; v < hi; v++)
		sum += counts[v];
	part[threadIdx.x] = sum;
	__syncthreads();
	for (int off = 1; off < (int)blockDim.x; off <<= 1) {
		const int32_t add = threadIdx.x >= (unsigned)off ? part[threadIdx.x - off] : 0;
		__syncthreads();
		part[threadIdx.x] += add;
		__syncthreads();
	}
	int32_t run = part[threadIdx.x] - sum;   /* inclusive -> exclusive */
	for (int v = lo; v < hi; v++) {
		offsets[v] = cursor[v] = run;
		run += counts[v];
	}
	if (threadIdx.x == blockDim.x - 1)
		offsets[vocab] = part[threadIdx.x];
}

/* emb_fill_kernel: each valid token takes a slot of its id's bucket (any order). */
__global__ void emb_fill_kernel(const int32_t *__restrict__ ids, long tokens, int vocab,
				int32_t *cursor, int32_t *__restrict__ list)
{
	for (long t = (long)blockIdx.x * blockDim.x + threadIdx.x; t < tokens;
	     t += (long)gridDim.x * blockDim.x)
		if (ids[t] >= 0 && ids[t] < vocab)
			list[atomicAdd(&cursor[ids[t]], 1)] = (int32_t)t;
}

/* emb_bwd_kernel: block v orders bucket v by token (ranks: distinct tokens, so a
 * permutation), then adds the rows in that order into dtable row v. */
__global__ void emb_bwd_kernel(const float *__restrict__ dout, int dim, int vocab,
			       const int32_t *__restrict__ offsets, const int32_t *__restrict__ list,
			       int32_t *__restrict__ sorted, float *__restrict__ dtable)
{
	for (int v = blockIdx.x; v < vocab; v += gridDim.x) {
		const int32_t lo = offsets[v], n = offsets[v + 1] - lo;
		if (n == 0)
			continue;   /* uniform across the block */
		for (int32_t i = threadIdx.x; i < n; i += blockDim.x) {
			const int32_t t = list[lo + i];
			int32_t rank = 0;
			for (int32_t j = 0; j < n; j++)
				rank += list[lo + j] < t;
			sorted[lo + rank] = t;
		}
		__syncthreads();   /* the ordered bucket is read by every thread below */
		for (int c = threadIdx.x; c < dim; c += blockDim.x) {
			float acc = dtable[(long)v * dim + c];
			for (int32_t i = 0; i < n; i++)
				acc += dout[(long)sorted[lo + i] * dim + c];
			dtable[(long)v * dim + c] = acc;
		}
	}
}

/* ---- launchers ---- */

/* embedding_fwd_cuda: see embedding.h. */
extern "C" int embedding_fwd_cuda(const float *d_table, int vocab, const int32_t *d_ids,
				  long tokens, int dim, float *d_out, void *stream)
{
	if (tokens < 0 || dim <= 0 || vocab <= 0)
		return MB_ERR_ARG;
	if (tokens == 0)
		return MB_OK;
	TR_LAUNCH(emb_fwd_kernel, tr_blocks(tokens), EMB_THREADS, stream, d_table, vocab, d_ids,
		  tokens, dim, d_out);
	return TR_LAUNCHED();
}

/* embedding_bwd_cuda: see embedding.h; the workspace is carved as
 * embedding_bwd_workspace lays it out. */
extern "C" int embedding_bwd_cuda(const float *d_dout, const int32_t *d_ids, long tokens,
				  int dim, int vocab, float *d_dtable, void *d_work,
				  size_t work_bytes, void *stream)
{
	if (tokens < 0 || tokens > INT32_MAX || dim <= 0 || vocab <= 0 ||
	    work_bytes < embedding_bwd_workspace(tokens, vocab))
		return MB_ERR_ARG;
	if (tokens == 0)
		return MB_OK;
	int32_t *counts = (int32_t *)d_work, *cursor = counts + vocab, *offsets = cursor + vocab;
	int32_t *list = offsets + vocab + 1, *sorted = list + tokens;
	const unsigned grid = tr_blocks(tr_cdiv(tokens, EMB_THREADS));
	int err = tr_memset_async(counts, (size_t)vocab * sizeof(int32_t), stream);
	if (err)
		return err;
	TR_LAUNCH(emb_count_kernel, grid, EMB_THREADS, stream, d_ids, tokens, vocab, counts);
	TR_LAUNCH(emb_scan_kernel, 1, EMB_SCAN_THREADS, stream, counts, vocab, offsets, cursor);
	TR_LAUNCH(emb_fill_kernel, grid, EMB_THREADS, stream, d_ids, tokens, vocab, cursor, list);
	TR_LAUNCH(emb_bwd_kernel, tr_blocks(vocab), EMB_THREADS, stream, d_dout, dim, vocab,
		  offsets, list, sorted, d_dtable);
	return TR_LAUNCHED();
}
