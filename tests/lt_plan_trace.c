/*
 * lt_plan_trace.c - Check suite: what the cuBLASLt callers (peak_cuda.c,
 * gemm_cuda.c, mla_cuda.c) hand cuBLASLt, without a GPU. They run against a recording
 * stand-in of the CUDA runtime and cuBLASLt (lt_fake.c): every heuristic query and
 * matmul is written in full (descriptor attributes, layouts, preference, pointers by
 * allocation, alpha, beta, algorithm, workspace), and the trace of each scenario must
 * equal the recorded one in tests/data/lt_plan_trace.txt.
 *
 * NOTE: the recorded trace was written by the code verified on an H100, before the
 * plan setup was written once (kernels/common/lt_plan.h), by this same file built
 * against those sources (`lt_plan_trace --write FILE`). So a pass says the shared
 * setup hands cuBLASLt exactly what the three copies did, and a later change to any
 * attribute, layout or workspace shows here as a failing line. The values of the
 * inputs never enter a trace (only shapes, attributes and pointer names do), so the
 * inputs are drawn from a fixed seed.
 *
 *   lt_plan_trace                    the suite (CTest)
 *   lt_plan_trace --write FILE       write every scenario's trace to FILE
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>

#include "attention.h"
#include "fp8.h"
#include "gemm_cuda.h"
#include "gemm_cuda_impl.h"
#include "lt_fake.h"
#include "mla_block.h"
#include "mla_cuda.h"
#include "peak.h"
#include "rng.h"
#include "status.h"

/* ---- the kernels the callers launch, named in the trace ---- */

#define KERNEL(name, ...)                  \
	int name(__VA_ARGS__)              \
	{                                  \
		lt_fake_note("kernel " #name); \
		return MB_OK;              \
	}

KERNEL(mla_rmsnorm_fwd_cuda, int rows, int n, const uint16_t *x, int ldx, const uint16_t *g,
       float eps, uint16_t *y, void *stream)
KERNEL(mla_rmsnorm_bwd_cuda, int rows, int n, const uint16_t *x, int ldx, const uint16_t *g,
       float eps, const uint16_t *dy, uint16_t *dx, int lddx, float *rstd, float *dg,
       void *stream)
KERNEL(mla_rope_cuda, int rows, int per_pos, int seq, int dr, double theta, bool inverse,
       const uint16_t *src, int lds, uint16_t *dst, int ldd, void *stream)
KERNEL(mla_assemble_cuda, int t, int heads, int dn, int dr, int dv, const uint16_t *kv,
       const uint16_t *krr, uint16_t *k, uint16_t *v, void *stream)
KERNEL(mla_scatter_cuda, int t, int heads, int dn, int dr, int dv, const uint16_t *dk,
       const uint16_t *d_v, uint16_t *dkv, void *stream)
KERNEL(mla_rope_key_grad_cuda, int t, int heads, int seq, int dn, int dr, int kvl,
       double theta, const uint16_t *dk, uint16_t *dkva, void *stream)
KERNEL(attn_fwd_cuda, const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
       const uint16_t *d_v, uint16_t *d_o, float *d_lse, void *stream)
KERNEL(attn_bwd_cuda, const struct attn_shape *s, const uint16_t *d_q, const uint16_t *d_k,
       const uint16_t *d_v, const uint16_t *d_o, const uint16_t *d_dout, const float *d_lse,
       uint16_t *d_dq, uint16_t *d_dk, uint16_t *d_dv, void *d_work, void *stream)

/* attn_bwd_cuda_workspace: any size serves; this is attention_bwd.cu's formula. */
size_t attn_bwd_cuda_workspace(const struct attn_shape *s)
{
	return (size_t)s->batch * s->seq * s->heads * ((size_t)s->d_qk + 1) * sizeof(float);
}

/* Our own FP8 kernel is not traced: the scenarios ask for cuBLASLt only. */
int gemm_v1_create(struct gemm_v1 **out, enum gemm_kind kind, bool fast_accum,
		   const struct gemm_inputs *in, void *stream)
{
	*out = NULL;
	return MB_ERR_UNSUPPORTED;
}

int gemm_v1_poison(struct gemm_v1 *g)
{
	return MB_ERR_UNSUPPORTED;
}

int gemm_v1_run(struct gemm_v1 *g)
{
	return MB_ERR_UNSUPPORTED;
}

int gemm_v1_download(struct gemm_v1 *g, float *d)
{
	return MB_ERR_UNSUPPORTED;
}

void gemm_v1_destroy(struct gemm_v1 *g)
{
}

/* ---- scenarios ---- */

/* NEED stops the program when a scenario's own setup fails. NOTE: not ck_assert,
 * which cannot be called outside a running test (--write); under the suite, Check
 * reports the abort as an error of the test. */
#define NEED(x) ((x) ? (void)0 : need_failed(#x, __LINE__))
static void need_failed(const char *what, int line)
{
	fprintf(stderr, "lt_plan_trace.c:%d: %s failed\n", line, what);
	abort();
}

/* note_rc writes a call's return code to the trace. */
static void note_rc(const char *what, int rc)
{
	char line[128];
	snprintf(line, sizeof(line), "%s -> %d", what, rc);
	lt_fake_note(line);
}

/* run_peak plans, runs and frees one peak GEMM. */
static void run_peak(enum peak_dtype dtype, int m, int n, int k)
{
	struct peak_gemm_cuda *g = NULL;
	int rc = peak_gemm_cuda_create(&g, dtype, m, n, k, 1234, NULL);
	note_rc("peak_gemm_cuda_create", rc);
	if (!rc)
		note_rc("peak_gemm_cuda_run", peak_gemm_cuda_run(g));
	peak_gemm_cuda_destroy(g);
}

/* fill draws n values in [-1, 1) (the values never enter the trace). */
static void fill(float *x, size_t n, uint64_t stream)
{
	struct mb_rng rng;
	mb_rng_seed(&rng, 42, stream);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)mb_rng_uniform(&rng, -1.0, 1.0);
}

/* run_gemm plans, runs and frees one cuBLASLt GEMM of kind (FP8 operands E4M3 for A,
 * E5M2 for B when mixed, so both operand types show in the layouts). */
static void run_gemm(enum gemm_kind kind, bool fast, bool mixed, int m, int n, int k)
{
	enum fp8_scaling sa = kind == GEMM_FP8_BLOCK ? FP8_PER_1X128 : FP8_PER_TENSOR;
	enum fp8_scaling sb = kind == GEMM_FP8_BLOCK ? FP8_PER_128X128 : FP8_PER_TENSOR;
	float *a = malloc((size_t)m * k * sizeof(float)), *b = malloc((size_t)n * k * sizeof(float));
	struct fp8_matrix a8 = { 0 }, b8 = { 0 };
	struct gemm_inputs in = { m, n, k, a, b, NULL, NULL };
	struct gemm_cuda *g = NULL;
	NEED(a && b);
	fill(a, (size_t)m * k, 1), fill(b, (size_t)n * k, 2);
	if (kind != GEMM_BF16) {
		NEED(MB_OK == fp8_matrix_alloc(&a8, m, k, FP8_E4M3, sa));
		NEED(MB_OK == fp8_matrix_alloc(&b8, n, k, mixed ? FP8_E5M2 : FP8_E4M3, sb));
		NEED(MB_OK == fp8_quantize(a, &a8, false));
		NEED(MB_OK == fp8_quantize(b, &b8, false));
		in.a8 = &a8, in.b8 = &b8;
	}
	int rc = gemm_cuda_create(&g, kind, GEMM_IMPL_CUBLASLT, fast, &in, NULL);
	note_rc("gemm_cuda_create", rc);
	if (!rc)
		note_rc("gemm_cuda_run", gemm_cuda_run(g));
	gemm_cuda_destroy(g);
	fp8_matrix_free(&a8), fp8_matrix_free(&b8);
	free(a), free(b);
}

/* run_mla plans the block's GEMMs, runs a forward and a backward, and frees it. */
static void run_mla(int q_lora_rank)
{
	struct mla_config c = { .dim = 64, .heads = 2, .q_lora_rank = q_lora_rank,
				.kv_lora_rank = 32, .nope = 16, .rope = 16, .v_dim = 16,
				.rope_theta = 10000.0, .eps = 1e-6 };
	struct mla_layout L;
	struct mla_cuda *m = NULL;
	mla_layout_of(&c, &L);
	float *w = malloc(L.total * sizeof(float)), *x = malloc(2 * 8 * 64 * sizeof(float));
	NEED(w && x);
	fill(w, L.total, 3), fill(x, 2 * 8 * 64, 4);
	int rc = mla_cuda_create(&m, &c, 2, 8, NULL);
	note_rc("mla_cuda_create", rc);
	if (!rc) {
		note_rc("mla_cuda_upload", mla_cuda_upload(m, w, x, x));
		note_rc("mla_cuda_fwd", mla_cuda_fwd(m));
		note_rc("mla_cuda_bwd", mla_cuda_bwd(m));
	}
	mla_cuda_destroy(m);
	free(w), free(x);
}

/* The scenarios: every kind of plan each caller makes, and the two ways the heuristic
 * can find nothing (the plan then freed half made). */
enum { SC_PEAK_BF16, SC_PEAK_FP8, SC_PEAK_NONE, SC_GEMM_BF16, SC_GEMM_TENSOR,
       SC_GEMM_TENSOR_FAST, SC_GEMM_BLOCK, SC_GEMM_BLOCK_FAST, SC_GEMM_BLOCK_NOSUP,
       SC_MLA, SC_MLA_NO_QLORA, SC_MLA_NOSUP, SC_COUNT };
static const char *const sc_name[SC_COUNT] = {
	"peak bf16", "peak fp8", "peak no algorithm", "gemm bf16", "gemm fp8-tensor mixed",
	"gemm fp8-tensor fast", "gemm fp8-block", "gemm fp8-block fast mixed",
	"gemm fp8-block not supported", "mla", "mla without q lora", "mla no algorithm",
};

/* scenario runs scenario i with its trace to `out`. */
static void scenario(int i, FILE *out)
{
	static const enum lt_fake_heuristic h[SC_COUNT] = {
		[SC_PEAK_NONE] = LT_FAKE_NONE, [SC_GEMM_BLOCK_NOSUP] = LT_FAKE_NOT_SUPPORTED,
		[SC_MLA_NOSUP] = LT_FAKE_NONE };
	lt_fake_reset(out, h[i]);
	fprintf(out, "== %s\n", sc_name[i]);
	switch (i) {
	case SC_PEAK_BF16: run_peak(PEAK_BF16, 96, 80, 48); break;
	case SC_PEAK_FP8: run_peak(PEAK_FP8_E4M3, 96, 80, 48); break;
	case SC_PEAK_NONE: run_peak(PEAK_FP8_E4M3, 32, 16, 64); break;
	case SC_GEMM_BF16: run_gemm(GEMM_BF16, false, false, 40, 24, 56); break;
	case SC_GEMM_TENSOR: run_gemm(GEMM_FP8_TENSOR, false, true, 48, 32, 64); break;
	case SC_GEMM_TENSOR_FAST: run_gemm(GEMM_FP8_TENSOR, true, false, 48, 32, 64); break;
	case SC_GEMM_BLOCK: run_gemm(GEMM_FP8_BLOCK, false, false, 48, 272, 384); break;
	case SC_GEMM_BLOCK_FAST: run_gemm(GEMM_FP8_BLOCK, true, true, 48, 272, 384); break;
	case SC_GEMM_BLOCK_NOSUP: run_gemm(GEMM_FP8_BLOCK, true, false, 16, 16, 128); break;
	case SC_MLA: run_mla(24); break;
	case SC_MLA_NO_QLORA: run_mla(0); break;
	default: run_mla(24); break;
	}
	fprintf(out, "live after destroy %d\n", lt_fake_live());
	lt_fake_reset(NULL, LT_FAKE_ALGO);
}

/* ---- the check ---- */

/* read_file returns the whole of path, NUL-terminated (NULL when unreadable). */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (s = malloc((size_t)n + 1)) && fread(s, 1, (size_t)n, f) == (size_t)n)
		s[n] = '\0';
	else
		free(s), s = NULL;
	fclose(f);
	return s;
}

/* recorded returns scenario i's part of the recorded trace (a new string). */
static char *recorded(int i)
{
	char *all = read_file(LT_TRACE_FILE), head[96], *part = NULL;
	ck_assert_msg(all, "cannot read %s", LT_TRACE_FILE);
	snprintf(head, sizeof(head), "== %s\n", sc_name[i]);
	char *start = strstr(all, head);
	ck_assert_msg(start, "%s: no scenario \"%s\"", LT_TRACE_FILE, sc_name[i]);
	char *end = strstr(start + strlen(head), "\n== ");
	size_t n = end ? (size_t)(end - start) + 1 : strlen(start);
	ck_assert(part = malloc(n + 1));
	memcpy(part, start, n);
	part[n] = '\0';
	free(all);
	return part;
}

/* first_difference prints the first line where two traces differ. */
static void first_difference(const char *want, const char *got)
{
	int line = 1;
	while (*want && *want == *got) {
		line += *want == '\n';
		want++, got++;
	}
	while (line > 1 && want[-1] != '\n')
		want--, got--;
	fprintf(stderr, "line %d\n  recorded: %.*s\n  now:      %.*s\n", line,
		(int)strcspn(want, "\n"), want, (int)strcspn(got, "\n"), got);
}

/* trace_of returns scenario i's trace now (a new string). */
static char *trace_of(int i)
{
	char *got = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&got, &n);
	ck_assert(out);
	scenario(i, out);
	fclose(out);
	return got;
}

START_TEST(trace_equals_the_recorded_one)
{
	char *want = recorded(_i), *got = trace_of(_i);
	if (strcmp(want, got))
		first_difference(want, got);
	ck_assert_msg(!strcmp(want, got), "scenario \"%s\": trace differs (stderr)", sc_name[_i]);
	ck_assert_msg(strstr(got, "live after destroy 0\n"), "scenario \"%s\" leaks", sc_name[_i]);
	free(want), free(got);
}
END_TEST

/* The trace holds the attribute values themselves, so it cannot pass vacuously: the
 * FP8 block plans carry FAST_ACCUM as set (0 or 1, one byte) and the two block scale
 * modes (BLK128x128_32F on cuBLASLt's A, VEC128_32F on its B, int32). */
START_TEST(the_trace_holds_the_values)
{
	char *slow = trace_of(SC_GEMM_BLOCK), *fast = trace_of(SC_GEMM_BLOCK_FAST), want[64];
	snprintf(want, sizeof(want), " a%d=0/1 ", (int)CUBLASLT_MATMUL_DESC_FAST_ACCUM);
	ck_assert_ptr_nonnull(strstr(slow, want));
	ck_assert_ptr_null(strstr(fast, want));
	snprintf(want, sizeof(want), " a%d=1/1 ", (int)CUBLASLT_MATMUL_DESC_FAST_ACCUM);
	ck_assert_ptr_nonnull(strstr(fast, want));
	snprintf(want, sizeof(want), " a%d=%d/4 a%d=%d/4", (int)CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
		 (int)CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F,
		 (int)CUBLASLT_MATMUL_DESC_B_SCALE_MODE, (int)CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F);
	ck_assert_ptr_nonnull(strstr(slow, want));
	free(slow), free(fast);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("lt_plan_trace");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, trace_equals_the_recorded_one, 0, SC_COUNT);
	tcase_add_test(tc, the_trace_holds_the_values);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--write")) {
		FILE *out = fopen(argv[2], "w");
		if (!out)
			return EXIT_FAILURE;
		for (int i = 0; i < SC_COUNT; i++)
			scenario(i, out);
		return fclose(out) ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	SRunner *sr = srunner_create(make_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
