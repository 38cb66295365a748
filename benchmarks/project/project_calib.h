/*
 * project_calib.h - the calibration of `moebench project`: GEMM efficiencies by shape
 * and the achieved memory bandwidth, read from moebench result documents (`gemm` and
 * `peak` records whose check passed; results/runs/h100-sxm/ by default). Efficiencies
 * are fractions of the measuring device's datasheet peak, so they carry over to a
 * device of the same architecture; any other device falls back to a stated fraction
 * of its datasheet peak.
 */
#ifndef MB_PROJECT_CALIB_H
#define MB_PROJECT_CALIB_H

#include <stdbool.h>
#include <stddef.h>

#include "hardware.h"
#include "project.h"

/* Stated efficiencies where nothing is measured (not fitted to anything). */
#define PROJ_FALLBACK_GEMM_EFF 0.50   /* of the datasheet dense peak */
#define PROJ_FALLBACK_MEM_EFF 0.80    /* of the datasheet HBM bandwidth */
/* NOTE: FlashAttention-3 (Shah et al., arXiv 2407.08608) reaches ~75% of the H100's
 * peak forward and clearly less backward; moebench has no GPU measurement of its
 * attention kernels yet, so the core runs at this stated fraction on every device. */
#define PROJ_ATTENTION_EFF 0.60

enum proj_dtype { PROJ_BF16, PROJ_FP8, PROJ_N_DTYPES };

struct proj_calib {
	char dir[1024];
	char device[64];         /* the measuring device, as its result documents name it */
	char hw_key[32];         /* its hardware table entry */
	int files;               /* result documents read */
	size_t n[PROJ_N_DTYPES];
	struct proj_gemm_point *pts[PROJ_N_DTYPES];
	double mem_efficiency;   /* measured copy GB/s over the datasheet HBM; NaN if none */
};

/* proj_calib_default_dir writes the default calibration directory:
 * ./results/runs/h100-sxm when it exists, else the source tree's. */
void proj_calib_default_dir(char *dir, size_t len);

/* proj_calib_load reads every *.json result document of dir. GEMM records of
 * impl cublaslt (and `peak`'s GEMMs) with a passing check give points: bf16 as BF16,
 * fp8-block (DeepSeek-V3's 1x128/128x128 scaling) and peak's FP8 GEMM as FP8; peak's
 * d2d_copy gives the memory efficiency. Documents whose device matches no hardware
 * entry, or that differ in device, are an error. Returns MB_OK, MB_ERR_IO (no such
 * directory, unreadable), MB_ERR_PARSE (malformed, or no usable record), MB_ERR_NOMEM. */
int proj_calib_load(const char *dir, struct proj_calib *c, char *why, size_t why_len);
void proj_calib_free(struct proj_calib *c);

/* proj_calib_applies tells whether calibration c carries over to hardware hw: the same
 * entry, or one of the same architecture and SM configuration (H100 SXM, H800 SXM and
 * H200 share Hopper's 132-SM GH100 at the same clocks). */
bool proj_calib_applies(const struct proj_calib *c, const struct hardware_spec *hw);

#endif
