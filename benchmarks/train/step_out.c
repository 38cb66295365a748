/*
 * step_out.c - the memory and GEMM-rate terms of a `moebench step` record (step_out.h).
 */
#include "step_out.h"

#include <math.h>
#include <stdio.h>

#include "result.h"

/* step_memory records each memory term measured (mem_*_bytes), predicted
 * (predicted_*_bytes) and their ratio (mem_*_ratio), and appends them to line. */
void step_memory(cJSON *rec, const struct step_figures *f, char *line, size_t len)
{
	static const char *term[NET_MEM_TERMS] = { "weights", "grads", "optimizer",
						   "activations", "scratch" };
	const struct net_memory *g = &f->mem;
	const struct model_memory *w = &f->pred;
	double got[NET_MEM_TERMS] = { (double)g->weights, (double)g->grads, (double)g->optimizer,
				      (double)g->activations, (double)g->scratch };
	double want[NET_MEM_TERMS] = { w->weight_bytes, w->grad_bytes, w->optimizer_bytes,
				       w->activation_bytes, NAN };
	double ratio[NET_MEM_TERMS];
	char key[48];
	int n = 0;
	net_memory_ratios(g, w, ratio);
	result_set_metric(rec, "model_bytes", (double)g->total);
	result_set_metric(rec, "peak_rss_bytes", f->rss_bytes);
	result_set_metric(rec, "predicted_bytes", w->total_bytes);
	result_set_metric(rec, "predicted_microbatches_in_flight", (double)w->microbatches_in_flight);
	if (len)
		n += snprintf(line, len, "; memory MB (memory.c of this rank's part, ratio):");
	for (int i = 0; i < NET_MEM_TERMS; i++) {
		snprintf(key, sizeof(key), "mem_%s_bytes", term[i]);
		result_set_metric(rec, key, got[i]);
		snprintf(key, sizeof(key), "predicted_%s_bytes", term[i]);
		result_set_metric(rec, key, want[i]);
		snprintf(key, sizeof(key), "mem_%s_ratio", term[i]);
		result_set_metric(rec, key, ratio[i]);
		if (n >= 0 && (size_t)n < len && isfinite(want[i]))
			n += snprintf(line + n, len - (size_t)n, " %s %.1f (%.1f, %.3f)", term[i],
				      got[i] / 1e6, want[i] / 1e6, ratio[i]);
		else if (n >= 0 && (size_t)n < len)
			n += snprintf(line + n, len - (size_t)n, " %s %.1f (not modelled)", term[i],
				      got[i] / 1e6);
	}
	if (n >= 0 && (size_t)n < len)
		n += snprintf(line + n, len - (size_t)n, "; all %.1f MB (memory.c %.1f), peak RSS %.1f MB",
			 (double)g->total / 1e6, w->total_bytes / 1e6, f->rss_bytes / 1e6);
	/* the device's high-water mark beside memory.c's total (it counts the CUDA context,
	 * cuBLASLt's workspace and the table's buffers as well) */
	if (f->dev_peak_bytes != 0)
		result_set_metric(rec, "device_peak_bytes", f->dev_peak_bytes);
	if (f->dev_peak_bytes != 0 && n >= 0 && (size_t)n < len)
		snprintf(line + n, len - (size_t)n, ", device high-water %.1f MB (%.3f of memory.c)",
			 f->dev_peak_bytes / 1e6, f->dev_peak_bytes / w->total_bytes);
}

/* step_gemm_rates records the GEMM rate of the expert and dense phases (the linear
 * layers' GEMMs alone, every step run: gemm_*_gflops) and its share of the measured
 * SGEMM rate (gemm_*_pct_measured_peak, NaN without --measured-peak); appends them to
 * line and returns the characters written. */
int step_gemm_rates(cJSON *rec, const struct step_figures *f, char *line, size_t len)
{
	static const struct { int ph; const char *name; } g[2] = {
		{ NET_PH_EXPERTS, "experts" }, { NET_PH_DENSE, "dense" } };
	/* the device step's measured peak is a `peak` GEMM of its precision (step_dev.c) */
	int n = len ? snprintf(line, len, "; GEMM GFLOP/s (of measured %s):",
			       f->dev_peak_bytes != 0 ? "GEMM peak" : "SGEMM") : 0;
	for (int i = 0; i < 2; i++) {
		char key[64];
		double rate = f->gemm_s[g[i].ph] > 0 ? f->gemm_flops[g[i].ph] / f->gemm_s[g[i].ph] / 1e9
						     : NAN;
		double pct = 100 * rate / (1e3 * f->peak_tflops);
		snprintf(key, sizeof(key), "gemm_%s_gflops", g[i].name);
		result_set_metric(rec, key, rate);
		snprintf(key, sizeof(key), "gemm_%s_pct_measured_peak", g[i].name);
		result_set_metric(rec, key, pct);
		if (n >= 0 && (size_t)n < len && isfinite(pct))
			n += snprintf(line + n, len - (size_t)n, " %s %.1f (%.0f%%;", g[i].name, rate, pct);
		else if (n >= 0 && (size_t)n < len)
			n += snprintf(line + n, len - (size_t)n, " %s %.1f (n/a;", g[i].name, rate);
		if (n >= 0 && (size_t)n < len)
			n += snprintf(line + n, len - (size_t)n, " %.0f%% of the phase)",
				      100 * f->gemm_s[g[i].ph] / f->phase[g[i].ph]);
	}
	return n < 0 ? 0 : (n < (int)len ? n : (int)len);
}
