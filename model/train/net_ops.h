/*
 * net_ops.h - the operations the trainable model (net_impl.h) calls, as a table per
 * precision, so a backend fills one table and the model stays one. The CPU tables are
 * net_ops.c's; a CUDA table is the next issue's.
 *
 * Linear layers keep the checkpoints' [out, in] weights: y[T, out] = x[T, in] W^T;
 * the backward adds dW += dy^T x and writes (or, with acc, adds) dx = dy W. `low` says
 * the layer takes the run's precision (bf16 / fp8 recipe); false keeps it FP32 (the
 * embedding, head, gate, MTP projection... DeepSeek-V3 3.3's high-precision parts).
 * quant_act / quant_weight give the rounded copy an attention block consumes under
 * bf16 / fp8 (x: 1x128 tiles; W [rows, cols]: 128x128 blocks); a copy under fp32. Inside
 * the block every projection's GEMMs round their operands the same way (net_attn_round).
 * The rest of the model's arithmetic is NET_OPS_MODEL's entries (below), so a backend that
 * fills the whole table runs the whole step.
 */
#ifndef MB_NET_OPS_H
#define MB_NET_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mla.h"
#include "net.h"

struct route_config;
struct net_adamw;

/*
 * NET_OPS_MODEL(R) lists the rest of the model's arithmetic, one entry per operation, in
 * the element type R. Every pointer is the backend's memory (the device's on CUDA) except
 * where an entry says "host": the small results the host's control flow needs (the
 * routed experts' row offsets and loads, the losses) come back through those, which a
 * device backend fills with a small copy. The entries are shaped like kernels/train's
 * and kernels/moe's CUDA entry points (rows first, then widths); each returns MB_OK or an
 * error (MB_ERR_NODEV where the backend is not built). [T, n] tensors are row-major.
 *   zero, copy, add:    x = 0; y = x; y += x over n elements
 *   transpose:          y [cols, rows] = x [rows, cols]^T
 *   add_transposed:     y [rows, cols] += x [cols, rows]^T
 *   concat / split:     y [rows, 2n] = [a | b], and back
 *   embed_fwd:          out[t] = table[ids[t] - row0] (zeros where ids[t] is outside
 *                       [row0, row0 + rows): another TP rank's rows)
 *   embed_bwd:          dtable[ids[t] - row0] += dout[t] (rows in range), in token order
 *   rmsnorm_fwd / bwd:  block_real.h's RMSNorm; the backward writes dx and adds the gain's
 *                       gradient into dgain (work: [dim] scratch)
 *   swiglu_fwd / bwd:   h = silu(gate) * up, and its gradients (dh may alias dup)
 *   ce_max, ce_sum, ce_grad: the cross-entropy in three passes so a vocabulary split
 *                       over TP sums its figures between them: per row the max logit,
 *                       then sum exp(x - max) (lg becomes exp(x - max)) and the target's
 *                       logit ly (0 where the target is another rank's), then lg becomes
 *                       (softmax - onehot) * wt and *loss (host) the summed loss
 *   route:              the gate on the logits s [T, E] (become sigmoid scores): the
 *                       selection idx [T, K] (kept when fixed), weights wts [T, K], and
 *                       the host load [E] and expert offsets eoff [E + 1] of the rows in
 *                       expert order (order [T K]); fbuf: float scratch [T (E + K) + E + 1];
 *                       the weights are scaled by route_scale (rc's is a float copy)
 *   balance_fwd:        f [B, E] and *loss (host): sum over sequences and positions of
 *                       f . s / sum(s) / S (the model scales it by alpha / B)
 *   gate_bwd:           ds [T, E] from dw [T, K] through the weights, the balance loss
 *                       (alpha already / (B S)) and the sigmoid
 *   permute_rows:       y[r] = x[order[r] / K] for the rows in expert order
 *   unpermute_add:      out[order[r] / K] += w[order[r]] y[r] (w NULL: weight 1)
 *   combine_bwd:        dy[r] = w[order[r]] dout[order[r] / K]; dw[order[r]] = dout . y[r]
 *   hash_ints:          FNV-1a of n ints continuing from h (host result)
 *   mem_alloc / mem_free: the backend's memory (zeroed; NULL when out of it), where the
 *                       model keeps its parameters, gradients, moments, activations and
 *                       the integer arrays the entries read; upload / download copy
 *                       between it and the host
 *   one_thread:         the entries are called from one thread at a time (a device table's
 *                       shared buffers and stream): the experts then run one after another
 */
#define NET_OPS_MODEL(R) \
	int (*zero)(R *x, size_t n); \
	int (*copy)(const R *x, size_t n, R *y); \
	int (*add)(R *y, const R *x, size_t n); \
	int (*transpose)(int rows, int cols, const R *x, R *y); \
	int (*add_transposed)(int rows, int cols, const R *x, R *y); \
	int (*concat)(long rows, int n, const R *a, const R *b, R *y); \
	int (*split)(long rows, int n, const R *y, R *a, R *b); \
	int (*embed_fwd)(const R *table, long row0, long rows, const int32_t *ids, long tokens, \
			 int dim, R *out); \
	int (*embed_bwd)(const R *dout, const int32_t *ids, long tokens, int dim, long row0, \
			 long rows, R *dtable); \
	int (*rmsnorm_fwd)(const R *x, const R *gain, long rows, int dim, double eps, R *y); \
	int (*rmsnorm_bwd)(const R *dy, const R *x, const R *gain, long rows, int dim, \
			   double eps, R *dx, R *dgain, R *work); \
	int (*swiglu_fwd)(const R *gate, const R *up, long rows, int cols, R *h); \
	int (*swiglu_bwd)(const R *dh, const R *gate, const R *up, long rows, int cols, \
			  R *dgate, R *dup); \
	int (*ce_max)(const R *lg, long rows, long vocab, double *mx); \
	int (*ce_sum)(R *lg, long rows, long vocab, long v0, const int32_t *tgt, \
		      const double *mx, double *sum, double *ly); \
	int (*ce_grad)(R *lg, long rows, long vocab, long v0, const int32_t *tgt, \
		       const double *mx, const double *sum, const double *ly, double wt, \
		       double *loss); \
	int (*route)(const struct route_config *rc, long tokens, bool fixed, const R *bias, \
		     double route_scale, R *s, float *fbuf, int32_t *idx, R *wts, long *load, \
		     int32_t *order, int32_t *eoff); \
	int (*balance_fwd)(const int32_t *idx, const R *s, int batch, int seq, int experts, \
			   int topk, R *fbal, double *loss); \
	int (*gate_bwd)(const R *s, const R *fbal, const int32_t *idx, const R *wts, \
			const R *dw, long tokens, int seq, int experts, int topk, \
			double route_scale, double alpha, R *ds); \
	int (*permute_rows)(const R *x, const int32_t *order, long rows, int topk, int dim, \
			    R *y); \
	int (*unpermute_add)(const R *y, const R *w, const int32_t *order, long rows, int topk, \
			     int dim, R *out); \
	int (*combine_bwd)(const R *dout, const R *y, const R *w, const int32_t *order, \
			   long rows, int topk, int dim, R *dy, R *dw); \
	uint64_t (*hash_ints)(const int32_t *x, size_t n, uint64_t h); \
	void *(*mem_alloc)(size_t bytes); \
	void (*mem_free)(void *p); \
	int (*upload)(void *dst, const void *host, size_t bytes); \
	int (*download)(void *host, const void *src, size_t bytes); \
	bool one_thread;

struct net_ops_f32 {
	void (*linear_fwd)(enum net_precision p, bool low, int t, int in, int out, const float *x,
			   const float *w, float *y);
	void (*linear_bwd)(enum net_precision p, bool low, int t, int in, int out, const float *x,
			   const float *w, const float *dy, float *dx, bool acc, float *dw);
	void (*quant_act)(enum net_precision p, int t, int n, const float *x, float *y);
	void (*quant_weight)(enum net_precision p, int rows, int cols, const float *w, float *y);
	int (*mla_fwd)(const struct mla_config *c, int b, int s, const float *w, const float *x,
		       float *y, float *ws);
	int (*mla_bwd)(const struct mla_config *c, int b, int s, const float *w, const float *x,
		       const float *ws, const float *dy, float *dx, float *dw);
	int (*gqa_fwd)(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		       float *y, float *ws);
	int (*gqa_bwd)(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		       const float *ws, const float *dy, float *dx, float *dw);
	/* linear_bwd in two halves (zero-bubble pipelines defer the second): dx = dy W
	 * (added when acc), and dW += dy^T x; together exactly linear_bwd */
	void (*linear_bwd_dx)(enum net_precision p, bool low, int t, int in, int out,
			      const float *w, const float *dy, float *dx, bool acc);
	void (*linear_bwd_dw)(enum net_precision p, bool low, int t, int in, int out,
			      const float *x, const float *dy, float *dw);
	NET_OPS_MODEL(float)
	/* net_adamw_step (net_optim.c) on the whole model: clip, AdamW; returns the norm */
	double (*adamw_step)(const struct net_layout *L, const struct net_adamw *a, long t,
			     float *w, float *g, float *m1, float *m2);
	/* waits for the table's queued work and returns (and clears) the first error it
	 * kept; NULL for a table whose entries run synchronously (the CPU's) */
	int (*sync)(void);
	/* y *= s over n elements of the table's memory (the mean of accumulated gradients) */
	int (*scale)(float *y, float s, size_t n);
};

struct net_ops_f64 {
	void (*linear_fwd)(enum net_precision p, bool low, int t, int in, int out, const double *x,
			   const double *w, double *y);
	void (*linear_bwd)(enum net_precision p, bool low, int t, int in, int out, const double *x,
			   const double *w, const double *dy, double *dx, bool acc, double *dw);
	void (*quant_act)(enum net_precision p, int t, int n, const double *x, double *y);
	void (*quant_weight)(enum net_precision p, int rows, int cols, const double *w, double *y);
	int (*mla_fwd)(const struct mla_config *c, int b, int s, const double *w, const double *x,
		       double *y, double *ws);
	int (*mla_bwd)(const struct mla_config *c, int b, int s, const double *w, const double *x,
		       const double *ws, const double *dy, double *dx, double *dw);
	int (*gqa_fwd)(const struct gqa_config *c, int b, int s, const double *w, const double *x,
		       double *y, double *ws);
	int (*gqa_bwd)(const struct gqa_config *c, int b, int s, const double *w, const double *x,
		       const double *ws, const double *dy, double *dx, double *dw);
	void (*linear_bwd_dx)(enum net_precision p, bool low, int t, int in, int out,
			      const double *w, const double *dy, double *dx, bool acc);
	void (*linear_bwd_dw)(enum net_precision p, bool low, int t, int in, int out,
			      const double *x, const double *dy, double *dw);
	NET_OPS_MODEL(double)
};

extern const struct net_ops_f32 net_cpu_ops_f32;
/* net_create_f32_ops: net_create_f32 on the table ops (its memory, its entries). */
int net_create_f32_ops(const struct net_layout *L, const struct net_options *o, int batch,
		       int seq, uint64_t seed, const struct net_ops_f32 *ops, struct net_f32 **out);
/* net_attn_round returns the rounding the attention blocks' projections take under
 * precision p (its three GEMMs as linear_fwd / linear_bwd do them), NULL under fp32. */
const struct attn_round *net_attn_round(enum net_precision p);
/* FP64: every precision is computed in double (the reference of the checks). */
extern const struct net_ops_f64 net_cpu_ops_f64;

/*
 * The CUDA table (net_ops_cuda.c, net_ops_lin_cuda.c; net_ops_nocuda.c without CUDA): the
 * same entries on device pointers, run in order on one stream with buffers allocated once
 * by net_cuda_ops_open for a step of at most the given sizes (no allocation inside a
 * step). FP32 GEMMs and BF16 (operands rounded, FP32 accumulation) through cuBLASLt; the
 * other entries are kernels/train's, kernels/moe's route_cuda and netops.cu. The MLA / GQA
 * blocks run on the device (net_ops_attn_cuda.c: projections on cuBLASLt at the run's
 * precision, norms, RoPE, the BF16-operand CUDA attention core with FP32 accumulation;
 * scratch sized at open by attn_bytes). FP8 (low layers under fp8): cuBLASLt block
 * scaling, 1x128 / 128x128 (net_ops_fp8_cuda.c). NOT yet on the device: the attention
 * blocks under fp8 (they fail),
 * vocabulary-parallel embedding rows (row0 != 0). The void entries (linear, quantisation) keep their first
 * error for net_cuda_ops_status. Host results (route's load and eoff, the losses, the
 * hash) come back with a synchronous copy through a pinned buffer.
 */
struct net_cuda_sizes {
	long tokens;            /* T = B * S of the step */
	long rows;              /* routed rows a block holds (T K, at least T) */
	int dim, experts, vocab;
	long max_linear;        /* elements of the largest linear operand (x, W or dy) */
	int tensors;            /* tensors of the layout (AdamW segments) */
	long params;            /* elements of the parameter allocation */
	size_t attn_bytes;      /* the attention blocks' device scratch: net_cuda_attn_bytes
				 * of the step's block (0: the attention entries fail) */
	bool fp8;               /* the FP8 entries' buffers sized at open (fp8 runs) */
};
/* net_cuda_attn_bytes returns the device scratch bytes the CUDA table's attention
 * entries need for the blocks given (either may be NULL) at batch x seq; 0 without CUDA
 * or for an invalid block. */
size_t net_cuda_attn_bytes(const struct mla_config *mla, const struct gqa_config *gqa,
			   int batch, int seq);
/* net_cuda_ops_open makes the device context and returns the table; MB_ERR_NODEV
 * without a device or CUDA. net_cuda_ops_close frees it. */
int net_cuda_ops_open(const struct net_cuda_sizes *z, const struct net_ops_f32 **out);
void net_cuda_ops_close(void);
/* net_cuda_ops_status returns the first error of a void entry since the last call, and
 * clears it. net_cuda_ops_sync waits for the stream. */
int net_cuda_ops_status(void);
int net_cuda_ops_sync(void);
/*
 * The device step's clock (net_clock_cuda.c), a struct net_profile's now() on the table's
 * stream: each call records a CUDA event, waits for it and returns the seconds the stream
 * has run since net_cuda_clock_open (the events' elapsed times summed in double), so the
 * profile's phases and GEMM times are the device's work between its boundaries, not the
 * host's launches. Each call also samples cudaMemGetInfo: net_cuda_mem_peak returns the
 * most bytes in use on the device seen since the open (NaN before). NOTE: the wait at
 * every boundary serialises launches with the host (a few microseconds each); the table
 * already waits at every routing and loss. Open after net_cuda_ops_open (MB_ERR_NODEV
 * without CUDA), close before net_cuda_ops_close.
 */
int net_cuda_clock_open(void);
double net_cuda_clock_now(void);
double net_cuda_mem_peak(void);
void net_cuda_clock_close(void);

#endif
