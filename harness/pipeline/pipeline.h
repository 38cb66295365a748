/*
 * pipeline.h - pipeline-parallel schedules: the generator (which operations each
 * device runs, in which order), the event simulator (when each one runs), the
 * published closed forms of the bubble, and the lowering of a device's operations into
 * a program for the MPI executor (pipeline_exec.h).
 *
 * Schedules (`moebench pipeline --schedule NAME`):
 *   gpipe        every forward, then every backward (GPipe, Huang et al. 2019)
 *   1f1b         PipeDream-flush / Megatron 1F1B: PP-1-d warm-up forwards on device d,
 *                then one forward one backward, then the remaining backwards
 *   interleaved  Megatron interleaved 1F1B: v chunks per device, virtual stage
 *                c*PP + d on device d (Narayanan et al., arXiv 2104.04473)
 *   zb-h1        zero-bubble ZB-H1: 1F1B with the backward split into B and W, device d
 *                deferring its first d W's so every device keeps PP micro-batches in
 *                flight (Qi et al., arXiv 2401.10241, section 2.1)
 *   dualpipe     DeepSeek-V3's bidirectional DualPipe: each device holds stage d of one
 *                direction and stage PP-1-d of the other (two copies of the parameters);
 *                half the micro-batches enter at device 0, half at device PP-1; the
 *                order per device follows deepseek-ai/DualPipe (dualpipe.py, 8 steps)
 *   dualpipev    DualPipeV ("cut-in-half"): PP devices hold 2*PP stages in a V, device d
 *                holding stages d and 2*PP-1-d; every micro-batch enters at device 0 and
 *                leaves there (deepseek-ai/DualPipe dualpipev.py)
 *
 * Operations: F forward, B backward for inputs, W backward for weights (the zero-bubble
 * split), FB DualPipe's overlapped pair (a forward of one micro-batch and a backward of
 * another, in different chunks). A B or FB whose `with_w` is set is the full backward
 * (B and W fused, as DualPipe runs it when it does not defer W); gpipe, 1f1b and
 * interleaved never split, so every one of their B's has with_w set.
 *
 * Durations (struct pipe_times) are for one micro-batch through one device's share of
 * the layers (1/PP of the model): f forward, b backward for inputs, w backward for
 * weights (the zero-bubble paper's convention; the DualPipe table's B is b + w), fb the
 * overlapped F&B pair (default f + b + w: no gain from the overlap). An operation on a
 * smaller chunk takes its share: interleaved ops take 1/v, DualPipeV ops 1/2
 * (plan->op_scale), so step times of every schedule compare at equal model work.
 *
 * Functions return MB_OK, MB_ERR_ARG (a constraint, named in `why`), MB_ERR_NOMEM, or
 * MB_ERR_CHECK (the simulator found an order that cannot run: a generator bug).
 */
#ifndef MB_HARNESS_PIPELINE_H
#define MB_HARNESS_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "pipeline_exec.h"

enum pipe_schedule {
	PIPE_GPIPE,
	PIPE_1F1B,
	PIPE_INTERLEAVED,
	PIPE_ZBH1,
	PIPE_DUALPIPE,
	PIPE_DUALPIPEV,
	PIPE_N_SCHEDULES
};

enum pipe_op_kind { PIPE_OP_F, PIPE_OP_B, PIPE_OP_W, PIPE_OP_FB };

/* One operation of a device. Stages are virtual stages, 0 .. plan->stages-1, in the
 * order a micro-batch's forward passes them. */
struct pipe_op {
	unsigned char kind;    /* enum pipe_op_kind */
	unsigned char with_w;  /* B, or FB's backward: the full backward (B and W fused) */
	int mb, stage;         /* F, B, W; FB: the forward's micro-batch and stage */
	int mb2, stage2;       /* FB: the backward's; else -1 */
};

struct pipe_plan {
	enum pipe_schedule schedule;
	int pp;             /* devices */
	int microbatches;   /* m, both directions together for dualpipe */
	int chunks;         /* model chunks per device: v, 2 for dualpipe(v), else 1 */
	int stages;         /* virtual stages a micro-batch passes: PP*v, PP, or 2*PP */
	double op_scale;    /* an operation's share of a device's layers (1/v, 1/2, 1) */
	int param_copies;   /* copies of the model's parameters over the pipeline (2: dualpipe) */
	long n_ops;
	struct pipe_op *ops;  /* device d's operations are ops[first[d] .. first[d+1]) */
	long *first;          /* pp + 1 entries */
};

struct pipe_times {
	double f, b, w;     /* per micro-batch per device share: forward, input grad, weight grad */
	double fb;          /* overlapped F&B with a full backward; NaN or < 0: f + b + w */
	double latency;     /* per point-to-point message between devices */
	double bandwidth;   /* bytes per time unit; 0: no transfer term */
	double msg_bytes;   /* bytes per activation or gradient message */
};

/* A device's figures. Its bubble is its idle time in the step, step time minus busy
 * time (the pipeline fill and drain included): Megatron's definition, the one every
 * closed form states, the same on every device of 1F1B. `gap` is the idle time between
 * its own first and last operation only, which leaves out the fill and drain (0 on
 * 1F1B's last device). */
struct pipe_device_stats {
	double first_start, last_end;
	double busy;        /* sum of its operations' durations */
	double bubble;      /* step time - busy */
	double gap;         /* last_end - first_start - busy */
	double fraction;    /* bubble / (m x (f + b + w)) */
	double peak_act;    /* peak in-flight activations, micro-batch x device-share units */
};

struct pipe_sim {
	double *start, *end;  /* per operation, indexed like plan->ops */
	struct pipe_device_stats *dev;  /* pp entries */
	double step_time;     /* last end over all devices (the step starts at 0) */
	double bubble_max, bubble_mean;
	double gap_max, gap_mean;
	double fraction_max, fraction_mean;
	double peak_act_max;
};

/* The published closed form of a schedule's bubble for given durations. */
struct pipe_closed {
	double bubble;        /* the worst device's, in the durations' unit */
	double fraction;      /* bubble / (m x (f + b + w)) */
	const char *formula;  /* as published, e.g. "(PP-1)(F+B)" */
	const char *source;
	const char *condition;  /* when the simulation reproduces it exactly */
	bool exact;           /* these durations meet the condition (and no message cost) */
};

/* pipe_schedule_name returns "1f1b", "dualpipe", ...; pipe_schedule_parse the reverse
 * (MB_ERR_ARG for an unknown name). pipe_schedule_names lists them, '|'-separated. */
const char *pipe_schedule_name(enum pipe_schedule s);
int pipe_schedule_parse(const char *name, enum pipe_schedule *out);
const char *pipe_schedule_names(void);

/* pipe_plan_check validates (schedule, pp, m, v) against the schedule's constraints
 * without building; on MB_ERR_ARG `why` names the constraint. v counts only for
 * interleaved. */
int pipe_plan_check(enum pipe_schedule s, int pp, int m, int v, char *why, size_t len);
/* pipe_plan_build generates every device's ordered operations. */
int pipe_plan_build(enum pipe_schedule s, int pp, int m, int v, struct pipe_plan *out,
		    char *why, size_t len);
void pipe_plan_free(struct pipe_plan *p);

/* pipe_stage_device returns the device holding virtual stage `stage` for micro-batch mb
 * (DualPipe's second-direction micro-batches run the stages from device PP-1 down);
 * pipe_stage_chunk the chunk of that device it is. */
int pipe_stage_device(const struct pipe_plan *p, int mb, int stage);
int pipe_stage_chunk(const struct pipe_plan *p, int mb, int stage);

/* pipe_times_default fills f = b = w = 1, fb = NaN (f + b + w), no communication. */
void pipe_times_default(struct pipe_times *t);
/* pipe_op_duration is an operation's duration under t. */
double pipe_op_duration(const struct pipe_plan *p, const struct pipe_op *op,
			const struct pipe_times *t);

/* pipe_simulate computes every operation's start and end: an operation starts when its
 * device has finished the previous one and its inputs have arrived (a forward's
 * activation from the previous stage, a backward's gradient from the next, plus the
 * message time when the stages are on different devices; W after its B). Sends never
 * block. O(operations). MB_ERR_CHECK when the order deadlocks (why names the op). */
int pipe_simulate(const struct pipe_plan *p, const struct pipe_times *t, struct pipe_sim *out,
		  char *why, size_t len);
/* pipe_simulate_devices is pipe_simulate with each device's and chunk's own durations
 * dev[d * chunks + c] (the op times a real run measured per stage, which differ: the
 * first stage embeds, the last holds the head and MTP; an FB takes its forward's chunk);
 * t gives the message cost and the fractions' unit. */
int pipe_simulate_devices(const struct pipe_plan *p, const struct pipe_times *t,
			  const struct pipe_times *dev, struct pipe_sim *out, char *why, size_t len);
/* pipe_simulate_ops takes each operation's own duration dur[i] (indexed like
 * plan->ops: the times a real run measured, op by op) when dur is not NULL. */
int pipe_simulate_ops(const struct pipe_plan *p, const struct pipe_times *t,
		      const struct pipe_times *dev, const double *dur, struct pipe_sim *out,
		      char *why, size_t len);
void pipe_sim_free(struct pipe_sim *s);

/* pipe_closed_form gives the published bubble for the plan's schedule and sizes:
 *   gpipe, 1f1b   (PP-1)(F+B)                 B = b + w      (DualPipe table, 1F1B)
 *   interleaved   (PP-1)(F+B)/v, fraction (PP-1)/(v m)   (Narayanan et al. 2021)
 *   zb-h1         (PP-1)(F+B-2W) = (PP-1)(f+b-w)          (DualPipe table, ZB1P)
 *   dualpipe      (PP/2-1)(F&B+B-3W) = (PP/2-1)(fb+b-2w)  (DualPipe table)
 *   dualpipev     the same over its 2*PP stages of half size: (PP-1)(fb+b-2w)/2
 * The simulation's bubble_max equals it exactly (zero message cost) when `exact`:
 * always for gpipe, 1f1b and interleaved; zb-h1 when w <= min(f, b); dualpipe and
 * dualpipev when f = b, w <= f and f + w <= fb <= f + b + w (the equal cells of the
 * DualPipe figure). pipeline_closed.c says why they differ elsewhere. */
void pipe_closed_form(const struct pipe_plan *p, const struct pipe_times *t,
		      struct pipe_closed *out);

/* pipe_lower turns device `rank`'s operations into an executor program: each op
 * receives its inputs (F: the activation from the device of the previous stage; B: the
 * gradient from the device of the next; W: nothing; FB: both halves') and sends its
 * outputs, tag ((mb * stages + stage) * 2 + is_grad) naming the stage that consumes the
 * message; no message when both stages are on this device (DualPipeV's turn). Work
 * units: F, B, W 1 each; a full backward 2 (B + W); FB 1 + its backward's (3 for
 * DualPipe, whose F&B backward is the full one). */
int pipe_lower(const struct pipe_plan *plan, int rank, struct pipe_exec_program *out);

#endif
