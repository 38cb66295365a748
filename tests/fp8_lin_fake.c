/*
 * fp8_lin_fake.c - Check suite: the CUDA table's fp8 linear layers (net_ops_fp8_cuda.c,
 * compiled into the test) run on the host against lt_fake.c's stand-in of the CUDA
 * runtime and cuBLASLt, whose matmul is computed here as cuBLASLt's block scaling is
 * documented to read its operands (column-major, A op T and B op N, FP8 codes times their
 * tile's scale: VEC128 at [K block x outer + i], BLK128x128 at [outer block x ld + K
 * block], ld a multiple of 4: kernels/gemm/gemm_cuda.c's layouts, verified there on an
 * H100), and compared with the CPU table's recipe (net_ops.c: each operand quantized by
 * fp8.c, 1x128 or 128x128, then an FP32-exact product) on fresh random inputs. The
 * quantisation and layout kernels are host loops here (train_emu checks the kernels
 * against the same loops). What it checks: which operand goes where, every shape and
 * padding (K to 16, rows to 4, D through its scratch), the scales' orders, beta. What it
 * cannot: that cuBLASLt reads the scales as modelled, or takes these modes at all.
 * The attention blocks' _io entries (W [in, out], dW overwritten) are checked against
 * the CPU attention blocks' own recipe, attn_round.c under net_attn_round(NET_FP8), on
 * W rounded first to its 128x128 blocks as net_pack rounds it.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "fp8.h"
#include "fp8_layout.h"
#include "gemm_cuda.h"
#include "lt_fake.h"
#include "mla.h"
#include "net_ops.h"
#include "net_ops_cuda.h"
#include "rng.h"
#include "status.h"
#include "test_seed.h"

/* ---- host stand-ins of what net_ops_fp8_cuda.c calls ---- */

struct net_cuda_ctx net_cuda;

int net_cuda_fail(int err)
{
	if (err && !net_cuda.err)
		net_cuda.err = err;
	return err;
}

int fp8_quantize_cuda(const float *d_x, int rows, int cols, enum fp8_format f,
		      enum fp8_scaling s, bool pow2_scales, unsigned char *d_q, float *d_scale,
		      void *stream)
{
	struct fp8_matrix m;
	int err = fp8_matrix_alloc(&m, rows, cols, f, s);
	err = err ? err : fp8_quantize(d_x, &m, pow2_scales);
	if (!err) {
		memcpy(d_q, m.q, (size_t)rows * cols);
		memcpy(d_scale, m.scale, (size_t)m.scale_rows * m.scale_cols * sizeof(float));
	}
	fp8_matrix_free(&m);
	return err;
}

int fp8lay_pad_cuda(int rows, int cols, const float *x, int trans, int yrows, int ld, float *y,
		    void *stream)
{
	int yr = trans ? cols : rows, w = trans ? rows : cols;
	for (long r = 0; r < yrows; r++)
		for (long c = 0; c < ld; c++)
			y[r * ld + c] = c >= w || r >= yr ? 0.0f : trans ? x[c * cols + r] : x[r * cols + c];
	return MB_OK;
}

int fp8lay_scales_cuda(int sr, int sc, const float *in, int vec, float *out, void *stream)
{
	int ld = (sc + 3) / 4 * 4;
	for (int r = 0; r < sr; r++)
		for (int c = 0; c < (vec ? sc : ld); c++)
			out[vec ? (size_t)c * sr + r : (size_t)r * ld + c] = c < sc ? in[(size_t)r * sc + c] : 0;
	return MB_OK;
}

int fp8lay_dequant_cuda(int rows, int cols, const uint8_t *q, const float *scale, int tile_rows,
			float *y, void *stream)
{
	return MB_ERR_UNSUPPORTED;   /* not on the linear layers' path */
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
			      size_t width, size_t height, enum cudaMemcpyKind kind,
			      cudaStream_t stream)
{
	for (size_t r = 0; r < height; r++)
		memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
	return cudaSuccess;
}

/* ---- the matmul as block scaling reads it ---- */

static int matmuls;

/* mm_scale: the scale of element (outer, p) under mode (VEC128 or BLK128x128, checked
 * once per matmul: a ck_assert per element writes to Check's pipe each time). */
static float mm_scale(int mode, const float *s, long outer, long p, long outer_n, long k)
{
	long kb = p / FP8_TILE, ld = ((k + FP8_TILE - 1) / FP8_TILE + 3) / 4 * 4;
	if (mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F)
		return s[kb * outer_n + outer];
	return s[(outer / FP8_TILE) * ld + kb];
}

static void block_scaled(const struct lt_fake_matmul *mm)
{
	ck_assert(mm->trans_a == CUBLAS_OP_T && mm->trans_b == CUBLAS_OP_N);
	ck_assert(mm->type[0] == CUDA_R_8F_E4M3 && mm->type[1] == CUDA_R_8F_E4M3 &&
		  mm->type[2] == CUDA_R_32F);
	long m = (long)mm->rows[2], n = (long)mm->cols[2], k = (long)mm->rows[0];
	ck_assert(mm->cols[0] == (uint64_t)m && mm->rows[1] == (uint64_t)k && mm->cols[1] == (uint64_t)n);
	ck_assert_int_eq(k % 16, 0);
	ck_assert(mm->mode_a == CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F ||
		  mm->mode_a == CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F);
	ck_assert_int_eq(mm->mode_b, CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F);
	const uint8_t *a = mm->a, *b = mm->b;
	float *d = mm->d, lut[256];
	for (int c = 0; c < 256; c++)
		lut[c] = fp8_decode((uint8_t)c, FP8_E4M3);
	for (long j = 0; j < n; j++)
		for (long i = 0; i < m; i++) {
			double acc = 0;
			for (long p = 0; p < k; p++)
				acc += (double)lut[a[p + i * mm->ld[0]]] *
				       mm_scale(mm->mode_a, mm->scale_a, i, p, m, k) *
				       lut[b[p + j * mm->ld[1]]] *
				       mm_scale(mm->mode_b, mm->scale_b, j, p, n, k);
			float *o = &d[i + j * mm->ld[2]];
			*o = (float)(mm->alpha * acc + (mm->beta != 0 ? mm->beta * *o : 0));
		}
	matmuls++;
}

/* ---- the CPU recipe ---- */

/* qdq returns the E4M3 round trip of x [rows, cols] (trans: of x^T) with scaling s. */
static float *qdq(const float *x, int rows, int cols, bool trans, enum fp8_scaling s)
{
	struct fp8_matrix m;
	int r = trans ? cols : rows, c = trans ? rows : cols;
	float *y = malloc((size_t)r * c * sizeof(float));
	ck_assert_int_eq(fp8_matrix_alloc(&m, r, c, FP8_E4M3, s), MB_OK);
	ck_assert_int_eq(trans ? fp8_quantize_transposed(x, rows, cols, &m, false)
			       : fp8_quantize(x, &m, false), MB_OK);
	fp8_dequantize(&m, y);
	fp8_matrix_free(&m);
	return y;
}

/* abt: C [M, N] (+)= A [M, K] B [N, K]^T in double. */
static void abt(const float *a, const float *b, int M, int N, int K, bool acc, float *c)
{
	for (long i = 0; i < M; i++)
		for (long j = 0; j < N; j++) {
			double s = acc ? c[i * N + j] : 0;
			for (long p = 0; p < K; p++)
				s += (double)a[i * K + p] * b[j * K + p];
			c[i * N + j] = (float)s;
		}
}

static float *rnd(size_t n, double scale, uint64_t stream)
{
	struct mb_rng rng;
	float *x = malloc(n * sizeof(float));
	mb_rng_seed(&rng, test_seed(), stream);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(mb_rng_uniform(&rng, -1, 1) * (i % 61 == 0 ? 50 * scale : scale));
	return x;
}

/* expect_near: max |x - ref| / max |ref| within tol. */
static void expect_near(const char *what, const float *x, const float *ref, size_t n, double tol)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		num = isfinite(x[i]) ? fmax(num, fabs((double)x[i] - ref[i])) : INFINITY;
		den = fmax(den, fabs((double)ref[i]));
	}
	printf("%-40s max err %.3g (tol %.0e)\n", what, num / den, tol);
	ck_assert_msg(num / den <= tol, "%s: %g > %g", what, num / den, tol);
}

/* one_layer: fwd, dgrad (added) and wgrad (added) of a t x in -> out layer. */
static void one_layer(int t, int in, int out, uint64_t id)
{
	float *x = rnd((size_t)t * in, 1, id), *w = rnd((size_t)out * in, 0.05, id + 1);
	/* what dgrad and wgrad add to is of their products' size, so an error in a product
	 * shows beside it */
	float *dy = rnd((size_t)t * out, 1e-3, id + 2), *dx = rnd((size_t)t * in, 1e-4, id + 3);
	float *dw = rnd((size_t)out * in, 1e-3, id + 4), *y = malloc((size_t)t * out * 4);
	float *rdx = malloc((size_t)t * in * 4), *rdw = malloc((size_t)out * in * 4);
	float *ry = malloc((size_t)t * out * 4);
	memcpy(rdx, dx, (size_t)t * in * 4), memcpy(rdw, dw, (size_t)out * in * 4);
	float *xq = qdq(x, t, in, false, FP8_PER_1X128), *wq = qdq(w, out, in, false, FP8_PER_128X128);
	float *dyq = qdq(dy, t, out, false, FP8_PER_1X128), *wtq = qdq(w, out, in, true, FP8_PER_128X128);
	float *dytq = qdq(dy, t, out, true, FP8_PER_1X128), *xtq = qdq(x, t, in, true, FP8_PER_1X128);
	abt(xq, wq, t, out, in, false, ry);
	abt(dyq, wtq, t, in, out, true, rdx);
	abt(dytq, xtq, out, in, t, true, rdw);
	for (size_t j = 0; j < (size_t)t * out; j++)
		y[j] = NAN;
	matmuls = 0;
	ck_assert_int_eq(net_cuda_fp8_fwd(t, in, out, x, w, y), MB_OK);
	ck_assert_int_eq(net_cuda_fp8_dx(t, in, out, w, dy, dx, true), MB_OK);
	ck_assert_int_eq(net_cuda_fp8_dw(t, in, out, x, dy, dw), MB_OK);
	ck_assert_int_eq(matmuls, 3);
	char what[3][64];
	snprintf(what[0], 64, "fprop %dx%d->%d", t, in, out);
	snprintf(what[1], 64, "dgrad (added) %dx%d->%d", t, in, out);
	snprintf(what[2], 64, "wgrad (added) %dx%d->%d", t, in, out);
	expect_near(what[0], y, ry, (size_t)t * out, 1e-5);
	expect_near(what[1], dx, rdx, (size_t)t * in, 1e-5);
	expect_near(what[2], dw, rdw, (size_t)out * in, 1e-5);
	float *f[] = { x, w, dy, dx, dw, y, rdx, rdw, ry, xq, wq, dyq, wtq, dytq, xtq };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		free(f[i]);
}

/* nans returns n NaNs (an output poisoned first). */
static float *nans(size_t n)
{
	float *x = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		x[i] = NAN;
	return x;
}

/* one_attn: the _io entries of a t x in -> out projection (W [in, out]) against
 * attn_round.c under the fp8 rounding: fwd, dgrad (added), wgrad (overwritten). */
static void one_attn(int t, int in, int out, uint64_t id)
{
	size_t nx = (size_t)t * in, ny = (size_t)t * out, nw = (size_t)in * out;
	float *x = rnd(nx, 1, id), *w0 = rnd(nw, 0.05, id + 1), *dy = rnd(ny, 1e-3, id + 2);
	float *w = qdq(w0, in, out, false, FP8_PER_128X128), *dx = rnd(nx, 1e-4, id + 3);
	float *rdx = malloc(nx * 4), *y = nans(ny), *ry = nans(ny), *dw = nans(nw), *rdw = nans(nw);
	const struct attn_round *r = net_attn_round(NET_FP8);
	memcpy(rdx, dx, nx * 4);
	attn_round_linear_fwd(r, t, in, out, x, w, ry);
	attn_round_linear_bwd(r, t, in, out, x, w, dy, rdx, true, rdw);
	matmuls = 0;
	ck_assert_int_eq(net_cuda_fp8_fwd_io(t, in, out, x, w, y), MB_OK);
	ck_assert_int_eq(net_cuda_fp8_dx_io(t, in, out, w, dy, dx, true), MB_OK);
	ck_assert_int_eq(net_cuda_fp8_dw_io(t, in, out, x, dy, dw), MB_OK);
	ck_assert_int_eq(matmuls, 3);
	char what[3][64];
	snprintf(what[0], 64, "attn fprop [in,out] %dx%d->%d", t, in, out);
	snprintf(what[1], 64, "attn dgrad (added) %dx%d->%d", t, in, out);
	snprintf(what[2], 64, "attn wgrad (overwritten) %dx%d->%d", t, in, out);
	expect_near(what[0], y, ry, ny, 1e-5);
	expect_near(what[1], dx, rdx, nx, 1e-5);
	expect_near(what[2], dw, rdw, nw, 1e-5);
	float *f[] = { x, w0, dy, w, dx, rdx, y, ry, dw, rdw };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		free(f[i]);
}

START_TEST(fp8_linear_layers)
{
	lt_fake_reset(NULL, LT_FAKE_ALGO);
	lt_fake_matmul_hook = block_scaled;
	ck_assert_int_eq(cublasLtCreate(&net_cuda.lt), CUBLAS_STATUS_SUCCESS);
	net_cuda.open = true;
	one_layer(37, 200, 130, 10);    /* rows to 4, K to 16, several 128 tiles */
	one_layer(64, 256, 128, 20);    /* nothing padded */
	one_layer(133, 136, 132, 30);   /* expert-like rows: Wgrad's K past one tile */
	one_attn(37, 200, 130, 40);     /* the attention blocks' W [in, out] */
	one_attn(140, 136, 264, 50);    /* W's blocks 2 x 3, Wgrad's K past one tile */
	one_attn(6, 40, 28, 60);        /* a small block's: all under one tile */
	ck_assert_int_eq(net_cuda.err, MB_OK);
	net_cuda_fp8_free();
	cublasLtDestroy(net_cuda.lt);
	lt_fake_matmul_hook = NULL;
	lt_fake_reset(NULL, LT_FAKE_ALGO);
}
END_TEST

static Suite *fp8_lin_suite(void)
{
	Suite *s = suite_create("fp8_lin_fake");
	TCase *c = tcase_create("core");
	tcase_set_timeout(c, 60);
	tcase_add_test(c, fp8_linear_layers);
	suite_add_tcase(s, c);
	return s;
}

MB_CHECK_MAIN(fp8_lin_suite)
