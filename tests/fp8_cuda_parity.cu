/*
 * fp8_cuda_parity.cu - kernels/gemm/fp8.c against CUDA's own FP8 conversions, bit for bit.
 *
 * cuda_fp8.h's conversions (__nv_cvt_float_to_fp8, __nv_cvt_fp8_to_halfraw) and
 * cuda_fp16.h's __half2float are host-callable: nvcc compiles them here as plain host
 * code, so this runs on a machine without a GPU and calls no CUDA runtime API. (On an
 * H100, the device instructions cvt.rn.satfinite.{e4m3,e5m2}x2.f32 and
 * cvt.rn.f16x2.{e4m3,e5m2}x2 agreed with these host versions on every input.)
 *
 *   fp8_cuda_parity          exhaustive where FP8 rounding happens, strided elsewhere
 *   fp8_cuda_parity --all    every float32 bit pattern (2^32 per format)
 *
 * Checks, both formats:
 *   half -> float  __half2float equals an exact widening for all 65536 half patterns,
 *                  so comparing decoded codes through half loses nothing;
 *   decode         fp8_decode(c) == __half2float(__nv_cvt_fp8_to_halfraw(c)) by bits,
 *                  all 256 codes (NaNs included: both give 0x7fffffff);
 *   encode         fp8_encode(x) == __nv_cvt_float_to_fp8(x, __NV_SATFINITE, fmt) for
 *                  every float whose exponent lies within two binades of the format's
 *                  range (every tie, subnormal, saturation boundary), both signs, plus
 *                  every 251st bit pattern of the whole space (NaNs and infinities too).
 * Exit status 0 when everything agrees, 1 otherwise (the first mismatches printed).
 */
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "fp8.h"

static float bits_float(uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof(x));
	return x;
}

static uint32_t float_bits(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof(u));
	return u;
}

static __nv_fp8_interpretation_t cuda_format(enum fp8_format f)
{
	return f == FP8_E5M2 ? __NV_E5M2 : __NV_E4M3;
}

/* exact_half widens a half by arithmetic: (1024 + m) * 2^(e - 25), or m * 2^-24. */
static float exact_half(uint16_t h)
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	float sign = (h & 0x8000) ? -1.0f : 1.0f;
	if (e == 0x1f)
		return m ? NAN : sign * INFINITY;
	return sign * (e ? ldexpf((float)(1024 + m), e - 25) : ldexpf((float)m, -24));
}

/* check_half_to_float: __half2float is exact on every half pattern. */
static long check_half_to_float(void)
{
	long bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		__half_raw raw;
		raw.x = (unsigned short)h;
		float got = __half2float(__half(raw)), want = exact_half((uint16_t)h);
		bool same = std::isnan(want) ? std::isnan(got) : float_bits(got) == float_bits(want);
		if (!same && bad++ < 4)
			printf("half 0x%04x: __half2float %a, exact %a\n", h, got, want);
	}
	return bad;
}

/* check_decode: fp8_decode equals CUDA's decode through half, by bits. */
static long check_decode(enum fp8_format f)
{
	long bad = 0;
	for (int c = 0; c < 256; c++) {
		__half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)c, cuda_format(f));
		uint32_t cuda = float_bits(__half2float(__half(h)));
		uint32_t ours = float_bits(fp8_decode((uint8_t)c, f));
		if (cuda != ours && bad++ < 4)
			printf("%s decode 0x%02x: cuda 0x%08x, fp8.c 0x%08x\n", fp8_format_name(f), c,
			       cuda, ours);
	}
	return bad;
}

/* A set of float bit patterns: [lo, hi) with a stride. */
struct span {
	uint64_t lo, hi, stride;
};

/* encode_span compares the encoders on every pattern of s from start on, taking every
 * nth-thread's share; mismatches are counted into bad, the first few printed. */
static void encode_span(struct span s, enum fp8_format f, unsigned part, unsigned parts,
			std::atomic<long> *bad, std::atomic<long> *count)
{
	long b = 0, n = 0;
	for (uint64_t p = s.lo + (uint64_t)part * s.stride; p < s.hi; p += (uint64_t)parts * s.stride) {
		float x = bits_float((uint32_t)p);
		uint8_t cuda = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, cuda_format(f));
		uint8_t ours = fp8_encode(x, f);
		n++;
		if (cuda != ours && b++ < 2)
			printf("%s encode 0x%08x (%a): cuda 0x%02x, fp8.c 0x%02x\n",
			       fp8_format_name(f), (uint32_t)p, x, cuda, ours);
	}
	*bad += b;
	*count += n;
}

/* encode_spans runs encode_span over every span on all hardware threads. */
static long encode_spans(const std::vector<struct span> &spans, enum fp8_format f, long *count)
{
	unsigned parts = std::thread::hardware_concurrency();
	std::atomic<long> bad(0), n(0);
	parts = parts < 1 ? 1 : parts > 64 ? 64 : parts;
	for (const struct span &s : spans) {
		std::vector<std::thread> pool;
		for (unsigned t = 0; t < parts; t++)
			pool.emplace_back(encode_span, s, f, t, parts, &bad, &n);
		for (std::thread &t : pool)
			t.join();
	}
	*count += n;
	return bad;
}

/* sweep_spans: all patterns (--all), or both signs of every float whose biased
 * exponent lies in [127 + emin - mant - 2, 127 + emax + 2] plus a stride-251 pass. */
static std::vector<struct span> sweep_spans(enum fp8_format f, bool all)
{
	std::vector<struct span> v;
	if (all) {
		v.push_back({ 0, 1ull << 32, 1 });
		return v;
	}
	int lo = f == FP8_E4M3 ? 127 - 6 - 3 - 2 : 127 - 14 - 2 - 2;
	int hi = f == FP8_E4M3 ? 127 + 8 + 2 : 127 + 15 + 2;
	for (uint64_t sign = 0; sign < 2; sign++)
		v.push_back({ (sign << 31) | ((uint64_t)lo << 23),
			      (sign << 31) | ((uint64_t)(hi + 1) << 23), 1 });
	v.push_back({ 0, 1ull << 32, 251 });
	return v;
}

int main(int argc, char **argv)
{
	bool all = argc > 1 && strcmp(argv[1], "--all") == 0;
	auto t0 = std::chrono::steady_clock::now();
	long half_bad = check_half_to_float(), bad = half_bad, encoded = 0;
	for (enum fp8_format f : { FP8_E4M3, FP8_E5M2 }) {
		long d = check_decode(f), e = encode_spans(sweep_spans(f, all), f, &encoded);
		printf("fp8_cuda_parity: %s decode: %ld of 256 codes differ; encode: %ld differ\n",
		       fp8_format_name(f), d, e);
		bad += d + e;
	}
	double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	printf("fp8_cuda_parity: %s; %ld float patterns encoded (%s); __half2float %s on all "
	       "65536 halves; %.1f s on %u threads\n", bad ? "MISMATCH" : "equal", encoded,
	       all ? "all 2^32 per format" : "FP8 range exhaustive + stride 251",
	       half_bad ? "NOT exact" : "exact", s, std::thread::hardware_concurrency());
	return bad ? 1 : 0;
}
