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
 */
#ifndef MB_NET_OPS_H
#define MB_NET_OPS_H

#include <stdbool.h>

#include "mla.h"
#include "net.h"

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
};

extern const struct net_ops_f32 net_cpu_ops_f32;
/* net_attn_round returns the rounding the attention blocks' projections take under
 * precision p (its three GEMMs as linear_fwd / linear_bwd do them), NULL under fp32. */
const struct attn_round *net_attn_round(enum net_precision p);
/* FP64: every precision is computed in double (the reference of the checks). */
extern const struct net_ops_f64 net_cpu_ops_f64;

#endif
