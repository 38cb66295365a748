/*
 * net_ops_attn_cuda.c - the CUDA op table's attention blocks, for now THROUGH THE HOST:
 * the block's weights, input (and workspace, output gradient) are copied to host
 * memory, kernels/attention's CPU block runs (the SGEMM core, as the CPU table's), and
 * its results are copied back. This lets the whole CUDA step run and be compared with
 * the CPU step; it is not a device implementation and not a measurement path (a step
 * timed with it measures PCIe copies and the host). The device-pointer block (the MLA
 * projections on cuBLASLt around kernels/attention's CUDA core) is the next piece.
 * The host buffers grow on first use of a larger block (host memory, never cudaMalloc).
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "mla.h"
#include "net_ops_cuda.h"
#include "status.h"

static float *hbuf;      /* host staging of one call */
static size_t hcap;      /* its elements */

/* stage returns host room for n floats (NULL when out of memory). */
static float *stage(size_t n)
{
	if (n > hcap) {
		float *p = realloc(hbuf, n * sizeof(float));
		if (!p)
			return NULL;
		hbuf = p;
		hcap = n;
	}
	return hbuf;
}

void net_cuda_attn_free(void)
{
	free(hbuf);
	hbuf = NULL;
	hcap = 0;
}

/* down copies n device floats to h and waits; up copies h back and waits. */
static int down(float *h, const float *d, size_t n)
{
	int err = MB_CUDA_CHECK(cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost,
						net_cuda.stream));
	return err ? err : MB_CUDA_CHECK(cudaStreamSynchronize(net_cuda.stream));
}

static int up(float *d, const float *h, size_t n)
{
	int err = MB_CUDA_CHECK(cudaMemcpyAsync(d, h, n * sizeof(float), cudaMemcpyHostToDevice,
						net_cuda.stream));
	return err ? err : MB_CUDA_CHECK(cudaStreamSynchronize(net_cuda.stream));
}

/* The sizes of one block call: weights, input/output rows, workspace (elements). */
struct attn_sizes {
	size_t w, x, ws;
};

typedef int (*attn_fwd_fn)(const void *c, int b, int s, const float *w, const float *x,
			   float *y, float *ws);
typedef int (*attn_bwd_fn)(const void *c, int b, int s, const float *w, const float *x,
			   const float *ws, const float *dy, float *dx, float *dw);

/* host_fwd runs a block's forward on host copies. */
static int host_fwd(const struct attn_sizes *z, attn_fwd_fn fn, const void *c, int b, int s, const float *w, const float *x, float *y,
		    float *ws)
{
	float *hw = stage(z->w + 2 * z->x + z->ws);
	if (!hw)
		return MB_ERR_NOMEM;
	float *hx = hw + z->w, *hy = hx + z->x, *hws = hy + z->x;
	int err = down(hw, w, z->w);
	err = err ? err : down(hx, x, z->x);
	err = err ? err : fn(c, b, s, hw, hx, hy, hws);
	err = err ? err : up(y, hy, z->x);
	return err ? err : up(ws, hws, z->ws);
}

/* host_bwd runs a block's backward on host copies; dx and dw come back whole. */
static int host_bwd(const struct attn_sizes *z, attn_bwd_fn fn, const void *c, int b, int s,
		    const float *w, const float *x, const float *ws, const float *dy, float *dx,
		    float *dw)
{
	float *hw = stage(2 * z->w + 3 * z->x + z->ws);
	if (!hw)
		return MB_ERR_NOMEM;
	float *hdw = hw + z->w, *hx = hdw + z->w, *hdy = hx + z->x, *hdx = hdy + z->x;
	float *hws = hdx + z->x;
	int err = down(hw, w, z->w);
	err = err ? err : down(hdw, dw, z->w);
	err = err ? err : down(hx, x, z->x);
	err = err ? err : down(hdy, dy, z->x);
	err = err ? err : down(hws, ws, z->ws);
	err = err ? err : fn(c, b, s, hw, hx, hws, hdy, hdx, hdw);
	err = err ? err : up(dx, hdx, z->x);
	return err ? err : up(dw, hdw, z->w);
}

static int mla_fwd_v(const void *c, int b, int s, const float *w, const float *x, float *y,
		     float *ws)
{
	return mla_fwd_f32_blas(c, b, s, w, x, y, ws);
}

static int mla_bwd_v(const void *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw)
{
	return mla_bwd_f32_blas(c, b, s, w, x, ws, dy, dx, dw);
}

static int gqa_fwd_v(const void *c, int b, int s, const float *w, const float *x, float *y,
		     float *ws)
{
	return gqa_fwd_f32_blas(c, b, s, w, x, y, ws);
}

static int gqa_bwd_v(const void *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw)
{
	return gqa_bwd_f32_blas(c, b, s, w, x, ws, dy, dx, dw);
}

static struct attn_sizes mla_sizes(const struct mla_config *c, int b, int s)
{
	struct mla_layout l;
	mla_layout_of(c, &l);
	return (struct attn_sizes){ l.total, (size_t)b * s * c->dim, mla_workspace_count(c, b, s) };
}

static struct attn_sizes gqa_sizes(const struct gqa_config *c, int b, int s)
{
	struct gqa_layout l;
	gqa_layout_of(c, &l);
	return (struct attn_sizes){ l.total, (size_t)b * s * c->dim, gqa_workspace_count(c, b, s) };
}

int net_cuda_mla_fwd(const struct mla_config *c, int b, int s, const float *w, const float *x,
		     float *y, float *ws)
{
	struct attn_sizes z = mla_sizes(c, b, s);
	return host_fwd(&z, mla_fwd_v, c, b, s, w, x, y, ws);
}

int net_cuda_mla_bwd(const struct mla_config *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw)
{
	struct attn_sizes z = mla_sizes(c, b, s);
	return host_bwd(&z, mla_bwd_v, c, b, s, w, x, ws, dy, dx, dw);
}

int net_cuda_gqa_fwd(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		     float *y, float *ws)
{
	struct attn_sizes z = gqa_sizes(c, b, s);
	return host_fwd(&z, gqa_fwd_v, c, b, s, w, x, y, ws);
}

int net_cuda_gqa_bwd(const struct gqa_config *c, int b, int s, const float *w, const float *x,
		     const float *ws, const float *dy, float *dx, float *dw)
{
	struct attn_sizes z = gqa_sizes(c, b, s);
	return host_bwd(&z, gqa_bwd_v, c, b, s, w, x, ws, dy, dx, dw);
}
