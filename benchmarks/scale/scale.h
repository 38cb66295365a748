/*
 * scale.h - what `moebench scale` (cmd_scale.c) and its sweep (scale_sweep.c) share: one
 * point of a sweep (a mode at a rank count) and how it is run and read back.
 */
#ifndef MB_SCALE_H
#define MB_SCALE_H

#include <stdbool.h>
#include <stddef.h>

#define SCALE_MAX_SIZES 16

enum scale_mode { SCALE_WEAK, SCALE_STRONG };

/* One launched `step` of the sweep. */
struct scale_point {
	enum scale_mode mode;
	int ranks;
	long batch;              /* global sequences */
	char file[1024];         /* its result file, kept */
	double median_s, tokens_per_s, eff;
	double cores_per_rank;
	bool pass;               /* the step's own check passed */
};

/* The sweep's settings. */
struct scale_spec {
	const char *preset, *precision, *launcher, *dir, *exe;
	long batch, seq, iters, warmup;
	bool force, quiet;
};

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
 * mode: weak (tokens/s per rank at N) / (at N0); strong T(N0) N0 / (T(N) N). */
void scale_efficiency(struct scale_point *pts, int n);

#endif
