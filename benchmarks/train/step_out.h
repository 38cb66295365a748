/*
 * step_out.h - what a `moebench step` case leaves for its record after its state is
 * gone, and the record's memory and GEMM-rate terms (step_out.c).
 */
#ifndef MB_STEP_OUT_H
#define MB_STEP_OUT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "accounting.h"
#include "net.h"
#include "train_split.h"

/* What a case leaves for the summary after its state is gone. */
struct step_figures {
	char name[160];
	double phase[NET_PH_COUNT], tokens, flops_per_token;
	double gemm_s[NET_PH_COUNT], gemm_flops[NET_PH_COUNT], peak_tflops;
	struct net_memory mem;
	struct model_memory pred;
	double dp_comm;   /* seconds in DP collectives (gradients, ZeRO-1 gather, loads) */
	double tp_comm;   /* seconds in the model's TP collectives (left out of the phases) */
	double ep_exposed;   /* seconds in EP dispatch/combine waited for */
	double ep_hidden;    /* --ep-overlap: in flight while the other chunk computed */
	int dp, tp, ep;
	struct train_split *split;   /* every rank's time by cause (rank 0); n_split ranks */
	int n_split;
	double rss_bytes;
	/* pipeline: this rank's idle seconds over the steps, measured and simulated */
	double pp_bubble, pp_bubble_sim;
	int pp;
	/* the device step (step_dev.c): the most bytes in use on the GPU (cudaMemGetInfo at
	 * the phase boundaries); 0 on the CPU, where the record leaves it out */
	double dev_peak_bytes;
	/* the model measured (a --model's, a scale sweep's grown one): the record's
	 * model_config, which `report` counts rather than the preset the name gives */
	struct model_config cfg;
};

/* step_memory records each memory term measured, predicted and their ratio, and
 * appends them to line. */
void step_memory(cJSON *rec, const struct step_figures *f, char *line, size_t len);
/* step_gemm_rates records the expert and dense phases' GEMM rates and their share of
 * the measured SGEMM rate; appends them to line, returns the characters written. */
int step_gemm_rates(cJSON *rec, const struct step_figures *f, char *line, size_t len);

#endif
