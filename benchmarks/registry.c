/* registry.c - every command moebench knows, in the order `moebench --help` lists them.
 * The default suite (`moebench run`) runs the entries that have a `run`, in this order:
 * peak, claims, pipeline, gemm, mla, a2a. */
#include <stddef.h>
#include <string.h>

#include "commands.h"
#include "session.h"

extern const struct bench_desc bench_peak;
extern const struct bench_desc bench_claims;
extern const struct bench_desc bench_pipeline;
extern const struct bench_desc bench_gemm;
extern const struct bench_desc bench_mla;
extern const struct bench_desc bench_a2a;
extern const struct bench_desc bench_step;

static const struct bench_desc bench_info = {
	.name = "info",
	.summary = "machine, devices, libraries, counters, datasheet peaks",
	.command = cmd_info,
};

static const struct bench_desc bench_run = {
	.name = "run",
	.summary = "the default suite: every benchmark at small sizes",
	.command = session_suite,
};

static const struct bench_desc bench_model = {
	.name = "model",
	.summary = "parameters, FLOPs/token, KV cache, memory of a model preset",
	.command = cmd_model,
};

static const struct bench_desc bench_train = {
	.name = "train",
	.summary = "train a model preset on text: per-step loss, tokens/s, MFU, validation loss",
	.command = cmd_train,
};

static const struct bench_desc bench_project = {
	.name = "project",
	.summary = "a training step projected to N GPUs of a hardware (step split, MFU, GPU-hours); --validate",
	.command = cmd_project,
};

static const struct bench_desc bench_report = {
	.name = "report",
	.summary = "step/train results -> tokens/s per GPU, MFU, GPU-hours, cost beside the published runs",
	.command = cmd_report,
};

static const struct bench_desc bench_scale = {
	.name = "scale",
	.summary = "weak and strong scaling of the training step over rank counts, beside Frontier's",
	.command = cmd_scale,
};

static const struct bench_desc bench_compare = {
	.name = "compare",
	.summary = "two result files -> regressions (exit 1 on one)",
	.command = cmd_compare,
};

const struct bench_desc *const bench_registry[] = {
	&bench_info,
	&bench_run,
	&bench_model,
	&bench_peak,
	&bench_claims,
	&bench_pipeline,
	&bench_gemm,
	&bench_mla,
	&bench_a2a,
	&bench_step,
	&bench_train,
	&bench_scale,
	&bench_report,
	&bench_compare,
	&bench_project,
	NULL,
};

const struct bench_desc *bench_find(const char *name)
{
	for (int i = 0; bench_registry[i]; i++)
		if (strcmp(name, bench_registry[i]->name) == 0)
			return bench_registry[i];
	return NULL;
}
