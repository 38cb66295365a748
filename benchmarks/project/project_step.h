/*
 * project_step.h - one training step of a model on N GPUs of a hardware entry, projected
 * from per-operation costs (model/project.h) calibrated by microbenchmarks, with the
 * pipeline bubble from the event simulator (harness/pipeline) run on the projected
 * operation times.
 *
 * The step, per GPU of the slowest pipeline stage:
 *   step = pipeline (simulated: m micro-batches of forward, input-gradient and
 *          weight-gradient work per device, exposed communication inside them, the
 *          point-to-point messages between stages, and the bubble)
 *        + exposed DP/ZeRO-1 traffic (gradient reduce-scatter and parameter all-gather
 *          beyond what one micro-batch's backward / forward hides)
 *        + the optimizer (Adam on the ZeRO-1 shard, memory-bound).
 * The simulator takes one duration per operation kind for every device: balanced
 * stages give each 1/PP of the model's work; even-layers gives every device the
 * fullest stage's (the pace a 1F1B pipeline runs at). `imbalance` states the ratio.
 */
#ifndef MB_PROJECT_STEP_H
#define MB_PROJECT_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "accounting.h"
#include "hardware.h"
#include "model.h"
#include "pipeline.h"
#include "project.h"
#include "project_calib.h"

enum proj_recompute { PROJ_RECOMPUTE_NONE, PROJ_RECOMPUTE_SELECTIVE, PROJ_RECOMPUTE_FULL };

/* How routed tokens travel: DeepEP's (one copy per destination node over the network,
 * fanned out over NVLink there) or a plain all-to-all (every routed copy sent to its
 * expert's GPU: Megatron's alltoall dispatcher, NCCL). */
enum proj_dispatch { PROJ_DISPATCH_DEEPEP, PROJ_DISPATCH_ALLTOALL };

/* How layers are placed on stages: balanced (each stage 1/PP of the model's work: Llama
 * 3 moves a layer off the first and last stage for this, sec. 3.3.2) or even-layers
 * (layers split evenly, embedding on the first stage, head and MTP on the last:
 * Megatron's default), where the fullest stage sets the pipeline's pace. */
enum proj_stages { PROJ_STAGES_BALANCED, PROJ_STAGES_EVEN_LAYERS };

/* Compute classes of the split. */
enum proj_class { PROJ_DENSE_GEMM, PROJ_EXPERT_GEMM, PROJ_ATTN_CORE, PROJ_OTHER, PROJ_N_CLASSES };

/* Communication terms inside the pipeline's operations. */
enum proj_comm { PROJ_COMM_TP, PROJ_COMM_CP, PROJ_COMM_EP, PROJ_N_COMMS };

struct proj_input {
	const struct model_config *cfg;
	const struct hardware_spec *hw;
	const struct proj_calib *calib;   /* NULL or not applicable: datasheet fallback */
	int64_t gpus;
	int tp, cp, pp, dp, ep, etp, vp;
	enum pipe_schedule schedule;
	bool fp8;
	int64_t seq, global_batch, micro_batch;  /* sequences */
	enum proj_recompute recompute;
	int64_t mtp_depth;
	enum proj_dispatch dispatch;
	enum proj_stages stages;
};

/* Costs of one micro-batch through one device's share (1/PP) of the model. */
struct proj_share {
	double f[PROJ_N_CLASSES], b[PROJ_N_CLASSES], w[PROJ_N_CLASSES];  /* compute */
	double flops[PROJ_N_CLASSES];  /* executed, recomputation included (none for other) */
	double f_comm[PROJ_N_COMMS], b_comm[PROJ_N_COMMS];               /* whole */
	double f_exposed, b_exposed;   /* communication not hidden inside the op */
	double fb_overlapped;          /* DualPipe's F&B pair; NaN elsewhere */
	double p2p_bytes;              /* activation message between stages */
};

/* One layer's collectives for one micro-batch (for the printout). */
struct proj_layer_comm {
	double tp_all_gather_s, tp_bytes;   /* one of the four per layer and pass */
	bool tp_network;                    /* TP group leaves the node */
	double cp_all_gather_s;
	double ep_dispatch_s, ep_combine_s; /* forward */
	double ep_dispatch_net_bytes, ep_dispatch_nvl_bytes;  /* per GPU */
};

struct proj_result {
	struct proj_input in;
	int microbatches;
	bool calibrated;
	double mem_efficiency;
	double nodes_per_token, max_nodes;  /* EP: expected distinct nodes; 0 = no limit */
	int ep_nodes;
	double imbalance;              /* even-layers' fullest stage / balanced share */
	struct proj_share share;
	struct proj_layer_comm layer;
	/* per step, per GPU */
	double step_s, pipeline_s, bubble_s, busy_s;
	double compute_s[PROJ_N_CLASSES];
	double comm_s[PROJ_N_COMMS];
	double comm_exposed_s, comm_hidden_s;
	double p2p_s;                  /* pipeline messages (inside pipeline_s) */
	double dp_rs_s, dp_ag_s, dp_exposed_s;
	double optimizer_s;
	/* rates */
	double flops_per_token;        /* the accounting's, causal, MTP included */
	double tokens_per_gpu_s, tflops_per_gpu, mfu_bf16, mfu_fp8;
	/* memory */
	struct model_memory mem;
	double peak_act_microbatches;  /* from the simulator, in micro-batch x share units */
	double mem_total_bytes;
	bool fits;
};

/* proj_step projects the step. MB_ERR_ARG with the reason in why (one line, naming the
 * option) for a layout or batch that cannot run: GPUs not tp*cp*pp*dp, ep or etp not
 * dividing, the batch not a multiple of dp x micro-batch, a schedule's constraint. */
int proj_step(const struct proj_input *in, struct proj_result *out, char *why, size_t why_len);

/* proj_share_compute fills the per-micro-batch share costs (exposed for tests). */
int proj_share_compute(const struct proj_input *in, struct proj_result *r, char *why,
		       size_t why_len);

/* proj_class_name: "dense_gemm", "expert_gemm", "attn_core", "other"; proj_comm_name:
 * "tp", "cp", "ep"; proj_recompute_name: "none", "selective", "full". */
const char *proj_class_name(enum proj_class c);
const char *proj_comm_name(enum proj_comm c);
const char *proj_recompute_name(enum proj_recompute r);
/* proj_dispatch_name: "deepep", "alltoall"; proj_stages_name: "balanced", "even-layers". */
const char *proj_dispatch_name(enum proj_dispatch d);
const char *proj_stages_name(enum proj_stages s);

#endif
