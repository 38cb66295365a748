/*
 * step_dev.h - `moebench step --backend cuda` (step_dev.c): the same single-rank step on
 * the CUDA op table, a device-resident model (net_create_f32_cuda), checked against the
 * FP64 host model as the CPU step is.
 */
#ifndef MB_STEP_DEV_H
#define MB_STEP_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "step_out.h"

/* What step_bench.c hands over of its options. */
struct step_dev_opts {
	const char *preset, *model, *precision, *peak_file;
	int64_t batch, seq;
	/* the options the device step refuses beyond one rank or its defaults */
	int64_t dp, tp, pp, ep, etp, micro;
	bool zero1, sp, overlap, serial, plant;
	const char *init_from, *save, *dump;
};

/* step_dev_refuse returns MB_ERR_ARG after one error line when o asks for something the
 * device step does not do (more than one rank, micro-batches, checkpoints), else MB_OK. */
int step_dev_refuse(const struct step_dev_opts *o);
/* step_dev_bench runs the device step's one case on ctx (a CUDA backend); its figures go
 * to *fig (named as the record) for step_bench.c's summary. MB_ERR_ARG after one error
 * line for bad input or no device. */
int step_dev_bench(struct run_ctx *ctx, const struct step_dev_opts *o, struct step_figures *fig);

#endif
