/*
 * train_emu_fp8.h - train_emu's checks of kernels/train/fp8_layout.cu, the layouts the
 * CUDA table's FP8 linear layers hand cuBLASLt, against host loops and kernels/gemm's
 * fp8.c (the CPU table's FP8 recipe). Included by train_emu.cpp after its helpers.
 */

/* fp8_pad_checks: the copy (rows padded too) and the transpose into padded rows, bit for
 * bit, and that padding changes no code or scale: quantizing the padded X^T (1x128) and
 * dequantizing gives fp8_quantize_transposed's values in the unpadded columns. */
static int fp8_pad_checks(int R, int C, uint64_t s)
{
	std::vector<float> x = uniform((size_t)R * C, -3, 3, s);
	for (size_t i = 0; i < x.size(); i += 97)
		x[i] *= 300;   /* tiles whose amax differ */
	int ok = 1;
	for (int trans = 0; trans < 2; trans++) {
		int yr = trans ? C : R, w = trans ? R : C, ld = (w + 15) / 16 * 16 + 16;
		int yrows = trans ? yr : yr + 3;   /* rows padded too (an activation's, to 4) */
		std::vector<float> y((size_t)yrows * ld, NAN), ref((size_t)yrows * ld, 0);
		for (int r = 0; r < yr; r++)
			for (int c = 0; c < w; c++)
				ref[(size_t)r * ld + c] = trans ? x[(size_t)c * C + r] : x[(size_t)r * C + c];
		int rc = fp8lay_pad_cuda(R, C, x.data(), trans, yrows, ld, y.data(), NULL);
		ok &= check(trans ? "fp8 pad, transposed (exact)" : "fp8 pad (exact)", rc,
			    scaled_err(y.data(), ref.data(), y.size()), 0);
		if (!trans)
			continue;
		struct fp8_matrix pm, tm;
		std::vector<float> pd((size_t)yr * ld), td((size_t)C * R);
		fp8_matrix_alloc(&pm, yr, ld, FP8_E4M3, FP8_PER_1X128);
		fp8_matrix_alloc(&tm, C, R, FP8_E4M3, FP8_PER_1X128);
		fp8_quantize(y.data(), &pm, false);
		fp8_quantize_transposed(x.data(), R, C, &tm, false);
		fp8_dequantize(&pm, pd.data());
		fp8_dequantize(&tm, td.data());
		double e = 0;
		for (int r = 0; r < C; r++)
			for (int c = 0; c < R; c++)
				e = fmax(e, fabs((double)pd[(size_t)r * ld + c] - td[(size_t)r * R + c]));
		ok &= check("fp8 padded X^T quantizes as X^T (exact)", rc, e, 0);
		fp8_matrix_free(&pm);
		fp8_matrix_free(&tm);
	}
	return ok;
}

/* fp8_scale_checks: both cuBLASLt scale orders, bit for bit with the layouts
 * kernels/gemm/gemm_cuda.c uploads. */
static int fp8_scale_checks(int sr, int sc, uint64_t s)
{
	std::vector<float> in = uniform((size_t)sr * sc, 0.5, 2, s);
	int ld = (sc + 3) / 4 * 4, ok = 1;
	std::vector<float> v((size_t)sr * sc, NAN), vref(v.size());
	std::vector<float> b((size_t)sr * ld, NAN), bref(b.size(), 0);
	for (int r = 0; r < sr; r++)
		for (int c = 0; c < sc; c++) {
			vref[(size_t)c * sr + r] = in[(size_t)r * sc + c];
			bref[(size_t)r * ld + c] = in[(size_t)r * sc + c];
		}
	int rc = fp8lay_scales_cuda(sr, sc, in.data(), 1, v.data(), NULL);
	ok &= check("fp8 scales 1x128, transposed (exact)", rc, scaled_err(v.data(), vref.data(), v.size()), 0);
	rc = fp8lay_scales_cuda(sr, sc, in.data(), 0, b.data(), NULL);
	ok &= check("fp8 scales 128x128, padded rows (exact)", rc, scaled_err(b.data(), bref.data(), b.size()), 0);
	return ok;
}

/* fp8_dequant_checks: the round trip against fp8_dequantize, every E4M3 code included
 * (subnormals, the largest), both tilings, bit for bit. */
static int fp8_dequant_checks(int R, int C, uint64_t s)
{
	std::vector<float> x = uniform((size_t)R * C, -1, 1, s);
	for (size_t i = 0; i < x.size(); i++)
		x[i] = ldexpf(x[i], (int)(i % 23) - 11);   /* 2^-11 .. 2^11: subnormal codes too */
	int ok = 1;
	for (int blk = 0; blk < 2; blk++) {
		struct fp8_matrix m;
		fp8_matrix_alloc(&m, R, C, FP8_E4M3, blk ? FP8_PER_128X128 : FP8_PER_1X128);
		fp8_quantize(x.data(), &m, false);
		std::vector<float> y(x.size(), NAN), ref(x.size());
		fp8_dequantize(&m, ref.data());
		int rc = fp8lay_dequant_cuda(R, C, m.q, m.scale, blk ? 128 : 1, y.data(), NULL);
		ok &= check(blk ? "fp8 dequant 128x128 (exact)" : "fp8 dequant 1x128 (exact)", rc,
			    scaled_err(y.data(), ref.data(), y.size()), 0);
		fp8_matrix_free(&m);
	}
	std::vector<uint8_t> codes(256);
	std::vector<float> all(256, NAN), one(2, 1.0f), lut(256);   /* two 1x128 tiles */
	for (int c = 0; c < 256; c++)
		codes[c] = (uint8_t)c, lut[c] = fp8_decode((uint8_t)c, FP8_E4M3);
	int rc = fp8lay_dequant_cuda(1, 256, codes.data(), one.data(), 1, all.data(), NULL);
	double e = 0;
	for (int c = 0; c < 256; c++)
		if ((c & 0x7f) != 0x7f)   /* the NaN codes: NaN either way */
			e = fmax(e, fabs((double)all[c] - lut[c]));
	ok &= check("fp8 E4M3 decode, every code (exact)", rc, e, 0);
	return ok;
}

static int fp8_layout_checks(uint64_t s)
{
	int ok = fp8_pad_checks(130, 40, s);   /* K = 130 past one 1x128 tile */
	ok &= fp8_pad_checks(7, 129, s + 1);
	ok &= fp8_scale_checks(37, 3, s + 2);
	ok &= fp8_scale_checks(5, 8, s + 3);
	ok &= fp8_dequant_checks(130, 140, s + 4);
	return ok;
}
