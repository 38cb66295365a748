/*
 * net_ops_cuda.h - what the two files of the CUDA op table (net_ops_cuda.c: context and
 * model entries; net_ops_lin_cuda.c: linear layers and quantisation; net_ops_attn_cuda.c:
 * the attention blocks) share: the one
 * device context of the process. Internal to model/train.
 */
#ifndef MB_NET_OPS_CUDA_H
#define MB_NET_OPS_CUDA_H

#include <cuda_runtime_api.h>
#include <cublasLt.h>

#include "lt_plan.h"
#include "net_ops.h"
#include "optim.h"

#define NET_CUDA_PLANS 256           /* cuBLASLt plans kept (then the oldest is remade) */
#define NET_CUDA_LT_BYTES (32u << 20)

struct net_cuda_plan {
	int key[8];                    /* type, m, n, k, op a, op b, ld... (0: free) */
	struct mb_lt_plan p;
};

struct net_cuda_ctx {
	struct net_cuda_sizes z;
	cudaStream_t stream;
	cublasLtHandle_t lt;
	void *lt_ws;
	uint16_t *bf_a, *bf_b, *bf_c;   /* BF16 operands [max_linear] each */
	float *rstd;                    /* [rows] */
	void *work;                     /* rmsnorm / embedding backward workspace */
	size_t work_bytes;
	int32_t *pos, *load;            /* [rows], [experts] */
	double *rowsd;                  /* [rows]: per-row losses */
	struct adamw_segment *segs;     /* [tensors] */
	void *attn;                     /* the attention blocks' scratch [attn_bytes] */
	size_t attn_bytes;
	float *norm;                    /* [2]: norm, scale */
	void *host;                     /* pinned staging */
	size_t host_bytes;
	struct net_cuda_plan plans[NET_CUDA_PLANS];
	int next_plan;                  /* the slot remade next when all are taken */
	int err;                        /* first error of a void entry */
	bool open;
};

extern struct net_cuda_ctx net_cuda;

/* net_cuda_fail keeps the first error of a void entry; returns err. */
int net_cuda_fail(int err);
/* the linear and quantisation entries (net_ops_lin_cuda.c) */
void net_cuda_linear_fwd(enum net_precision p, bool low, int t, int in, int out,
			 const float *x, const float *w, float *y);
void net_cuda_linear_bwd(enum net_precision p, bool low, int t, int in, int out,
			 const float *x, const float *w, const float *dy, float *dx, bool acc,
			 float *dw);
void net_cuda_linear_bwd_dx(enum net_precision p, bool low, int t, int in, int out,
			    const float *w, const float *dy, float *dx, bool acc);
void net_cuda_linear_bwd_dw(enum net_precision p, bool low, int t, int in, int out,
			    const float *x, const float *dy, float *dw);
void net_cuda_quant_act(enum net_precision p, int t, int n, const float *x, float *y);
void net_cuda_quant_weight(enum net_precision p, int rows, int cols, const float *w, float *y);
void net_cuda_plans_free(void);
/* net_cuda_gemm runs C [m, n] (column-major, ld ldc) = A B (+ C when acc) on a kept
 * plan (net_ops_lin_cuda.c); errors kept as a void entry's */
void net_cuda_gemm(cudaDataType_t ab, int m, int n, int k, struct mb_lt_matrix a,
		   const void *pa, struct mb_lt_matrix b, const void *pb, int ldc, float *c,
		   bool acc);
/* the fp8 linear layers and round trips (net_ops_fp8_cuda.c): MB_OK or an error;
 * net_cuda_fp8_free releases their buffers and plans (from net_cuda_plans_free) */
int net_cuda_fp8_fwd(int t, int in, int out, const float *x, const float *w, float *y);
int net_cuda_fp8_dx(int t, int in, int out, const float *w, const float *dy, float *dx, bool acc);
int net_cuda_fp8_dw(int t, int in, int out, const float *x, const float *dy, float *dw);
/* the same with W [in, out] (the attention blocks' layout), dW [in, out] overwritten */
int net_cuda_fp8_fwd_io(int t, int in, int out, const float *x, const float *w, float *y);
int net_cuda_fp8_dx_io(int t, int in, int out, const float *w, const float *dy, float *dx,
		       bool acc);
int net_cuda_fp8_dw_io(int t, int in, int out, const float *x, const float *dy, float *dw);
int net_cuda_fp8_qdq(const float *x, int rows, int cols, bool blk, float *y);
/* net_cuda_fp8_reserve sizes the FP8 entries' buffers at open for operands of up to elems
 * elements and rows rows (either orientation), padding included. */
int net_cuda_fp8_reserve(size_t elems, size_t rows);
void net_cuda_fp8_free(void);
/* the attention blocks on the device (net_ops_attn_cuda.c) */
int net_cuda_mla_fwd(const struct mla_config *c, int b, int s, const float *w, const float *x,
		     float *y, float *ws);
int net_cuda_mla_bwd(const struct mla_config *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw);
int net_cuda_gqa_fwd(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		     float *y, float *ws);
int net_cuda_gqa_bwd(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw);

#endif
