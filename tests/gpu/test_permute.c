/*
 * test_permute.c (GPU) - the CUDA permutation kernels (kernels/moe/permute.cu) against the
 * CPU reference (kernels/moe/permute.c), bit for bit: gather into send order, expert-major
 * arrangement (BF16 and FP8, hidden not a multiple of 128), identity experts and the
 * weighted un-permutation. Exits 77 (CTest: skipped) when no CUDA device answers.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>

#include "bf16.h"
#include "permute.h"
#include "rng.h"
#include "status.h"

#include "gpu_main.h"

/* to_device copies n host bytes into a new device buffer. */
static void *to_device(const void *h, size_t n)
{
	void *d = NULL;
	ck_assert_int_eq(cudaMalloc(&d, n + 16), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice), cudaSuccess);
	return d;
}

/* expect_same downloads n bytes of d and compares them with the host reference. */
static void expect_same(const void *d, const void *ref, size_t n, const char *what)
{
	void *h = malloc(n + 1);
	ck_assert_int_eq(cudaStreamSynchronize(stream), cudaSuccess);
	ck_assert_int_eq(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost), cudaSuccess);
	ck_assert_msg(memcmp(h, ref, n) == 0, "%s differs from the CPU", what);
	free(h);
}

/* routed_meta draws distinct experts and positive weights for T tokens into meta. */
static void routed_meta(int32_t *meta, long tokens, int experts, int topk, uint64_t seed)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, 3);
	for (long t = 0; t < tokens; t++) {
		int32_t *m = meta + t * PERMUTE_META_INTS(topk);
		m[0] = 0, m[1] = (int32_t)t;
		for (int j = 0; j < topk; j++) {
			int e, dup;
			do {
				e = (int)(mb_rng_next(&rng) % (uint64_t)experts), dup = 0;
				for (int i = 0; i < j; i++)
					dup |= m[2 + i] == e;
			} while (dup);
			float w = (float)mb_rng_uniform(&rng, 0.05, 1.0);
			m[2 + j] = e;
			memcpy(&m[2 + topk + j], &w, 4);
		}
	}
}

/* pipeline runs gather, arrange, identity and reduce on both sides for one format. */
static void pipeline(enum permute_payload payload, int hidden, long tokens, uint64_t seed)
{
	const int experts = 16, topk = 4;
	struct permute_format f;
	struct permute_plan p;
	struct permute_experts x;
	int32_t *meta = malloc(tokens * PERMUTE_META_INTS(topk) * 4);
	uint16_t *tok = malloc(tokens * hidden * 2);
	struct mb_rng rng;
	mb_rng_seed(&rng, seed, 4);
	for (long i = 0; i < tokens * hidden; i++)
		tok[i] = bf16_from_float((float)mb_rng_normal(&rng));
	routed_meta(meta, tokens, experts, topk, seed);
	ck_assert_int_eq(permute_format_of(hidden, payload, &f), MB_OK);
	ck_assert_int_eq(permute_plan_build(meta, tokens, topk, 4, 4, &p), MB_OK);
	uint8_t *rows = malloc(tokens * f.row_bytes), *send = malloc(p.slots * f.row_bytes);
	ck_assert_int_eq(permute_pack(tok, tokens, &f, rows), MB_OK);
	permute_gather(rows, p.slot_item, p.slots, f.row_bytes, send);
	void *d_rows = to_device(rows, tokens * f.row_bytes), *d_send = to_device(send, p.slots * f.row_bytes);
	void *d_slot = to_device(p.slot_item, p.slots * 4);
	ck_assert_int_eq(cudaMemset(d_send, 0xff, p.slots * f.row_bytes), cudaSuccess);
	ck_assert_int_eq(permute_gather_cuda(d_rows, d_slot, p.slots, f.row_bytes, d_send, stream), MB_OK);
	expect_same(d_send, send, p.slots * f.row_bytes, "gather");
	/* all experts on one "rank": every token's copy arranged expert-major */
	ck_assert_int_eq(permute_experts_build(meta, tokens, topk, 0, experts, &x), MB_OK);
	size_t nxe = x.rows_padded * hidden * (payload == PERMUTE_FP8 ? 1 : 2);
	size_t nxs = x.rows_padded * f.scales * 4, ny = x.rows_padded * hidden * 2;
	void *xe = malloc(nxe + 1), *xs = malloc(nxs + 4), *y = malloc(ny), *out = malloc(tokens * hidden * 2);
	permute_arrange(rows, &f, &x, xe, xs);
	permute_identity_experts(&f, x.rows_padded, xe, xs, y);
	permute_reduce(y, hidden, x.copy_rows, x.copy_weights, topk, tokens, out);
	void *d_rc = to_device(x.row_copy, x.rows_padded * 4), *d_cr = to_device(x.copy_rows, tokens * topk * 4);
	void *d_cw = to_device(x.copy_weights, tokens * topk * 4);
	void *d_xe = to_device(xe, nxe), *d_xs = to_device(xs, nxs), *d_y = to_device(y, ny);
	void *d_out = to_device(out, tokens * hidden * 2);
	cudaMemset(d_xe, 0xff, nxe), cudaMemset(d_xs, 0xff, nxs), cudaMemset(d_y, 0xff, ny);
	cudaMemset(d_out, 0xff, tokens * hidden * 2);
	ck_assert_int_eq(permute_arrange_cuda(d_rows, &f, d_rc, x.rows_padded, d_xe, d_xs, stream), MB_OK);
	expect_same(d_xe, xe, nxe, "arrange");
	if (nxs)
		expect_same(d_xs, xs, nxs, "arrange scales");
	ck_assert_int_eq(permute_identity_experts_cuda(&f, x.rows_padded, d_xe, d_xs, d_y, stream), MB_OK);
	expect_same(d_y, y, ny, "identity experts");
	ck_assert_int_eq(permute_reduce_cuda(d_y, hidden, d_cr, d_cw, topk, tokens, d_out, stream), MB_OK);
	expect_same(d_out, out, tokens * hidden * 2, "weighted reduce");
	void *d_ptrs[] = { d_rows, d_send, d_slot, d_rc, d_cr, d_cw, d_xe, d_xs, d_y, d_out };
	for (size_t i = 0; i < sizeof(d_ptrs) / sizeof(d_ptrs[0]); i++)
		cudaFree(d_ptrs[i]);
	free(meta), free(tok), free(rows), free(send), free(xe), free(xs), free(y), free(out);
	permute_experts_free(&x);
	permute_plan_free(&p);
}

START_TEST(bf16_matches_cpu)
{
	pipeline(PERMUTE_BF16, 256, 300, 1);
	pipeline(PERMUTE_BF16, 7168, 64, 2);
}
END_TEST

START_TEST(fp8_matches_cpu)
{
	pipeline(PERMUTE_FP8, 200, 257, 3);
	pipeline(PERMUTE_FP8, 7168, 64, 4);
}
END_TEST

static Suite *permute_gpu_suite(void)
{
	Suite *s = suite_create("permute_gpu");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bf16_matches_cpu);
	tcase_add_test(tc, fp8_matches_cpu);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return gpu_main(permute_gpu_suite);
}
