/*
 * mla_bench.h - the pieces of `moebench mla` (benchmarks/mla*.c), private to it.
 *
 * A variant is one attention design at a preset's width: MLA (the preset's own), MHA
 * or GQA with G key/value heads. Each (variant, operation) is a case run by the
 * generic driver (mla_case.c); mla.c parses the options, plans and summarises.
 */
#ifndef MB_BENCH_MLA_H
#define MB_BENCH_MLA_H

#include <stdbool.h>
#include <stdint.h>

#include "attention.h"
#include "driver.h"
#include "mla.h"

/* NOTE: tolerances, as max |d - ref| / rms(ref). The core's float entry points compute
 * in double and round once: 1e-5. The blocks' float path runs its projections in
 * SGEMM (FP32 accumulation over K up to a few thousand): 1e-3. */
#define MLA_TOL_CORE 1e-5
#define MLA_TOL_BLOCK 1e-3
/* NOTE: CUDA cases see BF16 inputs (the reference gets the same rounded values) and
 * write BF16 outputs (2^-9 relative), an element up to a few times the RMS: 2e-2. */
#define MLA_TOL_BF16 2e-2
/* NOTE: the CUDA block rounds every activation and activation gradient to BF16
 * between its steps (about ten roundings deep for dx) and the core rounds P and dS:
 * 6e-2 of the RMS, set from that count, not yet from a measured run. */
#define MLA_TOL_BF16_BLOCK 6e-2
/* NOTE: the CUDA block cases' CPU reference (mla_fwd_f32 + mla_bwd_f32) may cost at
 * most this many FLOPs (seconds of SGEMM on a few cores); above it the check runs on
 * a prefix of one sequence (mla_case.c, block_check_seq). */
#define MLA_CUDA_CHECK_FLOPS 2e11

struct mla_variant {
	char name[24];          /* "mla", "mha", "gqa8" */
	bool is_mla;
	struct mla_config mla;  /* is_mla */
	struct gqa_config gqa;  /* otherwise; MHA is kv_heads == heads */
};

enum mla_op { MLA_OP_CORE_FWD, MLA_OP_CORE_BWD, MLA_OP_BLOCK_FWD, MLA_OP_BLOCK_BWD,
	      MLA_OP_DECODE };

/* One case to measure: a variant, an operation, the sizes. */
struct mla_case_spec {
	const char *preset;
	const struct mla_variant *v;
	enum mla_op op;
	int batch, seq, ctx;
	bool cuda;              /* CUDA in BF16 (core: attention.cu; block: mla_cuda.h), else CPU */
	double measured_peak;   /* sgemm TFLOP/s (train) or copy GB/s (decode); NaN: none */
};

/* mla_op_name: "core_fwd", "core_bwd", "block_fwd", "block_bwd", "decode". */
const char *mla_op_name(enum mla_op op);
/* mla_case_flops counts the FLOPs of one repetition (the convention, mla.c's
 * header). */
double mla_case_flops(const struct mla_case_spec *s);
/* mla_case_bytes estimates the host bytes a case allocates (inputs, outputs, the FP64
 * reference), to refuse sizes that do not fit. */
double mla_case_bytes(const struct mla_case_spec *s);
/* mla_decode_shape returns the core's decode shape of a variant (MLA: absorbed). */
struct attn_decode_shape mla_decode_shape(const struct mla_variant *v, int batch, int ctx);
/* mla_run_case builds the case and runs it through the driver (CPU cases on the host
 * clock). A CUDA case whose shape the kernels do not take is reported and skipped. */
int mla_run_case(struct run_ctx *ctx, const struct mla_case_spec *s);

#endif
