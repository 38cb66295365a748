/*
 * embedding.h - the token embedding of a training step: forward (a gather of table rows)
 * and backward (a scatter-add of output-gradient rows into the table's gradient).
 * CPU reference in embedding.c; CUDA in embedding.cu (train_nocuda.c returns
 * MB_ERR_UNSUPPORTED without CUDA).
 *
 * Shape letters: T tokens, D model dimension, V vocabulary. All tensors FP32 (the
 * embedding is one of the components DeepSeek-V3 keeps in higher precision, 3.3).
 *   forward:  out[t, :] = table[ids[t], :]
 *   backward: dtable[v, :] += sum over t with ids[t] == v of dout[t, :], in increasing t
 *
 * The CUDA backward is deterministic without a sort of the tokens and without float
 * atomics: it buckets the tokens by id (integer atomics for the counts, a scan for the
 * offsets), orders each bucket by token index (each entry's rank is the number of smaller
 * entries: O(n^2 / threads) per bucket of n tokens), then one block per vocabulary row
 * adds the bucket's rows in token order. The result equals the CPU reference bit for bit.
 */
#ifndef MB_EMBEDDING_H
#define MB_EMBEDDING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* embedding_fwd_cpu gathers out[T, D] from table[V, D]. Returns MB_OK, or MB_ERR_ARG
 * (an id outside [0, V), or a bad size) before writing anything. */
int embedding_fwd_cpu(const float *table, int vocab, const int32_t *ids, long tokens, int dim,
		      float *out);
/* embedding_bwd_cpu adds dout[T, D] into dtable[V, D] as above. Returns MB_OK or
 * MB_ERR_ARG (as embedding_fwd_cpu). */
int embedding_bwd_cpu(const float *dout, const int32_t *ids, long tokens, int dim, int vocab,
		      float *dtable);
/* embedding_bwd_workspace is the workspace embedding_bwd_cuda needs, in bytes. */
size_t embedding_bwd_workspace(long tokens, int vocab);

/* CUDA versions (device pointers, stream a cudaStream_t, asynchronous). Ids outside
 * [0, V) give a zero row in the forward and are skipped in the backward. The backward
 * uses d_work (embedding_bwd_workspace bytes, any contents). Each returns MB_OK,
 * MB_ERR_ARG (a bad size, a short workspace), MB_ERR_CUDA, or MB_ERR_UNSUPPORTED
 * without CUDA. */
int embedding_fwd_cuda(const float *d_table, int vocab, const int32_t *d_ids, long tokens,
		       int dim, float *d_out, void *stream);
int embedding_bwd_cuda(const float *d_dout, const int32_t *d_ids, long tokens, int dim,
		       int vocab, float *d_dtable, void *d_work, size_t work_bytes, void *stream);

#ifdef __cplusplus
}
#endif

#endif
