/*
 * step_io.h - what `moebench step` reads and writes besides its result: the model
 * config of --model, and the --dump-batch file an outside implementation
 * (scripts/torch_step.py) recomputes the step's loss from.
 */
#ifndef MB_STEP_IO_H
#define MB_STEP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "net.h"

/* What --dump-batch records of the checked (first) step. */
struct step_dump {
	const struct net_layout *L;
	const struct net_options *no;
	int batch, seq;
	uint64_t seed;
	const int32_t *tokens;       /* [batch, seq + 1 + mtp_depth] */
	const struct net_stats *st;  /* the FP32 forward of the starting weights */
	double loss_fp64;            /* the FP64 reference's loss of the same selection */
};

/* step_dump_write writes d as one JSON object to path (atomically; an existing file
 * only with force): "config" (model_config_to_json of the model run, vocabulary 256),
 * norm_eps, rope_theta, mtp_weight, balance_alpha, precision, batch, seq, seed,
 * "tokens" (batch rows), loss, main_loss, mtp_loss, balance_loss, loss_fp64 and
 * route_hash (a decimal string: 64 bits do not fit a JSON number). Returns MB_OK,
 * MB_ERR_NOMEM or result_write_atomic's error, why saying which. */
int step_dump_write(const char *path, bool force, const struct step_dump *d, char *why,
		    size_t why_len);

/* step_resolve_config fills cfg from the model JSON file at model_path (`moebench model
 * --model`'s form, e.g. {"preset": "v3-small", "layers": 2}) when it is not NULL, else
 * from the preset named preset. Returns MB_OK, or the exit status 2 after one error
 * line. */
int step_resolve_config(const char *model_path, const char *preset, struct model_config *cfg);

/* step_resident_bytes returns the process's resident set now (Linux /proc), NaN
 * elsewhere. */
double step_resident_bytes(void);

#endif
