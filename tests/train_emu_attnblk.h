/*
 * train_emu_attnblk.h - train_emu's checks of kernels/train/attnblk.cu, the device glue
 * of the CUDA table's attention blocks: RoPE against its CPU twin (which is the CPU
 * blocks' own rope_rows, block_real.h, what mla_fwd_f32 / gqa_fwd_f32 run) and against
 * a plain per-element loop written here, the strided copies, the broadcast and the head
 * sum against their twins. Off-tile sizes, outputs
 * poisoned first. Included by train_emu.cpp after its helpers.
 */

extern "C" {
#include "attnblk.h"
}

/* attnblk_rope_checks: rows [rows, heads * hd], RoPE on the last dr of every head (MLA's
 * query rope part) forward and back; then a one-head strided case (MLA's shared key in
 * kva rows) at an offset position (decode's pos0). */
/* rope_plain rotates like mla.h says, one pair at a time (a third, independent reading
 * of the convention: pos = pos0 + r mod seq, angle pos * theta^(-2i/dr)). */
static void rope_plain(float *x, long rows, int seq, int pos0, int heads, long hs, long rs,
		       int dr, double theta, bool inv)
{
	for (long r = 0; r < rows; r++)
		for (int h = 0; h < heads; h++)
			for (int i = 0; i < dr / 2; i++) {
				float *v = x + r * rs + h * hs + 2 * i;
				double ang = (double)(pos0 + r % seq) * pow(theta, -2.0 * i / dr);
				double c = cos(ang), sn = inv ? -sin(ang) : sin(ang);
				double a = v[0], b = v[1];
				v[0] = (float)(a * c - b * sn);
				v[1] = (float)(a * sn + b * c);
			}
}

static int attnblk_rope_checks(long rows, int seq, int heads, int hd, int dr, uint64_t s)
{
	const double theta = 10000;
	const long ld = (long)heads * hd;
	std::vector<float> x = uniform((size_t)rows * ld, -2, 2, s);
	int ok = 1;
	for (int inv = 0; inv < 2; inv++) {
		std::vector<float> d = x, t = x, b = x;
		int rc = attnblk_rope_cuda(d.data() + hd - dr, rows, seq, 0, heads, hd, ld, dr, theta,
					   inv, NULL);
		int rc2 = attnblk_rope_cpu(t.data() + hd - dr, rows, seq, 0, heads, hd, ld, dr, theta,
					   inv);
		rope_plain(b.data() + hd - dr, rows, seq, 0, heads, hd, ld, dr, theta, inv != 0);
		ok &= check(inv ? "attnblk rope inverse vs twin" : "attnblk rope vs twin", rc,
			    scaled_err(d.data(), t.data(), d.size()), 1e-6);
		ok &= check(inv ? "attnblk rope inverse: rope_rows vs plain loop"
				: "attnblk rope: rope_rows vs plain loop", rc2,
			    scaled_err(t.data(), b.data(), t.size()), 1e-6);
	}
	std::vector<float> d = x, b = x;
	int rc = attnblk_rope_cuda(d.data() + 3, rows, 1, 17, 1, 0, ld, dr, theta, 0, NULL);
	rope_plain(b.data() + 3, rows, 1, 17, 1, 0, ld, dr, theta, false);
	ok &= check("attnblk rope one head, strided, pos0 17", rc,
		    scaled_err(d.data(), b.data(), d.size()), 1e-6);
	/* forward then inverse is the identity up to rounding */
	d = x;
	rc = attnblk_rope_cuda(d.data(), rows, seq, 0, heads, hd, ld, hd, theta, 0, NULL);
	rc = rc ? rc : attnblk_rope_cuda(d.data(), rows, seq, 0, heads, hd, ld, hd, theta, 1, NULL);
	ok &= check("attnblk rope then inverse (identity)", rc,
		    scaled_err(d.data(), x.data(), d.size()), 1e-6);
	return ok;
}

/* attnblk_copy_checks: MLA's k assembly (k_nope out of kv rows, the shared rotated key
 * broadcast to every head), v out of kv, an accumulating copy, the head sum. */
static int attnblk_copy_checks(long T, int H, int dn, int dr, int dv, uint64_t s)
{
	const int dqk = dn + dr, w = dn + dv;
	std::vector<float> kv = uniform((size_t)T * H * w, -1, 1, s);
	std::vector<float> krr = uniform((size_t)T * dr, -1, 1, s + 1);
	std::vector<float> k((size_t)T * H * dqk, NAN), k_ref((size_t)T * H * dqk, NAN);
	int ok = 1, rc = attnblk_copy_cuda(T * H, 1, dn, kv.data(), w, 0, k.data(), dqk, 0, 0, NULL);
	rc = rc ? rc : attnblk_copy_cuda(T, H, dr, krr.data(), dr, 0, k.data() + dn, (long)H * dqk,
					 dqk, 0, NULL);
	attnblk_copy_cpu(T * H, 1, dn, kv.data(), w, 0, k_ref.data(), dqk, 0, 0);
	attnblk_copy_cpu(T, H, dr, krr.data(), dr, 0, k_ref.data() + dn, (long)H * dqk, dqk, 0);
	ok &= check("attnblk copy + broadcast: MLA k (exact)", rc,
		    scaled_err(k.data(), k_ref.data(), k.size()), 0);
	for (long r = 0; r < T; r++)   /* the broadcast itself, against the layout */
		for (int h = 0; h < H; h++)
			if (k[((size_t)r * H + h) * dqk + dn + dr - 1] != krr[(size_t)r * dr + dr - 1])
				ok &= check("attnblk broadcast layout", MB_OK, 1, 0);
	std::vector<float> v = uniform((size_t)T * H * dv, -1, 1, s + 2), v_ref = v;
	rc = attnblk_copy_cuda(T, H, dv, kv.data() + dn, (long)H * w, w, v.data(), (long)H * dv, dv,
			       1, NULL);
	attnblk_copy_cpu(T, H, dv, kv.data() + dn, (long)H * w, w, v_ref.data(), (long)H * dv, dv, 1);
	ok &= check("attnblk copy, accumulating (exact)", rc,
		    scaled_err(v.data(), v_ref.data(), v.size()), 0);
	std::vector<float> sum((size_t)T * (dr + 5), NAN), sum_ref((size_t)T * (dr + 5), NAN);
	rc = attnblk_headsum_cuda(T, H, dr, k.data() + dn, (long)H * dqk, dqk, sum.data() + 5,
				  dr + 5, NULL);
	attnblk_headsum_cpu(T, H, dr, k.data() + dn, (long)H * dqk, dqk, sum_ref.data() + 5, dr + 5);
	for (long r = 0; r < T; r++)   /* columns the sum must leave alone */
		for (int c = 0; c < 5; c++)
			sum[(size_t)r * (dr + 5) + c] = sum_ref[(size_t)r * (dr + 5) + c] = 0;
	ok &= check("attnblk head sum (exact)", rc,
		    scaled_err(sum.data(), sum_ref.data(), sum.size()), 0);
	double e = fabs(sum_ref[5] - (double)H * krr[0]) / (H * fabs(krr[0]) + 1e-30);
	ok &= check("attnblk head sum of a broadcast = H x", MB_OK, e, 1e-5);
	return ok;
}

/* attnblk_widen_check: BF16 bits back to floats, exact. */
static int attnblk_widen_check(long n, uint64_t s)
{
	std::vector<float> x = uniform((size_t)n, -3, 3, s), y((size_t)n, NAN);
	std::vector<uint16_t> b((size_t)n);
	for (long i = 0; i < n; i++)
		b[i] = bf16_from_float(x[i]);
	int rc = attnblk_widen_cuda(b.data(), n, y.data(), NULL);
	std::vector<float> ref = widen(b);
	return check("attnblk widen bf16 (exact)", rc, scaled_err(y.data(), ref.data(), y.size()), 0);
}

static int attnblk_checks(uint64_t s)
{
	int ok = 1;
	ok &= attnblk_rope_checks(37, 13, 3, 48, 16, s);      /* v3-tiny's MLA: 32 nope + 16 rope */
	ok &= attnblk_rope_checks(21, 21, 2, 30, 30, s + 1);  /* GQA: the whole head, not 2^k */
	ok &= attnblk_copy_checks(29, 3, 32, 16, 32, s + 2);
	ok &= attnblk_copy_checks(7, 5, 12, 6, 10, s + 3);
	ok &= attnblk_widen_check(1001, s + 4);
	return ok;
}
