/*
 * scale.h - what `moebench scale` (cmd_scale.c), its sweep (scale_sweep.c) and its
 * layouts (scale_layout.c) share: one point of a sweep (a mode and a parallel layout at a
 * rank count, the step's grid and model there) and how it is planned, run and read back.
 */
#ifndef MB_SCALE_H
#define MB_SCALE_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

#define SCALE_MAX_SIZES 16

enum scale_mode { SCALE_WEAK, SCALE_STRONG };

/* The parallel dimension that takes the ranks a size adds: data (the default), expert
 * (EP over the ranks of a stage), tensor (with the experts sliced alike), pipeline. */
enum scale_layout { SCALE_DP, SCALE_EP, SCALE_TP, SCALE_PP, SCALE_LAYOUTS };

/* What a weak sweep grows with the ranks besides the batch: nothing, the routed experts
 * (experts per EP rank fixed) or the layers (layers per pipeline stage fixed). */
enum scale_grow { SCALE_GROW_NONE, SCALE_GROW_EXPERTS, SCALE_GROW_LAYERS };

/* One launched `step` of the sweep. */
struct scale_point {
	enum scale_mode mode;
	enum scale_layout layout;
	enum scale_grow grow;    /* SCALE_GROW_NONE but on weak points of its layout */
	int ranks;
	int tp, pp, ep, etp, dp; /* the step's grid at this size */
	long batch;              /* global sequences */
	long experts, layers;    /* the model's routed experts and layers here */
	char series[48];         /* mode[-layout][+grown]: "weak", "strong-ep", "weak-pp+layers" */
	char model[512];         /* the grown model's JSON (`step --model`), kept; "" else */
	char file[1024];         /* its result file, kept */
	cJSON *config;           /* the step record's model_config (the model measured), or NULL */
	double median_s, tokens_per_s, flops_per_token, eff;
	double cores_per_rank;
	bool pass;               /* the step's own check passed */
};

/* The sweep's settings. */
struct scale_spec {
	const char *preset, *precision, *launcher, *dir, *exe, *schedule;
	long batch, seq, iters, warmup;
	int tp, pp, ep, etp;     /* fixed at every size (0: not given) */
	long experts_per_rank, layers_per_rank;   /* 0: the preset's over the first size's */
	bool zero1, force, quiet;
};

extern const char *const scale_layout_names[SCALE_LAYOUTS];

/* scale_parse_layouts reads --layout (names of scale_layout_names, comma separated, each
 * once) into out; returns the count, or 0 when it is not such a list. */
int scale_parse_layouts(const char *s, enum scale_layout *out);
/* scale_plan_point fills p's grid, model and batch for its mode, layout and ranks (the
 * global batch: --batch in all (strong), or per rank (weak; per pipeline of grown
 * layers)), writes the grown model's config into cfg (else base), and checks what the
 * step would refuse at that size (train_dp_layout_of, train_pp_check) before any
 * launch. Returns 0, or exit status 2 after one error line (a note before it names
 * the point when the step's own checks refuse). */
int scale_plan_point(const struct scale_spec *s, const struct model_config *base,
		     struct scale_point *p, struct model_config *cfg);
/* scale_write_model writes p's grown model ({"preset": ..., and the grown fields}) to
 * p->model. Returns 0 or -1. */
int scale_write_model(const struct scale_spec *s, const struct scale_point *p);

/* scale_default_launcher picks "srun -n {n}" under Slurm, "mpirun --oversubscribe -np
 * {n}" when mpirun is on the PATH, else NULL. */
const char *scale_default_launcher(void);
/* scale_command writes the shell line launching point p's `step`: the launcher with
 * {n} replaced (every occurrence), moebench's own path, and the step's options.
 * Returns 0, or -1 when it does not fit or the template has no {n}. */
int scale_command(const struct scale_spec *s, const struct scale_point *p, char *buf,
		  size_t len);
/* scale_run_point launches p (threads per rank set to the cores it gets) and reads its
 * result file back: median step time, tokens/s, the check. Returns MB_OK, or MB_ERR_*
 * with why (the launch failed, the file is missing or not a step result). */
int scale_run_point(const struct scale_spec *s, struct scale_point *p, char *why,
		    size_t why_len);
/* scale_efficiency fills eff of every point against the point of fewest ranks of its
 * series: weak (throughput per rank at N) / (at N0), the throughput in model FLOP/s
 * (tokens/s times the step's model FLOPs per token: tokens/s alone when the model does
 * not grow); strong T(N0) N0 / (T(N) N). */
void scale_efficiency(struct scale_point *pts, int n);

#endif
