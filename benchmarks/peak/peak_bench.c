/*
 * peak.c - `moebench peak`: the achievable dense matmul rate and memory bandwidth of
 * the chosen backend, beside the datasheet peak.
 *
 *   CPU   OpenBLAS SGEMM and DGEMM at --size^3; STREAM copy and triad over --stream
 *         doubles per array. Datasheet peak: n/a (no CPU table: never guessed).
 *   CUDA  cuBLASLt BF16 and FP8 E4M3 (tensor-scaled) GEMM at --size^3 and a
 *         device-to-device copy of --copy-bytes (bytes read + written counted).
 *
 * Each case is checked: GEMMs on --samples elements against an FP64 host reference,
 * copies element by element. Later benchmarks quote these rates as "measured peak".
 *
 *   moebench peak                       # auto backend, full sizes
 *   moebench peak --backend cpu --size 1024 --stream 8M
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "hardware.h"
#include "peak.h"
#include "status.h"

static struct {
	int64_t size;
	int64_t stream;
	int64_t copy_bytes;
	int samples;
} opt;

static const struct cli_opt peak_opts[] = {
	{ "size", CLI_SIZE, &opt.size, "0", "GEMM M=N=K (0: 2048 on the CPU, 8192 on CUDA)", 0, 65536, NULL },
	{ "stream", CLI_SIZE, &opt.stream, "32M", "STREAM doubles per array (CPU)", 1024, 4294967296.0, NULL },
	{ "copy-bytes", CLI_SIZE, &opt.copy_bytes, "1G", "device-to-device copy size in bytes (CUDA)", 4096, 68719476736.0, NULL },
	{ "samples", CLI_INT, &opt.samples, "1024", "GEMM output elements checked against FP64", 2, 1 << 24, NULL },
	CLI_END
};

static const struct cli_opt *peak_options(void)
{
	return peak_opts;
}

/* to_bench copies a kernel check into the driver's check. */
static void to_bench(const struct peak_check *pc, struct bench_check *bc, const char *metric)
{
	bc->max_err = pc->max_err;
	bc->tolerance = pc->tolerance;
	bc->samples = pc->samples;
	bc->mismatches = pc->mismatches;
	bc->metric = metric;
}

/* ---- CPU cases ---- */

static int gemm_cpu_poison(void *s) { peak_gemm_cpu_poison(s); return MB_OK; }
static int gemm_cpu_run(void *s) { peak_gemm_cpu_run(s); return MB_OK; }
static void gemm_cpu_destroy(void *s) { peak_gemm_cpu_destroy(s); }
static int gemm_cpu_check(void *s, struct bench_check *bc)
{
	struct peak_check pc;
	int err = peak_gemm_cpu_check(s, opt.samples, &pc);
	to_bench(&pc, bc, "abs_err/sum|a*b|");
	return err;
}

static int stream_poison(void *s) { peak_stream_cpu_poison(s); return MB_OK; }
static int stream_run(void *s) { peak_stream_cpu_run(s); return MB_OK; }
static void stream_destroy(void *s) { peak_stream_cpu_destroy(s); }
static int stream_check(void *s, struct bench_check *bc)
{
	struct peak_check pc;
	int err = peak_stream_cpu_check(s, &pc);
	to_bench(&pc, bc, "elements_differing");
	return err;
}

/* gemm_params returns {"op", "dtype", "m", "n", "k"}. */
static cJSON *gemm_params(const char *op, enum peak_dtype dt, int n)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "op", op);
	cJSON_AddStringToObject(p, "dtype", peak_dtype_name(dt));
	cJSON_AddNumberToObject(p, "m", n);
	cJSON_AddNumberToObject(p, "n", n);
	cJSON_AddNumberToObject(p, "k", n);
	return p;
}

static int run_gemm_cpu(struct run_ctx *ctx, enum peak_dtype dt, int n)
{
	struct bench_case c = { .peak = NAN };
	const char *op = dt == PEAK_FP32 ? "sgemm" : "dgemm";
	struct peak_gemm_cpu *g;
	int err = peak_gemm_cpu_create(&g, dt, n, n, n, ctx->opts->seed);
	if (err)
		return err;
	snprintf(c.name, sizeof(c.name), "cpu/%s/M%d_N%d_K%d", op, n, n, n);
	c.params = gemm_params(op, dt, n);
	c.flops = 2.0 * n * n * (double)n;
	c.state = g;
	c.poison = gemm_cpu_poison;
	c.run = gemm_cpu_run;
	c.check = gemm_cpu_check;
	c.destroy = gemm_cpu_destroy;
	return driver_run_case(ctx, &c);
}

static int run_stream_cpu(struct run_ctx *ctx, enum peak_stream_op op, size_t n)
{
	struct bench_case c = { .peak = NAN };
	const char *name = op == PEAK_STREAM_COPY ? "stream_copy" : "stream_triad";
	struct peak_stream_cpu *s;
	int err = peak_stream_cpu_create(&s, op, n, ctx->opts->seed);
	if (err)
		return err;
	snprintf(c.name, sizeof(c.name), "cpu/%s/n%zu", name, n);
	c.params = cJSON_CreateObject();
	cJSON_AddStringToObject(c.params, "op", name);
	cJSON_AddNumberToObject(c.params, "elements", (double)n);
	cJSON_AddNumberToObject(c.params, "bytes_per_rep", (double)peak_stream_cpu_bytes(s));
	c.bytes = (double)peak_stream_cpu_bytes(s);
	c.state = s;
	c.poison = stream_poison;
	c.run = stream_run;
	c.check = stream_check;
	c.destroy = stream_destroy;
	return driver_run_case(ctx, &c);
}

static int run_cpu(struct run_ctx *ctx)
{
	int n = opt.size > 0 ? (int)opt.size : ctx->suite ? 1024 : 2048;
	size_t stream = ctx->suite ? (size_t)8 << 20 : (size_t)opt.stream;
	int err = run_gemm_cpu(ctx, PEAK_FP32, n);
	if (!err)
		err = run_gemm_cpu(ctx, PEAK_FP64, ctx->suite ? n / 2 : n);
	if (!err)
		err = run_stream_cpu(ctx, PEAK_STREAM_COPY, stream);
	if (!err)
		err = run_stream_cpu(ctx, PEAK_STREAM_TRIAD, stream);
	return err;
}

/* ---- CUDA cases ---- */

static int gemm_cuda_poison(void *s) { return peak_gemm_cuda_poison(s); }
static int gemm_cuda_run(void *s) { return peak_gemm_cuda_run(s); }
static void gemm_cuda_destroy(void *s) { peak_gemm_cuda_destroy(s); }
static int gemm_cuda_check(void *s, struct bench_check *bc)
{
	struct peak_check pc;
	int err = peak_gemm_cuda_check(s, opt.samples, &pc);
	to_bench(&pc, bc, "abs_err/sum|a*b|");
	return err;
}

static int copy_cuda_poison(void *s) { return peak_copy_cuda_poison(s); }
static int copy_cuda_run(void *s) { return peak_copy_cuda_run(s); }
static void copy_cuda_destroy(void *s) { peak_copy_cuda_destroy(s); }
static int copy_cuda_check(void *s, struct bench_check *bc)
{
	struct peak_check pc;
	int err = peak_copy_cuda_check(s, &pc);
	to_bench(&pc, bc, "bytes_differing");
	return err;
}

static int run_gemm_cuda(struct run_ctx *ctx, enum peak_dtype dt, int n,
			 const struct hardware_spec *hw)
{
	struct bench_case c = { .peak = NAN };
	const char *op = dt == PEAK_BF16 ? "bf16_gemm" : "fp8_tensor_gemm";
	struct peak_gemm_cuda *g;
	int err = peak_gemm_cuda_create(&g, dt, n, n, n, ctx->opts->seed, ctx->backend->stream);
	if (err)
		return err;
	snprintf(c.name, sizeof(c.name), "cuda/%s/M%d_N%d_K%d", op, n, n, n);
	c.params = gemm_params(op, dt, n);
	cJSON_AddStringToObject(c.params, "library", "cublaslt");
	c.flops = 2.0 * n * n * (double)n;
	if (hw) {
		c.peak = dt == PEAK_BF16 ? hw->peak_bf16_tflops : hw->peak_fp8_tflops;
		c.peak_source = hw->source;
	}
	c.state = g;
	c.poison = gemm_cuda_poison;
	c.run = gemm_cuda_run;
	c.check = gemm_cuda_check;
	c.destroy = gemm_cuda_destroy;
	return driver_run_case(ctx, &c);
}

static int run_copy_cuda(struct run_ctx *ctx, size_t bytes, const struct hardware_spec *hw)
{
	struct bench_case c = { .peak = NAN };
	struct peak_copy_cuda *cp;
	int err = peak_copy_cuda_create(&cp, bytes, ctx->opts->seed, ctx->backend->stream);
	if (err)
		return err;
	snprintf(c.name, sizeof(c.name), "cuda/d2d_copy/bytes%zu", bytes);
	c.params = cJSON_CreateObject();
	cJSON_AddStringToObject(c.params, "op", "d2d_copy");
	cJSON_AddNumberToObject(c.params, "bytes", (double)bytes);
	/* NOTE: a copy reads and writes every byte: 2 x bytes of HBM traffic. */
	c.bytes = 2.0 * (double)bytes;
	if (hw) {
		c.peak = 1000.0 * hw->hbm_tbps;
		c.peak_source = hw->source;
	}
	c.state = cp;
	c.poison = copy_cuda_poison;
	c.run = copy_cuda_run;
	c.check = copy_cuda_check;
	c.destroy = copy_cuda_destroy;
	return driver_run_case(ctx, &c);
}

static int run_cuda(struct run_ctx *ctx)
{
	const struct hardware_spec *hw = hardware_match(ctx->backend->dev.name);
	int n = opt.size > 0 ? (int)opt.size : ctx->suite ? 4096 : 8192;
	size_t bytes = ctx->suite ? (size_t)256 << 20 : (size_t)opt.copy_bytes;
	int err = run_gemm_cuda(ctx, PEAK_BF16, n, hw);
	if (!err)
		err = run_gemm_cuda(ctx, PEAK_FP8_E4M3, n, hw);
	if (!err)
		err = run_copy_cuda(ctx, bytes, hw);
	return err;
}

static int peak_run(struct run_ctx *ctx)
{
	return ctx->backend->kind == BACKEND_CUDA ? run_cuda(ctx) : run_cpu(ctx);
}

const struct bench_desc bench_peak = {
	.name = "peak",
	.summary = "achievable matmul rate and memory bandwidth of this device",
	.usage = "moebench peak [--size N] [--stream N] [--copy-bytes N] [options]",
	.warmup = "2",
	.iters = "10",
	.min_time = "0.5",
	.options = peak_options,
	.run = peak_run,
};
