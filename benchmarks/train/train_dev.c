/*
 * train_dev.c - `moebench train --backend cuda`: cmd_train.c's loop with the model on the
 * CUDA op table (net_create_f32_cuda: weights, gradients, AdamW moments and activations in
 * device memory; the same model code as the CPU run). A step is the forward and backward
 * of every micro-batch, AdamW with the global-norm clip (net_adam_step_f32, the
 * device's multi-tensor kernel) and the routing-bias update (net_bias_update_f32); it
 * waits for the stream, so the step's time is the host clock's. The text, batches,
 * validation, per-step line, curve and record are cmd_train.c's.
 *
 * One rank: the parallel options, ZeRO-1, --sp, --ep-overlap and --replicas are refused
 * (exit 2; `step --backend cuda` refuses the same). --micro-batch runs the batch's
 * micro-batches in turn, their gradients summed in a second gradient buffer in device
 * memory (net_acc_*_f32) and averaged before AdamW, as the CPU loop does on the host.
 * --save and --init-from move the weights through a host copy.
 *
 * Figures the record adds (train_dev_record): MFU against the datasheet's dense peak of
 * the device (BF16; FP8 under fp8) beside --measured-peak's bf16_gemm (fp8_tensor_gemm)
 * rate, the device memory's cudaMemGetInfo high-water mark (sampled at every step's end
 * and at the profiled step's phase boundaries; it counts the CUDA context and cuBLASLt's
 * workspace) beside model/memory.c's prediction, and the time by cause of one step: the
 * event clock (net_cuda_clock_now) waits for the stream at every phase boundary, which
 * would serialise the run with the host, so it profiles the second step alone (the first
 * holds the plans' setup) and the split says so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "cli.h"
#include "hardware.h"
#include "net_ops.h"
#include "result.h"
#include "status.h"
#include "timer.h"
#include "train_state.h"

struct train_dev {
	float *host_w;               /* the weights' host copy (--save, --init-from) */
	float *acc;                  /* micro-batches' gradient sum, table memory (NULL: one) */
	long *load;                  /* their expert loads summed, [blocks][experts] */
	double peak_sheet;           /* the datasheet's dense peak, FLOP/s (NaN: unknown) */
	double peak_measured;        /* --measured-peak's rate, FLOP/s (NaN: none) */
	const char *peak_source;
	long prof_step;              /* the step the event clock profiles */
	bool table, clock;           /* the CUDA table and the event clock are open */
};

int train_dev_refuse(const struct train_opts *o, int world)
{
	static const char *hint = "run it with --backend cpu (the CPU loop takes every option), "
				  "or drop the option";
	const char *what = o->tp > 1 ? "--tp" : o->pp > 1 ? "--pp" : o->ep > 1 ? "--ep"
			 : o->etp > 1 ? "--etp" : o->dp > 1 ? "--dp" : o->zero1 ? "--zero1"
			 : o->sp ? "--sp" : o->overlap ? "--ep-overlap"
			 : o->replicas > 1 ? "--replicas" : NULL;
	if (what)
		return cli_error(hint, "train --backend cuda: %s: the device loop runs on one rank, "
				 "its micro-batches in turn", what), MB_ERR_ARG;
	if (world > 1)
		return cli_error("launch one rank (no mpirun -np N), or train with --backend cpu",
				 "train --backend cuda: %d ranks: the device loop runs on one", world),
		       MB_ERR_ARG;
	return MB_OK;
}

/* dev_peaks reads the datasheet's peak of the device and --measured-peak's rate. */
static int dev_peaks(struct train_dev *d, const struct backend *be, const struct train_opts *o)
{
	bool fp8 = !strcmp(o->precision, "fp8");
	const struct hardware_spec *hw = hardware_match(be->dev.name);
	char why[512];
	d->peak_sheet = hw ? 1e12 * (fp8 ? hw->peak_fp8_tflops : hw->peak_bf16_tflops) : NAN;
	d->peak_source = hw ? hw->source : NULL;
	d->peak_measured = NAN;
	if (o->peak_file && train_measured_rate(o->peak_file, fp8 ? "fp8_tensor_gemm" : "bf16_gemm",
						&d->peak_measured, why, sizeof(why)))
		return cli_error("pass a result file written by `moebench peak --backend cuda` on this "
				 "GPU", "--measured-peak: %s", why);
	d->peak_measured *= 1e12;
	return 0;
}

int train_dev_attach(struct trainer *t)
{
	struct train_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return MB_ERR_NOMEM;
	t->dev = d;
	d->peak_sheet = d->peak_measured = NAN;
	d->prof_step = t->o->steps > 1 ? 1 : 0;
	d->host_w = malloc(t->L.total * sizeof(float));
	size_t nl = (size_t)t->L.blocks * (size_t)(t->cfg.routed_experts > 0 ? t->cfg.routed_experts : 1);
	d->load = calloc(nl, sizeof(long));
	if (t->n_micro > 1)
		d->acc = net_acc_alloc_f32(t->m);
	return d->host_w && d->load && (t->n_micro <= 1 || d->acc) ? MB_OK : MB_ERR_NOMEM;
}

int train_dev_open(struct trainer *t, const struct backend *be, uint64_t seed)
{
	int err = net_create_f32_cuda(&t->L, &t->no, t->micro, (int)t->o->seq, seed, &t->m);
	if (!err && train_dev_attach(t))
		err = MB_ERR_NOMEM;
	if (t->dev)
		t->dev->table = t->m != NULL;
	if (err == MB_ERR_NODEV)
		return cli_error("use --backend cpu, or run on a machine with a CUDA GPU and driver",
				 "train --backend cuda: no CUDA device (or this moebench was built "
				 "without CUDA)");
	if (err)
		return cli_error("choose a smaller --batch, --seq or --preset", "train --backend cuda: "
				 "the model does not fit on the device or the table failed to open "
				 "(%s)", mb_status_str(err));
	struct train_dev *d = t->dev;
	if (dev_peaks(d, be, t->o))
		return 2;
	/* MFU per step against the measured rate, the datasheet's without one */
	t->peak_flops = isfinite(d->peak_measured) ? d->peak_measured : d->peak_sheet;
	d->clock = !net_cuda_clock_open();
	t->prof.now = net_cuda_clock_now;   /* attached on the profiled step only */
	return 0;
}

float *train_dev_host(struct trainer *t)
{
	return t->dev->host_w;
}

int train_dev_params(struct trainer *t, bool upload)
{
	return upload ? net_upload_f32(t->m, t->dev->host_w)
		      : net_download_f32(t->m, false, t->dev->host_w);
}

/* dev_split adds the profiled step's phases, its optimizer and its time to the split. */
static void dev_split(struct trainer *t, double opt_s, double dt)
{
	train_split_phases(&t->split, &t->prof);
	t->split.s[TC_OPTIMIZER] += opt_s;
	t->split_step_s += dt;
}

/* dev_micro runs the forward and backward of micro-batch k of tok; with more than one,
 * adds its gradients to d->acc, its loads to d->load and its losses to x[0..2]. */
static int dev_micro(struct trainer *t, int k, const int32_t *tok, double *x, const long **load)
{
	struct train_dev *d = t->dev;
	struct net_stats st = { 0 };
	int n = t->n_micro > 1 ? t->n_micro : 1, E = (int)t->cfg.routed_experts;
	int err = net_forward_f32(t->m, tok + (size_t)k * (size_t)t->micro * (size_t)t->len, &st);
	err = err ? err : net_backward_f32(t->m);
	if (!err && n > 1)
		err = net_acc_add_f32(t->m, d->acc, k == 0);
	for (int b = 0; b < t->L.blocks; b++) {
		const long *l = net_expert_load_f32(t->m, b);
		long *sum = d->load + (size_t)b * (size_t)(E > 0 ? E : 1);
		for (int e = 0; l && n > 1 && e < E; e++)
			sum[e] = (k ? sum[e] : 0) + l[e];
		load[b] = n > 1 && l ? sum : l;
	}
	x[0] += st.main_loss / n;
	x[1] += st.mtp_loss / n;
	x[2] += st.loss / n;
	return err;
}

int train_dev_step(struct trainer *t, long step, const int32_t *tok, double *x, double *norm,
		   const long **load)
{
	struct train_dev *d = t->dev;
	bool prof = step == d->prof_step && d->clock;
	double t0 = timer_now();
	if (prof) {
		memset(t->prof.seconds, 0, sizeof(t->prof.seconds));
		net_profile_set_f32(t->m, &t->prof);
	}
	int err = MB_OK, n = t->n_micro > 1 ? t->n_micro : 1;
	x[0] = x[1] = x[2] = 0;
	for (int k = 0; k < n && !err; k++)
		err = dev_micro(t, k, tok, x, load);
	if (!err && n > 1)
		err = net_acc_mean_f32(t->m, d->acc, n);
	double o0 = prof ? net_cuda_clock_now() : 0;
	*norm = err ? NAN : net_adam_step_f32(t->m, &t->adam, step + 1);
	if (!err && t->moe && t->cfg.expert_bias)
		err = net_bias_update_f32(t->m, load, t->o->gamma);
	int st_err = net_sync_f32(t->m);   /* every error the table kept, too */
	err = err ? err : st_err;   /* a diverged step: its loss is not finite (train_step) */
	/* the clock's reading at the step's end samples the device's memory as well */
	double o1 = d->clock ? net_cuda_clock_now() : 0;
	x[2] = err ? NAN : x[2];
	x[3] = timer_now() - t0;
	x[4] = x[5] = 0;
	if (prof) {
		net_profile_set_f32(t->m, NULL);
		dev_split(t, o1 - o0, x[3]);
	}
	return err;
}

void train_dev_record(const struct trainer *t, double tok_s, cJSON *r, char *lines, size_t len)
{
	const struct train_dev *d = t->dev;
	struct model_memory w;
	struct net_memory own;
	double peak = net_cuda_mem_peak();
	net_memory_f32(t->m, &own);
	if (net_memory_predict(&t->cfg, t->micro, (int)t->o->seq, 1, false, &w))
		w.total_bytes = NAN;
	cJSON_AddStringToObject(cJSON_GetObjectItem(r, "params"), "op_table", "cuda");
	result_set_metric(r, "mfu_datasheet", t->flops_per_token * tok_s / d->peak_sheet);
	result_set_metric(r, "mfu_measured", t->flops_per_token * tok_s / d->peak_measured);
	result_set_metric(r, "peak_datasheet_tflops", d->peak_sheet / 1e12);
	result_set_metric(r, "peak_measured_tflops", d->peak_measured / 1e12);
	result_set_metric(r, "device_peak_bytes", peak);
	result_set_metric(r, "model_bytes", (double)own.total);
	result_set_metric(r, "memory_predicted_bytes", w.total_bytes);
	if (d->peak_source)
		cJSON_AddStringToObject(r, "peak_source", d->peak_source);
	size_t k = strlen(lines);
	if (k < len)
		snprintf(lines + k, len - k, "\ntrain: on the device: MFU %.1f%% of the datasheet's "
			 "%.0f TFLOP/s, %.1f%% of the measured %.0f; device memory high-water %.2f GB "
			 "(the model's buffers %.2f GB, memory.c predicts %.2f GB)",
			 100 * t->flops_per_token * tok_s / d->peak_sheet, d->peak_sheet / 1e12,
			 100 * t->flops_per_token * tok_s / d->peak_measured, d->peak_measured / 1e12,
			 peak / 1e9, (double)own.total / 1e9, w.total_bytes / 1e9);
}

void train_dev_close(struct trainer *t)
{
	struct train_dev *d = t->dev;
	if (!d)
		return;
	if (t->m)
		net_acc_free_f32(t->m, d->acc);
	free(d->load);
	if (d->table) {
		net_destroy_f32(t->m);
		t->m = NULL;
		net_cuda_ops_close();
	}
	if (d->clock)
		net_cuda_clock_close();
	free(d->host_w);
	free(d);
	t->dev = NULL;
}
