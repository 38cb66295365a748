/*
 * fp8_layout.h - the layouts the CUDA op table's FP8 linear layers hand cuBLASLt's block
 * scaling (model/train/net_ops_fp8_cuda.c), which the table's FP32 tensors are not in:
 *   fp8lay_pad_cuda     an operand copied (or transposed) into rows of ld floats, zero
 *                       past its columns (and rows): every GEMM's K becomes a multiple
 *                       of 16 (FP8's leading-dimension rule), an activation's rows a
 *                       multiple of 4 (see net_ops_fp8_cuda.c), without changing a
 *                       1x128 or 128x128 tile's amax: the codes and scales are the
 *                       unpadded ones'
 *   fp8lay_scales_cuda  fp8_quantize's row-major scales [sr, sc] in cuBLASLt's order:
 *                       vec (1x128, VEC128_32F) transposed, out[c sr + r]; otherwise
 *                       (128x128, BLK128x128_32F) rows of ld = sc rounded up to 4, zero
 *                       padded (kernels/gemm/gemm_cuda.c's lt_upload_block_scales)
 *   fp8lay_dequant_cuda y = decode(q) * scale of its tile: the FP8 round trip the
 *                       table's quant_act / quant_weight give (fp8_dequantize's values)
 * Each is the device twin of a host loop that tests/train_emu.cpp compares it with (the
 * kernel's own code on the host). Device pointers, asynchronous on stream; MB_OK,
 * MB_ERR_ARG, MB_ERR_CUDA, or MB_ERR_UNSUPPORTED without CUDA (train_nocuda.c).
 */
#ifndef MB_FP8_LAYOUT_H
#define MB_FP8_LAYOUT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y [yrows, ld] = x [rows, cols] (trans: x^T) in its first rows and columns, zeros past
 * them; yrows >= the copied rows, ld >= the copied width. Bit for bit. */
int fp8lay_pad_cuda(int rows, int cols, const float *d_x, int trans, int yrows, int ld,
		    float *d_y, void *stream);
/* the scales of an fp8_matrix [sr, sc] in cuBLASLt's order (vec 1: 1x128; 0: 128x128,
 * ld = (sc + 3) / 4 * 4 floats a row); d_out holds sr * sc (vec) or sr * ld floats. */
int fp8lay_scales_cuda(int sr, int sc, const float *d_in, int vec, float *d_out, void *stream);
/* y [rows, cols] = E4M3 decode(q) * scale[(r / tr) sc + c / 128], tr = 1 (1x128) or 128
 * (128x128), sc = ceil(cols / 128) (fp8_matrix's scales). Bit for bit with fp8_dequantize. */
int fp8lay_dequant_cuda(int rows, int cols, const uint8_t *d_q, const float *d_scale,
			int tile_rows, float *d_y, void *stream);

#ifdef __cplusplus
}
#endif

#endif
